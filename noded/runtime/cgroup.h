// Cgroups of one job: <hierarchy>/<parent>/<job_key> in each controller the job needs, on the
// cgroup v1 controllers (v1 and hybrid machines) or the unified v2 hierarchy.
// Built by herd-shim (Create, to confine a plain job) and by Runtime (Open, to freeze it).
// Thread-safety: none needed; a value type whose methods touch only the cgroup files.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/util/status.h"
#include "noded/runtime/device_filter.h"

namespace herd::runtime {

enum class CgroupMode { kNone, kV1, kHybrid, kV2 };

// Where the cgroup hierarchies are mounted.
inline constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

// The layout mounted at /sys/fs/cgroup.
CgroupMode DetectCgroupMode();
std::string CgroupModeName(CgroupMode mode);  // "none", "v1", "hybrid", "v2"
CgroupMode CgroupModeFromName(const std::string& name);

// The devices every job may use whatever it was given: null, zero, full, random, urandom, tty,
// console, ptmx and the pseudo-terminals (/dev/pts/N).
std::vector<DeviceAllow> BasicDevices();

struct CgroupLimits {
  std::vector<int> cpus;  // empty = inherit
  int64_t memory_mib = 0;
  int64_t pids_max = 0;
  // confine_devices: the job may open only `devices`. On v1 and hybrid machines through the v1
  // devices controller (deny all, then allow each); on v2, which has no devices controller,
  // through an eBPF device filter attached to the job's cgroup (device_filter.h). Where neither
  // can be had the job is not confined, and DevicesConfined() and DevicesNote() say so.
  bool confine_devices = false;
  std::vector<DeviceAllow> devices;
};

// A job's resource use from its cgroup counters; -1 where the kernel does not report it.
struct CgroupUsage {
  int64_t cpu_ns = -1;             // CPU time of all its processes (cpuacct.usage, cpu.stat)
  int64_t memory_bytes = -1;       // memory charged now (memory.usage_in_bytes, memory.current)
  int64_t memory_peak_bytes = -1;  // highest charge (memory.max_usage_in_bytes, memory.peak)
};

class JobCgroup {
 public:
  // Creates the job's cgroups and applies the limits. Code::kUnavailable means cgroups
  // cannot be used here (not root, read-only, no controller a limit needs); other errors are
  // bad limits. `root` is where the hierarchies are mounted: a v1 controller at root/<ctrl>, the
  // v2 hierarchy at root itself (tests name the unified hierarchy of a hybrid machine, whose
  // controllers are all on v1, to make a v2 job cgroup there).
  static Result<JobCgroup> Create(CgroupMode mode, const std::string& parent,
                                  const std::string& job_key, const CgroupLimits& limits,
                                  const std::string& root = kCgroupRoot);
  // The cgroups a previous Create made, without touching them.
  static JobCgroup Open(CgroupMode mode, const std::string& parent, const std::string& job_key,
                        const std::string& root = kCgroupRoot);

  // Moves pid into every cgroup of the job.
  Status Attach(pid_t pid) const;
  // Freezes or thaws the job and waits (bounded) until the kernel reports it done.
  Status Freeze(bool frozen) const;
  bool CanFreeze() const { return !freezer_dir_.empty(); }
  // The file that tells whether the job is frozen (freezer.state or cgroup.freeze).
  std::string FreezeStateFile() const;
  // How many processes of the job the kernel killed for lack of memory.
  int64_t OomKills() const;
  // The job's CPU time and memory so far; all -1 once its cgroups are removed.
  CgroupUsage Usage() const;
  // Processes in the job's cgroup.
  std::vector<pid_t> Pids() const;
  // Kills every process in the job's cgroup: freezes it (so nothing forks meanwhile), sends
  // SIGKILL to each process, thaws it, and waits until the cgroup is empty. kUnavailable when
  // processes remain after `timeout`. OK at once when the cgroup is already empty or gone.
  Status KillAll(std::chrono::milliseconds timeout) const;
  // Whether Create confined the job's devices (false when it was not asked to, or could not).
  bool DevicesConfined() const { return devices_confined_; }
  // Why Create could not confine the job's devices though asked to; empty otherwise.
  const std::string& DevicesNote() const { return devices_note_; }
  // Removes the job's cgroups, which must be empty; the shared parent stays.
  void Remove() const;

 private:
  CgroupMode mode_ = CgroupMode::kNone;
  std::vector<std::string> dirs_;  // every cgroup dir of the job, one per v1 hierarchy
  std::string memory_dir_, freezer_dir_, procs_dir_, cpuacct_dir_, devices_dir_;
  bool devices_confined_ = false;
  std::string devices_note_;
};

}  // namespace herd::runtime
