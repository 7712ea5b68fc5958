// Ctrl-C while herd waits for jobs it has just submitted (herd submit --wait, herd run while its
// job is still pending). On a terminal herd asks whether to cancel them or leave them to run
// ("Cancel job 12? [y/N]": leaving is the default, and a second Ctrl-C answers it); without a
// terminal (cron, a pipe into stdin) it leaves them and says so. Either way herd then exits 130.
// Built on the stack around the waiting; the session relay (cli/session.h) owns SIGINT after it.
// Thread-safety: one InterruptWatch at a time, in the thread that waits.
#pragma once

#include <csignal>
#include <vector>

#include "cli/context.h"
#include "common/model/job.h"

namespace herd::cli {

class InterruptWatch {
 public:
  // Catches SIGINT until destroyed (unless it was ignored, as for a job started in the
  // background by a shell without job control); the previous handling is restored then.
  InterruptWatch();
  ~InterruptWatch();
  InterruptWatch(const InterruptWatch&) = delete;
  InterruptWatch& operator=(const InterruptWatch&) = delete;

  // Whether SIGINT came since this watch began.
  bool interrupted() const;
  // Sleeps `ms` milliseconds, less when SIGINT comes. Returns interrupted().
  bool Sleep(int ms);

  // After SIGINT: asks on the terminal (stdin and stderr) whether to cancel `ids`, cancels them
  // when told "y", and says on stderr what became of them. Returns herd's exit code:
  // kExitInterrupted, or a failed cancel request's.
  int Answer(const std::vector<model::JobId>& ids, Context& ctx);

 private:
  // The answer to the prompt, read from stdin: kYes for "y" or "yes", kNoReply for a second
  // SIGINT or the end of input, kNo for any other line.
  enum Reply { kYes, kNo, kNoReply };
  // `before`: the count of Ctrl-Cs when the question was asked (one since then ends the read).
  Reply ReadReply(sig_atomic_t before);

  bool active_ = false;
};

}  // namespace herd::cli
