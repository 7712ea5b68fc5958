#include "tests/integration/cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

namespace herd::testing {

std::string SourceDir() { return HERD_SOURCE_DIR; }
std::string BinDir() { return HERD_BIN_DIR; }

CommandResult RunShell(const std::string& command) {
  char err_path[] = "/tmp/herd-it-err.XXXXXX";
  int fd = mkstemp(err_path);
  close(fd);
  CommandResult r;
  std::string full = "(" + command + ") 2>" + err_path;
  FILE* p = popen(full.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream in(err_path);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  unlink(err_path);
  return r;
}

Result<std::unique_ptr<LocalCluster>> LocalCluster::Start(const Options& options) {
  char tmpl[] = "/tmp/herd-it.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return Internal("mkdtemp failed");
  std::unique_ptr<LocalCluster> c(new LocalCluster);
  c->dir_ = tmpl;
  std::string cmd = SourceDir() + "/scripts/local-cluster start " + c->dir_ + " --bin " +
                    BinDir() + " --auth " + options.auth;
  if (!options.extra_toml.empty()) {
    std::ofstream(c->dir_ + "/extra.toml") << options.extra_toml;
    cmd += " --config-extra " + c->dir_ + "/extra.toml";
  }
  for (const auto& n : options.nodes) cmd += " " + n;
  CommandResult r = RunShell(cmd);
  if (r.exit_code != 0) {
    Status s = Unavailable("local-cluster start failed (" + std::to_string(r.exit_code) +
                           "): " + r.out + r.err);
    return s;  // the destructor stops whatever started
  }
  c->env_ = "HERD_CONFIG=" + c->dir_ + "/herd.toml PATH=" + BinDir() + ":$PATH ";
  return c;
}

LocalCluster::~LocalCluster() {
  if (dir_.empty()) return;
  RunShell(SourceDir() + "/scripts/local-cluster stop " + dir_);
  if (getenv("HERD_KEEP_TEST_DIRS") == nullptr) RunShell("rm -rf " + dir_);
}

CommandResult LocalCluster::Herd(const std::string& args) const {
  return RunShell(env_ + "herd " + args);
}

Result<long> LocalCluster::Submit(const std::string& args) const {
  CommandResult r = Herd("submit -q " + args);
  if (r.exit_code != 0) return Invalid("herd submit failed (" + std::to_string(r.exit_code) + "): " + r.err);
  try {
    return std::stol(r.out);
  } catch (...) {
    return Invalid("herd submit printed no job id: " + r.out);
  }
}

Result<nlohmann::json> LocalCluster::Show(long id) const {
  CommandResult r = Herd("show " + std::to_string(id) + " --json");
  if (r.exit_code != 0) return Invalid("herd show failed: " + r.err);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded()) return Invalid("herd show printed no JSON: " + r.out);
  if (j.is_array() && !j.empty()) return j[0];
  return j;
}

namespace {
bool Terminal(const std::string& s) {
  return s == "COMPLETED" || s == "FAILED" || s == "CANCELLED" || s == "TIMEOUT" ||
         s == "NODE_FAIL";
}
}  // namespace

bool LocalCluster::WaitForState(long id, const std::string& state,
                                std::chrono::seconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto j = Show(id);
    if (j.ok()) {
      std::string s = (*j).value("state", "");
      if (s == state) return true;
      if (Terminal(s)) return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string LocalCluster::WaitForEnd(long id, std::chrono::seconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto j = Show(id);
    if (j.ok()) {
      std::string s = (*j).value("state", "");
      if (Terminal(s)) return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

std::string LocalCluster::log_tail() const {
  return RunShell("tail -n 20 " + dir_ + "/*.log 2>&1").out;
}

std::string MakeRootfs(const std::string& dir, std::string* why) {
  if (getuid() != 0) {
    *why = "container jobs need root for runc here";
    return "";
  }
  if (RunShell("command -v runc").exit_code != 0) {
    *why = "runc is not installed";
    return "";
  }
  std::string root = dir + "/rootfs";
  CommandResult r = RunShell(SourceDir() + "/tests/support/make-rootfs " + root);
  if (r.exit_code != 0) {
    *why = "cannot make a busybox rootfs: " + r.err;
    return "";
  }
  return root;
}

}  // namespace herd::testing
