#include "common/auth/connection_key.h"

#include <sodium.h>

#include <charconv>
#include <cstring>
#include <limits>
#include <utility>

#include "common/auth/hmac_sha256.h"

namespace herd::auth {
namespace {

constexpr std::string_view kPrefix = "herd-key1:";
constexpr size_t kMacHex = 2 * HmacSha256::kMacBytes;

// sodium_init is idempotent and thread-safe; randombytes and crypto_kx need it once.
void InitSodium() {
  static const bool ok = sodium_init() >= 0;
  (void)ok;
}

void MacUpdate(HmacSha256& mac, uint64_t value) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  mac.Update(bytes, sizeof bytes);
}

void MacUpdate(HmacSha256& mac, std::string_view field) {
  MacUpdate(mac, field.size());  // length-prefixed: fields cannot shift into each other
  mac.Update(field);
}

// The MAC of one keyed request; the label keeps it from meaning anything in another protocol.
void Mac(const SecretKey& key, uint64_t counter, std::string_view type, uint64_t id,
         std::string_view body, unsigned char out[HmacSha256::kMacBytes]) {
  HmacSha256 mac(key.data());
  MacUpdate(mac, std::string_view("herd keyed request v1"));
  MacUpdate(mac, counter);
  MacUpdate(mac, type);
  MacUpdate(mac, id);
  MacUpdate(mac, body);
  mac.Final(out);
}

}  // namespace

static_assert(crypto_kx_SESSIONKEYBYTES == 32 && crypto_kx_SECRETKEYBYTES == 32 &&
              crypto_kx_PUBLICKEYBYTES == 32 && HmacSha256::kKeyBytes == crypto_kx_SESSIONKEYBYTES);

bool IsKeyed(std::string_view cred) { return cred.starts_with(kPrefix); }

SecretKey::SecretKey() = default;
SecretKey::~SecretKey() { sodium_memzero(bytes_.data(), bytes_.size()); }
SecretKey::SecretKey(SecretKey&& other) noexcept : bytes_(other.bytes_) {
  sodium_memzero(other.bytes_.data(), other.bytes_.size());
}
SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  bytes_ = other.bytes_;
  sodium_memzero(other.bytes_.data(), other.bytes_.size());
  return *this;
}

ConnectionKeyClient::ConnectionKeyClient() : public_(crypto_kx_PUBLICKEYBYTES, '\0') {
  InitSodium();
  crypto_kx_keypair(reinterpret_cast<unsigned char*>(public_.data()), secret_.data());
}

Status ConnectionKeyClient::Accept(std::string_view server_public) {
  if (ready_) return Invalid("the connection key is already agreed");
  if (server_public.size() != crypto_kx_PUBLICKEYBYTES) {
    return Invalid("herd-ctld's connection key answer is not a public key");
  }
  SecretKey rx, tx;  // herd's requests go one way only: tx signs them, rx is not used
  if (crypto_kx_client_session_keys(
          rx.data(), tx.data(), reinterpret_cast<const unsigned char*>(public_.data()),
          secret_.data(), reinterpret_cast<const unsigned char*>(server_public.data())) != 0) {
    return Invalid("herd-ctld's connection key answer is not a valid public key");
  }
  secret_ = std::move(tx);
  ready_ = true;
  return Status::Ok();
}

Result<std::string> ConnectionKeyClient::Sign(std::string_view type, uint64_t id,
                                              std::string_view body) {
  if (!ready_) return Internal("no connection key yet");
  if (counter_ == std::numeric_limits<uint64_t>::max()) {
    return Unavailable("this connection key has signed all the requests it may");
  }
  ++counter_;
  unsigned char mac[HmacSha256::kMacBytes];
  Mac(secret_, counter_, type, id, body, mac);
  char hex[kMacHex + 1];
  sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
  std::string cred(kPrefix);
  cred += std::to_string(counter_);
  cred += ':';
  cred.append(hex, kMacHex);
  return cred;
}

Result<std::string> ConnectionKeys::Open(const std::string& peer, const Identity& who,
                                         std::string_view client_public) {
  if (client_public.size() != crypto_kx_PUBLICKEYBYTES) {
    return Invalid("a connection key request carries a 32-byte public key");
  }
  if (keys_.contains(peer) || broken_.contains(peer)) {
    return Invalid("this connection already opened its key: open another connection");
  }
  InitSodium();
  std::string server_public(crypto_kx_PUBLICKEYBYTES, '\0');
  SecretKey secret, rx, tx;
  crypto_kx_keypair(reinterpret_cast<unsigned char*>(server_public.data()), secret.data());
  if (crypto_kx_server_session_keys(
          rx.data(), tx.data(), reinterpret_cast<const unsigned char*>(server_public.data()),
          secret.data(), reinterpret_cast<const unsigned char*>(client_public.data())) != 0) {
    return Invalid("a connection key request carries an invalid public key");
  }
  // The client signs with its tx, which is herd-ctld's rx.
  keys_.emplace(peer, Entry{who, std::move(rx), 0});
  return server_public;
}

Result<Identity> ConnectionKeys::Verify(const std::string& peer, std::string_view cred,
                                        std::string_view type, uint64_t id, std::string_view body) {
  auto it = keys_.find(peer);
  if (it == keys_.end()) {
    if (broken_.contains(peer)) {
      return Denied("authentication failed: this connection sent a bad signature and is closed");
    }
    return NoConnectionKey(
        "this connection holds no connection key (it is new): open one and "
        "send the request again");
  }
  // Anything wrong from here on comes from a peer that holds a key: a bug or an attack, and
  // the key goes either way.
  auto refuse = [&](const char* why) -> Status {
    keys_.erase(it);
    broken_.insert(peer);
    return Denied(std::string("authentication failed: ") + why + "; the connection is closed");
  };
  std::string_view rest = cred;
  if (!rest.starts_with(kPrefix)) return refuse("not a keyed credential");
  rest.remove_prefix(kPrefix.size());
  uint64_t counter = 0;
  auto [colon, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), counter);
  if (ec != std::errc() || colon == rest.data() || colon == rest.data() + rest.size() ||
      *colon != ':') {
    return refuse("malformed keyed credential");
  }
  const std::string_view hex(colon + 1, static_cast<size_t>(rest.data() + rest.size() - colon - 1));
  unsigned char sent[HmacSha256::kMacBytes];
  size_t got = 0;
  if (hex.size() != kMacHex ||
      sodium_hex2bin(sent, sizeof sent, hex.data(), hex.size(), nullptr, &got, nullptr) != 0 ||
      got != sizeof sent) {
    return refuse("malformed keyed credential");
  }
  unsigned char expected[HmacSha256::kMacBytes];
  Mac(it->second.key, counter, type, id, body, expected);
  if (crypto_verify_32(sent, expected) != 0)
    return refuse("the request's signature does not match");
  // Checked after the MAC, so that only the key's holder learns about counters.
  if (counter <= it->second.last_counter) return refuse("a request signed twice (replayed)");
  it->second.last_counter = counter;
  return it->second.who;
}

void ConnectionKeys::Drop(const std::string& peer) {
  keys_.erase(peer);
  broken_.erase(peer);
}

}  // namespace herd::auth
