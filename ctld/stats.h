// CtldStats: what herd-ctld counts for herd-web's /metrics (proto::StatsRequest) beyond its live
// state: histograms of scheduling cycles, event-loop lag and pending waits, evictions by kind and
// jobs submitted, all since this process started. Owned by Controller, which feeds it from its
// loop (Step, Schedule, submits); ctld/rpc/stats.cc reads it for StatsRequest.
// Thread-safety: not thread-safe (the controller's one thread).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>

#include "common/proto/messages.h"
#include "ctld/sched/scheduler.h"

namespace herd::ctld {

// Bucket bounds, each list the one place its buckets are named: they travel with the counts, so
// herd-web writes whatever they are.
inline constexpr int64_t kWaitBoundsS[] = {10,   30,    60,    300,   900,   1800,   3600,
                                           7200, 14400, 28800, 43200, 86400, 172800, 604800};
inline constexpr int64_t kCycleBoundsUs[] = {1000,    2500,    5000,    10000,  25000,
                                             50000,   100000,  250000,  500000, 1000000,
                                             2500000, 5000000, 10000000};
inline constexpr int64_t kLagBoundsUs[] = {1000,   5000,   10000,   25000,   50000,   100000,
                                           250000, 500000, 1000000, 5000000, 15000000};
// The most (project, class) pairs with a wait histogram: both come from herd.toml, so a real
// cluster stays far below; beyond it, waits of new pairs are not recorded.
inline constexpr size_t kMaxWaitSeries = 4096;

// Observations against fixed bounds (proto::Histogram's layout).
class HistogramCounter {
 public:
  explicit HistogramCounter(std::span<const int64_t> bounds);
  // Counts `value` (in the unit of the bounds) in its bucket and sum.
  void Observe(int64_t value);
  const proto::Histogram& data() const { return data_; }
  std::span<const int64_t> bounds() const { return bounds_; }

 private:
  std::span<const int64_t> bounds_;
  proto::Histogram data_;
};

struct CtldStats {
  int64_t start_time = 0;  // epoch seconds
  HistogramCounter cycles{kCycleBoundsUs};
  HistogramCounter loop_lag{kLagBoundsUs};
  std::map<std::pair<std::string, std::string>, HistogramCounter> waits;  // (project, class)
  std::map<sched::EvictionKind, proto::EvictionCount> evictions;
  int64_t submitted_jobs = 0;

  // A job of `project` and `job_class` started after waiting `wait_s` seconds.
  void NoteStart(const std::string& project, const std::string& job_class, int64_t wait_s);
  // A running job holding `gpu_milli` (thousandths of GPUs, all workers) was evicted after
  // running `run_s` seconds.
  void NoteEviction(sched::EvictionKind kind, int64_t gpu_milli, int64_t run_s);
};

}  // namespace herd::ctld
