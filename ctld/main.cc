// herd-ctld: the controller daemon. Thin: parse flags, load config, open the store, bind, loop.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
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

// With [controller] user set, herd-ctld runs as that user. Started as root, it makes its state
// directory (and what lies in it) and its log file that user's, then drops root for good before
// it opens anything else; started as a third user, it refuses.
herd::Status BecomeUser(const herd::config::ControllerConfig& cc) {
  if (cc.user.empty()) return herd::Status::Ok();
  struct passwd* pw = getpwnam(cc.user.c_str());
  if (pw == nullptr) {
    return herd::Invalid("[controller] user '" + cc.user + "' is not a user on this machine: " +
                         "create it (adduser --system --group " + cc.user +
                         ") or leave the key out");
  }
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  if (geteuid() == uid) return herd::Status::Ok();
  if (geteuid() != 0) {
    return herd::Denied("herd-ctld runs as uid " + std::to_string(geteuid()) +
                        ", but herd.toml's [controller] user is '" + cc.user +
                        "': start it as that user, or as root (it then becomes that user)");
  }
  auto give = [&](const std::string& path) -> herd::Status {
    if (lchown(path.c_str(), uid, gid) != 0 && errno != ENOENT) {
      return herd::Internal("cannot give " + path + " to " + cc.user + ": " +
                            std::strerror(errno));
    }
    return herd::Status::Ok();
  };
  mkdir(cc.state_dir.c_str(), 0700);
  HERD_RETURN_IF_ERROR(give(cc.state_dir));
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(cc.state_dir, ec)) {
    HERD_RETURN_IF_ERROR(give(entry.path().string()));
  }
  if (ec) return herd::Internal("cannot list " + cc.state_dir + ": " + ec.message());
  if (!cc.log_file.empty()) {
    // Made here when missing: the user may not create files where the log lives (/var/log).
    int fd = open(cc.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      return herd::Internal("cannot open " + cc.log_file + ": " + std::strerror(errno));
    }
    close(fd);
    HERD_RETURN_IF_ERROR(give(cc.log_file));
  }
  if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0 || setuid(0) == 0) {
    return herd::Internal("cannot become " + cc.user + ": " + std::strerror(errno));
  }
  return herd::Status::Ok();
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
  bool print = false;
  app.add_flag("--print-config", print,
               "print the effective configuration (every default filled in) as TOML and exit");
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
  if (print) {
    // herd.toml holds no secret (MUNGE's key lives in munged's own files): all of it is shown.
    std::cout << herd::config::ToToml(*config);
    return 0;
  }
  if (check) {
    std::cout << config_path << ": OK\n";
    return 0;
  }
  // Everything herd-ctld writes (database, log) holds every user's jobs: for its own user only.
  umask(077);
  if (Status s = BecomeUser(config->controller); !s.ok()) {
    std::cerr << "herd-ctld: " << s.message() << "\n";
    return 1;
  }
  if (Status s = herd::ctld::CheckWebUser(*config, geteuid()); !s.ok()) {
    std::cerr << "herd-ctld: " << s.message() << "\n";
    return 1;
  }
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
  for (const auto& endpoint : config->controller.listen) {
    if (endpoint.starts_with("ipc://@") && config->auth.method != "none") {
      spdlog::warn("listening on the abstract socket {}: any local user can bind that name while "
                   "herd-ctld is down and receive the CLI's requests; prefer ipc:///run/herd/... "
                   "(a path in a directory only herd-ctld's user can write)",
                   endpoint);
    }
  }
  static_assert(herd::config::kMaxMessageMib << 20 == herd::proto::kMaxMessageBytes);
  herd::net::ServerLimits limits;
  limits.max_message_bytes = config->controller.max_message_mib << 20;
  limits.message_timeout_ms = static_cast<int>(config->controller.message_timeout_ms);
  limits.max_connections = static_cast<int>(config->controller.max_connections);
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
