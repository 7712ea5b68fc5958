// HMAC-SHA-256 (RFC 2104) under a 32-byte key, over OpenSSL's SHA-256, which uses the CPU's SHA
// instructions where it has them. Connection keys sign every message a session sends towards its
// job with it (`herd attach` input, `herd port-forward` uploads): libsodium's portable SHA-256
// ran at about 300 MB/s per core there, OpenSSL's at 1.5 GB/s on the same 2-core VM. Its MAC is
// libsodium's crypto_auth_hmacsha256 of the same key and bytes (tests/auth).
// Thread-safety: not thread-safe; each object is used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace herd::auth {

class HmacSha256 {
 public:
  static constexpr size_t kKeyBytes = 32;
  static constexpr size_t kMacBytes = 32;

  explicit HmacSha256(const unsigned char key[kKeyBytes]);
  ~HmacSha256();  // wipes its state
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view bytes) { Update(bytes.data(), bytes.size()); }
  // The MAC of everything given. The object is spent after it.
  void Final(unsigned char out[kMacBytes]);

 private:
  // OpenSSL's SHA256_CTX, kept opaque here so that only hmac_sha256.cc includes OpenSSL.
  struct alignas(8) Ctx {
    unsigned char bytes[112];
  };
  Ctx inner_;
  Ctx outer_;
};

}  // namespace herd::auth
