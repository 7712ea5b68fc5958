// EmulatedRuntime: a Runtime whose jobs start no process, one per node of herd-noded-emulator.
// A job runs from BeginLaunch() (it starts at once) until Kill() ends it at once (as a job that
// exits on SIGTERM: exit code 143, whatever the grace) or, when run_ms > 0, until it has run that
// long (exit code 0).
// Built by herd-noded-emulator. Thread-safety: not thread-safe; use from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/util/clock.h"
#include "noded/runtime/runtime.h"

namespace herd::noded {

class EmulatedRuntime : public runtime::Runtime {
 public:
  // run_ms: how long a job runs before it completes by itself; 0 = until it is killed.
  EmulatedRuntime(const Clock* clock, int64_t run_ms) : clock_(clock), run_ms_(run_ms) {}

  Status BeginLaunch(const runtime::LaunchSpec& spec) override;
  // Every job begun since the last call: each started at once.
  std::vector<runtime::StartOutcome> TakeStartOutcomes() override;
  Status Kill(const std::string& job_key, int grace_ms) override;
  Status Suspend(const std::string& job_key) override;
  Status Resume(const std::string& job_key) override;
  std::vector<runtime::JobStatus> Poll() override;
  runtime::CgroupUsage Usage(const std::string& job_key) const override;
  Status Forget(const std::string& job_key) override;
  // An emulated job writes no output: always empty, at its end.
  Result<std::string> ReadLog(const std::string& job_key, const std::string& stream,
                              int64_t offset, int64_t max_bytes, bool* eof) override;
  std::string CgroupMode() const override { return "none"; }

 private:
  struct Job {
    runtime::JobStatus status;
    int64_t end_ms = 0;  // monotonic; 0 = runs until killed
  };
  Status Set(const std::string& job_key, runtime::JobStatus::State state);

  const Clock* clock_;
  int64_t run_ms_;
  std::map<std::string, Job> jobs_;  // by job key, until forgotten
  std::vector<runtime::StartOutcome> started_;  // since the last TakeStartOutcomes
};

}  // namespace herd::noded
