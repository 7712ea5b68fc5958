// net::Server: herd's own ZMTP 3.x ROUTER over non-blocking TCP and Unix sockets and epoll, so
// that what a peer can make herd-ctld hold is bounded by herd (see net.h), not by libzmq, which
// bounds frames but not the frames of one message.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <list>
#include <unordered_map>

#include "common/net/net.h"
#include "common/net/zmtp.h"

namespace herd::net {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 64 << 10;
// Bytes read from one peer per wakeup, so that one busy peer cannot starve the others.
constexpr size_t kReadPerWakeup = 256 << 10;
// A peer whose replies wait unsent beyond this is not read until it reads them.
constexpr int64_t kPauseReadingAboveUnsent = 1 << 20;
constexpr int kMaxEvents = 256;

std::string Errno(int err) { return std::strerror(err); }

struct Listener {
  int fd = -1;
  std::string endpoint;     // as bound (port resolved)
  std::string unlink_path;  // ipc socket file to remove at the end
};

struct Peer {
  explicit Peer(const zmtp::Limits& limits) : parser(limits) {}
  int fd = -1;
  std::string id;
  zmtp::Parser parser;
  bool greeted = false;  // the peer's greeting arrived (then we sent READY)
  bool ready = false;    // the peer's READY arrived: messages may flow
  int minor_version = 0;
  Clock::time_point accepted;
  Clock::time_point partial_since;  // start of the partial greeting/frame/message under way
  Clock::time_point last_in;        // last bytes received
  bool pinged = false;              // a PING went out since last_in
  bool proven = false;              // completed a message; until then it may be evicted
  std::list<uint64_t>::iterator unproven;
  bool paused = false;              // not read: memory budget spent or replies unread
  bool closed = false;              // fd closed; removed from peers_ by Reap()
  uint32_t events = 0;              // epoll interest now
  std::deque<std::string> out;      // unsent bytes; out.front() from out_offset
  size_t out_offset = 0;
  int64_t out_bytes = 0;
};

class StreamServer : public Server {
 public:
  explicit StreamServer(const ServerLimits& limits) : limits_(limits) {
    zlimits_.max_message_bytes = limits.max_message_bytes;
    zlimits_.max_frames = kMaxFramesPerMessage;
    zlimits_.max_command_bytes = 4096;
    timeout_ = std::chrono::milliseconds(std::max(limits.message_timeout_ms, 2));
    sweep_every_ = std::clamp(timeout_ / 8, std::chrono::milliseconds(5),
                              std::chrono::milliseconds(250));
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    next_sweep_ = Clock::now() + sweep_every_;
  }

  ~StreamServer() override {
    for (auto& [key, p] : peers_) {
      if (!p->closed) close(p->fd);
    }
    for (const Listener& l : listeners_) {
      close(l.fd);
      if (!l.unlink_path.empty()) unlink(l.unlink_path.c_str());
    }
    if (epoll_ >= 0) close(epoll_);
  }

  Status Bind(const std::string& endpoint) {
    if (epoll_ < 0) return Unavailable("epoll_create1: " + Errno(errno));
    Result<Listener> l = endpoint.starts_with("tcp://")   ? BindTcp(endpoint)
                         : endpoint.starts_with("ipc://") ? BindIpc(endpoint)
                                                          : Result<Listener>(Invalid(
                                                                "cannot listen on " + endpoint +
                                                                ": use tcp://HOST:PORT or "
                                                                "ipc://PATH"));
    if (!l.ok()) return l.status();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = listeners_.size();
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, l->fd, &ev) != 0) {
      close(l->fd);
      return Unavailable("cannot listen on " + endpoint + ": epoll: " + Errno(errno));
    }
    listeners_.push_back(std::move(*l));
    return Status::Ok();
  }

  std::vector<Incoming> Poll(int timeout_ms) override {
    std::vector<Incoming> batch;
    const bool forever = timeout_ms < 0;
    const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    epoll_event events[kMaxEvents];
    for (;;) {
      auto now = Clock::now();
      int wait_ms = 0;
      if (batch.empty()) {
        auto until = std::min(next_sweep_, forever ? next_sweep_ : deadline);
        wait_ms = static_cast<int>(std::max<int64_t>(
            0, std::chrono::ceil<std::chrono::milliseconds>(until - now).count()));
      }
      const int n = epoll_wait(epoll_, events, kMaxEvents, wait_ms);
      for (int i = 0; i < n; ++i) {
        const uint64_t key = events[i].data.u64;
        if (key < listeners_.size()) {
          Accept(listeners_[key].fd);
          continue;
        }
        auto it = peers_.find(key);
        if (it == peers_.end() || it->second->closed) continue;  // closed earlier in this batch
        Peer& p = *it->second;
        if (p.paused && (events[i].events & (EPOLLHUP | EPOLLERR))) {
          Close(key);  // gone while not read (epoll reports a hangup whatever we ask for)
          continue;
        }
        if (events[i].events & EPOLLOUT) Flush(key, p);
        if (!p.closed && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
          Read(key, p, batch);
        }
      }
      now = Clock::now();
      if (now >= next_sweep_) Sweep(now);
      Reap();
      if (n == kMaxEvents) continue;  // more may be ready
      if (n < 0 && errno == EINTR) break;  // a signal: let the caller's loop see it
      if (!batch.empty() || (!forever && now >= deadline)) break;
    }
    return batch;
  }

  void Send(const std::string& peer, const proto::Envelope& e) override {
    uint64_t key = 0;
    if (std::from_chars(peer.data(), peer.data() + peer.size(), key).ec != std::errc()) return;
    auto it = peers_.find(key);
    // Gone (or not yet READY): dropped like a lost packet.
    if (it == peers_.end() || it->second->closed || !it->second->ready) return;
    std::string body = proto::EncodeEnvelope(e);
    std::string head = zmtp::FrameHeader(body.size(), false);
    Write(key, *it->second, std::move(head), std::move(body));
  }

  std::vector<std::string> Endpoints() const override {
    std::vector<std::string> out;
    for (const Listener& l : listeners_) out.push_back(l.endpoint);
    return out;
  }
  int Fd() const override { return epoll_; }

 private:
  Result<Listener> BindTcp(const std::string& endpoint) {
    const std::string rest = endpoint.substr(6);
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos) return Invalid("cannot listen on " + endpoint + ": no port");
    std::string host = rest.substr(0, colon);
    std::string port = rest.substr(colon + 1);
    if (port == "*") port = "0";
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_family = host == "*" ? AF_INET : AF_UNSPEC;
    addrinfo* found = nullptr;
    const int gai = getaddrinfo(host == "*" ? nullptr : host.c_str(), port.c_str(), &hints, &found);
    if (gai != 0) {
      return Unavailable("cannot listen on " + endpoint + ": " + gai_strerror(gai));
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, freeaddrinfo);
    const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Unavailable("cannot listen on " + endpoint + ": " + Errno(errno));
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      const int err = errno;
      close(fd);
      return Unavailable("cannot listen on " + endpoint + ": " + Errno(err));
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    char text[INET6_ADDRSTRLEN] = {};
    uint16_t bound_port = 0;
    std::string name;
    if (bound.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&bound);
      inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      bound_port = ntohs(a->sin6_port);
      name = "[" + std::string(text) + "]";
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&bound);
      inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      bound_port = ntohs(a->sin_port);
      name = text;
    }
    return Listener{fd, "tcp://" + name + ":" + std::to_string(bound_port), ""};
  }

  Result<Listener> BindIpc(const std::string& endpoint) {
    const std::string path = endpoint.substr(6);
    const bool abstract = path.starts_with("@");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) {
      return Invalid("cannot listen on " + endpoint + ": the path is empty or too long");
    }
    if (!abstract) {
      std::filesystem::path dir = std::filesystem::path(path).parent_path();
      std::error_code ec;
      if (!dir.empty() && !std::filesystem::is_directory(dir, ec)) {
        return Invalid("cannot listen on " + endpoint + ": directory " + dir.string() +
                       " does not exist");
      }
      unlink(path.c_str());  // a socket file left behind by an earlier run
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (abstract) addr.sun_path[0] = '\0';
    const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                                 (abstract ? 0 : 1));
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Unavailable("cannot listen on " + endpoint + ": " + Errno(errno));
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, SOMAXCONN) != 0) {
      const int err = errno;
      close(fd);
      return Unavailable("cannot listen on " + endpoint + ": " + Errno(err));
    }
    // A Unix socket is open to every local user whatever the umask: who may do what is decided
    // by authentication (MUNGE), not by the socket file's mode.
    if (!abstract && chmod(path.c_str(), 0666) != 0) {
      const int err = errno;
      close(fd);
      return Unavailable("cannot open " + endpoint + " to all users (chmod 0666): " + Errno(err));
    }
    return Listener{fd, endpoint, abstract ? "" : path};
  }

  void Accept(int listen_fd) {
    for (int i = 0; i < 64; ++i) {
      const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) PauseListeners();
        return;
      }
      if (live_ >= limits_.max_connections) {
        // Full: make room by dropping the oldest connection that has not yet completed a
        // message (a half-open handshake costs its sender nothing); else refuse this one.
        if (unproven_.empty()) {
          close(fd);
          continue;
        }
        Close(unproven_.front());
      }
      const int on = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // fails harmlessly on Unix
      const uint64_t key = next_key_++;
      auto p = std::make_unique<Peer>(zlimits_);
      p->fd = fd;
      p->id = std::to_string(key);
      p->accepted = p->partial_since = p->last_in = Clock::now();
      p->unproven = unproven_.insert(unproven_.end(), key);
      p->events = EPOLLIN;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = key;
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        unproven_.erase(p->unproven);
        close(fd);
        continue;
      }
      Peer& peer = *peers_.emplace(key, std::move(p)).first->second;
      ++live_;
      // The whole greeting at once: libzmq sends its greeting in stages and waits for ours.
      Write(key, peer, zmtp::Greeting(), {});
    }
  }

  void Read(uint64_t key, Peer& p, std::vector<Incoming>& batch) {
    char buf[kReadChunk];
    std::vector<zmtp::Event> events;
    size_t read_now = 0;
    while (read_now < kReadPerWakeup) {
      if (!MayRead(p)) {
        Pause(key, p);
        return;
      }
      const ssize_t k = recv(p.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        Close(key);
        return;
      }
      if (k < 0) return;
      read_now += static_cast<size_t>(k);
      const auto now = Clock::now();
      p.last_in = now;
      p.pinged = false;
      const bool was_partial = p.parser.partial();
      const int64_t before = p.parser.buffered();
      events.clear();
      Status parsed = p.parser.Feed(std::string_view(buf, static_cast<size_t>(k)), events);
      buffered_ += p.parser.buffered() - before;
      bool completed = false;
      for (zmtp::Event& e : events) {
        if (!parsed.ok()) break;
        completed = completed || e.kind == zmtp::Event::Kind::kMessage;
        parsed = Handle(key, p, e, batch);
        if (p.closed) return;
      }
      if (!parsed.ok()) {
        Close(key);
        return;
      }
      if (p.parser.partial() && (!was_partial || completed)) p.partial_since = now;
    }
  }

  // One event of a peer; an error closes the connection.
  Status Handle(uint64_t key, Peer& p, zmtp::Event& e, std::vector<Incoming>& batch) {
    switch (e.kind) {
      case zmtp::Event::Kind::kGreeting:
        p.greeted = true;
        p.minor_version = e.minor_version;
        Write(key, p, zmtp::ReadyAsRouter(), {});
        return Status::Ok();
      case zmtp::Event::Kind::kCommand:
        if (!p.ready) {
          if (e.name != "READY") return Invalid("expected READY");
          auto type = zmtp::SocketTypeOfReady(e.data);
          if (!type.ok()) return type.status();
          if (*type != "DEALER") return Invalid("only DEALER peers are served");
          p.ready = true;  // an Identity property is ignored: routing ids are ours
          return Status::Ok();
        }
        if (e.name == "PING") {
          // TTL (2 bytes), then a context of at most 16 bytes that the PONG echoes.
          if (e.data.size() < 2 || e.data.size() > 18) return Invalid("malformed PING");
          Write(key, p, zmtp::Command("PONG", std::string_view(e.data).substr(2)), {});
          return Status::Ok();
        }
        if (e.name == "PONG") return Status::Ok();
        return Invalid("unexpected command");
      case zmtp::Event::Kind::kMessage:
        if (!p.ready) return Invalid("a message before READY");
        if (!p.proven) {
          p.proven = true;
          unproven_.erase(p.unproven);
        }
        if (e.frames.size() != 1) {
          Reject(p, Invalid("malformed message: expected 1 frame, got " +
                            std::to_string(e.frames.size())));
          return Status::Ok();
        }
        auto envelope = proto::DecodeEnvelope(e.frames[0]);
        if (!envelope.ok()) {
          Reject(p, envelope.status());
          return Status::Ok();
        }
        batch.push_back({p.id, std::move(*envelope)});
        return Status::Ok();
    }
    return Status::Ok();
  }

  // The id is unknown (the envelope did not decode), so the reply carries id 0; a Client
  // treats an id-0 error as the answer to its outstanding request.
  void Reject(const Peer& p, const Status& status) {
    Send(p.id, proto::MakeEnvelope(
                   proto::ErrorReply{static_cast<int>(Code::kInvalid), status.message()}));
  }

  // Sends head + body (either may be empty) now as far as the socket takes it; queues the rest.
  // A peer whose unsent bytes pass max_unsent_bytes is dropped.
  void Write(uint64_t key, Peer& p, std::string head, std::string body) {
    if (p.closed) return;
    size_t skip = 0;
    if (p.out.empty()) {
      iovec iov[2] = {{head.data(), head.size()}, {body.data(), body.size()}};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = body.empty() ? 1 : 2;
      const ssize_t k = sendmsg(p.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        Close(key);
        return;
      }
      skip = k > 0 ? static_cast<size_t>(k) : 0;
      if (skip == head.size() + body.size()) return;
    }
    const int64_t queued = static_cast<int64_t>(head.size() + body.size() - skip);
    if (p.out_bytes + queued > limits_.max_unsent_bytes) {
      Close(key);  // it does not read what it is sent
      return;
    }
    if (skip < head.size()) {
      p.out.push_back(head.substr(skip));
      skip = 0;
    } else {
      skip -= head.size();
    }
    if (!body.empty()) {
      if (skip == 0) {
        p.out.push_back(std::move(body));
      } else {
        p.out.push_back(body.substr(skip));
      }
    }
    p.out_bytes += queued;
    SetInterest(key, p);
  }

  void Flush(uint64_t key, Peer& p) {
    while (!p.out.empty()) {
      const std::string& front = p.out.front();
      const ssize_t k = send(p.fd, front.data() + p.out_offset, front.size() - p.out_offset,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
      if (k < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
        Close(key);
        return;
      }
      p.out_offset += static_cast<size_t>(k);
      p.out_bytes -= k;
      if (p.out_offset == front.size()) {
        p.out.pop_front();
        p.out_offset = 0;
      }
    }
    if (p.paused && MayRead(p)) p.paused = false;
    SetInterest(key, p);
  }

  // False while all partial messages together are at their bound, or this peer leaves too many
  // of our replies unread.
  bool MayRead(const Peer& p) const {
    return buffered_ < limits_.max_buffered_bytes && p.out_bytes <= kPauseReadingAboveUnsent;
  }

  void Pause(uint64_t key, Peer& p) {
    p.paused = true;
    SetInterest(key, p);
  }

  void SetInterest(uint64_t key, Peer& p) {
    const uint32_t want =
        (p.paused ? 0u : uint32_t{EPOLLIN}) | (p.out.empty() ? 0u : uint32_t{EPOLLOUT});
    if (want == p.events) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = key;
    if (epoll_ctl(epoll_, EPOLL_CTL_MOD, p.fd, &ev) == 0) p.events = want;
  }

  // Closes the connection now; its Peer stays (marked closed) until Reap(), so that callers up the
  // stack holding it stay valid.
  void Close(uint64_t key) {
    auto it = peers_.find(key);
    if (it == peers_.end() || it->second->closed) return;
    Peer& p = *it->second;
    p.closed = true;
    --live_;
    buffered_ -= p.parser.buffered();
    if (!p.proven) unproven_.erase(p.unproven);
    epoll_ctl(epoll_, EPOLL_CTL_DEL, p.fd, nullptr);
    close(p.fd);
    p.out.clear();
    p.out_bytes = 0;
    reap_.push_back(key);
  }

  void Reap() {
    for (uint64_t key : reap_) peers_.erase(key);
    reap_.clear();
  }

  void PauseListeners() {
    if (listeners_paused_) return;
    listeners_paused_ = true;
    for (const Listener& l : listeners_) epoll_ctl(epoll_, EPOLL_CTL_DEL, l.fd, nullptr);
  }

  // Deadlines, pings and paused peers; runs every sweep_every_.
  void Sweep(Clock::time_point now) {
    next_sweep_ = now + sweep_every_;
    if (listeners_paused_) {
      listeners_paused_ = false;
      for (size_t i = 0; i < listeners_.size(); ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        epoll_ctl(epoll_, EPOLL_CTL_ADD, listeners_[i].fd, &ev);
      }
    }
    std::vector<uint64_t> expired;
    for (auto& [key, pp] : peers_) {
      Peer& p = *pp;
      if (p.closed) continue;
      const bool partial = !p.ready || p.parser.partial();
      const auto since = p.ready ? p.partial_since : p.accepted;
      if (partial && now - since > timeout_) {
        expired.push_back(key);  // a handshake or message not completed in time
        continue;
      }
      if (p.ready && now - p.last_in > timeout_ / 2) {
        // Silent, and no answer to our PING (ZMTP 3.0 has none: silence alone ends it).
        if ((p.pinged || p.minor_version == 0) && now - p.last_in > timeout_) {
          expired.push_back(key);
          continue;
        }
        if (!p.pinged && p.minor_version >= 1) {
          p.pinged = true;
          Write(key, p, zmtp::Command("PING", std::string("\0\0", 2)), {});
          if (p.closed) continue;
        }
      }
      if (p.paused && MayRead(p)) {
        p.paused = false;
        SetInterest(key, p);
      }
    }
    for (uint64_t key : expired) Close(key);
  }

  ServerLimits limits_;
  zmtp::Limits zlimits_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds sweep_every_;
  Clock::time_point next_sweep_;
  int epoll_ = -1;
  std::vector<Listener> listeners_;
  bool listeners_paused_ = false;
  std::unordered_map<uint64_t, std::unique_ptr<Peer>> peers_;
  int live_ = 0;                  // open connections
  std::vector<uint64_t> reap_;    // closed, to be removed from peers_
  std::list<uint64_t> unproven_;  // peers that completed no message yet, oldest first
  uint64_t next_key_ = 1 << 20;   // keys below are listeners'; never reused
  int64_t buffered_ = 0;          // bytes of partial messages of all peers
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Bind(const std::vector<std::string>& endpoints,
                                             const ServerLimits& limits) {
  if (endpoints.empty()) return Invalid("no endpoint to listen on");
  auto server = std::make_unique<StreamServer>(limits);
  for (const auto& endpoint : endpoints) HERD_RETURN_IF_ERROR(server->Bind(endpoint));
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace herd::net
