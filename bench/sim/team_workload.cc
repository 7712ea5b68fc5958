// The generator draws everything from one std::mt19937_64 (whose output the standard fixes) through
// its own inverse-CDF / Box-Muller conversions rather than std:: distributions, whose algorithms
// differ between standard libraries: the same seed gives the same month everywhere.
#include "bench/sim/team_workload.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "ctld/sched/snapshot_builder.h"

namespace herd::sim {
namespace {

constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 86400;

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double Uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double Uniform(double a, double b) { return a + (b - a) * Uniform(); }
  bool Chance(double p) { return Uniform() < p; }
  double Exp(double mean) { return -mean * std::log1p(-Uniform()); }
  double Normal() {
    double u = 1.0 - Uniform(), v = Uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * M_PI * v);
  }
  double LogNormal(double median, double sigma) { return median * std::exp(sigma * Normal()); }
  int Poisson(double mean) {  // Knuth; the means here are small
    double limit = std::exp(-mean), p = Uniform();
    int k = 0;
    while (p > limit) p *= Uniform(), ++k;
    return k;
  }
  int Below(int n) { return static_cast<int>(Uniform() * n); }

 private:
  std::mt19937_64 gen_;
};

sched::NodeView MakeNode(const std::string& name, int gpus, const std::string& model, int64_t gpu_mib,
                         int numa_nodes, int cores_per_numa, int64_t memory_mib) {
  sched::NodeFacts v;
  v.name = name;
  for (int g = 0; g < gpus; ++g) {
    int numa = g * numa_nodes / gpus;
    v.gpus.push_back({g, gpu_mib, numa, numa_nodes > 1 ? g / 2 : -1, model});
  }
  for (int n = 0; n < numa_nodes; ++n) {
    std::vector<int>& cores = v.cores_by_numa[n];
    for (int c = 0; c < cores_per_numa; ++c) cores.push_back(n * cores_per_numa + c);
  }
  v.memory_mib = memory_mib;
  return sched::FreeNode(v);
}

// Relative train / sweep arrival rate in hour `h` of the month for members of a project whose
// deadline is `deadline` (a day), normalized so an ordinary week averages 1.
double RateAt(const TeamParams& p, int64_t h, int deadline) {
  const double week = (50 * p.weekday_day_rate + 70 * p.weekday_night_rate + 48 * p.weekend_rate) / 168;
  const int day = static_cast<int>(h / 24), hour = static_cast<int>(h % 24);
  double r = day % 7 >= 5 ? p.weekend_rate
             : hour >= 9 && hour < 19 ? p.weekday_day_rate
                                      : p.weekday_night_rate;
  r /= week;
  if (day < deadline && day >= deadline - p.deadline_before_days) r *= p.deadline_boost;
  if (day >= deadline && day < deadline + p.deadline_after_days) r *= p.deadline_after;
  return r;
}

// Activity of a session of `length` seconds that starts at `start` (absolute): bursts separated by
// exponential gaps, with the lunch break cut out.
std::vector<Burst> Bursts(Rng& rng, const TeamParams& p, int64_t start, int64_t length) {
  std::vector<Burst> out;
  const int64_t day = start / kDay * kDay;
  const int64_t lunch0 = day + 12 * kHour + static_cast<int64_t>(rng.Uniform(0, 1800)) - start;
  const int64_t lunch1 = lunch0 + static_cast<int64_t>(60 * p.lunch_min * rng.Uniform(1.0, 1.5));
  int64_t t = 0;
  while (t < length) {
    int64_t end = std::min(length, t + std::max<int64_t>(60, std::llround(60 * rng.Exp(p.burst_mean_min))));
    // Clip against lunch: keep the parts before and after it.
    if (end > lunch0 && t < lunch1) {
      if (t < lunch0) out.push_back({t, lunch0});
      if (end > lunch1) out.push_back({lunch1, end});
    } else {
      out.push_back({t, end});
    }
    t = end + std::max<int64_t>(1, std::llround(60 * rng.Exp(p.gap_mean_min)));
  }
  return out;
}

Status Check(const TeamParams& p) {
  if (p.days < 1) return Invalid("days must be at least 1");
  if (p.projects.empty()) return Invalid("the team needs at least one project");
  for (const auto& [name, n] : p.projects) {
    if (n < 1) return Invalid("project " + name + " needs at least one researcher");
  }
  if (p.a100_servers < 0 || p.workstations < 0 || p.a100_servers + p.workstations == 0) {
    return Invalid("the cluster needs at least one server or workstation");
  }
  if (p.load < 0) return Invalid("load must not be negative");
  if (p.sweep_min < 1 || p.sweep_max < p.sweep_min) return Invalid("need 1 <= sweep_min <= sweep_max");
  if (!(p.think_median_min > 0) || p.think_sigma < 0) {
    return Invalid("think time needs a positive median and a non-negative sigma");
  }
  return Status::Ok();
}

TeamJob MakeJob(const TeamParams& p, int user, JobKind kind, int64_t submit, int g, int64_t work,
                double busy) {
  TeamJob j;
  j.user = user;
  j.kind = kind;
  j.submit = submit;
  j.gpus = g;
  j.cpus = p.cpus_per_gpu * g;
  j.memory_mib = p.memory_mib_per_gpu * g;
  j.work_s = work;
  j.busy = busy;
  return j;
}

// A training job's shape, drawn as the open model draws it.
void DrawTrain(Rng& rng, const TeamParams& p, int* gpus, int64_t* work_s, double* busy) {
  double x = rng.Uniform();
  *gpus = x < p.train_gpus_p[0] ? 1 : x < p.train_gpus_p[0] + p.train_gpus_p[1] ? 2 : 4;
  double hours = std::clamp(rng.LogNormal(p.train_median_h, p.train_sigma), 0.5, 96.0);
  *work_s = std::llround(hours * kHour);
  *busy = rng.Uniform(p.train_busy_min, p.train_busy_max);
}

int DrawSweepSize(Rng& rng, const TeamParams& p) {
  return p.sweep_min + rng.Below(p.sweep_max - p.sweep_min + 1);
}

int64_t DrawSweepWork(Rng& rng, const TeamParams& p) {
  return std::llround(std::clamp(rng.LogNormal(p.sweep_median_min, p.sweep_sigma), 5.0, 240.0) *
                      60);
}

// Closed demand: researcher `u`'s experiments, from a generator of their own
// (seeded by the workload's seed and `u`), so that a researcher's sequence does
// not depend on the others'.
std::vector<Experiment> ClosedExperiments(const TeamParams& p, const Researcher& r, int u,
                                          int64_t* sweeps) {
  std::vector<Experiment> out;
  const double rate = p.load * r.activity;
  if (!(rate > 0)) return out;
  Rng rng(p.seed * 0x9E3779B97F4A7C15ULL + 0x5EED0000ULL + static_cast<uint64_t>(u));
  const double sweep_p =
      p.sweeps_per_week / std::max(1e-9, p.sweeps_per_week + 7 * p.train_per_day);
  auto job = [&](JobKind kind, int g, int64_t work, double busy) {
    return MakeJob(p, u, kind, 0, g, work, busy);
  };
  const int64_t month = int64_t{p.days} * kDay;
  for (int64_t span = 0; span < month;) {
    Experiment e;
    const double think_min = rng.LogNormal(p.think_median_min, p.think_sigma) / rate;
    e.think_s = std::llround(std::clamp(think_min, 1.0, 7.0 * 24 * 60) * 60);
    int64_t longest = 0;
    if (rng.Chance(sweep_p)) {
      ++*sweeps;
      for (int m = DrawSweepSize(rng, p); m > 0; --m) {
        e.jobs.push_back(job(JobKind::kSweep, 1, DrawSweepWork(rng, p), p.sweep_busy));
        e.jobs.back().sweep = *sweeps;
        longest = std::max(longest, e.jobs.back().work_s);
      }
    } else {
      int g = 1;
      int64_t work = 0;
      double busy = 0;
      DrawTrain(rng, p, &g, &work, &busy);
      e.jobs.push_back(job(JobKind::kTrain, g, work, busy));
      longest = work;
    }
    span += e.think_s + longest;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

const char* DemandName(Demand d) { return d == Demand::kClosed ? "closed" : "open"; }

int64_t ThinkUntil(const TeamParams& p, int64_t at, int64_t think_s) {
  if (!p.think_office_hours) return at + think_s;
  int64_t t = at, left = think_s;
  for (;;) {
    const int64_t day = t / kDay, open = day * kDay + 9 * kHour, close = day * kDay + 19 * kHour;
    if (day % 7 >= 5 || t >= close) {
      t = (day + 1) * kDay;
      continue;
    }
    t = std::max(t, open);
    const int64_t run = std::min(left, close - t);
    t += run;
    left -= run;
    if (left == 0) return t;
  }
}

const char* KindName(JobKind k) {
  switch (k) {
    case JobKind::kSession: return "session";
    case JobKind::kTrain: return "train";
    case JobKind::kSweep: return "sweep";
  }
  return "?";
}

int64_t TeamWorkload::Gpus() const {
  int64_t n = 0;
  for (const auto& v : nodes) n += static_cast<int64_t>(v.gpus.size());
  return n;
}

Result<TeamWorkload> MakeTeamWorkload(const TeamParams& p) {
  HERD_RETURN_IF_ERROR(Check(p));
  TeamWorkload w;
  w.params = p;
  char name[32];
  for (int i = 0; i < p.a100_servers; ++i) {
    std::snprintf(name, sizeof name, "a100-%02d", i + 1);
    w.nodes.push_back(MakeNode(name, 8, "NVIDIA A100-SXM4-40GB", 40960, 8, 16, 1024 * 1024));
  }
  for (int i = 0; i < p.workstations; ++i) {
    std::snprintf(name, sizeof name, "ws-%02d", i + 1);
    w.nodes.push_back(MakeNode(name, 4, "NVIDIA RTX A6000", 49152, 1, 16, 128 * 1024));
  }
  const int team = std::accumulate(p.projects.begin(), p.projects.end(), 0,
                                   [](int n, const auto& pr) { return n + pr.second; });
  const int64_t gpus = w.Gpus();
  if (gpus % team != 0) {
    return Invalid("the cluster's " + std::to_string(gpus) + " GPUs do not divide into " +
                   std::to_string(team) + " equal static shares; change the servers or the team");
  }
  const int share = static_cast<int>(gpus / team);
  for (const auto& v : w.nodes) {
    if (v.gpus.size() % share != 0) {
      return Invalid("a static share of " + std::to_string(share) + " GPUs does not divide node " +
                     v.name + "'s " + std::to_string(v.gpus.size()) + " GPUs");
    }
  }

  Rng rng(p.seed);
  // Projects' deserved quotas: GPUs in proportion to members, largest remainders first.
  std::vector<std::pair<double, size_t>> rest;
  int64_t given = 0;
  for (size_t i = 0; i < p.projects.size(); ++i) {
    double exact = static_cast<double>(gpus) * p.projects[i].second / team;
    w.projects.push_back({p.projects[i].first, static_cast<int64_t>(exact)});
    given += w.projects.back().deserved_gpus;
    rest.emplace_back(exact - std::floor(exact), i);
  }
  std::sort(rest.begin(), rest.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < gpus; ++k, ++given) w.projects[rest[k % rest.size()].second].deserved_gpus++;

  // Researchers, their activity (mean 1) and their static share (blocks dealt in a random order).
  double activity_sum = 0;
  for (size_t pr = 0; pr < p.projects.size(); ++pr) {
    for (int m = 0; m < p.projects[pr].second; ++m) {
      Researcher r;
      std::snprintf(name, sizeof name, "r%02zu", w.researchers.size() + 1);
      r.name = name;
      r.project = static_cast<int>(pr);
      r.activity = std::exp(p.activity_sigma * rng.Normal());
      activity_sum += r.activity;
      w.researchers.push_back(r);
    }
  }
  std::vector<int> blocks(team);
  std::iota(blocks.begin(), blocks.end(), 0);
  for (int i = team - 1; i > 0; --i) std::swap(blocks[i], blocks[rng.Below(i + 1)]);
  for (int i = 0; i < team; ++i) {
    Researcher& r = w.researchers[i];
    r.activity *= team / activity_sum;
    int b = blocks[i] * share;  // the block's first GPU, counting the cluster's GPUs in node order
    size_t n = 0;
    while (b >= static_cast<int>(w.nodes[n].gpus.size())) b -= static_cast<int>(w.nodes[n++].gpus.size());
    const sched::NodeView& v = w.nodes[n];
    const int parts = static_cast<int>(v.gpus.size()) / share;
    r.node = static_cast<int>(n);
    r.first_gpu = b;
    r.gpus = share;
    r.cores = v.total_cores / parts;
    r.first_core = b / share * r.cores;
    r.memory_mib = v.memory_mib / parts;
  }
  for (size_t i = 0; i < w.projects.size(); ++i) {
    w.deadline_day.push_back(p.deadline_first_day +
                             rng.Below(std::max(1, p.days - p.deadline_first_day)));
  }

  auto add = [&](int user, JobKind kind, int64_t submit, int g, int64_t work, double busy) -> TeamJob& {
    w.jobs.push_back(MakeJob(p, user, kind, submit, g, work, busy));
    return w.jobs.back();
  };
  auto session = [&](int user, int64_t start, int64_t length) {
    if (length < kHour) return;
    TeamJob& j = add(user, JobKind::kSession, start, rng.Chance(p.session_two_gpu_p) ? 2 : 1, length,
                     p.burst_busy);
    j.forgotten = rng.Chance(p.session_forgotten_p);
    j.bursts = Bursts(rng, p, start, length);
  };
  for (int u = 0; u < team; ++u) {
    const Researcher& r = w.researchers[u];
    for (int d = 0; d < p.days; ++d) {
      const int64_t day = d * kDay;
      if (d % 7 < 5) {
        const int64_t leave = day + 17 * kHour + 1800 + static_cast<int64_t>(rng.Uniform(0, 2 * kHour));
        if (rng.Chance(p.session_weekday_p)) {
          int64_t start = day + 9 * kHour + static_cast<int64_t>(rng.Uniform(0, 2.5 * kHour));
          session(u, start, leave - start);
        }
        if (rng.Chance(p.session_afternoon_p)) {
          int64_t start = day + 13 * kHour + 1800 + static_cast<int64_t>(rng.Uniform(0, 2 * kHour));
          session(u, start, leave - start);
        }
      } else if (rng.Chance(p.session_weekend_p)) {
        session(u, day + 11 * kHour + static_cast<int64_t>(rng.Uniform(0, 4 * kHour)),
                static_cast<int64_t>(rng.Uniform(2 * kHour, 5 * kHour)));
      }
    }
    const int deadline = w.deadline_day[r.project];
    for (int64_t h = 0; h < int64_t{p.days} * 24; ++h) {
      const double rate = p.load * r.activity * RateAt(p, h, deadline);
      for (int k = rng.Poisson(rate * p.train_per_day / 24); k > 0; --k) {
        int g = 1;
        int64_t work = 0;
        double busy = 0;
        DrawTrain(rng, p, &g, &work, &busy);
        add(u, JobKind::kTrain, h * kHour + static_cast<int64_t>(rng.Uniform(0, kHour)), g, work,
            busy);
      }
      for (int k = rng.Poisson(rate * p.sweeps_per_week / 168); k > 0; --k) {
        const int64_t submit = h * kHour + static_cast<int64_t>(rng.Uniform(0, kHour));
        for (int m = DrawSweepSize(rng, p); m > 0; --m) {
          add(u, JobKind::kSweep, submit, 1, DrawSweepWork(rng, p), p.sweep_busy);
        }
      }
    }
  }
  // Closed demand: the sessions drawn above stay (the same in both models; the
  // open arrivals are drawn and dropped so that they are), the experiments come
  // from each researcher's sequence.
  if (p.demand == Demand::kClosed) {
    std::erase_if(w.jobs, [](const TeamJob& j) { return j.kind != JobKind::kSession; });
    int64_t sweeps = 0, experiments = 0;
    for (int u = 0; u < team; ++u) {
      w.experiments.push_back(ClosedExperiments(p, w.researchers[u], u, &sweeps));
      for (Experiment& e : w.experiments.back()) {
        ++experiments;
        for (TeamJob& j : e.jobs) j.experiment = experiments;
      }
    }
  }
  std::stable_sort(w.jobs.begin(), w.jobs.end(),
                   [](const TeamJob& a, const TeamJob& b) { return a.submit < b.submit; });
  // Ids in submit order; members of one sweep (adjacent: same user, same
  // submit) share a number and an experiment.
  int64_t sweeps = 0, experiments = 0;
  for (size_t i = 0; i < w.jobs.size(); ++i) {
    TeamJob& j = w.jobs[i];
    j.id = static_cast<int64_t>(i) + 1;
    if (j.kind == JobKind::kTrain) j.experiment = ++experiments;
    if (j.kind != JobKind::kSweep) continue;
    const TeamJob* prev = i > 0 ? &w.jobs[i - 1] : nullptr;
    bool same = prev != nullptr && prev->kind == JobKind::kSweep && prev->user == j.user &&
                prev->submit == j.submit;
    j.sweep = same ? prev->sweep : ++sweeps;
    j.experiment = same ? prev->experiment : ++experiments;
  }
  return w;
}

}  // namespace herd::sim
