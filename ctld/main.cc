// herd-ctld: the controller daemon. Thin: parse flags, load config, open the store, bind, loop.
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "CLI/CLI.hpp"
#include "common/auth/auth.h"
#include "common/config/config.h"
#include "common/net/net.h"
#include "common/util/daemon.h"
#include "ctld/controller.h"
#include "spdlog/spdlog.h"

namespace {

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  *ok = static_cast<bool>(in);
  return ss.str();
}

int MergeConfig(const std::string& base, const std::string& extra) {
  bool ok1 = false, ok2 = false;
  std::string a = ReadFile(base, &ok1), b = ReadFile(extra, &ok2);
  if (!ok1 || !ok2) {
    std::cerr << "herd-ctld: cannot read " << (ok1 ? extra : base) << "\n";
    return 1;
  }
  auto merged = herd::config::MergeToml(a, base, b, extra);
  if (!merged.ok()) {
    std::cerr << "herd-ctld: " << merged.status().message() << "\n";
    return 1;
  }
  std::cout << *merged;
  return 0;
}

}  // namespace

using herd::Status;

int main(int argc, char** argv) {
  CLI::App app{"herd-ctld: the herd controller (queue, scheduler, state in SQLite)"};
  std::string config_path = "/etc/herd/herd.toml";
  std::vector<std::string> merge;
  bool check = false;
  herd::store::OpenOptions open_options;
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  app.add_flag("--check-config", check, "validate the configuration and exit");
  app.add_flag("--accept-lost-state", open_options.accept_lost_state,
               "start although the database holds less than herd-ctld committed (its -wal file "
               "deleted, an older copy restored): the missing jobs are lost, new job ids continue "
               "above the highest one ever handed out");
  app.add_option("--merge-config", merge, "print BASE.toml with EXTRA.toml merged over it")
      ->expected(2);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!merge.empty()) return MergeConfig(merge[0], merge[1]);

  auto config = herd::config::LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "herd-ctld: " << config.status().message() << "\n";
    return 1;
  }
  for (const auto& w : config->warnings) std::cerr << "herd-ctld: warning: " << w << "\n";
  if (check) {
    std::cout << config_path << ": OK\n";
    return 0;
  }
  // Everything herd-ctld writes (database, log) holds every user's jobs: for its own user only.
  umask(077);
  herd::InitDaemonLog("herd-ctld", config->controller.log_file);
  // A log file made before (or by hand) is closed too; the listen socket is opened by Bind.
  struct stat log_stat {};
  if (const std::string& log = config->controller.log_file;
      !log.empty() && stat(log.c_str(), &log_stat) == 0 && S_ISREG(log_stat.st_mode) &&
      chmod(log.c_str(), 0600) != 0) {
    spdlog::critical("cannot make {} private (chmod 0600): {}", log, std::strerror(errno));
    return 1;
  }
  int sigfd = herd::DaemonSignalFd();
  spdlog::info("up to {} open files (one connection per node)", herd::RaiseFdLimit());

  const std::string& dir = config->controller.state_dir;
  mkdir(dir.c_str(), 0700);
  // A state directory or database made before (or by hand) is closed too.
  if (chmod(dir.c_str(), 0700) != 0) {
    spdlog::critical("cannot make {} private (chmod 0700): {}", dir, std::strerror(errno));
    return 1;
  }
  for (const char* file : {"/herd.db", "/herd.db-wal", "/herd.db-shm"}) {
    const std::string path = dir + file;
    if (chmod(path.c_str(), 0600) != 0 && errno != ENOENT) {
      spdlog::critical("cannot make {} private (chmod 0600): {}", path, std::strerror(errno));
      return 1;
    }
  }
  auto store = herd::store::Store::Open(dir + "/herd.db", open_options);
  if (!store.ok()) {
    spdlog::critical("{}", store.status().message());
    std::cerr << "herd-ctld: " << store.status().message() << "\n";
    return 1;
  }
  if (!(*store)->lost_state().empty()) spdlog::warn("{}", (*store)->lost_state());
  auto auth = herd::auth::MakeAuthenticator(config->auth.method, config->auth.munge_socket);
  if (!auth.ok()) {
    spdlog::critical("{}", auth.status().message());
    return 1;
  }
  if (config->auth.method == "none") {
    spdlog::warn("auth = \"none\": every local user is trusted; use it for a single-user demo only");
  }
  static_assert(herd::config::kMaxMessageMib << 20 == herd::proto::kMaxMessageBytes);
  herd::net::ServerLimits limits;
  limits.max_message_bytes = config->controller.max_message_mib << 20;
  limits.message_timeout_ms = static_cast<int>(config->controller.message_timeout_ms);
  auto server = herd::net::Server::Bind(config->controller.listen, limits);
  if (!server.ok()) {
    spdlog::critical("{}", server.status().message());
    return 1;
  }
  for (const auto& e : (*server)->Endpoints()) spdlog::info("listening on {}", e);

  herd::SystemClock clock;
  herd::ctld::Controller controller(*config, std::move(*store), std::move(*server),
                                    std::move(*auth), &clock);
  controller.set_config_path(config_path);
  if (auto s = controller.Recover(); !s.ok()) {
    spdlog::critical("recovery failed: {}", s.message());
    return 1;
  }
  while (true) {
    int sig = herd::ReadSignal(sigfd);
    if (sig == SIGINT || sig == SIGTERM) break;
    if (sig == SIGHUP) {
      if (Status s = controller.ReloadConfig(); !s.ok()) spdlog::error("{}", s.message());
    }
    if (auto s = controller.Step(200); !s.ok()) {
      spdlog::critical("{}", s.message());
      return 2;
    }
  }
  spdlog::info("stopping");
  return 0;
}
