// Scenario files: a small line format that describes a cluster, its queues and jobs, and the
// decisions one Decide() call must make. tests/scenarios/README-format in scenario.cc's comment.
// Built by sched_test; thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "ctld/sched/scheduler.h"

namespace herd::sched::testing {

// A parsed scenario: the snapshot, the policy, and the expectation lines to check.
struct Scenario {
  Snapshot snapshot;
  Policy policy;
  std::vector<std::pair<int, std::string>> expects;  // (line number, text after "expect ")
  std::vector<std::string> errors;                   // parse errors, "line N: ..."
};

Scenario ParseScenario(const std::string& text);
// Runs Decide() and returns one message per unmet expectation (empty: all met).
std::vector<std::string> CheckScenario(const Scenario& scenario);
// A stable text form of decisions, for comparing runs.
std::string DumpDecisions(const Decisions& d);

}  // namespace herd::sched::testing
