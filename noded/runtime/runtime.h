// The job runtime of herd-noded: starts each job under its own supervisor process, herd-shim,
// so that a job outlives a restart of herd-noded and its exit code is never lost.
//
// Every job has a directory state_dir/jobs/<job_key>/ holding spec.json (what to run), log
// (stdout and stderr as written) with log.stdout and log.stderr (each stream alone), shim.pid,
// pid (the job's main process), and, once the job has ended, exit (its exit code and reason). A plain job runs as a process group; a job with an image
// runs as a runc container. Both are confined by cgroups when the machine allows it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/util/status.h"
#include "noded/runtime/cgroup.h"

namespace herd::runtime {

// What to run for one job (one worker of a job). Built by herd-noded from a launch request.
struct LaunchSpec {
  std::string job_key;  // "42.0" = job 42 worker 0; names the job's state dir and cgroup
  std::vector<std::string> argv;
  // A batch script's text: run instead of argv[0], which then only names it (model::JobSpec).
  std::string script;
  std::vector<std::pair<std::string, std::string>> env;  // added to a minimal PATH/HOME/USER
  std::string cwd;                                       // "" = "/"
  // model::JobSpec::session: "pty" or "pipes" start a session relay (relay.h) that `herd attach`
  // reaches through the job directory's session socket; "" = none.
  std::string session = {};
  std::string image;  // "" = plain process; else a rootfs directory, a .tar/.tar.gz, or an OCI
                      // image layout "DIR[:TAG]" (unpacked with umoci) -> runc
  uint32_t uid = 0, gid = 0;  // run as this user; a non-root noded can only run as itself
  std::vector<int> cpus;      // cpuset cores; empty = no pinning
  std::vector<int> gpus;      // GPU indexes: their /dev/nvidia* nodes are passed to containers
  int64_t memory_mib = 0;     // cgroup memory limit; 0 = none
  int64_t pids_max = 0;       // cgroup pids limit; 0 = none
  // host -> container bind, rw. The host path is resolved as the job's user (symlinks included)
  // and must then lie under RuntimeOptions::allowed_volumes.
  std::vector<std::pair<std::string, std::string>> mounts;
  // Files that also get the job's stdout and stderr (herd submit -o/--error): absolute host
  // paths that herd-shim opens with the job's user's rights alone, before the job starts; one
  // it cannot open fails the start. "" = the job's state directory alone. A batch job only.
  std::string stdout_path = {};
  std::string stderr_path = {};
  bool append_output = false;  // append to them; else they are truncated at start
};

// The state of one job as seen in its state directory. kStarting: its herd-shim has not yet
// said whether the job runs (it may be unpacking the job's image).
struct JobStatus {
  enum State { kRunning, kSuspended, kExited, kStarting };
  std::string job_key;
  State state = kRunning;
  int exit_code = -1;  // when kExited: the exit code, 128+N when killed by signal N, -1 unknown
  std::string reason;  // "exit code 3", "killed by signal 9", "out of memory", "" (exit 0)
  CgroupUsage usage;   // when kExited: its use at the end, as herd-shim recorded it
  bool session = false;  // running with a session relay (LaunchSpec::session)
};

// What herd-noded needs to serve a session of a running job: the uid the job runs as (the
// only user besides root and admins who may attach or exec) and its session relay's socket.
struct SessionTarget {
  uint32_t uid = 0;
  std::string socket;  // "" when the job has no session (or its relay has ended)
};

struct RuntimeOptions {
  std::string state_dir;               // per-job dirs under state_dir/jobs/<job_key>/
  std::string shim_path;               // the herd-shim executable
  std::string runc_path = "runc";      // looked up in PATH when it has no '/'
  std::string cgroup_parent = "herd";  // cgroups are <hierarchy>/<cgroup_parent>/<job_key>;
                                       // the parent is created on demand and never removed
  bool use_cgroups = true;             // false: never confine jobs with cgroups
  // Host paths container jobs may mount ([containers] allowed_volumes); empty: none.
  std::vector<std::string> allowed_volumes;
  // Where the GPUs' device nodes (nvidiaN, nvidiactl, nvidia-uvm...) are looked up: a job may
  // open only its own GPUs' nodes. Tests point it at fake nodes.
  std::string dev_dir = "/dev";
  // A job's log keeps at most this many bytes of its output, then one line saying it was
  // truncated; 0 = no cap.
  int64_t max_log_bytes = 0;
  // A job that has not started this long after Launch (its image still unpacking, say) is
  // killed, with everything its herd-shim started, and reported as not started.
  std::chrono::milliseconds start_timeout = std::chrono::minutes(10);
  // The most an image may take once unpacked ([node] max_image_size): no file of it larger, and
  // the unpack stopped once the state directory's disk lost more than this, or fell below
  // min_free_bytes, while it ran. 0 = no bound.
  int64_t max_image_bytes = 0;
  int64_t min_free_bytes = 0;
};

// How the start of one job ended: Ok once it runs, else why it did not start.
struct StartOutcome {
  std::string job_key;
  Status status;
};

// Whether a failed operation (a Launch) failed for lack of space or quota on the disk of the
// state directory (ENOSPC, EDQUOT), whoever reported it: herd-noded or herd-shim.
bool IsNoSpace(const Status& status);

// Starts, signals and observes jobs through their state directories. Holds in memory only the
// jobs it is starting (the pipes their shims answer on), so a Runtime created over the
// state_dir of a previous one sees all of its jobs, those still starting included.
// Built once by herd-noded. Thread-safety: not thread-safe; use from one thread.
// Virtual so that herd-noded-emulator can run jobs that start no process (EmulatedRuntime).
class Runtime {
 public:
  virtual ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  // Checks the options, creates state_dir/jobs and probes whether cgroups can be made.
  static Result<std::unique_ptr<Runtime>> Create(RuntimeOptions options);

  // Starts the job under a detached herd-shim and returns as soon as the shim runs, never waiting
  // for the job itself (an image may take long to unpack): the job is kStarting until
  // TakeStartOutcomes reports how its start ended. An error here means no shim was started.
  virtual Status BeginLaunch(const LaunchSpec& spec);
  // Descriptors that become readable when a starting job's shim answers (or dies), for the
  // caller's poll.
  virtual std::vector<int> StartFds() const;
  // The starts that ended since the last call, without blocking: Ok, or why the job did not
  // start ("cannot run 'foo': No such file or directory"); a job that did not start leaves only
  // its log. A start past start_timeout is ended here: its shim and all it started are killed.
  virtual std::vector<StartOutcome> TakeStartOutcomes();
  // BeginLaunch, then waits for that job's outcome (at most start_timeout): for tools and
  // tests; herd-noded never waits. REQUIRES: no other job of this Runtime is starting.
  Status Launch(const LaunchSpec& spec);
  // Asks the shim to send SIGTERM to the whole job and SIGKILL after grace_ms; does not block.
  // A job still starting is ended at once: its shim and everything the shim started (unpack
  // processes, a container being created) are killed, and its end recorded as a kill.
  virtual Status Kill(const std::string& job_key, int grace_ms);
  // Freezes the job (cgroup freezer, runc pause, or SIGSTOP of its process group).
  virtual Status Suspend(const std::string& job_key);
  // Thaws a job frozen by Suspend.
  virtual Status Resume(const std::string& job_key);
  // The status of every job in state_dir that has not been forgotten.
  virtual std::vector<JobStatus> Poll();
  // CPU time and memory of a running job, read from its cgroups now (-1s when it has none).
  virtual CgroupUsage Usage(const std::string& job_key) const;
  // Removes an ended job's state, keeping its log. REQUIRES: the job has exited.
  virtual Status Forget(const std::string& job_key);
  // Deletes what is left of forgotten jobs (their logs) forgotten longer than `max_age` ago (by the
  // time their directory last changed, which Forget sets): herd-ctld no longer knows those jobs
  // once [controller] job_retention pruned them. Returns how many jobs' logs went.
  Result<int64_t> PruneLogs(std::chrono::seconds max_age);
  // Up to max_bytes of the job's output from offset: `stream` "" both as written, "stdout" or
  // "stderr" one alone (NotFound for a session's job, whose output is one stream); *eof is set when
  // the read reached the end of the log of a job that has ended (no more output will come).
  // The size in bytes of the job's output `stream` now (as ReadLog names it); NotFound when it
  // has none.
  virtual Result<int64_t> LogSize(const std::string& job_key, const std::string& stream);
  virtual Result<std::string> ReadLog(const std::string& job_key, const std::string& stream,
                                      int64_t offset, int64_t max_bytes, bool* eof);
  // Who runs the running job `job_key` and where its session relay listens.
  virtual Result<SessionTarget> Session(const std::string& job_key) const;
  // Starts `herd-shim --exec` for the running job `job_key` (shim.h: RunExec) and returns
  // herd-noded's end of its connection (non-blocking, close-on-exec; the caller closes it).
  virtual Result<int> StartExec(const std::string& job_key);
  // Starts `herd-shim --forward` for the running job `job_key` (shim.h: RunForward), which
  // connects to 127.0.0.1:port in the job's network view as its user; returns herd-noded's end
  // of its connection, as StartExec.
  virtual Result<int> StartForward(const std::string& job_key, int port);
  // The cgroup layout jobs are confined with: "v2", "v1", "hybrid", or "none" when cgroups
  // are disabled or unusable here (each job's shim.log then says why).
  virtual std::string CgroupMode() const;
  // Whether jobs are confined to their own devices (GPUs): false without cgroups, without the
  // v1 devices controller on v1 and hybrid machines, and on cgroup v2 where the kernel refuses
  // the eBPF device filter; jobs then rely on CUDA_VISIBLE_DEVICES.
  virtual bool ConfinesDevices() const;

 protected:
  Runtime() = default;  // for a runtime that replaces all of the above

 private:
  explicit Runtime(RuntimeOptions options);
  std::string JobDir(const std::string& job_key) const;
  Result<std::string> RunningJobDir(const std::string& job_key) const;
  // `herd-shim MODE JOB_DIR 3 ARGS...` for a running job, its descriptor 3 a socket whose other
  // end is returned.
  Result<int> StartInJob(const std::string& job_key, const std::string& mode,
                         const std::vector<std::string>& args);
  Status Freeze(const std::string& job_key, bool frozen);
  // Kills what remains of a job whose herd-shim died without recording its end (every process
  // of its cgroup or container, else its process group), then records its end (exit_code,
  // reason, start_failed) in its exit file. An error leaves the job running (a process
  // survived): the caller tries again later.
  Status EndOrphanedJob(const std::string& dir, const std::string& job_key, int exit_code,
                        const std::string& reason, bool start_failed);
  // Ends a start under way: SIGKILL to its shim's process group (the shim and its unpack
  // processes), then whatever the shim made (see EndOrphanedJob). The job is then kExited.
  Status AbortStart(const std::string& job_key, int exit_code, const std::string& reason);

  // A job whose shim has not answered yet.
  struct Starting {
    int fd = -1;       // the read end of its ready pipe; -1: adopted from a previous herd-noded
    pid_t group = -1;  // its shim's process group (the shim's session); -1 if unknown
    std::chrono::steady_clock::time_point deadline;
    std::string answer;  // what the shim wrote so far (one short line)
  };
  // The shim's answer, once it is complete: Ok, or why the job did not start.
  std::optional<Status> ReadAnswer(const std::string& job_key, Starting& starting);

  RuntimeOptions options_;
  std::map<std::string, Starting> starting_;  // by job key
  std::string cgroup_mode_ = "none";  // what a probe cgroup made at Create showed usable
  bool confines_devices_ = false;     // the probe cgroup's devices could be confined
};

}  // namespace herd::runtime
