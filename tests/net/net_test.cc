// Authentication (a real munged) and the ZeroMQ transport over loopback.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <iterator>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/auth/auth.h"
#include "common/auth/connection_key.h"
#include "common/net/net.h"
#include "common/net/zmtp.h"
#include "tests/support/munge_fixture.h"

namespace herd {
namespace {

const std::string kBinding = auth::MessageBinding("test", 1, "body");


using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::unique_ptr<auth::Authenticator> MakeAuth(const std::string& method,
                                              const std::string& socket = "") {
  auto a = auth::MakeAuthenticator(method, socket);
  EXPECT_TRUE(a.ok()) << a.status().message();
  return a.ok() ? std::move(*a) : nullptr;
}

// ---- auth ----

TEST(AuthTest, NoAuthCredentialNamesThisProcess) {
  auto a = MakeAuth("none");
  auto cred = a->Credential(kBinding);
  ASSERT_TRUE(cred.ok());
  auto id = a->Verify(*cred, kBinding);
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(id->uid, getuid());
  EXPECT_EQ(id->gid, getgid());
  EXPECT_EQ(id->user, auth::UserName(getuid()));
}

TEST(AuthTest, NoAuthRefusesMalformedCredentials) {
  auto a = MakeAuth("none");
  for (const char* bad : {"", "none:", "none:1", "none:1:", "none:x:2", "none:1:2:3", "MUNGE:abc"}) {
    auto id = a->Verify(bad, kBinding);
    ASSERT_FALSE(id.ok()) << bad;
    EXPECT_EQ(id.status().code(), Code::kDenied);
  }
}

TEST(AuthTest, UnknownMethodIsInvalid) {
  auto a = auth::MakeAuthenticator("kerberos", "");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), Code::kInvalid);
}

TEST(AuthTest, UserNameFallsBackToTheNumber) {
  passwd* pw = getpwuid(getuid());
  if (pw != nullptr) {
    EXPECT_EQ(auth::UserName(getuid()), pw->pw_name);
  }
  EXPECT_EQ(auth::UserName(3999999999u), "3999999999");
}

// A clock the test moves by hand.
class ManualClock : public herd::Clock {
 public:
  int64_t NowSeconds() const override { return ms / 1000; }
  int64_t MonotonicMillis() const override { return ms; }
  int64_t ms = 1'000'000;
};

TEST(AuthTest, UserNameCacheLooksUpOncePerMaxAgeAndSeesRenames) {
  ManualClock clock;
  std::vector<uint32_t> asked;
  std::string name_of_7 = "alice";
  auth::UserNameCache cache(&clock, /*max_age_ms=*/60'000, /*capacity=*/2, [&](uint32_t uid) {
    asked.push_back(uid);
    return uid == 7 ? name_of_7 : std::to_string(uid);
  });
  EXPECT_EQ(cache.Get(7), "alice");
  EXPECT_EQ(cache.Get(7), "alice");
  EXPECT_EQ(asked, std::vector<uint32_t>{7});
  name_of_7 = "alice2";  // renamed: the cache answers the old name until its entry is 60 s old
  clock.ms += 59'999;
  EXPECT_EQ(cache.Get(7), "alice");
  clock.ms += 1;
  EXPECT_EQ(cache.Get(7), "alice2");
  EXPECT_EQ(asked, (std::vector<uint32_t>{7, 7}));
  // Bounded: a third user makes it start over, so 7 is looked up again.
  EXPECT_EQ(cache.Get(8), "8");
  EXPECT_EQ(cache.Get(9), "9");
  EXPECT_EQ(cache.Get(7), "alice2");
  EXPECT_EQ(asked, (std::vector<uint32_t>{7, 7, 8, 9, 7}));
}

TEST(AuthTest, MissingMungedIsUnavailable) {
  auto a = MakeAuth("munge", "/nonexistent/herd-test/munge.sock");
  auto cred = a->Credential(kBinding);
  ASSERT_FALSE(cred.ok());
  EXPECT_EQ(cred.status().code(), Code::kUnavailable);
  EXPECT_EQ(cred.status().message(),
            "cannot reach munged at /nonexistent/herd-test/munge.sock: is munged running?");
}

class MungeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto daemon = testing::MungeDaemon::Start();
    if (daemon.status().code() == Code::kNotFound) GTEST_SKIP() << daemon.status().message();
    ASSERT_TRUE(daemon.ok()) << daemon.status().message();
    munged_ = std::move(*daemon);
  }
  void TearDown() override { munged_.reset(); }

  std::unique_ptr<testing::MungeDaemon> munged_;
};

TEST_F(MungeTest, CredentialVerifiesToThisProcess) {
  auto client = MakeAuth("munge", munged_->socket());
  auto server = MakeAuth("munge", munged_->socket());
  auto cred = client->Credential(kBinding);
  ASSERT_TRUE(cred.ok()) << cred.status().message();
  auto id = server->Verify(*cred, kBinding);
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(id->uid, getuid());
  EXPECT_EQ(id->gid, getgid());
}

TEST_F(MungeTest, ReplayedCredentialIsRefused) {
  auto a = MakeAuth("munge", munged_->socket());
  auto cred = a->Credential(kBinding);
  ASSERT_TRUE(cred.ok());
  ASSERT_TRUE(a->Verify(*cred, kBinding).ok());
  auto again = a->Verify(*cred, kBinding);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kDenied);
  EXPECT_NE(again.status().message().find("authentication failed: "), std::string::npos);
}

TEST_F(MungeTest, TamperedCredentialIsRefused) {
  auto a = MakeAuth("munge", munged_->socket());
  auto cred = a->Credential(kBinding);
  ASSERT_TRUE(cred.ok());
  std::string tampered = *cred;
  char& c = tampered[tampered.size() / 2];
  c = c == 'A' ? 'B' : 'A';
  auto id = a->Verify(tampered, kBinding);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), Code::kDenied);
}

TEST_F(MungeTest, CredentialReplayedWithAnotherMessageIsRefused) {
  auto sender = MakeAuth("munge", munged_->socket());
  auto receiver = MakeAuth("munge", munged_->socket());
  const std::string sent = auth::MessageBinding("launch", 7, "body sent");
  // Whoever captured a credential uses it first, with another body, id or type.
  for (const std::string& other :
       {auth::MessageBinding("launch", 7, "another body"), auth::MessageBinding("launch", 8, "body sent"),
        auth::MessageBinding("signal", 7, "body sent")}) {
    auto cred = sender->Credential(sent);
    ASSERT_TRUE(cred.ok()) << cred.status().message();
    auto id = receiver->Verify(*cred, other);
    ASSERT_FALSE(id.ok());
    EXPECT_EQ(id.status().code(), Code::kDenied);
    EXPECT_EQ(id.status().message(),
              "authentication failed: the credential was made for another message");
  }
}

TEST_F(MungeTest, CredentialVerifiesWithTheMessageItWasMadeFor) {
  auto sender = MakeAuth("munge", munged_->socket());
  auto receiver = MakeAuth("munge", munged_->socket());
  const std::string sent = auth::MessageBinding("launch", 7, "body sent");
  auto cred = sender->Credential(sent);
  ASSERT_TRUE(cred.ok()) << cred.status().message();
  auto id = receiver->Verify(*cred, auth::MessageBinding("launch", 7, "body sent"));
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(id->uid, getuid());
}

TEST(AuthTest, MessageBindingIsTheSha256OfTheFieldsEachLengthPrefixed) {
  EXPECT_EQ(auth::MessageBinding("a", 1, "b").size(), 64u);
  // Length prefixes: moving a byte from one field to the next changes the binding.
  EXPECT_NE(auth::MessageBinding("ab", 1, ""), auth::MessageBinding("a", 1, "b"));
  EXPECT_EQ(auth::MessageBinding("a", 1, "b"), auth::MessageBinding("a", 1, "b"));
}

// ---- net ----

constexpr int kWaitMs = 5000;

std::unique_ptr<net::Server> BindLoopback() {
  auto server = net::Server::Bind({"tcp://127.0.0.1:*"});
  EXPECT_TRUE(server.ok()) << server.status().message();
  return server.ok() ? std::move(*server) : nullptr;
}

// Polls until one message arrives (or kWaitMs passes) and answers it with `answer`. A dealer
// of this thread (herd's own runs inside its owner's calls) is given its turns by `pump`.
std::optional<net::Incoming> ServeOne(
    net::Server& server, const std::function<proto::Envelope(const net::Incoming&)>& answer,
    net::Dealer* pump = nullptr) {
  auto deadline = Clock::now() + milliseconds(kWaitMs);
  while (Clock::now() < deadline) {
    if (pump != nullptr) {
      EXPECT_FALSE(pump->Receive(0).has_value());
    }
    auto batch = server.Poll(pump != nullptr ? 5 : 100);
    if (batch.empty()) continue;
    server.Send(batch[0].peer, answer(batch[0]));
    return batch[0];
  }
  return std::nullopt;
}

// One request/reply with `method` on both sides; the server checks the credential.
void RoundTrip(const std::string& method, const std::string& socket) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  std::string endpoint = server->Endpoints().at(0);
  Result<proto::SubmitReply> reply = Internal("not run");
  std::thread client_thread([&] {
    net::Client client(endpoint, MakeAuth(method, socket), kWaitMs);
    model::JobSpec spec;
    spec.name = "hello";
    proto::SubmitRequest request;
    request.spec = spec;
    reply = client.Call<proto::SubmitRequest, proto::SubmitReply>(request);
  });
  auto verifier = MakeAuth(method, socket);
  std::optional<auth::Identity> who;
  auto got = ServeOne(*server, [&](const net::Incoming& in) {
    auto id = verifier->Verify(
        in.envelope.cred,
        auth::MessageBinding(in.envelope.type, in.envelope.id, in.envelope.body));
    if (id.ok()) who = *id;
    return proto::MakeEnvelope(proto::SubmitReply{42}, in.envelope.id);
  });
  client_thread.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->envelope.type, "submit");
  auto body = proto::BodyOf<proto::SubmitRequest>(got->envelope);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->spec.name, "hello");
  ASSERT_TRUE(who.has_value());
  EXPECT_EQ(who->uid, getuid());
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->id, 42);
}

TEST(NetTest, RequestReplyWithNoAuth) { RoundTrip("none", ""); }

TEST_F(MungeTest, RequestReplyWithMunge) { RoundTrip("munge", munged_->socket()); }

// Replies are not signed: someone on the path may answer a keyed request that herd-ctld applied
// with a forged "no connection key". The client then asks for a new key, and as herd-ctld
// refuses it (the connection holds its key) the client reports the refusal and never sends the
// request again, which herd-ctld would apply a second time.
TEST_F(MungeTest, ForgedNoKeyRefusalNeverMakesTheClientSendARequestTwice) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  const std::string endpoint = server->Endpoints().at(0);
  std::atomic<bool> done = false;
  Result<proto::Envelope> second = Internal("not run");
  std::thread client_thread([&] {
    net::Client client(endpoint, MakeAuth("munge", munged_->socket()), kWaitMs);
    client.UseConnectionKeys();
    // The first request goes with its MUNGE credential while the key is on its way.
    (void)client.Call<proto::SubmitRequest, proto::SubmitReply>(proto::SubmitRequest{});
    auto id = client.Post(proto::MakeEnvelope(proto::SubmitRequest{}));
    if (id.ok()) second = client.NextReply();
    done = true;
  });
  auto verifier = MakeAuth("munge", munged_->socket());
  auth::ConnectionKeys keys;
  std::map<uint64_t, int> applied;  // request id -> times applied
  int keyed = 0;
  const auto deadline = Clock::now() + milliseconds(kWaitMs);
  // Serves until the client is done, and a little beyond for a request sent again.
  for (auto stop = deadline; Clock::now() < stop;) {
    if (done && stop == deadline) stop = Clock::now() + milliseconds(300);
    for (const net::Incoming& in : server->Poll(50)) {
      const proto::Envelope& e = in.envelope;
      proto::Envelope reply;
      if (auth::IsKeyed(e.cred)) {
        auto who = keys.Verify(in.peer, e.cred, e.type, e.id, e.body);
        ASSERT_TRUE(who.ok()) << who.status().message();
        ++applied[e.id];
        // The forged answer, in place of herd-ctld's SubmitReply.
        reply = proto::MakeEnvelope(
            proto::ErrorReply{static_cast<int>(Code::kNoConnectionKey), "no connection key"}, e.id);
        ++keyed;
      } else {
        auto who = verifier->Verify(e.cred, auth::MessageBinding(e.type, e.id, e.body));
        ASSERT_TRUE(who.ok()) << who.status().message();
        if (e.type == proto::MessageName<proto::ConnectionKeyRequest>()) {
          auto ask = proto::BodyOf<proto::ConnectionKeyRequest>(e);
          ASSERT_TRUE(ask.ok());
          auto opened = keys.Open(in.peer, *who, ask->client_public);
          reply = opened.ok() ? proto::MakeEnvelope(proto::ConnectionKeyReply{*opened}, e.id)
                              : proto::MakeEnvelope(
                                    proto::ErrorReply{static_cast<int>(opened.status().code()),
                                                      opened.status().message()},
                                    e.id);
        } else {
          ++applied[e.id];
          reply = proto::MakeEnvelope(proto::SubmitReply{static_cast<model::JobId>(e.id)}, e.id);
        }
      }
      server->Send(in.peer, reply);
    }
  }
  client_thread.join();
  EXPECT_EQ(keyed, 1) << "the second request was not signed with the connection key";
  for (const auto& [id, times] : applied) EXPECT_EQ(times, 1) << "request " << id << " applied twice";
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(net::ReplyStatus(*second).code(), Code::kNoConnectionKey)
      << "the client took an answer to a request sent again: " << second->type;
}

TEST(NetTest, EndpointsResolveTheEphemeralPort) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  ASSERT_EQ(server->Endpoints().size(), 1u);
  EXPECT_TRUE(server->Endpoints()[0].starts_with("tcp://127.0.0.1:"));
  EXPECT_EQ(server->Endpoints()[0].find('*'), std::string::npos);
}

TEST(NetTest, BindingIntoAMissingDirectoryNamesIt) {
  auto server = net::Server::Bind({"ipc:///nonexistent-herd-dir/ctld.sock"});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("/nonexistent-herd-dir"), std::string::npos);
}

TEST(NetTest, ErrorReplyBecomesTheCallersStatus) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  std::string endpoint = server->Endpoints().at(0);
  Result<proto::Envelope> reply = Internal("not run");
  std::thread client_thread([&] {
    net::Client client(endpoint, MakeAuth("none"), kWaitMs);
    reply = client.CallRaw(proto::MakeEnvelope(proto::JobActionRequest{"cancel", {7}}));
  });
  auto got = ServeOne(*server, [](const net::Incoming& in) {
    return proto::MakeEnvelope(
        proto::ErrorReply{static_cast<int>(Code::kDenied), "job 7 belongs to bob"},
        in.envelope.id);
  });
  client_thread.join();
  ASSERT_TRUE(got.has_value());
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kDenied);
  EXPECT_EQ(reply.status().message(), "job 7 belongs to bob");
}

TEST(NetTest, PostedRequestsAreAnsweredByIdInAnyOrder) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  net::Client client(server->Endpoints().at(0), MakeAuth("none"), kWaitMs);
  std::vector<uint64_t> posted;
  for (int64_t job : {1, 2, 3}) {
    auto id = client.Post(proto::MakeEnvelope(proto::JobActionRequest{"cancel", {job}}));
    ASSERT_TRUE(id.ok()) << id.status().message();
    posted.push_back(*id);
  }
  EXPECT_EQ(std::set<uint64_t>(posted.begin(), posted.end()).size(), 3u);
  // All three arrive before any answer; answered last first, the second one refused. (The
  // server runs beside: the client's connection makes progress while it waits for replies.)
  std::vector<net::Incoming> received;
  std::thread serve([&] {
    for (auto deadline = Clock::now() + milliseconds(kWaitMs);
         received.size() < 3 && Clock::now() < deadline;) {
      for (auto& in : server->Poll(100)) received.push_back(std::move(in));
    }
    if (received.size() != 3) return;
    for (auto it = received.rbegin(); it != received.rend(); ++it) {
      const auto& in = *it;
      auto body = proto::BodyOf<proto::JobActionRequest>(in.envelope);
      EXPECT_TRUE(body.ok());
      if (!body.ok()) return;
      EXPECT_TRUE(in.envelope.cred.starts_with("none:")) << "each request carries a credential";
      proto::Envelope e =
          body->ids[0] == 2
              ? proto::MakeEnvelope(proto::ErrorReply{static_cast<int>(Code::kDenied), "not yours"},
                                    in.envelope.id)
              : proto::MakeEnvelope(proto::JobActionReply{{{body->ids[0], true, "cancelled", 0}}},
                                    in.envelope.id);
      server->Send(in.peer, e);
    }
  });
  std::map<uint64_t, Status> replies;
  for (int i = 0; i < 3; ++i) {
    auto reply = client.NextReply();
    if (!reply.ok()) {
      ADD_FAILURE() << reply.status().message();
      break;
    }
    replies.emplace(reply->id, net::ReplyStatus(*reply));
  }
  serve.join();
  ASSERT_EQ(received.size(), 3u);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_TRUE(replies.at(posted[0]).ok());
  EXPECT_EQ(replies.at(posted[1]).code(), Code::kDenied);
  EXPECT_EQ(replies.at(posted[1]).message(), "not yours");
  EXPECT_TRUE(replies.at(posted[2]).ok());
}

// No herd client sends a message that is not an envelope: the peer that does is disconnected
// unanswered (an answer to each would multiply what a peer sends), and everyone else is served.
TEST(NetTest, GarbageMessageEndsTheConnectionUnansweredAndTheServerKeepsServing) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  zmq::context_t context;
  zmq::socket_t raw(context, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::rcvtimeo, 1000);
  raw.connect(server->Endpoints().at(0));
  zmq::socket_t monitor_sink(context, zmq::socket_type::pair);
  ASSERT_EQ(zmq_socket_monitor(raw.handle(), "inproc://garbage-monitor", ZMQ_EVENT_DISCONNECTED),
            0);
  monitor_sink.connect("inproc://garbage-monitor");
  monitor_sink.set(zmq::sockopt::rcvtimeo, 200);
  ASSERT_TRUE(raw.send(zmq::str_buffer("\xc1garbage"), zmq::send_flags::none));
  bool disconnected = false;
  for (auto deadline = Clock::now() + milliseconds(kWaitMs);
       !disconnected && Clock::now() < deadline;) {
    EXPECT_TRUE(server->Poll(50).empty());
    zmq::message_t event;
    disconnected = monitor_sink.recv(event, zmq::recv_flags::dontwait).has_value();
  }
  EXPECT_TRUE(disconnected) << "the peer that sent garbage is still connected";
  zmq::message_t answer;
  EXPECT_FALSE(raw.recv(answer, zmq::recv_flags::dontwait)) << "garbage was answered";

  // Still serving: a well-formed request (the DEALER reconnects) is delivered.
  auto ok = proto::MakeEnvelope(proto::NodesRequest{}, 5);
  std::string bytes = proto::EncodeEnvelope(ok);
  ASSERT_TRUE(raw.send(zmq::buffer(bytes), zmq::send_flags::none));
  std::vector<net::Incoming> batch;
  for (auto deadline = Clock::now() + milliseconds(kWaitMs);
       batch.empty() && Clock::now() < deadline;) {
    batch = server->Poll(100);
  }
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].envelope.type, "nodes");
  EXPECT_EQ(batch[0].envelope.id, 5u);
}

TEST(NetTest, ClientTimesOutWhenNothingListens) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/herd-net-XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  std::string endpoint = "ipc://" + dir + "/nobody.sock";
  net::Client client(endpoint, MakeAuth("none"), 300);
  auto start = Clock::now();
  auto reply = client.Call<proto::NodesRequest, proto::NodesReply>({});
  auto elapsed = Clock::now() - start;
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kUnavailable);
  EXPECT_EQ(reply.status().message(), "no answer from herd-ctld at " + endpoint +
                                          " within 0.3s: is it running? (check HERD_CONFIG / "
                                          "--controller)");
  EXPECT_GE(elapsed, milliseconds(290));
  EXPECT_LT(elapsed, milliseconds(2000));
}

// A request over each kind of endpoint herd-ctld may listen on is answered.
TEST(NetTest, EveryEndpointKindIsServed) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/herd-net-XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string file = "ipc://" + dir + "/ctld.sock";
  const std::string abstract = "ipc://@herd-net-test-" + std::to_string(getpid());
  auto server = net::Server::Bind({"tcp://*:*", file, abstract});
  ASSERT_TRUE(server.ok()) << server.status().message();
  const std::vector<std::string> bound = (*server)->Endpoints();
  ASSERT_EQ(bound.size(), 3u);
  ASSERT_TRUE(bound[0].starts_with("tcp://0.0.0.0:")) << bound[0];
  EXPECT_EQ(bound[1], file);
  EXPECT_EQ(bound[2], abstract);
  const std::string port = bound[0].substr(bound[0].rfind(':') + 1);
  for (const std::string& endpoint : {"tcp://127.0.0.1:" + port, file, abstract}) {
    SCOPED_TRACE(endpoint);
    Result<proto::NodesReply> reply = Internal("not run");
    std::thread client_thread([&] {
      net::Client client(endpoint, MakeAuth("none"), kWaitMs);
      reply = client.Call<proto::NodesRequest, proto::NodesReply>({});
    });
    auto got = ServeOne(**server, [](const net::Incoming& in) {
      return proto::MakeEnvelope(proto::NodesReply{}, in.envelope.id);
    });
    client_thread.join();
    EXPECT_TRUE(got.has_value());
    EXPECT_TRUE(reply.ok()) << reply.status().message();
  }
  server->reset();
  EXPECT_FALSE(std::filesystem::exists(dir + "/ctld.sock")) << "the socket file is left behind";
  std::filesystem::remove_all(dir);
}

// A peer that sends requests and never reads the replies is disconnected once the replies
// waiting for it pass max_unsent_bytes, instead of growing herd-ctld's memory.
TEST(NetTest, PeerThatNeverReadsIsDisconnectedPastTheUnsentBound) {
  net::ServerLimits limits;
  limits.max_unsent_bytes = 1 << 20;
  auto server = net::Server::Bind({"tcp://127.0.0.1:*"}, limits);
  ASSERT_TRUE(server.ok()) << server.status().message();
  const std::string endpoint = (*server)->Endpoints().at(0);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  const int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  const int port = std::atoi(endpoint.substr(endpoint.rfind(':') + 1).c_str());
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string greeting = net::zmtp::Greeting(true);  // as a client's, but for as-server
  const std::string ready =
      net::zmtp::Command("READY", std::string("\x0bSocket-Type\0\0\0\x06", 16) + "DEALER");
  const std::string request =
      proto::EncodeEnvelope(proto::MakeEnvelope(proto::NodesRequest{}, 1));
  const std::string hello =
      greeting + ready + net::zmtp::FrameHeader(request.size(), false) + request;
  ASSERT_EQ(send(fd, hello.data(), hello.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(hello.size()));
  std::vector<net::Incoming> batch;
  for (auto deadline = Clock::now() + milliseconds(kWaitMs);
       batch.empty() && Clock::now() < deadline;) {
    batch = (*server)->Poll(100);
  }
  ASSERT_EQ(batch.size(), 1u);
  proto::ErrorReply big{static_cast<int>(Code::kInvalid), std::string(64 << 10, 'r')};
  for (int i = 0; i < 64; ++i) (*server)->Send(batch[0].peer, proto::MakeEnvelope(big, 1));
  // The connection ends: what the kernel holds is read, then end of file (or a reset).
  size_t received = 0;
  bool closed = false;
  char buf[65536];
  for (auto deadline = Clock::now() + milliseconds(kWaitMs); !closed && Clock::now() < deadline;) {
    (*server)->Poll(0);
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t k = recv(fd, buf, sizeof buf, 0);
    if (k > 0) received += static_cast<size_t>(k);
    closed = k <= 0;
  }
  close(fd);
  EXPECT_TRUE(closed) << "still connected after " << received << " bytes";
  EXPECT_LT(received, size_t{4} << 20);
}

// herd-ctld answers peers that may be gone by then (a node daemon killed after it asked): a send
// to a connection the server no longer has, or never had, is dropped and the server serves on.
TEST(NetTest, SendToAPeerThatIsGoneIsDropped) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  server->Send("424242", proto::MakeEnvelope(proto::NodesReply{}, 1));
  server->Send("not-a-peer", proto::MakeEnvelope(proto::NodesReply{}, 2));
  auto dealer = net::Dealer::Connect(server->Endpoints().at(0), "");
  ASSERT_TRUE(dealer.ok()) << dealer.status().message();
  ASSERT_TRUE((*dealer)->Send(proto::MakeEnvelope(proto::NodesRequest{}, 7)).ok());
  auto served = ServeOne(
      *server,
      [](const net::Incoming& in) {
        return proto::MakeEnvelope(proto::NodesReply{}, in.envelope.id);
      },
      dealer->get());
  ASSERT_TRUE(served.has_value());
  auto reply = (*dealer)->Receive(kWaitMs);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->id, 7u);
}

TEST(NetTest, PollReturnsQueuedMessagesAsABatch) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  auto dealer = net::Dealer::Connect(server->Endpoints().at(0), "node-a");
  ASSERT_TRUE(dealer.ok()) << dealer.status().message();
  // First message: the connection is up before the burst.
  ASSERT_TRUE((*dealer)->Send(proto::MakeEnvelope(proto::NodesRequest{}, 100)).ok());
  auto first = ServeOne(
      *server,
      [](const net::Incoming& in) {
        return proto::MakeEnvelope(proto::NodesReply{}, in.envelope.id);
      },
      dealer->get());
  ASSERT_TRUE(first.has_value());
  // The routing id the dealer claims is not taken: no peer can squat on another's route.
  EXPECT_NE(first->peer, "node-a");
  EXPECT_FALSE(first->peer.empty());
  auto echoed = (*dealer)->Receive(kWaitMs);
  ASSERT_TRUE(echoed.has_value());
  EXPECT_EQ(echoed->id, 100u);

  constexpr int kBurst = 20;
  for (int i = 0; i < kBurst; ++i) {
    ASSERT_TRUE((*dealer)->Send(proto::MakeEnvelope(proto::EventAck{i, 0}, i)).ok());
  }
  std::vector<net::Incoming> all;
  int polls_with_messages = 0;
  for (auto deadline = Clock::now() + milliseconds(kWaitMs);
       all.size() < kBurst && Clock::now() < deadline;) {
    auto batch = server->Poll(100);
    if (!batch.empty()) ++polls_with_messages;
    for (auto& in : batch) all.push_back(std::move(in));
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kBurst));
  for (int i = 0; i < kBurst; ++i) EXPECT_EQ(all[i].envelope.id, static_cast<uint64_t>(i));
  EXPECT_LT(polls_with_messages, kBurst);
}

// herd-ctld of another protocol version answers in its own version, which this herd cannot read:
// the call must end at once with an error naming both versions, not wait for a reply.
TEST(NetTest, ReplyInAnotherProtocolVersionEndsTheCallWithAClearError) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  const int theirs = proto::kProtocolVersion + 1;
  Result<proto::NodesReply> reply = Internal("not run");
  Clock::duration elapsed{};
  std::thread client_thread([&] {
    net::Client client(server->Endpoints().at(0), MakeAuth("none"), kWaitMs);
    auto start = Clock::now();
    reply = client.Call<proto::NodesRequest, proto::NodesReply>({});
    elapsed = Clock::now() - start;
  });
  auto got = ServeOne(*server, [&](const net::Incoming&) {
    proto::Envelope e = proto::MakeEnvelope(
        proto::ErrorReply{static_cast<int>(Code::kInvalid), "protocol version 1 not supported"});
    e.v = theirs;
    return e;
  });
  client_thread.join();
  ASSERT_TRUE(got.has_value());
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kInvalid);
  EXPECT_EQ(reply.status().message(),
            "herd-ctld speaks protocol " + std::to_string(theirs) + ", this herd speaks " +
                std::to_string(proto::kProtocolVersion) +
                ": use the herd that matches the cluster (herd, herd-noded and herd-ctld must "
                "come from releases that speak the same protocol)");
  EXPECT_LT(elapsed, milliseconds(kWaitMs / 2)) << "the call waited for its timeout";
}

// The other direction: a request in another version gets an error reply that names both.
TEST(NetTest, RequestInAnotherProtocolVersionIsAnsweredWithAnError) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  Result<proto::Envelope> reply = Internal("not run");
  std::atomic<bool> done{false};
  std::thread client_thread([&] {
    net::Client client(server->Endpoints().at(0), MakeAuth("none"), kWaitMs);
    proto::Envelope request = proto::MakeEnvelope(proto::NodesRequest{});
    request.v = proto::kProtocolVersion + 1;
    reply = client.CallRaw(request);
    done = true;
  });
  for (auto deadline = Clock::now() + milliseconds(kWaitMs); !done && Clock::now() < deadline;) {
    EXPECT_TRUE(server->Poll(50).empty()) << "a request in another version was delivered";
  }
  client_thread.join();
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kInvalid);
  EXPECT_EQ(reply.status().message(),
            "protocol version " + std::to_string(proto::kProtocolVersion + 1) +
                " not supported (this herd speaks " + std::to_string(proto::kProtocolVersion) +
                "): upgrade herd so that the CLI, herd-ctld and herd-noded match");
}

// ---- herd's own DEALER ----

std::string TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/herd-net-XXXXXX";
  EXPECT_NE(mkdtemp(dir.data()), nullptr);
  return dir;
}

// What the server and the dealer received while Pump ran them in turn.
struct Pumped {
  std::vector<net::Incoming> at_server;
  std::vector<proto::Envelope> at_dealer;
};

// Runs `server` and `dealer` in turn, in this thread, until `done` says so or kWaitMs passes.
bool Pump(net::Server& server, net::Dealer& dealer, Pumped& p,
          const std::function<bool(const Pumped&)>& done) {
  for (auto deadline = Clock::now() + milliseconds(kWaitMs); Clock::now() < deadline;) {
    for (auto& in : server.Poll(5)) p.at_server.push_back(std::move(in));
    while (auto e = dealer.Receive(0)) p.at_dealer.push_back(std::move(*e));
    if (done(p)) return true;
  }
  return false;
}

// The DEALER speaks ZMTP as libzmq does: a libzmq ROUTER, over TCP and a Unix socket, takes its
// routing id from its READY and gets the message; the reply comes back.
TEST(DealerTest, TalksToALibzmqRouter) {
  const std::string dir = TempDir();
  zmq::context_t context(1);
  for (const std::string& bind :
       std::vector<std::string>{"tcp://127.0.0.1:*", "ipc://" + dir + "/router.sock"}) {
    SCOPED_TRACE(bind);
    zmq::socket_t router(context, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    router.bind(bind);
    const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
    auto dealer = net::Dealer::Connect(endpoint, "node-a");
    ASSERT_TRUE(dealer.ok()) << dealer.status().message();
    ASSERT_TRUE((*dealer)->Send(proto::MakeEnvelope(proto::NodesRequest{}, 9)).ok());
    std::vector<zmq::message_t> frames;
    for (auto deadline = Clock::now() + milliseconds(kWaitMs);
         frames.empty() && Clock::now() < deadline;) {
      EXPECT_FALSE((*dealer)->Receive(0).has_value());  // its turn to connect and write
      zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, milliseconds(5)) <= 0) continue;
      (void)zmq::recv_multipart(router, std::back_inserter(frames));
    }
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].to_string(), "node-a");
    auto request = proto::DecodeEnvelope(frames[1].to_string_view());
    ASSERT_TRUE(request.ok()) << request.status().message();
    EXPECT_EQ(request->id, 9u);
    const std::string reply = proto::EncodeEnvelope(proto::MakeEnvelope(proto::NodesReply{}, 9));
    router.send(zmq::buffer(std::string("node-a")), zmq::send_flags::sndmore);
    router.send(zmq::buffer(reply));
    auto got = (*dealer)->Receive(kWaitMs);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->type, proto::MessageName<proto::NodesReply>());
    EXPECT_EQ(got->id, 9u);
  }
  std::filesystem::remove_all(dir);
}

// What is sent while nothing listens waits, and arrives once, in order, when the server is up.
TEST(DealerTest, WhatWasSentBeforeTheServerListensArrivesOnceItDoes) {
  const std::string dir = TempDir();
  const std::string endpoint = "ipc://" + dir + "/ctld.sock";
  auto dealer = net::Dealer::Connect(endpoint);
  ASSERT_TRUE(dealer.ok()) << dealer.status().message();
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE((*dealer)->Send(proto::MakeEnvelope(proto::NodesRequest{}, id)).ok());
  }
  EXPECT_FALSE((*dealer)->Receive(250).has_value());  // a few attempts, all refused
  auto server = net::Server::Bind({endpoint});
  ASSERT_TRUE(server.ok()) << server.status().message();
  Pumped p;
  EXPECT_TRUE(Pump(**server, **dealer, p, [](const Pumped& p) { return p.at_server.size() >= 3; }));
  // Nothing more comes (no message twice).
  Pump(**server, **dealer, p, [start = Clock::now()](const Pumped&) {
    return Clock::now() - start > milliseconds(300);
  });
  ASSERT_EQ(p.at_server.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(p.at_server[i].envelope.id, i + 1);
  server->reset();
  std::filesystem::remove_all(dir);
}

// herd-ctld pings a silent connection and drops it if no PONG comes: a DEALER whose owner waits
// (in WaitAny, as `herd attach` does) answers, so the connection lives and the late reply arrives.
TEST(DealerTest, AnswersTheServersPingsWhileItsOwnerWaits) {
  net::ServerLimits limits;
  limits.message_timeout_ms = 200;  // a PING after 100 ms of silence, dropped 100 ms later
  auto server = net::Server::Bind({"tcp://127.0.0.1:*"}, limits);
  ASSERT_TRUE(server.ok()) << server.status().message();
  auto dealer = net::Dealer::Connect((*server)->Endpoints().at(0));
  ASSERT_TRUE(dealer.ok()) << dealer.status().message();
  std::vector<std::string> peers;
  std::atomic<bool> stop{false};
  std::thread serve([&] {
    std::optional<net::Incoming> first;
    Clock::time_point got_at;
    while (!stop) {
      for (auto& in : (*server)->Poll(10)) {
        peers.push_back(in.peer);
        if (!first) {
          first = std::move(in);
          got_at = Clock::now();
          (*server)->Watch(first->peer);
        }
      }
      // Answered after five of the server's silences: the dealer must have answered its PINGs.
      if (first && Clock::now() - got_at > milliseconds(1000)) {
        (*server)->Send(first->peer, proto::MakeEnvelope(proto::NodesReply{}, first->envelope.id));
        first.reset();
        got_at = Clock::time_point::max();
      }
    }
  });
  ASSERT_TRUE((*dealer)->Send(proto::MakeEnvelope(proto::NodesRequest{}, 4)).ok());
  std::vector<size_t> ready;
  for (auto deadline = Clock::now() + milliseconds(kWaitMs);
       ready.empty() && Clock::now() < deadline;) {
    ready = net::WaitAny({dealer->get()}, 1000);
  }
  stop = true;
  serve.join();
  ASSERT_EQ(ready, std::vector<size_t>{0});
  auto reply = (*dealer)->Receive(0);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->id, 4u);
  EXPECT_EQ(peers.size(), 1u);
  EXPECT_TRUE((*server)->TakeClosed().empty()) << "the server dropped the connection";
}

// A connection the server closed while the DEALER was idle is seen at the next send, which goes
// out on a new connection.
TEST(DealerTest, ReconnectsWhenTheServerClosedAnIdleConnection) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  auto dealer = net::Dealer::Connect(server->Endpoints().at(0));
  ASSERT_TRUE(dealer.ok()) << dealer.status().message();
  ASSERT_TRUE((*dealer)->Send(proto::MakeEnvelope(proto::NodesRequest{}, 1)).ok());
  Pumped p;
  ASSERT_TRUE(Pump(*server, **dealer, p, [](const Pumped& p) { return !p.at_server.empty(); }));
  const std::string first_peer = p.at_server[0].peer;
  server->Disconnect(first_peer);
  // The end of the connection reaches the dealer's socket before the next send.
  pollfd idle{(*dealer)->Fd(), POLLIN, 0};
  ASSERT_EQ(poll(&idle, 1, kWaitMs), 1);
  ASSERT_TRUE((*dealer)->Send(proto::MakeEnvelope(proto::NodesRequest{}, 2)).ok());
  ASSERT_TRUE(Pump(*server, **dealer, p, [](const Pumped& p) { return p.at_server.size() >= 2; }));
  EXPECT_EQ(p.at_server[1].envelope.id, 2u);
  EXPECT_NE(p.at_server[1].peer, first_peer);
  server->Send(p.at_server[1].peer, proto::MakeEnvelope(proto::NodesReply{}, 2));
  ASSERT_TRUE(Pump(*server, **dealer, p, [](const Pumped& p) { return !p.at_dealer.empty(); }));
  EXPECT_EQ(p.at_dealer[0].id, 2u);
}

// A message from the server longer than the DEALER's limit ends the connection at the frame's
// header; it is never delivered.
TEST(DealerTest, AMessageOverItsLimitDropsTheConnection) {
  auto server = BindLoopback();
  ASSERT_TRUE(server);
  auto dealer = net::Dealer::Connect(server->Endpoints().at(0), "", /*max_message_bytes=*/1024);
  ASSERT_TRUE(dealer.ok()) << dealer.status().message();
  ASSERT_TRUE((*dealer)->Send(proto::MakeEnvelope(proto::NodesRequest{}, 1)).ok());
  Pumped p;
  ASSERT_TRUE(Pump(*server, **dealer, p, [](const Pumped& p) { return !p.at_server.empty(); }));
  const std::string peer = p.at_server[0].peer;
  server->Watch(peer);
  server->Send(peer, proto::MakeEnvelope(
                         proto::ErrorReply{static_cast<int>(Code::kInvalid), std::string(4096, 'x')},
                         1));
  std::vector<std::string> closed;
  Pump(*server, **dealer, p, [&](const Pumped&) {
    for (auto& c : server->TakeClosed()) closed.push_back(c);
    return !closed.empty();
  });
  EXPECT_EQ(closed, std::vector<std::string>{peer});
  EXPECT_TRUE(p.at_dealer.empty());
  // It connects again, and a message within the limit gets through.
  ASSERT_TRUE((*dealer)->Send(proto::MakeEnvelope(proto::NodesRequest{}, 2)).ok());
  ASSERT_TRUE(Pump(*server, **dealer, p, [](const Pumped& p) { return p.at_server.size() >= 2; }));
  server->Send(p.at_server[1].peer, proto::MakeEnvelope(proto::NodesReply{}, 2));
  ASSERT_TRUE(Pump(*server, **dealer, p, [](const Pumped& p) { return !p.at_dealer.empty(); }));
  EXPECT_EQ(p.at_dealer[0].id, 2u);
}

// Endpoints that cannot be connected to are refused at once, saying what form is expected.
TEST(DealerTest, BadEndpointsAreRefusedWithTheFormExpected) {
  for (const std::string bad : {"udp://x:1", "tcp://127.0.0.1", "tcp://*:6817", "ipc://"}) {
    auto dealer = net::Dealer::Connect(bad);
    ASSERT_FALSE(dealer.ok()) << bad;
    EXPECT_EQ(dealer.status().code(), Code::kInvalid) << bad;
    EXPECT_NE(dealer.status().message().find("cannot connect to " + bad), std::string::npos)
        << dealer.status().message();
  }
}

}  // namespace
}  // namespace herd
