// herd-ctld's history: the tiers and their reads (History), the samples taken from the live state
// (Controller::SampleHistory); the request is in ctld/rpc/history.cc. The design is in history.h.
#include "ctld/history.h"

#include <algorithm>
#include <charconv>

#include "ctld/controller.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

namespace {

constexpr const char* kClusterFields[] = {"gpus_milli",   "allocated_milli", "measured_milli",
                                          "busy_milli",   "running_jobs",    "pending_jobs"};
constexpr const char* kProjectFields[] = {"allocated_milli", "measured_milli", "busy_milli",
                                          "deserved_milli",  "running_jobs",   "pending_jobs"};
constexpr const char* kNodeFields[] = {"gpus_milli", "allocated_milli", "measured_milli",
                                       "busy_milli", "up_milli",        "drain_milli"};
constexpr const char* kJobFields[] = {"allocated_milli", "measured_milli", "busy_milli"};
constexpr SeriesKind kKinds[] = {SeriesKind::kCluster, SeriesKind::kProject, SeriesKind::kNode,
                                 SeriesKind::kJob};

int64_t PeriodOf(int64_t time, int64_t step) { return time - ((time % step) + step) % step; }

int64_t Average(int64_t total, int64_t samples) {
  if (samples <= 0) return 0;
  // Rounded to nearest, negatives too.
  return total >= 0 ? (total + samples / 2) / samples : -((-total + samples / 2) / samples);
}

}  // namespace

const char* SeriesKindName(SeriesKind kind) {
  switch (kind) {
    case SeriesKind::kCluster: return "cluster";
    case SeriesKind::kProject: return "project";
    case SeriesKind::kNode: return "node";
    case SeriesKind::kJob: return "job";
  }
  return "cluster";
}

std::optional<SeriesKind> ParseSeriesKind(std::string_view name) {
  for (SeriesKind k : kKinds) {
    if (name == SeriesKindName(k)) return k;
  }
  return std::nullopt;
}

std::optional<model::JobId> ParseJobKey(std::string_view key) {
  model::JobId id = 0;
  auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
  if (ec != std::errc() || end != key.data() + key.size() || id <= 0) return std::nullopt;
  return id;
}

std::span<const char* const> SeriesFields(SeriesKind kind) {
  switch (kind) {
    case SeriesKind::kCluster: return kClusterFields;
    case SeriesKind::kProject: return kProjectFields;
    case SeriesKind::kNode: return kNodeFields;
    case SeriesKind::kJob: return kJobFields;
  }
  return kClusterFields;
}

int64_t History::Step(int tier) const {
  return tier == 0 ? std::max<int64_t>(config_.interval_s, 1) : tier == 1 ? kTenMinutes : kHour;
}

int64_t History::Retention(int tier) const {
  return tier == 0   ? config_.raw_retention_s
         : tier == 1 ? config_.ten_minute_retention_s
                     : config_.hourly_retention_s;
}

std::span<const store::HistoryRow> History::TierRows(int tier,
                                                     std::span<const store::HistoryRow> rows) {
  if (tier < kJobTiers) return rows;
  // Jobs sort last (SeriesKind::kJob is the highest kind).
  auto jobs = std::find_if(rows.begin(), rows.end(), [](const store::HistoryRow& r) {
    return r.kind == static_cast<int>(SeriesKind::kJob);
  });
  return rows.first(jobs - rows.begin());
}

void History::Add(Open& open, std::span<const store::HistoryRow> rows) {
  for (const store::HistoryRow& r : rows) {
    Sums& s = open.series[{r.kind, r.key}];
    s.samples += r.samples;
    for (int i = 0; i < store::kHistoryValues; ++i) s.total[i] += r.values[i] * r.samples;
  }
}

std::vector<store::HistoryRow> History::Averages(const Open& open) {
  std::vector<store::HistoryRow> rows;
  rows.reserve(open.series.size());
  for (const auto& [id, s] : open.series) {
    store::HistoryRow& r = rows.emplace_back();
    r.kind = id.first;
    r.key = id.second;
    r.samples = s.samples;
    for (int i = 0; i < store::kHistoryValues; ++i) r.values[i] = Average(s.total[i], s.samples);
  }
  return rows;
}

Status History::RecoverTier(store::Store& store, int tier, int64_t now) {
  auto last = store.LastHistoryTime(tier);
  if (!last.ok()) return last.status();
  // Normally the rows of one period at most: each one ended is written when the next sample
  // comes. Bounded in any case to the last two periods.
  const int64_t from =
      std::max(*last > 0 ? *last + Step(tier) : 0, PeriodOf(now, Step(tier)) - Step(tier));
  auto records = store.LoadHistorySince(tier - 1, from);
  if (!records.ok()) return records.status();
  Open& open = open_[tier];
  open = Open{};
  if (records->empty()) return Status::Ok();
  open.period = PeriodOf(records->back().time, Step(tier));
  for (const store::HistoryRecord& r : *records) {
    if (PeriodOf(r.time, Step(tier)) == open.period) Add(open, TierRows(tier, std::span(&r.row, 1)));
  }
  return Status::Ok();
}

Status History::Recover(store::Store& store, int64_t now) {
  auto names = store.LoadHistoryNames();
  if (!names.ok()) return names.status();
  names_ = std::move(*names);
  HERD_RETURN_IF_ERROR(RecoverTier(store, 1, now));
  HERD_RETURN_IF_ERROR(RecoverTier(store, 2, now));
  // The open hour also holds the samples of the open 10 minutes (in tier 0 only so far).
  if (open_[1].period >= 0) {
    const int64_t hour = PeriodOf(open_[1].period, kHour);
    if (open_[2].period < 0 || open_[2].period == hour) {
      open_[2].period = hour;
      Add(open_[2], TierRows(2, Averages(open_[1])));
    }
  }
  return Status::Ok();
}

Status History::Record(store::Store& store, int64_t time,
                       const std::vector<SeriesValues>& series) {
  std::vector<store::HistoryRow> rows;
  rows.reserve(series.size());
  for (const SeriesValues& s : series) {
    store::HistoryRow& r = rows.emplace_back();
    r.kind = static_cast<int>(s.kind);
    r.values = s.values;
    if (s.kind == SeriesKind::kJob) {
      r.key = s.job;
    } else if (s.kind != SeriesKind::kCluster) {
      auto it = names_.find({r.kind, s.name});
      if (it == names_.end()) {
        auto id = store.AddHistoryName(r.kind, s.name);
        if (!id.ok()) return id.status();
        it = names_.emplace(std::make_pair(r.kind, s.name), *id).first;
      }
      r.key = it->second;
    }
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return std::tie(a.kind, a.key) < std::tie(b.kind, b.key);
  });
  rows.erase(std::unique(rows.begin(), rows.end(),
                         [](const auto& a, const auto& b) {
                           return a.kind == b.kind && a.key == b.key;
                         }),
             rows.end());
  for (int tier = 1; tier < kTiers; ++tier) {
    Open& open = open_[tier];
    const int64_t period = PeriodOf(time, Step(tier));
    if (open.period >= 0 && open.period != period) {
      HERD_RETURN_IF_ERROR(store.AppendHistory(tier, open.period, Averages(open)));
      open = Open{};
    }
    open.period = period;
    Add(open, TierRows(tier, rows));
  }
  HERD_RETURN_IF_ERROR(store.AppendHistory(0, time, rows));
  for (int tier = 0; tier < kTiers; ++tier) {
    HERD_RETURN_IF_ERROR(store.PruneHistory(tier, time - Retention(tier)));
  }
  return Status::Ok();
}

Result<proto::HistoryReply> History::Read(store::Store& store, const proto::HistoryRequest& req,
                                          int64_t now) const {
  const auto kind = ParseSeriesKind(req.series);
  if (!kind) return Invalid("unknown series '" + req.series + "'");
  proto::HistoryReply reply;
  reply.series = req.series;
  reply.key = req.key;
  reply.to = req.to > 0 ? req.to : now + 1;
  reply.from = req.from > 0 ? req.from : reply.to - 86400;
  if (reply.from >= reply.to) {
    return Invalid("the history's start must come before its end (from " +
                   std::to_string(reply.from) + ", to " + std::to_string(reply.to) + ")");
  }
  for (const char* f : SeriesFields(*kind)) reply.fields.push_back(f);
  const int64_t max_points = std::clamp<int64_t>(
      req.max_points > 0 ? req.max_points : proto::kHistoryDefaultPoints, 1,
      proto::kHistoryMaxPoints);

  // The finest tier that still holds the start and gives few enough points; else the coarsest.
  const int64_t span = reply.to - reply.from;
  const int tiers = *kind == SeriesKind::kJob ? kJobTiers : kTiers;
  int tier = tiers - 1;
  for (int t = 0; t < tiers; ++t) {
    if (reply.from >= now - Retention(t) && span / Step(t) <= max_points) {
      tier = t;
      break;
    }
  }
  reply.step_s = Step(tier);

  int64_t key = 0;
  if (*kind == SeriesKind::kJob) {
    auto id = ParseJobKey(req.key);
    if (!id) return Invalid("a job's history needs its id, got '" + req.key + "'");
    key = *id;
  } else if (*kind != SeriesKind::kCluster) {
    auto it = names_.find({static_cast<int>(*kind), req.key});
    if (it == names_.end()) return reply;  // never sampled yet
    key = it->second;
  }
  auto records = store.ReadHistory(tier, static_cast<int>(*kind), key, reply.from, reply.to);
  if (!records.ok()) return records.status();
  // The open period of an averaged tier, from memory.
  if (tier > 0) {
    const Open& open = open_[tier];
    auto it = open.series.find({static_cast<int>(*kind), key});
    if (it != open.series.end() && open.period >= reply.from && open.period < reply.to &&
        (records->empty() || records->back().time < open.period)) {
      store::HistoryRecord& r = records->emplace_back();
      r.time = open.period;
      Open one;
      one.series.emplace(it->first, it->second);
      r.row = Averages(one).front();
    }
  }
  // Still too many points (a long range): merged into periods of whole steps.
  int64_t width = reply.step_s;
  if (static_cast<int64_t>(records->size()) > max_points) {
    width = (span + max_points - 1) / max_points;
    width = (width + reply.step_s - 1) / reply.step_s * reply.step_s;
    reply.step_s = width;
  }
  const size_t fields = reply.fields.size();
  Open merged;
  auto flush = [&] {
    if (merged.period < 0) return;
    store::HistoryRow r = Averages(merged).front();
    reply.points.push_back({merged.period, r.samples,
                            std::vector<int64_t>(r.values.begin(), r.values.begin() + fields)});
    merged = Open{};
  };
  for (const store::HistoryRecord& r : *records) {
    const int64_t period = width == Step(tier) ? r.time : reply.from + PeriodOf(r.time - reply.from, width);
    if (period != merged.period) flush();
    merged.period = period;
    Add(merged, std::span(&r.row, 1));
  }
  flush();
  return reply;
}

// ---- herd-ctld's side ----

std::vector<SeriesValues> Controller::SampleHistory() const {
  namespace cf = cluster_field;
  namespace pf = project_field;
  namespace nf = node_field;
  namespace jf = job_field;
  SeriesValues cluster;
  std::map<std::string, SeriesValues> nodes;
  for (const auto& [name, n] : nodes_) {
    SeriesValues& s = nodes[name];
    s.kind = SeriesKind::kNode;
    s.name = name;
    const std::string state = ShownNodeState(n);
    s.values[nf::kUp] = state == "UP" ? 1000 : 0;
    s.values[nf::kDrain] = state == "DRAIN" ? 1000 : 0;
    if (n.state == model::NodeState::kDown) continue;  // its GPUs count for nothing now
    s.values[nf::kGpus] = static_cast<int64_t>(n.topology.gpus.size()) * 1000;
    for (const auto& [index, m] : n.gpu_metrics) {
      if (m.utilization_pct < 0 || index < 0 ||
          index >= static_cast<int>(n.topology.gpus.size())) {
        continue;
      }
      s.values[nf::kMeasured] += 1000;
      s.values[nf::kBusy] += std::min(m.utilization_pct, 100) * 10;
    }
    cluster.values[cf::kGpus] += s.values[nf::kGpus];
    cluster.values[cf::kMeasured] += s.values[nf::kMeasured];
    cluster.values[cf::kBusy] += s.values[nf::kBusy];
  }

  // Projects, and the departments above them (as OnProjects counts them).
  std::map<std::string, std::string> parent;
  std::map<std::string, SeriesValues> queues;
  for (const auto& q : config_.queues) {
    parent[q.name] = q.parent;
    SeriesValues& s = queues[q.name];
    s.kind = SeriesKind::kProject;
    s.name = q.name;
    s.values[pf::kDeserved] = q.deserved.gpu_milli;
  }
  auto add_to_queues = [&](const std::string& project, int field, int64_t v) {
    std::string q = project;
    for (size_t up = 0; !q.empty() && up <= parent.size(); ++up) {  // bounded: no cycle loops
      auto it = queues.find(q);
      if (it == queues.end()) return;
      it->second.values[field] += v;
      q = parent[q];
    }
  };

  std::vector<SeriesValues> series;
  for (const auto& [id, j] : jobs_) {
    if (j.state == model::JobState::kPending) {
      ++cluster.values[cf::kPendingJobs];
      add_to_queues(j.spec.project, pf::kPendingJobs, 1);
      continue;
    }
    if (!model::HoldsResources(j.state)) continue;
    ++cluster.values[cf::kRunningJobs];
    add_to_queues(j.spec.project, pf::kRunningJobs, 1);
    SeriesValues job;
    job.kind = SeriesKind::kJob;
    job.job = id;
    for (const auto& w : j.placement) {
      auto n = nodes_.find(w.node);
      const int64_t held = static_cast<int64_t>(w.gpus.size()) * w.gpu_milli_each;
      job.values[jf::kAllocated] += held;
      if (auto s = nodes.find(w.node); s != nodes.end()) s->second.values[nf::kAllocated] += held;
      if (n == nodes_.end() || n->second.state == model::NodeState::kDown) continue;
      for (int g : w.gpus) {
        auto m = n->second.gpu_metrics.find(g);
        if (m == n->second.gpu_metrics.end() || m->second.utilization_pct < 0) continue;
        job.values[jf::kMeasured] += w.gpu_milli_each;
        job.values[jf::kBusy] += std::min(m->second.utilization_pct, 100) * w.gpu_milli_each / 100;
      }
    }
    if (job.values[jf::kAllocated] == 0) continue;  // CPU only: no GPU to chart
    cluster.values[cf::kAllocated] += job.values[jf::kAllocated];
    add_to_queues(j.spec.project, pf::kAllocated, job.values[jf::kAllocated]);
    add_to_queues(j.spec.project, pf::kMeasured, job.values[jf::kMeasured]);
    add_to_queues(j.spec.project, pf::kBusy, job.values[jf::kBusy]);
    series.push_back(std::move(job));
  }
  series.push_back(std::move(cluster));
  for (auto& [name, s] : queues) series.push_back(std::move(s));
  for (auto& [name, s] : nodes) series.push_back(std::move(s));
  return series;
}

void Controller::RecordHistory() {
  // History is not among the writes that must go on when the disk fills up.
  if (!no_space_.ok()) return;
  const int64_t now = Now();
  Status s = history_.Record(*store_, now, SampleHistory());
  if (!s.ok()) {
    // A lost sample leaves a gap in the charts, never a stop of scheduling.
    spdlog::error("history: cannot record the sample of {}: {}", now, s.message());
  }
}

}  // namespace herd::ctld
