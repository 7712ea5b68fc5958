// msgpack encoding of the protocol: envelopes and every body in messages.h.
// The only msgpack code in herd. Every decode is bounded (kMax* in messages.h) and validated;
// it returns an error Status instead of throwing, whatever the bytes.
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/proto/messages.h"
#include "common/util/status.h"

namespace herd::proto {

// The wire name of each body type: MessageName<SubmitRequest>() == "submit".
template <typename T>
const char* MessageName();

// Body <-> bytes. Defined (explicitly instantiated) for every struct in messages.h.
template <typename T>
std::string EncodeBody(const T& body);
template <typename T>
Result<T> DecodeBody(std::string_view bytes);

// The body of a JobsReply listing `jobs` (REQUIRES: none null), encoded straight from the
// caller's jobs without copying them; `brief` leaves out what JobsRequest::brief leaves empty
// and the fields that hold their defaults (which decode as the same defaults).
std::string EncodeJobsReply(std::span<const model::Job* const> jobs, bool more, bool brief);

// Envelope <-> bytes. DecodeEnvelope refuses an unknown major version with
// "protocol version N not supported (this herd speaks 2): upgrade ..." and any malformed input.
// version, when given, is set to the version the bytes declare (refused or not), if they do.
std::string EncodeEnvelope(const Envelope& envelope);
Result<Envelope> DecodeEnvelope(std::string_view bytes, int64_t* version = nullptr);

// Convenience: an envelope of `type` MessageName<T>() carrying `body`.
template <typename T>
Envelope MakeEnvelope(const T& body, uint64_t id = 0, std::string cred = {}) {
  Envelope e;
  e.type = MessageName<T>();
  e.id = id;
  e.cred = std::move(cred);
  e.body = EncodeBody(body);
  return e;
}

// Decodes the body of `e`, checking that its type is T's.
template <typename T>
Result<T> BodyOf(const Envelope& e) {
  if (e.type != MessageName<T>()) {
    return Invalid(std::string("expected message '") + MessageName<T>() + "', got '" + e.type + "'");
  }
  return DecodeBody<T>(e.body);
}

}  // namespace herd::proto
