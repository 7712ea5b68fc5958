#include "noded/runtime/shim.h"

#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "common/util/path.h"
#include "noded/runtime/child_error.h"
#include "noded/runtime/cgroup.h"
#include "noded/runtime/job_dir.h"
#include "noded/runtime/nvidia.h"
#include "noded/runtime/relay.h"

namespace herd::runtime {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr int kDefaultGraceMs = 10000;
// How often the log's size is checked against its cap: output past the cap may use the disk
// for at most this long.
constexpr int kLogCheckMs = 250;

// The CPU set of `cores` (ids of this machine), for sched_setaffinity.
cpu_set_t CpuSet(const std::vector<int>& cores) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cores) CPU_SET(c, &set);
  return set;
}

// Undoes in a child what the shim set up for itself before it execs something else, and what
// the shim inherited: a herd-noded started in the background by a shell ignores SIGINT and
// SIGQUIT, which a job (a shell's ^C) must not.
void ResetSignalsInChild() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  ResetSignalDispositions();
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Finds argv0 the way a shell would, in the PATH the job will see.
std::optional<std::string> FindExecutable(const std::string& argv0, const std::string& path) {
  if (argv0.find('/') != std::string::npos) return argv0;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + argv0;
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return std::nullopt;
}

// The job's user: ids, name, home and supplementary groups (defaults for a uid with no passwd
// entry). Everything herd-shim does for the job runs with exactly these ids.
struct UserInfo {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name, home;
  std::vector<gid_t> groups;
};

UserInfo LookupUser(uid_t uid, gid_t gid) {
  UserInfo info{uid, gid, std::to_string(uid), "/", {gid}};
  struct passwd* pw = getpwuid(uid);
  if (pw == nullptr) return info;
  info.name = pw->pw_name;
  info.home = pw->pw_dir;
  int n = 64;
  std::vector<gid_t> groups(n);
  if (getgrouplist(pw->pw_name, gid, groups.data(), &n) < 0) {
    groups.resize(n);
    getgrouplist(pw->pw_name, gid, groups.data(), &n);
  }
  groups.resize(n);
  info.groups = groups;
  return info;
}

// Whether acting for `user` needs other ids than the shim's own (a root shim, a non-root job).
bool NeedsSwitch(const UserInfo& user) {
  return geteuid() == 0 && (user.uid != 0 || user.gid != 0);
}

// Becomes `user` for good: supplementary groups, gid, uid, in that order (each later step
// needs the privilege the earlier ones keep). Only for a child that will exec or exit.
bool DropToUser(const UserInfo& user) {
  return setgroups(user.groups.size(), user.groups.data()) == 0 && setgid(user.gid) == 0 &&
         setuid(user.uid) == 0;
}

// Runs fn with the effective ids (groups, gid, uid) of `user`, so that every path fn opens,
// stats or resolves is checked as that user's would be, then takes root's ids back. The shim is
// single-threaded, so the whole process switches; a process whose ids changed is not dumpable,
// so the user cannot attach to it meanwhile. Aborts when it cannot switch back: going on with
// the wrong ids would be unsafe either way.
Status WithUserRights(const UserInfo& user, const std::function<Status()>& fn) {
  if (!NeedsSwitch(user)) return fn();
  const gid_t egid = getegid();
  std::vector<gid_t> groups(std::max(getgroups(0, nullptr), 0));
  groups.resize(std::max(getgroups(groups.size(), groups.data()), 0));
  auto restore = [&] {
    if (seteuid(0) != 0 || setegid(egid) != 0 || setgroups(groups.size(), groups.data()) != 0) {
      std::abort();
    }
  };
  if (setgroups(user.groups.size(), user.groups.data()) != 0 || setegid(user.gid) != 0 ||
      seteuid(user.uid) != 0) {
    const int err = errno;
    restore();
    return Internal("cannot take the rights of uid " + std::to_string(user.uid) + ": " +
                    ErrnoText(err));
  }
  Status status = fn();
  restore();
  return status;
}

// Removes what a rootless image must not hold: setuid and setgid bits, device nodes. Runs in
// a child that already is the job's user, so it can touch nothing else; FTW_PHYS: symlinks are
// never followed.
int SanitizeEntry(const char* path, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_SL || type == FTW_SLN) return 0;
  if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
    unlink(path);
  } else if ((st->st_mode & (S_ISUID | S_ISGID)) != 0) {
    chmod(path, st->st_mode & 07777 & ~(S_ISUID | S_ISGID));
  }
  return 0;
}

// Keeps the last `limit` bytes a command printed, so a chatty or hostile one cannot fill memory.
void AppendBounded(std::string* out, const char* data, size_t n, size_t limit = 4096) {
  out->append(data, n);
  if (out->size() > limit) out->erase(0, out->size() - limit);
}

// What a child that unpacks an image for a job gets besides its user and directory.
struct UnpackBounds {
  int in_fd = -1;                     // its stdin; -1: /dev/null
  int64_t max_file_bytes = 0;         // RLIMIT_FSIZE: no file it writes grows past this; 0: none
  const JobCgroup* cgroup = nullptr;  // joined before it becomes the user, so the job pays for it
  // Asked about every 100 ms while the child runs (its output captured): an error kills the
  // child and is what RunChild returns.
  std::function<Status()> watch;
};

// Runs argv (or, when argv is empty, `body`) in a child that first became `as` (when given)
// and entered cwd_fd (when >= 0), with stdin from /dev/null. Output goes to out_fd, or when
// out_fd < 0 its end is captured and quoted in the error. Error when it fails or exits non-zero,
// unless every line it printed is one that `benign` accepts (then a failure is forgiven).
// pass_fds (at most kMaxPassFds) become its descriptors 3, 4..., left open across exec.
constexpr size_t kMaxPassFds = 4;
Status RunChild(const std::vector<std::string>& argv, int out_fd, const UserInfo* as, int cwd_fd,
                const std::function<int()>& body = nullptr,
                const std::function<bool(const std::string&)>& benign = nullptr,
                const UnpackBounds& bounds = {}, const std::vector<int>& pass_fds = {}) {
  if (pass_fds.size() > kMaxPassFds) return Internal("too many descriptors to pass");
  int pipefd[2] = {-1, -1};
  if (out_fd < 0 && pipe2(pipefd, O_CLOEXEC) != 0) return Internal("pipe: " + ErrnoText(errno));
  std::vector<std::string> args = argv;
  std::vector<char*> cargs = CStrings(args);
  // A child that became the user runs with a minimal environment of its own, never root's.
  std::vector<std::string> env_strings = {std::string("PATH=") + kDefaultPath, "HOME=/"};
  std::vector<char*> envp = CStrings(env_strings);
  const bool drop = as != nullptr && NeedsSwitch(*as);
  const std::string name = argv.empty() ? "unpack" : argv[0];
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = fork();
  if (pid == 0) {
    ResetSignalsInChild();
    int out = out_fd >= 0 ? out_fd : pipefd[1];
    dup2(bounds.in_fd >= 0 ? bounds.in_fd : devnull, 0);
    dup2(out, 1);
    dup2(out, 2);
    // Above all of 3, 4... first, so that none is overwritten before it is moved; dup2 leaves
    // the copies open across exec. Everything of the shim's is close-on-exec.
    int high[kMaxPassFds];
    for (size_t i = 0; i < pass_fds.size(); ++i) {
      high[i] = fcntl(pass_fds[i], F_DUPFD_CLOEXEC, 3 + kMaxPassFds);
    }
    for (size_t i = 0; i < pass_fds.size(); ++i) {
      if (high[i] < 0 || dup2(high[i], 3 + i) < 0) {
        dprintf(2, "cannot pass a descriptor: %s\n", strerror(errno));
        _exit(126);
      }
    }
    if (bounds.cgroup != nullptr && !bounds.cgroup->Attach(getpid()).ok()) {
      dprintf(2, "cannot join the job's cgroup\n");
      _exit(126);
    }
    if (bounds.max_file_bytes > 0) {
      const struct rlimit fsize = {static_cast<rlim_t>(bounds.max_file_bytes),
                                   static_cast<rlim_t>(bounds.max_file_bytes)};
      if (setrlimit(RLIMIT_FSIZE, &fsize) != 0) _exit(126);
    }
    if (drop && !DropToUser(*as)) {
      dprintf(2, "cannot switch to uid %u: %s\n", as->uid, strerror(errno));
      _exit(126);
    }
    if (cwd_fd >= 0 && fchdir(cwd_fd) != 0) {
      dprintf(2, "cannot enter the unpack directory: %s\n", strerror(errno));
      _exit(126);
    }
    if (argv.empty()) _exit(body());
    if (as != nullptr) {
      execvpe(cargs[0], cargs.data(), envp.data());
    } else {
      execvp(cargs[0], cargs.data());
    }
    _exit(127);
  }
  close(devnull);
  std::string output, line;
  bool all_benign = benign != nullptr;
  auto end_line = [&] {
    if (!benign || !benign(line)) {
      all_benign = false;
      AppendBounded(&output, line.data(), line.size());
      AppendBounded(&output, "\n", 1);
    }
    line.clear();
  };
  Status stopped;  // why `watch` had the child killed
  if (out_fd < 0) {
    close(pipefd[1]);
    char buf[4096];
    ssize_t n;
    auto next_watch = Clock::now();
    while (true) {
      if (bounds.watch && pid > 0) {
        if (stopped.ok() && Clock::now() >= next_watch) {
          stopped = bounds.watch();
          if (!stopped.ok()) kill(pid, SIGKILL);
          next_watch = Clock::now() + std::chrono::milliseconds(100);
        }
        struct pollfd pfd = {pipefd[0], POLLIN, 0};
        if (poll(&pfd, 1, 100) == 0) continue;
      }
      n = read(pipefd[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] == '\n') {
          end_line();
        } else if (line.size() < 4096) {
          line.push_back(buf[i]);
        }
      }
    }
    if (!line.empty()) end_line();
    close(pipefd[0]);
  }
  if (pid < 0) return Internal("fork: " + ErrnoText(errno));
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!stopped.ok()) return stopped;
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGXFSZ && bounds.max_file_bytes > 0) {
    return Invalid("'" + name + "' was stopped: a file it wrote reached the limit of " +
                   std::to_string(bounds.max_file_bytes) + " bytes (max_image_size)");
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return Status::Ok();
  if (WIFEXITED(st) && WEXITSTATUS(st) != 127 && all_benign) return Status::Ok();
  while (!output.empty() && output.back() == '\n') output.pop_back();
  std::string how = WIFEXITED(st) ? "exited with code " + std::to_string(WEXITSTATUS(st))
                                  : "was killed by signal " + std::to_string(WTERMSIG(st));
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && output.empty()) how = "could not be run";
  return Internal("'" + name + "' " + how + (output.empty() ? "" : ": " + output));
}

std::vector<std::string> JobEnv(const LaunchSpec& spec, const UserInfo& user, bool container) {
  std::map<std::string, std::string> env = {
      {"PATH", kDefaultPath},
      {"HOME", container ? (spec.uid == 0 ? "/root" : "/") : user.home},
      {"USER", user.name},
      {"LOGNAME", user.name}};
  for (const auto& [k, v] : spec.env) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

// The program every container job starts through (chdir_main.c), installed next to herd-shim,
// and the descriptors runc passes on to it (runc create --preserve-fds): the program itself, from
// which it is executed, and the pipe it reports a failure on.
constexpr char kChdirHelper[] = "herd-chdir";
// kOutFd and kErrFd become the job's stdout and stderr (the pipes of its output pump).
constexpr int kHelperFd = 3, kReportFd = 4, kOutFd = 5, kErrFd = 6;

// The container's working directory: the job's, or "/" when none was given.
std::string ContainerCwd(const LaunchSpec& spec) { return spec.cwd.empty() ? "/" : spec.cwd; }

// The runtime-spec config.json of a container job. `volumes` are (source, destination) binds
// whose sources herd-shim already resolved and checked (see Shim::StageVolumes).
// The job's command runs through herd-chdir, which enters the working directory as the job's
// user: runc would enter it as root, after herd-shim's check, in a tree the user can still
// change. runc itself starts in "/", the container's root; for a job of root it keeps the
// working directory, which it makes when missing, and root may enter any directory anyway.
nlohmann::json OciConfig(const ShimSpec& shim, const std::string& rootfs, const UserInfo& user,
                         const std::vector<std::pair<std::string, std::string>>& volumes) {
  using nlohmann::json;
  const LaunchSpec& spec = shim.launch;
  // A job of a plain user gets no capability at all (runc would otherwise hand them to it even
  // as a non-root uid); a root job, which only root can submit, gets Docker's default set.
  json caps = json::array();
  if (spec.uid == 0) {
    caps = {"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
            "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
            "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
            "CAP_KILL",    "CAP_AUDIT_WRITE"};
  }
  json groups = json::array();
  for (gid_t g : user.groups) {
    if (g != spec.gid) groups.push_back(g);
  }
  json mounts = {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
                 {{"destination", "/dev"},
                  {"type", "tmpfs"},
                  {"source", "tmpfs"},
                  {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
                 {{"destination", "/dev/pts"},
                  {"type", "devpts"},
                  {"source", "devpts"},
                  {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
                 {{"destination", "/dev/shm"},
                  {"type", "tmpfs"},
                  {"source", "shm"},
                  {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
                 {{"destination", "/dev/mqueue"},
                  {"type", "mqueue"},
                  {"source", "mqueue"},
                  {"options", {"nosuid", "noexec", "nodev"}}},
                 {{"destination", "/sys"},
                  {"type", "sysfs"},
                  {"source", "sysfs"},
                  {"options", {"nosuid", "noexec", "nodev", "ro"}}},
                 {{"destination", "/tmp"},
                  {"type", "tmpfs"},
                  {"source", "tmpfs"},
                  {"options", {"nosuid", "nodev", "mode=1777"}}}};
  for (const auto& [source, target] : volumes) {
    mounts.push_back({{"destination", target},
                      {"type", "bind"},
                      {"source", source},
                      {"options", {"rbind", "rw", "nosuid", "nodev"}}});
  }
  json resources = {{"devices", {{{"allow", false}, {"access", "rwm"}}}}};
  // The job's GPUs and the driver's libraries, where this host has NVIDIA's driver.
  json devices = json::array();
  const GpuPassthrough gpu = FindGpuPassthrough(spec.gpus, "/dev", DefaultDriverLibDirs());
  for (const auto& d : gpu.devices) {
    devices.push_back({{"path", d.path}, {"type", "c"}, {"major", d.major}, {"minor", d.minor},
                       {"fileMode", 0666}, {"uid", 0}, {"gid", 0}});
    resources["devices"].push_back(
        {{"allow", true}, {"type", "c"}, {"major", d.major}, {"minor", d.minor}, {"access", "rwm"}});
  }
  for (const auto& lib : gpu.libraries) {
    mounts.push_back({{"destination", lib}, {"type", "bind"}, {"source", lib},
                      {"options", {"rbind", "ro"}}});
  }
  if (shim.use_cgroups) {
    if (spec.memory_mib > 0) {
      int64_t bytes = spec.memory_mib << 20;
      resources["memory"] = {{"limit", bytes}, {"swap", bytes}};
    }
    if (spec.pids_max > 0) resources["pids"] = {{"limit", spec.pids_max}};
    if (!spec.cpus.empty()) {
      std::string list;
      for (int c : spec.cpus) list += (list.empty() ? "" : ",") + std::to_string(c);
      resources["cpu"] = {{"cpus", list}};
    }
  }
  std::vector<std::string> env = JobEnv(spec, user, /*container=*/true);
  const std::string cwd = ContainerCwd(spec);
  std::vector<std::string> args = {"/proc/self/fd/" + std::to_string(kHelperFd),
                                   "-r", std::to_string(kReportFd),
                                   "-o", std::to_string(kOutFd),
                                   "-e", std::to_string(kErrFd),
                                   cwd};
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  json config = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", spec.uid}, {"gid", spec.gid}, {"additionalGids", groups}}},
        {"args", args},
        {"env", env},
        {"cwd", NeedsSwitch(user) ? "/" : cwd},
        {"capabilities",
         {{"bounding", caps},
          {"effective", caps},
          {"permitted", caps},
          {"inheritable", json::array()},
          {"ambient", json::array()}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", rootfs}, {"readonly", false}}},
      {"mounts", mounts},
      {"linux",
       {{"cgroupsPath", "/" + shim.cgroup_parent + "/" + spec.job_key},
        {"devices", devices},
        {"resources", resources},
        // No network namespace: jobs share the host network (NCCL, RDMA).
        {"namespaces",
         {{{"type", "pid"}}, {{"type", "mount"}}, {{"type", "ipc"}}, {{"type", "uts"}}}},
        {"maskedPaths",
         {"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}}};
  return config;
}

// A mount of a container, placed where runc will place it: at its destination as that resolves
// once the mounts before it are made.
struct ContainerMount {
  // kImage: the rootfs; kBind: a host directory or file (a volume, a driver library); kEmpty: a
  // fresh file system or a directory runc makes for a mount point, holding only mount points;
  // kRunc: /proc, /sys and /dev, which runc fills itself.
  enum Kind { kImage, kBind, kEmpty, kRunc } kind;
  std::string target;  // container path, symbolic links resolved
  int fd = -1;         // kImage, kBind: O_PATH descriptor of the tree or file it shows
};

// Where a container path leads (see ResolveInContainer).
struct ContainerPath {
  int err = 0;  // 0: found; ENOENT: `path` was found and `missing` below it was not; else why not
  std::string path;                       // the container path reached, symbolic links resolved
  std::vector<std::string> missing;       // err == ENOENT: the rest of the path
  const ContainerMount* mount = nullptr;  // the mount that shows `path`
  int fd = -1;  // found in an image or a bind: O_PATH descriptor of it; the caller closes it
  bool dir = false;
};

constexpr int kMaxSymlinks = 40;  // as the kernel's

std::deque<std::string> SplitPath(const std::string& path) {
  std::deque<std::string> parts;
  for (size_t start = 0, end; start < path.size(); start = end + 1) {
    end = std::min(path.find('/', start), path.size());
    if (end > start) parts.push_back(path.substr(start, end - start));
  }
  return parts;
}

std::string ChildPath(const std::string& dir, const std::string& name) {
  return (dir == "/" ? "" : dir) + "/" + name;
}

std::string JoinPath(const std::vector<std::string>& parts) {
  std::string path;
  for (const std::string& part : parts) path += "/" + part;
  return path.empty() ? "/" : path;
}

// The mount that shows container path `path`: the last one made on or above it hides the others.
const ContainerMount& MountAt(const std::vector<ContainerMount>& mounts, const std::string& path) {
  const ContainerMount* found = &mounts.front();
  for (const ContainerMount& m : mounts) {
    if (PathIsUnder(path, m.target)) found = &m;
  }
  return *found;
}

// Resolves container path `path` as the kernel will once `mounts` (mounts[0] the rootfs at "/")
// are made, but with the caller's rights, which are the job's user's. It exists because runc
// looks up mount destinations as root, through links, `..` and volumes that the user shaped; and
// so that a working directory the user cannot enter is refused with a clear reason before runc
// runs (herd-chdir then enters it as the user, which is what keeps a later swap harmless). Each
// component is opened with O_PATH|O_NOFOLLOW in the tree of the mount
// that shows it; symbolic links are followed here, within the container's root, and `..` is
// walked again from the root, so it never climbs above it and crosses mounts as the kernel does.
ContainerPath ResolveInContainer(const std::vector<ContainerMount>& mounts,
                                 const std::string& path) {
  std::deque<std::string> todo = SplitPath(path);
  std::vector<std::string> done;  // the path reached, one component each
  const ContainerMount* in = nullptr;
  int fd = -1;  // the directory reached; -1 in an empty mount
  bool dir = true;
  auto to_root = [&] {
    if (fd >= 0) close(fd);
    done.clear();
    in = &MountAt(mounts, "/");
    fd = in->fd >= 0 ? fcntl(in->fd, F_DUPFD_CLOEXEC, 0) : -1;
    dir = true;
  };
  auto finish = [&](int err) {
    ContainerPath out{err, JoinPath(done), {}, in, -1, dir};
    if (err == ENOENT) {
      std::copy_if(todo.begin(), todo.end(), std::back_inserter(out.missing),
                   [](const std::string& name) { return name != "."; });
    }
    if (err == 0) {
      out.fd = fd;
    } else if (fd >= 0) {
      close(fd);
    }
    return out;
  };
  to_root();
  int links = 0;
  while (!todo.empty()) {
    if (!dir) return finish(ENOTDIR);
    const std::string name = todo.front();
    todo.pop_front();
    if (name == ".") continue;
    if (name == "..") {
      if (!done.empty()) done.pop_back();
      todo.insert(todo.begin(), done.begin(), done.end());
      to_root();
      continue;
    }
    done.push_back(name);
    const ContainerMount& m = MountAt(mounts, JoinPath(done));
    int child = -1, err = 0;
    if (m.kind == ContainerMount::kRunc) {
      in = &m;
      return finish(ENOENT);  // nothing there is the user's to name
    } else if (m.target == JoinPath(done)) {
      if (m.fd >= 0 && (child = fcntl(m.fd, F_DUPFD_CLOEXEC, 0)) < 0) err = errno;
    } else if (fd < 0) {
      err = ENOENT;  // an empty mount holds only the mounts made on it
    } else if ((child = openat(fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0) {
      err = errno;
    }
    struct stat st = {};
    if (err == 0 && child >= 0 && fstat(child, &st) != 0) err = errno;
    if (err == 0 && S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      const ssize_t n = readlinkat(child, "", target, sizeof target);
      err = ++links > kMaxSymlinks                     ? ELOOP
            : n < 0                                    ? errno
            : n == static_cast<ssize_t>(sizeof target) ? ENAMETOOLONG
                                                       : 0;
      close(child);
      done.pop_back();
      if (err != 0) return finish(err);
      std::deque<std::string> parts = SplitPath(std::string(target, n));
      todo.insert(todo.begin(), parts.begin(), parts.end());
      if (n > 0 && target[0] == '/') to_root();  // an absolute link starts at the root again
      continue;
    }
    if (err != 0) {
      if (child >= 0) close(child);
      done.pop_back();
      todo.push_front(name);
      return finish(err);
    }
    if (fd >= 0) close(fd);
    fd = child;
    in = &m;
    dir = child < 0 || S_ISDIR(st.st_mode);
  }
  return finish(0);
}

// Ok when umoci, which unpacks OCI image layouts, is in herd-shim's PATH; else how to get it.
Status UmociInstalled(const std::string& image) {
  const char* path_env = getenv("PATH");
  if (FindExecutable("umoci", path_env != nullptr ? path_env : kDefaultPath)) return Status::Ok();
  return Invalid("image '" + image +
                 "' is an OCI image layout, which needs umoci on the node: install it "
                 "(apt-get install umoci, or scripts/install-deps)");
}

// Where execvp would look for argv0, in order, given the PATH the job will see. The child
// tries them after it became the job's user, so only what that user may run is found.
std::vector<std::string> ExecCandidates(const std::string& argv0, const std::string& path) {
  if (argv0.find('/') != std::string::npos) return {argv0};
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    out.push_back((dir.empty() ? "." : dir) + "/" + argv0);
    start = end + 1;
  }
  return out;
}

// Why a job did not start, from what its first process reported (child_error.h).
Status StartFailure(const ChildError& e, const LaunchSpec& spec, const std::string& cwd) {
  switch (e.stage) {
    case kStageChdir:
      return Invalid("cannot chdir to '" + cwd + "': " + ErrnoText(e.err));
    case kStageAffinity:
      return Invalid("cannot pin the job to its cpus: " + ErrnoText(e.err));
    case kStageCredentials:
      return Invalid("cannot switch to uid " + std::to_string(spec.uid) + " gid " +
                     std::to_string(spec.gid) + ": " + ErrnoText(e.err));
    default:
      if (!spec.script.empty()) {
        const size_t eol = spec.script.find('\n');
        return Invalid("cannot run the batch script '" + spec.argv[0] + "' with '" +
                       (spec.script.starts_with("#!") ? spec.script.substr(0, eol) : "/bin/sh") +
                       "': " + ErrnoText(e.err));
      }
      return Invalid("cannot run '" + spec.argv[0] + "': " + ErrnoText(e.err));
  }
}

// tar's option for the compression of the archive open at fd, from its first bytes ("" for a
// plain tar): reading from a descriptor, tar cannot tell by a file name.
std::string CompressionFlag(int fd) {
  unsigned char magic[6] = {};
  const ssize_t n = pread(fd, magic, sizeof magic, 0);
  auto starts = [&](std::initializer_list<unsigned char> bytes) {
    if (n < static_cast<ssize_t>(bytes.size())) return false;
    return std::equal(bytes.begin(), bytes.end(), magic);
  };
  if (starts({0x1f, 0x8b})) return "--gzip";
  if (starts({0xfd, '7', 'z', 'X', 'Z', 0x00})) return "--xz";
  if (starts({0x28, 0xb5, 0x2f, 0xfd})) return "--zstd";
  if (starts({'B', 'Z', 'h'})) return "--bzip2";
  return "";
}

// A memory file holding a batch script's text, sealed so that nobody (the job's user included)
// can change it once written; close-on-exec. The job runs it through /proc/self/fd/N, so it
// needs no path on disk the user could reach or swap.
Result<int> SealedScript(const std::string& text) {
  constexpr unsigned kMfdExec = 0x10;  // MFD_EXEC: executable even where vm.memfd_noexec is set
  int fd = memfd_create("herd-script", MFD_CLOEXEC | MFD_ALLOW_SEALING | kMfdExec);
  if (fd < 0 && errno == EINVAL) fd = memfd_create("herd-script", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Internal("cannot hold the batch script: memfd_create: " + ErrnoText(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      close(fd);
      return Internal("cannot hold the batch script: write: " + ErrnoText(err));
    }
    done += static_cast<size_t>(n);
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    const int err = errno;
    close(fd);
    return Internal("cannot seal the batch script: " + ErrnoText(err));
  }
  return fd;
}

// One output stream of a batch job (stdout or stderr) as its output pump sees it.
struct OutputStream {
  int pipe = -1;     // read end: what the job writes
  int log = -1;      // its own log in the job's directory (kStdoutLogFile...)
  int file = -1;     // the user's file (LaunchSpec::stdout_path...); -1: none, or writing failed
  std::string path;  // the user's file's path; "" = none
};

struct OutputPump {
  OutputStream out, err;
  int log_fd = -1;  // the job's log, both streams as written
};

// Opens the user's output files of `spec` into pump. Runs in the output pump after it became
// the job's user: the kernel alone decides what that user may open or create.
Status OpenOutputFiles(const LaunchSpec& spec, OutputPump* pump) {
  // O_APPEND even when truncating: stdout and stderr may share a file, or several workers one.
  // O_NONBLOCK while opening: a FIFO without a reader fails (ENXIO) instead of hanging.
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_NOCTTY | O_CLOEXEC | O_NONBLOCK |
                    (spec.append_output ? 0 : O_TRUNC);
  for (OutputStream* stream : {&pump->out, &pump->err}) {
    if (stream->path.empty()) continue;
    if (stream == &pump->err && stream->path == pump->out.path) {
      stream->file = pump->out.file;
      continue;
    }
    const std::string what = std::string("cannot open the ") +
                             (stream == &pump->out ? "output" : "error") + " file '" +
                             stream->path + "': ";
    stream->file = open(stream->path.c_str(), flags, 0600);
    if (stream->file < 0) return Denied(what + ErrnoText(errno));
    // One of the pump's own pipes (through /proc/self/fd) would feed it its own output forever.
    struct stat file, pipe;
    for (int own : {pump->out.pipe, pump->err.pipe}) {
      if (fstat(stream->file, &file) == 0 && fstat(own, &pipe) == 0 &&
          file.st_dev == pipe.st_dev && file.st_ino == pipe.st_ino) {
        return Invalid(what + "it is the job's own output");
      }
    }
    fcntl(stream->file, F_SETFL, fcntl(stream->file, F_GETFL) & ~O_NONBLOCK);
  }
  return Status::Ok();
}

// Writes all of data to fd (blocking); false with errno set when it cannot.
bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Copies what the job writes into its files and logs until both streams reach their end (every
// process holding them is gone). A file that cannot be written to any more (a full disk) is left
// with a note in the logs; the job goes on, its output kept in the logs.
int RunOutputPump(OutputPump& pump) {
  std::vector<char> buf(64 << 10);
  OutputStream* streams[] = {&pump.out, &pump.err};
  while (pump.out.pipe >= 0 || pump.err.pipe >= 0) {
    struct pollfd fds[2];
    OutputStream* polled[2];
    nfds_t n = 0;
    for (OutputStream* s : streams) {
      if (s->pipe < 0) continue;
      fds[n] = {s->pipe, POLLIN, 0};
      polled[n++] = s;
    }
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      OutputStream& s = *polled[i];
      const ssize_t got = read(s.pipe, buf.data(), buf.size());
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        close(s.pipe);
        s.pipe = -1;
        continue;
      }
      if (s.file >= 0 && !WriteAll(s.file, buf.data(), got)) {
        const std::string note = "\n[herd: cannot write to '" + s.path + "': " +
                                 ErrnoText(errno) + "; the rest is kept only for herd logs]\n";
        const int failed = s.file;
        for (OutputStream* other : streams) {
          if (other->file == failed) other->file = -1;
        }
        (void)!WriteAll(s.log, note.data(), note.size());
        (void)!WriteAll(pump.log_fd, note.data(), note.size());
      }
      (void)!WriteAll(s.log, buf.data(), got);
      (void)!WriteAll(pump.log_fd, buf.data(), got);
    }
  }
  return 0;
}

class Shim {
 public:
  Shim(std::string dir, int ready_fd) : dir_(std::move(dir)), ready_fd_(ready_fd) {}
  int Run();

 private:
  std::string Path(const char* name) const { return dir_ + "/" + name; }
  void Note(const std::string& line) const { AppendLine(Path(kShimLogFile), line); }
  Status Start();
  Status StartProcess();
  Status StartContainer();
  // Puts the job's root file system at *rootfs (under bundle), from the image the user named.
  Status PrepareRootfs(const UserInfo& user, const std::string& bundle, std::string* rootfs);
  // How the children that unpack an image into `bundle` are bounded: the job's cgroup (when
  // made), max_image_size per file and for the whole, min_free_space.
  UnpackBounds UnpackBoundsFor(const std::string& bundle) const;
  // Mounts an overlay of the image directory lower_fd (whose stat is `lower`) on bundle/rootfs.
  Status MountOverlay(const std::string& bundle, int lower_fd, const struct stat& lower);
  // Refuses what `config` would have runc do as root that the job's user could not (make a
  // directory or file in a volume), and a working directory `cwd` the user cannot enter there.
  Status CheckContainerPaths(const UserInfo& user, const nlohmann::json& config,
                             const std::string& cwd);
  // Resolves, checks and mounts the job's volumes under bundle/volumes; *volumes gets the
  // (source, destination) binds for runc.
  Status StageVolumes(const UserInfo& user, const std::string& bundle,
                      std::vector<std::pair<std::string, std::string>>* volumes);
  std::vector<std::string> Runc(std::vector<std::string> args) const;
  // pass_fds: as RunCommand's.
  Status RuncWithLogError(const std::vector<std::string>& args, const std::string& what,
                          const std::vector<int>& pass_fds = {});
  void Signal(int sig);
  void Thaw();
  void BeginKill();
  void ReapAll();
  void KillLeftovers();
  void Cleanup();
  void Ready(const std::string& line);
  void CapLog(bool final);
  // Opens one of the job's logs in its directory (kLogFile...), for appending, as the user's.
  Result<int> OpenLog(const char* name) const;
  // Forks the job's output pump (a batch job): it becomes the job's user, opens the job's output
  // files (LaunchSpec::stdout_path...) with that user's rights alone, then copies what the job
  // writes to its stdout and stderr (job_out_fd_, job_err_fd_) into them and into the job's logs.
  // An error (a file the user cannot open) means the job must not start.
  Status StartOutput();
  // Closes the shim's copies of the job's stdout and stderr, then waits (bounded) until the pump
  // copied all the job wrote.
  void FinishOutput();
  // Waits until child `pid` was reaped (ReapAll sets *reaped), at most `limit`, then kills it.
  void AwaitChild(pid_t pid, const bool* reaped, std::chrono::seconds limit, const char* what);
  // Forks the job's session relay (relay.h) with the relay's ends of `io`: it listens on the job
  // directory's session socket, as the job's user, until the job ended.
  Status StartRelay(const UserInfo& user, SessionIo* io);
  // Tells the relay the job's exit code and waits (bounded) until it sent the rest.
  void FinishRelay(int exit_code);

  std::string dir_;
  int ready_fd_;
  ShimSpec spec_;
  int log_fd_ = -1;
  bool container_ = false;
  std::vector<std::string> mounts_;  // made by the shim for a container, unmounted at Cleanup
  std::optional<JobCgroup> cgroup_;
  pid_t pid_ = -1;
  std::optional<int> status_;  // waitpid status of the job's main process once it ended
  std::optional<Clock::time_point> kill_deadline_;
  pid_t relay_pid_ = -1;
  bool relay_reaped_ = false;
  int relay_exit_fd_ = -1;  // the relay reads the job's exit code from this pipe
  // A batch job's stdout and stderr: the write ends of the pipes its output pump reads.
  int job_out_fd_ = -1;
  int job_err_fd_ = -1;
  pid_t pump_pid_ = -1;
  bool pump_reaped_ = false;
  std::set<std::string> logs_truncated_;  // CapLog: the logs it cut
};

int Shim::Run() {
  // Without its pid file herd-noded would take the shim for dead: no pid file, no job.
  Status pid_written = WriteFileAtomic(Path(kShimPidFile), std::to_string(getpid()) + "\n");
  Result<std::string> text = ReadFile(Path(kSpecFile));
  Result<ShimSpec> spec = text.ok() ? SpecFromJson(*text) : Result<ShimSpec>(text.status());
  Status status = pid_written.ok() ? spec.status() : pid_written;
  if (status.ok()) {
    spec_ = *spec;
    container_ = !spec_.launch.image.empty();
    Result<int> log = OpenLog(kLogFile);
    if (log.ok()) log_fd_ = *log;
    status = log.ok() ? Start() : log.status();
  }
  if (!status.ok()) {
    Note("job did not start: " + status.message());
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    Cleanup();  // first: a container made before the failure holds the job's stdout
    FinishOutput();
    WriteFileAtomic(Path(kExitFile), ExitToJson({127, status.message(), true, {}})).ok();
    Ready("error: " + status.message());
    return 1;
  }
  WriteFileAtomic(Path(kPidFile), std::to_string(pid_) + "\n").ok();
  Ready("ok");

  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  int sigfd = signalfd(-1, &set, SFD_CLOEXEC);
  while (!status_) {
    ReapAll();
    if (status_) break;
    int timeout = -1;
    if (kill_deadline_) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(*kill_deadline_ - Clock::now());
      timeout = std::max<int>(0, left.count());
    }
    if (spec_.max_log_bytes > 0) timeout = timeout < 0 ? kLogCheckMs : std::min(timeout, kLogCheckMs);
    struct pollfd pfd = {sigfd, POLLIN, 0};
    int n = poll(&pfd, 1, timeout);
    CapLog(/*final=*/false);
    if (n == 0 && kill_deadline_ && Clock::now() >= *kill_deadline_) {
      Note("grace expired: SIGKILL");
      Signal(SIGKILL);
      kill_deadline_.reset();
      continue;
    }
    struct signalfd_siginfo info;
    if (n > 0 && read(sigfd, &info, sizeof info) == sizeof info) {
      if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) BeginKill();
    }
  }
  int st = *status_;
  FinishRelay(WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1);
  KillLeftovers();
  FinishOutput();
  CapLog(/*final=*/true);
  ExitRecord record;
  if (WIFEXITED(st)) {
    record.exit_code = WEXITSTATUS(st);
    if (record.exit_code != 0) record.reason = "exit code " + std::to_string(record.exit_code);
  } else if (WIFSIGNALED(st)) {
    record.exit_code = 128 + WTERMSIG(st);
    record.reason = "killed by signal " + std::to_string(WTERMSIG(st));
  }
  // The cgroup is new for each job, so any OOM kill in it was this job's.
  if (cgroup_ && cgroup_->OomKills() > 0) record.reason = "out of memory";
  if (cgroup_) record.usage = cgroup_->Usage();  // Cleanup removes the cgroups
  Note("job ended: exit_code=" + std::to_string(record.exit_code) + " reason='" + record.reason +
       "'");
  Cleanup();
  Status written = WriteFileAtomic(Path(kExitFile), ExitToJson(record));
  // A full disk must not lose the job's end: wait for room (the node takes no new job meanwhile).
  while (IsNoSpace(written)) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    written = WriteFileAtomic(Path(kExitFile), ExitToJson(record));
  }
  if (!written.ok()) Note(written.message());
  return 0;
}

// Keeps the first max_log_bytes of the job's output and a last line saying the rest was cut.
// The job appends (O_APPEND), so after a cut its output lands past the note until the next
// check cuts it again; `final` (the job has ended) leaves exactly the kept part and the note.
void Shim::CapLog(bool final) {
  if (spec_.max_log_bytes <= 0) return;
  // The log of both streams keeps max_log_size, each stream's own copy half of it: a job's
  // logs take at most twice max_log_size on the node.
  for (const char* name : {kLogFile, kStdoutLogFile, kStderrLogFile}) {
    const int64_t cap =
        std::string_view(name) == kLogFile ? spec_.max_log_bytes : spec_.max_log_bytes / 2;
    const std::string note = "\n[herd: log truncated: the job wrote more than " +
                             std::to_string(cap) + " bytes (max_log_size); later output was "
                             "discarded]\n";
    struct stat st;
    if (stat(Path(name).c_str(), &st) != 0) continue;
    const int64_t size = st.st_size;
    const int64_t done = cap + static_cast<int64_t>(note.size());
    if (size <= cap || (size <= done && !(final && size != done))) continue;
    int fd = open(Path(name).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    if (ftruncate(fd, cap) == 0) {
      (void)!write(fd, note.data(), note.size());
      if (logs_truncated_.insert(name).second) {
        Note(std::string(name) + " truncated at " + std::to_string(cap) + " bytes (max_log_size)");
      }
    }
    close(fd);
  }
}

Result<int> Shim::OpenLog(const char* name) const {
  // In the job's directory (root's, 0700), readable by the job's user alone.
  const int fd =
      open(Path(name).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Internal(std::string("cannot open the job's ") + name + ": " + ErrnoText(errno));
  if (geteuid() == 0) (void)!fchown(fd, spec_.launch.uid, spec_.launch.gid);
  return fd;
}

Status Shim::StartOutput() {
  const LaunchSpec& spec = spec_.launch;
  const UserInfo user = LookupUser(spec.uid, spec.gid);
  Result<int> out_log = OpenLog(kStdoutLogFile);
  if (!out_log.ok()) return out_log.status();
  Result<int> err_log = OpenLog(kStderrLogFile);
  if (!err_log.ok()) {
    close(*out_log);
    return err_log.status();
  }
  int out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC) != 0) {
    const int e = errno;
    for (int fd : {out[0], out[1], err[0], err[1], report[0], report[1], *out_log, *err_log}) {
      if (fd >= 0) close(fd);
    }
    return Internal("pipe: " + ErrnoText(e));
  }
  OutputPump pump;
  pump.out = {out[0], *out_log, -1, spec.stdout_path};
  pump.err = {err[0], *err_log, -1, spec.stderr_path};
  pump.log_fd = log_fd_;
  pump_pid_ = fork();
  if (pump_pid_ == 0) {
    ResetSignalsInChild();
    signal(SIGPIPE, SIG_IGN);  // a reader of a FIFO it writes to may go: EPIPE, not death
    prctl(PR_SET_NAME, "herd-output");
    close(out[1]);
    close(err[1]);
    close(report[0]);
    if (ready_fd_ >= 0) close(ready_fd_);
    // It copies what the job writes on the job's cores, at the lowest priority: the job's
    // output costs other jobs nothing.
    if (!spec.cpus.empty()) {
      const cpu_set_t cpus = CpuSet(spec.cpus);
      sched_setaffinity(0, sizeof cpus, &cpus);
    }
    (void)!setpriority(PRIO_PROCESS, 0, 19);
    // The user's ids before the first path is looked up: the kernel checks every directory of
    // it, and every symbolic link on the way, with the user's rights alone. Not dumpable, so
    // the user's own processes cannot ptrace it and reach herd's logs.
    std::string answer = "ok";
    if (NeedsSwitch(user) && !DropToUser(user)) {
      answer = "cannot switch to uid " + std::to_string(user.uid) + ": " + ErrnoText(errno);
    }
    prctl(PR_SET_DUMPABLE, 0);
    if (answer == "ok") {
      Status opened = OpenOutputFiles(spec, &pump);
      if (!opened.ok()) answer = opened.message();
    }
    answer += "\n";
    (void)!write(report[1], answer.data(), answer.size());
    close(report[1]);
    if (answer != "ok\n") _exit(1);
    _exit(RunOutputPump(pump));
  }
  const int fork_err = errno;
  for (int fd : {out[0], err[0], report[1], *out_log, *err_log}) close(fd);
  job_out_fd_ = out[1];
  job_err_fd_ = err[1];
  if (pump_pid_ < 0) {
    close(report[0]);
    return Internal("fork: " + ErrnoText(fork_err));
  }
  std::string answer;
  char buf[512];
  ssize_t n;
  while ((n = read(report[0], buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (answer.size() < 4096) answer.append(buf, n);
  }
  close(report[0]);
  while (!answer.empty() && answer.back() == '\n') answer.pop_back();
  if (answer == "ok") return Status::Ok();
  return Denied(answer.empty() ? "the output pump ended without a word" : answer);
}

void Shim::FinishOutput() {
  for (int* fd : {&job_out_fd_, &job_err_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  if (pump_pid_ <= 0) return;
  // It ends once every process holding the job's stdout or stderr is gone (KillLeftovers): the
  // bound is for a file it cannot write to (a hung network file system).
  AwaitChild(pump_pid_, &pump_reaped_, std::chrono::seconds(10), "output pump");
  pump_pid_ = -1;
}

void Shim::Ready(const std::string& line) {
  // Before the answer, so that whoever reads the answer finds the job no longer starting.
  unlink(Path(kStartingFile).c_str());
  if (ready_fd_ < 0) return;
  std::string text = line + "\n";
  (void)!write(ready_fd_, text.data(), text.size());
  close(ready_fd_);
  ready_fd_ = -1;
}

Status Shim::Start() {
  const LaunchSpec& spec = spec_.launch;
  if (spec.argv.empty()) return Invalid("the job has no command");
  if (geteuid() != 0 && spec.uid != geteuid()) {
    return Denied("herd-shim runs as uid " + std::to_string(geteuid()) +
                  " and cannot run a job as uid " + std::to_string(spec.uid));
  }
  if (container_ && !spec.script.empty()) {
    return Invalid("a batch script cannot run in a container: run it with -- COMMAND from the "
                   "image or a volume");
  }
  if (container_ && !spec.session.empty()) {
    return Invalid("interactive sessions (herd run, --pty) cannot run in a container yet: run "
                   "without --image, or submit it and use herd exec");
  }
  // Before anything else runs, and in the host's mount namespace: output paths are host paths.
  if (spec.session.empty()) HERD_RETURN_IF_ERROR(StartOutput());
  return container_ ? StartContainer() : StartProcess();
}

Status Shim::StartProcess() {
  const LaunchSpec& spec = spec_.launch;
  UserInfo user = LookupUser(spec.uid, spec.gid);
  std::vector<std::string> env = JobEnv(spec, user, /*container=*/false);
  std::string path = kDefaultPath;
  for (const std::string& e : env) {
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  std::vector<std::string> candidates = ExecCandidates(spec.argv[0], path);
  std::vector<std::string> args = spec.argv;
  // Closed on every way out; the child has its own copy once forked.
  struct ScriptFd {
    int fd = -1;
    ~ScriptFd() {
      if (fd >= 0) close(fd);
    }
  } script_fd;
  if (!spec.script.empty()) {
    // The script's own #! line picks its interpreter; a script without one runs with /bin/sh.
    Result<int> fd = SealedScript(spec.script);
    if (!fd.ok()) return fd.status();
    script_fd.fd = *fd;
    const std::string script = "/proc/self/fd/" + std::to_string(*fd);
    if (spec.script.starts_with("#!")) {
      candidates = {script};
    } else {
      candidates = {"/bin/sh"};
      args[0] = script;
      args.insert(args.begin(), "/bin/sh");
    }
  }
  std::vector<char*> exe = CStrings(candidates);
  exe.pop_back();  // no terminating null: the child walks the vector

  if (spec_.use_cgroups) {
    CgroupMode mode = DetectCgroupMode();
    CgroupLimits limits{spec.cpus, spec.memory_mib, spec.pids_max, true, BasicDevices()};
    // Only the job's own GPUs: CUDA_VISIBLE_DEVICES alone is advice, not a fence.
    std::vector<DeviceNode> devices = FindGpuPassthrough(spec.gpus, spec_.dev_dir, {}).devices;
    // A plain job sees the host's network, RDMA included (NCCL, MPI).
    for (const DeviceNode& d : FindRdmaDevices(spec_.dev_dir)) devices.push_back(d);
    for (const DeviceNode& d : devices) limits.devices.push_back({'c', d.major, d.minor});
    Result<JobCgroup> cg = JobCgroup::Create(mode, spec_.cgroup_parent, spec.job_key, limits);
    if (cg.ok()) {
      cgroup_ = *cg;
      if (!cg->DevicesConfined()) {
        Note("devices not confined (" + cg->DevicesNote() +
             "): the job can open every device node, other jobs' GPUs included");
      }
      HERD_RETURN_IF_ERROR(WriteFileAtomic(Path(kCgroupFile), CgroupModeName(mode) + "\n"));
    } else if (cg.status().code() == Code::kUnavailable) {
      Note("running without cgroups: " + cg.status().message());
    } else {
      return cg.status();
    }
  } else {
    Note("running without cgroups: disabled by configuration");
  }

  // A session's terminal is opened with the user's rights: its slave is the user's.
  std::optional<SessionIo> session;
  if (!spec.session.empty()) {
    HERD_RETURN_IF_ERROR(WithUserRights(user, [&]() -> Status {
      Result<SessionIo> io = OpenSessionIo(spec.session == "pty", 24, 80);
      if (!io.ok()) return io.status();
      session = *io;
      return Status::Ok();
    }));
  }
  struct SessionCloser {
    std::optional<SessionIo>* io;
    ~SessionCloser() {
      if (!*io) return;
      CloseCommandEnds(&**io);
      CloseRelayEnds(&**io);
    }
  } session_closer{&session};

  // Everything the child needs is prepared here: after fork it may only make system calls.
  std::vector<char*> argv = CStrings(args), envp = CStrings(env);
  std::string cwd = spec.cwd.empty() ? "/" : spec.cwd;
  bool switch_user = NeedsSwitch(user);
  const cpu_set_t cpus = CpuSet(spec.cpus);
  bool pin = !cgroup_ && !spec.cpus.empty();
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int sync_pipe[2], err_pipe[2];
  if (pipe2(sync_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    return Internal("pipe: " + ErrnoText(errno));
  }
  pid_ = fork();
  if (pid_ < 0) return Internal("fork: " + ErrnoText(errno));
  if (pid_ == 0) {
    ResetSignalsInChild();
    // The job's process group is what Kill and SIGSTOP address: a new session, whose
    // controlling terminal is the session's pty when it has one.
    if (session) {
      if (!TakeSessionIo(*session)) _exit(127);
    } else {
      setsid();
      dup2(devnull, 0);
      dup2(job_out_fd_, 1);
      dup2(job_err_fd_, 2);
    }
    char go;
    // Wait until the shim has put us in the cgroups; without its "g" (the shim failed or was
    // killed) the job must not run.
    if (read(sync_pipe[0], &go, 1) != 1) _exit(127);
    ChildError e{0, 0};
    // The user's ids come first: --chdir and the command are reached with the user's rights.
    if (switch_user && !DropToUser(user)) {
      e = {kStageCredentials, errno};
    } else if (chdir(cwd.c_str()) != 0) {
      e = {kStageChdir, errno};
    } else if (pin && sched_setaffinity(0, sizeof cpus, &cpus) != 0) {
      e = {kStageAffinity, errno};
    } else if (script_fd.fd >= 0 && fcntl(script_fd.fd, F_SETFD, 0) != 0) {
      e = {kStageExec, errno};  // the interpreter reopens /proc/self/fd/N: it must outlive exec
    } else {
      // As execvp: a candidate that is missing or not executable lets the search go on.
      int err = ENOENT;
      bool denied = false;
      for (char* candidate : exe) {
        execve(candidate, argv.data(), envp.data());
        if (errno == EACCES) {
          denied = true;
        } else if (errno != ENOENT && errno != ENOTDIR) {
          err = errno;
          break;
        }
      }
      e = {kStageExec, denied && err == ENOENT ? EACCES : err};
    }
    (void)!write(err_pipe[1], &e, sizeof e);
    _exit(127);
  }
  close(devnull);
  close(sync_pipe[0]);
  close(err_pipe[1]);
  Status attached = cgroup_ ? cgroup_->Attach(pid_) : Status::Ok();
  if (attached.ok()) (void)!write(sync_pipe[1], "g", 1);
  close(sync_pipe[1]);  // without "g" the child reads EOF and fails on its own
  ChildError e{0, 0};
  ssize_t n = read(err_pipe[0], &e, sizeof e);  // EOF: exec succeeded
  close(err_pipe[0]);
  if (!attached.ok()) return attached;
  if (n <= 0) {
    if (!session) return Status::Ok();
    CloseCommandEnds(&*session);
    Status relay = StartRelay(user, &*session);
    // The job runs on without a session: its output is lost, but not the job.
    if (!relay.ok()) Note("no session for this job: " + relay.message());
    return Status::Ok();
  }
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return StartFailure(e, spec, cwd);
}

Status Shim::StartRelay(const UserInfo& user, SessionIo* io) {
  const std::string path = Path(kSessionSocket);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Internal("session socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // Made by root in the job's directory, which only root may enter: herd-noded alone connects.
  const int listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd < 0) return Internal("socket: " + ErrnoText(errno));
  unlink(path.c_str());
  int exit_pipe[2] = {-1, -1};
  if (bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd, 8) != 0 || pipe2(exit_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    close(listen_fd);
    return Internal("session socket " + path + ": " + ErrnoText(err));
  }
  const uid_t noded_uid = getuid();
  relay_pid_ = fork();
  if (relay_pid_ < 0) {
    const int err = errno;
    close(listen_fd);
    close(exit_pipe[0]);
    close(exit_pipe[1]);
    return Internal("fork: " + ErrnoText(err));
  }
  if (relay_pid_ == 0) {
    ResetSignalsInChild();
    close(exit_pipe[1]);
    if (ready_fd_ >= 0) close(ready_fd_);
    prctl(PR_SET_NAME, "herd-relay");
    // The user's ids before the first byte of the session is read; not dumpable, so the user's
    // own processes cannot ptrace it and reach the listening socket.
    if (NeedsSwitch(user) && !DropToUser(user)) _exit(1);
    prctl(PR_SET_DUMPABLE, 0);
    RelayOptions o;
    o.io = *io;
    o.listen_fd = listen_fd;
    o.exit_fd = exit_pipe[0];
    o.log_fd = log_fd_;
    o.peer_uid = noded_uid;
    RunRelay(std::move(o));
    _exit(0);
  }
  close(listen_fd);
  close(exit_pipe[0]);
  CloseRelayEnds(io);
  relay_exit_fd_ = exit_pipe[1];
  return Status::Ok();
}

void Shim::FinishRelay(int exit_code) {
  if (relay_pid_ <= 0) return;
  if (relay_exit_fd_ >= 0) {
    std::string code;
    proto::stream::PutU32(&code, static_cast<uint32_t>(exit_code));
    (void)!write(relay_exit_fd_, code.data(), code.size());
    close(relay_exit_fd_);
    relay_exit_fd_ = -1;
  }
  // The relay ends once the attached herd has the rest of the output, within seconds.
  AwaitChild(relay_pid_, &relay_reaped_, std::chrono::seconds(8), "session relay");
  unlink(Path(kSessionSocket).c_str());
  relay_pid_ = -1;
}

void Shim::AwaitChild(pid_t pid, const bool* reaped, std::chrono::seconds limit,
                      const char* what) {
  if (*reaped) return;
  const auto deadline = Clock::now() + limit;
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  while (!*reaped && pidfd >= 0 && Clock::now() < deadline) {
    struct pollfd p = {pidfd, POLLIN, 0};
    poll(&p, 1, 100);
    ReapAll();
  }
  if (pidfd >= 0) close(pidfd);
  if (!*reaped) {
    Note(std::string(what) + " did not end: killed");
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
}

std::vector<std::string> Shim::Runc(std::vector<std::string> args) const {
  args.insert(args.begin(), {spec_.runc_path, "--root", spec_.runc_root});
  return args;
}

// Runs a runc verb whose output goes to the job's log; on failure quotes runc's last line.
Status Shim::RuncWithLogError(const std::vector<std::string>& args, const std::string& what,
                              const std::vector<int>& pass_fds) {
  off_t before = lseek(log_fd_, 0, SEEK_END);
  Status status = RunCommand(Runc(args), log_fd_, pass_fds);
  if (status.ok()) return status;
  Result<std::string> log = ReadFile(Path(kLogFile));
  std::string tail =
      log.ok() && static_cast<size_t>(before) <= log->size() ? log->substr(before) : "";
  while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  size_t nl = tail.rfind('\n');
  if (nl != std::string::npos) tail = tail.substr(nl + 1);
  // runc logs as logfmt: time="..." level=error msg="...": keep only the message.
  size_t msg = tail.find("msg=\"");
  if (msg != std::string::npos) {
    tail = tail.substr(msg + 5);
    if (!tail.empty() && tail.back() == '"') tail.pop_back();
    for (size_t i = tail.find("\\\""); i != std::string::npos; i = tail.find("\\\"", i)) {
      tail.erase(i, 1);
    }
  }
  return Invalid(what + ": " + (tail.empty() ? status.message() : tail));
}

// Container jobs touch the user's files only with the user's rights, and herd's own files only
// in the job's bundle (state_dir/jobs/KEY/bundle, root's, 0700), which the user cannot enter:
//  * a tarball or an OCI layout is opened and unpacked by a child that became the job's user,
//    into bundle/rootfs (the user's, 0700), then stripped of setuid/setgid bits and device
//    nodes, so the rootfs holds nothing the user could not have made;
//  * a rootfs directory, opened as the user, is the lower layer of an overlay mounted on
//    bundle/rootfs (nosuid, nodev) whose upper layer is in the bundle: runc's mount points and
//    the job's writes land there, and the directory itself is never written;
//  * each volume is resolved as the user, checked against the allow-list as resolved, and
//    bind-mounted from the very file descriptor that was resolved (no second lookup to race).
// These mounts live in a mount namespace of the shim's own, so they vanish with it.
Status Shim::StartContainer() {
  const LaunchSpec& spec = spec_.launch;
  if (geteuid() != 0) {
    // A non-root herd-noded runs jobs only as itself: its own rights are the user's.
    if (ParseOciImage(spec.image)) HERD_RETURN_IF_ERROR(UmociInstalled(spec.image));
    return Unavailable("containers need herd-noded to run as root");
  }
  std::error_code ec;
  fs::create_directories(spec_.runc_root, ec);
  const std::string bundle = Path("bundle");
  if (mkdir(bundle.c_str(), 0700) != 0 || chmod(bundle.c_str(), 0700) != 0) {
    return Internal("cannot create " + bundle + ": " + ErrnoText(errno));
  }
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)) {
    return Internal("cannot make a mount namespace for the job: " + ErrnoText(errno));
  }
  UserInfo user = LookupUser(spec.uid, spec.gid);
  if (spec_.use_cgroups) {
    // The job's cgroup, made before runc makes it, so that unpacking its image is charged to the
    // job and bounded by its limits; runc takes it over (the same path) and removes it.
    CgroupLimits limits;
    limits.cpus = spec.cpus;
    limits.memory_mib = spec.memory_mib;
    limits.pids_max = spec.pids_max;
    Result<JobCgroup> cg =
        JobCgroup::Create(DetectCgroupMode(), spec_.cgroup_parent, spec.job_key, limits);
    if (cg.ok()) {
      cgroup_ = *cg;
    } else {
      Note("unpacking the image outside any cgroup: " + cg.status().message());
    }
  }
  std::string rootfs;
  HERD_RETURN_IF_ERROR(PrepareRootfs(user, bundle, &rootfs));
  std::vector<std::pair<std::string, std::string>> volumes;
  HERD_RETURN_IF_ERROR(StageVolumes(user, bundle, &volumes));
  user.home = spec.uid == 0 ? "/root" : "/";
  const nlohmann::json config = OciConfig(spec_, rootfs, user, volumes);
  // A clear refusal before runc runs; herd-chdir, as the user, is what keeps it true.
  HERD_RETURN_IF_ERROR(CheckContainerPaths(user, config, ContainerCwd(spec)));
  HERD_RETURN_IF_ERROR(WriteFileAtomic(bundle + "/config.json", config.dump(2) + "\n"));
  // Read only, never written into the image: runc passes the descriptor on, and the job's first
  // process executes herd-chdir from it.
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  const std::string helper =
      (n > 0 ? fs::path(std::string(self, n)).parent_path().string() : ".") + "/" + kChdirHelper;
  const int helper_fd = open(helper.c_str(), O_RDONLY | O_CLOEXEC);
  if (helper_fd < 0) {
    return Internal("cannot open " + helper + ", which container jobs start through (it is " +
                    "installed next to herd-shim): " + ErrnoText(errno));
  }
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    close(helper_fd);
    return Internal("pipe: " + ErrnoText(errno));
  }
  // herd-chdir makes the last two the job's stdout and stderr (kOutFd, kErrFd).
  Status created = RuncWithLogError(
      {"create", "--preserve-fds", "4", "--bundle", bundle, "--pid-file", Path(kPidFile),
       spec.job_key},
      "cannot create container", {helper_fd, report[1], job_out_fd_, job_err_fd_});
  // Now only the container's process holds the pipe's write end: EOF once it execs the job.
  close(helper_fd);
  close(report[1]);
  ChildError e{0, 0};
  ssize_t got = 0;
  if (created.ok()) {
    // runc create leaves the container's init orphaned; as subreaper the shim inherits it and
    // so can wait for its real exit status, then read the OOM counter before runc delete.
    Result<std::string> pid = ReadFile(Path(kPidFile));
    if (pid.ok()) pid_ = std::atoi(pid->c_str());
    if (pid_ <= 0) created = Internal("runc wrote no pid file");
  }
  if (created.ok()) {
    cgroup_ = JobCgroup::Open(DetectCgroupMode(), spec_.cgroup_parent, spec.job_key);
    created = RuncWithLogError({"start", spec.job_key}, "cannot start container");
  }
  if (created.ok()) {
    while ((got = read(report[0], &e, sizeof e)) < 0 && errno == EINTR) {
    }
  }
  close(report[0]);
  if (!created.ok() || got <= 0) return created;
  return StartFailure(e, spec, ContainerCwd(spec));
}

Status Shim::PrepareRootfs(const UserInfo& user, const std::string& bundle, std::string* rootfs) {
  const std::string& image = spec_.launch.image;
  std::optional<OciImageRef> oci;
  int image_fd = -1;
  struct stat st = {};
  Status opened = WithUserRights(user, [&] {
    oci = ParseOciImage(image);
    if (oci) return Status::Ok();
    // O_NONBLOCK: a FIFO named as the image must not hang the shim.
    image_fd = open(image.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (image_fd < 0 && errno == ENOENT) return Invalid("image '" + image + "' not found");
    if (image_fd < 0) return Denied("cannot read image '" + image + "': " + ErrnoText(errno));
    if (fstat(image_fd, &st) != 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
      return Invalid("image '" + image + "' is neither a directory nor a tarball");
    }
    return Status::Ok();
  });
  auto close_image = [&] {
    if (image_fd >= 0) close(image_fd);
    image_fd = -1;
  };
  if (!opened.ok()) {
    close_image();
    return opened;
  }
  *rootfs = bundle + "/rootfs";
  if (!oci && S_ISDIR(st.st_mode)) {
    Status mounted = MountOverlay(bundle, image_fd, st);
    close_image();
    return mounted;
  }
  // The user's own directory to unpack into; only root can reach it through the bundle.
  if (mkdir(rootfs->c_str(), 0700) != 0 || chown(rootfs->c_str(), user.uid, user.gid) != 0) {
    close_image();
    return Internal("cannot create " + *rootfs + ": " + ErrnoText(errno));
  }
  int dir_fd = open(rootfs->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    close_image();
    return Internal("cannot open " + *rootfs + ": " + ErrnoText(errno));
  }
  UnpackBounds bounds = UnpackBoundsFor(bundle);
  Status unpacked;
  if (oci) {
    unpacked = UmociInstalled(image);
    // raw unpack gives only the rootfs: the job's command and environment come from herd.
    if (unpacked.ok()) {
      unpacked = RunChild({"umoci", "raw", "unpack", "--rootless", "--image",
                           fs::absolute(oci->layout).string() + ":" + oci->tag, "."},
                          -1, &user, dir_fd, nullptr, nullptr, bounds);
      if (!unpacked.ok()) {
        unpacked = Invalid("cannot unpack OCI image '" + image + "': " + unpacked.message());
      }
    }
  } else {
    // tar reads the very file the user opened (its stdin), never the path again: the path may
    // name something else by now. From a pipe or descriptor tar cannot guess the compression.
    fcntl(image_fd, F_SETFL, fcntl(image_fd, F_GETFL) & ~O_NONBLOCK);
    std::vector<std::string> tar = {"tar", "-x", "-f", "-", "--no-same-owner"};
    if (std::string flag = CompressionFlag(image_fd); !flag.empty()) tar.push_back(flag);
    // Unprivileged tar keeps no owner, cannot make device nodes and, like any tar, refuses
    // members that climb out with "..". Device nodes are left out: runc gives /dev its own.
    auto mknod_refused = [](const std::string& line) {
      return line.ends_with(": Cannot mknod: Operation not permitted") ||
             line == "tar: Exiting with failure status due to previous errors";
    };
    bounds.in_fd = image_fd;
    unpacked = RunChild(tar, -1, &user, dir_fd, nullptr, mknod_refused, bounds);
    if (!unpacked.ok()) {
      unpacked = Invalid("cannot unpack image '" + image + "': " + unpacked.message());
    }
  }
  close_image();
  if (unpacked.ok()) {
    // umoci keeps setuid bits on the user's files even when rootless; clear them everywhere.
    unpacked = RunChild(
        {}, -1, &user, dir_fd,
        [] { return nftw(".", SanitizeEntry, 32, FTW_PHYS | FTW_MOUNT) == 0 ? 0 : 1; }, nullptr,
        UnpackBounds{-1, 0, bounds.cgroup, nullptr});
    if (!unpacked.ok()) {
      unpacked = Internal("cannot clean the unpacked image: " + unpacked.message());
    }
  }
  close(dir_fd);
  return unpacked;
}

UnpackBounds Shim::UnpackBoundsFor(const std::string& bundle) const {
  UnpackBounds bounds;
  bounds.max_file_bytes = spec_.max_image_bytes;
  if (cgroup_) bounds.cgroup = &*cgroup_;
  const int64_t max_bytes = spec_.max_image_bytes, min_free = spec_.min_free_bytes;
  const std::string image = spec_.launch.image;
  auto free_bytes = [bundle]() -> int64_t {
    struct statvfs fs_stat;
    if (statvfs(bundle.c_str(), &fs_stat) != 0) return -1;
    return static_cast<int64_t>(fs_stat.f_bavail) * static_cast<int64_t>(fs_stat.f_frsize);
  };
  // The disk the image lands on, measured while it unpacks: what it lost since the start bounds
  // the image as a whole (other writers to that disk count too, so this errs on the small side).
  const int64_t free_at_start = free_bytes();
  bounds.watch = [=]() -> Status {
    const int64_t free_now = free_bytes();
    if (free_now < 0 || free_at_start < 0) return Status::Ok();
    if (max_bytes > 0 && free_at_start - free_now > max_bytes) {
      return Invalid("image '" + image + "' takes more than max_image_size (" +
                     std::to_string(max_bytes >> 20) + " MiB) once unpacked");
    }
    if (min_free > 0 && free_now < min_free) {
      return Invalid("unpacking image '" + image + "' would leave less than min_free_space (" +
                     std::to_string(min_free >> 20) + " MiB) free on the node's state directory");
    }
    return Status::Ok();
  };
  return bounds;
}

Status Shim::MountOverlay(const std::string& bundle, int lower_fd, const struct stat& lower) {
  const std::string upper = bundle + "/upper", work = bundle + "/work", rootfs = bundle + "/rootfs";
  for (const std::string& dir : {upper, work, rootfs}) {
    if (mkdir(dir.c_str(), 0700) != 0) {
      return Internal("cannot create " + dir + ": " + ErrnoText(errno));
    }
  }
  // The overlay's root takes the upper directory's owner and mode: make them the image's.
  if (chown(upper.c_str(), lower.st_uid, lower.st_gid) != 0 ||
      chmod(upper.c_str(), lower.st_mode & 07777) != 0) {
    return Internal("cannot prepare " + upper + ": " + ErrnoText(errno));
  }
  // lowerdir through the descriptor the user opened: the very directory that was checked.
  const std::string options = "lowerdir=/proc/self/fd/" + std::to_string(lower_fd) +
                              ",upperdir=" + upper + ",workdir=" + work;
  if (upper.find_first_of(",:\\") != std::string::npos) {
    return Invalid("the node's state directory '" + dir_ + "' holds ',', ':' or '\\', which " +
                   "image directories cannot be mounted from");
  }
  if (mount("overlay", rootfs.c_str(), "overlay", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    return Internal("cannot mount image '" + spec_.launch.image +
                    "' (overlay): " + ErrnoText(errno));
  }
  mounts_.push_back(rootfs);
  return Status::Ok();
}

// runc looks up each mount's destination as root, in trees the user shaped (the image's links,
// volumes), and makes as root what is missing there. So each is resolved first as the user,
// where it will lie once mounted: a mount point runc would make must lie in the job's own rootfs,
// never in a volume. The cwd, which herd-chdir enters as the user once runc has become that user,
// must exist there as a directory the user can enter: checked here too, so that the user learns
// why before anything runs. The user may still change the tree after this check; herd-chdir's
// own chdir is what the kernel checks at the moment of use.
Status Shim::CheckContainerPaths(const UserInfo& user, const nlohmann::json& config,
                                 const std::string& cwd) {
  if (cwd.empty() || cwd[0] != '/') {
    return Invalid("cannot chdir to '" + cwd + "': a container's working directory must be an " +
                   "absolute path");
  }
  if (!NeedsSwitch(user)) return Status::Ok();
  // What each mount shows, opened as root (staged volumes lie in the root-only bundle); their
  // targets are the destinations as written until they are placed.
  auto open_path = [](const nlohmann::json& path) {
    return open(path.get<std::string>().c_str(), O_PATH | O_CLOEXEC);
  };
  std::vector<ContainerMount> mounts{
      {ContainerMount::kImage, "/", open_path(config["root"]["path"])}};
  for (const nlohmann::json& m : config["mounts"]) {
    const std::string dest = m["destination"];
    if (m["type"] == "bind") {
      mounts.push_back({ContainerMount::kBind, dest, open_path(m["source"])});
    } else if (PathIsUnderAny(dest, {"/proc", "/sys", "/dev"})) {
      mounts.push_back({ContainerMount::kRunc, dest, -1});
    } else {
      mounts.push_back({ContainerMount::kEmpty, dest, -1});
    }
  }
  std::vector<ContainerMount> placed{mounts.front()};
  Status status = WithUserRights(user, [&]() -> Status {
    for (size_t i = 1; i < mounts.size(); ++i) {
      ContainerMount mount = mounts[i];
      const std::string what = "cannot mount at '" + mount.target + "' in the container: ";
      if (placed.front().fd < 0 || (mount.kind == ContainerMount::kBind && mount.fd < 0)) {
        return Internal(what + "cannot open what to mount there");
      }
      ContainerPath at = ResolveInContainer(placed, mount.target);
      if (at.fd >= 0) close(at.fd);
      if (at.mount->kind == ContainerMount::kRunc) {
        if (mount.kind == ContainerMount::kRunc) continue;  // runc's own, under /dev
        return Invalid(what + "it lies under " + at.mount->target + ", which runc fills itself");
      }
      if (at.err == ENOENT && at.mount->kind == ContainerMount::kBind) {
        return Invalid(what + "'" + ChildPath(at.path, at.missing.front()) +
                       "' does not exist in the volume mounted at '" + at.mount->target +
                       "'; create it there, or choose another container path");
      }
      if (at.err == ENOENT &&
          std::find(at.missing.begin(), at.missing.end(), "..") != at.missing.end()) {
        return Invalid(what + "'..' follows a directory that does not exist");
      }
      if (at.err != 0 && at.err != ENOENT) return Denied(what + ErrnoText(at.err));
      // runc makes what is missing, in the rootfs or an empty mount: directories that hold
      // only mount points, then the mount point.
      mount.target = at.path;
      for (const std::string& name : at.missing) {
        if (mount.target != at.path) placed.push_back({ContainerMount::kEmpty, mount.target, -1});
        mount.target = ChildPath(mount.target, name);
      }
      placed.push_back(mount);
    }
    ContainerPath at = ResolveInContainer(placed, cwd);
    const std::string what = "cannot chdir to '" + cwd + "': ";
    if (at.mount->kind == ContainerMount::kRunc) {
      return Invalid(what + "it lies under " + at.mount->target +
                     ", which runc fills itself; choose another --chdir");
    }
    if (at.err == ENOENT) {
      return Invalid(what + "it does not exist in the container; create it in the image or a " +
                     "volume, or choose another --chdir");
    }
    if (at.err == ENOTDIR || (at.err == 0 && !at.dir)) {
      return Invalid(what + "it is not a directory in the container; choose another --chdir");
    }
    int err = at.err;
    if (at.fd >= 0) {
      if (err == 0 && faccessat(at.fd, "", X_OK, AT_EMPTY_PATH | AT_EACCESS) != 0) err = errno;
      close(at.fd);
    }
    return err == 0 ? Status::Ok() : Denied(what + ErrnoText(err));
  });
  for (const ContainerMount& mount : mounts) {
    if (mount.fd >= 0) close(mount.fd);
  }
  return status;
}

Status Shim::StageVolumes(const UserInfo& user, const std::string& bundle,
                          std::vector<std::pair<std::string, std::string>>* volumes) {
  const std::vector<std::pair<std::string, std::string>>& wanted = spec_.launch.mounts;
  if (wanted.empty()) return Status::Ok();
  // The admin's prefixes as they resolve on this node (an allowed /data may be a symlink).
  std::vector<std::string> allowed;
  std::string list;
  for (const std::string& prefix : spec_.allowed_volumes) {
    list += (list.empty() ? "" : ", ") + prefix;
    std::error_code ec;
    fs::path real = fs::canonical(prefix, ec);
    if (!ec) allowed.push_back(real.string());
  }
  if (list.empty()) list = "none are allowed: [containers] allowed_volumes in herd.toml";
  const std::string staging = bundle + "/volumes";
  if (mkdir(staging.c_str(), 0700) != 0) {
    return Internal("cannot create " + staging + ": " + ErrnoText(errno));
  }
  for (size_t i = 0; i < wanted.size(); ++i) {
    const std::string& host = wanted[i].first;
    int fd = -1;
    HERD_RETURN_IF_ERROR(WithUserRights(user, [&] {
      // Resolved by the kernel as the user, symlinks included.
      fd = open(host.c_str(), O_PATH | O_CLOEXEC);
      if (fd < 0) return Denied("cannot use volume '" + host + "': " + ErrnoText(errno));
      return Status::Ok();
    }));
    const std::string fd_path = "/proc/self/fd/" + std::to_string(fd);
    std::error_code ec;
    const std::string resolved = fs::read_symlink(fd_path, ec).string();
    struct stat st;
    Status status;
    if (ec || fstat(fd, &st) != 0) {
      status = Internal("cannot resolve volume '" + host + "'");
    } else if (!PathIsUnderAny(resolved, allowed)) {
      status = Denied("volume '" + host + "' resolves to '" + resolved +
                      "', which is not under a path the admin allows (" + list + ")");
    } else if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
      status = Invalid("volume '" + host + "' is neither a directory nor a file");
    } else if (S_ISDIR(st.st_mode)) {
      // One the user cannot enter runc would enter, or make mount points in, as root.
      status = WithUserRights(user, [&] {
        if (faccessat(fd, "", X_OK, AT_EMPTY_PATH | AT_EACCESS) == 0) return Status::Ok();
        return Denied("cannot use volume '" + host + "': " + ErrnoText(errno) +
                      ": it must be a directory you can enter");
      });
    }
    const std::string target = staging + "/" + std::to_string(i);
    if (status.ok()) {
      int made = S_ISDIR(st.st_mode) ? mkdir(target.c_str(), 0700)
                                     : open(target.c_str(), O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (made < 0) {
        status = Internal("cannot create " + target + ": " + ErrnoText(errno));
      } else if (!S_ISDIR(st.st_mode)) {
        close(made);
      }
    }
    if (status.ok() && mount(fd_path.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr)) {
      status = Internal("cannot mount volume '" + host + "': " + ErrnoText(errno));
    }
    close(fd);
    if (!status.ok()) return status;
    mounts_.push_back(target);
    volumes->emplace_back(target, wanted[i].second);
  }
  return Status::Ok();
}

void Shim::Signal(int sig) {
  if (pid_ <= 0) return;
  if (container_) {
    RunCommand(Runc({"kill", "--all", spec_.launch.job_key, std::to_string(sig)}), -1).ok();
    if (sig == SIGKILL) kill(pid_, SIGKILL);  // works even when runc's state is unusable
    return;
  }
  kill(-pid_, sig);
  if (cgroup_) {
    for (pid_t p : cgroup_->Pids()) kill(p, sig);
  }
}

// A frozen job cannot act on a signal, so a kill thaws it.
void Shim::Thaw() {
  if (unlink(Path(kSuspendedFile).c_str()) != 0) return;
  if (container_) {
    RunCommand(Runc({"resume", spec_.launch.job_key}), -1).ok();
  } else if (cgroup_ && cgroup_->CanFreeze()) {
    cgroup_->Freeze(false).ok();
  } else {
    kill(-pid_, SIGCONT);
  }
}

void Shim::BeginKill() {
  int grace = kDefaultGraceMs;
  Result<std::string> text = ReadFile(Path(kKillFile));
  if (text.ok() && !text->empty()) grace = std::atoi(text->c_str());
  Note("kill requested: SIGTERM, SIGKILL after " + std::to_string(grace) + " ms");
  Signal(SIGTERM);
  Thaw();
  auto deadline = Clock::now() + std::chrono::milliseconds(std::max(0, grace));
  if (!kill_deadline_ || deadline < *kill_deadline_) kill_deadline_ = deadline;
}

void Shim::ReapAll() {
  int st;
  pid_t p;
  while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
    if (p == pid_) status_ = st;
    if (p == relay_pid_) relay_reaped_ = true;
    if (p == pump_pid_) pump_reaped_ = true;
  }
}

// Processes the job left behind (background children) end with it.
void Shim::KillLeftovers() {
  if (container_) return;  // the pid namespace died with its init
  Thaw();
  kill(-pid_, SIGKILL);
  if (!cgroup_) return;
  auto deadline = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < deadline) {
    std::vector<pid_t> left = cgroup_->Pids();
    if (left.empty()) break;
    for (pid_t p : left) kill(p, SIGKILL);
    ReapAll();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ReapAll();
}

void Shim::Cleanup() {
  std::error_code ec;
  if (container_) {
    RunCommand(Runc({"delete", "--force", spec_.launch.job_key}), -1).ok();
    if (cgroup_) cgroup_->Remove();  // made for the unpack when runc never took it over
    // Unmounted first, so that removing the bundle never reaches into an image or a volume.
    bool unmounted = true;
    for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it) {
      if (umount2(it->c_str(), MNT_DETACH) != 0) {
        Note("cannot unmount " + *it + ": " + ErrnoText(errno));
        unmounted = false;
      }
    }
    mounts_.clear();
    if (unmounted) fs::remove_all(Path("bundle"), ec);
  } else if (cgroup_) {
    cgroup_->Remove();
  }
  unlink(Path(kSuspendedFile).c_str());
}

}  // namespace

std::optional<OciImageRef> ParseOciImage(const std::string& image) {
  auto is_layout = [](const std::string& dir) {
    std::error_code ec;
    return fs::is_regular_file(dir + "/oci-layout", ec) &&
           fs::is_regular_file(dir + "/index.json", ec);
  };
  if (is_layout(image)) return OciImageRef{image, "latest"};
  const size_t colon = image.rfind(':');
  if (colon == std::string::npos || colon + 1 == image.size() ||
      image.find('/', colon) != std::string::npos) {
    return std::nullopt;
  }
  std::string layout = image.substr(0, colon);
  if (!is_layout(layout)) return std::nullopt;
  return OciImageRef{layout, image.substr(colon + 1)};
}

Status RunCommand(const std::vector<std::string>& argv, int out_fd,
                  const std::vector<int>& pass_fds) {
  return RunChild(argv, out_fd, nullptr, -1, nullptr, nullptr, {}, pass_fds);
}

namespace {

// The parent of `pid` (from /proc/PID/stat), or -1.
pid_t ParentOf(pid_t pid) {
  Result<std::string> stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return -1;
  const size_t paren = stat->rfind(')');  // the command name may hold anything but ends there
  if (paren == std::string::npos) return -1;
  char state = 0;
  int ppid = -1;
  if (std::sscanf(stat->c_str() + paren + 1, " %c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

// A running job entered by a process of herd exec or herd port-forward, which is now its user.
struct EnteredJob {
  LaunchSpec launch;
  UserInfo user;
  bool container = false;
};

// Enters the running job of job_dir: its cgroups (so its cpuset, memory, pids and device
// rules), else its cores; the namespaces `namespaces` (CLONE_NEW* flags) of its container's
// init when it has one; then becomes its user for good (no new privileges, not dumpable).
// Error: why not, for the user.
Result<EnteredJob> EnterJob(const std::string& job_dir, int namespaces) {
  const std::string dir = job_dir + "/";
  Result<std::string> text = ReadFile(dir + kSpecFile);
  Result<ShimSpec> spec = text.ok() ? SpecFromJson(*text) : Result<ShimSpec>(text.status());
  Result<std::string> pid_text = ReadFile(dir + kPidFile);
  if (!spec.ok() || !pid_text.ok()) return Unavailable("the job is not running");
  EnteredJob job;
  job.launch = spec->launch;
  const LaunchSpec& launch = job.launch;
  const pid_t job_pid = std::atoi(pid_text->c_str());
  job.container = !launch.image.empty();
  // The user's name and groups come from the host, before any of the container's files can be
  // read: inside its mount namespace, glibc would take /etc/nsswitch.conf and the NSS libraries
  // it names from the user's own root file system, and load them into this root process.
  job.user = LookupUser(launch.uid, launch.gid);
  // A container's init, held by a pidfd: once it is known to be the job's, its number cannot
  // name another process (one that took the number after the job ended) below.
  int init_fd = -1;
  if (job.container) {
    init_fd = static_cast<int>(syscall(SYS_pidfd_open, job_pid, 0));
    if (init_fd < 0) return Unavailable("the job's container has ended");
    fcntl(init_fd, F_SETFD, FD_CLOEXEC);
    // The container's init is the shim's child (runc's, reparented to the shim, a subreaper).
    Result<std::string> shim_pid = ReadFile(dir + kShimPidFile);
    if (!shim_pid.ok() || ParentOf(job_pid) != std::atoi(shim_pid->c_str())) {
      close(init_fd);
      return Unavailable("the job's container has ended");
    }
  }
  Result<std::string> mode = ReadFile(dir + kCgroupFile);
  if (mode.ok()) {
    std::string name = *mode;
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    JobCgroup cg = JobCgroup::Open(CgroupModeFromName(name), spec->cgroup_parent, launch.job_key);
    if (Status s = cg.Attach(getpid()); !s.ok()) {
      if (init_fd >= 0) close(init_fd);
      return Internal("cannot join the job's cgroup: " + s.message());
    }
  } else if (!launch.cpus.empty()) {
    const cpu_set_t cpus = CpuSet(launch.cpus);
    sched_setaffinity(0, sizeof cpus, &cpus);
  }
  // A pid namespace takes effect for the children of this process (the command of herd exec).
  if (job.container) {
    const int rc = setns(init_fd, namespaces);
    const int err = errno;
    close(init_fd);
    if (rc != 0) {
      return Unavailable(err == ESRCH ? "the job's container has ended"
                                      : "cannot enter the job's namespaces: " + ErrnoText(err));
    }
    if (chdir("/") != 0) return Internal("cannot enter the container's root");
  }
  if (NeedsSwitch(job.user) && !DropToUser(job.user)) {
    return Internal("cannot become uid " + std::to_string(launch.uid));
  }
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  prctl(PR_SET_DUMPABLE, 0);
  return job;
}

// Sends `why` and an exit code to herd over client_fd, as a relay would; returns the code.
int FailOnStream(int client_fd, const std::string& why, int code) {
  std::string out = proto::stream::EncodeFrame(proto::stream::kError, why + "\n");
  proto::stream::AppendFrame(&out, proto::stream::kExit, proto::stream::ExitPayload(code));
  (void)!send(client_fd, out.data(), out.size(), MSG_NOSIGNAL);
  return code;
}

}  // namespace

int RunExec(const std::string& job_dir, int client_fd) {
  signal(SIGPIPE, SIG_IGN);
  // The socket to herd-noded is the relay's, never the command's.
  fcntl(client_fd, F_SETFD, FD_CLOEXEC);
  Result<EnteredJob> job = EnterJob(job_dir, CLONE_NEWCGROUP | CLONE_NEWIPC | CLONE_NEWUTS |
                                                 CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS);
  if (!job.ok()) return FailOnStream(client_fd, "herd exec: " + job.status().message(), 127);
  const std::string cwd = job->container ? "/" : job->launch.cwd;
  return RunExecRelay(client_fd, JobEnv(job->launch, job->user, job->container), cwd);
}

int RunForward(const std::string& job_dir, int client_fd, int port) {
  signal(SIGPIPE, SIG_IGN);
  fcntl(client_fd, F_SETFD, FD_CLOEXEC);
  const std::string what = "herd port-forward: port " + std::to_string(port);
  if (port <= 0 || port > 65535) return FailOnStream(client_fd, what + ": not a TCP port", 1);
  // Only the job's network view: a container's network namespace, else the host's.
  Result<EnteredJob> job = EnterJob(job_dir, CLONE_NEWNET);
  if (!job.ok()) return FailOnStream(client_fd, what + ": " + job.status().message(), 1);
  // Connected by the job's user: a port or socket that only root may reach stays out of reach.
  Result<int> tcp = ConnectLoopback(static_cast<uint16_t>(port));
  if (!tcp.ok()) {
    return FailOnStream(client_fd, what + " of the job: " + tcp.status().message(), 1);
  }
  return RunForwardRelay(client_fd, *tcp);
}

int RunShim(const std::string& job_dir, int ready_fd) {
  // Signals are read from a signalfd; block them before anything can send one.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (ready_fd >= 0) fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
  // Orphans of the job (and a container's init after runc create) are reparented to us.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  Shim shim(job_dir, ready_fd);
  return shim.Run();
}

}  // namespace herd::runtime
