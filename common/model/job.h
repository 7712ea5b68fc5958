// Jobs: what a user asks for (JobSpec), where it runs (WorkerPlacement) and its life (Job).
// Built by the CLI (spec), ctld (Job) and carried in protocol messages.
// Thread-safety: plain value types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/model/resources.h"

namespace herd::model {

using JobId = int64_t;

// PENDING -> STARTING -> RUNNING -> COMPLETED | FAILED | CANCELLED | TIMEOUT;
// RUNNING <-> SUSPENDED; RUNNING -> PREEMPTED -> PENDING; NODE_FAIL -> PENDING or FAILED.
enum class JobState {
  kPending,
  kStarting,
  kRunning,
  kSuspended,
  kPreempted,
  kCompleted,
  kFailed,
  kCancelled,
  kTimeout,
  kNodeFail,
};

const char* JobStateName(JobState s);                   // "RUNNING"
std::optional<JobState> ParseJobState(std::string_view);  // case-insensitive
bool IsTerminal(JobState s);                            // COMPLETED..NODE_FAIL (final ones)
bool HoldsResources(JobState s);                        // STARTING, RUNNING, SUSPENDED, PREEMPTED

// What a pending job waits for: the code behind its reason. Job::reason says it in full, with the
// numbers; herd why shows the code's name, herd-ctld's store keeps it by name, and code (never
// the reason's words) decides anything that depends on it.
enum class WaitsFor {
  kNothing,      // not pending
  kScheduler,    // the next scheduling cycle (just submitted, released or requeued)
  kResources,    // free GPUs, cores or memory, or jobs ahead of it in line
  kQuota,        // its project's limit or deserved quota, or a project that does not exist
  kReservation,  // resources reserved for another job
  kPreemption,   // jobs preempted for it to release their resources
  kDependency,   // other jobs to end (--after)
  kHold,         // herd release
  kBeginTime,    // --begin
  kArrayLimit,   // a member of its array to end (--array ...%N)
  kNode,         // a node: none registered, or none schedulable
};
// "scheduler", "resources", "quota", "reservation", "preemption", "dependency", "hold",
// "begin time", "array limit", "node"; "" for kNothing.
const char* WaitsForName(WaitsFor w);
std::optional<WaitsFor> ParseWaitsFor(std::string_view name);  // "" -> kNothing

struct JobSpec {
  std::string name;
  std::vector<std::string> argv;            // command and arguments; argv[0] is looked up in PATH
  // A batch script's text (`herd submit FILE`), copied at submit: the job runs this text, and
  // argv[0] only names the file it came from (argv[1...] are its arguments). Empty: none.
  std::string script;
  std::map<std::string, std::string> env;   // extra environment
  std::string cwd;                          // working directory on the node
  std::string project;                      // queue the job is charged to
  std::string job_class = "train";          // priority class: interactive, train, inference, ...
  int32_t workers = 1;                      // gang size: N workers placed together or not at all
  int64_t gpu_milli = 0;                    // per worker; < 1000 means a share of one GPU
  int64_t gpu_memory_mib = 0;               // per worker, fractional jobs: requested GPU memory
  int64_t gpu_memory_limit_mib = 0;         // GPU memory it may use (MPS pins it); 0: the request
  int64_t cpus = 1;                         // cores per worker
  int64_t memory_mib = 1024;                // per worker
  int64_t time_limit_s = 0;                 // 0: the class's max_time, else none
  std::string image;                        // rootfs directory or tarball: run in a runc container
  std::vector<std::string> volumes;         // "HOST[:CONTAINER]" bind mounts into the container
  bool spread = false;                      // place away from other jobs instead of packing
  // Workflow: when the job may start.
  std::vector<std::string> after;           // dependencies "ID:ok" | "ID:any" | "ID:fail"
  bool hold = false;                        // waits for `herd release`
  bool admin_hold = false;                  // held by an admin: only an admin releases it
  int64_t begin_time = 0;                   // seconds since epoch; 0: now
  int64_t array_id = 0;                     // id of the array's first job; 0: not in an array
  int64_t array_index = 0;                  // HERD_ARRAY_INDEX of this member
  int32_t array_limit = 0;                  // members of the array running at once; 0: no cap
  std::map<std::string, std::string> sweep; // a sweep member's parameter values (common/model/sweep.h)
  bool stop_after_success = false;          // array/sweep: first member to complete ends the rest
  // Where it may run (common/model/fleet.h); herd-ctld refuses at submit what no node satisfies.
  std::vector<std::string> gpu_types = {};       // GPU types its GPUs may be of ("a100"); empty: any
  std::string pool = {};                         // node pool ([pools.NAME], else label pool=NAME)
  std::map<std::string, std::string> constraints = {};  // node labels it needs, every one
  std::vector<std::string> nodelist = {};        // only nodes matching one of these names or patterns
  std::vector<std::string> exclude = {};         // never nodes matching one of these
  // An interactive session (herd run): "pty" runs the command under a pseudo-terminal, "pipes"
  // relays its stdin, stdout and stderr; either way `herd attach` can connect to it while it
  // runs. "": a batch job (stdin /dev/null, output to its log only).
  std::string session = {};
  // Output files of a batch job (herd submit -o/--output, --error): absolute path patterns
  // (common/model/output_path.h) that herd-noded opens as the job's user. "" = none: the output
  // is kept only in herd's own log (herd logs). With output alone, stderr goes there too.
  std::string output = {};
  std::string error = {};
  bool output_append = false;  // --open-mode=append; else the files are truncated at start

  // Resources one worker needs.
  Resources PerWorker() const { return {gpu_milli, cpus, memory_mib}; }
  bool operator==(const JobSpec&) const = default;
};

// Where one worker of a job runs.
struct WorkerPlacement {
  std::string node;
  std::vector<int> gpus;        // GPU indexes on the node
  int64_t gpu_milli_each = 0;   // share taken of each listed GPU (1000 for whole GPUs)
  std::vector<int> cores;       // core ids chosen for the worker
  int64_t memory_mib = 0;
  std::string nic;              // NIC next to the GPUs, if any
  bool operator==(const WorkerPlacement&) const = default;
};

// CPU time and memory measured from a job's cgroups by herd-noded; -1: not measured (no cgroup).
// On a job: all of its workers together, the latest heartbeat's while it runs and the final
// figures once it ended. On a worker's report: that worker alone.
struct JobUsage {
  int64_t cpu_ms = -1;             // CPU time used so far
  int64_t memory_bytes = -1;       // memory in use now (0 once the job ended)
  int64_t memory_peak_bytes = -1;  // highest memory in use (sum of its workers' peaks)
  bool operator==(const JobUsage&) const = default;
};

struct Job {
  JobId id = 0;
  JobSpec spec;
  std::string user;
  uint32_t uid = 0;
  uint32_t gid = 0;
  JobState state = JobState::kPending;
  std::string reason;           // why it is pending, or why it ended
  WaitsFor waits_for = WaitsFor::kNothing;  // pending: the code of `reason`
  // Pending: the name of the reason's code (model::ReasonCodeName: "quota_held", "gpu_block"),
  // set with `reason` and `waits_for`. "": not pending; read back from the store (which keeps no
  // code) and not yet through a scheduling cycle; or sent by an herd-ctld older than codes.
  std::string reason_code = {};
  int64_t submit_time = 0;      // seconds since epoch; kept across preemptions
  int64_t start_time = 0;       // latest start
  int64_t end_time = 0;
  int32_t exit_code = -1;       // -1 until it ends
  int32_t restart_count = 0;    // times it was requeued after preemption or node failure
  std::vector<WorkerPlacement> placement;  // one per worker while it holds resources
  // Accounting, kept after the job ends.
  int32_t preemptions = 0;      // times it was stopped to make room for another job and requeued
  int32_t reclaims = 0;  // of them, reclaims for another project ([scheduler] reclaim_backoff)
  int64_t gpu_util_sum = 0;     // sum of utilization % x GPU-milliseconds sampled on its GPUs
  int64_t gpu_sampled_ms = 0;   // GPU-milliseconds with a utilization sample
  // Time-weighted average utilization of its GPUs in percent, or -1 when never measured.
  int GpuUtilPct() const {
    return gpu_sampled_ms > 0 ? static_cast<int>((gpu_util_sum + gpu_sampled_ms / 2) / gpu_sampled_ms)
                              : -1;
  }
  JobUsage usage;               // CPU and memory from its cgroups, kept after it ends
  // A running job with a session: "attached" or "detached", as its node last reported; not stored.
  std::string session_state = {};
  bool operator==(const Job&) const = default;
};

// How herd names `job` to people: "12_3" for member 3 of array 12 (Slurm's ID_INDEX), else "42".
std::string JobRefText(const Job& job);

}  // namespace herd::model
