#include "common/auth/web_tokens.h"

#include <sodium.h>

#include <algorithm>
#include <vector>

namespace herd::auth {
namespace {

std::string Hex(const unsigned char* bytes, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return out;
}

Status Unknown() {
  return BadToken("the web token is unknown, expired or revoked: run `herd web` for a new one");
}

}  // namespace

std::string WebTokens::Digest(const std::string& token) {
  if (token.size() != kTokenHexChars || !std::all_of(token.begin(), token.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return "";
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(token.data()), token.size());
  return Hex(digest, sizeof digest);
}

void WebTokens::DropExpired(int64_t now) {
  std::erase_if(by_digest_, [now](const auto& e) { return e.second.expires <= now; });
}

std::map<std::string, WebTokens::Entry>::iterator WebTokens::Find(const std::string& token,
                                                                  int64_t now) {
  const std::string digest = Digest(token);
  if (digest.empty()) return by_digest_.end();
  auto it = by_digest_.find(digest);
  if (it != by_digest_.end() && it->second.expires <= now) {
    by_digest_.erase(it);
    return by_digest_.end();
  }
  return it;
}

Result<WebTokens::Minted> WebTokens::Mint(Kind kind, const Identity& who, int64_t now,
                                          int64_t ttl_s) {
  static const bool sodium_ready = sodium_init() >= 0;
  if (!sodium_ready) return Internal("libsodium cannot start: no random numbers for a web token");
  if (by_digest_.size() >= kMaxTokens) DropExpired(now);
  if (by_digest_.size() >= kMaxTokens) {
    return Unavailable("herd-ctld holds " + std::to_string(kMaxTokens) +
                       " web tokens: try again once some have expired");
  }
  std::vector<std::map<std::string, Entry>::iterator> own;
  for (auto it = by_digest_.begin(); it != by_digest_.end(); ++it) {
    if (it->second.who.uid == who.uid) own.push_back(it);
  }
  if (own.size() >= kMaxPerUser) {
    auto oldest = *std::min_element(
        own.begin(), own.end(), [](auto a, auto b) { return a->second.serial < b->second.serial; });
    by_digest_.erase(oldest);
  }
  unsigned char secret[kTokenHexChars / 2];
  randombytes_buf(secret, sizeof secret);
  Minted m{Hex(secret, sizeof secret), now + ttl_s};
  sodium_memzero(secret, sizeof secret);
  by_digest_[Digest(m.token)] = Entry{kind, who, m.expires, next_serial_++};
  return m;
}

Result<std::pair<WebTokens::Minted, Identity>> WebTokens::Exchange(const std::string& login,
                                                                   int64_t now, int64_t ttl_s) {
  auto it = Find(login, now);
  if (it == by_digest_.end()) return Unknown();
  const Entry entry = it->second;
  by_digest_.erase(it);  // one use, whatever follows
  if (entry.kind != Kind::kLogin) return Unknown();
  auto session = Mint(Kind::kSession, entry.who, now, ttl_s);
  if (!session.ok()) return session.status();
  return std::pair{std::move(*session), entry.who};
}

Result<Identity> WebTokens::Resolve(const std::string& token, int64_t now) {
  auto it = Find(token, now);
  if (it == by_digest_.end() || it->second.kind != Kind::kSession) return Unknown();
  return it->second.who;
}

int64_t WebTokens::Revoke(const std::string& token) {
  const std::string digest = Digest(token);
  return digest.empty() ? 0 : static_cast<int64_t>(by_digest_.erase(digest));
}

int64_t WebTokens::RevokeUser(uint32_t uid) {
  return static_cast<int64_t>(
      std::erase_if(by_digest_, [uid](const auto& e) { return e.second.who.uid == uid; }));
}

}  // namespace herd::auth
