// net::Server: herd's own ZMTP 3.x ROUTER over non-blocking TCP and Unix sockets and epoll, so
// that what a peer can make herd-ctld hold is bounded by herd (see net.h), not by libzmq, which
// bounds frames but not the frames of one message.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <list>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/net/address.h"
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
// A reply buffer emptied keeps at most this much capacity.
constexpr size_t kKeepOutCapacity = 64 << 10;
// Descriptors kept free of connections: listeners, the database, logs, munged, children's pipes.
constexpr int kReservedFds = 64;
constexpr int kMaxEvents = 256;
// Peers' keys start here; those below are listeners'.
constexpr uint64_t kFirstPeerKey = 1 << 20;

std::string Errno(int err) { return std::strerror(err); }

struct Listener {
  int fd = -1;
  std::string endpoint;     // as bound (port resolved)
  std::string unlink_path;  // ipc socket file to remove at the end, if it is still ours
  dev_t dev = 0;            // ... identified by its device and inode as bound
  ino_t ino = 0;
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
  Clock::time_point last_in;        // last bytes received (shifted past time it was not read)
  bool pinged = false;              // a PING went out since last_in
  bool authenticated = false;       // the owner vouched for it (Server::Authenticated)
  bool watched = false;             // its close is reported (Server::Watch)
  std::list<uint64_t>::iterator unauthenticated;
  bool paused = false;              // not read: it leaves too many replies unread
  Clock::time_point paused_at;
  Clock::time_point last_out;       // last time it took bytes from us
  bool closing = false;             // closed once `out` is sent; nothing more is read
  bool closed = false;              // fd closed; removed from peers_ by Reap()
  uint32_t events = 0;              // epoll interest now
  std::string out;                  // unsent bytes from out_offset
  size_t out_offset = 0;
  int64_t out_cost = 0;             // out's capacity, as counted in unsent_
  size_t Unsent() const { return out.size() - out_offset; }
};

class StreamServer : public Server {
 public:
  explicit StreamServer(const ServerLimits& limits) : limits_(limits) {
    zlimits_.max_message_bytes = limits.max_message_bytes;
    zlimits_.max_frames = kMaxFramesPerMessage;
    zlimits_.max_command_bytes = 4096;
    // Each connection is a descriptor: more than the process may open would fail at accept.
    rlimit nofile{};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
      const int64_t room = std::max<int64_t>(static_cast<int64_t>(nofile.rlim_cur) - kReservedFds, 16);
      if (limits_.max_connections > room) {
        spdlog::warn("max_connections {} is more than the open-file limit ({}) leaves: at most {} "
                     "connections are kept (raise LimitNOFILE / ulimit -n for more)",
                     limits_.max_connections, nofile.rlim_cur, room);
        limits_.max_connections = static_cast<int>(room);
      }
    }
    max_unauthenticated_ = std::max(1, limits_.max_connections / 4);
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
      // Only the socket this server bound: whatever another process put there stays.
      struct stat st{};
      if (!l.unlink_path.empty() && lstat(l.unlink_path.c_str(), &st) == 0 &&
          S_ISSOCK(st.st_mode) && st.st_dev == l.dev && st.st_ino == l.ino) {
        unlink(l.unlink_path.c_str());
      }
    }
    if (epoll_ >= 0) close(epoll_);
  }

  Status Bind(const std::string& endpoint) {
    if (epoll_ < 0) return Unavailable("epoll_create1: " + Errno(errno));
    Result<Listener> l = endpoint.starts_with("ipc://") ? BindIpc(endpoint) : BindTcp(endpoint);
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
    if (it == peers_.end()) return;
    Peer& p = *it->second;
    if (p.closed || !p.ready || p.closing) return;
    std::string body = proto::EncodeEnvelope(e);
    std::string head = zmtp::FrameHeader(body.size(), false);
    size_t skip = 0;
    if (p.Unsent() == 0) {
      // Nothing waiting: straight to the socket, without copying the body.
      iovec iov[2] = {{head.data(), head.size()}, {body.data(), body.size()}};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = 2;
      const ssize_t k = sendmsg(p.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        Close(key);
        return;
      }
      skip = k > 0 ? static_cast<size_t>(k) : 0;
      if (skip == head.size() + body.size()) return;
      p.last_out = Clock::now();
    }
    std::string_view h(head), b(body);
    const size_t from_head = std::min(skip, h.size());
    h.remove_prefix(from_head);
    b.remove_prefix(skip - from_head);
    if (Queue(key, p, h, b)) SetInterest(key, p);
  }

  void Authenticated(const std::string& peer) override {
    uint64_t key = 0;
    if (std::from_chars(peer.data(), peer.data() + peer.size(), key).ec != std::errc()) return;
    auto it = peers_.find(key);
    if (it == peers_.end() || it->second->closed || it->second->authenticated) return;
    it->second->authenticated = true;
    unauthenticated_.erase(it->second->unauthenticated);
  }

  void Disconnect(const std::string& peer) override {
    uint64_t key = 0;
    if (std::from_chars(peer.data(), peer.data() + peer.size(), key).ec != std::errc()) return;
    auto it = peers_.find(key);
    if (it == peers_.end() || it->second->closed) return;
    Peer& p = *it->second;
    if (p.Unsent() == 0) {
      Close(key);
      return;
    }
    p.closing = true;  // Flush closes it once the rest is sent
    Pause(key, p);
  }

  void Watch(const std::string& peer) override {
    uint64_t key = 0;
    if (std::from_chars(peer.data(), peer.data() + peer.size(), key).ec != std::errc()) return;
    auto it = peers_.find(key);
    if (it == peers_.end() || it->second->closed) {
      // Gone already (ids are never reused), even before the owner saw its last message.
      if (key >= kFirstPeerKey && key < next_key_) closed_watched_.push_back(peer);
      return;
    }
    it->second->watched = true;
  }

  std::vector<std::string> TakeClosed() override { return std::exchange(closed_watched_, {}); }

  std::vector<std::string> Endpoints() const override {
    std::vector<std::string> out;
    for (const Listener& l : listeners_) out.push_back(l.endpoint);
    return out;
  }
  int Fd() const override { return epoll_; }

 private:
  Result<Listener> BindTcp(const std::string& endpoint) {
    auto a = ResolveEndpoint(endpoint, Use::kBind);
    if (!a.ok()) return a.status();
    const int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Unavailable("cannot listen on " + endpoint + ": " + Errno(errno));
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&a->addr), a->len) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
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
      auto* b = reinterpret_cast<sockaddr_in6*>(&bound);
      inet_ntop(AF_INET6, &b->sin6_addr, text, sizeof text);
      bound_port = ntohs(b->sin6_port);
      name = "[" + std::string(text) + "]";
    } else {
      auto* b = reinterpret_cast<sockaddr_in*>(&bound);
      inet_ntop(AF_INET, &b->sin_addr, text, sizeof text);
      bound_port = ntohs(b->sin_port);
      name = text;
    }
    return Listener{fd, "tcp://" + name + ":" + std::to_string(bound_port), ""};
  }

  Result<Listener> BindIpc(const std::string& endpoint) {
    auto a = ResolveEndpoint(endpoint, Use::kBind);
    if (!a.ok()) return a.status();
    const auto& addr = *reinterpret_cast<const sockaddr_un*>(&a->addr);
    const std::string& path = a->path;
    if (!a->abstract) HERD_RETURN_IF_ERROR(ClearSocketPath(endpoint, path, addr, a->len));
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Unavailable("cannot listen on " + endpoint + ": " + Errno(errno));
    const int err =
        a->abstract
            ? (bind(fd, reinterpret_cast<const sockaddr*>(&addr), a->len) == 0 ? 0 : errno)
            : BindOpenToAll(fd, addr, a->len);
    if (err != 0 || listen(fd, SOMAXCONN) != 0) {
      const int e = err != 0 ? err : errno;
      close(fd);
      return Unavailable("cannot listen on " + endpoint + ": " + Errno(e));
    }
    Listener l{fd, endpoint, "", 0, 0};
    struct stat st{};
    if (!a->abstract && lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      l.unlink_path = path;
      l.dev = st.st_dev;
      l.ino = st.st_ino;
    }
    return l;
  }

  // Before binding `path`: its directory must exist (and, for root, be safe from other users),
  // and whatever is at the path must be a socket nobody listens on (left by an earlier run),
  // which is removed. Anything else there is refused, never removed.
  static Status ClearSocketPath(const std::string& endpoint, const std::string& path,
                                const sockaddr_un& addr, socklen_t len) {
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = ".";
    struct stat d{};
    if (stat(dir.c_str(), &d) != 0 || !S_ISDIR(d.st_mode)) {
      return Invalid("cannot listen on " + endpoint + ": directory " + dir.string() +
                     " does not exist");
    }
    // Root binding where others may rename or replace entries: the socket (and the stale one
    // removed first) could be swapped under it. A sticky directory (/tmp) stops that.
    const bool others_write =
        (d.st_mode & S_IWOTH) != 0 || ((d.st_mode & S_IWGRP) != 0 && d.st_gid != 0);
    if (geteuid() == 0 && others_write && (d.st_mode & S_ISVTX) == 0) {
      return Invalid("cannot listen on " + endpoint + ": directory " + dir.string() +
                     " is writable by other users and not sticky: use a directory only root "
                     "(or herd-ctld's user) can write, such as /run/herd");
    }
    struct stat st{};
    if (lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return Status::Ok();
      return Unavailable("cannot listen on " + endpoint + ": " + Errno(errno));
    }
    if (!S_ISSOCK(st.st_mode)) {
      return Invalid("cannot listen on " + endpoint + ": " + path +
                     " exists and is not a socket (remove it if it is not needed)");
    }
    const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe < 0) return Unavailable("cannot listen on " + endpoint + ": " + Errno(errno));
    const int rc = connect(probe, reinterpret_cast<const sockaddr*>(&addr), len);
    const int err = errno;
    close(probe);
    if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
      return Unavailable("cannot listen on " + endpoint +
                         ": another process is listening there (is herd-ctld already running?)");
    }
    if (err != ECONNREFUSED) {
      return Unavailable("cannot listen on " + endpoint + ": cannot tell whether " + path +
                         " is in use: " + Errno(err));
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Unavailable("cannot listen on " + endpoint + ": cannot remove the stale socket " +
                         path + ": " + Errno(errno));
    }
    return Status::Ok();
  }

  // Binds `fd` so that its socket file is 0666 from the start: a Unix socket is open to every
  // local user whatever the umask (who may do what is decided by authentication, not the
  // file's mode). The file's mode is the socket's (0777) less the umask, so the bind runs in a
  // child process whose umask is 0111; the path is never touched after it exists, so nothing
  // swapped in its place (a symbolic link, a hard link) is changed. Returns 0 or an errno.
  static int BindOpenToAll(int fd, const sockaddr_un& addr, socklen_t len) {
    const pid_t child = fork();
    if (child < 0) return errno;
    if (child == 0) {
      umask(0111);  // only async-signal-safe calls in the child of a threaded process
      _exit(bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) == 0 ? 0 : errno & 0xff);
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
      if (errno == EINTR) continue;
      // Reaped by someone else: whether the socket is bound says how it went.
      sockaddr_un bound{};
      socklen_t bound_len = sizeof bound;
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
      return bound_len > offsetof(sockaddr_un, sun_path) ? 0 : EADDRNOTAVAIL;
    }
    if (!WIFEXITED(status)) return EINTR;
    return WEXITSTATUS(status);
  }

  void Accept(int listen_fd) {
    for (int i = 0; i < 64; ++i) {
      const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        // A connection that failed before it was taken (accept(2) passes TCP's errors on).
        if (errno == ECONNABORTED || errno == EINTR || errno == EPROTO || errno == ENETDOWN ||
            errno == ENOPROTOOPT || errno == EHOSTDOWN || errno == ENONET ||
            errno == EHOSTUNREACH || errno == EOPNOTSUPP || errno == ENETUNREACH) {
          continue;
        }
        // Out of descriptors or memory: the pending connection stays queued and would wake
        // every poll; listening resumes at the next sweep.
        PauseListeners();
        return;
      }
      if (live_ >= limits_.max_connections ||
          static_cast<int>(unauthenticated_.size()) >= max_unauthenticated_) {
        // Make room by dropping the oldest connection not yet vouched for (a connection costs
        // its opener nothing until it holds a credential); if every one is, refuse this one.
        if (unauthenticated_.empty()) {
          close(fd);
          continue;
        }
        Close(unauthenticated_.front());
      }
      const int on = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // fails harmlessly on Unix
      const uint64_t key = next_key_++;
      auto p = std::make_unique<Peer>(zlimits_);
      p->fd = fd;
      p->id = std::to_string(key);
      p->accepted = p->partial_since = p->last_in = p->last_out = Clock::now();
      p->unauthenticated = unauthenticated_.insert(unauthenticated_.end(), key);
      p->events = EPOLLIN;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = key;
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        unauthenticated_.erase(p->unauthenticated);
        close(fd);
        continue;
      }
      Peer& peer = *peers_.emplace(key, std::move(p)).first->second;
      ++live_;
      // The whole greeting at once: libzmq sends its greeting in stages and waits for ours.
      if (Queue(key, peer, zmtp::Greeting(true), {})) Flush(key, peer);
    }
  }

  void Read(uint64_t key, Peer& p, std::vector<Incoming>& batch) {
    char buf[kReadChunk];
    std::vector<zmtp::Event> events;
    size_t read_now = 0;
    while (read_now < kReadPerWakeup && !p.closing) {
      if (!MayRead(p)) {
        Pause(key, p);
        break;
      }
      const ssize_t k = recv(p.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        Close(key);
        return;
      }
      if (k < 0) break;
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
        if (!parsed.ok() || p.closing) break;
        completed = completed || e.kind == zmtp::Event::Kind::kMessage;
        parsed = Handle(key, p, e, batch);
        if (p.closed) return;
      }
      if (!parsed.ok()) {
        Close(key);
        return;
      }
      if (p.parser.partial() && (!was_partial || completed)) p.partial_since = now;
      if (buffered_ > limits_.max_buffered_bytes) {
        KeepPartialsWithinBudget();
        if (p.closed) return;
      }
    }
    // What the events queued (READY, PONG, an error) goes out in one write.
    if (p.Unsent() > 0) Flush(key, p);
  }

  // One event of a peer; an error closes the connection.
  Status Handle(uint64_t key, Peer& p, zmtp::Event& e, std::vector<Incoming>& batch) {
    switch (e.kind) {
      case zmtp::Event::Kind::kGreeting:
        p.greeted = true;
        p.minor_version = e.minor_version;
        Queue(key, p, zmtp::Ready("ROUTER"), {});
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
          // At most one answer waits: while anything is unsent the peer is not reading, and
          // what waits reaches it before a PONG queued behind it would.
          if (p.Unsent() == 0) {
            Queue(key, p, zmtp::Command("PONG", std::string_view(e.data).substr(2)), {});
          }
          return Status::Ok();
        }
        if (e.name == "PONG") return Status::Ok();
        return Invalid("unexpected command");
      case zmtp::Event::Kind::kMessage: {
        if (!p.ready) return Invalid("a message before READY");
        // herd's clients are libzmq DEALERs sending encoded envelopes: anything else is not
        // one of them, and is not answered.
        if (e.frames.size() != 1) return Invalid("malformed message");
        int64_t version = proto::kProtocolVersion;
        auto envelope = proto::DecodeEnvelope(e.frames[0], &version);
        if (!envelope.ok()) {
          if (version == proto::kProtocolVersion) return envelope.status();
          // Another release of herd: it is told why (naming both versions), once, and the
          // connection ends when that has been sent.
          Queue(key, p,
                EncodeMessage(proto::MakeEnvelope(proto::ErrorReply{
                    static_cast<int>(Code::kInvalid), envelope.status().message()})),
                {});
          p.closing = true;
          Pause(key, p);
          return Status::Ok();
        }
        batch.push_back({p.id, std::move(*envelope)});
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

  static std::string EncodeMessage(const proto::Envelope& e) {
    std::string body = proto::EncodeEnvelope(e);
    return zmtp::FrameHeader(body.size(), false) + body;
  }

  // Appends to the peer's unsent bytes; written by Flush. The cost counted is the buffer's
  // capacity. A peer past max_unsent_bytes is dropped; past max_unsent_total_bytes for all
  // peers, the one holding the most is. False when `p` was dropped.
  bool Queue(uint64_t key, Peer& p, std::string_view head, std::string_view body) {
    if (p.closed) return false;
    const size_t add = head.size() + body.size();
    if (p.Unsent() + add > static_cast<uint64_t>(limits_.max_unsent_bytes)) {
      Close(key);  // it does not read what it is sent
      return false;
    }
    if (p.out.size() + add > p.out.capacity()) {
      if (p.out_offset > 0) {  // what was sent makes room before the buffer grows
        p.out.erase(0, p.out_offset);
        p.out_offset = 0;
      }
      if (p.out.size() + add > p.out.capacity()) {
        p.out.reserve(std::max(p.out.size() + add,
                               std::min<size_t>(2 * p.out.capacity(),
                                                static_cast<size_t>(limits_.max_unsent_bytes))));
      }
    }
    p.out.append(head);
    p.out.append(body);
    Account(p);
    while (unsent_ > limits_.max_unsent_total_bytes) {
      Peer* most = nullptr;
      uint64_t most_key = 0;
      for (auto& [k, q] : peers_) {
        if (!q->closed && (most == nullptr || q->out_cost > most->out_cost)) {
          most = q.get();
          most_key = k;
        }
      }
      if (most == nullptr) break;
      Close(most_key);
    }
    return !p.closed;
  }

  void Account(Peer& p) {
    const int64_t cost = p.closed ? 0 : static_cast<int64_t>(p.out.capacity());
    unsent_ += cost - p.out_cost;
    p.out_cost = cost;
  }

  void Flush(uint64_t key, Peer& p) {
    bool progress = false;
    while (p.Unsent() > 0) {
      const ssize_t k = send(p.fd, p.out.data() + p.out_offset, p.Unsent(),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
      if (k < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
        Close(key);
        return;
      }
      p.out_offset += static_cast<size_t>(k);
      progress = progress || k > 0;
    }
    if (progress) p.last_out = Clock::now();
    if (p.Unsent() == 0) {
      p.out_offset = 0;
      if (p.out.capacity() > kKeepOutCapacity) {
        std::string().swap(p.out);
      } else {
        p.out.clear();
      }
      Account(p);
      if (p.closing) {
        Close(key);
        return;
      }
    }
    if (p.paused && MayRead(p)) Resume(p, Clock::now());
    SetInterest(key, p);
  }

  // False while this peer leaves too many of our replies unread, or is being closed.
  bool MayRead(const Peer& p) const {
    return !p.closing && static_cast<int64_t>(p.Unsent()) <= kPauseReadingAboveUnsent;
  }

  void Pause(uint64_t key, Peer& p) {
    if (!p.paused) {
      p.paused = true;
      p.paused_at = Clock::now();
    }
    SetInterest(key, p);
  }

  // Time it was not read counts toward none of its deadlines: herd chose not to read it.
  static void Resume(Peer& p, Clock::time_point now) {
    p.paused = false;
    const auto shift = now - p.paused_at;
    p.partial_since = std::min(now, p.partial_since + shift);
    p.last_in = std::min(now, p.last_in + shift);
  }

  // Past max_buffered_bytes, the connection holding the largest partial message is dropped
  // (the others, small ones included, go on being read).
  void KeepPartialsWithinBudget() {
    while (buffered_ > limits_.max_buffered_bytes) {
      uint64_t most_key = 0;
      int64_t most = -1;
      for (auto& [k, q] : peers_) {
        if (!q->closed && q->parser.buffered() > most) {
          most = q->parser.buffered();
          most_key = k;
        }
      }
      if (most <= 0) break;
      Close(most_key);
    }
  }

  void SetInterest(uint64_t key, Peer& p) {
    const uint32_t want =
        (p.paused ? 0u : uint32_t{EPOLLIN}) | (p.Unsent() == 0 ? 0u : uint32_t{EPOLLOUT});
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
    if (!p.authenticated) unauthenticated_.erase(p.unauthenticated);
    if (p.watched) closed_watched_.push_back(p.id);
    epoll_ctl(epoll_, EPOLL_CTL_DEL, p.fd, nullptr);
    close(p.fd);
    std::string().swap(p.out);
    p.out_offset = 0;
    Account(p);
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
      if (p.paused) {
        // Not read because it does not read: judged by whether it takes what it is sent.
        if (now - std::max(p.paused_at, p.last_out) > timeout_) {
          expired.push_back(key);
        } else if (MayRead(p)) {
          Resume(p, now);
          SetInterest(key, p);
        }
        continue;
      }
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
          if (Queue(key, p, zmtp::Command("PING", std::string("\0\0", 2)), {})) Flush(key, p);
          if (p.closed) continue;
        }
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
  int live_ = 0;                         // open connections
  int max_unauthenticated_ = 1;          // of them, not vouched for
  std::vector<uint64_t> reap_;           // closed, to be removed from peers_
  std::vector<std::string> closed_watched_;  // watched peers closed, for TakeClosed()
  std::list<uint64_t> unauthenticated_;  // peers not vouched for, oldest first
  uint64_t next_key_ = kFirstPeerKey;    // keys below are listeners'; never reused
  int64_t buffered_ = 0;                 // bytes of partial messages of all peers
  int64_t unsent_ = 0;                   // capacity of all peers' unsent replies
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
