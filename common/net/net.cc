#include "common/net/net.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

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

}  // namespace

std::optional<proto::Envelope> DecodeFromController(std::string_view frame) {
  int64_t version = proto::kProtocolVersion;
  auto envelope = proto::DecodeEnvelope(frame, &version);
  if (envelope.ok()) return std::move(*envelope);
  if (version != proto::kProtocolVersion) return VersionMismatch(version);
  return std::nullopt;
}

std::vector<size_t> WaitAny(const std::vector<Dealer*>& dealers, int timeout_ms,
                            const std::vector<int>& fds, const std::vector<int>& writable_fds) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  std::vector<pollfd> items(dealers.size() + fds.size() + writable_fds.size());
  std::vector<size_t> ready;
  for (;;) {
    int wait = RemainingMs(deadline);
    if (wait == 0 && Clock::now() < deadline) wait = 1;  // RemainingMs rounds down
    for (size_t i = 0; i < dealers.size(); ++i) {
      if (dealers[i]->PrepareWait(items[i], wait)) ready.push_back(i);
    }
    if (!ready.empty()) return ready;
    for (size_t i = 0; i < fds.size(); ++i) items[dealers.size() + i] = {fds[i], POLLIN, 0};
    for (size_t i = 0; i < writable_fds.size(); ++i) {
      items[dealers.size() + fds.size() + i] = {writable_fds[i], POLLOUT, 0};
    }
    const int n = poll(items.data(), items.size(), wait);
    if (n < 0 && errno == EINTR) return ready;  // the caller's loop sees the signal
    for (size_t i = 0; i < dealers.size(); ++i) {
      if (dealers[i]->AfterWait(n > 0 ? items[i].revents : 0)) ready.push_back(i);
    }
    if (!ready.empty()) return ready;
    for (size_t i = dealers.size(); i < items.size() && n > 0; ++i) {
      if (items[i].revents != 0) return ready;
    }
    if (Clock::now() >= deadline) return ready;
  }
}

Client::Client(std::string endpoint, std::unique_ptr<auth::Authenticator> auth, int timeout_ms)
    : endpoint_(std::move(endpoint)), auth_(std::move(auth)), timeout_ms_(timeout_ms) {}

Client::~Client() = default;

Status ReplyStatus(const proto::Envelope& reply) {
  if (reply.type != proto::MessageName<proto::ErrorReply>()) return Status::Ok();
  auto error = proto::BodyOf<proto::ErrorReply>(reply);
  if (!error.ok()) return error.status();
  bool known = error->code > static_cast<int>(Code::kOk) &&
               error->code <= static_cast<int>(Code::kBadToken);
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
    auto dealer = Dealer::Connect(endpoint_);
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
