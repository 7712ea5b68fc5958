// herd's transport. The server side of herd-ctld is herd's own ZMTP 3.0/3.1 ROUTER (NULL
// mechanism, common/net/zmtp.h) on non-blocking TCP and Unix sockets and epoll, run in the
// caller's thread inside Poll/Send. Its clients are DEALERs: herd's own (Dealer::Connect, used by
// the CLI, herd-web and net::Client: no thread, no libzmq), or libzmq's (common/net/net_zmq.h,
// used by herd-noded and herd-noded-emulator).
// It is herd's own because libzmq bounds each frame (ZMQ_MAXMSGSIZE) but neither the frames of
// one message nor the bytes a peer makes it hold before a message completes; a ZMQ_STREAM socket
// would hand herd raw chunks, but it serves tcp:// only, not the ipc:// endpoints herd binds.
// Each message is [identity (router side)] + one frame holding an encoded proto::Envelope.
// Thread-safety: each object is used by one thread.
#pragma once

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/auth/auth.h"
#include "common/auth/connection_key.h"
#include "common/proto/codec.h"
#include "common/util/status.h"

namespace herd::net {

// One message received by the server: who sent it and what.
struct Incoming {
  std::string peer;          // ZeroMQ routing identity of the connection (random per connection)
  proto::Envelope envelope;  // decoded; a peer that sends anything else is disconnected
};

// Frames one message may have (herd's have one); a peer that sends more is disconnected.
constexpr int kMaxFramesPerMessage = 4;

// What the server holds for any peer, whoever it is: every bound holds before authentication.
// Per connection: the partial message (its frames' sum <= max_message_bytes, at most
// kMaxFramesPerMessage frames, checked at each frame's header before its body arrives; no
// message frame before READY; a command frame <= 4 KiB), one 64 KiB read buffer, and unsent
// replies <= max_unsent_bytes (counted as the memory they take). In all: max_connections
// connections (at most a quarter not yet Authenticated), the partial messages of all together
// <= max_buffered_bytes and the unsent replies of all together <= max_unsent_total_bytes; past
// either, the connection holding the most is dropped and every other one goes on being read.
struct ServerLimits {
  // A peer that declares a longer frame or message is disconnected at the frame's header.
  int64_t max_message_bytes = proto::kMaxMessageBytes;
  // A greeting or partial message not completed within this is dropped with its connection; a
  // peer silent for half of it is pinged (ZMTP 3.1 PING) and dropped if still silent after it.
  int message_timeout_ms = 30'000;
  // Open connections at most (lowered, with a warning, to what RLIMIT_NOFILE leaves). A new
  // connection when the table is full, or when a quarter of it is connections not yet
  // Authenticated, takes the place of the oldest of those; if there is none, it is closed.
  int max_connections = 16384;
  // Partial messages of all peers together.
  int64_t max_buffered_bytes = int64_t{256} << 20;
  // Replies waiting for one peer that does not read them; past this it is disconnected. While
  // more than 1 MiB waits, the peer's own requests are not read (and that time counts toward
  // none of its deadlines; it is dropped if it takes nothing for message_timeout_ms).
  int64_t max_unsent_bytes = int64_t{64} << 20;
  // Replies waiting for all peers together.
  int64_t max_unsent_total_bytes = int64_t{1} << 30;
};
class Server {
 public:
  // Listens on every endpoint ("tcp://127.0.0.1:6817", "tcp://*:0", "ipc:///run/herd/ctld.sock",
  // "ipc://@abstract"). The peer of an Incoming is an id of the connection, never reused;
  // a DEALER's own routing id (its Identity) is ignored.
  static Result<std::unique_ptr<Server>> Bind(const std::vector<std::string>& endpoints,
                                              const ServerLimits& limits = {});
  virtual ~Server() = default;
  // Waits up to timeout_ms for messages, then returns every message already queued (a batch).
  // A peer that sends a message that is not one encoded envelope is disconnected unanswered;
  // one in another protocol version gets an ErrorReply naming both versions, then is.
  virtual std::vector<Incoming> Poll(int timeout_ms) = 0;
  // Sends `e` to `peer`. Dropped silently if the peer is gone.
  virtual void Send(const std::string& peer, const proto::Envelope& e) = 0;
  // The owner checked a credential of `peer`: it is no longer among the connections that give
  // way to new ones (see ServerLimits::max_connections).
  virtual void Authenticated(const std::string& /*peer*/) {}
  // Closes the connection of `peer` once the replies already sent to it have gone out; nothing
  // more is read from it.
  virtual void Disconnect(const std::string& /*peer*/) {}
  // The owner keeps something for `peer` until its connection closes: TakeClosed() will say
  // when it did. Unwatched peers are not reported, so an owner that never asks holds nothing.
  virtual void Watch(const std::string& /*peer*/) {}
  // The watched peers whose connections closed since the last call.
  virtual std::vector<std::string> TakeClosed() { return {}; }
  // Endpoints actually bound (tcp://...:* resolved to its port).
  virtual std::vector<std::string> Endpoints() const = 0;
  // File descriptor (an epoll set) that becomes readable when messages may be waiting (for an
  // outer poll); deadlines are kept only inside Poll, so call Poll at least every second.
  virtual int Fd() const = 0;
};

// A DEALER connected to the controller.
class Dealer {
 public:
  // herd's own DEALER (ZMTP 3.1, common/net/dealer.cc): nothing runs between calls; connecting,
  // reading (answering the server's PINGs) and writing happen inside Send, Receive and WaitAny.
  // It connects at the first of those, and again 100 ms after a failed or lost connection (at
  // once after the server closed one that had lived longer); messages sent meanwhile wait
  // (64 MiB at most, then Send fails). identity: routing id sent in READY ("" = none; herd-ctld
  // ignores it). max_message_bytes: a longer message from the server drops the connection
  // (checked at the frame's header).
  static Result<std::unique_ptr<Dealer>> Connect(
      const std::string& endpoint, const std::string& identity = "",
      int64_t max_message_bytes = proto::kMaxMessageBytes);
  virtual ~Dealer() = default;
  virtual Status Send(const proto::Envelope& e) = 0;
  // Next message within timeout_ms, or nullopt on timeout. Malformed frames are skipped; one in
  // another protocol version comes back as an ErrorReply with id 0 that names both versions.
  virtual std::optional<proto::Envelope> Receive(int timeout_ms) = 0;
  // The descriptor of the connection now (-1 while there is none).
  virtual int Fd() const = 0;
  // For WaitAny. True when a message is queued already; else `p` is set to what to poll (fd -1:
  // nothing) and timeout_ms lowered to when the dealer has something to do. By default: Fd()
  // readable.
  virtual bool PrepareWait(pollfd& p, int& /*timeout_ms*/) {
    p = {Fd(), POLLIN, 0};
    return false;
  }
  // After the poll, with what it reported for `p` (0 on timeout): does the I/O that allows, and
  // says whether a message is queued.
  virtual bool AfterWait(short revents) { return (revents & POLLIN) != 0; }
};

// Waits up to timeout_ms until one of `dealers` has a message queued, or one of `fds` (plain
// descriptors, e.g. pipes) is readable, and returns the indexes of the dealers that have a
// message (level-triggered, unlike polling their Fd()s); an empty list on timeout, when a signal
// interrupts it, when only one of `fds` is readable, or when one of `writable_fds` can be written.
std::vector<size_t> WaitAny(const std::vector<Dealer*>& dealers, int timeout_ms,
                            const std::vector<int>& fds = {},
                            const std::vector<int>& writable_fds = {});

// One message from herd-ctld (the one frame of a ZMTP message): its envelope; for a message in
// another protocol version, an ErrorReply with id 0 that names both versions (the caller stops:
// no answer will ever come); nullopt for anything else (skipped).
std::optional<proto::Envelope> DecodeFromController(std::string_view frame);

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

  // For a client with many requests to send (with MUNGE; nothing changes with auth "none"): the
  // first request on each connection is preceded by a ConnectionKeyRequest, and once herd-ctld
  // has answered it the requests are signed with the connection key (common/auth/
  // connection_key.h) instead of one MUNGE credential each. A request refused because its
  // connection holds no key (the transport reconnected) is sent again, with the same id, once a
  // new key is open on that connection; it was not applied. When herd-ctld refuses the new key
  // (the connection still holds one, so the refusal was not herd-ctld's: replies are not signed)
  // the refusal goes to the caller and nothing is sent again. Against a herd-ctld that knows no
  // connection keys, every request keeps its MUNGE credential. Call before the first request.
  void UseConnectionKeys();

 private:
  // A request sent with a connection key, kept until answered: it is sent again if refused for
  // want of a key.
  struct Keyed {
    proto::Envelope request;  // without its credential
    int generation = 0;       // the key that signed it (key_generation_ when sent)
    int resent = 0;
  };
  // A keyed request refused for want of a key, waiting for the new key: sent again once it is
  // open, else its refusal is returned.
  struct Held {
    Keyed sent;
    proto::Envelope refusal;
  };
  Result<proto::Envelope> NextReply(std::chrono::steady_clock::time_point deadline);
  // Sends a ConnectionKeyRequest for a new key (key_, key_request_).
  Status OpenKey();
  // Signs `request` (its id set) with the connection key when there is one, else with a MUNGE
  // credential (first asking for a key when wanted and none is on its way), and sends it.
  Status SignAndSend(proto::Envelope request, int resent);
  // The key's answer (ConnectionKeyReply or an error) to the ConnectionKeyRequest in flight.
  void TakeKeyAnswer(const proto::Envelope& reply);
  // Forgets the socket and what was tied to its connections.
  void DropConnection();

  std::string endpoint_;
  std::unique_ptr<auth::Authenticator> auth_;
  int timeout_ms_;
  std::unique_ptr<Dealer> dealer_;
  uint64_t next_id_ = 1;
  bool use_keys_ = false;
  std::unique_ptr<auth::ConnectionKeyClient> key_;  // agreed, or asked for (key_request_ != 0)
  uint64_t key_request_ = 0;  // id of the ConnectionKeyRequest in flight
  int key_generation_ = 0;    // keys opened so far
  std::map<uint64_t, Keyed> keyed_;  // by request id
  std::vector<Held> held_;
  std::deque<proto::Envelope> undelivered_;  // replies NextReply returns before reading more
};

}  // namespace herd::net
