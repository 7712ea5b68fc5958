// How `herd` signs what it sends on one session connection to herd-noded (herd run, attach and
// exec, and each connection of herd port-forward). With MUNGE, the SessionOpen carries a fresh
// public key; once herd-noded answered with its own, the session's inputs are signed with the key
// both derive (common/auth/connection_key.h) instead of one MUNGE credential each (a round trip
// to munged here, and one more inside herd-noded's one thread to decode it). When the transport
// made the connection anew (after a loss), herd-noded holds no key for it and refuses keyed
// messages without applying them: they are sent again, in order, with MUNGE, which then signs
// everything on that connection.
// Thread-safety: not thread-safe; one object per connection.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/auth/auth.h"
#include "common/auth/connection_key.h"
#include "common/net/net.h"
#include "common/proto/codec.h"

namespace herd::cli {

class SessionSigner {
 public:
  explicit SessionSigner(auth::Authenticator& auth) : auth_(auth) {}

  // What the SessionOpen's client_public carries: a fresh public key with MUNGE, else "".
  std::string OfferKey();
  // herd-noded's SessionOpened::server_public: the key to sign with from now on ("", or a
  // malformed one: MUNGE goes on signing every message).
  void Accept(std::string_view server_public);
  // The id the next message sent gets.
  uint64_t next_id() const { return next_id_; }
  // Gives `e` the next id and a credential, and sends it. A keyed message is kept (to be sent
  // again) until the relay has taken the input up to `input_end`.
  Status Send(net::Dealer& dealer, proto::Envelope e, int64_t input_end);
  // What herd-noded said the relay took (SessionOutput::taken).
  void Taken(int64_t taken);
  // For an ErrorReply: true when herd-noded refused a keyed message for want of a key; the
  // refused messages were then sent again with MUNGE (*status says whether that worked). False
  // for any other error.
  bool Recovered(net::Dealer& dealer, const proto::Envelope& error, Status* status);

 private:
  struct Kept {
    proto::Envelope message;  // without its credential
    int64_t input_end = 0;
  };
  Status SendSigned(net::Dealer& dealer, proto::Envelope e, int64_t input_end);

  auth::Authenticator& auth_;
  std::unique_ptr<auth::ConnectionKeyClient> key_;
  uint64_t next_id_ = 1;
  uint64_t munge_again_from_ = 0;  // the first id MUNGE signed after the key was dropped
  std::map<uint64_t, Kept> kept_;  // keyed messages by id, until their input was taken
};

}  // namespace herd::cli
