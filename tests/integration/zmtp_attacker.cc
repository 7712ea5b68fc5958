// zmtp_attacker: a hostile peer of herd-ctld, speaking ZMTP 3.1 by hand over TCP, run by the
// transport tests as an unprivileged user. Prints what happened on one line; exit status 0 when
// herd-ctld closed the connection(s) as expected, 1 when a connection was still open at the end.
//   zmtp_attacker frames HOST PORT COUNT SIZE  handshake as a DEALER, then COUNT frames of SIZE
//                                              bytes, each marked MORE; wait for the disconnect
//   zmtp_attacker halfgreet HOST PORT COUNT KEEP FIFO
//                                              COUNT connections that each send half a greeting
//                                              and hold it; prints how many herd-ctld left open
//                                              once at most KEEP are (or 10 s passed), then holds
//                                              them until FIFO is opened and closed by the caller;
//                                              exit 0 when at most KEEP were left open
//   zmtp_attacker hold HOST PORT COUNT SIZE FIFO
//                                              COUNT connections that each handshake, declare
//                                              a message of SIZE + 4 KiB and send SIZE bytes of
//                                              it (for at most 2 s each); prints how many are
//                                              still open, then holds them until FIFO is opened
//                                              and closed by the caller; exit 0
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPatience = std::chrono::seconds(10);

int Connect(const char* host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (fd < 0 || inet_pton(AF_INET, host, &addr.sin_addr) != 1 ||
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("connect");
    std::exit(2);
  }
  return fd;
}

std::string Greeting() {
  std::string g(64, '\0');
  g[0] = '\xff';
  g[9] = 0x7f;
  g[10] = 3;
  g[11] = 1;
  g.replace(12, 4, "NULL");
  return g;
}

std::string Hello() {
  std::string ready = std::string("\x05READY") + "\x0bSocket-Type" +
                      std::string("\0\0\0\x06", 4) + "DEALER";
  return Greeting() + "\x04" + static_cast<char>(ready.size()) + ready;
}

// Reads whatever arrived without blocking; true once the other side closed.
bool Closed(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (k == 0) return true;
    if (k < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
}

// Waits until herd-ctld closes `fd` (reading what it sends meanwhile) or the deadline passes.
bool AwaitClose(int fd, Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    if (Closed(fd)) return true;
    pollfd p{fd, POLLIN, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
  }
  return Closed(fd);
}

// Sends all of `bytes` unless herd-ctld closes the connection first (then false).
bool SendAll(int fd, const std::string& bytes, Clock::time_point deadline) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t k = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k > 0) {
      off += static_cast<size_t>(k);
      continue;
    }
    if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    if (Closed(fd)) return false;
    if (Clock::now() >= deadline) return true;  // not read, not closed: AwaitClose decides
    pollfd p{fd, POLLOUT | POLLIN, 0};
    poll(&p, 1, 100);
  }
  return true;
}

int Frames(const char* host, int port, long count, long size) {
  const int fd = Connect(host, port);
  const auto deadline = Clock::now() + kPatience;
  if (!SendAll(fd, Hello(), deadline)) {
    std::printf("closed during the handshake\n");
    return 1;
  }
  std::string header(9, '\0');
  header[0] = 0x03;  // MORE | LONG
  for (int i = 0; i < 8; ++i) header[1 + i] = static_cast<char>(size >> (56 - 8 * i));
  const std::string frame = header + std::string(static_cast<size_t>(size), 'x');
  std::string small_frames;  // zero-length frames go out in batches
  long sent = 0;
  for (; sent < count; ++sent) {
    bool ok;
    if (size == 0) {
      small_frames.append("\x01\x00", 2);
      if (small_frames.size() < (1 << 16) && sent + 1 < count) continue;
      ok = SendAll(fd, small_frames, deadline);
      small_frames.clear();
    } else {
      ok = SendAll(fd, frame, deadline);
    }
    if (!ok || Clock::now() >= deadline) break;
  }
  if (AwaitClose(fd, deadline)) {
    std::printf("closed by herd-ctld after about %ld frames\n", sent);
    return 0;
  }
  std::printf("still open %lds later, after %ld frames\n", static_cast<long>(kPatience.count()),
              sent);
  return 1;
}

// Holds until the caller opens and closes `fifo`.
void WaitForRelease(const char* fifo) {
  const int wait = open(fifo, O_RDONLY);
  char c;
  while (wait >= 0 && read(wait, &c, 1) > 0) {
  }
}

int HoldPartials(const char* host, int port, long count, long size, const char* fifo) {
  std::vector<int> fds;
  std::string header(9, '\0');
  const long declared = size + 4096;
  header[0] = 0x02;  // LONG, last frame: a message that never completes
  for (int i = 0; i < 8; ++i) header[1 + i] = static_cast<char>(declared >> (56 - 8 * i));
  const std::string part = Hello() + header + std::string(static_cast<size_t>(size), 'x');
  for (long i = 0; i < count; ++i) {
    const int fd = Connect(host, port);
    SendAll(fd, part, Clock::now() + std::chrono::seconds(2));
    fds.push_back(fd);
  }
  const long open_now = static_cast<long>(
      std::count_if(fds.begin(), fds.end(), [](int fd) { return !Closed(fd); }));
  std::printf("%ld of %ld connections holding a partial message are still open\n", open_now,
              count);
  std::fflush(stdout);
  WaitForRelease(fifo);
  return 0;
}

int HalfGreetings(const char* host, int port, long count, long keep, const char* fifo) {
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  std::vector<int> fds;
  const std::string half = Greeting().substr(0, 32);
  for (long i = 0; i < count; ++i) {
    const int fd = Connect(host, port);
    if (send(fd, half.data(), half.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(half.size())) {
      std::printf("send failed at connection %ld\n", i);
    }
    fds.push_back(fd);
  }
  const auto deadline = Clock::now() + kPatience;
  long still_open = count;
  while (Clock::now() < deadline) {
    still_open = static_cast<long>(
        std::count_if(fds.begin(), fds.end(), [](int fd) { return !Closed(fd); }));
    if (still_open <= keep) break;
    std::vector<pollfd> polls;
    for (int fd : fds) polls.push_back({fd, POLLIN, 0});
    poll(polls.data(), polls.size(), 100);
  }
  std::printf("%ld of %ld connections still open\n", still_open, count);
  std::fflush(stdout);
  // Held while the caller checks herd-ctld; it opens and closes the FIFO when done.
  WaitForRelease(fifo);
  return still_open <= keep ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 6 && std::string(argv[1]) == "frames") {
    return Frames(argv[2], std::atoi(argv[3]), std::atol(argv[4]), std::atol(argv[5]));
  }
  if (argc >= 7 && std::string(argv[1]) == "halfgreet") {
    return HalfGreetings(argv[2], std::atoi(argv[3]), std::atol(argv[4]), std::atol(argv[5]),
                         argv[6]);
  }
  if (argc >= 7 && std::string(argv[1]) == "hold") {
    return HoldPartials(argv[2], std::atoi(argv[3]), std::atol(argv[4]), std::atol(argv[5]),
                        argv[6]);
  }
  std::fprintf(stderr,
               "usage: zmtp_attacker frames HOST PORT COUNT SIZE | "
               "halfgreet HOST PORT COUNT KEEP FIFO | hold HOST PORT COUNT SIZE FIFO\n");
  return 2;
}
