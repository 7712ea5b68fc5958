// Status and Result<T>: the error type every module returns instead of throwing.
// Built by any function that can fail; a Status carries a message a user can act on.
// Thread-safety: value types, safe to copy between threads.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace herd {

// Broad classes of failure; the CLI maps them to exit codes.
enum class Code {
  kOk = 0,
  kInvalid,      // bad input from a user or a peer (exit 1 or 2)
  kNotFound,     // no such job, node or file
  kDenied,       // authenticated but not allowed
  kUnavailable,  // peer unreachable or timed out (exit 3)
  kInternal,     // a bug or an unexpected system error
  kNoSpace,      // herd-ctld's disk is full: new work is refused until space is freed (exit 6)
  // A node message from a connection herd-ctld holds no Register for (it restarted, or the node
  // reconnected): herd-noded registers again.
  kNotRegistered,
  // A request signed with a connection key on a connection that holds none (it is new: the
  // client's transport reconnected): the request was not applied; the client opens a key and
  // sends it again (common/auth/connection_key.h).
  kNoConnectionKey,
  // A web token (WebRelay) herd-ctld does not hold: unknown, expired or revoked. herd-web
  // answers 401. Keep last: peers take codes up to it as known.
  kBadToken,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status Invalid(std::string m) { return {Code::kInvalid, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status Denied(std::string m) { return {Code::kDenied, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
inline Status NoSpace(std::string m) { return {Code::kNoSpace, std::move(m)}; }
inline Status NotRegistered(std::string m) { return {Code::kNotRegistered, std::move(m)}; }
inline Status NoConnectionKey(std::string m) { return {Code::kNoConnectionKey, std::move(m)}; }
inline Status BadToken(std::string m) { return {Code::kBadToken, std::move(m)}; }

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: REQUIRES: !status.ok()

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace herd

#define HERD_RETURN_IF_ERROR(expr)             \
  do {                                         \
    ::herd::Status herd_status_ = (expr);      \
    if (!herd_status_.ok()) return herd_status_; \
  } while (0)
