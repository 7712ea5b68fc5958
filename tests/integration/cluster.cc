#include "tests/integration/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/support/eventually.h"

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
  // Daemons or commands of other users (herd-ctld's [controller] user, HerdAs) reach munged,
  // herd.toml and their files here; what is private below it is made so by herd itself.
  chmod(tmpl, 0755);
  std::unique_ptr<LocalCluster> c(new LocalCluster);
  c->dir_ = tmpl;
  std::string cmd = SourceDir() + "/scripts/local-cluster start " + c->dir_ + " --bin " +
                    BinDir() + " --auth " + options.auth;
  if (!options.extra_toml.empty()) {
    std::ofstream(c->dir_ + "/extra.toml") << options.extra_toml;
    cmd += " --config-extra " + c->dir_ + "/extra.toml";
  }
  if (!options.ctld_state_dir.empty()) cmd += " --ctld-state-dir " + options.ctld_state_dir;
  if (!options.node_state_size.empty()) cmd += " --node-state-size " + options.node_state_size;
  if (options.nodes.size() == 1 && options.nodes[0] == "none") {
    cmd += " --no-nodes";
  } else {
    for (const auto& n : options.nodes) cmd += " " + n;
  }
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

CommandResult LocalCluster::HerdIn(const std::string& shell, const std::string& args) const {
  return RunShell(shell + " " + env_ + "herd " + args);
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
  bool reached = false;
  Eventually(timeout, [&] {
    auto j = Show(id);
    const std::string s = j.ok() ? (*j).value("state", "") : "";
    reached = s == state;
    return reached || Terminal(s);
  });
  return reached;
}

std::string LocalCluster::WaitForEnd(long id, std::chrono::seconds timeout) const {
  std::string s;
  Eventually(timeout, [&] {
    auto j = Show(id);
    s = j.ok() ? (*j).value("state", "") : "";
    return Terminal(s);
  });
  return Terminal(s) ? s : "";
}

CommandResult LocalCluster::HerdAs(uint32_t uid, uint32_t gid, const std::string& args) const {
  chmod(dir_.c_str(), 0755);
  // The build tree may lie under a directory other users cannot enter (mktemp -d makes it 0700):
  // they run a copy of herd kept in the cluster directory.
  const std::string herd = dir_ + "/herd-for-other-users";
  if (access(herd.c_str(), X_OK) != 0) RunShell("install -m 0755 " + BinDir() + "/herd " + herd);
  return RunShell("cd / && setpriv --reuid=" + std::to_string(uid) + " --regid=" +
                  std::to_string(gid) + " --clear-groups env " + env_ + herd + " " + args);
}

std::string ReadText(const std::string& path) {
  // read(2), not an ifstream: a /proc file of a process that ends while it is read fails with
  // ESRCH, which libstdc++'s filebuf throws; here it reads as what was read before.
  std::string text;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

bool Alive(pid_t pid) {
  const std::string stat = ReadText("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return !stat.empty() && paren != std::string::npos && stat.substr(paren + 2, 1) != "Z";
}

std::string NodeState(const LocalCluster& c, const std::string& name) {
  CommandResult r = c.Herd("nodes --json");
  auto list = nlohmann::json::parse(r.out, nullptr, false);
  if (!list.is_array()) return "";
  for (const auto& n : list) {
    if (n.value("name", "") == name) return n.value("state", "");
  }
  return "";
}

namespace {

int CountOccurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

constexpr char kRegistered[] = "registered with herd-ctld";
}  // namespace

namespace {
// SIGKILL to `pid`, then waits until it is gone: reaped (by init) or a zombie.
Status KillAndWait(pid_t pid, const std::string& what) {
  if (pid <= 0) return NotFound("no pid file for " + what);
  if (kill(pid, SIGKILL) != 0) return Internal("cannot kill " + what);
  if (Eventually(std::chrono::seconds(10), [&] { return !Alive(pid); })) return Status::Ok();
  return Unavailable(what + " did not die");
}
}  // namespace

Status LocalCluster::KillNodeDaemon(const std::string& name) const {
  const std::string pid_text = ReadText(dir_ + "/noded-" + name + ".pid");
  return KillAndWait(static_cast<pid_t>(std::atol(pid_text.c_str())), "herd-noded of " + name);
}

Status LocalCluster::StartNodeDaemon(const std::string& name) const {
  const std::string log = dir_ + "/" + name + ".log";
  const int before = CountOccurrences(ReadText(log), kRegistered);
  CommandResult r = RunShell(SourceDir() + "/scripts/local-cluster start-node " + dir_ + " " + name);
  if (r.exit_code != 0) return Unavailable("local-cluster start-node failed: " + r.out + r.err);
  if (Eventually(std::chrono::seconds(30),
                 [&] { return CountOccurrences(ReadText(log), kRegistered) > before; })) {
    return Status::Ok();
  }
  return Unavailable("herd-noded of " + name + " did not register again");
}


Status LocalCluster::RestartController() const {
  HERD_RETURN_IF_ERROR(KillController());
  return StartController();
}

Status LocalCluster::KillController() const {
  const pid_t pid = static_cast<pid_t>(std::atol(ReadText(dir_ + "/ctld.pid").c_str()));
  return KillAndWait(pid, "herd-ctld");
}

Status LocalCluster::StartController(const std::string& ctld_args) const {
  CommandResult r =
      RunShell(SourceDir() + "/scripts/local-cluster start-ctld " + dir_ + " " + ctld_args);
  if (r.exit_code != 0) return Unavailable("local-cluster start-ctld failed: " + r.out + r.err);
  if (Eventually(std::chrono::seconds(30), [&] { return Herd("nodes --json").exit_code == 0; })) {
    return Status::Ok();
  }
  return Unavailable("herd-ctld did not answer after its restart");
}

std::string LocalCluster::ControllerEndpoint() const {
  // The generated herd.toml has `listen = ["ENDPOINT"]`.
  const std::string toml = ReadText(dir_ + "/herd.toml");
  size_t at = toml.find("listen");
  if (at == std::string::npos) return "";
  size_t open = toml.find('"', at);
  size_t close = open == std::string::npos ? open : toml.find('"', open + 1);
  if (close == std::string::npos) return "";
  return toml.substr(open + 1, close - open - 1);
}

pid_t LocalCluster::NodeDaemonPid(const std::string& name) const {
  return static_cast<pid_t>(std::atol(ReadText(dir_ + "/noded-" + name + ".pid").c_str()));
}

std::string LocalCluster::JobDir(const std::string& name, long id, int worker, int run) const {
  return dir_ + "/nodes/" + name + "/jobs/" + std::to_string(id) + "." + std::to_string(run) +
         "." + std::to_string(worker);
}

std::string LocalCluster::CgroupMode(const std::string& name) const {
  std::istringstream log(ReadText(dir_ + "/" + name + ".log"));
  std::string line, mode;
  const std::string key = "cgroups: ";
  while (std::getline(log, line)) {  // the last start counts
    size_t at = line.rfind(key);
    if (at != std::string::npos) mode = line.substr(at + key.size());
  }
  return mode;
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
