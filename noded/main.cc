// herd-noded: the node daemon. Thin: parse flags, discover the host, connect, loop.
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>

#include "CLI/CLI.hpp"
#include "common/auth/auth.h"
#include "common/config/config.h"
#include "common/util/daemon.h"
#include "common/util/heap.h"
#include "noded/agent.h"
#include "noded/runtime/runtime.h"
#include "noded/topology/topology.h"
#include "spdlog/spdlog.h"

namespace {

// herd-shim is installed next to herd-noded.
std::string DefaultShim() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "herd-shim";
  std::string self(buf, n);
  return self.substr(0, self.rfind('/') + 1) + "herd-shim";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"herd-noded: the herd node daemon (discovers the host, runs jobs)"};
  std::string config_path = "/etc/herd/herd.toml";
  std::string name, controller, topology_xml, state_dir = "/var/lib/herd-noded";
  std::string cgroup_parent = "herd", shim = DefaultShim(), log_file;
  bool no_cgroups = false;
  std::string gpu_metrics = "nvml";
  app.add_option("-c,--config", config_path, "configuration file (auth, controller)")
      ->capture_default_str();
  app.add_option("--name", name, "node name (default: the host name)");
  app.add_option("--controller", controller, "herd-ctld endpoint (default: from the config)");
  app.add_option("--topology", topology_xml, "emulate the hwloc XML topology FILE")
      ->check(CLI::ExistingFile);
  app.add_option("--state-dir", state_dir, "job state and logs")->capture_default_str();
  app.add_option("--cgroup-parent", cgroup_parent, "cgroup under which jobs are confined")
      ->capture_default_str();
  app.add_flag("--no-cgroups", no_cgroups, "never confine jobs with cgroups");
  app.add_option("--shim", shim, "path of herd-shim")->capture_default_str();
  app.add_option("--log-file", log_file, "log here instead of stderr");
  app.add_option("--gpu-metrics", gpu_metrics,
                 "GPU activity source: nvml, none, or fed:FILE (tests and demos)")
      ->capture_default_str();
  bool print_config = false;
  app.add_flag("--print-config", print_config,
               "print the effective configuration (every default filled in) as TOML and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto config = herd::config::LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "herd-noded: " << config.status().message() << "\n";
    return 1;
  }
  if (print_config) {
    for (const auto& w : config->warnings) std::cerr << "herd-noded: warning: " << w << "\n";
    std::cout << herd::config::ToToml(*config);
    return 0;
  }
  herd::InitDaemonLog("herd-noded", log_file);
  herd::KeepHeapForStreams();  // sessions' streams pass through
  int sigfd = herd::DaemonSignalFd();

  auto topo = topology_xml.empty() ? herd::topology::DiscoverHost()
                                   : herd::topology::LoadXml(topology_xml);
  if (!topo.ok()) {
    spdlog::critical("{}", topo.status().message());
    return 1;
  }
  if (name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    name = host;
  }
  if (controller.empty()) controller = herd::config::LocalEndpoint(config->controller.listen.at(0));
  mkdir(state_dir.c_str(), 0755);

  herd::runtime::RuntimeOptions ropts;
  ropts.state_dir = state_dir;
  ropts.shim_path = shim;
  ropts.cgroup_parent = cgroup_parent;
  ropts.use_cgroups = !no_cgroups;
  ropts.allowed_volumes = config->volume_prefixes;
  ropts.max_log_bytes = config->node.max_log_mib << 20;
  ropts.start_timeout = std::chrono::seconds(config->node.start_timeout_s);
  ropts.max_image_bytes = config->node.max_image_mib << 20;
  ropts.min_free_bytes = config->node.min_free_space_mib << 20;
  auto runtime = herd::runtime::Runtime::Create(ropts);
  if (!runtime.ok()) {
    spdlog::critical("{}", runtime.status().message());
    return 1;
  }
  auto auth = herd::auth::MakeAuthenticator(config->auth.method, config->auth.munge_socket);
  if (!auth.ok()) {
    spdlog::critical("{}", auth.status().message());
    return 1;
  }
  spdlog::info("node {}: {} GPUs, {} cores, {} MiB{}; cgroups: {}", name, topo->gpus.size(),
               topo->Cores(), topo->memory_mib, topo->emulated ? " (emulated: " + topo->source + ")" : "",
               (*runtime)->CgroupMode());
  if (!(*runtime)->ConfinesDevices()) {
    spdlog::warn("jobs are not confined to their own GPUs (that needs cgroups with the v1 devices "
                 "controller or, on cgroup v2, an eBPF device filter the kernel accepts; each "
                 "job's shim.log says what was missing): a job can open every GPU, and "
                 "CUDA_VISIBLE_DEVICES only advises it");
  }

  std::string note;
  auto metrics = herd::gpu::OpenMetricsSource(gpu_metrics, &note);
  if (!note.empty()) spdlog::info("GPU metrics: {}", note);
  spdlog::info("GPU metrics from {}", metrics->Name());
  if (!topo->emulated && metrics->Name() == "nvml") {
    if (auto samples = metrics->Sample(); samples.ok()) herd::gpu::EnrichTopology(&*topo, *samples);
  }

  herd::SystemClock clock;
  herd::noded::AgentOptions opts{name, controller, state_dir, *topo};
  opts.max_message_bytes = config->controller.max_message_mib << 20;
  opts.min_free_space_bytes = config->node.min_free_space_mib << 20;
  opts.allow_root_jobs = config->controller.allow_root_jobs;
  opts.log_retention_s = config->controller.job_retention_s;
  if (const std::string& user = config->controller.user; !user.empty()) {
    struct passwd* pw = getpwnam(user.c_str());
    if (pw == nullptr) {
      spdlog::critical("herd.toml's [controller] user '{}' (herd-ctld's user) is not a user on "
                       "this node: create it with the uid it has on herd-ctld's host",
                       user);
      return 1;
    }
    opts.controller_uid = pw->pw_uid;
  }
  herd::runtime::Runtime* runtime_ptr = runtime->get();
  herd::noded::Agent agent(opts, std::move(*runtime), std::move(*auth), std::move(metrics), &clock);
  std::unique_ptr<herd::noded::SessionHub> sessions;
  if (!config->node.session_listen.empty()) {
    auto server = herd::net::Server::Bind({config->node.session_listen});
    auto session_auth = herd::auth::MakeAuthenticator(config->auth.method, config->auth.munge_socket);
    if (!server.ok() || !session_auth.ok()) {
      spdlog::critical("cannot listen for sessions at {}: {}", config->node.session_listen,
                       (server.ok() ? session_auth.status() : server.status()).message());
      return 1;
    }
    std::set<uint32_t> admin_uids;
    for (const std::string& admin : config->admins) {
      if (struct passwd* pw = getpwnam(admin.c_str())) admin_uids.insert(pw->pw_uid);
    }
    sessions = std::make_unique<herd::noded::SessionHub>(std::move(*server), runtime_ptr,
                                                         std::move(*session_auth),
                                                         std::move(admin_uids), opts.name, &clock);
    spdlog::info("sessions at {}", sessions->Endpoint());
    agent.SetSessions(sessions.get());
  }
  if (auto s = agent.Connect(); !s.ok()) {
    spdlog::critical("{}", s.message());
    return 1;
  }
  while (true) {
    int sig = herd::ReadSignal(sigfd);
    if (sig == SIGINT || sig == SIGTERM) break;
    agent.Step(200);
  }
  // Jobs keep running under their shims; a restarted herd-noded reattaches to them.
  spdlog::info("stopping; running jobs continue under herd-shim");
  return 0;
}
