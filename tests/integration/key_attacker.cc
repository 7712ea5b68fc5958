// key_attacker: a client of herd-ctld that holds a connection key of its own (its own MUNGE
// credential opened it) and misuses it, run by the connection key tests as an unprivileged user.
// Prints what happened on one line; exit status 0 when herd-ctld refused as it must, 1 when it
// took what it must refuse, 2 when the attack could not be set up.
//   key_attacker MODE ENDPOINT MUNGE_SOCKET
//   replay   a submit signed with the key is taken; the same message sent again must be refused
//   tamper   a submit signed with the key, its body changed after signing, must be refused
//   cross    a submit signed with the key of connection A, sent on connection B (which holds no
//            key), must be refused as keyless; on connection C (which holds its own key) it must
//            be refused, and no job made
//   badmac   a submit with a wrong MAC must be refused and the connection closed: the next,
//            correctly signed request finds a connection without a key
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "common/auth/auth.h"
#include "common/auth/connection_key.h"
#include "common/net/net.h"
#include "common/proto/codec.h"
#include "common/proto/messages.h"

namespace herd {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kWaitMs = 10'000;

[[noreturn]] void Fail(int code, const std::string& what) {
  std::printf("%s\n", what.c_str());
  std::exit(code);
}

// One DEALER connection with a socket monitor, so that the test sees herd-ctld close it.
class Connection {
 public:
  Connection(zmq::context_t& context, const std::string& endpoint, int n)
      : socket_(context, zmq::socket_type::dealer), monitor_(context, zmq::socket_type::pair) {
    const std::string address = "inproc://monitor-" + std::to_string(n);
    zmq_socket_monitor(socket_.handle(), address.c_str(),
                       ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    monitor_.connect(address);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }

  void Send(const proto::Envelope& e) {
    const std::string bytes = proto::EncodeEnvelope(e);
    if (!socket_.send(zmq::buffer(bytes), zmq::send_flags::none)) Fail(2, "cannot send");
  }

  std::optional<proto::Envelope> Receive() {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(kWaitMs)) <= 0) return std::nullopt;
    zmq::message_t m;
    if (!socket_.recv(m, zmq::recv_flags::none)) return std::nullopt;
    auto e = proto::DecodeEnvelope(m.to_string_view());
    if (!e.ok()) return std::nullopt;
    return std::move(*e);
  }

  // The reply to `e`, or exit 2 when none comes.
  proto::Envelope Call(const proto::Envelope& e) {
    Send(e);
    auto reply = Receive();
    if (!reply) Fail(2, "no reply from herd-ctld to '" + e.type + "'");
    return std::move(*reply);
  }

  // Waits for the monitor's event `event` (ZMQ_EVENT_*); false after kWaitMs.
  bool WaitFor(int event) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(kWaitMs);
    while (Clock::now() < deadline) {
      zmq::pollitem_t item{monitor_.handle(), 0, ZMQ_POLLIN, 0};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (zmq::poll(&item, 1, left) <= 0) return false;
      zmq::message_t head, address;
      if (!monitor_.recv(head) || !monitor_.recv(address)) return false;
      uint16_t got = 0;
      std::memcpy(&got, head.data(), sizeof got);
      if (got == event) return true;
    }
    return false;
  }

 private:
  zmq::socket_t socket_;
  zmq::socket_t monitor_;
};

class Attacker {
 public:
  Attacker(std::string endpoint, std::unique_ptr<auth::Authenticator> auth)
      : endpoint_(std::move(endpoint)), auth_(std::move(auth)) {}

  std::unique_ptr<Connection> Connect() {
    return std::make_unique<Connection>(context_, endpoint_, next_connection_++);
  }

  // Opens a connection key on `c` with this user's own MUNGE credential.
  std::unique_ptr<auth::ConnectionKeyClient> OpenKey(Connection& c) {
    auto key = std::make_unique<auth::ConnectionKeyClient>();
    proto::Envelope ask =
        proto::MakeEnvelope(proto::ConnectionKeyRequest{key->public_key()}, next_id_++);
    auto cred = auth_->Credential(auth::MessageBinding(ask.type, ask.id, ask.body));
    if (!cred.ok()) Fail(2, "no MUNGE credential: " + cred.status().message());
    ask.cred = *cred;
    proto::Envelope reply = c.Call(ask);
    auto answer = proto::BodyOf<proto::ConnectionKeyReply>(reply);
    if (!answer.ok()) Fail(2, "no connection key: " + net::ReplyStatus(reply).message());
    if (Status s = key->Accept(answer->server_public); !s.ok()) Fail(2, s.message());
    return key;
  }

  // A held submit of `argv`, signed with `key`.
  proto::Envelope SignedSubmit(auth::ConnectionKeyClient& key, const std::string& argv) {
    proto::SubmitRequest req;
    req.spec.argv = {"/bin/echo", argv};
    req.spec.cwd = "/";
    req.spec.hold = true;
    proto::Envelope e = proto::MakeEnvelope(req, next_id_++);
    auto cred = key.Sign(e.type, e.id, e.body);
    if (!cred.ok()) Fail(2, cred.status().message());
    e.cred = *cred;
    return e;
  }

 private:
  zmq::context_t context_{1};
  std::string endpoint_;
  std::unique_ptr<auth::Authenticator> auth_;
  int next_connection_ = 0;
  uint64_t next_id_ = 1;
};

// "taken (job N)" or "refused (CODE): MESSAGE".
std::string Outcome(const proto::Envelope& reply) {
  if (auto job = proto::BodyOf<proto::SubmitReply>(reply); job.ok()) {
    return "taken (job " + std::to_string(job->id) + ")";
  }
  const Status s = net::ReplyStatus(reply);
  return "refused (" + std::to_string(static_cast<int>(s.code())) + "): " + s.message();
}

Code CodeOf(const proto::Envelope& reply) { return net::ReplyStatus(reply).code(); }

int Run(const std::string& mode, Attacker& a) {
  auto c = a.Connect();
  auto key = a.OpenKey(*c);
  if (mode == "replay") {
    const proto::Envelope e = a.SignedSubmit(*key, "once");
    const proto::Envelope first = c->Call(e);
    if (CodeOf(first) != Code::kOk) Fail(2, "the signed submit itself: " + Outcome(first));
    const proto::Envelope again = c->Call(e);
    std::printf("first: %s; replayed: %s\n", Outcome(first).c_str(), Outcome(again).c_str());
    return CodeOf(again) == Code::kDenied ? 0 : 1;
  }
  if (mode == "tamper") {
    proto::Envelope e = a.SignedSubmit(*key, "signed");
    proto::SubmitRequest other;
    other.spec.argv = {"/bin/echo", "tampered"};
    other.spec.cwd = "/";
    other.spec.hold = true;
    e.body = proto::MakeEnvelope(other).body;
    const proto::Envelope reply = c->Call(e);
    std::printf("tampered body: %s\n", Outcome(reply).c_str());
    return CodeOf(reply) == Code::kDenied ? 0 : 1;
  }
  if (mode == "cross") {
    const proto::Envelope e = a.SignedSubmit(*key, "elsewhere");
    auto keyless = a.Connect();
    const proto::Envelope on_keyless = keyless->Call(e);
    auto other = a.Connect();
    auto other_key = a.OpenKey(*other);
    const proto::Envelope on_keyed = other->Call(e);
    std::printf("on a connection without a key: %s; on a connection with its own key: %s\n",
                Outcome(on_keyless).c_str(), Outcome(on_keyed).c_str());
    return CodeOf(on_keyless) == Code::kNoConnectionKey && CodeOf(on_keyed) == Code::kDenied ? 0
                                                                                             : 1;
  }
  if (mode == "badmac") {
    proto::Envelope e = a.SignedSubmit(*key, "badmac");
    char& last = e.cred.back();
    last = last == '0' ? '1' : '0';
    const proto::Envelope reply = c->Call(e);
    const bool closed = c->WaitFor(ZMQ_EVENT_DISCONNECTED);
    // Once the DEALER is connected again, a correctly signed request finds no key there.
    const bool reconnected = closed && c->WaitFor(ZMQ_EVENT_CONNECTED);
    std::string next = "not tried";
    bool keyless = false;
    if (reconnected) {
      const proto::Envelope after = c->Call(a.SignedSubmit(*key, "after"));
      next = Outcome(after);
      keyless = CodeOf(after) == Code::kNoConnectionKey;
    }
    std::printf("wrong MAC: %s; connection closed: %s; next signed request: %s\n",
                Outcome(reply).c_str(), closed ? "yes" : "no", next.c_str());
    return CodeOf(reply) == Code::kDenied && closed && keyless ? 0 : 1;
  }
  Fail(2, "unknown mode " + mode);
}

}  // namespace
}  // namespace herd

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: key_attacker replay|tamper|cross|badmac ENDPOINT MUNGE_SOCKET\n");
    return 2;
  }
  auto auth = herd::auth::MakeAuthenticator("munge", argv[3]);
  if (!auth.ok()) herd::Fail(2, auth.status().message());
  herd::Attacker attacker(argv[2], std::move(*auth));
  return herd::Run(argv[1], attacker);
}
