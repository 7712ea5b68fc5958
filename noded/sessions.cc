#include "noded/sessions.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <random>
#include <utility>

#include "common/proto/codec.h"
#include "noded/agent.h"
#include "spdlog/spdlog.h"

namespace herd::noded {
namespace {

// Sessions one user may hold open on a node, and all users together.
constexpr size_t kMaxSessionsPerUid = 16;
constexpr size_t kMaxSessions = 256;
// Connections of herd port-forward one user may hold open on a node (each is a process of the
// job's user), besides their sessions; all count toward kMaxSessions.
constexpr size_t kMaxForwardsPerUid = 32;
// Read from a relay at once: one message to herd. Large, so that a fast stream costs few
// messages (each one is encoded, copied and woken up for on both sides); a quarter of the window,
// so that herd's acknowledgement of one arrives while the next ones are on their way.
constexpr size_t kChunk = proto::kSessionWindow / 4;
// herd sends input while what the relay has not taken is under the window: the
// relay's progress is reported each time it took this much (a smaller step
// keeps herd's input flowing: with a quarter of the window, herd's messages
// came in bursts between pauses).
constexpr int64_t kTakenReportStep = proto::kSessionWindow / 16;

uint64_t DrawSessionId() {
  static std::random_device random;
  uint64_t id = 0;
  while (id == 0) id = (static_cast<uint64_t>(random()) << 32) | random();
  return id;
}

Result<int> ConnectUnix(const std::string& path) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Internal("session socket path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    const int err = errno;
    close(fd);
    return Unavailable(std::string("the job's session relay does not answer: ") + std::strerror(err));
  }
  return fd;
}

// What a SessionOpen asks, for the log.
std::string What(const proto::SessionOpen& open) {
  if (open.port != 0) return "forward to port " + std::to_string(open.port) + " of";
  return open.exec ? "exec in" : "attach to";
}

}  // namespace

SessionHub::SessionHub(std::unique_ptr<net::Server> server, runtime::Runtime* runtime,
                       std::unique_ptr<auth::Authenticator> auth, std::set<uint32_t> admin_uids,
                       std::string node, const Clock* clock)
    : server_(std::move(server)),
      runtime_(runtime),
      auth_(std::move(auth)),
      admin_uids_(std::move(admin_uids)),
      node_(std::move(node)),
      clock_(clock) {}

SessionHub::~SessionHub() {
  for (auto& [id, s] : sessions_) close(s.fd);
}

std::string SessionHub::Endpoint() const {
  const std::vector<std::string> endpoints = server_->Endpoints();
  if (endpoints.empty()) return "";
  std::string ep = endpoints.front();
  for (const std::string wildcard : {"tcp://0.0.0.0:", "tcp://*:", "tcp://[::]:"}) {
    if (ep.rfind(wildcard, 0) == 0) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      ep = "tcp://" + std::string(host) + ":" + ep.substr(wildcard.size());
    }
  }
  return ep;
}

std::vector<int> SessionHub::Fds() const {
  std::vector<int> fds = {server_->Fd()};
  for (const auto& [id, s] : sessions_) {
    if (s.sent - s.received < proto::kSessionWindow) fds.push_back(s.fd);
  }
  return fds;
}

std::vector<int> SessionHub::WritableFds() const {
  std::vector<int> fds;
  for (const auto& [id, s] : sessions_) {
    if (!s.to_relay.empty()) fds.push_back(s.fd);
  }
  return fds;
}

std::string SessionHub::State(const std::string& job_key) const {
  for (const auto& [id, s] : sessions_) {
    if (s.job_key == job_key && !s.exec && s.port == 0) return "attached";
  }
  return "detached";
}

int64_t SessionHub::InputIdleMs(const std::string& job_key) {
  const int64_t now = clock_->MonotonicMillis();
  return now - last_input_ms_.try_emplace(job_key, now).first->second;
}

void SessionHub::KeepInputClocks(const std::set<std::string>& job_keys) {
  std::erase_if(last_input_ms_, [&](const auto& kv) { return job_keys.count(kv.first) == 0; });
}

void SessionHub::Step() {
  // A connection whose credential failed is closed: the rest of what it sent is not verified
  // (each verification costs herd-noded a round trip to munged).
  std::set<std::string> refused;
  for (const net::Incoming& in : server_->Poll(0)) {
    if (refused.count(in.peer) == 0 && !Handle(in)) refused.insert(in.peer);
  }
  for (const std::string& peer : server_->TakeClosed()) keys_.Drop(peer);
  const int64_t now = clock_->MonotonicMillis();
  std::vector<uint64_t> idle;
  for (auto& [id, s] : sessions_) {
    if (now - s.last_heard_ms > proto::kSessionIdleMs) idle.push_back(id);
  }
  for (uint64_t id : idle) Close(id, "herd went silent");
  std::vector<uint64_t> ids;
  for (const auto& [id, s] : sessions_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = sessions_.find(id);
    if (it != sessions_.end()) Pump(id, it->second);
  }
}

bool SessionHub::Handle(const net::Incoming& in) {
  const proto::Envelope& e = in.envelope;
  auto who = auth::IsKeyed(e.cred)
                 ? keys_.Verify(in.peer, e.cred, e.type, e.id, e.body)
                 : auth_->Verify(e.cred, auth::MessageBinding(e.type, e.id, e.body));
  // A connection without a key is only told so: it may be herd's connection made anew, and
  // herd then sends the refused messages again with MUNGE (nothing was verified, nothing costs).
  const bool no_key = !who.ok() && who.status().code() == Code::kNoConnectionKey;
  Status s;
  if (no_key) {
    s = who.status();
  } else if (!who.ok()) {
    spdlog::warn("session: refused '{}' from an unauthenticated peer, closing its connection: {}",
                 e.type, who.status().message());
    s = who.status();
  } else {
    server_->Authenticated(in.peer);  // no longer among the connections that give way to new ones
    // Each session request and its handler.
    using Handler = Status (SessionHub::*)(const net::Incoming&, const auth::Identity&);
    static const std::pair<const char*, Handler> kRoutes[] = {
        {proto::MessageName<proto::SessionOpen>(), &SessionHub::OnOpen},
        {proto::MessageName<proto::SessionInput>(), &SessionHub::OnInput},
    };
    const auto* route = std::find_if(std::begin(kRoutes), std::end(kRoutes),
                                     [&](const auto& r) { return r.first == e.type; });
    if (route == std::end(kRoutes)) {
      s = Invalid("unknown session request '" + e.type +
                  "': herd and herd-noded versions may differ");
    } else {
      s = (this->*route->second)(in, *who);
    }
  }
  if (!s.ok()) {
    server_->Send(in.peer, proto::MakeEnvelope(proto::ErrorReply{static_cast<int>(s.code()),
                                                                 s.message()},
                                               e.id));
  }
  if (!who.ok() && !no_key) server_->Disconnect(in.peer);
  return who.ok() || no_key;
}

Status SessionHub::OnOpen(const net::Incoming& in, const auth::Identity& who) {
  auto req = proto::BodyOf<proto::SessionOpen>(in.envelope);
  if (!req.ok()) return req.status();
  if (req->node != node_) {
    return Denied("this session request was made for node '" + req->node + "', not '" + node_ +
                  "': ask herd-ctld where the job runs (herd attach/exec do)");
  }
  // The job's running worker: its latest run on this node.
  std::string key;
  int best_run = -1;
  for (const runtime::JobStatus& st : runtime_->Poll()) {
    model::JobId id = 0;
    int run = 0, worker = 0;
    if (!ParseJobKey(st.job_key, &id, &run, &worker) || id != req->id || worker != req->worker) {
      continue;
    }
    if (st.state != runtime::JobStatus::kRunning || run <= best_run) continue;
    key = st.job_key;
    best_run = run;
  }
  const std::string job = "job " + std::to_string(req->id);
  if (key.empty()) return NotFound(job + " worker " + std::to_string(req->worker) + " is not running here");
  auto target = runtime_->Session(key);
  if (!target.ok()) return target.status();
  if (who.uid != target->uid && who.uid != 0 && admin_uids_.count(who.uid) == 0) {
    spdlog::warn("session: refused uid {} ({}) to {} {}: it runs as uid {}", who.uid, who.user,
                 What(*req), job, target->uid);
    return Denied("permission denied: " + job + " belongs to another user");
  }
  const bool forward = req->port != 0;
  if (forward && (req->port < 0 || req->port > 65535 || req->exec)) {
    return Invalid("port " + std::to_string(req->port) + " is not a TCP port (1-65535)");
  }
  size_t of_uid = 0, forwards_of_uid = 0;
  for (const auto& [id, s] : sessions_) {
    if (s.uid != who.uid) continue;
    (s.port != 0 ? forwards_of_uid : of_uid) += 1;
  }
  if (forward && forwards_of_uid >= kMaxForwardsPerUid) {
    return Unavailable("too many forwarded connections: " + std::to_string(forwards_of_uid) +
                       " of yours are open on node " + node_ + ", the most it relays for one " +
                       "user; close some first");
  }
  if ((!forward && of_uid >= kMaxSessionsPerUid) || sessions_.size() >= kMaxSessions) {
    return Unavailable("too many sessions open on this node; close some first");
  }
  Result<int> fd = Internal("");
  if (forward) {
    fd = runtime_->StartForward(key, req->port);
  } else if (req->exec) {
    fd = runtime_->StartExec(key);
  } else if (target->socket.empty()) {
    return NotFound(job + " has no session to attach to (start one with herd run); herd exec "
                    "runs a command in it");
  } else {
    fd = ConnectUnix(target->socket);
  }
  if (!fd.ok()) return fd.status();
  const uint64_t id = DrawSessionId();
  Session& s = sessions_[id];
  s.peer = in.peer;
  s.uid = who.uid;
  s.job_key = key;
  s.fd = *fd;
  s.exec = req->exec;
  s.port = req->port;
  s.last_heard_ms = clock_->MonotonicMillis();
  spdlog::info("session {:x}: uid {} ({}) {} job {}", id, who.uid, who.user, What(*req), key);
  proto::SessionOpened opened{id, ""};
  // A key is opened on MUNGE's word only, and one per connection: a second SessionOpen on a
  // keyed connection gets none (herd opens each session on a connection of its own).
  if (!req->client_public.empty() && std::string_view(auth_->Name()) == "munge" &&
      !auth::IsKeyed(in.envelope.cred)) {
    if (auto server_public = keys_.Open(in.peer, who, req->client_public); server_public.ok()) {
      server_->Watch(in.peer);  // the key goes with the connection
      opened.server_public = std::move(*server_public);
    }
  }
  server_->Send(in.peer, proto::MakeEnvelope(opened, in.envelope.id));
  return Status::Ok();
}

Status SessionHub::OnInput(const net::Incoming& in, const auth::Identity& who) {
  auto req = proto::BodyOf<proto::SessionInput>(in.envelope);
  if (!req.ok()) return req.status();
  auto it = sessions_.find(req->session);
  if (it == sessions_.end()) return NotFound("session closed");
  Session& s = it->second;
  if (who.uid != s.uid) return Denied("permission denied: not your session");
  s.peer = in.peer;  // herd's connection may have been made anew
  s.last_heard_ms = clock_->MonotonicMillis();
  if (req->close) {
    Close(req->session, "herd detached");
    return Status::Ok();
  }
  if (static_cast<int64_t>(s.to_relay.size() + req->data.size()) > proto::kSessionWindow) {
    Close(req->session, "herd sent beyond its window");
    return Invalid("session input beyond its window");
  }
  const bool keepalive = req->data.empty();
  if (!keepalive) last_input_ms_[s.job_key] = s.last_heard_ms;
  s.to_relay.Append(std::move(req->data));  // the common case, nothing held: no copy
  s.received = std::clamp<int64_t>(req->received, s.received, s.sent);
  if (keepalive) SendOutput(s, req->session, "", false);  // a keepalive is answered
  Pump(req->session, s);
  return Status::Ok();
}

void SessionHub::Pump(uint64_t id, Session& s) {
  while (!s.to_relay.empty()) {
    const std::string_view in = s.to_relay.Unwritten();
    const ssize_t n = send(s.fd, in.data(), in.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      s.to_relay.Consume(static_cast<size_t>(n));
      s.taken += n;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    s.to_relay.Clear();
    break;  // a closed relay shows as EOF on read below
  }
  bool reported = false;
  while (s.sent - s.received < proto::kSessionWindow) {
    // At most the window's room: what herd-noded holds for a peer stays within the window.
    const size_t room = static_cast<size_t>(
        std::min<int64_t>(kChunk, proto::kSessionWindow - (s.sent - s.received)));
    if (read_buf_.size() < kChunk) read_buf_.resize(kChunk);
    const ssize_t n = recv(s.fd, read_buf_.data(), room, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    if (n <= 0) {
      SendOutput(s, id, "", true);
      Close(id, "the session ended");
      return;
    }
    s.sent += n;
    SendOutput(s, id, std::string(read_buf_.data(), static_cast<size_t>(n)), false);
    reported = true;
  }
  // herd waits for room in its window: say what the relay took.
  if (!reported && s.taken - s.taken_reported >= kTakenReportStep) {
    SendOutput(s, id, "", false);
  }
}

void SessionHub::SendOutput(Session& s, uint64_t id, std::string data, bool closed,
                            const std::string& error) {
  proto::SessionOutput out{id, std::move(data), s.taken, closed, error};
  s.taken_reported = s.taken;
  server_->Send(s.peer, proto::MakeEnvelope(out));
}

void SessionHub::Close(uint64_t id, const std::string& why) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  spdlog::info("session {:x} of job {} closed: {}", id, it->second.job_key, why);
  close(it->second.fd);
  sessions_.erase(it);
}

}  // namespace herd::noded
