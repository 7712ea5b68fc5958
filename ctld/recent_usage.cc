// Each queue's recent GPU use for time-decayed fair share ([scheduler] fair_share_half_life): kept
// in memory, grown by each cycle with what the queues held since the one before, decayed, and
// written to the store once a minute so that a restart resumes it (less the decay of the time
// herd-ctld was down, when nothing was counted).
#include "ctld/controller.h"
#include "ctld/sched/usage.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

Status Controller::RecoverUsage() {
  usage_.clear();
  usage_as_of_ = usage_saved_ = Now();
  const int64_t half_life = config_.scheduler.fair_share_half_life_s;
  if (half_life <= 0) return Status::Ok();
  auto stored = store_->LoadQueueUsage();
  if (!stored.ok()) return stored.status();
  for (const auto& [queue, u] : *stored) {
    usage_[queue] = sched::DecayUsage(u.gpu_seconds, 0, Now() - u.as_of, half_life);
  }
  return Status::Ok();
}

void Controller::AccumulateUsage() {
  const int64_t now = Now();
  const int64_t half_life = config_.scheduler.fair_share_half_life_s;
  // The GPUs each queue held during the last cycle's interval: what that cycle allocated
  // (a department's is its subtree's).
  std::map<std::string, double> held;
  for (const auto& s : shares_) {
    held[s.name] = static_cast<double>(std::max<int64_t>(s.allocated.gpu_milli, 0)) / 1000;
  }
  if (half_life <= 0) {
    usage_.clear();
  } else {
    for (const auto& q : config_.queues) {
      double& u = usage_[q.name];
      u = sched::DecayUsage(u, held[q.name], now - usage_as_of_, half_life);
    }
  }
  // A clock set back counts nothing, and the next interval starts from the new time.
  usage_as_of_ = now;
  if (now - usage_saved_ < kUsageSaveInterval_s || !no_space_.ok()) return;
  usage_saved_ = now;
  // Only configured queues are written: a queue removed from herd.toml drops its usage.
  std::map<std::string, double> keep;
  for (const auto& q : config_.queues) {
    if (auto it = usage_.find(q.name); it != usage_.end()) keep.emplace(q.name, it->second);
  }
  Status s = store_->SaveQueueUsage(keep, now);
  if (!s.ok()) {
    // Lost, the minute's usage costs a restart that minute of fair-share memory, nothing more.
    spdlog::error("fair share: cannot record the queues' recent usage: {}", s.message());
  }
}

double Controller::UsageOf(const std::string& queue) const {
  auto it = usage_.find(queue);
  return it == usage_.end() ? 0 : it->second;
}

}  // namespace herd::ctld
