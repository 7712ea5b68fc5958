// The real Controller: herd.toml for the endpoint and authentication, then net::Client.
#include "cli/remote.h"

#include <filesystem>
#include <iterator>
#include <ostream>

#include "common/auth/auth.h"
#include "common/config/config.h"
#include "common/net/net.h"

namespace herd::cli {
namespace {

class NetController final : public Controller {
 public:
  NetController(std::unique_ptr<net::Client> client, config::AuthConfig auth)
      : client_(std::move(client)), auth_(std::move(auth)) {}

  Result<proto::SubmitReply> Submit(const proto::SubmitRequest& r) override {
    return client_->Call<proto::SubmitRequest, proto::SubmitReply>(r);
  }
  // herd-ctld answers a page at a time (JobsReply::more); this asks until the listing is whole,
  // so that every caller gets every job once, in id order.
  Result<proto::JobsReply> Jobs(const proto::JobsRequest& r) override {
    proto::JobsRequest page = r;
    proto::JobsReply all;
    while (true) {
      if (r.limit > 0) page.limit = r.limit - static_cast<int64_t>(all.jobs.size());
      auto reply = client_->Call<proto::JobsRequest, proto::JobsReply>(page);
      if (!reply.ok()) return reply.status();
      const bool last = !reply->more || reply->jobs.empty();
      if (all.jobs.empty()) {
        all.jobs = std::move(reply->jobs);
      } else {
        all.jobs.insert(all.jobs.end(), std::make_move_iterator(reply->jobs.begin()),
                        std::make_move_iterator(reply->jobs.end()));
      }
      const bool full = r.limit > 0 && static_cast<int64_t>(all.jobs.size()) >= r.limit;
      // An older herd-ctld sends everything at once and never sets `more`.
      if (last || full) return all;
      page.after_id = all.jobs.back().id;
    }
  }
  Result<proto::JobActionReply> JobAction(const proto::JobActionRequest& r) override {
    return client_->Call<proto::JobActionRequest, proto::JobActionReply>(r);
  }
  Result<proto::LogsReply> Logs(const proto::LogsRequest& r) override {
    return client_->Call<proto::LogsRequest, proto::LogsReply>(r);
  }
  Result<proto::NodesReply> Nodes(const proto::NodesRequest& r) override {
    return client_->Call<proto::NodesRequest, proto::NodesReply>(r);
  }
  Result<proto::ProjectsReply> Projects(const proto::ProjectsRequest& r) override {
    return client_->Call<proto::ProjectsRequest, proto::ProjectsReply>(r);
  }
  Result<proto::JobActionReply> UpdateJob(const proto::UpdateJobRequest& r) override {
    return client_->Call<proto::UpdateJobRequest, proto::JobActionReply>(r);
  }
  Result<proto::WebTokenReply> WebToken(const proto::WebTokenRequest& r) override {
    return client_->Call<proto::WebTokenRequest, proto::WebTokenReply>(r);
  }
  Result<proto::AdminReply> Admin(const proto::AdminRequest& r) override {
    return client_->Call<proto::AdminRequest, proto::AdminReply>(r);
  }
  Result<proto::WhyReply> Why(const proto::WhyRequest& r) override {
    return client_->Call<proto::WhyRequest, proto::WhyReply>(r);
  }
  Result<proto::UsageReply> Usage(const proto::UsageRequest& r) override {
    return client_->Call<proto::UsageRequest, proto::UsageReply>(r);
  }
  Result<proto::HistoryReply> History(const proto::HistoryRequest& r) override {
    return client_->Call<proto::HistoryRequest, proto::HistoryReply>(r);
  }
  Result<proto::SessionWhereReply> SessionWhere(const proto::SessionWhereRequest& r) override {
    return client_->Call<proto::SessionWhereRequest, proto::SessionWhereReply>(r);
  }
  Result<std::unique_ptr<auth::Authenticator>> SessionAuthenticator() override {
    return auth::MakeAuthenticator(auth_.method, auth_.munge_socket);
  }

 private:
  std::unique_ptr<net::Client> client_;
  config::AuthConfig auth_;
};

}  // namespace

Result<std::unique_ptr<Controller>> ConnectController(const GlobalOptions& options) {
  config::Config cfg;  // with --controller, the defaults serve a host without a herd.toml
  auto loaded = config::LoadClientConfig(options.config_path);
  std::error_code ec;
  if (loaded.ok()) {
    cfg = std::move(loaded).value();
  } else if (options.config_explicit || loaded.status().code() != Code::kNotFound ||
             std::filesystem::exists(options.config_path, ec)) {
    return Invalid(loaded.status().message() + " (set --config or HERD_CONFIG)");
  } else if (options.controller.empty()) {
    // Typically cron, without the HERD_CONFIG of the user's shell: the defaults would only fail
    // later, on MUNGE or the connection, without saying why.
    return Invalid("no configuration file (set HERD_CONFIG or create " + options.config_path +
                   ")");
  }
  if (options.diagnostics != nullptr) {
    for (const auto& w : cfg.warnings) *options.diagnostics << "herd: warning: " << w << "\n";
  }
  auto endpoint = ChooseEndpoint(cfg.controller.listen, options.controller);
  if (!endpoint.ok()) return endpoint.status();
  auto auth = auth::MakeAuthenticator(cfg.auth.method, cfg.auth.munge_socket);
  if (!auth.ok()) return auth.status();
  auto client = std::make_unique<net::Client>(*endpoint, std::move(auth).value(),
                                              options.timeout_s * 1000);
  return std::unique_ptr<Controller>(std::make_unique<NetController>(std::move(client), cfg.auth));
}

}  // namespace herd::cli
