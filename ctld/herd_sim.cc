// herd-sim: the scheduler offline. `herd-sim replay FILE` reads a scenario file (a snapshot taken by
// `herd admin snapshot`, or one written by hand) and runs the scheduler core on it, cycle by cycle,
// printing the decisions and every expectation of the file that does not hold.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "ctld/sched/scenario.h"

namespace {

constexpr char kUsage[] =
    "usage: herd-sim replay FILE     decide FILE's snapshot again (FILE - reads standard input)\n"
    "\n"
    "FILE is in the scenario format: what `herd admin snapshot` prints, or a scenario of the\n"
    "scheduler's tests. Prints the decisions of its first cycle and every `expect` line that does\n"
    "not hold. Exit status: 0 every expectation holds, 1 some do not, 2 usage or unreadable file.\n";

int Replay(const std::string& path) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) {
      std::fprintf(stderr, "herd-sim: cannot read %s: %s\n", path.c_str(), std::strerror(errno));
      return 2;
    }
    text << in.rdbuf();
  }
  const herd::sched::Scenario sc = herd::sched::ParseScenario(text.str());
  if (!sc.errors.empty()) {
    for (const auto& e : sc.errors) std::fprintf(stderr, "herd-sim: %s: %s\n", path.c_str(), e.c_str());
    std::fprintf(stderr, "herd-sim: %s is not a scenario herd-sim can decide (see herd-sim(1))\n",
                 path.c_str());
    return 2;
  }
  const herd::sched::Snapshot& s = sc.snapshot;
  std::printf("%s: %zu nodes, %zu queues, %zu running, %zu pending, %zu held out; placement %s\n",
              path.c_str(), s.nodes.size(), s.queues.size(), s.running.size(), s.pending.size(),
              s.held_out.size(), herd::sched::PlacementName(sc.policy.placement));
  std::printf("decisions:\n%s", herd::sched::DumpDecisions(herd::sched::Decide(s, sc.policy)).c_str());
  const auto fails = herd::sched::CheckScenario(sc);
  const size_t expects = sc.expects.size() + [&] {
    size_t n = 0;
    for (const auto& c : sc.later) n += c.expects.size();
    return n;
  }();
  if (fails.empty()) {
    std::printf("expectations: all %zu hold\n", expects);
    return 0;
  }
  std::printf("expectations that do not hold:\n");
  for (const auto& f : fails) std::printf("  %s\n", f.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (!std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help"))) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc != 3 || std::strcmp(argv[1], "replay") != 0) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  return Replay(argv[2]);
}
