#include "cli/session_signer.h"

#include <utility>

namespace herd::cli {

std::string SessionSigner::OfferKey() {
  if (std::string_view(auth_.Name()) != "munge") return "";
  key_ = std::make_unique<auth::ConnectionKeyClient>();
  return key_->public_key();
}

void SessionSigner::Accept(std::string_view server_public) {
  if (!key_) return;
  if (server_public.empty() || !key_->Accept(server_public).ok()) key_.reset();
}

Status SessionSigner::Send(net::Dealer& dealer, proto::Envelope e, int64_t input_end) {
  e.id = next_id_++;
  return SendSigned(dealer, std::move(e), input_end);
}

Status SessionSigner::SendSigned(net::Dealer& dealer, proto::Envelope e, int64_t input_end) {
  if (key_ && key_->ready()) {
    auto cred = key_->Sign(e.type, e.id, e.body);
    if (cred.ok()) {
      e.cred = std::move(*cred);
      Status sent = dealer.Send(e);
      e.cred.clear();  // kept without its credential, moved (a body may be 256 KiB)
      const uint64_t id = e.id;
      kept_[id] = Kept{std::move(e), input_end};
      return sent;
    }
    key_.reset();  // spent (2^64 messages): MUNGE from now on
  }
  auto cred = auth_.Credential(auth::MessageBinding(e.type, e.id, e.body));
  if (!cred.ok()) return cred.status();
  e.cred = std::move(*cred);
  return dealer.Send(e);
}

void SessionSigner::Taken(int64_t taken) {
  std::erase_if(kept_, [&](const auto& kv) { return kv.second.input_end <= taken; });
}

bool SessionSigner::Recovered(net::Dealer& dealer, const proto::Envelope& error,
                              Status* status) {
  *status = Status::Ok();
  if (net::ReplyStatus(error).code() != Code::kNoConnectionKey) return false;
  if (!key_) return munge_again_from_ != 0 && error.id < munge_again_from_;  // sent again already
  // This connection is new: every keyed message from the refused one on was refused too.
  key_.reset();
  munge_again_from_ = next_id_;
  std::map<uint64_t, Kept> again;
  again.swap(kept_);
  for (auto it = again.lower_bound(error.id); it != again.end() && status->ok(); ++it) {
    proto::Envelope e = std::move(it->second.message);
    e.id = next_id_++;
    *status = SendSigned(dealer, std::move(e), it->second.input_end);
  }
  return true;
}

}  // namespace herd::cli
