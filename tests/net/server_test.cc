// herd-ctld's ZMTP server as a hostile peer sees it: raw sockets speaking ZMTP by hand against
// net::Server in this process, each test one bound the server must keep while serving others.
#include <fcntl.h>
#include <malloc.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/net/net.h"
#include "common/net/zmtp.h"
#include "common/proto/codec.h"
#include "gtest/gtest.h"

namespace herd {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Messages the server delivered while a test was busy pushing bytes (PollFor returns them first).
std::vector<net::Incoming> delivered;

void PollInto(net::Server& server, int timeout_ms) {
  for (auto& in : server.Poll(timeout_ms)) delivered.push_back(std::move(in));
}

// A raw peer on an abstract Unix socket (no file, no port to pick).
class RawPeer {
 public:
  explicit RawPeer(const std::string& name, int rcvbuf = 0) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a),
                         static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 +
                                                name.size())) == 0;
    fcntl(fd_, F_SETFL, O_NONBLOCK);
  }
  ~RawPeer() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return connected_; }

  static std::string Hello() {
    std::string g = net::zmtp::Greeting(true);
    g[32] = 0;  // as-client
    std::string props(1, '\x0b');
    props += "Socket-Type";
    props += std::string("\0\0\0\6", 4);
    props += "DEALER";
    return g + net::zmtp::Command("READY", props);
  }
  static std::string Message(const std::string& body) {
    return net::zmtp::FrameHeader(body.size(), false) + body;
  }
  static std::string Request(uint64_t id) {
    return Message(proto::EncodeEnvelope(proto::MakeEnvelope(proto::NodesRequest{}, id)));
  }

  // Sends what the socket takes now; returns how much.
  size_t SendSome(std::string_view bytes) {
    const ssize_t k = send(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    return k > 0 ? static_cast<size_t>(k) : 0;
  }
  // Sends all of `bytes`, polling `server` meanwhile; false if it stopped taking them.
  bool Push(std::string_view bytes, net::Server& server, bool drain = true,
            milliseconds patience = milliseconds(2000)) {
    const auto deadline = Clock::now() + patience;
    while (!bytes.empty() && Clock::now() < deadline) {
      bytes.remove_prefix(SendSome(bytes));
      PollInto(server, 0);
      if (drain) Drain();
    }
    return bytes.empty();
  }
  // Reads what arrived; false once the server closed the connection.
  bool Drain() {
    char buf[65536];
    for (;;) {
      const ssize_t k = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (k > 0) {
        received_ += static_cast<size_t>(k);
        continue;
      }
      if (k == 0 || (errno != EAGAIN && errno != EINTR)) open_ = false;
      return open_;
    }
  }
  size_t received() const { return received_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool open_ = true;
  size_t received_ = 0;
};

std::unique_ptr<net::Server> BindAbstract(const std::string& name,
                                          const net::ServerLimits& limits = {}) {
  delivered.clear();
  auto server = net::Server::Bind({"ipc://@" + name}, limits);
  EXPECT_TRUE(server.ok()) << server.status().message();
  return server.ok() ? std::move(*server) : nullptr;
}

std::string UniqueName(const std::string& what) {
  return "herd-test-" + what + "-" + std::to_string(getpid());
}

// Polls until a message arrives (or `patience` passes).
std::vector<net::Incoming> PollFor(net::Server& server, milliseconds patience,
                                   const std::function<void()>& meanwhile = {}) {
  for (auto deadline = Clock::now() + patience; delivered.empty() && Clock::now() < deadline;) {
    PollInto(server, 20);
    if (meanwhile) meanwhile();
  }
  return std::exchange(delivered, {});
}

// Peers that each hold a large partial message fill the budget of all partial messages: the one
// holding the most is dropped, and a client with a small request is still read and answered.
TEST(ServerLimitTest, PartialMessagesOverTheBudgetDoNotStopOtherPeers) {
  net::ServerLimits limits;
  limits.max_buffered_bytes = 8 << 20;
  limits.max_message_bytes = 4 << 20;
  limits.message_timeout_ms = 4000;
  const std::string name = UniqueName("budget");
  auto server = BindAbstract(name, limits);
  ASSERT_TRUE(server);
  RawPeer client(name);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Push(RawPeer::Hello(), *server));
  std::vector<std::unique_ptr<RawPeer>> attackers;
  for (int i = 0; i < 3; ++i) {
    attackers.push_back(std::make_unique<RawPeer>(name));
    ASSERT_TRUE(attackers.back()->Push(RawPeer::Hello(), *server));
    const std::string part = net::zmtp::FrameHeader((4 << 20) - 16, false) + std::string(3 << 20, 'x');
    attackers.back()->Push(part, *server, true, milliseconds(500));
    client.Drain();
  }
  ASSERT_TRUE(client.Push(RawPeer::Request(7), *server));
  auto batch = PollFor(*server, milliseconds(2000), [&] { client.Drain(); });
  ASSERT_EQ(batch.size(), 1u) << "the client's request was not read within 2 s";
  EXPECT_EQ(batch[0].envelope.id, 7u);
  EXPECT_TRUE(client.Drain()) << "the client was disconnected";
  int dropped = 0;
  for (auto& a : attackers) dropped += a->Drain() ? 0 : 1;
  EXPECT_GE(dropped, 1) << "nobody was dropped though the partial messages exceed the budget";
}

// A peer that floods PINGs and reads nothing makes the server hold at most one PONG.
TEST(ServerLimitTest, PingFloodQueuesAtMostOnePong) {
  const std::string name = UniqueName("ping");
  auto server = BindAbstract(name);
  ASSERT_TRUE(server);
  RawPeer peer(name, 4096);
  ASSERT_TRUE(peer.connected());
  ASSERT_TRUE(peer.Push(RawPeer::Hello(), *server));
  std::string pings;
  for (int i = 0; i < 100000; ++i) pings += net::zmtp::Command("PING", std::string("\0\0", 2));
  PollInto(*server, 0);
  const auto before = mallinfo2();
  peer.Push(pings, *server, /*drain=*/false, milliseconds(3000));
  for (int i = 0; i < 10; ++i) PollInto(*server, 0);
  const auto after = mallinfo2();
  const int64_t grown = static_cast<int64_t>(after.uordblks + after.hblkhd) -
                        static_cast<int64_t>(before.uordblks + before.hblkhd);
  EXPECT_LT(grown, 256 << 10) << "the server's heap grew by " << grown << " bytes for "
                              << pings.size() << " bytes of PINGs";
}

// Unsent replies of all peers together are bounded: past the bound the peer holding the most
// is dropped.
TEST(ServerLimitTest, UnsentRepliesOfAllPeersAreBounded) {
  net::ServerLimits limits;
  limits.max_unsent_bytes = 8 << 20;
  limits.max_unsent_total_bytes = 6 << 20;
  const std::string name = UniqueName("unsent");
  auto server = BindAbstract(name, limits);
  ASSERT_TRUE(server);
  std::vector<std::unique_ptr<RawPeer>> peers;
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    peers.push_back(std::make_unique<RawPeer>(name, 4096));
    ASSERT_TRUE(peers.back()->Push(RawPeer::Hello() + RawPeer::Request(i + 1), *server));
    auto batch = PollFor(*server, milliseconds(2000));
    ASSERT_EQ(batch.size(), 1u);
    ids.push_back(batch[0].peer);
  }
  proto::ErrorReply big{static_cast<int>(Code::kInvalid), std::string(1 << 20, 'r')};
  for (int i = 0; i < 4; ++i) {
    for (const auto& id : ids) server->Send(id, proto::MakeEnvelope(big, 1));
  }
  for (int i = 0; i < 10; ++i) PollInto(*server, 0);
  int dropped = 0;
  for (auto& p : peers) dropped += p->Drain() ? 0 : 1;
  EXPECT_GE(dropped, 1) << "8 MiB of replies wait for two peers that read nothing, past a 6 MiB "
                           "bound for all";
}

// A message that is not an envelope ends the connection without an answer.
TEST(ServerLimitTest, UndecodableMessagesAreNotAnswered) {
  const std::string name = UniqueName("junk");
  auto server = BindAbstract(name);
  ASSERT_TRUE(server);
  RawPeer peer(name);
  ASSERT_TRUE(peer.Push(RawPeer::Hello(), *server));
  PollInto(*server, 0);
  peer.Drain();
  const size_t handshake = peer.received();
  std::string junk;
  for (int i = 0; i < 20000; ++i) junk += std::string("\x00\x01X", 3);
  peer.Push(junk, *server, true, milliseconds(1000));
  for (auto deadline = Clock::now() + milliseconds(2000); peer.Drain() && Clock::now() < deadline;) {
    PollInto(*server, 10);
  }
  EXPECT_FALSE(peer.Drain()) << "still connected after " << junk.size() << " bytes of garbage";
  EXPECT_EQ(peer.received() - handshake, 0u) << "garbage was answered";
}

// A message frame before READY is refused at its header: its body is never held.
TEST(ServerLimitTest, MessageBeforeReadyIsRefusedAtItsHeader) {
  const std::string name = UniqueName("early");
  auto server = BindAbstract(name);
  ASSERT_TRUE(server);
  RawPeer peer(name);
  std::string g = net::zmtp::Greeting(true);
  g[32] = 0;
  ASSERT_TRUE(peer.Push(g + net::zmtp::FrameHeader(1 << 20, false) + "x", *server));
  for (auto deadline = Clock::now() + milliseconds(2000); peer.Drain() && Clock::now() < deadline;) {
    PollInto(*server, 10);
  }
  EXPECT_FALSE(peer.Drain()) << "a message frame before READY was accepted";
}

// Connections that send valid envelopes but are never vouched for (Authenticated) give way to
// new ones; an authenticated one is kept.
TEST(ServerLimitTest, UnauthenticatedConnectionsGiveWayToNewOnes) {
  net::ServerLimits limits;
  limits.max_connections = 8;
  const std::string name = UniqueName("table");
  auto server = BindAbstract(name, limits);
  ASSERT_TRUE(server);
  std::vector<std::unique_ptr<RawPeer>> peers;
  for (int i = 0; i < 8; ++i) {
    peers.push_back(std::make_unique<RawPeer>(name));
    ASSERT_TRUE(peers.back()->Push(RawPeer::Hello() + RawPeer::Request(i + 1), *server));
    auto batch = PollFor(*server, milliseconds(2000));
    ASSERT_EQ(batch.size(), 1u);
    if (i == 0) server->Authenticated(batch[0].peer);
  }
  RawPeer late(name);
  ASSERT_TRUE(late.connected());
  late.Push(RawPeer::Hello() + RawPeer::Request(99), *server);
  auto batch = PollFor(*server, milliseconds(2000));
  ASSERT_EQ(batch.size(), 1u) << "a new connection was refused: the table is full of "
                                 "connections nobody vouched for";
  EXPECT_EQ(batch[0].envelope.id, 99u);
  EXPECT_TRUE(peers[0]->Drain()) << "the authenticated connection was dropped";
  int open = 0;
  for (auto& p : peers) open += p->Drain() ? 1 : 0;
  EXPECT_LE(open, 1 + 8 / 4) << "more unauthenticated connections kept than a quarter of the table";
}

// ---- the ipc socket file ----

class IpcPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/herd-ipc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    sock_ = dir_ + "/ctld.sock";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
  std::string sock_;
};

// Someone who can write the socket's directory swaps the fresh socket for a symbolic link: the
// server must never change the mode of what the link points to.
TEST_F(IpcPathTest, SymlinkSwappedInForTheSocketIsNotFollowed) {
  const std::string victim = dir_ + "/victim";
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    while (!stop) {
      struct stat st{};
      if (lstat(sock_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(sock_.c_str());
        symlink(victim.c_str(), sock_.c_str());
      }
    }
  });
  int changed_after = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(4);
  for (int i = 0; i < 3000 && changed_after == 0 && Clock::now() < deadline; ++i) {
    unlink(sock_.c_str());
    FILE* f = fopen(victim.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fclose(f);
    chmod(victim.c_str(), 0600);
    auto server = net::Server::Bind({"ipc://" + sock_});
    struct stat st{};
    stat(victim.c_str(), &st);
    if ((st.st_mode & 0777) != 0600) changed_after = i + 1;
  }
  stop = true;
  swapper.join();
  EXPECT_EQ(changed_after, 0) << "the target of a swapped-in link was chmodded after "
                              << changed_after << " binds";
}

TEST_F(IpcPathTest, SocketFileIsOpenToAllUsersWhateverTheUmask) {
  const mode_t old = umask(077);
  {
    auto server = net::Server::Bind({"ipc://" + sock_});
    umask(old);
    ASSERT_TRUE(server.ok()) << server.status().message();
    struct stat st{};
    ASSERT_EQ(lstat(sock_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0666u);
  }
  umask(old);
  struct stat st{};
  EXPECT_NE(lstat(sock_.c_str(), &st), 0) << "the socket file was left behind";
}

TEST_F(IpcPathTest, FileThatIsNotASocketIsNeitherRemovedNorReplaced) {
  FILE* f = fopen(sock_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  auto server = net::Server::Bind({"ipc://" + sock_});
  EXPECT_FALSE(server.ok());
  struct stat st{};
  ASSERT_EQ(lstat(sock_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode)) << "the file was removed";
}

TEST_F(IpcPathTest, LiveSocketIsNotStolenAndAStaleOneIsReplaced) {
  auto first = net::Server::Bind({"ipc://" + sock_});
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto second = net::Server::Bind({"ipc://" + sock_});
  EXPECT_FALSE(second.ok()) << "a second server took the socket of a live one";
  if (!second.ok()) {
    EXPECT_NE(second.status().message().find("listening"), std::string::npos);
  }
  // A socket nobody listens on (left by a crash) is replaced.
  const int stale = socket(AF_UNIX, SOCK_STREAM, 0);
  first->reset();
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, sock_.data(), sock_.size());
  ASSERT_EQ(bind(stale, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  close(stale);
  auto third = net::Server::Bind({"ipc://" + sock_});
  EXPECT_TRUE(third.ok()) << third.status().message();
}

TEST_F(IpcPathTest, ShutdownLeavesAFileThatReplacedTheSocket) {
  auto server = net::Server::Bind({"ipc://" + sock_});
  ASSERT_TRUE(server.ok()) << server.status().message();
  ASSERT_EQ(unlink(sock_.c_str()), 0);
  FILE* f = fopen(sock_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  server->reset();
  struct stat st{};
  EXPECT_EQ(lstat(sock_.c_str(), &st), 0) << "shutdown removed a file that was not its socket";
}

TEST_F(IpcPathTest, RootRefusesADirectoryOthersMayWriteWithoutTheStickyBit) {
  if (geteuid() != 0) GTEST_SKIP() << "the check applies to root only";
  ASSERT_EQ(chmod(dir_.c_str(), 0777), 0);
  auto server = net::Server::Bind({"ipc://" + sock_});
  EXPECT_FALSE(server.ok());
  ASSERT_EQ(chmod(dir_.c_str(), 01777), 0);
  auto sticky = net::Server::Bind({"ipc://" + sock_});
  EXPECT_TRUE(sticky.ok()) << sticky.status().message();
}

}  // namespace
}  // namespace herd

namespace herd {
namespace {

// Disconnect sends what was queued for the peer, then closes; the close of a watched peer is
// reported once by TakeClosed, an unwatched one's never (an owner that never asks holds nothing).
TEST(ServerTest, DisconnectClosesAfterTheReplyAndWatchedClosesAreReported) {
  const std::string name = UniqueName("disconnect");
  auto server = BindAbstract(name);
  ASSERT_TRUE(server);
  RawPeer watched(name), unwatched(name);
  ASSERT_TRUE(watched.Push(RawPeer::Hello(), *server));
  ASSERT_TRUE(unwatched.Push(RawPeer::Hello(), *server));
  ASSERT_TRUE(watched.Push(RawPeer::Request(1), *server));
  auto batch = PollFor(*server, milliseconds(2000));
  ASSERT_EQ(batch.size(), 1u);
  ASSERT_TRUE(unwatched.Push(RawPeer::Request(2), *server));
  auto other = PollFor(*server, milliseconds(2000));
  ASSERT_EQ(other.size(), 1u);
  const std::string peer = batch[0].peer;
  server->Watch(peer);
  EXPECT_TRUE(server->TakeClosed().empty());
  const size_t before = watched.received();
  server->Send(peer, proto::MakeEnvelope(proto::ErrorReply{3, "denied"}, 1));
  server->Disconnect(peer);
  bool open = true;
  for (auto deadline = Clock::now() + milliseconds(2000); open && Clock::now() < deadline;) {
    PollInto(*server, 10);
    open = watched.Drain();
  }
  EXPECT_FALSE(open) << "still connected after Disconnect";
  EXPECT_GT(watched.received(), before) << "the reply queued before Disconnect was not sent";
  EXPECT_EQ(server->TakeClosed(), std::vector<std::string>{peer});
  EXPECT_TRUE(server->TakeClosed().empty());
  server->Disconnect(other[0].peer);
  PollInto(*server, 10);
  EXPECT_FALSE(unwatched.Drain());
  EXPECT_TRUE(server->TakeClosed().empty()) << "an unwatched peer's close was kept";
  // Watching a peer already gone reports it at once: its owner still learns to let go.
  server->Watch(other[0].peer);
  EXPECT_EQ(server->TakeClosed(), std::vector<std::string>{other[0].peer});
}

}  // namespace
}  // namespace herd
