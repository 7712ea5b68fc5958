// SessionHub: herd-noded's endpoint for interactive sessions (herd run, attach, exec) and for
// the connections of herd port-forward (each relayed as a session of its own). `herd`
// reaches it directly over ZeroMQ (net::Server) once herd-ctld said where; every message must
// carry a MUNGE credential, verified here (or, after a SessionOpen that opened a connection key,
// that key's signature: common/auth/connection_key.h): only the job's owner, root and admins may
// open a session, and only the uid that opened a session may use it. The hub moves the session
// stream's bytes (common/proto/stream.h) between each `herd` and the job's session relay
// (noded/runtime/relay.h, which runs as the job's user) without reading them, within a window
// of proto::kSessionWindow bytes each way, so a `herd` that never reads, one that floods, or a
// job that never stops writing costs herd-noded a bounded amount of memory.
// Built by noded/main.cc; not thread-safe: Agent::Step calls it from herd-noded's one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/auth/auth.h"
#include "common/auth/connection_key.h"
#include "common/net/net.h"
#include "common/proto/stream.h"
#include "common/util/clock.h"
#include "noded/runtime/runtime.h"

namespace herd::noded {

class SessionHub {
 public:
  // admin_uids: besides root, who may open a session of any job (herd.toml's admins).
  // node: this node's name, which every SessionOpen must name.
  SessionHub(std::unique_ptr<net::Server> server, runtime::Runtime* runtime,
             std::unique_ptr<auth::Authenticator> auth, std::set<uint32_t> admin_uids,
             std::string node, const Clock* clock);
  ~SessionHub();
  SessionHub(const SessionHub&) = delete;
  SessionHub& operator=(const SessionHub&) = delete;

  // The endpoint `herd` connects to (a wildcard host replaced by this host's name).
  std::string Endpoint() const;
  // Descriptors that become readable when Step has work: the server's and each relay socket
  // that may be read now.
  std::vector<int> Fds() const;
  // Relay sockets that hold input not yet written: Step has work when one
  // becomes writable.
  std::vector<int> WritableFds() const;
  // Handles every message and relay socket that is ready, without blocking.
  void Step();
  // "attached" while a `herd` is connected to job_key's session, else "detached".
  std::string State(const std::string& job_key) const;
  // Milliseconds since a `herd` last sent job_key input (any session of it, forwards included),
  // counted from the first call for that job. The jobs not in `job_keys` are forgotten.
  int64_t InputIdleMs(const std::string& job_key);
  void KeepInputClocks(const std::set<std::string>& job_keys);

 private:
  struct Session {
    std::string peer;     // the latest routing id the owner spoke from
    uint32_t uid = 0;     // who opened it
    std::string job_key;
    int fd = -1;          // connection to the relay
    bool exec = false;
    int port = 0;               // herd port-forward: the job's port this connection reaches
    proto::stream::PendingBytes to_relay;  // input for the relay (< kSessionWindow)
    int64_t sent = 0;           // stream bytes sent to herd
    int64_t received = 0;       // of which herd said it received
    int64_t taken = 0;          // input bytes written to the relay
    int64_t taken_reported = 0;
    int64_t last_heard_ms = 0;
  };
  // False when its credential failed (its connection is then closed).
  bool Handle(const net::Incoming& in);
  Status OnOpen(const net::Incoming& in, const auth::Identity& who);
  Status OnInput(const net::Incoming& in, const auth::Identity& who);
  void Pump(uint64_t id, Session& s);
  void SendOutput(Session& s, uint64_t id, std::string data, bool closed,
                  const std::string& error = "");
  void Close(uint64_t id, const std::string& why);

  std::unique_ptr<net::Server> server_;
  runtime::Runtime* runtime_;
  std::unique_ptr<auth::Authenticator> auth_;
  std::set<uint32_t> admin_uids_;
  std::string node_;
  const Clock* clock_;
  std::map<uint64_t, Session> sessions_;
  std::map<std::string, int64_t> last_input_ms_;  // by job key
  std::string read_buf_;                          // what Pump reads from a relay, reused
  // Keys of connections whose SessionOpen (MUNGE) offered one; dropped when they close.
  auth::ConnectionKeys keys_;
};

}  // namespace herd::noded
