// Scenario files: a small line format that describes a cluster, its queues and jobs, and the
// decisions one Decide() call must make. tests/scenarios/README-format in scenario.cc's comment.
// Built by sched_test; thread-safety: pure functions.
#pragma once

#include <map>
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
  // Each `cycle` section: its statements (now, pending, running, finish), applied after the previous
  // cycle's decisions, and its expectations.
  struct Cycle {
    std::vector<std::pair<int, std::string>> statements, expects;
  };
  std::vector<Cycle> later;
  std::map<std::string, std::map<int, int>> core_numa;  // node -> core id -> NUMA id
};

Scenario ParseScenario(const std::string& text);
// Runs Decide() (once per cycle) and returns one message per unmet expectation (empty: all met).
std::vector<std::string> CheckScenario(const Scenario& scenario);
// A stable text form of decisions, for comparing runs.
std::string DumpDecisions(const Decisions& d);

}  // namespace herd::sched::testing
