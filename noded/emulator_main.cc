// herd-noded-emulator: many emulated nodes in one process, for scale tests and benchmarks. Each
// node is a real noded Agent (registration, heartbeats, job events over ZeroMQ with MUNGE
// credentials, one connection per node) whose jobs start no process (EmulatedRuntime).
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/auth/auth.h"
#include "common/config/config.h"
#include "common/util/daemon.h"
#include "noded/agent.h"
#include "noded/emulated_runtime.h"
#include "noded/topology/topology.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  CLI::App app{
      "herd-noded-emulator: registers many emulated nodes with herd-ctld from one process; "
      "their jobs start no process (they run until stopped, or for --job-seconds)"};
  std::string config_path = "/etc/herd/herd.toml";
  std::string controller, topology_xml, prefix = "emu", state_dir, log_file;
  int count = 0, poll_ms = 1000;
  double job_seconds = 0;
  app.add_option("-c,--config", config_path, "configuration file (auth, controller)")
      ->capture_default_str();
  app.add_option("-n,--nodes", count, "how many nodes to emulate")
      ->required()
      ->check(CLI::Range(1, 100000));
  app.add_option("--topology", topology_xml, "hwloc XML topology of every node")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--name-prefix", prefix, "nodes are named PREFIX0001, PREFIX0002, ...")
      ->capture_default_str();
  app.add_option("--controller", controller, "herd-ctld endpoint (default: from the config)");
  app.add_option("--state-dir", state_dir, "where the nodes' hostfiles go (default: a temp dir)");
  app.add_option("--job-seconds", job_seconds, "a job completes after this long; 0: when stopped")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--poll-ms", poll_ms, "how often each node reads its jobs' states")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  app.add_option("--log-file", log_file, "log here instead of stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto config = herd::config::LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "herd-noded-emulator: " << config.status().message() << "\n";
    return 1;
  }
  herd::InitDaemonLog("herd-noded-emulator", log_file);
  int sigfd = herd::DaemonSignalFd();
  const long fds = herd::RaiseFdLimit();
  if (fds >= 0 && fds < 2L * count + 64) {
    spdlog::critical("{} nodes need about {} open files and the limit is {}: raise it (ulimit -n)",
                     count, 2L * count + 64, fds);
    return 1;
  }
  auto topo = herd::topology::LoadXml(topology_xml);
  if (!topo.ok()) {
    spdlog::critical("{}", topo.status().message());
    return 1;
  }
  topo->emulated = true;
  if (controller.empty()) controller = herd::config::LocalEndpoint(config->controller.listen.at(0));
  if (state_dir.empty()) {
    char tmpl[] = "/tmp/herd-noded-emulator.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      spdlog::critical("cannot create a state directory under /tmp: use --state-dir");
      return 1;
    }
    state_dir = tmpl;
  }
  mkdir(state_dir.c_str(), 0755);

  herd::SystemClock clock;
  auto context = herd::net::Context::Create(count + 64);
  std::vector<std::unique_ptr<herd::noded::Agent>> agents;
  std::vector<herd::net::Dealer*> dealers;
  const int width = std::max<int>(4, static_cast<int>(std::to_string(count).size()));
  for (int i = 1; i <= count; ++i) {
    std::string name = std::to_string(i);
    name = prefix + std::string(width - std::min<size_t>(width, name.size()), '0') + name;
    auto auth = herd::auth::MakeAuthenticator(config->auth.method, config->auth.munge_socket);
    if (!auth.ok()) {
      spdlog::critical("{}", auth.status().message());
      return 1;
    }
    herd::noded::AgentOptions opts{name, controller, state_dir, *topo, poll_ms, context};
    opts.allow_root_jobs = config->controller.allow_root_jobs;
    auto agent = std::make_unique<herd::noded::Agent>(
        opts,
        std::make_unique<herd::noded::EmulatedRuntime>(&clock,
                                                       static_cast<int64_t>(job_seconds * 1000)),
        std::move(*auth), herd::gpu::OpenMetricsSource("none", nullptr), &clock);
    if (auto s = agent->Connect(); !s.ok()) {
      spdlog::critical("node {}: {}", name, s.message());
      return 1;
    }
    dealers.push_back(agent->dealer());
    agents.push_back(std::move(agent));
  }
  spdlog::info("emulating {} nodes named {}N ({} GPUs, {} cores each, from {}) against {}", count,
               prefix, topo->gpus.size(), topo->Cores(), topology_xml, controller);

  // One thread serves every node: wait until a connection has a message or a node has timed
  // work, then step only those.
  std::vector<char> ready(agents.size());
  while (true) {
    int sig = herd::ReadSignal(sigfd);
    if (sig == SIGINT || sig == SIGTERM) break;
    int64_t now = clock.MonotonicMillis();
    int64_t due = now + 200;
    for (const auto& a : agents) due = std::min(due, a->NextDueMs());
    std::fill(ready.begin(), ready.end(), 0);
    for (size_t i : herd::net::WaitAny(dealers, static_cast<int>(std::max<int64_t>(0, due - now)))) {
      ready[i] = 1;
    }
    now = clock.MonotonicMillis();
    for (size_t i = 0; i < agents.size(); ++i) {
      if (ready[i] || agents[i]->NextDueMs() <= now) agents[i]->Step(0);
    }
  }
  spdlog::info("stopping: the emulated nodes and their jobs go away");
  return 0;
}
