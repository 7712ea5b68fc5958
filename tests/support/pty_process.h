// A process run under a new pseudo-terminal of 24x80 (forkpty), as from a terminal emulator:
// the test reads what it prints, types keys (Ctrl-C included) and waits for its exit.
// Used by tests/cli (herd's code run in the child) and tests/integration (a shell command).
// Thread-safety: one thread; fork it while the test has no other threads.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace herd::testing {

class PtyProcess {
 public:
  using seconds = std::chrono::seconds;

  // Runs `sh -c command`.
  explicit PtyProcess(const std::string& command);
  // Runs `child` in the forked process, which then exits with what it returns.
  explicit PtyProcess(const std::function<int()>& child);
  ~PtyProcess();
  PtyProcess(const PtyProcess&) = delete;
  PtyProcess& operator=(const PtyProcess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Waits until the output since the last match holds `pattern` (a regex); true when it did.
  // The output up to the end of the match is consumed.
  bool Expect(const std::string& pattern, seconds timeout = seconds(30));
  const std::string& last_match() const { return last_match_; }
  // Everything read and not consumed, for failure messages.
  std::string seen() const { return buffer_; }

  void Send(const std::string& keys);
  // A terminal emulator's window changed size: the foreground process gets SIGWINCH.
  void Resize(uint16_t rows, uint16_t cols);
  // The terminal closed under it, as when a laptop's lid shuts: kill -9 of its processes.
  void KillHard();
  // Its exit code, once it ended within `timeout` (reading its output meanwhile); -1 otherwise.
  int Wait(seconds timeout = seconds(30));

 private:
  using Clock = std::chrono::steady_clock;
  void Start(const std::function<int()>& child);
  bool ReadSome(Clock::time_point deadline);

  pid_t pid_ = -1;
  int master_ = -1;
  bool exited_ = false;
  std::string buffer_, last_match_;
};

}  // namespace herd::testing
