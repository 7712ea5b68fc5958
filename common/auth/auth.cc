#include "common/auth/auth.h"

#include <munge.h>
#include <sodium.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <string>
#include <vector>

namespace herd::auth {
namespace {

// MUNGE credentials: the client's munged signs its uid/gid; the server's munged (sharing the
// key) checks the signature, the expiry and that the credential was never used before.
class MungeAuth : public Authenticator {
 public:
  // A decode leaves the options of the credential it read in its context: credentials are made
  // with a context of their own (encode_ctx, a copy of ctx made before any decode).
  MungeAuth(munge_ctx_t ctx, munge_ctx_t encode_ctx, std::string socket)
      : ctx_(ctx), encode_ctx_(encode_ctx), socket_(std::move(socket)) {}
  ~MungeAuth() override {
    munge_ctx_destroy(ctx_);
    munge_ctx_destroy(encode_ctx_);
  }

  Result<std::string> Credential(std::string_view binding) override {
    char* cred = nullptr;
    munge_err_t err =
        munge_encode(&cred, encode_ctx_, binding.data(), static_cast<int>(binding.size()));
    if (err != EMUNGE_SUCCESS) return Failure(err);
    std::string out(cred);
    std::free(cred);
    return out;
  }

  Result<Identity> Verify(const std::string& cred, std::string_view binding) override {
    void* payload = nullptr;
    int length = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    munge_err_t err = munge_decode(cred.c_str(), ctx_, &payload, &length, &uid, &gid);
    const bool bound = payload != nullptr && length >= 0 &&
                       std::string_view(static_cast<const char*>(payload),
                                        static_cast<size_t>(length)) == binding;
    std::free(payload);
    if (err != EMUNGE_SUCCESS) return Failure(err);
    if (!bound) return Denied("authentication failed: the credential was made for another message");
    return Identity{uid, gid, names_.Get(uid)};
  }

  const char* Name() const override { return "munge"; }

 private:
  Status Failure(munge_err_t err) {
    if (err == EMUNGE_SOCKET) {
      return Unavailable("cannot reach munged at " + socket_ + ": is munged running?");
    }
    return Denied(std::string("authentication failed: ") + munge_strerror(err));
  }

  munge_ctx_t ctx_;
  munge_ctx_t encode_ctx_;
  std::string socket_;
  UserNameCache names_;
};

// Trusts whatever "none:<uid>:<gid>" the peer sends: anyone who can reach the endpoint can
// claim any uid. Only for the single-user demo, on ipc/loopback endpoints.
class NoAuth : public Authenticator {
 public:
  // The binding is not checked: the peer may claim any uid anyway.
  Result<std::string> Credential(std::string_view) override {
    return "none:" + std::to_string(getuid()) + ":" + std::to_string(getgid());
  }

  Result<Identity> Verify(const std::string& cred, std::string_view) override {
    std::string_view rest(cred);
    if (!rest.starts_with("none:")) return Denied("authentication failed: not a 'none' credential");
    rest.remove_prefix(5);
    Identity id;
    auto [colon, ec1] = std::from_chars(rest.data(), rest.data() + rest.size(), id.uid);
    if (ec1 != std::errc() || colon == rest.data() + rest.size() || *colon != ':') {
      return Denied("authentication failed: malformed 'none' credential");
    }
    auto [end, ec2] = std::from_chars(colon + 1, rest.data() + rest.size(), id.gid);
    if (ec2 != std::errc() || end == colon + 1 || end != rest.data() + rest.size()) {
      return Denied("authentication failed: malformed 'none' credential");
    }
    id.user = names_.Get(id.uid);
    return id;
  }

  const char* Name() const override { return "none"; }

 private:
  UserNameCache names_;
};

void HashField(crypto_hash_sha256_state* state, std::string_view field) {
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(field.size() >> (8 * i));
  crypto_hash_sha256_update(state, length, sizeof length);
  crypto_hash_sha256_update(state, reinterpret_cast<const unsigned char*>(field.data()),
                            field.size());
}

}  // namespace

std::string MessageBinding(std::string_view type, uint64_t id, std::string_view body) {
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  HashField(&state, "herd message v1");
  HashField(&state, type);
  HashField(&state, std::to_string(id));
  HashField(&state, body);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * sizeof digest);
  for (unsigned char b : digest) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

Result<std::unique_ptr<Authenticator>> MakeAuthenticator(const std::string& method,
                                                         const std::string& socket) {
  if (method == "none") return std::unique_ptr<Authenticator>(new NoAuth());
  if (method != "munge") {
    return Invalid("unknown auth method '" + method + "': expected \"munge\" or \"none\"");
  }
  munge_ctx_t ctx = munge_ctx_create();
  if (ctx == nullptr) return Internal("cannot create a MUNGE context: out of memory");
  if (!socket.empty()) {
    munge_err_t err = munge_ctx_set(ctx, MUNGE_OPT_SOCKET, socket.c_str());
    if (err != EMUNGE_SUCCESS) {
      std::string message = munge_ctx_strerror(ctx);
      munge_ctx_destroy(ctx);
      return Invalid("bad MUNGE socket '" + socket + "': " + message);
    }
  }
  // Name the socket actually used in errors, MUNGE's default included.
  char* path = nullptr;
  std::string used = socket;
  if (munge_ctx_get(ctx, MUNGE_OPT_SOCKET, &path) == EMUNGE_SUCCESS && path != nullptr) used = path;
  munge_ctx_t encode_ctx = munge_ctx_copy(ctx);
  if (encode_ctx == nullptr) {
    munge_ctx_destroy(ctx);
    return Internal("cannot create a MUNGE context: out of memory");
  }
  return std::unique_ptr<Authenticator>(new MungeAuth(ctx, encode_ctx, used));
}

std::string UserName(uint32_t uid) {
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(hint > 0 ? static_cast<size_t>(hint) : 4096);
  passwd pw{};
  passwd* found = nullptr;
  while (getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) == ERANGE &&
         buffer.size() < (1u << 20)) {
    buffer.resize(buffer.size() * 2);
  }
  return found != nullptr ? std::string(found->pw_name) : std::to_string(uid);
}

UserNameCache::UserNameCache(const Clock* clock, int64_t max_age_ms, size_t capacity,
                             Lookup lookup)
    : clock_(clock), max_age_ms_(max_age_ms), capacity_(capacity), lookup_(std::move(lookup)) {
  static const SystemClock system_clock;
  if (clock_ == nullptr) clock_ = &system_clock;
}

const std::string& UserNameCache::Get(uint32_t uid) {
  const int64_t now = clock_->MonotonicMillis();
  auto it = entries_.find(uid);
  if (it == entries_.end()) {
    // Starting over is crude but bounded, and a daemon rarely sees thousands of distinct users.
    if (entries_.size() >= capacity_) entries_.clear();
    it = entries_.emplace(uid, Entry{lookup_(uid), now}).first;
  } else if (now - it->second.looked_up_ms >= max_age_ms_) {
    it->second = Entry{lookup_(uid), now};
  }
  return it->second.name;
}

}  // namespace herd::auth
