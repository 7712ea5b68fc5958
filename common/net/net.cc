#include "common/net/net.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace herd::net {
namespace {

using Clock = std::chrono::steady_clock;

// What a Dealer hands its caller for a message from herd-ctld in another protocol version: the
// message cannot be read, but its version says why no answer will ever be, so the caller stops.
proto::Envelope VersionMismatch(int64_t theirs) {
  return proto::MakeEnvelope(proto::ErrorReply{
      static_cast<int>(Code::kInvalid),
      "herd-ctld speaks protocol " + std::to_string(theirs) + ", this herd speaks " +
          std::to_string(proto::kProtocolVersion) +
          ": use the herd that matches the cluster (herd, herd-noded and herd-ctld must come "
          "from releases that speak the same protocol)"});
}

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits until `socket` is readable or timeout_ms passes (negative: forever). EINTR counts as
// a timeout so that a signal reaches the caller's loop.
bool WaitReadable(zmq::socket_t& socket, int timeout_ms) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  try {
    return zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) > 0;
  } catch (const zmq::error_t&) {
    return false;
  }
}

// Receives one whole multipart message if one is queued, never blocking.
bool TryReceive(zmq::socket_t& socket, std::vector<zmq::message_t>& frames) {
  frames.clear();
  try {
    return zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait)
        .has_value();
  } catch (const zmq::error_t&) {
    return false;
  }
}

class ZmqContext : public Context {
 public:
  explicit ZmqContext(int max_sockets) { context.set(zmq::ctxopt::max_sockets, max_sockets); }
  zmq::context_t context{1};
};

class ZmqDealer : public Dealer {
 public:
  ZmqDealer(std::string endpoint, std::shared_ptr<Context> context)
      : endpoint_(std::move(endpoint)),
        context_(context ? std::move(context) : std::make_shared<ZmqContext>(1023)),
        socket_(static_cast<ZmqContext&>(*context_).context, zmq::socket_type::dealer) {}

  Status Connect(const std::string& identity, int64_t max_message_bytes) {
    try {
      if (!identity.empty()) socket_.set(zmq::sockopt::routing_id, identity);
      socket_.set(zmq::sockopt::linger, 0);
      socket_.set(zmq::sockopt::maxmsgsize, max_message_bytes);
      socket_.set(zmq::sockopt::reconnect_ivl, 100);
      fd_ = socket_.get(zmq::sockopt::fd);
      socket_.connect(endpoint_);
    } catch (const zmq::error_t& e) {
      return Invalid("cannot connect to " + endpoint_ + ": " + e.what());
    }
    return Status::Ok();
  }

  Status Send(const proto::Envelope& e) override {
    try {
      if (socket_.send(zmq::buffer(proto::EncodeEnvelope(e)), zmq::send_flags::dontwait)) {
        return Status::Ok();
      }
      return Unavailable("cannot send to " + endpoint_ + ": its queue is full");
    } catch (const zmq::error_t& err) {
      return Unavailable("cannot send to " + endpoint_ + ": " + err.what());
    }
  }

  std::optional<proto::Envelope> Receive(int timeout_ms) override {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    std::vector<zmq::message_t> frames;
    do {
      while (TryReceive(socket_, frames)) {
        if (frames.size() != 1) continue;
        int64_t version = proto::kProtocolVersion;
        auto envelope = proto::DecodeEnvelope(frames[0].to_string_view(), &version);
        if (envelope.ok()) return std::move(*envelope);
        if (version != proto::kProtocolVersion) return VersionMismatch(version);
      }
    } while (WaitReadable(socket_, RemainingMs(deadline)) || RemainingMs(deadline) > 0);
    return std::nullopt;
  }

  int Fd() const override { return fd_; }
  zmq::socket_t& socket() { return socket_; }

 private:
  std::string endpoint_;
  std::shared_ptr<Context> context_;  // outlives socket_
  zmq::socket_t socket_;
  int fd_ = -1;
};

}  // namespace

std::shared_ptr<Context> Context::Create(int max_sockets) {
  return std::make_shared<ZmqContext>(max_sockets);
}

Result<std::unique_ptr<Dealer>> Dealer::Connect(const std::string& endpoint,
                                                const std::string& identity,
                                                std::shared_ptr<Context> context,
                                                int64_t max_message_bytes) {
  if (context) {
    try {
      auto dealer = std::make_unique<ZmqDealer>(endpoint, std::move(context));
      HERD_RETURN_IF_ERROR(dealer->Connect(identity, max_message_bytes));
      return std::unique_ptr<Dealer>(std::move(dealer));
    } catch (const zmq::error_t& e) {  // EMFILE: the context's max_sockets is reached
      return Unavailable("cannot open a socket to " + endpoint + ": " + e.what());
    }
  }
  auto dealer = std::make_unique<ZmqDealer>(endpoint, nullptr);
  HERD_RETURN_IF_ERROR(dealer->Connect(identity, max_message_bytes));
  return std::unique_ptr<Dealer>(std::move(dealer));
}

std::vector<size_t> WaitAny(const std::vector<Dealer*>& dealers, int timeout_ms,
                            const std::vector<int>& fds, const std::vector<int>& writable_fds) {
  std::vector<zmq::pollitem_t> items;
  items.reserve(dealers.size() + fds.size() + writable_fds.size());
  for (Dealer* d : dealers) {
    // Another Dealer (a test's, in memory) is waited on through its Fd(); a negative one is
    // never ready.
    if (auto* z = dynamic_cast<ZmqDealer*>(d); z != nullptr) {
      items.push_back({z->socket().handle(), 0, ZMQ_POLLIN, 0});
    } else {
      items.push_back({nullptr, d->Fd(), ZMQ_POLLIN, 0});
    }
  }
  for (int fd : fds) items.push_back({nullptr, fd, ZMQ_POLLIN, 0});
  for (int fd : writable_fds) items.push_back({nullptr, fd, ZMQ_POLLOUT, 0});
  std::vector<size_t> ready;
  try {
    if (zmq::poll(items, std::chrono::milliseconds(timeout_ms)) <= 0) return ready;
  } catch (const zmq::error_t&) {
    return ready;  // EINTR: the caller's loop sees the signal
  }
  for (size_t i = 0; i < dealers.size(); ++i) {
    if (items[i].revents & ZMQ_POLLIN) ready.push_back(i);
  }
  return ready;
}

Client::Client(std::string endpoint, std::unique_ptr<auth::Authenticator> auth, int timeout_ms)
    : endpoint_(std::move(endpoint)), auth_(std::move(auth)), timeout_ms_(timeout_ms) {}

Client::~Client() = default;

Status ReplyStatus(const proto::Envelope& reply) {
  if (reply.type != proto::MessageName<proto::ErrorReply>()) return Status::Ok();
  auto error = proto::BodyOf<proto::ErrorReply>(reply);
  if (!error.ok()) return error.status();
  bool known = error->code > static_cast<int>(Code::kOk) &&
               error->code <= static_cast<int>(Code::kNoConnectionKey);
  return Status(known ? static_cast<Code>(error->code) : Code::kInternal, error->message);
}

Result<proto::Envelope> Client::CallRaw(proto::Envelope request) {
  auto id = Post(std::move(request));
  if (!id.ok()) return id.status();
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  for (;;) {
    auto reply = NextReply(deadline);
    if (!reply.ok()) return reply.status();
    bool is_error = reply->type == proto::MessageName<proto::ErrorReply>();
    if (reply->id != *id && !(is_error && reply->id == 0)) continue;  // a stale reply
    HERD_RETURN_IF_ERROR(ReplyStatus(*reply));
    return reply;
  }
}

Result<uint64_t> Client::Post(proto::Envelope request) {
  request.id = next_id_++;
  const uint64_t id = request.id;
  HERD_RETURN_IF_ERROR(SignAndSend(std::move(request), 0));
  return id;
}

void Client::UseConnectionKeys() {
  use_keys_ = auth_ != nullptr && std::string_view(auth_->Name()) == "munge";
}

Status Client::SignAndSend(proto::Envelope request, int resent) {
  if (!dealer_) {
    auto dealer = Dealer::Connect(endpoint_, "");
    if (!dealer.ok()) return dealer.status();
    dealer_ = std::move(*dealer);
  }
  // Asked for once per connection, ahead of the request: until the answer comes, requests keep
  // their MUNGE credentials, so nothing waits for it.
  if (use_keys_ && !key_) HERD_RETURN_IF_ERROR(OpenKey());
  if (key_ && key_->ready()) {
    auto cred = key_->Sign(request.type, request.id, request.body);
    if (cred.ok()) {
      keyed_[request.id] = Keyed{request, key_generation_, resent};
      request.cred = std::move(*cred);
      return dealer_->Send(request);
    }
    use_keys_ = false;  // the key is spent (2^64 requests): MUNGE from now on
    key_.reset();
  }
  if (auth_) {
    auto cred = auth_->Credential(auth::MessageBinding(request.type, request.id, request.body));
    if (!cred.ok()) return cred.status();
    request.cred = std::move(*cred);
  }
  return dealer_->Send(request);
}

Status Client::OpenKey() {
  key_ = std::make_unique<auth::ConnectionKeyClient>();
  ++key_generation_;
  proto::Envelope ask =
      proto::MakeEnvelope(proto::ConnectionKeyRequest{key_->public_key()}, next_id_++);
  auto cred = auth_->Credential(auth::MessageBinding(ask.type, ask.id, ask.body));
  if (!cred.ok()) return cred.status();
  ask.cred = std::move(*cred);
  HERD_RETURN_IF_ERROR(dealer_->Send(ask));
  key_request_ = ask.id;
  return Status::Ok();
}

void Client::TakeKeyAnswer(const proto::Envelope& reply) {
  key_request_ = 0;
  auto answer = proto::BodyOf<proto::ConnectionKeyReply>(reply);
  if (!answer.ok() || !key_->Accept(answer->server_public).ok()) {
    // A herd-ctld that does not know connection keys (or refused this one): MUNGE as before.
    use_keys_ = false;
    key_.reset();
  }
}

void Client::DropConnection() {
  dealer_.reset();
  key_.reset();
  key_request_ = 0;
  keyed_.clear();
  held_.clear();
  undelivered_.clear();
}

Result<proto::Envelope> Client::NextReply() {
  return NextReply(Clock::now() + std::chrono::milliseconds(timeout_ms_));
}

Result<proto::Envelope> Client::NextReply(Clock::time_point deadline) {
  // How often one request is sent again for want of a key: more means the connection keeps
  // breaking, and the caller hears of it.
  constexpr int kMaxResends = 3;
  while (dealer_) {
    if (!undelivered_.empty()) {
      proto::Envelope reply = std::move(undelivered_.front());
      undelivered_.pop_front();
      return reply;
    }
    auto reply = dealer_->Receive(RemainingMs(deadline));
    if (!reply) break;
    if (key_request_ != 0 && reply->id == key_request_) {
      TakeKeyAnswer(*reply);
      std::vector<Held> held = std::move(held_);
      held_.clear();
      for (Held& h : held) {
        if (key_ && key_->ready()) {
          HERD_RETURN_IF_ERROR(SignAndSend(std::move(h.sent.request), h.sent.resent + 1));
        } else {
          // herd-ctld refused a new key: the connection still holds one, so the refusal did not
          // come from herd-ctld (and the request may have been applied). Said, not sent again.
          undelivered_.push_back(std::move(h.refusal));
        }
      }
      continue;
    }
    auto it = keyed_.find(reply->id);
    if (it == keyed_.end()) return std::move(*reply);
    Keyed sent = std::move(it->second);
    keyed_.erase(it);
    if (ReplyStatus(*reply).code() != Code::kNoConnectionKey || sent.resent >= kMaxResends ||
        !use_keys_) {
      return std::move(*reply);
    }
    // Its connection is new and holds no key, so herd-ctld did not apply it: it is sent again
    // once a new key is open on the connection. The key that signed it is dead (older keys were
    // replaced already).
    if (sent.generation == key_generation_ && key_ && key_->ready()) key_.reset();
    // Refused under an older key while a newer one is open: herd-ctld answers a connection in
    // order, so its refusals came before the new key's answer. Not sent again.
    if (key_ && key_->ready()) return std::move(*reply);
    held_.push_back(Held{std::move(sent), std::move(*reply)});
    if (!key_) HERD_RETURN_IF_ERROR(OpenKey());
  }
  // Drop the socket and its queue: a request reported as failed must not reach the server later.
  DropConnection();
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%g", timeout_ms_ / 1000.0);
  return Unavailable("no answer from herd-ctld at " + endpoint_ + " within " + seconds +
                     "s: is it running? (check HERD_CONFIG / --controller)");
}

}  // namespace herd::net
