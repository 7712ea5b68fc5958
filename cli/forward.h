// The local side of herd port-forward (and of herd run --port): listens on 127.0.0.1 and relays
// each accepted TCP connection as a session of its own (proto::SessionOpen with a port) to the
// job's herd-noded, which has a process of the job's user connect to that port in the job's network
// view. Every message is signed with the user's MUNGE credential, as herd attach's. Each connection
// holds at most one session window (proto::kSessionWindow) of unwritten bytes each way; at most
// max_connections are relayed at once, others are refused when accepted. Built by
// cli/commands/attach.cc. Thread-safety: one thread drives a Forwarder (herd run runs it on a
// thread of its own, with its own Authenticator).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/auth/auth.h"
#include "common/model/job.h"
#include "common/util/status.h"

namespace herd::cli {

// One forward: 127.0.0.1:local (0: a free port, picked when listening) to the job's remote port.
struct PortForward {
  uint16_t local = 0;
  uint16_t remote = 0;
};
// "[LOCAL:]REMOTE": ports 1-65535, LOCAL may be 0 (pick one). Error: a message for the user.
Result<PortForward> ParsePortForward(const std::string& text);

struct ForwardTarget {
  std::string endpoint;  // the node's session endpoint (SessionWhereReply)
  std::string node;      // the node's name (SessionWhereReply)
  model::JobId id = 0;
  int32_t worker = 0;
  int timeout_ms = 10000;  // for a connection's session to open; silent 3x this: lost
};

class Forwarder {
 public:
  // Connections relayed at once by one herd, by default.
  static constexpr int kDefaultMaxConnections = 16;

  // Listens on 127.0.0.1 for each of `forwards`. Error: a port cannot be listened on (in use).
  // Notes about refused or failed connections go to `err`.
  static Result<std::unique_ptr<Forwarder>> Listen(ForwardTarget target,
                                                   std::vector<PortForward> forwards,
                                                   std::unique_ptr<auth::Authenticator> auth,
                                                   int max_connections, std::ostream& err);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // The forwards, each with the local port it listens on.
  const std::vector<PortForward>& forwards() const { return forwards_; }
  // Waits up to timeout_ms for work (or for wake_fd, when >= 0, to become readable) and does what
  // is ready without blocking.
  void Step(int timeout_ms, int wake_fd = -1);
  // Connections being relayed now.
  size_t connections() const { return conns_.size(); }

  // One relayed connection (defined in forward.cc).
  struct Conn;

 private:
  Forwarder(ForwardTarget target, std::unique_ptr<auth::Authenticator> auth, int max_connections,
            std::ostream& err);
  void Accept(size_t listener);
  // Sends stream bytes (and how much output was written on) for c's session; close ends it.
  static Status SendInput(Conn& c, std::string data, bool close = false);

  ForwardTarget target_;
  std::unique_ptr<auth::Authenticator> auth_;
  int max_connections_;
  std::ostream& err_;
  std::vector<PortForward> forwards_;
  std::vector<int> listen_fds_;
  std::map<int, std::unique_ptr<Conn>> conns_;  // by local socket
};

}  // namespace herd::cli
