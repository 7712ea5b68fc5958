#include "web/metrics.h"

#include <cstdlib>
#include <map>
#include <span>
#include <utility>
#include <vector>

namespace herd::web {

std::string Scaled(int64_t value, int64_t scale) {
  std::string out = value < 0 ? "-" : "";
  const uint64_t v = value < 0 ? -static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  const uint64_t s = static_cast<uint64_t>(scale);
  out += std::to_string(v / s);
  uint64_t rest = v % s;
  if (rest == 0) return out;
  out += '.';
  for (uint64_t unit = s / 10; unit > 0 && rest > 0; unit /= 10) {
    out += static_cast<char>('0' + rest / unit);
    rest %= unit;
  }
  return out;
}

std::string EscapeLabel(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

using Labels = std::vector<std::pair<const char*, std::string>>;

// Appends metric families to one text, each family's samples right after its HELP and TYPE.
class Writer {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void Sample(std::string_view name, const Labels& labels, const std::string& value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) out_ += ',';
        out_ += labels[i].first;
        out_ += "=\"";
        out_ += EscapeLabel(labels[i].second);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  // A histogram's _bucket (cumulative, ending with +Inf), _sum and _count samples; `scale` turns
  // the unit of the bounds into the metric's (1000000 for microseconds to seconds).
  void Histogram(const std::string& name, const Labels& labels, std::span<const int64_t> bounds,
                 const proto::Histogram& h, int64_t scale) {
    int64_t cumulative = 0;
    Labels with_le = labels;
    with_le.emplace_back("le", "");
    for (size_t i = 0; i <= bounds.size(); ++i) {
      cumulative += i < h.counts.size() ? h.counts[i] : 0;
      with_le.back().second = i < bounds.size() ? Scaled(bounds[i], scale) : "+Inf";
      Sample(name + "_bucket", with_le, std::to_string(cumulative));
    }
    Sample(name + "_sum", labels, Scaled(h.sum, scale));
    Sample(name + "_count", labels, std::to_string(cumulative));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

void Jobs(Writer& w, const proto::StatsReply& s) {
  w.Family("herd_jobs", "gauge", "Jobs herd-ctld holds, by state, project and class.");
  for (const auto& j : s.jobs) {
    w.Sample("herd_jobs", {{"state", j.state}, {"project", j.project}, {"class", j.job_class}},
             std::to_string(j.jobs));
  }
  w.Family("herd_jobs_submitted_total", "counter",
           "Jobs submitted since herd-ctld started (each array member and sweep point).");
  w.Sample("herd_jobs_submitted_total", {}, std::to_string(s.submitted_jobs));
  w.Family("herd_job_wait_seconds", "histogram",
           "Time from submit (or requeue) to start of the jobs that started, by project and "
           "class.");
  for (const auto& h : s.waits) {
    w.Histogram("herd_job_wait_seconds", {{"project", h.project}, {"class", h.job_class}},
                s.wait_bounds_s, h.waits, 1);
  }
}

void Gpus(Writer& w, const proto::StatsReply& s) {
  struct Family {
    const char* name;
    const char* help;
    int64_t (*value)(const proto::GpuUse&);
    bool per_project;
  };
  static const Family kFamilies[] = {
      {"herd_node_gpus", "GPUs of a node, by GPU type.",
       [](const proto::GpuUse& g) { return g.gpus * 1000; }, false},
      {"herd_node_gpus_allocated", "GPUs of a node held by running jobs, by GPU type.",
       [](const proto::GpuUse& g) { return g.allocated_milli; }, false},
      {"herd_node_gpus_idle", "GPUs of a node no job holds, by GPU type.",
       [](const proto::GpuUse& g) { return g.gpus * 1000 - g.allocated_milli; }, false},
      {"herd_node_gpus_busy",
       "GPUs of a node weighted by their latest utilization (0.5 = one GPU half busy), by GPU "
       "type.",
       [](const proto::GpuUse& g) { return g.busy_milli; }, false},
      {"herd_project_gpus_allocated", "GPUs held by a project's running jobs, by node and type.",
       [](const proto::GpuUse& g) { return g.allocated_milli; }, true},
      {"herd_project_gpus_busy",
       "GPUs held by a project's running jobs weighted by their latest utilization, by node and "
       "type.",
       [](const proto::GpuUse& g) { return g.busy_milli; }, true},
  };
  for (const Family& f : kFamilies) {
    w.Family(f.name, "gauge", f.help);
    for (const auto& g : s.gpus) {
      if (g.project.empty() == f.per_project) continue;
      Labels labels = {{"node", g.node}, {"gpu_type", g.gpu_type}};
      if (f.per_project) labels.emplace_back("project", g.project);
      w.Sample(f.name, labels, Scaled(f.value(g), 1000));
    }
  }
}

void Queues(Writer& w, const proto::ProjectsReply& q) {
  struct Family {
    const char* name;
    const char* help;
    model::Resources proto::ProjectStatus::*field;
  };
  static const Family kFamilies[] = {
      {"herd_queue_gpus_deserved", "GPUs guaranteed to a queue (project or department).",
       &proto::ProjectStatus::deserved},
      {"herd_queue_gpus_fair_share",
       "A queue's deserved GPUs plus its share of idle ones, as the last cycle computed.",
       &proto::ProjectStatus::fair_share},
      {"herd_queue_gpus_allocated", "GPUs held by a queue's running jobs.",
       &proto::ProjectStatus::allocated},
      {"herd_queue_gpus_pending", "GPUs asked for by a queue's pending jobs.",
       &proto::ProjectStatus::pending_demand},
      {"herd_queue_gpus_limit", "Most GPUs a queue may hold (queues with a GPU limit only).",
       &proto::ProjectStatus::limit},
  };
  for (const Family& f : kFamilies) {
    w.Family(f.name, "gauge", f.help);
    for (const auto& p : q.projects) {
      const int64_t milli = (p.*f.field).gpu_milli;
      if (milli < 0) continue;  // an unlimited limit
      w.Sample(f.name, {{"queue", p.name}, {"kind", p.is_project ? "project" : "department"}},
               Scaled(milli, 1000));
    }
  }
}

void Nodes(Writer& w, const proto::StatsReply& s) {
  std::map<std::string, int64_t> by_state = {{"UP", 0}, {"DOWN", 0}, {"DRAIN", 0}};
  for (const auto& n : s.nodes) ++by_state[n.state];
  w.Family("herd_nodes", "gauge", "Nodes by state (UP, DOWN, DRAIN).");
  for (const auto& [state, n] : by_state)
    w.Sample("herd_nodes", {{"state", state}}, std::to_string(n));
  w.Family("herd_node_state", "gauge", "1 for each node, labelled with its state.");
  for (const auto& n : s.nodes)
    w.Sample("herd_node_state", {{"node", n.node}, {"state", n.state}}, "1");
}

void Controller(Writer& w, const proto::StatsReply& s) {
  w.Family("herd_scheduling_cycle_duration_seconds", "histogram",
           "Time herd-ctld spent in each scheduling cycle.");
  w.Histogram("herd_scheduling_cycle_duration_seconds", {}, s.cycle_bounds_us, s.cycles, 1000000);
  w.Family("herd_evictions_total", "counter",
           "Running jobs evicted by the scheduler, by kind (reclaim, preempt, consolidate).");
  for (const auto& e : s.evictions) {
    w.Sample("herd_evictions_total", {{"kind", e.kind}}, std::to_string(e.evictions));
  }
  w.Family(
      "herd_evicted_gpu_seconds_total", "counter",
      "GPU-seconds evicted jobs had run since their start (/ 3600: GPU-hours): work lost unless "
      "they checkpoint.");
  for (const auto& e : s.evictions) {
    w.Sample("herd_evicted_gpu_seconds_total", {{"kind", e.kind}},
             Scaled(e.gpu_milli_seconds, 1000));
  }
  w.Family("herd_ctld_start_time_seconds", "gauge", "When herd-ctld started, in Unix time.");
  w.Sample("herd_ctld_start_time_seconds", {}, std::to_string(s.start_time));
  w.Family("herd_ctld_resident_memory_bytes", "gauge", "herd-ctld's resident memory.");
  w.Sample("herd_ctld_resident_memory_bytes", {}, std::to_string(s.rss_bytes));
  w.Family("herd_ctld_event_loop_lag_seconds", "histogram",
           "How late herd-ctld's event loop came back to wait for messages (handling, cycles, a "
           "slow disk).");
  w.Histogram("herd_ctld_event_loop_lag_seconds", {}, s.lag_bounds_us, s.loop_lag, 1000000);
}

}  // namespace

std::string FormatMetrics(const Scrape& scrape) {
  Writer w;
  w.Family("herd_ctld_up", "gauge", "1 when herd-ctld answered this scrape, else 0.");
  w.Sample("herd_ctld_up", {}, scrape.up ? "1" : "0");
  if (scrape.up) {
    Jobs(w, scrape.stats);
    Gpus(w, scrape.stats);
    Queues(w, scrape.queues);
    Nodes(w, scrape.stats);
    Controller(w, scrape.stats);
  }
  return w.Take();
}

}  // namespace herd::web
