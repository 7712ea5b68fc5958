// Connection keys: a client that sends many requests on one connection proves its uid to
// herd-ctld once, with a MUNGE credential, and then signs each request with a key that only it
// and herd-ctld hold, instead of asking munged (herd-ctld's munged too) for a credential each.
//
// The key comes from an X25519 exchange (libsodium crypto_kx): the client sends its ephemeral
// public key in the body of a ConnectionKeyRequest, which carries a MUNGE credential bound to that
// body like any request; herd-ctld answers with its own ephemeral public key. The key itself never
// crosses the network, so whoever reads the traffic (and can decode the MUNGE credential, as any
// user with access to a munged of the cluster can) learns nothing of it, and whoever changes the
// answer only makes the two sides disagree. Each keyed request then carries
// "herd-key1:COUNTER:MAC": COUNTER grows by one per request, MAC is the HMAC-SHA-256 under the key
// of (COUNTER, type, id, body). herd-ctld keeps each key with the connection it was made on (and
// the uid MUNGE proved), takes a request only with a counter above the last one it took, and
// forgets the key when the connection ends. See SECURITY.md for the threat model.
// Thread-safety: not thread-safe; each object is used by one thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "common/auth/auth.h"
#include "common/util/status.h"

namespace herd::auth {

// True when `cred` is signed with a connection key rather than a MUNGE credential.
bool IsKeyed(std::string_view cred);

// A 32-byte secret, wiped when it goes.
class SecretKey {
 public:
  SecretKey();
  ~SecretKey();
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;
  unsigned char* data() { return bytes_.data(); }
  const unsigned char* data() const { return bytes_.data(); }

 private:
  std::array<unsigned char, 32> bytes_{};
};

// The client's side of one connection's key. Built by net::Client for each connection.
class ConnectionKeyClient {
 public:
  // A fresh ephemeral key pair.
  ConnectionKeyClient();
  // What the ConnectionKeyRequest carries (32 bytes).
  const std::string& public_key() const { return public_; }
  // Derives the key from herd-ctld's answer; kInvalid when it is not a public key.
  Status Accept(std::string_view server_public);
  bool ready() const { return ready_; }
  // The credential of the message (type, id, body): the next counter and its MAC.
  // REQUIRES: ready(). kUnavailable once the counter has no value left (2^64 - 1 requests).
  Result<std::string> Sign(std::string_view type, uint64_t id, std::string_view body);

 private:
  std::string public_;
  SecretKey secret_;  // the key pair's secret, then the agreed key
  bool ready_ = false;
  uint64_t counter_ = 0;  // the last counter used
};

// herd-ctld's keys, one per connection (`peer`, as net::Server names it; never reused).
// Memory: one entry per connection that opened a key; Drop it when the connection closes.
class ConnectionKeys {
 public:
  // Makes a key for `peer`, which `who` proved with MUNGE, from the client's public key; returns
  // herd-ctld's public key for the reply. kInvalid for a malformed public key, and when `peer`
  // already holds a key (or lost one to a bad signature): one key per connection.
  Result<std::string> Open(const std::string& peer, const Identity& who,
                           std::string_view client_public);
  // Who signed the keyed credential `cred` of the message (type, id, body) from `peer`.
  // kNoConnectionKey when `peer` holds no key (a new connection: the client opens one and sends
  // the request again); kDenied for a malformed credential, a MAC that does not match or a
  // counter not above the last one taken: then the key is dropped and every later keyed request
  // of `peer` is refused too (the caller closes the connection).
  Result<Identity> Verify(const std::string& peer, std::string_view cred, std::string_view type,
                          uint64_t id, std::string_view body);
  // Forgets the key of `peer` (its connection closed).
  void Drop(const std::string& peer);
  // Keys held.
  size_t size() const { return keys_.size(); }

 private:
  struct Entry {
    Identity who;
    SecretKey key;
    uint64_t last_counter = 0;
  };
  std::unordered_map<std::string, Entry> keys_;
  std::unordered_set<std::string> broken_;  // lost their key to a bad signature
};

}  // namespace herd::auth
