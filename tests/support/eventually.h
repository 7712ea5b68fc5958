// Eventually: how a test waits for something that another process or thread makes happen.
// Thread-safety: a free function; `done` runs on the caller's thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

namespace herd::testing {

// Calls `done` until it returns true or `timeout` has passed, first after 1 ms, the gap doubling
// up to 50 ms (a quick event is seen at once, a slow one costs no busy loop); true when it held.
// `done` runs once more at the deadline, so a timeout of 0 asks once.
template <typename F>
bool Eventually(std::chrono::milliseconds timeout, F done) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto gap = std::chrono::milliseconds(1);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        gap, deadline - std::chrono::steady_clock::now()));
    gap = std::min(gap * 2, std::chrono::milliseconds(50));
  }
  return done();
}

}  // namespace herd::testing
