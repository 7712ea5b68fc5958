// What `herd submit` takes over from a batch user's habits: the directive lines at the top of a
// batch script (#HERD, and the common #SBATCH options turned into herd's), and the submitting
// shell's environment (--export). Pure functions of their arguments: the caller reads files and
// the process environment, and prints the warnings.
// Thread-safety: free functions with no shared state.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/util/status.h"

namespace herd::cli {

// One directive line of a batch script, as herd options.
struct DirectiveLine {
  int line = 0;                   // 1-based line number in the script
  std::vector<std::string> args;  // herd submit options, e.g. {"--name", "x", "--time", "300s"}
};

struct Directives {
  std::vector<DirectiveLine> lines;
  std::vector<std::string> warnings;  // "job.sh:4: #SBATCH --mail-user: ...; ignored"
};

// The #HERD and #SBATCH lines of `script` (whose name `file` prefixes messages). Like sbatch,
// only the top counts: after an optional #! line, directives are read up to the first line that
// is neither blank nor a comment. #HERD lines hold herd submit options as they are; #SBATCH
// options herd has a counterpart for are translated, the others are left out with a warning.
// Error for a line that cannot be split into words (an unclosed quote) or a value that cannot be
// translated.
Result<Directives> ReadDirectives(std::string_view script, const std::string& file);

// "5" (minutes), "5:30", "1:00:00", "2-12", "2-12:30", "2-12:30:00" -> seconds, as sbatch's
// --time reads them; nullopt when it is none of these (or UNLIMITED).
std::optional<int64_t> SlurmTimeSeconds(std::string_view text);

// --export=ALL | NONE | KEY,KEY=VAL,... | ALL,KEY=VAL,...
struct ExportRule {
  bool all = true;                            // the whole submitting environment, filtered
  std::vector<std::string> names;             // KEY: the submitting environment's value
  std::map<std::string, std::string> values;  // KEY=VAL
};
Result<ExportRule> ParseExport(const std::string& text);

// Whether ALL leaves `name` out (HERD_* but HERD_CONFIG, SSH_*, DISPLAY, ...; see
// herd-submit(1)): variables of the login session, and those herd sets for the job itself.
bool LeftOutOfExport(std::string_view name);

// The most of the submitting environment that ALL records, so that a large login environment
// stays inside herd-ctld's default limits (max_env_entries, max_env_bytes) with room for -e.
inline constexpr size_t kExportMaxEntries = 960;
inline constexpr size_t kExportMaxBytes = 192 << 10;

// The variables a job gets from `vars` (the submitting environment) under `rule`. ALL leaves out
// LeftOutOfExport names, names or values that are not UTF-8, and, when what is left is over
// kExportMaxEntries or kExportMaxBytes, the largest variables until it fits; *warnings says which
// it left out (but for the silent LeftOutOfExport ones).
std::map<std::string, std::string> ExportedEnvironment(
    const ExportRule& rule, const std::map<std::string, std::string>& vars,
    std::vector<std::string>* warnings);

}  // namespace herd::cli
