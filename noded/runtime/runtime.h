// The job runtime of herd-noded: starts each job under its own supervisor process, herd-shim,
// so that a job outlives a restart of herd-noded and its exit code is never lost.
//
// Every job has a directory state_dir/jobs/<job_key>/ holding spec.json (what to run), log
// (stdout and stderr), shim.pid, pid (the job's main process), and, once the job has ended,
// exit (its exit code and reason). A plain job runs as a process group; a job with an image
// runs as a runc container. Both are confined by cgroups when the machine allows it.
#pragma once

#include <cstdint>
#include <memory>
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
};

// The state of one job as seen in its state directory.
struct JobStatus {
  enum State { kRunning, kSuspended, kExited };
  std::string job_key;
  State state = kRunning;
  int exit_code = -1;  // when kExited: the exit code, 128+N when killed by signal N, -1 unknown
  std::string reason;  // "exit code 3", "killed by signal 9", "out of memory", "" (exit 0)
  CgroupUsage usage;   // when kExited: its use at the end, as herd-shim recorded it
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
};

// Whether a failed operation (a Launch) failed for lack of space or quota on the disk of the
// state directory (ENOSPC, EDQUOT), whoever reported it: herd-noded or herd-shim.
bool IsNoSpace(const Status& status);

// Starts, signals and observes jobs through their state directories. Holds no job in memory,
// so a Runtime created over the state_dir of a previous one sees all of its jobs.
// Built once by herd-noded. Thread-safety: not thread-safe; use from one thread.
// Virtual so that herd-noded-emulator can run jobs that start no process (EmulatedRuntime).
class Runtime {
 public:
  virtual ~Runtime() = default;
  // Checks the options, creates state_dir/jobs and probes whether cgroups can be made.
  static Result<std::unique_ptr<Runtime>> Create(RuntimeOptions options);

  // Starts the job under a detached herd-shim and returns once it runs, or why it could not
  // start ("cannot run 'foo': No such file or directory"); a job that failed leaves only its log.
  virtual Status Launch(const LaunchSpec& spec);
  // Asks the shim to send SIGTERM to the whole job and SIGKILL after grace_ms; does not block.
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
  // Up to max_bytes of the job's combined output from offset; *eof is set when the read
  // reached the end of the log of a job that has ended (no more output will come).
  virtual Result<std::string> ReadLog(const std::string& job_key, int64_t offset,
                                      int64_t max_bytes, bool* eof);
  // The cgroup layout jobs are confined with: "v2", "v1", "hybrid", or "none" when cgroups
  // are disabled or unusable here (each job's shim.log then says why).
  virtual std::string CgroupMode() const;
  // Whether jobs are confined to their own devices (GPUs): false without cgroups and on pure
  // cgroup v2 (which would need an eBPF device filter); jobs then rely on CUDA_VISIBLE_DEVICES.
  virtual bool ConfinesDevices() const;

 protected:
  Runtime() = default;  // for a runtime that replaces all of the above

 private:
  explicit Runtime(RuntimeOptions options);
  std::string JobDir(const std::string& job_key) const;
  Result<std::string> RunningJobDir(const std::string& job_key) const;
  Status Freeze(const std::string& job_key, bool frozen);
  // Kills what remains of a job whose herd-shim died without recording its end (every process
  // of its cgroup or container, else its process group), then records the end in its exit file.
  // An error leaves the job running (a process survived): the caller tries again later.
  Status EndOrphanedJob(const std::string& dir, const std::string& job_key);

  RuntimeOptions options_;
  std::string cgroup_mode_ = "none";  // what a probe cgroup made at Create showed usable
  bool confines_devices_ = false;     // the probe cgroup's devices could be confined
};

}  // namespace herd::runtime
