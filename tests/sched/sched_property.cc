// sched_property: the property-based suite of the scheduler core (tests/sched/property.h) for any
// number of cases. Usage: sched_property [--cases N] [--seed S] [--out DIR] [--no-shrink] [--list] [--match TEXT]
//        sched_property --raw SEED   (one case as generated, unshrunk, with its cycles)
// Prints the count of cases, cycles and time, the failures by invariant, and (unless --no-shrink)
// writes the shrunk first failing case (shrunk only while the failure's message contains TEXT, e.g.
// a pending reason, so that one cause is kept) of each invariant to DIR as a .scenario file.
// Exit status: 0 every invariant held, 1 some failed, 2 bad arguments.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/sched/property.h"

int main(int argc, char** argv) {
  int64_t cases = 10000;
  uint64_t seed = 1;
  std::string out = "property_found";
  bool shrink = true, list = false;
  std::string match;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cases" && i + 1 < argc) {
      cases = std::strtoll(argv[++i], nullptr, 10);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else if (a == "--raw" && i + 1 < argc) {  // one case as generated, with its run
      using namespace herd::sched::testing;
      const Case c = GenerateCase(std::strtoull(argv[++i], nullptr, 10));
      const CaseResult r = RunCase(c);
      std::printf("%s", ScenarioText(c, r.trace).c_str());
      return r.violation.invariant.empty() ? 0 : 1;
    } else if (a == "--match" && i + 1 < argc) {
      match = argv[++i];
    } else if (a == "--list") {
      list = true;
    } else if (a == "--no-shrink") {
      shrink = false;
    } else {
      std::fprintf(stderr,
                   "usage: sched_property [--cases N] [--seed S] [--out DIR] [--no-shrink] [--list] [--match TEXT] [--raw SEED]\n"
                   "unknown or incomplete argument: %s\n", a.c_str());
      return 2;
    }
  }
  using namespace herd::sched::testing;
  const Summary s = RunMany(seed, cases);
  std::printf("%lld cases (%lld cycles) from seed %llu in %.2f s (%.0f cases/s); %lld invalid\n",
              static_cast<long long>(s.cases), static_cast<long long>(s.cycles),
              static_cast<unsigned long long>(seed), s.seconds,
              static_cast<double>(s.cases) / std::max(s.seconds, 1e-9), static_cast<long long>(s.invalid));
  for (const auto& [inv, n] : s.failures) {
    std::printf("%-16s %lld cases (%.3f %%), first seed %llu\n", inv.c_str(), static_cast<long long>(n),
                100.0 * static_cast<double>(n) / static_cast<double>(std::max<int64_t>(s.cases, 1)),
                static_cast<unsigned long long>(s.first.at(inv).first.seed));
  }
  if (list) {
    for (const auto& [inv, seeds] : s.failing_seeds) {
      std::printf("%s:", inv.c_str());
      for (uint64_t x : seeds) std::printf(" %llu", static_cast<unsigned long long>(x));
      std::printf("\n");
    }
  }
  if (shrink) {
    for (const auto& [inv, first] : s.first) {
      std::printf("\n%s\n", ReportFailure(first.first, first.second, out, herd::sched::Decide, match).c_str());
    }
  }
  return s.failures.empty() ? 0 : 1;
}
