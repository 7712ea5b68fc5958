// Output files of a batch job (herd submit -o/--output, --error): the file name patterns a user
// gives, with Slurm's replacements, and the paths they name for one worker of one run.
// The CLI checks a pattern at submit, herd-ctld checks it again, herd-noded expands it for the
// worker it starts, and herd show expands it the same way to show where output goes.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/model/job.h"
#include "common/util/status.h"

namespace herd::model {

// The longest output path (after expansion) herd accepts: Linux's PATH_MAX.
inline constexpr size_t kMaxOutputPathBytes = 4096;

// What a pattern's replacements stand for.
struct OutputNames {
  JobId job_id = 0;        // %j
  JobId array_id = 0;      // %A (the job id for a job not in an array)
  int64_t array_index = 0; // %a (0 for a job not in an array)
  std::string name;        // %x
  std::string user;        // %u
  std::string node;        // %N: the first worker's node; "" while unknown (kept as "%N")
  int32_t worker = 0;      // %t
};

// The names of `job` (its first worker's node once it is placed) for worker `worker`.
OutputNames OutputNamesOf(const Job& job, int32_t worker = 0);

// Ok when every '%' of `pattern` starts one of %j %A %a %x %u %N %t %% (a number between '%' and
// the letter zero-pads a number: %4a), else why not, naming `option` ("--output"). "" is Ok.
Status CheckOutputPattern(std::string_view pattern, std::string_view option);

// `pattern` with its replacements made; a pattern CheckOutputPattern refuses comes back as is
// from the first bad '%' on. A name that is not known yet (%N before placement) stays literal.
std::string ExpandOutputPattern(std::string_view pattern, const OutputNames& names);

// Where a worker's stdout and stderr go: "" where herd keeps them only in its own log. With
// --output alone stderr goes to the same file (Slurm's rule).
struct OutputPaths {
  std::string stdout_path;
  std::string stderr_path;
};
OutputPaths ResolveOutputPaths(const JobSpec& spec, const OutputNames& names);

}  // namespace herd::model
