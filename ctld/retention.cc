// Jobs beyond memory: finished jobs leave herd-ctld's memory after [controller]
// min_job_age and are read back from the store when a request names them;
// records older than job_retention are deleted a batch at a time, their
// accounting kept as daily totals. No job's environment and batch script are
// kept in memory at all: they are read from the store when needed.
#include "ctld/controller.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

using model::Job;

namespace {

// Job records deleted per cycle: small enough that the cycle's transaction
// stays short (a few milliseconds), enough to keep up with far more jobs a day
// than one controller runs.
constexpr int64_t kPruneBatch = 256;

}  // namespace

const Job *Controller::FindJob(model::JobId id) const {
  if (auto it = jobs_.find(id); it != jobs_.end()) return &it->second;
  if (auto it = recalled_.find(id); it != recalled_.end()) return &it->second;
  auto stored = store_->GetJob(id);
  if (!stored.ok()) {
    spdlog::error("reading job {} from the store: {}", id, stored.status().message());
    return nullptr;
  }
  if (!stored->has_value()) return nullptr;
  return &recalled_.try_emplace(id, std::move(**stored)).first->second;
}

Status Controller::LoadEnvironment(Job *job) const {
  auto stored = store_->GetJobEnvironment(job->id);
  if (!stored.ok()) return stored.status();
  job->spec.env = std::move(stored->env);
  job->spec.script = std::move(stored->script);
  return Status::Ok();
}

Job *Controller::FindJob(model::JobId id) {
  return const_cast<Job *>(std::as_const(*this).FindJob(id));
}

std::vector<Job *> Controller::RecallArray(model::JobId array) const {
  std::vector<Job *> members;
  auto stored = store_->LoadArray(array);
  if (!stored.ok()) {
    spdlog::error("reading array {} from the store: {}", array, stored.status().message());
    return members;
  }
  for (Job &j : *stored) {
    const model::JobId id = j.id;
    members.push_back(&recalled_.try_emplace(id, std::move(j)).first->second);
  }
  return members;
}

std::string Controller::GpuTypeOfJob(const Job &job) const {
  for (const auto &w : job.placement) {
    auto n = nodes_.find(w.node);
    if (n == nodes_.end()) continue;
    for (int g : w.gpus) {
      if (g >= 0 && g < static_cast<int>(n->second.topology.gpus.size())) {
        return GpuTypeOf(n->second.topology.gpus[g].model);
      }
    }
  }
  return "";
}

void Controller::ForgetOldJobs() {
  const int64_t now = Now();
  const size_t gone = jobs_.ForgetEndedBefore(now - config_.controller.min_job_age_s, now);
  if (gone > 0) spdlog::debug("{} finished jobs left memory ({} in memory)", gone, jobs_.size());
  const int64_t retention = config_.controller.job_retention_s;
  if (retention <= 0 || store_failed_) return;
  // A job still in memory (an array with a member still running) is left for a
  // later batch.
  auto pruned = store_->PruneJobs(
      now - retention, kPruneBatch, &prune_cursor_,
      [this](const Job &j) { return jobs_.count(j.id) > 0; },
      [this](const Job &j) { return GpuTypeOfJob(j); });
  if (!pruned.ok()) {
    spdlog::error("pruning old job records: {}", pruned.status().message());
    store_failed_ = true;
    return;
  }
  if (*pruned > 0) spdlog::debug("{} job records older than job_retention deleted", *pruned);
}

}  // namespace herd::ctld
