#include "cli/forward.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>

#include "cli/session_signer.h"
#include "common/net/net.h"
#include "common/proto/codec.h"
#include "common/proto/stream.h"
#include "common/util/heap.h"

namespace herd::cli {
namespace {

namespace stream = proto::stream;
using Clock = std::chrono::steady_clock;

// How often an idle connection tells herd-noded it is still there (it drops silent sessions).
constexpr auto kKeepalive = std::chrono::seconds(5);
// Input bytes sent in one message at most, and the room one read needs (a whole frame).
constexpr int64_t kMaxInputMessage = 256 << 10;
constexpr int64_t kMinRead = stream::kHeaderBytes + stream::kMaxFramePayload;
// Output written to the local side is acknowledged each time this much more was
// (see session.cc).
constexpr int64_t kAckStep = proto::kSessionWindow / 8;

std::optional<int> ParsePort(std::string_view text) {
  int port = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port < 0 || port > 65535) {
    return std::nullopt;
  }
  return port;
}

}  // namespace

Result<PortForward> ParsePortForward(const std::string& text) {
  const std::string usage = "'" + text + "': expected [LOCAL:]REMOTE, two TCP ports (1-65535; " +
                            "LOCAL 0 or left out picks a free one), e.g. 8888 or 9000:8888";
  const size_t colon = text.find(':');
  const std::string_view all(text);
  auto remote = ParsePort(colon == std::string::npos ? all : all.substr(colon + 1));
  auto local = colon == std::string::npos ? std::optional<int>(0) : ParsePort(all.substr(0, colon));
  if (!remote || !local || *remote == 0) return Invalid(usage);
  return PortForward{static_cast<uint16_t>(*local), static_cast<uint16_t>(*remote)};
}

// One accepted connection and its session on the node.
struct Forwarder::Conn {
  int fd = -1;
  uint16_t local = 0, remote = 0;
  std::unique_ptr<net::Dealer> dealer;
  std::unique_ptr<SessionSigner> signer;
  uint64_t open_id = 0;  // the SessionOpen's id while it is unanswered
  uint64_t session = 0;
  stream::FrameReader reader;
  stream::PendingBytes to_local;  // output for the local socket, not yet written
  int64_t arrived = 0, acked = 0, sent_input = 0, taken = 0;
  bool local_open = true;      // the local side may still send
  bool remote_done = false;    // the job's side ended (or the session closed)
  bool closed_remote = false;  // herd told herd-noded to close the session
  Clock::time_point opened_at, last_heard, last_sent;
};

// Output not yet written to the local side.
int64_t Unwritten(const Forwarder::Conn& c) { return static_cast<int64_t>(c.to_local.size()); }

// Input bytes the node's window has room for.
int64_t InputRoom(const Forwarder::Conn& c) {
  return proto::kSessionWindow - (c.sent_input - c.taken);
}

Forwarder::Forwarder(ForwardTarget target, std::unique_ptr<auth::Authenticator> auth,
                     int max_connections, std::ostream& err)
    : target_(std::move(target)),
      auth_(std::move(auth)),
      max_connections_(std::max(max_connections, 1)),
      err_(err) {
  KeepHeapForStreams();
}

Forwarder::~Forwarder() {
  for (int fd : listen_fds_) close(fd);
  for (auto& [fd, c] : conns_) close(fd);
}

Result<std::unique_ptr<Forwarder>> Forwarder::Listen(ForwardTarget target,
                                                     std::vector<PortForward> forwards,
                                                     std::unique_ptr<auth::Authenticator> auth,
                                                     int max_connections, std::ostream& err) {
  std::unique_ptr<Forwarder> f(
      new Forwarder(std::move(target), std::move(auth), max_connections, err));
  for (PortForward pf : forwards) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(pf.local);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      const int e = errno;
      close(fd);
      return Unavailable("cannot listen on 127.0.0.1:" + std::to_string(pf.local) + ": " +
                         std::strerror(e) + " (choose another LOCAL port, or 0 for a free one)");
    }
    pf.local = ntohs(addr.sin_port);
    f->listen_fds_.push_back(fd);
    f->forwards_.push_back(pf);
  }
  return f;
}

void Forwarder::Accept(size_t listener) {
  while (true) {
    const int fd = accept4(listen_fds_[listener], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    const PortForward& pf = forwards_[listener];
    const std::string where = "127.0.0.1:" + std::to_string(pf.local);
    if (conns_.size() >= static_cast<size_t>(max_connections_)) {
      err_ << "herd: refused a connection to " << where << ": " << conns_.size()
           << " connections are being relayed, the most for one herd "
              "port-forward "
           << "(--max-connections)\n"
           << std::flush;
      close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->local = pf.local;
    c->remote = pf.remote;
    auto dealer = net::Dealer::Connect(target_.endpoint, "");
    if (!dealer.ok()) {
      err_ << "herd: " << where << ": " << dealer.status().message() << "\n" << std::flush;
      close(fd);
      continue;
    }
    c->dealer = std::move(*dealer);
    c->signer = std::make_unique<SessionSigner>(*auth_);
    proto::SessionOpen open{target_.id, target_.worker, false, target_.node, pf.remote,
                            c->signer->OfferKey()};
    c->open_id = c->signer->next_id();
    Status sent = c->signer->Send(*c->dealer, proto::MakeEnvelope(open), 0);
    if (!sent.ok()) {
      err_ << "herd: " << where << ": " << sent.message() << "\n" << std::flush;
      close(fd);
      continue;
    }
    c->opened_at = c->last_heard = c->last_sent = Clock::now();
    conns_[fd] = std::move(c);
  }
}

Status Forwarder::SendInput(Conn& c, std::string data, bool close) {
  c.sent_input += static_cast<int64_t>(data.size());
  // Only what was written on counts as received: unwritten output stays within the window.
  const int64_t received = std::max(c.acked, c.arrived - Unwritten(c));
  c.acked = received;
  c.last_sent = Clock::now();
  proto::SessionInput input{c.session, std::move(data), received, close};
  return c.signer->Send(*c.dealer, proto::MakeEnvelope(input), c.sent_input);
}

void Forwarder::Step(int timeout_ms, int wake_fd) {
  std::vector<net::Dealer*> dealers;
  std::vector<int> readable = listen_fds_, writable;
  if (wake_fd >= 0) readable.push_back(wake_fd);
  for (auto& [fd, c] : conns_) {
    dealers.push_back(c->dealer.get());
    if (c->session != 0 && !c->closed_remote && c->local_open && InputRoom(*c) >= kMinRead) {
      readable.push_back(fd);
    }
    if (Unwritten(*c) > 0) writable.push_back(fd);
  }
  net::WaitAny(dealers, timeout_ms, readable, writable);
  for (size_t i = 0; i < listen_fds_.size(); ++i) Accept(i);
  const auto now = Clock::now();
  std::vector<int> done;
  for (auto& [sock, cp] : conns_) {
    const int fd = sock;
    Conn& c = *cp;
    const std::string where = "127.0.0.1:" + std::to_string(c.local);
    auto finish = [&](const std::string& why) {
      if (!why.empty()) err_ << "herd: " << where << ": " << why << "\n" << std::flush;
      if (c.session != 0 && !c.closed_remote) (void)SendInput(c, "", /*close=*/true);
      done.push_back(fd);
    };
    // Messages from the node.
    for (auto e = c.dealer->Receive(0); e; e = c.dealer->Receive(0)) {
      c.last_heard = now;
      if (e->type == proto::MessageName<proto::ErrorReply>()) {
        Status again;
        if (c.signer->Recovered(*c.dealer, *e, &again)) {
          // Sent again on the new connection; what it acknowledged may have been lost.
          if (again.ok()) again = SendInput(c, "");
          if (again.ok()) continue;
        }
        // herd-noded forgets a session once it has sent its end, and answers an acknowledgement
        // sent before herd saw that end with an error: nothing is wrong then.
        if (c.closed_remote) continue;
        Status s = again.ok() ? net::ReplyStatus(*e) : again;
        err_ << "herd: " << where << ": port " << c.remote << " of job " << target_.id << ": "
             << s.message() << "\n"
             << std::flush;
        // What arrived before the error still goes to the local side (below).
        c.remote_done = true;
        c.closed_remote = true;
        continue;
      }
      if (e->id == c.open_id && c.session == 0) {
        auto opened = proto::BodyOf<proto::SessionOpened>(*e);
        if (opened.ok()) {
          c.session = opened->session;
          c.signer->Accept(opened->server_public);
        }
        continue;
      }
      auto out = proto::BodyOf<proto::SessionOutput>(*e);
      if (!out.ok() || out->session != c.session || c.session == 0) continue;
      c.taken = std::max(c.taken, out->taken);
      c.signer->Taken(c.taken);
      c.arrived += static_cast<int64_t>(out->data.size());
      c.reader.Append(out->data);
      while (auto f = c.reader.NextView()) {
        if (f->type == stream::kOutput) c.to_local.Append(f->payload);
        if (f->type == stream::kError) {
          std::string line(f->payload);
          while (!line.empty() && line.back() == '\n') line.pop_back();
          err_ << "herd: " << where << ": " << line << "\n" << std::flush;
        }
        if (f->type == stream::kExit) c.remote_done = true;
      }
      if (out->closed || c.reader.failed()) {
        c.remote_done = true;
        c.closed_remote = true;
      }
    }
    // Output to the local side.
    while (!c.to_local.empty()) {
      const std::string_view out = c.to_local.Unwritten();
      const ssize_t n = send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.to_local.Consume(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      c.to_local.Clear();  // the local side went away
      c.remote_done = true;
      break;
    }
    if (c.remote_done && Unwritten(c) == 0) {
      finish("");
      continue;
    }
    // Input from the local side: several frames to a message (each message costs a credential),
    // within the node's window.
    if (c.session != 0 && !c.closed_remote && c.local_open && InputRoom(c) >= kMinRead) {
      const int64_t most = std::min<int64_t>(InputRoom(c), kMaxInputMessage);
      std::string frames;
      char buf[stream::kMaxFramePayload];
      while (static_cast<int64_t>(frames.size() + stream::kHeaderBytes + sizeof buf) <= most) {
        const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          stream::AppendFrame(&frames, stream::kInput, std::string_view(buf, n));
          continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          c.local_open = false;
          stream::AppendFrame(&frames, stream::kInputEnd, "");
        }
        break;
      }
      if (!frames.empty()) {
        if (Status s = SendInput(c, std::move(frames)); !s.ok()) {
          finish(s.message());
          continue;
        }
      }
    }
    // Room in the node's window, keepalives, silence.
    if (c.session != 0 && !c.closed_remote) {
      const int64_t received = c.arrived - Unwritten(c);
      if (received - c.acked >= kAckStep || now - c.last_sent >= kKeepalive) {
        (void)SendInput(c, "");
      }
    } else if (now - c.opened_at >= std::chrono::milliseconds(target_.timeout_ms)) {
      finish("no answer from the job's node at " + target_.endpoint);
      continue;
    }
    if (now - c.last_heard >= std::chrono::milliseconds(3 * target_.timeout_ms)) {
      finish("lost: no answer from the job's node at " + target_.endpoint);
    }
  }
  for (int fd : done) {
    close(fd);
    conns_.erase(fd);
  }
}

}  // namespace herd::cli
