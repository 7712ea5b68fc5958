// A synthetic month of a research team's GPU demand: the cluster (synthetic
// NodeViews shaped like etc/topologies/dgx-a100-8gpu.xml and
// workstation-4gpu.xml), researchers grouped in projects, each researcher's
// static share of GPUs, and every job they submit (interactive sessions,
// training jobs, sweeps of short jobs). Deterministic from TeamParams, seed
// included: equal params, equal workload. Two demand models for experiments (a
// training job, or a sweep as a whole):
//   open:   experiments arrive at drawn times whatever the cluster does
//   (TeamWorkload::jobs); closed: each researcher has one experiment in flight
//   at a time and submits the next one when
//           the previous one has returned (all its jobs done), after a think
//           time. Submit times depend on the cluster, so the workload holds
//           each researcher's sequence of experiments and think times
//           (TeamWorkload::experiments); the simulator sets the times.
// Sessions are the same in both models (in TeamWorkload::jobs).
// Built by utilization_bench (bench/README.md) and tests/bench.
// Thread-safety: plain values; MakeTeamWorkload() has no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/util/status.h"
#include "ctld/sched/snapshot.h"

namespace herd::sim {

enum class JobKind { kSession, kTrain, kSweep };
enum class Demand { kOpen, kClosed };
const char* DemandName(Demand d);  // "open", "closed"

inline constexpr int kJobKinds = 3;
const char* KindName(JobKind k);  // "session", "train", "sweep"

// A stretch of GPU activity of a session, [begin, end) in seconds from the session's start.
struct Burst {
  int64_t begin = 0;
  int64_t end = 0;
};

// One job as its researcher submits it. Every job has one worker of whole GPUs.
struct TeamJob {
  int64_t id = 0;  // 1, 2, ... in submit order
  int user = 0;    // index into TeamWorkload::researchers
  JobKind kind = JobKind::kTrain;
  int64_t submit = 0;  // seconds from the start of the month
  int gpus = 1;
  int64_t cpus = 1;
  int64_t memory_mib = 1024;
  // train / sweep: GPU run time the job needs; session: how long the researcher keeps it open
  // (from its start) unless `forgotten`.
  int64_t work_s = 0;
  // train / sweep: fraction of time its GPUs are busy while it runs; session: GPU busy fraction
  // during a burst (0 % between bursts).
  double busy = 0;
  std::vector<Burst> bursts;  // sessions only, ascending, inside [0, work_s)
  bool forgotten = false;     // session left open at the end of the day: held until max_time
  int64_t sweep = 0;          // sweeps: the sweep's number (1, 2, ...); 0 otherwise
  // train / sweep: the experiment it belongs to (1, 2, ...; a sweep's jobs
  // share one); 0 for sessions. Numbered in submit order (open) or researcher
  // by researcher (closed).
  int64_t experiment = 0;
};

// Closed demand: one experiment of a researcher's sequence. Its jobs' `submit`
// is 0: the simulator submits them `think_s` of thinking time (see
// TeamParams::think_office_hours) after the previous experiment returned (the
// first: after `think_s` from the start of the month).
struct Experiment {
  int64_t think_s = 0;
  std::vector<TeamJob> jobs;  // one training job, or the sweep's jobs
};

struct Project {
  std::string name;
  int64_t deserved_gpus = 0;  // herd mode: the project's guaranteed quota (they sum to the cluster)
};

struct Researcher {
  std::string name;     // "r01" ...
  int project = 0;      // index into TeamWorkload::projects
  double activity = 1;  // demand multiplier (mean 1 over the team)
  // Static mode: the GPUs the researcher owns, [first_gpu, first_gpu + gpus) of node `node`, with
  // the same fraction of its cores and memory (cores [first_core, first_core + cores)).
  int node = 0;  // index into TeamWorkload::nodes
  int first_gpu = 0;
  int gpus = 0;
  int first_core = 0;
  int cores = 0;
  int64_t memory_mib = 0;
};

// Every knob of the workload; bench/results/utilization.md lists them all.
struct TeamParams {
  uint64_t seed = 1;
  int days = 30;  // day 0 is a Monday
  std::vector<std::pair<std::string, int>> projects = {
      {"vision", 9}, {"nlp", 8}, {"speech", 7}, {"robotics", 6}};  // name, researchers
  int a100_servers = 10;  // 8x NVIDIA A100-SXM4-40GB, 128 cores (8 NUMA x 16), 1 TiB
  int workstations = 10;  // 4x NVIDIA RTX A6000, 16 cores, 128 GiB
  double activity_sigma = 1.0;  // researchers' demand multipliers: lognormal(0, sigma), mean 1
  double load = 1;              // multiplies the train and sweep arrival rates below

  // Interactive / build sessions.
  double session_weekday_p = 0.8;      // a researcher opens a morning session on a weekday
  double session_afternoon_p = 0.3;    // ... and a second one in the afternoon
  double session_weekend_p = 0.1;      // a session on a weekend day
  double session_two_gpu_p = 0.2;      // 2 GPUs instead of 1
  double session_forgotten_p = 0.35;   // left open at the end of the day
  double burst_mean_min = 5;           // active stretch, exponential mean (min 1 min)
  double gap_mean_min = 15;            // idle stretch between bursts, exponential mean
  double burst_busy = 0.4;             // GPU busy during a burst
  int64_t lunch_min = 45;              // a lunch gap of lunch_min .. 1.5 x lunch_min at noon

  // Training jobs: arrivals per researcher per day (week average, activity 1), 1/2/4 GPUs.
  double train_per_day = 2.4;
  double train_gpus_p[3] = {0.4, 0.3, 0.3};  // 1, 2, 4 GPUs
  double train_median_h = 6;
  double train_sigma = 1.0;  // lognormal, clipped to [0.5 h, 4 days]
  double train_busy_min = 0.8, train_busy_max = 0.97;

  // Sweeps: arrivals per researcher per week (activity 1); each sweep is `sweep_min`..`sweep_max`
  // one-GPU jobs submitted at once.
  double sweeps_per_week = 3.5;
  int sweep_min = 10, sweep_max = 60;
  double sweep_median_min = 40;
  double sweep_sigma = 0.5;  // lognormal, clipped to [5 min, 4 h]
  double sweep_busy = 0.85;

  // Burstiness of train / sweep arrivals: relative rate by time of week (normalized to a mean of
  // 1 over the week), and each project's deadline (a day drawn in [deadline_first_day, days)).
  double weekday_day_rate = 3, weekday_night_rate = 0.6, weekend_rate = 0.4;  // day = 9:00-19:00
  int deadline_first_day = 8;
  int deadline_before_days = 7;   // rate x deadline_boost in the days before the deadline
  double deadline_boost = 2.5;
  int deadline_after_days = 3;    // rate x deadline_after in the days after it
  double deadline_after = 0.4;

  // Demand model of training jobs and sweeps (sessions are the same in both).
  // Closed: a researcher draws the next experiment as a sweep with probability
  // sweeps_per_week / (sweeps_per_week + 7 x train_per_day) (the open model's
  // mix), else a training job, shaped as above; the think time before it is
  // lognormal (median think_median_min, sigma think_sigma) divided by load x
  // the researcher's activity, and clipped to [1 min, 7 days]. With
  // think_office_hours it counts only weekday hours 9:00-19:00 (a result that
  // returns at night is looked at the next working morning); otherwise it runs
  // round the clock.
  Demand demand = Demand::kOpen;
  double think_median_min = 60;
  double think_sigma = 1.0;
  bool think_office_hours = true;

  int64_t cpus_per_gpu = 4;
  int64_t memory_mib_per_gpu = 24 * 1024;
};

struct TeamWorkload {
  TeamParams params;
  std::vector<sched::NodeView> nodes;  // the whole cluster, all free
  std::vector<Project> projects;
  std::vector<Researcher> researchers;
  std::vector<int> deadline_day;  // per project
  std::vector<TeamJob> jobs;      // by submit time, then id (closed demand: sessions only)
  // Closed demand: per researcher, the experiments in the order they submit
  // them, enough to outlast the month (their think times and longest jobs' work
  // alone add up to more than it).
  std::vector<std::vector<Experiment>> experiments;
  int64_t Gpus() const;
  int64_t DurationS() const { return int64_t{params.days} * 86400; }
};

// Builds the workload. Invalid when the cluster's GPUs cannot be divided into equal per-researcher
// shares that each lie inside one node, or a parameter is out of range.
Result<TeamWorkload> MakeTeamWorkload(const TeamParams& params);

// Closed demand: the moment a researcher whose experiment returned at `at`
// submits the next one after `think_s` of thinking (office hours only, if
// p.think_office_hours).
int64_t ThinkUntil(const TeamParams& p, int64_t at, int64_t think_s);

}  // namespace herd::sim
