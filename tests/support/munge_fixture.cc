#include "tests/support/munge_fixture.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "tests/support/eventually.h"

namespace herd::testing {
namespace {

// munged and mungekey live in /usr/sbin, which a non-root PATH often lacks.
std::string FindProgram(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::string path = std::string(env ? env : "") + ":/usr/sbin:/sbin:/usr/local/sbin";
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Runs argv to completion with stdout and stderr appended to `log`; returns its exit status.
int Run(const std::vector<std::string>& argv, const std::string& log) {
  // Everything is allocated before fork: the child of a threaded process may only exec.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// True once `pid` has exited (gone, or a zombie its adoptive parent has not reaped yet).
bool Exited(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] == 'Z';
}

}  // namespace

Result<std::unique_ptr<MungeDaemon>> MungeDaemon::Start() {
  std::string munged = FindProgram("munged");
  std::string mungekey = FindProgram("mungekey");
  if (munged.empty() || mungekey.empty()) {
    return NotFound("munged or mungekey is not installed (Debian package 'munge')");
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/herd-munge-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return Internal("mkdtemp " + pattern + " failed");
  // munged refuses a socket directory that others cannot traverse.
  chmod(pattern.c_str(), 0755);
  std::unique_ptr<MungeDaemon> daemon(new MungeDaemon(pattern, munged));
  const std::string& dir = daemon->dir_;
  std::string log = dir + "/commands.log";
  if (Run({mungekey, "--create", "--keyfile=" + dir + "/munge.key"}, log) != 0) {
    daemon->socket_.clear();  // nothing to stop
    return Internal("mungekey failed: " + ReadFile(log));
  }
  // munged daemonizes only once its socket is listening, so its exit means ready.
  int rc = Run({munged, "--socket=" + daemon->socket_, "--key-file=" + dir + "/munge.key",
                "--pid-file=" + dir + "/munged.pid", "--log-file=" + dir + "/munged.log",
                "--seed-file=" + dir + "/munged.seed"},
               log);
  if (rc != 0) {
    daemon->socket_.clear();  // nothing to stop
    return Internal("munged failed to start: " + ReadFile(log) + ReadFile(dir + "/munged.log"));
  }
  return daemon;
}

MungeDaemon::MungeDaemon(std::string dir, std::string munged)
    : dir_(std::move(dir)), munged_(std::move(munged)), socket_(dir_ + "/munge.sock") {}

MungeDaemon::~MungeDaemon() {
  // SIGTERM and a poll of the pid stop munged in milliseconds; `munged --stop` does the
  // same but checks once a second (1.7 s per test). It remains the fallback.
  pid_t pid = static_cast<pid_t>(std::atol(ReadFile(dir_ + "/munged.pid").c_str()));
  bool stopped = false;
  if (!socket_.empty() && pid > 1 && kill(pid, SIGTERM) == 0) {
    stopped = Eventually(std::chrono::seconds(5), [&] { return Exited(pid); });
  }
  if (!socket_.empty() && !stopped) {
    Run({munged_, "--stop", "--socket=" + socket_}, dir_ + "/commands.log");
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

}  // namespace herd::testing
