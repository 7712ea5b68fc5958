#include "noded/runtime/shim.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "noded/runtime/cgroup.h"
#include "noded/runtime/job_dir.h"
#include "noded/runtime/nvidia.h"

namespace herd::runtime {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr int kDefaultGraceMs = 10000;
// How often the log's size is checked against its cap: output past the cap may use the disk
// for at most this long.
constexpr int kLogCheckMs = 250;

// Undoes in a child what the shim set up for itself before it execs something else.
void ResetSignalsInChild() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
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

// The user's name, home and supplementary groups, or defaults for a uid with no passwd entry.
struct UserInfo {
  std::string name, home;
  std::vector<gid_t> groups;
};

UserInfo LookupUser(uid_t uid, gid_t gid) {
  UserInfo info{std::to_string(uid), "/", {gid}};
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

// The runtime-spec config.json of a container job; the rootfs is used in place.
std::string OciConfig(const ShimSpec& shim, const std::string& rootfs, const UserInfo& user) {
  using nlohmann::json;
  const LaunchSpec& spec = shim.launch;
  json caps = {"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
               "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
               "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
               "CAP_KILL",    "CAP_AUDIT_WRITE"};
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
  for (const auto& [host, target] : spec.mounts) {
    mounts.push_back({{"destination", target},
                      {"type", "bind"},
                      {"source", host},
                      {"options", {"rbind", "rw"}}});
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
  json config = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", spec.uid}, {"gid", spec.gid}, {"additionalGids", groups}}},
        {"args", spec.argv},
        {"env", env},
        {"cwd", spec.cwd.empty() ? "/" : spec.cwd},
        {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
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
  return config.dump(2) + "\n";
}

// Failure stages reported by a job child through its exec-error pipe.
enum ChildStage : int { kStageChdir = 1, kStageAffinity, kStageCredentials, kStageExec };
struct ChildError {
  int stage;
  int err;
};

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
  std::vector<std::string> Runc(std::vector<std::string> args) const;
  Status RuncWithLogError(const std::vector<std::string>& args, const std::string& what);
  void Signal(int sig);
  void Thaw();
  void BeginKill();
  void ReapAll();
  void KillLeftovers();
  void Cleanup();
  void Ready(const std::string& line);
  void CapLog(bool final);

  std::string dir_;
  int ready_fd_;
  ShimSpec spec_;
  int log_fd_ = -1;
  bool container_ = false;
  bool unpacked_rootfs_ = false;
  std::optional<JobCgroup> cgroup_;
  pid_t pid_ = -1;
  std::optional<int> status_;  // waitpid status of the job's main process once it ended
  std::optional<Clock::time_point> kill_deadline_;
  bool log_truncated_ = false;
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
    log_fd_ = open(Path(kLogFile).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    status = log_fd_ < 0 ? Internal("cannot open the log: " + ErrnoText(errno)) : Start();
  }
  if (!status.ok()) {
    Note("job did not start: " + status.message());
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    Cleanup();
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
  KillLeftovers();
  CapLog(/*final=*/true);
  ExitRecord record;
  int st = *status_;
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
  const int64_t cap = spec_.max_log_bytes;
  if (cap <= 0) return;
  const std::string note = "\n[herd: log truncated: the job wrote more than " +
                           std::to_string(cap) + " bytes (max_log_size); later output was "
                           "discarded]\n";
  struct stat st;
  if (stat(Path(kLogFile).c_str(), &st) != 0) return;
  const int64_t size = st.st_size;
  const int64_t done = cap + static_cast<int64_t>(note.size());
  if (size <= cap || (size <= done && !(final && size != done))) return;
  int fd = open(Path(kLogFile).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  if (ftruncate(fd, cap) == 0) {
    (void)!write(fd, note.data(), note.size());
    if (!log_truncated_) Note("log truncated at " + std::to_string(cap) + " bytes (max_log_size)");
    log_truncated_ = true;
  }
  close(fd);
}

void Shim::Ready(const std::string& line) {
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
  std::optional<std::string> exe = FindExecutable(spec.argv[0], path);
  if (!exe) return Invalid("cannot run '" + spec.argv[0] + "': No such file or directory");

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
        Note("devices not confined (no cgroup v1 devices controller; cgroup v2 needs an eBPF "
             "device filter herd does not load): the job can open every device node, other "
             "jobs' GPUs included");
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

  // Everything the child needs is prepared here: after fork it may only make system calls.
  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv = CStrings(args), envp = CStrings(env);
  std::string cwd = spec.cwd.empty() ? "/" : spec.cwd;
  bool switch_user = geteuid() == 0 && (spec.uid != 0 || spec.gid != 0);
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  for (int c : spec.cpus) CPU_SET(c, &cpus);
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
    setsid();  // the job's process group is what Kill and SIGSTOP address
    dup2(devnull, 0);
    dup2(log_fd_, 1);
    dup2(log_fd_, 2);
    char go;
    (void)!read(sync_pipe[0], &go, 1);  // wait until the shim has put us in the cgroups
    ChildError e{0, 0};
    if (chdir(cwd.c_str()) != 0) {
      e = {kStageChdir, errno};
    } else if (pin && sched_setaffinity(0, sizeof cpus, &cpus) != 0) {
      e = {kStageAffinity, errno};
    } else if (switch_user && (setgroups(user.groups.size(), user.groups.data()) != 0 ||
                               setgid(spec.gid) != 0 || setuid(spec.uid) != 0)) {
      e = {kStageCredentials, errno};
    } else {
      execve(exe->c_str(), argv.data(), envp.data());
      e = {kStageExec, errno};
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
  if (n <= 0) return Status::Ok();
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  switch (e.stage) {
    case kStageChdir:
      return Invalid("cannot chdir to '" + cwd + "': " + ErrnoText(e.err));
    case kStageAffinity:
      return Invalid("cannot pin the job to its cpus: " + ErrnoText(e.err));
    case kStageCredentials:
      return Invalid("cannot switch to uid " + std::to_string(spec.uid) + " gid " +
                     std::to_string(spec.gid) + ": " + ErrnoText(e.err));
    default:
      return Invalid("cannot run '" + spec.argv[0] + "': " + ErrnoText(e.err));
  }
}

std::vector<std::string> Shim::Runc(std::vector<std::string> args) const {
  args.insert(args.begin(), {spec_.runc_path, "--root", spec_.runc_root});
  return args;
}

// Runs a runc verb whose output goes to the job's log; on failure quotes runc's last line.
Status Shim::RuncWithLogError(const std::vector<std::string>& args, const std::string& what) {
  off_t before = lseek(log_fd_, 0, SEEK_END);
  Status status = RunCommand(Runc(args), log_fd_);
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

Status Shim::StartContainer() {
  const LaunchSpec& spec = spec_.launch;
  std::error_code ec;
  fs::create_directories(spec_.runc_root, ec);
  std::string bundle = Path("bundle");
  fs::create_directories(bundle, ec);
  if (ec) return Internal("cannot create " + bundle + ": " + ec.message());
  std::string rootfs;
  if (std::optional<OciImageRef> oci = ParseOciImage(spec.image)) {
    const char* path_env = getenv("PATH");
    if (!FindExecutable("umoci", path_env != nullptr ? path_env : kDefaultPath)) {
      return Invalid("image '" + spec.image +
                     "' is an OCI image layout, which needs umoci on the node: install it "
                     "(apt-get install umoci, or scripts/install-deps)");
    }
    rootfs = bundle + "/rootfs";
    unpacked_rootfs_ = true;
    int note_fd = open(Path(kShimLogFile).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    // raw unpack gives only the rootfs: the job's command and environment come from herd.
    Status unpacked = RunCommand(
        {"umoci", "raw", "unpack", "--image", oci->layout + ":" + oci->tag, rootfs}, note_fd);
    close(note_fd);
    if (!unpacked.ok()) {
      return Invalid("cannot unpack OCI image '" + spec.image + "': " + unpacked.message());
    }
  } else if (fs::is_directory(spec.image, ec)) {
    rootfs = fs::absolute(spec.image).string();
  } else if (fs::is_regular_file(spec.image, ec)) {
    rootfs = bundle + "/rootfs";
    fs::create_directories(rootfs, ec);
    unpacked_rootfs_ = true;
    int note_fd = open(Path(kShimLogFile).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    Status unpacked = RunCommand({"tar", "-xf", spec.image, "-C", rootfs}, note_fd);
    close(note_fd);
    if (!unpacked.ok()) {
      return Invalid("cannot unpack image '" + spec.image + "': " + unpacked.message());
    }
  } else {
    return Invalid("image '" + spec.image + "' not found");
  }
  if (geteuid() != 0) return Unavailable("containers need herd-noded to run as root");
  UserInfo user = LookupUser(spec.uid, spec.gid);
  user.home = spec.uid == 0 ? "/root" : "/";
  HERD_RETURN_IF_ERROR(WriteFileAtomic(bundle + "/config.json", OciConfig(spec_, rootfs, user)));
  HERD_RETURN_IF_ERROR(
      RuncWithLogError({"create", "--bundle", bundle, "--pid-file", Path(kPidFile), spec.job_key},
                       "cannot create container"));
  // runc create leaves the container's init orphaned; as subreaper the shim inherits it and
  // so can wait for its real exit status, then read the OOM counter before runc delete.
  Result<std::string> pid = ReadFile(Path(kPidFile));
  if (pid.ok()) pid_ = std::atoi(pid->c_str());
  if (pid_ <= 0) return Internal("runc wrote no pid file");
  cgroup_ = JobCgroup::Open(DetectCgroupMode(), spec_.cgroup_parent, spec.job_key);
  return RuncWithLogError({"start", spec.job_key}, "cannot start container");
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
    // Only the bundle (config.json and an unpacked tarball) is ours; an image dir never is.
    fs::remove_all(Path("bundle"), ec);
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

Status RunCommand(const std::vector<std::string>& argv, int out_fd) {
  int pipefd[2] = {-1, -1};
  if (out_fd < 0 && pipe2(pipefd, O_CLOEXEC) != 0) return Internal("pipe: " + ErrnoText(errno));
  std::vector<std::string> args = argv;
  std::vector<char*> cargs = CStrings(args);
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = fork();
  if (pid == 0) {
    ResetSignalsInChild();
    int out = out_fd >= 0 ? out_fd : pipefd[1];
    dup2(devnull, 0);
    dup2(out, 1);
    dup2(out, 2);
    execvp(cargs[0], cargs.data());
    _exit(127);
  }
  close(devnull);
  std::string output;
  if (out_fd < 0) {
    close(pipefd[1]);
    char buf[4096];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
      if (n > 0) output.append(buf, n);
    }
    close(pipefd[0]);
  }
  if (pid < 0) return Internal("fork: " + ErrnoText(errno));
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return Status::Ok();
  while (!output.empty() && output.back() == '\n') output.pop_back();
  std::string how = WIFEXITED(st) ? "exited with code " + std::to_string(WEXITSTATUS(st))
                                  : "was killed by signal " + std::to_string(WTERMSIG(st));
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && output.empty()) how = "could not be run";
  return Internal("'" + argv[0] + "' " + how + (output.empty() ? "" : ": " + output));
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
