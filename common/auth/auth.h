// Authentication of requests: a client attaches a credential to every message, the daemon
// verifies it and learns the sender's uid/gid from it (never from the message body).
// MungeAuth uses the MUNGE daemon (socket path configurable); NoAuth is for the single-user
// demo: it trusts the local uid and must only serve ipc/loopback endpoints.
// Thread-safety: one instance per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/util/status.h"

namespace herd::auth {

struct Identity {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string user;  // login name from getpwuid, or the uid as text
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // A fresh credential for one message.
  virtual Result<std::string> Credential() = 0;
  // Checks `cred` and returns who made it. Fails with kDenied ("authentication failed: ...").
  virtual Result<Identity> Verify(const std::string& cred) = 0;
  virtual const char* Name() const = 0;
};

// method: "munge" or "none". socket: the munged socket ("" = MUNGE's default).
Result<std::unique_ptr<Authenticator>> MakeAuthenticator(const std::string& method,
                                                         const std::string& socket);

// The login name of `uid`, or its number as text.
std::string UserName(uint32_t uid);

}  // namespace herd::auth
