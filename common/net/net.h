// ZeroMQ transport: a ROUTER server for herd-ctld, and a DEALER for herd-noded and the CLI.
// Each ZeroMQ message is multipart [identity (router side)] + one frame holding an encoded
// proto::Envelope. cppzmq exceptions never leave this module.
// Thread-safety: each object is used by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/auth/auth.h"
#include "common/proto/codec.h"
#include "common/util/status.h"

namespace herd::net {

// One message received by the server: who sent it and what.
struct Incoming {
  std::string peer;          // ZeroMQ routing identity of the connection (random per connection)
  proto::Envelope envelope;  // decoded; undecodable frames are answered with an error and dropped
};

// What the server holds for any one peer, whoever it is (bounded before authentication).
struct ServerLimits {
  // A peer that declares a longer frame is disconnected at the frame's header.
  int64_t max_message_bytes = proto::kMaxMessageBytes;
  // A peer that completes no message (nor answers the transport's ping) for this long is
  // disconnected, and with it any partial message: the deadline of a slow partial message.
  int message_timeout_ms = 30'000;
};

class Server {
 public:
  // Binds a ROUTER to every endpoint ("tcp://127.0.0.1:6817", "ipc:///run/herd/ctld.sock").
  static Result<std::unique_ptr<Server>> Bind(const std::vector<std::string>& endpoints,
                                              const ServerLimits& limits = {});
  virtual ~Server() = default;
  // Waits up to timeout_ms for messages, then returns every message already queued (a batch).
  // Malformed frames get an ErrorReply sent back and are not returned.
  virtual std::vector<Incoming> Poll(int timeout_ms) = 0;
  // Sends `e` to `peer`. Dropped silently if the peer is gone.
  virtual void Send(const std::string& peer, const proto::Envelope& e) = 0;
  // Endpoints actually bound (tcp://...:* resolved to its port).
  virtual std::vector<std::string> Endpoints() const = 0;
  // File descriptor that becomes readable when messages may be waiting (for an outer poll).
  virtual int Fd() const = 0;
};

// A ZeroMQ context (one I/O thread) that many Dealers of one process share, as
// herd-noded-emulator's thousands of nodes do; a Dealer without one owns its own.
class Context {
 public:
  // max_sockets: how many sockets it may hold at once (ZeroMQ's default is 1023).
  static std::shared_ptr<Context> Create(int max_sockets);
  virtual ~Context() = default;
};

// A DEALER connected to the controller. identity: routing id ("" = random).
// max_message_bytes: a longer message from the controller drops the connection.
class Dealer {
 public:
  static Result<std::unique_ptr<Dealer>> Connect(
      const std::string& endpoint, const std::string& identity,
      std::shared_ptr<Context> context = nullptr,
      int64_t max_message_bytes = proto::kMaxMessageBytes);
  virtual ~Dealer() = default;
  virtual Status Send(const proto::Envelope& e) = 0;
  // Next message within timeout_ms, or nullopt on timeout. Malformed frames are skipped; one in
  // another protocol version comes back as an ErrorReply with id 0 that names both versions.
  virtual std::optional<proto::Envelope> Receive(int timeout_ms) = 0;
  virtual int Fd() const = 0;
};

// Waits up to timeout_ms until one of `dealers` has a message queued, or one of `fds` (plain
// descriptors, e.g. pipes) is readable, and returns the indexes of the dealers that have a
// message (level-triggered, unlike polling their Fd()s); an empty list on timeout.
std::vector<size_t> WaitAny(const std::vector<Dealer*>& dealers, int timeout_ms,
                            const std::vector<int>& fds = {});

// Ok, or the Status an ErrorReply `reply` carries (code and message as herd-ctld sent them).
Status ReplyStatus(const proto::Envelope& reply);

// Request/reply client for the CLI: attaches a credential, waits for the reply with the same id,
// turns an ErrorReply into a Status with its code and message, and a timeout into kUnavailable
// "no answer from herd-ctld at ENDPOINT within Ns: is it running? (check HERD_CONFIG / --controller)".
class Client {
 public:
  Client(std::string endpoint, std::unique_ptr<auth::Authenticator> auth, int timeout_ms);
  ~Client();

  template <typename Req, typename Rep>
  Result<Rep> Call(const Req& request) {
    auto reply = CallRaw(proto::MakeEnvelope(request));
    if (!reply.ok()) return reply.status();
    return proto::BodyOf<Rep>(*reply);
  }
  // Sends `request` (credential filled in) and returns the matching reply envelope.
  Result<proto::Envelope> CallRaw(proto::Envelope request);

  // Pipelining: Post sends `request` (credential filled in) without waiting and returns its id,
  // so many requests can be in flight on the one connection; NextReply returns the next reply to
  // any of them (match it by id; ReplyStatus turns an ErrorReply into its Status). A timeout
  // drops the connection, and with it every reply still due. Do not mix with Call in flight.
  Result<uint64_t> Post(proto::Envelope request);
  Result<proto::Envelope> NextReply();

 private:
  Result<proto::Envelope> NextReply(std::chrono::steady_clock::time_point deadline);

  std::string endpoint_;
  std::unique_ptr<auth::Authenticator> auth_;
  int timeout_ms_;
  std::unique_ptr<Dealer> dealer_;
  uint64_t next_id_ = 1;
};

}  // namespace herd::net
