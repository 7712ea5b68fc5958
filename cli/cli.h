// The `herd` command line: parses arguments with CLI11, runs one verb, returns the exit code.
// cli/main.cc calls it with the process environment; tests call it with a fake Controller.
// Thread-safety: one call at a time per Environment (commands are single-threaded).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "cli/context.h"

namespace herd::cli {

// Runs `herd ARGS...` (args excludes the program name). Writes results to `out`, errors
// ("herd: ...") to `err`, and returns an ExitCode (or, for `herd wait`, a job's exit code).
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           Environment env);

}  // namespace herd::cli
