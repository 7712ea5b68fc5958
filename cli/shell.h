// The interactive `herd` shell: `herd` with no arguments on a terminal reads commands with GNU
// readline (prompt "herd> "), runs each line through RunCli as if given on the command line,
// keeps a history in ~/.local/state/herd/history and completes verbs, flags, job ids, node
// names and project names. cli/main.cc starts it; tests drive it through a terminal (tmux).
// Thread-safety: one shell per process (readline is global state).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cli/context.h"
#include "common/util/status.h"

namespace herd::cli {

// Splits a line into words as a POSIX shell does, without expansions: blanks separate words,
// '...' is literal, "..." keeps blanks and honours \" \\ \$ \`, a backslash outside quotes
// escapes the next character. Invalid for an unterminated quote or a trailing backslash.
Result<std::vector<std::string>> SplitLine(std::string_view line);

// Runs the shell until `exit`, `quit` or end of input; returns kExitOk.
// REQUIRES: env.connect is set; stdin and stdout are terminals.
int RunShell(Environment env);

}  // namespace herd::cli
