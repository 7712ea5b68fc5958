// The session relay (noded/runtime/relay.h) against real commands, a real pty and a socket that
// plays herd-noded's connection, and the stream framing (common/proto/stream.h).
#include "noded/runtime/relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "gtest/gtest.h"

namespace herd::runtime {
namespace {

namespace stream = proto::stream;
using Clock = std::chrono::steady_clock;

TEST(FrameReaderTest, ReassemblesFramesAndRefusesOversizedOnes) {
  const std::string two =
      stream::EncodeFrame(stream::kInput, "hello") + stream::EncodeFrame(stream::kInputEnd, "");
  stream::FrameReader reader;
  reader.Append(two.substr(0, 3));
  EXPECT_FALSE(reader.Next());
  reader.Append(two.substr(3));
  auto first = reader.Next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->type, stream::kInput);
  EXPECT_EQ(first->payload, "hello");
  auto second = reader.Next();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->type, stream::kInputEnd);
  EXPECT_EQ(reader.pending(), 0u);

  // A header that declares more than a frame may hold fails at once, before any payload.
  std::string huge(1, stream::kInput);
  stream::PutU32(&huge, stream::kMaxFramePayload + 1);
  stream::FrameReader bad;
  bad.Append(huge);
  EXPECT_FALSE(bad.Next());
  EXPECT_TRUE(bad.failed());
}

TEST(FrameReaderTest, ExecRequestRoundTrips) {
  stream::ExecRequest r{true, 50, 132, {"sh", "-c", "echo hi"}};
  auto back = stream::DecodeExec(stream::EncodeExec(r));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->pty);
  EXPECT_EQ(back->rows, 50);
  EXPECT_EQ(back->cols, 132);
  EXPECT_EQ(back->argv, r.argv);
  EXPECT_FALSE(stream::DecodeExec(std::string("\1\0\0\0\0no-nul", 11)));
}

// A relay of herd exec in a child process; `fd` is herd-noded's end of its connection.
class ExecRelay {
 public:
  explicit ExecRelay(const stream::ExecRequest& request) {
    int pair[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
    pid_ = fork();
    if (pid_ == 0) {
      close(pair[0]);
      signal(SIGPIPE, SIG_IGN);
      _exit(RunExecRelay(pair[1], {"PATH=/usr/bin:/bin"}, "/") == 0 ? 0 : 1);
    }
    close(pair[1]);
    fd_ = pair[0];
    Send(stream::EncodeFrame(stream::kExec, stream::EncodeExec(request)));
  }
  ~ExecRelay() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(fd_);
  }
  void Send(const std::string& bytes) { (void)!send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  // Reads frames until the exit frame, or until stdout holds `until` when given (or EOF / 30 s):
  // stdout, stderr, skipped bytes, exit code.
  struct Output {
    std::string out, err;
    uint64_t skipped = 0;
    int exit_code = -999;
  };
  Output ReadAll(const std::string& until = "") {
    Output o;
    stream::FrameReader& reader = reader_;
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    char buf[65536];
    while (Clock::now() < deadline) {
      while (auto f = reader.Next()) {
        if (f->type == stream::kOutput) o.out += f->payload;
        if (f->type == stream::kError) o.err += f->payload;
        if (f->type == stream::kSkipped) {
          o.skipped += (uint64_t{stream::GetU32(f->payload)} << 32) |
                       stream::GetU32(std::string_view(f->payload).substr(4));
        }
        if (f->type == stream::kExit) {
          o.exit_code = static_cast<int32_t>(stream::GetU32(f->payload));
          return o;
        }
        if (!until.empty() && o.out.find(until) != std::string::npos) return o;
      }
      struct pollfd p = {fd_, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      reader.Append(std::string_view(buf, n));
    }
    return o;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  stream::FrameReader reader_;
};

// A job with a terminal never waits for its reader: one that never reads costs the ring, and
// learns on reading how much it missed.
TEST(RelayTest, ATerminalJobNeverWaitsForAReaderThatDoesNotRead) {
  char dir[] = "/tmp/relay-test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string done = std::string(dir) + "/done";
  ExecRelay relay({true, 24, 80, {"sh", "-c", "head -c 8000000 /dev/zero; touch " + done}});
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (access(done.c_str(), F_OK) != 0 && Clock::now() < deadline) poll(nullptr, 0, 20);
  ASSERT_EQ(access(done.c_str(), F_OK), 0) << "the job waited for a reader that does not read";
  ExecRelay::Output o = relay.ReadAll();
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_GT(o.skipped, 0u);
  EXPECT_LT(o.out.size(), 8000000u);
  EXPECT_EQ(o.out.size() + o.skipped, 8000000u) << "every byte is either shown or counted";
  unlink(done.c_str());
  rmdir(dir);
}

// Without a terminal nothing is dropped: stdin (and its end) reaches the job, and stdout and
// stderr come back apart, whole, however much there is.
TEST(RelayTest, WithoutATerminalNothingIsLost) {
  ExecRelay relay({false, 0, 0, {"sh", "-c", "wc -c; head -c 3000000 /dev/zero; echo oops >&2; exit 7"}});
  relay.Send(stream::EncodeFrame(stream::kInput, "hello") +
             stream::EncodeFrame(stream::kInputEnd, ""));
  ExecRelay::Output o = relay.ReadAll();
  EXPECT_EQ(o.exit_code, 7);
  EXPECT_EQ(o.skipped, 0u);
  EXPECT_EQ(o.out.size(), 2u + 3000000u);
  EXPECT_EQ(o.out.substr(0, 2), "5\n");
  EXPECT_EQ(o.err, "oops\n");
}

// A command under a terminal is its session's leader with the terminal as its own, of the size
// asked for, and a window frame changes it.
TEST(RelayTest, TheCommandOwnsItsTerminal) {
  ExecRelay relay({true, 30, 100, {"sh", "-c", "stty size; read x; stty size; tty; exit 3"}});
  ExecRelay::Output first = relay.ReadAll("30 100");
  EXPECT_NE(first.out.find("30 100"), std::string::npos) << first.out;
  relay.Send(stream::EncodeFrame(stream::kWindow, stream::WindowPayload(40, 120)) +
             stream::EncodeFrame(stream::kInput, "go\r"));
  ExecRelay::Output o = relay.ReadAll();
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_NE(o.out.find("40 120"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("/dev/pts/"), std::string::npos) << o.out;
}

// A forwarded connection whose job side ended gives herd drain_time to take
// more of the rest, counted again whenever herd takes bytes: a herd that reads
// slowly, taking far longer than the drain time for the rest but never
// stopping, gets every byte, then the end.
TEST(ForwardRelayTest, ASlowReaderGetsEverythingAfterTheJobSideClosed) {
  constexpr size_t kBytes = 384 << 10;
  constexpr auto kDrain = std::chrono::milliseconds(500);
  // The job's server: a TCP listener on loopback, and the relay's connection to
  // it.
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto tcp = ConnectLoopback(ntohs(addr.sin_port));
  ASSERT_TRUE(tcp.ok()) << tcp.status().message();
  const int served = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(served, 0);
  close(listener);
  const pid_t server = fork();
  if (server == 0) {  // writes everything at once, then closes: the job's side ends
    const std::string all(kBytes, 'x');
    const bool ok =
        send(served, all.data(), all.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(all.size());
    _exit(ok ? 0 : 1);
  }
  close(served);
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  const int small = 16 << 10;  // little room between the relay and herd: the relay waits on it
  setsockopt(pair[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  setsockopt(pair[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  const pid_t relay = fork();
  if (relay == 0) {
    close(pair[0]);
    _exit(RunForwardRelay(pair[1], *tcp, kDrain));
  }
  close(pair[1]);
  close(*tcp);
  // herd, reading slowly: 1 KiB at a time, every 10 ms (at most 100 KB/s: the rest the relay
  // and the sockets hold when the job's side closes, some 300 KiB, takes several drain times).
  stream::FrameReader reader;
  size_t got = 0;
  bool ended = false;
  const auto start = Clock::now();
  char buf[1024];
  while (!ended && Clock::now() - start < std::chrono::seconds(30)) {
    const ssize_t n = recv(pair[0], buf, sizeof buf, 0);
    if (n <= 0) break;
    reader.Append(std::string_view(buf, n));
    while (auto f = reader.NextView()) {
      if (f->type == stream::kOutput) got += f->payload.size();
      if (f->type == stream::kExit) ended = true;
    }
    poll(nullptr, 0, 10);
  }
  const auto took = Clock::now() - start;
  EXPECT_EQ(got, kBytes) << "the relay cut off a herd that was still taking the rest";
  EXPECT_TRUE(ended);
  EXPECT_GT(took, 3 * kDrain) << "the reader was not slow enough to test the drain time";
  int status = 0;
  EXPECT_EQ(waitpid(server, &status, 0), server);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(waitpid(relay, &status, 0), relay);
  close(pair[0]);
}

}  // namespace
}  // namespace herd::runtime
