// Authentication of requests: a client attaches a credential to every message, the daemon
// verifies it and learns the sender's uid/gid from it (never from the message body).
// MungeAuth uses the MUNGE daemon (socket path configurable); NoAuth is for the single-user
// demo: it trusts the local uid and must only serve ipc/loopback endpoints.
// Thread-safety: one instance per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/util/clock.h"
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
  // A fresh credential for one message, bound to it by `binding` (MessageBinding of the message),
  // so that whoever receives the credential cannot use it with another message.
  virtual Result<std::string> Credential(std::string_view binding) = 0;
  // Checks `cred` and that it was made for the message whose MessageBinding is `binding`, and
  // returns who made it. Fails with kDenied ("authentication failed: ...").
  virtual Result<Identity> Verify(const std::string& cred, std::string_view binding) = 0;
  virtual const char* Name() const = 0;
};

// What ties a credential to one message: the SHA-256 of its type, id and body (each length-
// prefixed), in hex. MUNGE carries it as the credential's payload.
std::string MessageBinding(std::string_view type, uint64_t id, std::string_view body);

// method: "munge" or "none". socket: the munged socket ("" = MUNGE's default).
Result<std::unique_ptr<Authenticator>> MakeAuthenticator(const std::string& method,
                                                         const std::string& socket);

// The login name of `uid`, or its number as text.
std::string UserName(uint32_t uid);

// Login names by uid, so a daemon does not ask NSS (getpwuid_r: /etc/passwd, LDAP...) once per
// request. An entry older than max_age_ms is looked up again, so a renamed user shows up within
// that time; at `capacity` entries the cache starts over empty. Each Authenticator owns one.
// Thread-safety: not thread-safe.
class UserNameCache {
 public:
  using Lookup = std::function<std::string(uint32_t)>;
  // clock: must outlive the cache (nullptr: the system clock). lookup: UserName unless a test's.
  explicit UserNameCache(const Clock* clock = nullptr, int64_t max_age_ms = 60'000,
                         size_t capacity = 4096, Lookup lookup = UserName);
  // UserName(uid), from the cache while its entry is fresh.
  const std::string& Get(uint32_t uid);

 private:
  struct Entry {
    std::string name;
    int64_t looked_up_ms = 0;
  };
  const Clock* clock_;
  int64_t max_age_ms_;
  size_t capacity_;
  Lookup lookup_;
  std::unordered_map<uint32_t, Entry> entries_;
};

}  // namespace herd::auth
