#include "common/auth/hmac_sha256.h"

// OpenSSL 3 marks SHA256_Init/Update/Final deprecated in favour of EVP, whose algorithm fetch per
// message costs more than the hash of a keystroke and which links OpenSSL's providers into every
// herd binary; the low-level calls hash the same and stay in OpenSSL 3.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <sodium.h>

#include <cstring>
#include <new>

namespace herd::auth {
namespace {

static_assert(sizeof(SHA256_CTX) <= 112 && alignof(SHA256_CTX) <= 8);
constexpr size_t kBlock = 64;  // SHA-256's block: the key is padded to it

SHA256_CTX* Sha(unsigned char* storage) {
  return std::launder(reinterpret_cast<SHA256_CTX*>(storage));
}

void Start(unsigned char* storage, const unsigned char key[HmacSha256::kKeyBytes],
           unsigned char with) {
  unsigned char pad[kBlock];
  std::memset(pad, with, sizeof pad);
  for (size_t i = 0; i < HmacSha256::kKeyBytes; ++i) pad[i] ^= key[i];
  SHA256_CTX* ctx = new (storage) SHA256_CTX;
  SHA256_Init(ctx);
  SHA256_Update(ctx, pad, sizeof pad);
  sodium_memzero(pad, sizeof pad);
}

}  // namespace

HmacSha256::HmacSha256(const unsigned char key[kKeyBytes]) {
  Start(inner_.bytes, key, 0x36);
  Start(outer_.bytes, key, 0x5c);
}

HmacSha256::~HmacSha256() {
  sodium_memzero(&inner_, sizeof inner_);
  sodium_memzero(&outer_, sizeof outer_);
}

void HmacSha256::Update(const void* data, size_t size) {
  SHA256_Update(Sha(inner_.bytes), data, size);
}

void HmacSha256::Final(unsigned char out[kMacBytes]) {
  unsigned char inner[kMacBytes];
  SHA256_Final(inner, Sha(inner_.bytes));
  SHA256_Update(Sha(outer_.bytes), inner, sizeof inner);
  SHA256_Final(out, Sha(outer_.bytes));
  sodium_memzero(inner, sizeof inner);
}

}  // namespace herd::auth
