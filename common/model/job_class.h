// The built-in priority classes, in one table: herd.toml's [classes] start from it
// (config::ClassConfig, before any [classes.NAME] override), and so do the scheduler core's
// scenario files and benchmarks (sched::BuiltinClasses), so a scenario's `train` is herd.toml's.
// herd.toml(5) states every row (ConfigTest checks the page).
// Thread-safety: constants.
#pragma once

#include <cstdint>

namespace herd::model {

struct BuiltinClass {
  const char* name;
  int priority;            // higher is scheduled first and may preempt lower
  bool preemptible;        // may be reclaimed, preempted or moved (and so run beyond its quota)
  bool within_quota_only;  // starts only within its project's deserved quota
  int64_t max_time_s;      // longest run time; 0 = none
  int64_t min_runtime_s;   // never preempted sooner
  int64_t idle_timeout_s;  // stopped when its GPUs stay idle this long; 0 = never
  int64_t idle_input_timeout_s;  // a GPU-less session with no input this long is stopped; 0 = never
};

inline constexpr BuiltinClass kBuiltinClasses[] = {
    {"interactive", 100, false, true, 12 * 3600, 0, 3600, 0},
    {"train", 50, true, false, 0, 600, 0, 0},
    {"inference", 125, false, true, 0, 0, 0, 0},
};

}  // namespace herd::model
