#include "cli/interrupt.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace herd::cli {
namespace {

// Written by the handler only; a pipe so that Sleep wakes at once.
volatile sig_atomic_t g_interrupts = 0;
int g_wake[2] = {-1, -1};
struct sigaction g_previous;

void OnSigint(int) {
  const int saved = errno;
  g_interrupts = g_interrupts + 1;
  if (g_wake[1] >= 0) {
    const char byte = 0;
    [[maybe_unused]] ssize_t n = write(g_wake[1], &byte, 1);
  }
  errno = saved;
}

void Drain() {
  char buffer[64];
  while (g_wake[0] >= 0 && read(g_wake[0], buffer, sizeof buffer) > 0) {
  }
}

// "job 42", or "jobs 40-49" for the members of an array (consecutive ids), else "jobs 3, 7".
std::string JobsText(const std::vector<model::JobId>& ids) {
  if (ids.size() == 1) return "job " + std::to_string(ids[0]);
  bool consecutive = true;
  for (size_t i = 1; i < ids.size(); ++i) consecutive = consecutive && ids[i] == ids[i - 1] + 1;
  if (consecutive && !ids.empty()) {
    return "jobs " + std::to_string(ids.front()) + "-" + std::to_string(ids.back());
  }
  std::string text = "jobs ";
  for (size_t i = 0; i < ids.size(); ++i) text += (i ? ", " : "") + std::to_string(ids[i]);
  return text;
}

}  // namespace

InterruptWatch::InterruptWatch() {
  struct sigaction current {};
  if (sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler == SIG_IGN) return;
  if (pipe2(g_wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    g_wake[0] = g_wake[1] = -1;
    return;
  }
  g_interrupts = 0;
  struct sigaction action {};
  action.sa_handler = OnSigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a read of the answer ends on a second Ctrl-C
  if (sigaction(SIGINT, &action, &g_previous) != 0) {
    close(g_wake[0]);
    close(g_wake[1]);
    g_wake[0] = g_wake[1] = -1;
    return;
  }
  active_ = true;
}

InterruptWatch::~InterruptWatch() {
  if (!active_) return;
  sigaction(SIGINT, &g_previous, nullptr);
  close(g_wake[0]);
  close(g_wake[1]);
  g_wake[0] = g_wake[1] = -1;
}

bool InterruptWatch::interrupted() const { return active_ && g_interrupts > 0; }

bool InterruptWatch::Sleep(int ms) {
  if (interrupted()) return true;
  if (!active_) {
    poll(nullptr, 0, ms);
    return false;
  }
  struct pollfd fd = {g_wake[0], POLLIN, 0};
  poll(&fd, 1, ms);  // EINTR too: the handler ran
  return interrupted();
}

InterruptWatch::Reply InterruptWatch::ReadReply(sig_atomic_t before) {
  std::string line;
  while (true) {
    // A Ctrl-C that comes before the read starts would not end it: the wake pipe shows it.
    if (g_interrupts != before) return kNoReply;  // a second Ctrl-C
    struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {g_wake[0], POLLIN, 0}};
    const int ready = poll(fds, 2, -1);
    if (ready < 0 && errno != EINTR) return kNoReply;
    if (g_interrupts != before) return kNoReply;
    if (ready > 0 && (fds[1].revents & POLLIN)) Drain();  // wakes of interrupts before `before`
    if (ready <= 0 || (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    char c = 0;
    const ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return kNoReply;  // end of input
    if (c == '\n') break;
    if (line.size() < 16) line += c;
  }
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line == "y" || line == "Y" || line == "yes" || line == "Yes" ? kYes : kNo;
}

int InterruptWatch::Answer(const std::vector<model::JobId>& ids, Context& ctx) {
  const std::string jobs = JobsText(ids);
  bool cancel = false;
  if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
    // Counted before the question is shown: a Ctrl-C typed as soon as it appears is the answer.
    Drain();
    const sig_atomic_t before = g_interrupts;
    // "\r\033[K" wipes the "^C" the terminal echoed.
    ctx.err() << "\r\033[K" << (ids.size() == 1 ? "Cancel " : "Cancel the ") << jobs
              << "? [y/N] " << std::flush;
    const Reply reply = ReadReply(before);
    cancel = reply == kYes;
    if (reply == kNoReply) ctx.err() << "\n";  // the terminal echoed no newline
  }
  if (!cancel) {
    if (ids.size() == 1) {
      const std::string id = std::to_string(ids[0]);
      ctx.err() << "herd: interrupted; " << jobs << " left to run (herd wait " << id
                << " waits for it, herd cancel " << id << " cancels it)\n";
    } else {
      ctx.err() << "herd: interrupted; " << jobs
                << " left to run (herd wait and herd cancel take their ids)\n";
    }
    return kExitInterrupted;
  }
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto reply = controller->JobAction(proto::JobActionRequest{"cancel", ids});
  if (!reply.ok()) return ctx.RequestError(reply.status());
  for (const auto& r : reply->results) {
    if (r.ok) {
      ctx.err() << "herd: cancelled job " << r.id << "\n";
    } else {
      ctx.err() << "herd: job " << r.id << ": " << r.message << "\n";
    }
  }
  return kExitInterrupted;
}

}  // namespace herd::cli
