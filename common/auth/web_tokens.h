// WebTokens: the tokens that let herd-web act for a user (`herd web`). herd-ctld mints them for a
// MUNGE-authenticated user and resolves them when herd-web relays a request (proto::WebRelay). A
// token is 256 random bits shown once, as 64 hex digits; only its SHA-256 is kept, so a copy of
// this table (a core dump) yields no usable token, and a lookup compares digests of what was
// presented, never the secret itself, so its timing tells nothing about a held token. A login token
// is used once (swapped for a session token); a session token lasts until it expires or is revoked.
// Kept in memory only: a restart of herd-ctld ends every web session. Bounded: at most kMaxPerUser
// live tokens per user (a new one ends that user's oldest) and kMaxTokens in all (then minting
// fails until some expire). Thread-safety: not thread-safe (herd-ctld's one loop thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/auth/auth.h"
#include "common/util/status.h"

namespace herd::auth {

class WebTokens {
 public:
  static constexpr size_t kMaxPerUser = 32;
  static constexpr size_t kMaxTokens = 100000;
  static constexpr size_t kTokenHexChars = 64;

  enum class Kind { kLogin, kSession };
  struct Minted {
    std::string token;    // the secret, for its holder; never stored
    int64_t expires = 0;  // epoch seconds
  };

  // A new token of `kind` for `who`, valid for `ttl_s` seconds from `now`.
  Result<Minted> Mint(Kind kind, const Identity& who, int64_t now, int64_t ttl_s);
  // Swaps login token `login` (used up whatever the outcome) for a session token of the same user,
  // valid `ttl_s`. kBadToken when it is unknown, expired or not a login token.
  Result<std::pair<Minted, Identity>> Exchange(const std::string& login, int64_t now,
                                               int64_t ttl_s);
  // The user of session token `token`; kBadToken when it is unknown, expired or a login token.
  Result<Identity> Resolve(const std::string& token, int64_t now);
  // Ends session `token`; returns how many ended (0 or 1).
  int64_t Revoke(const std::string& token);
  // Ends every token of `uid`; returns how many.
  int64_t RevokeUser(uint32_t uid);
  // Live tokens (expired ones are dropped as they are met and when minting).
  size_t size() const { return by_digest_.size(); }

 private:
  struct Entry {
    Kind kind = Kind::kSession;
    Identity who;
    int64_t expires = 0;
    uint64_t serial = 0;  // minting order, to find a user's oldest
  };
  // The SHA-256 of `token` in hex, or "" when `token` is not 64 hex digits.
  static std::string Digest(const std::string& token);
  void DropExpired(int64_t now);
  // The entry of `token` when live, else null (an expired one is dropped).
  std::map<std::string, Entry>::iterator Find(const std::string& token, int64_t now);

  std::map<std::string, Entry> by_digest_;
  uint64_t next_serial_ = 1;
};

// A token crosses the network only sealed (libsodium crypto_box_seal) to a
// throwaway X25519 key of the client that asked for it: the client sends
// SealKey::public_key() in its MUNGE-signed WebTokenRequest, herd-ctld answers
// SealToken(token, that key), and only the client can open it. Someone who
// reads the traffic sees neither the token nor a way to open it.
class SealKey {
 public:
  static constexpr size_t kPublicKeyBytes = 32;
  // A fresh key pair; an error when libsodium cannot start.
  static Result<SealKey> Make();
  SealKey(SealKey&& other) noexcept;
  SealKey& operator=(SealKey&&) = delete;
  ~SealKey();  // wipes the secret key
  const std::string& public_key() const { return public_; }
  // The token inside `sealed`; an error when it was not sealed to this key or
  // was altered.
  Result<std::string> Open(std::string_view sealed) const;

 private:
  SealKey() = default;
  std::string public_;
  std::string secret_;
};
// `token` sealed to `public_key` (kPublicKeyBytes); kInvalid for a key of
// another size.
Result<std::string> SealToken(std::string_view token, std::string_view public_key);

// Sends `request` (a proto::WebTokenRequest) through `call` with a fresh
// SealKey's public key and returns the reply with its token opened: how `herd
// web` and herd-web ask herd-ctld for tokens.
template <typename Request, typename Call>
auto CallSealed(Request request, Call call) -> decltype(call(request)) {
  auto key = SealKey::Make();
  if (!key.ok()) return key.status();
  request.public_key = key->public_key();
  auto reply = call(request);
  if (!reply.ok() || reply->token.empty()) return reply;
  auto token = key->Open(reply->token);
  if (!token.ok()) return token.status();
  reply->token = std::move(token).value();
  return reply;
}

}  // namespace herd::auth
