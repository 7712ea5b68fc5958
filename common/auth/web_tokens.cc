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

Result<SealKey> SealKey::Make() {
  static const bool sodium_ready = sodium_init() >= 0;
  if (!sodium_ready) return Internal("libsodium cannot start: no random numbers for a key pair");
  static_assert(kPublicKeyBytes == crypto_box_PUBLICKEYBYTES);
  SealKey key;
  key.public_.resize(crypto_box_PUBLICKEYBYTES);
  key.secret_.resize(crypto_box_SECRETKEYBYTES);
  crypto_box_keypair(reinterpret_cast<unsigned char*>(key.public_.data()),
                     reinterpret_cast<unsigned char*>(key.secret_.data()));
  return key;
}

SealKey::SealKey(SealKey&& other) noexcept
    : public_(std::move(other.public_)), secret_(std::move(other.secret_)) {
  sodium_memzero(other.secret_.data(), other.secret_.size());
  other.secret_.clear();
}

SealKey::~SealKey() { sodium_memzero(secret_.data(), secret_.size()); }

Result<std::string> SealKey::Open(std::string_view sealed) const {
  if (secret_.size() != crypto_box_SECRETKEYBYTES || sealed.size() < crypto_box_SEALBYTES) {
    return BadToken("herd-ctld's answer holds no token sealed to this request's key");
  }
  std::string token(sealed.size() - crypto_box_SEALBYTES, '\0');
  if (crypto_box_seal_open(reinterpret_cast<unsigned char*>(token.data()),
                           reinterpret_cast<const unsigned char*>(sealed.data()), sealed.size(),
                           reinterpret_cast<const unsigned char*>(public_.data()),
                           reinterpret_cast<const unsigned char*>(secret_.data())) != 0) {
    return BadToken("herd-ctld's answer holds no token sealed to this request's key");
  }
  return token;
}

Result<std::string> SealToken(std::string_view token, std::string_view public_key) {
  static const bool sodium_ready = sodium_init() >= 0;
  if (!sodium_ready) return Internal("libsodium cannot start: cannot seal a web token");
  if (public_key.size() != crypto_box_PUBLICKEYBYTES) {
    return Invalid(
        "a web token request must carry the " + std::to_string(crypto_box_PUBLICKEYBYTES) +
        "-byte X25519 public key to seal the token to (got " + std::to_string(public_key.size()) +
        " bytes): tokens are never sent in the clear; use a herd "
        "and herd-web as new "
        "as herd-ctld");
  }
  std::string sealed(token.size() + crypto_box_SEALBYTES, '\0');
  crypto_box_seal(reinterpret_cast<unsigned char*>(sealed.data()),
                  reinterpret_cast<const unsigned char*>(token.data()), token.size(),
                  reinterpret_cast<const unsigned char*>(public_key.data()));
  return sealed;
}

}  // namespace herd::auth
