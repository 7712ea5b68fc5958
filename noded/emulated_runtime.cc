#include "noded/emulated_runtime.h"

#include <utility>

namespace herd::noded {

using runtime::JobStatus;

Status EmulatedRuntime::BeginLaunch(const runtime::LaunchSpec& spec) {
  auto it = jobs_.find(spec.job_key);
  if (it != jobs_.end() && it->second.status.state != JobStatus::kExited) {
    return Invalid("job " + spec.job_key + " already runs here");
  }
  Job& job = jobs_[spec.job_key];
  job = Job{};
  job.status.job_key = spec.job_key;
  job.status.state = JobStatus::kRunning;
  if (run_ms_ > 0) job.end_ms = clock_->MonotonicMillis() + run_ms_;
  started_.push_back({spec.job_key, Status::Ok()});
  return Status::Ok();
}

std::vector<runtime::StartOutcome> EmulatedRuntime::TakeStartOutcomes() {
  return std::exchange(started_, {});
}

Status EmulatedRuntime::Kill(const std::string& job_key, int /*grace_ms*/) {
  auto it = jobs_.find(job_key);
  if (it == jobs_.end()) return NotFound("no job " + job_key + " on this node");
  JobStatus& st = it->second.status;
  if (st.state == JobStatus::kExited) return Status::Ok();
  st.state = JobStatus::kExited;
  st.exit_code = 128 + 15;
  st.reason = "killed by signal 15";
  return Status::Ok();
}

Status EmulatedRuntime::Set(const std::string& job_key, JobStatus::State state) {
  auto it = jobs_.find(job_key);
  if (it == jobs_.end() || it->second.status.state == JobStatus::kExited) {
    return NotFound("no running job " + job_key + " on this node");
  }
  it->second.status.state = state;
  return Status::Ok();
}

Status EmulatedRuntime::Suspend(const std::string& job_key) {
  return Set(job_key, JobStatus::kSuspended);
}

Status EmulatedRuntime::Resume(const std::string& job_key) {
  return Set(job_key, JobStatus::kRunning);
}

std::vector<JobStatus> EmulatedRuntime::Poll() {
  const int64_t now = clock_->MonotonicMillis();
  std::vector<JobStatus> out;
  out.reserve(jobs_.size());
  for (auto& [key, job] : jobs_) {
    if (job.end_ms > 0 && now >= job.end_ms && job.status.state == JobStatus::kRunning) {
      job.status.state = JobStatus::kExited;
      job.status.exit_code = 0;
    }
    out.push_back(job.status);
  }
  return out;
}

runtime::CgroupUsage EmulatedRuntime::Usage(const std::string& /*job_key*/) const { return {}; }

Status EmulatedRuntime::Forget(const std::string& job_key) {
  jobs_.erase(job_key);
  return Status::Ok();
}

Result<std::string> EmulatedRuntime::ReadLog(const std::string& job_key,
                                             const std::string& /*stream*/, int64_t /*offset*/,
                                             int64_t /*max_bytes*/, bool* eof) {
  auto it = jobs_.find(job_key);
  if (it == jobs_.end()) return NotFound("no job " + job_key + " on this node");
  *eof = it->second.status.state == JobStatus::kExited;
  return std::string();
}

}  // namespace herd::noded
