// The property-based suite of the scheduler core (property.h) in `make test`: HERD_PROPERTY_CASES
// random cases (10,000 unless set) from HERD_PROPERTY_SEED (1 unless set), each several cycles
// through the real Decide(). A failure names the invariant and prints the shrunk case as a scenario,
// also written under HERD_PROPERTY_OUT (build/property_found unless set).
#include <cstdlib>
#include <cstdio>

#include <gtest/gtest.h>

#include "tests/sched/property.h"
#include "tests/sched/scenario.h"

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

}  // namespace
}  // namespace herd::sched::testing
