// The files of a job directory, state_dir/jobs/<job_key>/, shared by Runtime (in herd-noded)
// and herd-shim, which talk to each other only through these files and signals.
// Thread-safety: free functions with no shared state.
#pragma once

#include <string>

#include "common/util/status.h"
#include "noded/runtime/runtime.h"

namespace herd::runtime {

inline constexpr char kSpecFile[] = "spec.json";       // ShimSpec, written by Launch
inline constexpr char kLogFile[] = "log";              // the job's stdout and stderr
inline constexpr char kStdoutLogFile[] = "log.stdout";  // its stdout alone (a batch job)
inline constexpr char kStderrLogFile[] = "log.stderr";  // its stderr alone (a batch job)
inline constexpr char kShimLogFile[] = "shim.log";     // herd-shim's own notes
inline constexpr char kShimPidFile[] = "shim.pid";     // written by the shim first
inline constexpr char kPidFile[] = "pid";              // the job's main process
inline constexpr char kCgroupFile[] = "cgroup";        // cgroup mode name, when confined
inline constexpr char kKillFile[] = "kill";            // grace in ms, written by Kill
inline constexpr char kSuspendedFile[] = "suspended";  // present while frozen
inline constexpr char kExitFile[] = "exit";            // ExitRecord, written last
// The session relay's listening socket (jobs with a session, relay.h); only root may connect.
inline constexpr char kSessionSocket[] = "session.sock";
// Present from Launch until the shim answers whether the job started (kStarting).
inline constexpr char kStartingFile[] = "starting";

// Everything the shim needs, so it never depends on herd-noded's configuration.
struct ShimSpec {
  LaunchSpec launch;
  std::string runc_path;
  std::string runc_root;
  std::string cgroup_parent;
  bool use_cgroups = true;
  std::vector<std::string> allowed_volumes;  // see RuntimeOptions
  std::string dev_dir = "/dev";  // where the GPUs' device nodes are (RuntimeOptions::dev_dir)
  int64_t max_log_bytes = 0;     // RuntimeOptions::max_log_bytes; 0 = no cap
  int64_t max_image_bytes = 0;   // RuntimeOptions::max_image_bytes; 0 = no bound
  int64_t min_free_bytes = 0;    // RuntimeOptions::min_free_bytes
};

// How a job ended. start_failed: it never ran, reason says why.
struct ExitRecord {
  int exit_code = -1;
  std::string reason;
  bool start_failed = false;
  CgroupUsage usage;  // read from the job's cgroups just before they were removed
};

std::string SpecToJson(const ShimSpec& spec);
Result<ShimSpec> SpecFromJson(const std::string& text);
std::string ExitToJson(const ExitRecord& record);
Result<ExitRecord> ExitFromJson(const std::string& text);

// "No such file or directory" for ENOENT.
std::string ErrnoText(int err);
// Reads a whole file; NotFound when it does not exist.
Result<std::string> ReadFile(const std::string& path);
// Writes data to an existing or new file in one write (cgroup control files need that).
Status WriteFile(const std::string& path, const std::string& data);
// Writes path.tmp, then renames it over path, so readers see all of it or nothing (atomic
// against process crashes; not flushed to disk).
Status WriteFileAtomic(const std::string& path, const std::string& data);
// Appends one line to a file, ignoring errors (for diagnostics).
void AppendLine(const std::string& path, const std::string& line);
// Whether pid is a live process whose command line mentions `needle`; guards against pid reuse.
bool ProcessAlive(pid_t pid, const std::string& needle);

}  // namespace herd::runtime
