// The property-based suite of the scheduler core (property.h) in `make test`: HERD_PROPERTY_CASES
// random cases (10,000 unless set) from HERD_PROPERTY_SEED (1 unless set), each several cycles
// through the real Decide(). A failure names the invariant and prints the shrunk case as a scenario,
// also written under HERD_PROPERTY_OUT (build/property_found unless set).
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "tests/sched/property.h"
#include "ctld/sched/scenario.h"

namespace herd::sched::testing {
namespace {

int64_t EnvNumber(const char* name, int64_t def) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoll(v, nullptr, 10) : def;
}

std::string OutDir() {
  const char* v = std::getenv("HERD_PROPERTY_OUT");
  return v != nullptr && *v != '\0' ? v : HERD_PROPERTY_OUT;
}

// Invariants the core does not keep yet, counted and printed but not failing this test (none: every
// invariant fails it; the rates of a 1,000,000-case run are in bench/results/sched_property.md).
const std::set<std::string> kKnownOpen = {};

TEST(SchedPropertyTest, RandomWorkloadsKeepEveryInvariant) {
  const int64_t cases = EnvNumber("HERD_PROPERTY_CASES", 10000);
  const auto seed = static_cast<uint64_t>(EnvNumber("HERD_PROPERTY_SEED", 1));
  const Summary s = RunMany(seed, cases);
  std::printf("sched property: %lld cases (%lld cycles) from seed %llu in %.2f s; %lld invalid\n",
              static_cast<long long>(s.cases), static_cast<long long>(s.cycles),
              static_cast<unsigned long long>(seed), s.seconds, static_cast<long long>(s.invalid));
  for (const auto& [inv, n] : s.failures) {
    std::printf("  %-12s failed in %lld cases (%.2f %%)\n", inv.c_str(), static_cast<long long>(n),
                100.0 * static_cast<double>(n) / static_cast<double>(std::max<int64_t>(s.cases, 1)));
  }
  EXPECT_EQ(s.invalid, 0) << "the generator made cases the scenario format rejects";
  for (const auto& [inv, first] : s.first) {
    if (kKnownOpen.count(inv)) {
      std::printf("  %s: known open, counted above but not failing this test (the shrunk cases are\n"
                  "  in tests/sched/property_found; a case stops at its first broken invariant, so\n"
                  "  these cases were not checked for the others)\n", inv.c_str());
      continue;
    }
    ADD_FAILURE() << ReportFailure(first.first, first.second, OutDir());
  }
}

TEST(SchedPropertyTest, EqualCasesDecideEquallyAcrossRuns) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    const Case c = GenerateCase(seed);
    EXPECT_EQ(RunCase(c).digest, RunCase(GenerateCase(seed)).digest) << "seed " << seed;
  }
}

TEST(SchedPropertyTest, GeneratedCasesAreValidScenarios) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    const Case c = GenerateCase(seed);
    const Scenario sc = ParseScenario(ScenarioText(c));
    EXPECT_TRUE(sc.errors.empty()) << "seed " << seed << ": " << sc.errors.front();
    size_t running = 0;
    for (const CaseJob& j : c.jobs) running += j.running;
    EXPECT_EQ(sc.snapshot.running.size(), running) << "seed " << seed;
  }
}

// Every snapshot the cases give Decide() (with evictions under way: victims stopping, held out,
// room planned) reads back equal from what WriteScenario writes, and decides the same: a snapshot
// herd-ctld dumps is the snapshot it decided on.
TEST(SchedPropertyTest, EverySnapshotOfACaseWrittenAndReadBackDecidesTheSame) {
  int64_t snapshots = 0, marked = 0;
  const DecideFn round_trip = [&](const Snapshot& s, const Policy& p) {
    const Decisions d = Decide(s, p);
    const std::string written = WriteScenario(s, p, &d);
    const Scenario back = ParseScenario(written);
    ++snapshots;
    marked += !s.held_out.empty();
    EXPECT_TRUE(back.errors.empty()) << back.errors.front() << "\n" << written;
    EXPECT_TRUE(back.snapshot == s) << written;
    EXPECT_EQ(DumpDecisions(Decide(back.snapshot, back.policy)), DumpDecisions(d)) << written;
    return d;
  };
  for (uint64_t seed = 1; seed <= 300 && !HasFailure(); ++seed) RunCase(GenerateCase(seed), round_trip);
  std::printf("%lld snapshots written and read back, %lld with jobs held out\n",
              static_cast<long long>(snapshots), static_cast<long long>(marked));
  EXPECT_GT(marked, 0) << "no case had evictions under way";
}

// The checkers find what they check: cores broken on purpose, each with the invariant it breaks.

// The first case of seeds 1..300 that `decide` fails with `invariant`, shrunk: it still fails the same invariant
// and is written as a scenario the scenario format reads.
void ExpectFound(const DecideFn& decide, const std::string& invariant) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    const Case c = GenerateCase(seed);
    const CaseResult r = RunCase(c, decide);
    if (r.violation.invariant != invariant) continue;  // other invariants may break first
    const std::string report = ReportFailure(c, r, ::testing::TempDir() + "/property_self_test", decide);
    EXPECT_NE(report.find("invariant " + invariant + " violated"), std::string::npos) << report;
    const Case small = Shrink(c, invariant, 3000, decide);
    EXPECT_LE(small.jobs.size(), c.jobs.size());
    EXPECT_EQ(RunCase(small, decide).violation.invariant, invariant);
    const Scenario sc = ParseScenario(report.substr(report.find("\n# Found by") + 1));
    EXPECT_TRUE(sc.errors.empty()) << report;
    return;
  }
  ADD_FAILURE() << "no case of 300 found the broken " << invariant;
}

TEST(SchedPropertyCheckerTest, FindsACoreThatStartsJobsOnBusyGpus) {
  ExpectFound([](const Snapshot& s, const Policy& p) {
    Decisions d = Decide(s, p);
    for (const PendingJob& j : s.pending) {
      if (d.pending_reasons.count(j.id) == 0 || j.request.gpu_milli < 1000 || j.request.workers != 1) continue;
      for (const NodeView& n : s.nodes) {
        if (n.gpus.size() * 1000 < static_cast<size_t>(j.request.gpu_milli) || !n.schedulable) continue;
        model::WorkerPlacement w{n.name, {}, 1000, {}, j.request.memory_mib, ""};
        for (int g = 0; g < j.request.gpu_milli / 1000; ++g) w.gpus.push_back(g);
        for (const auto& [numa, cores] : n.free_cores_by_numa) {
          for (int c : cores) {
            if (static_cast<int64_t>(w.cores.size()) < j.request.cpus) w.cores.push_back(c);
          }
        }
        if (static_cast<int64_t>(w.cores.size()) < j.request.cpus) continue;
        d.starts.push_back({j.id, {w}});
        d.pending_reasons.erase(j.id);
        return d;
      }
    }
    return d;
  }, "overcommit");
}

TEST(SchedPropertyCheckerTest, FindsACoreThatEvictsNonPreemptibleJobs) {
  ExpectFound([](const Snapshot& s, const Policy& p) {
    Decisions d = Decide(s, p);
    for (const RunningJob& r : s.running) {
      auto c = s.classes.find(r.job_class);
      if (c != s.classes.end() && !c->second.preemptible) {
        d.preemptions.push_back({.id = r.id, .for_job = r.id, .kind = EvictionKind::kPreempt});
        break;
      }
    }
    return d;
  }, "protected");
}

TEST(SchedPropertyCheckerTest, FindsACoreThatSplitsGangs) {
  ExpectFound([](const Snapshot& s, const Policy& p) {
    Decisions d = Decide(s, p);
    for (StartDecision& st : d.starts) {
      if (st.placement.size() > 1) st.placement.pop_back();
    }
    return d;
  }, "gang");
}

TEST(SchedPropertyCheckerTest, FindsACoreThatDecidesDifferentlyOnEqualSnapshots) {
  auto calls = std::make_shared<int>(0);
  ExpectFound([calls](const Snapshot& s, const Policy& p) {
    Decisions d = Decide(s, p);  // with a queue's numbers that depend on the call
    if (!d.shares.empty()) d.shares.front().pending_demand.cpus += ++*calls % 2;
    return d;
  }, "determinism");
}

TEST(SchedPropertyCheckerTest, FindsACoreThatNeverStartsAnything) {
  ExpectFound([](const Snapshot& s, const Policy&) {
    Decisions d;
    for (const PendingJob& j : s.pending) d.pending_reasons[j.id] = {};
    return d;
  }, "starvation");
}

TEST(SchedPropertyCheckerTest, FindsACoreThatEvictsForJobsItNeverStarts) {
  ExpectFound([](const Snapshot& s, const Policy& p) {
    Decisions d = Decide(s, p);
    d.starts.clear();
    for (const PendingJob& j : s.pending) d.pending_reasons[j.id] = {};
    if (d.preemptions.empty() && !s.pending.empty()) {
      for (const RunningJob& r : s.running) {
        auto c = s.classes.find(r.job_class);
        if (c != s.classes.end() && c->second.preemptible && s.now - r.start_time >= c->second.min_runtime_s) {
          d.preemptions.push_back(
              {.id = r.id, .for_job = s.pending.front().id, .kind = EvictionKind::kPreempt});
          break;
        }
      }
    }
    return d;
  }, "beneficiary");
}

}  // namespace
}  // namespace herd::sched::testing
