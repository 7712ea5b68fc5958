#include "tests/support/pty_process.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <regex>

namespace herd::testing {

PtyProcess::PtyProcess(const std::string& command) {
  Start([&command] {
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    return 127;
  });
}

PtyProcess::PtyProcess(const std::function<int()>& child) { Start(child); }

void PtyProcess::Start(const std::function<int()>& child) {
  struct winsize ws = {24, 80, 0, 0};
  pid_ = forkpty(&master_, nullptr, nullptr, &ws);
  if (pid_ == 0) _exit(child());
  fcntl(master_, F_SETFL, O_NONBLOCK);
}

PtyProcess::~PtyProcess() {
  if (pid_ > 0 && !exited_) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (master_ >= 0) close(master_);
}

bool PtyProcess::Expect(const std::string& pattern, seconds timeout) {
  const std::regex re(pattern);
  const auto deadline = Clock::now() + timeout;
  while (true) {
    std::smatch m;
    if (std::regex_search(buffer_, m, re)) {
      last_match_ = m.str();
      buffer_.erase(0, m.position() + m.length());
      return true;
    }
    if (Clock::now() >= deadline) return false;
    if (!ReadSome(deadline)) return false;
  }
}

void PtyProcess::Send(const std::string& keys) {
  (void)!write(master_, keys.data(), keys.size());
}

void PtyProcess::Resize(uint16_t rows, uint16_t cols) {
  struct winsize ws = {rows, cols, 0, 0};
  ioctl(master_, TIOCSWINSZ, &ws);
}

void PtyProcess::KillHard() {
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  exited_ = true;
}

int PtyProcess::Wait(seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    ReadSome(std::min(deadline, Clock::now() + std::chrono::milliseconds(100)));
  }
  return -1;
}

bool PtyProcess::ReadSome(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  struct pollfd p = {master_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) <= 0) return true;
  char buf[4096];
  const ssize_t n = read(master_, buf, sizeof buf);
  if (n > 0) {
    buffer_.append(buf, n);
    return true;
  }
  return n < 0 && errno == EAGAIN;  // EIO: the terminal's processes have all gone
}

}  // namespace herd::testing
