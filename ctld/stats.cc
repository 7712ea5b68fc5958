// herd-ctld's numbers for herd-web's /metrics: live counts made at each request from the jobs and
// nodes in memory, and the histograms and counters CtldStats accumulates from the loop.
#include "ctld/stats.h"

#include <algorithm>
#include <tuple>

#include "ctld/controller.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

using model::JobState;

HistogramCounter::HistogramCounter(std::span<const int64_t> bounds) : bounds_(bounds) {
  data_.counts.assign(bounds.size() + 1, 0);
}

void HistogramCounter::Observe(int64_t value) {
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++data_.counts[bucket];
  data_.sum += value;
}

void CtldStats::NoteStart(const std::string& project, const std::string& job_class,
                          int64_t wait_s) {
  auto key = std::make_pair(project, job_class);
  auto it = waits.find(key);
  if (it == waits.end()) {
    if (waits.size() >= kMaxWaitSeries) return;
    it = waits.emplace(std::move(key), HistogramCounter(kWaitBoundsS)).first;
  }
  it->second.Observe(std::max<int64_t>(wait_s, 0));
}

void CtldStats::NoteEviction(sched::EvictionKind kind, int64_t gpu_milli, int64_t run_s) {
  proto::EvictionCount& e = evictions[kind];
  ++e.evictions;
  e.gpu_milli_seconds += gpu_milli * std::max<int64_t>(run_s, 0);
}

}  // namespace herd::ctld
