#include "noded/runtime/runtime.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>

#include "noded/runtime/cgroup.h"
#include "noded/runtime/job_dir.h"
#include "noded/runtime/shim.h"

namespace herd::runtime {
namespace fs = std::filesystem;

namespace {

// Runs argv in a grandchild (double fork + setsid), so that it is nobody's child here and
// survives herd-noded, with `fd` as its descriptor 3, /dev/null as 0, 1 and 2 and nothing else
// open. Returns the child, whose pid is the grandchild's session and process group; the caller
// reaps it (it exits at once). -1 with errno when fork fails.
pid_t SpawnDetached(std::vector<std::string> args, int fd) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child = fork();
  if (child == 0) {
    setsid();
    if (fork() != 0) _exit(0);
    if (fd == 3) {
      fcntl(3, F_SETFD, 0);
    } else {
      dup2(fd, 3);
    }
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    close_range(4, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(argv[0], argv.data());
    static const char kMsg[] = "error: cannot execute herd-shim\n";
    (void)!write(3, kMsg, sizeof kMsg - 1);
    _exit(127);
  }
  return child;
}

bool ValidKey(const std::string& key) {
  if (key.empty() || key.size() > 128 || key[0] == '.') return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

pid_t ReadPid(const std::string& path) {
  Result<std::string> text = ReadFile(path);
  return text.ok() ? static_cast<pid_t>(std::atol(text->c_str())) : -1;
}

}  // namespace

bool IsNoSpace(const Status& status) {
  // herd-shim reports its errors as text, so the kernel's words are what both sides share.
  const std::string& m = status.message();
  return !status.ok() && (m.find(ErrnoText(ENOSPC)) != std::string::npos ||
                          m.find(ErrnoText(EDQUOT)) != std::string::npos);
}

Runtime::Runtime(RuntimeOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<Runtime>> Runtime::Create(RuntimeOptions options) {
  if (options.state_dir.empty()) return Invalid("runtime: state_dir is empty");
  if (access(options.shim_path.c_str(), X_OK) != 0) {
    return Invalid("runtime: herd-shim '" + options.shim_path +
                   "' is not executable: " + ErrnoText(errno));
  }
  if (options.cgroup_parent.empty() || options.cgroup_parent.find("..") != std::string::npos) {
    return Invalid("runtime: bad cgroup_parent '" + options.cgroup_parent + "'");
  }
  std::error_code ec;
  options.state_dir = fs::absolute(options.state_dir, ec).string();
  options.shim_path = fs::absolute(options.shim_path, ec).string();
  fs::create_directories(options.state_dir + "/jobs", ec);
  if (ec) return Internal("runtime: cannot create " + options.state_dir + "/jobs: " + ec.message());
  auto runtime = std::unique_ptr<Runtime>(new Runtime(std::move(options)));
  if (runtime->options_.use_cgroups) {
    // Only a cgroup actually made proves that jobs will get one (root, writable, controllers).
    runtime::CgroupMode detected = DetectCgroupMode();  // qualified: Runtime::CgroupMode()
    CgroupLimits limits;
    limits.confine_devices = true;
    limits.devices = BasicDevices();
    Result<JobCgroup> probe = JobCgroup::Create(detected, runtime->options_.cgroup_parent,
                                                "probe-" + std::to_string(getpid()), limits);
    if (probe.ok()) {
      probe->Remove();
      runtime->cgroup_mode_ = CgroupModeName(detected);
      runtime->confines_devices_ = probe->DevicesConfined();
    }
  }
  return runtime;
}

std::string Runtime::JobDir(const std::string& job_key) const {
  return options_.state_dir + "/jobs/" + job_key;
}

std::string Runtime::CgroupMode() const { return cgroup_mode_; }

bool Runtime::ConfinesDevices() const { return confines_devices_; }

Runtime::~Runtime() {
  for (auto& [key, starting] : starting_) {
    if (starting.fd >= 0) close(starting.fd);
  }
}

Status Runtime::BeginLaunch(const LaunchSpec& spec) {
  if (!ValidKey(spec.job_key)) return Invalid("bad job key '" + spec.job_key + "'");
  if (spec.argv.empty()) return Invalid("job " + spec.job_key + " has no command");
  if (geteuid() != 0 && spec.uid != geteuid()) {
    return Denied("herd-noded runs as uid " + std::to_string(geteuid()) + " and cannot run job " +
                  spec.job_key + " as uid " + std::to_string(spec.uid));
  }
  std::string dir = JobDir(spec.job_key);
  if (Exists(dir + "/" + kSpecFile)) return Invalid("job " + spec.job_key + " already exists");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  // The spec holds the job's environment and the log its output: only herd-noded enters.
  if (chmod(dir.c_str(), 0700) != 0) {
    return Internal("cannot make " + dir + " private: " + ErrnoText(errno));
  }
  ShimSpec shim{spec,
                options_.runc_path,
                options_.state_dir + "/runc",
                options_.cgroup_parent,
                options_.use_cgroups,
                options_.allowed_volumes,
                options_.dev_dir,
                options_.max_log_bytes,
                options_.max_image_bytes,
                options_.min_free_bytes};
  // Before the spec: a job with a spec and this file is starting, whoever looks (Poll).
  HERD_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kStartingFile, ""));
  HERD_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kSpecFile, SpecToJson(shim)));

  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) {
    Status failed = Internal("pipe: " + ErrnoText(errno));
    Forget(spec.job_key).ok();
    return failed;
  }
  // Its session's id is the child's pid: the process group of the shim and its unpack processes.
  pid_t child = SpawnDetached({options_.shim_path, dir, "3"}, ready[1]);
  close(ready[1]);
  if (child < 0) {
    const int err = errno;
    close(ready[0]);
    Forget(spec.job_key).ok();
    return Internal("fork: " + ErrnoText(err));
  }
  while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
  }
  // The answer is read as it comes (TakeStartOutcomes), never waited for here.
  fcntl(ready[0], F_SETFL, O_NONBLOCK);
  starting_[spec.job_key] =
      Starting{ready[0], child, std::chrono::steady_clock::now() + options_.start_timeout, ""};
  return Status::Ok();
}

Result<SessionTarget> Runtime::Session(const std::string& job_key) const {
  auto dir = RunningJobDir(job_key);
  if (!dir.ok()) return dir.status();
  auto text = ReadFile(*dir + "/" + kSpecFile);
  if (!text.ok()) return text.status();
  auto spec = SpecFromJson(*text);
  if (!spec.ok()) return spec.status();
  SessionTarget target;
  target.uid = spec->launch.uid;
  if (!spec->launch.session.empty() && Exists(*dir + "/" + kSessionSocket)) {
    target.socket = *dir + "/" + kSessionSocket;
  }
  return target;
}

Result<int> Runtime::StartExec(const std::string& job_key) {
  return StartInJob(job_key, "--exec", {});
}

Result<int> Runtime::StartForward(const std::string& job_key, int port) {
  return StartInJob(job_key, "--forward", {std::to_string(port)});
}

Result<int> Runtime::StartInJob(const std::string& job_key, const std::string& mode,
                                const std::vector<std::string>& args) {
  auto dir = RunningJobDir(job_key);
  if (!dir.ok()) return dir.status();
  if (!Exists(*dir + "/" + kPidFile)) return Unavailable("job " + job_key + " is still starting");
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return Internal("socketpair: " + ErrnoText(errno));
  }
  std::vector<std::string> argv = {options_.shim_path, mode, *dir, "3"};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t child = SpawnDetached(argv, pair[1]);
  const int err = errno;
  close(pair[1]);
  if (child < 0) {
    close(pair[0]);
    return Internal("fork: " + ErrnoText(err));
  }
  while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
  }
  fcntl(pair[0], F_SETFL, O_NONBLOCK);
  return pair[0];
}

std::vector<int> Runtime::StartFds() const {
  std::vector<int> fds;
  for (const auto& [key, starting] : starting_) {
    if (starting.fd >= 0) fds.push_back(starting.fd);
  }
  return fds;
}

std::optional<Status> Runtime::ReadAnswer(const std::string& job_key, Starting& starting) {
  const std::string dir = JobDir(job_key);
  const std::string lost = "herd-shim exited before starting the job";
  if (starting.fd < 0) {
    // Adopted after a restart of herd-noded: the job dir tells how far the shim got.
    if (Exists(dir + "/" + kExitFile)) {
      Result<std::string> text = ReadFile(dir + "/" + kExitFile);
      Result<ExitRecord> record =
          text.ok() ? ExitFromJson(*text) : Result<ExitRecord>(text.status());
      return Invalid("job " + job_key + ": " + (record.ok() ? record->reason : lost));
    }
    if (!Exists(dir + "/" + kStartingFile)) return Status::Ok();
    if (!ProcessAlive(ReadPid(dir + "/" + kShimPidFile), dir)) return Unavailable(lost);
    return std::nullopt;
  }
  char buf[256];
  bool eof = false;
  while (true) {
    const ssize_t n = read(starting.fd, buf, sizeof buf);
    if (n > 0) {
      // One short line is all a shim says; more is not an answer.
      if (starting.answer.size() < 4096) starting.answer.append(buf, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    eof = n == 0;
    break;
  }
  const size_t nl = starting.answer.find('\n');
  if (nl == std::string::npos && !eof) return std::nullopt;
  const std::string answer = starting.answer.substr(0, nl);
  if (answer == "ok") return Status::Ok();
  if (answer.rfind("error: ", 0) == 0) return Invalid("job " + job_key + ": " + answer.substr(7));
  return Unavailable(lost);  // it died without a word: what it started may still run
}

std::vector<StartOutcome> Runtime::TakeStartOutcomes() {
  std::vector<StartOutcome> out;
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::string> keys;
  for (const auto& [key, starting] : starting_) keys.push_back(key);
  for (const std::string& key : keys) {
    Starting& starting = starting_.at(key);
    std::optional<Status> outcome = ReadAnswer(key, starting);
    std::string abort;  // why herd-noded ends this start itself
    if (!outcome && now >= starting.deadline) {
      abort = "did not start within start_timeout (" +
              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                 options_.start_timeout)
                                 .count()) +
              "s): its start was killed";
    } else if (outcome && outcome->code() == Code::kUnavailable) {
      abort = outcome->message();
    }
    if (!abort.empty()) {
      if (Status aborted = AbortStart(key, 127, abort); !aborted.ok()) {
        // A process survived SIGKILL: tried again at the next call, from the job dir (the pipe
        // has nothing more to say).
        AppendLine(JobDir(key) + "/" + kShimLogFile, "cannot end the start: " + aborted.message());
        if (starting.fd >= 0) close(starting.fd);
        starting.fd = -1;
        continue;
      }
      outcome = Invalid("job " + key + ": " + abort);
    }
    if (!outcome) continue;
    if (auto it = starting_.find(key); it != starting_.end()) {
      if (it->second.fd >= 0) close(it->second.fd);
      starting_.erase(it);
    }
    // A job that did not start leaves only its log; the caller reports it.
    if (!outcome->ok()) Forget(key).ok();
    out.push_back({key, *outcome});
  }
  return out;
}

Status Runtime::Launch(const LaunchSpec& spec) {
  HERD_RETURN_IF_ERROR(BeginLaunch(spec));
  while (true) {
    for (StartOutcome& outcome : TakeStartOutcomes()) {
      if (outcome.job_key == spec.job_key) return outcome.status;
    }
    std::vector<int> fds = StartFds();
    std::vector<struct pollfd> polled;
    for (int fd : fds) polled.push_back({fd, POLLIN, 0});
    // Bounded: TakeStartOutcomes also enforces start_timeout.
    poll(polled.data(), polled.size(), 100);
  }
}

Status Runtime::AbortStart(const std::string& job_key, int exit_code, const std::string& reason) {
  auto it = starting_.find(job_key);
  const std::string dir = JobDir(job_key);
  pid_t group = it != starting_.end() ? it->second.group : -1;
  if (group <= 0) {
    const pid_t shim = ReadPid(dir + "/" + kShimPidFile);
    if (ProcessAlive(shim, dir)) group = getpgid(shim);
  }
  // The shim first, so that it starts nothing more; its unpack processes are of its group.
  if (group > 1) kill(-group, SIGKILL);
  AppendLine(dir + "/" + kShimLogFile, "start ended by herd-noded: " + reason);
  HERD_RETURN_IF_ERROR(EndOrphanedJob(dir, job_key, exit_code, reason, /*start_failed=*/true));
  if (it != starting_.end()) {
    if (it->second.fd >= 0) close(it->second.fd);
    starting_.erase(it);
  }
  unlink((dir + "/" + kStartingFile).c_str());
  return Status::Ok();
}

Result<std::string> Runtime::RunningJobDir(const std::string& job_key) const {
  if (!ValidKey(job_key)) return Invalid("bad job key '" + job_key + "'");
  std::string dir = JobDir(job_key);
  if (!Exists(dir + "/" + kSpecFile)) return NotFound("no job " + job_key);
  if (Exists(dir + "/" + kExitFile)) return Invalid("job " + job_key + " has already ended");
  if (!ProcessAlive(ReadPid(dir + "/" + kShimPidFile), dir)) {
    return Unavailable("the supervisor of job " + job_key + " is gone");
  }
  return dir;
}

Status Runtime::Kill(const std::string& job_key, int grace_ms) {
  if (starting_.count(job_key) != 0) {
    // Nothing of the job's own runs yet: no grace to give, and its shim may be stuck unpacking.
    return AbortStart(job_key, 128 + SIGKILL, "killed while starting");
  }
  Result<std::string> dir = RunningJobDir(job_key);
  if (!dir.ok()) {
    // Killing a job that already ended is not an error: the caller wanted it gone.
    return Exists(JobDir(job_key) + "/" + kExitFile) ? Status::Ok() : dir.status();
  }
  HERD_RETURN_IF_ERROR(WriteFileAtomic(*dir + "/" + kKillFile, std::to_string(grace_ms)));
  if (kill(ReadPid(*dir + "/" + kShimPidFile), SIGTERM) != 0) {
    return Internal("cannot signal the supervisor of job " + job_key + ": " + ErrnoText(errno));
  }
  return Status::Ok();
}

Status Runtime::Suspend(const std::string& job_key) { return Freeze(job_key, true); }
Status Runtime::Resume(const std::string& job_key) { return Freeze(job_key, false); }

Status Runtime::Freeze(const std::string& job_key, bool frozen) {
  if (starting_.count(job_key) != 0) return Unavailable("job " + job_key + " is still starting");
  Result<std::string> dir = RunningJobDir(job_key);
  if (!dir.ok()) return dir.status();
  Result<std::string> text = ReadFile(*dir + "/" + kSpecFile);
  if (!text.ok()) return text.status();
  Result<ShimSpec> spec = SpecFromJson(*text);
  if (!spec.ok()) return spec.status();
  Status status;
  Result<std::string> mode = ReadFile(*dir + "/" + kCgroupFile);
  std::string mode_name = mode.ok() ? mode->substr(0, mode->find('\n')) : "";
  if (!spec->launch.image.empty()) {
    status = RunCommand(
        {spec->runc_path, "--root", spec->runc_root, frozen ? "pause" : "resume", job_key}, -1);
  } else if (JobCgroup cg =
                 JobCgroup::Open(CgroupModeFromName(mode_name), spec->cgroup_parent, job_key);
             mode.ok() && cg.CanFreeze()) {
    status = cg.Freeze(frozen);
  } else {
    // No freezer: stop the process group, which the job can see but not prevent.
    pid_t pid = ReadPid(*dir + "/" + kPidFile);
    if (pid <= 0 || kill(-pid, frozen ? SIGSTOP : SIGCONT) != 0) {
      status = Internal("cannot signal job " + job_key + ": " + ErrnoText(errno));
    }
  }
  if (!status.ok()) return status;
  if (frozen) return WriteFileAtomic(*dir + "/" + kSuspendedFile, "");
  unlink((*dir + "/" + kSuspendedFile).c_str());
  return Status::Ok();
}

std::vector<JobStatus> Runtime::Poll() {
  std::vector<JobStatus> jobs;
  std::error_code ec;
  for (const fs::directory_entry& entry :
       fs::directory_iterator(options_.state_dir + "/jobs", ec)) {
    std::string dir = entry.path().string();
    if (!Exists(dir + "/" + kSpecFile)) continue;  // forgotten: only the log is left
    JobStatus st;
    st.job_key = entry.path().filename().string();
    Result<std::string> exit_text = ReadFile(dir + "/" + kExitFile);
    if (!exit_text.ok() && starting_.count(st.job_key) != 0) {
      st.state = JobStatus::kStarting;  // its shim may not even have written its pid yet
      jobs.push_back(st);
      continue;
    }
    if (!exit_text.ok()) {
      if (ProcessAlive(ReadPid(dir + "/" + kShimPidFile), dir)) {
        if (Exists(dir + "/" + kStartingFile)) {
          // Started by a previous herd-noded: watched from here on, start_timeout afresh.
          starting_[st.job_key] = Starting{
              -1, -1, std::chrono::steady_clock::now() + options_.start_timeout, ""};
          st.state = JobStatus::kStarting;
          jobs.push_back(st);
          continue;
        }
        st.state = Exists(dir + "/" + kSuspendedFile) ? JobStatus::kSuspended : JobStatus::kRunning;
        st.session = Exists(dir + "/" + kSessionSocket);
        jobs.push_back(st);
        continue;
      }
      exit_text = ReadFile(dir + "/" + kExitFile);  // the shim may have just finished
      if (!exit_text.ok()) {
        // The shim died (kill -9) and left its job running: end the job first, so that nothing
        // reports it ended (and its GPUs free) while any of its processes runs.
        Status ended = EndOrphanedJob(dir, st.job_key, -1,
                                      "herd-shim died; the job's processes were killed", false);
        if (!ended.ok()) {
          AppendLine(dir + "/" + kShimLogFile, "herd-shim died: " + ended.message());
          jobs.push_back(st);  // still running; tried again at the next poll
          continue;
        }
        exit_text = ReadFile(dir + "/" + kExitFile);
      }
    }
    st.state = JobStatus::kExited;
    Result<ExitRecord> record =
        exit_text.ok() ? ExitFromJson(*exit_text) : Result<ExitRecord>(exit_text.status());
    if (record.ok()) {
      st.exit_code = record->exit_code;
      st.reason = record->reason;
      st.usage = record->usage;
    } else {
      st.reason = "herd-shim died without recording the job's end";
    }
    jobs.push_back(st);
  }
  std::sort(jobs.begin(), jobs.end(),
            [](const JobStatus& a, const JobStatus& b) { return a.job_key < b.job_key; });
  return jobs;
}

Status Runtime::EndOrphanedJob(const std::string& dir, const std::string& job_key, int exit_code,
                               const std::string& reason, bool start_failed) {
  Result<std::string> text = ReadFile(dir + "/" + kSpecFile);
  if (!text.ok()) return text.status();
  Result<ShimSpec> spec = SpecFromJson(*text);
  if (!spec.ok()) return spec.status();
  Result<std::string> mode = ReadFile(dir + "/" + kCgroupFile);
  ExitRecord record{exit_code, reason, start_failed, {}};
  if (!spec->launch.image.empty()) {
    // runc kills the container's every process and removes its cgroups.
    Status deleted = RunCommand(
        {spec->runc_path, "--root", spec->runc_root, "delete", "--force", job_key}, -1);
    // The cgroup is herd-shim's own while it unpacks the image (runc takes it over later).
    JobCgroup cg = JobCgroup::Open(DetectCgroupMode(), spec->cgroup_parent, job_key);
    if (!cg.Pids().empty()) {
      HERD_RETURN_IF_ERROR(cg.KillAll(std::chrono::seconds(2)));
    }
    record.usage = cg.Usage();
    cg.Remove();
    if (!deleted.ok()) AppendLine(dir + "/" + kShimLogFile, deleted.message());
  } else if (mode.ok()) {
    JobCgroup cg = JobCgroup::Open(CgroupModeFromName(mode->substr(0, mode->find('\n'))),
                                   spec->cgroup_parent, job_key);
    HERD_RETURN_IF_ERROR(cg.KillAll(std::chrono::seconds(2)));
    record.usage = cg.Usage();
    cg.Remove();
  } else {
    // No cgroup: the job's process group (its main process called setsid) is all there is.
    pid_t pid = ReadPid(dir + "/" + kPidFile);
    if (pid > 0 && getpgid(pid) == pid) kill(-pid, SIGKILL);
  }
  AppendLine(dir + "/" + kShimLogFile, "job ended: " + record.reason);
  return WriteFileAtomic(dir + "/" + kExitFile, ExitToJson(record));
}

CgroupUsage Runtime::Usage(const std::string& job_key) const {
  if (!ValidKey(job_key)) return {};
  return JobCgroup::Open(CgroupModeFromName(cgroup_mode_), options_.cgroup_parent, job_key).Usage();
}

Status Runtime::Forget(const std::string& job_key) {
  if (!ValidKey(job_key)) return Invalid("bad job key '" + job_key + "'");
  std::string dir = JobDir(job_key);
  if (!Exists(dir)) return NotFound("no job " + job_key);
  if (!Exists(dir + "/" + kExitFile) && ProcessAlive(ReadPid(dir + "/" + kShimPidFile), dir)) {
    return Invalid("job " + job_key + " is still running");
  }
  std::error_code ec;
  // The spec goes first so that Poll stops listing the job even if a removal below fails.
  fs::remove(dir + "/" + kSpecFile, ec);
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name != kLogFile && name != kStdoutLogFile && name != kStderrLogFile) {
      fs::remove_all(entry.path(), ec);
    }
  }
  if (ec) return Internal("cannot remove the state of job " + job_key + ": " + ec.message());
  return Status::Ok();
}

Result<int64_t> Runtime::PruneLogs(std::chrono::seconds max_age) {
  const fs::file_time_type cutoff = fs::file_time_type::clock::now() - max_age;
  std::error_code ec;
  int64_t pruned = 0;
  // A job directory is root's, 0700: no job's user can put anything in it (or swap it for a link)
  // that would make remove_all reach outside it.
  for (const fs::directory_entry& entry :
       fs::directory_iterator(options_.state_dir + "/jobs", ec)) {
    const std::string dir = entry.path().string();
    std::error_code each;
    if (!entry.is_directory(each) || entry.is_symlink(each) || Exists(dir + "/" + kSpecFile)) {
      continue;  // not a forgotten job's
    }
    const fs::file_time_type changed = fs::last_write_time(dir, each);
    if (each || changed >= cutoff) continue;
    fs::remove_all(dir, each);
    if (each) return Internal("cannot remove the logs in " + dir + ": " + each.message());
    ++pruned;
  }
  if (ec) return Internal("cannot list " + options_.state_dir + "/jobs: " + ec.message());
  return pruned;
}

namespace {

// The log file of output stream `stream` ("", "stdout" or "stderr"), nullptr for another name.
const char* LogFileOf(const std::string& stream) {
  return stream.empty()       ? kLogFile
         : stream == "stdout" ? kStdoutLogFile
         : stream == "stderr" ? kStderrLogFile
                              : nullptr;
}

}  // namespace

Result<int64_t> Runtime::LogSize(const std::string& job_key, const std::string& stream) {
  if (!ValidKey(job_key)) return Invalid("bad job key '" + job_key + "'");
  const char* file = LogFileOf(stream);
  if (file == nullptr) return Invalid("unknown output stream '" + stream + "'");
  struct stat st {};
  if (stat((JobDir(job_key) + "/" + file).c_str(), &st) != 0) {
    return NotFound("no log for job " + job_key);
  }
  return static_cast<int64_t>(st.st_size);
}

Result<std::string> Runtime::ReadLog(const std::string& job_key, const std::string& stream,
                                     int64_t offset, int64_t max_bytes, bool* eof) {
  if (!ValidKey(job_key)) return Invalid("bad job key '" + job_key + "'");
  if (offset < 0 || max_bytes < 0) return Invalid("negative log offset or size");
  const char* file = LogFileOf(stream);
  if (file == nullptr) return Invalid("unknown output stream '" + stream + "'");
  std::string dir = JobDir(job_key);
  // Decided before reading, so output written after this check is never reported as the end.
  bool ended = !Exists(dir + "/" + kSpecFile) || Exists(dir + "/" + kExitFile);
  int fd = open((dir + "/" + file).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && !stream.empty() && Exists(dir + "/" + kLogFile)) {
    return NotFound("job " + job_key + " kept no separate " + stream +
                    " (an interactive session's output is one stream): herd logs without "
                    "--stdout/--stderr shows it");
  }
  if (fd < 0) return NotFound("no log for job " + job_key);
  std::string data(static_cast<size_t>(max_bytes), '\0');
  ssize_t n = pread(fd, data.data(), data.size(), offset);
  off_t size = lseek(fd, 0, SEEK_END);
  close(fd);
  if (n < 0) return Internal("cannot read the log of job " + job_key + ": " + ErrnoText(errno));
  data.resize(n);
  if (eof != nullptr) *eof = ended && offset + n >= size;
  return data;
}

}  // namespace herd::runtime
