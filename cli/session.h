// The terminal side of an interactive session (herd run, attach, exec): connects to the job's
// herd-noded (the endpoint herd-ctld gave), signs every message with the user's MUNGE
// credential, and relays this process's terminal or stdin/stdout/stderr to the session stream
// (common/proto/stream.h). With `raw`, the terminal is put in raw mode for the session (every
// key, ^C ^Z ^\ included, goes to the job) and restored on every way out; "~." typed at the start
// of a line detaches, "~~" sends one "~".
// Thread-safety: single-threaded; installs signal handling for its duration.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/auth/auth.h"
#include "common/model/job.h"
#include "common/util/status.h"

namespace herd::cli {

struct SessionRequest {
  std::string endpoint;  // the node's session endpoint (SessionWhereReply)
  std::string node;      // the node's name (SessionWhereReply): herd-noded checks it is its own
  model::JobId id = 0;
  int32_t worker = 0;
  bool exec = false;              // herd exec: run `argv` (with a pty when `pty`)
  bool pty = false;
  std::vector<std::string> argv;
  bool raw = false;        // the local terminal (stdin) goes raw and its size is sent
  int timeout_ms = 10000;  // to open the session; a silent node is taken for lost after 3x this
};

struct SessionEnd {
  enum How {
    kExited,    // the command ended: exit_code
    kDetached,  // by "~." or a signal to herd: the job runs on
    kLost,      // the node stopped answering: the job runs on
    kClosed,    // the session ended without an exit code (the job was killed, say)
  };
  How how = kClosed;
  int exit_code = -1;
  int signal = 0;        // kDetached by this signal (SIGTERM, SIGHUP, SIGINT), else 0
  std::string message;   // why, for kLost and kClosed
};

// Opens the session and relays until it ends. An error: the session could not be opened
// (refused, not running, node unreachable).
Result<SessionEnd> RunSession(const SessionRequest& request, auth::Authenticator& auth,
                              std::ostream& err);

}  // namespace herd::cli
