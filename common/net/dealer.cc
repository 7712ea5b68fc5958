// net::Dealer::Connect: herd's own ZMTP 3.1 DEALER (NULL mechanism) on one non-blocking TCP or Unix
// socket, without a thread: connecting, reading and writing happen inside Send, Receive and
// WaitAny. While the connection is down, messages wait in a bounded queue and the connection is
// tried again every 100 ms; every size the peer declares is checked at the frame's header
// (zmtp::Parser) before its body is held.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>

#include "common/net/address.h"
#include "common/net/net.h"
#include "common/net/zmtp.h"

namespace herd::net {
namespace {

using Clock = std::chrono::steady_clock;

// Between a failed or short-lived connection and the next attempt.
constexpr auto kReconnectInterval = std::chrono::milliseconds(100);
// Messages waiting to be written, all together; Send refuses more.
constexpr int64_t kMaxQueuedBytes = int64_t{64} << 20;
constexpr size_t kReadChunk = 64 << 10;
// Read per call at most: a peer that sends without pause cannot keep the owner's call from
// returning, and what one call adds to the inbox stays bounded.
constexpr size_t kReadPerCall = 1 << 20;
// Queued messages gathered into one write.
constexpr size_t kWriteBatch = 256 << 10;

int CeilMs(Clock::duration d) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 1 << 30));
}

class ZmtpDealer final : public Dealer {
 public:
  ZmtpDealer(std::string endpoint, std::string identity, int64_t max_message_bytes, Address address)
      : endpoint_(std::move(endpoint)),
        identity_(std::move(identity)),
        address_(std::move(address)),
        limits_{max_message_bytes, kMaxFramesPerMessage, 4096},
        parser_(limits_) {}

  ~ZmtpDealer() override {
    if (fd_ >= 0) close(fd_);
  }

  Status Send(const proto::Envelope& e) override {
    const std::string body = proto::EncodeEnvelope(e);
    std::string message = zmtp::FrameHeader(body.size(), false);
    message += body;
    const auto size = static_cast<int64_t>(message.size());
    if (queued_bytes_ + size > kMaxQueuedBytes) {
      return Unavailable("cannot send to " + endpoint_ + ": " + std::to_string(queued_bytes_) +
                         " bytes already wait for the connection (is herd-ctld running?)");
    }
    queued_bytes_ += size;
    queue_.push_back(std::move(message));
    Pump();
    return Status::Ok();
  }

  std::optional<proto::Envelope> Receive(int timeout_ms) override {
    const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    for (;;) {
      Pump();
      if (!inbox_.empty()) {
        proto::Envelope e = std::move(inbox_.front());
        inbox_.pop_front();
        return e;
      }
      int wait = CeilMs(deadline - Clock::now());
      if (wait <= 0) return std::nullopt;
      pollfd p{-1, 0, 0};
      PrepareWait(p, wait);
      poll(&p, 1, wait);  // EINTR: the loop goes on until the deadline, as a timeout would
    }
  }

  int Fd() const override { return fd_; }

  bool PrepareWait(pollfd& p, int& timeout_ms) override {
    if (!inbox_.empty()) return true;
    p.revents = 0;
    if (fd_ < 0) {
      p.fd = -1;
      p.events = 0;
      timeout_ms = std::min(timeout_ms, CeilMs(next_connect_ - Clock::now()));
      return false;
    }
    p.fd = fd_;
    p.events = connecting_ ? POLLOUT : (POLLIN | (HasOutput() ? POLLOUT : 0));
    return false;
  }

  bool AfterWait(short revents) override {
    if (revents != 0 || fd_ < 0) Pump();
    return !inbox_.empty();
  }

 private:
  bool HasOutput() const { return out_offset_ < out_.size() || (peer_ready_ && !queue_.empty()); }

  // Everything that can be done now without blocking: connect, read, write.
  void Pump() {
    if (fd_ < 0 && Clock::now() >= next_connect_) StartConnect();
    if (fd_ >= 0 && connecting_) FinishConnect();
    if (fd_ < 0 || connecting_) return;
    // Reading first: a connection the server closed while idle is seen before anything new is
    // written into it. Nothing is read while the owner has a message to take: the inbox holds at
    // most what one read adds.
    if (inbox_.empty() && !Read()) return;
    Write();
  }

  void StartConnect() {
    connected_at_ = Clock::now();
    fd_ = socket(address_.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      next_connect_ = connected_at_ + kReconnectInterval;
      return;
    }
    if (address_.family != AF_UNIX) {
      const int on = 1;
      setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&address_.addr), address_.len) == 0) {
      Established();
    } else if (errno == EINPROGRESS) {
      connecting_ = true;
    } else {
      Drop();  // refused, no such socket, a full backlog (EAGAIN): tried again later
    }
  }

  void FinishConnect() {
    pollfd p{fd_, POLLOUT, 0};
    if (poll(&p, 1, 0) <= 0) return;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      Drop();
      return;
    }
    connecting_ = false;
    Established();
  }

  // Our greeting and READY go out at once; messages follow once the server's READY arrived (a
  // libzmq ROUTER drops a connection that sends a message before the handshake is complete).
  void Established() {
    out_ = zmtp::Greeting(false) + zmtp::Ready("DEALER", identity_);
    out_offset_ = 0;
  }

  // False when the connection was dropped.
  bool Read() {
    char buf[kReadChunk];
    size_t read_now = 0;
    std::vector<zmtp::Event> events;
    while (read_now < kReadPerCall) {
      const ssize_t k = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
      if (k <= 0) {  // closed by the server (idle, restarted), or reset
        Drop();
        return false;
      }
      read_now += static_cast<size_t>(k);
      events.clear();
      Status parsed = parser_.Feed(std::string_view(buf, static_cast<size_t>(k)), events);
      for (zmtp::Event& e : events) {
        if (!parsed.ok()) break;
        parsed = Handle(e);
      }
      if (!parsed.ok()) {  // a protocol violation or a message past max_message_bytes
        Drop();
        return false;
      }
    }
    return true;
  }

  Status Handle(zmtp::Event& e) {
    switch (e.kind) {
      case zmtp::Event::Kind::kGreeting:
        return Status::Ok();
      case zmtp::Event::Kind::kCommand:
        if (!peer_ready_) {
          if (e.name != "READY") return Invalid("expected READY");
          auto type = zmtp::SocketTypeOfReady(e.data);
          if (!type.ok()) return type.status();
          if (*type != "ROUTER" && *type != "DEALER") return Invalid("not a ROUTER");
          peer_ready_ = true;
          return Status::Ok();
        }
        if (e.name == "PING") {
          // TTL (2 bytes), then a context of at most 16 bytes that the PONG echoes.
          if (e.data.size() < 2 || e.data.size() > 18) return Invalid("malformed PING");
          // At most one answer waits: while anything is unsent the server is not reading, and
          // what waits reaches it before a PONG queued behind it would.
          if (out_offset_ == out_.size()) {
            out_ = zmtp::Command("PONG", std::string_view(e.data).substr(2));
            out_offset_ = 0;
          }
          return Status::Ok();
        }
        if (e.name == "ERROR") return Invalid("the server refused the connection");
        return Status::Ok();  // PONG, or a command of a later ZMTP: nothing to do
      case zmtp::Event::Kind::kMessage:
        if (e.frames.size() != 1) return Status::Ok();  // not herd's: skipped
        if (auto envelope = DecodeFromController(e.frames[0])) {
          inbox_.push_back(std::move(*envelope));
        }
        return Status::Ok();
    }
    return Status::Ok();
  }

  void Write() {
    for (;;) {
      // Whole queued messages join what is under way, up to kWriteBatch in one write.
      while (peer_ready_ && !queue_.empty() &&
             (out_offset_ == out_.size() ||
              out_.size() - out_offset_ + queue_.front().size() <= kWriteBatch)) {
        out_.erase(0, out_offset_);
        out_offset_ = 0;
        queued_bytes_ -= static_cast<int64_t>(queue_.front().size());
        if (out_.empty()) {
          out_ = std::move(queue_.front());
        } else {
          out_ += queue_.front();
        }
        queue_.pop_front();
      }
      if (out_offset_ == out_.size()) {
        out_.clear();
        out_offset_ = 0;
        return;
      }
      const ssize_t k = send(fd_, out_.data() + out_offset_, out_.size() - out_offset_,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
      if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
      if (k < 0) {
        Drop();
        return;
      }
      out_offset_ += static_cast<size_t>(k);
    }
  }

  // Closes the connection. What it had under way is lost (as with any socket that breaks); the
  // messages still queued go out on the next one, tried at once if this one lived long enough (a
  // server that closed an idle connection), else after kReconnectInterval.
  void Drop() {
    const auto now = Clock::now();
    const bool lived = peer_ready_ && now - connected_at_ >= kReconnectInterval;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    connecting_ = false;
    peer_ready_ = false;
    out_.clear();
    out_offset_ = 0;
    parser_ = zmtp::Parser(limits_);
    next_connect_ = lived ? now : now + kReconnectInterval;
  }

  const std::string endpoint_;
  const std::string identity_;
  const Address address_;
  const zmtp::Limits limits_;
  zmtp::Parser parser_;
  int fd_ = -1;
  bool connecting_ = false;  // connect(2) under way
  bool peer_ready_ = false;  // the server's READY arrived
  Clock::time_point connected_at_;
  Clock::time_point next_connect_;  // when fd_ < 0: the next attempt
  std::string out_;                 // bytes for this connection, written from out_offset_
  size_t out_offset_ = 0;
  std::deque<std::string> queue_;  // whole messages not yet handed to a connection
  int64_t queued_bytes_ = 0;
  std::deque<proto::Envelope> inbox_;
};

}  // namespace

Result<std::unique_ptr<Dealer>> Dealer::Connect(const std::string& endpoint,
                                                const std::string& identity,
                                                int64_t max_message_bytes) {
  if (identity.size() > 255) return Invalid("a routing identity has at most 255 bytes");
  auto address = ResolveEndpoint(endpoint, Use::kConnect);
  if (!address.ok()) return address.status();
  auto dealer =
      std::make_unique<ZmtpDealer>(endpoint, identity, max_message_bytes, std::move(*address));
  return std::unique_ptr<Dealer>(std::move(dealer));
}

}  // namespace herd::net
