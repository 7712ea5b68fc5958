#include "common/model/job.h"

#include <array>
#include <cctype>
#include <string>

namespace herd::model {
namespace {

constexpr std::array<const char*, 10> kStateNames = {
    "PENDING", "STARTING",  "RUNNING",   "SUSPENDED", "PREEMPTED",
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT",   "NODE_FAIL"};

// By WaitsFor, in its order.
constexpr std::array<const char*, 11> kWaitsForNames = {
    "",     "scheduler",  "resources", "quota",       "reservation", "preemption",
    "dependency", "hold", "begin time", "array limit", "node"};

}  // namespace

std::string JobRefText(const Job& job) {
  if (job.spec.array_id == 0) return std::to_string(job.id);
  return std::to_string(job.spec.array_id) + "_" + std::to_string(job.spec.array_index);
}

const char* JobStateName(JobState s) { return kStateNames[static_cast<size_t>(s)]; }

std::optional<JobState> ParseJobState(std::string_view text) {
  std::string upper;
  for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (size_t i = 0; i < kStateNames.size(); ++i) {
    if (upper == kStateNames[i]) return static_cast<JobState>(i);
  }
  return std::nullopt;
}

const char* WaitsForName(WaitsFor w) { return kWaitsForNames[static_cast<size_t>(w)]; }

std::optional<WaitsFor> ParseWaitsFor(std::string_view name) {
  for (size_t i = 0; i < kWaitsForNames.size(); ++i) {
    if (name == kWaitsForNames[i]) return static_cast<WaitsFor>(i);
  }
  return std::nullopt;
}

bool IsTerminal(JobState s) {
  switch (s) {
    case JobState::kCompleted:
    case JobState::kFailed:
    case JobState::kCancelled:
    case JobState::kTimeout:
    case JobState::kNodeFail:
      return true;
    default:
      return false;
  }
}

bool HoldsResources(JobState s) {
  return s == JobState::kStarting || s == JobState::kRunning || s == JobState::kSuspended ||
         s == JobState::kPreempted;
}

}  // namespace herd::model
