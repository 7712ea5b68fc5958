// The real Controller: herd.toml for the endpoint and authentication, then net::Client.
#include "cli/remote.h"

#include "common/auth/auth.h"
#include "common/config/config.h"
#include "common/net/net.h"

namespace herd::cli {
namespace {

class NetController final : public Controller {
 public:
  explicit NetController(std::unique_ptr<net::Client> client) : client_(std::move(client)) {}

  Result<proto::SubmitReply> Submit(const proto::SubmitRequest& r) override {
    return client_->Call<proto::SubmitRequest, proto::SubmitReply>(r);
  }
  Result<proto::JobsReply> Jobs(const proto::JobsRequest& r) override {
    return client_->Call<proto::JobsRequest, proto::JobsReply>(r);
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
  Result<proto::AdminReply> Admin(const proto::AdminRequest& r) override {
    return client_->Call<proto::AdminRequest, proto::AdminReply>(r);
  }
  Result<proto::WhyReply> Why(const proto::WhyRequest& r) override {
    return client_->Call<proto::WhyRequest, proto::WhyReply>(r);
  }
  Result<proto::UsageReply> Usage(const proto::UsageRequest& r) override {
    return client_->Call<proto::UsageRequest, proto::UsageReply>(r);
  }

 private:
  std::unique_ptr<net::Client> client_;
};

}  // namespace

Result<std::unique_ptr<Controller>> ConnectController(const GlobalOptions& options) {
  config::Config cfg;  // the defaults serve a single machine without /etc/herd/herd.toml
  auto loaded = config::LoadClientConfig(options.config_path);
  if (loaded.ok()) {
    cfg = std::move(loaded).value();
  } else if (options.config_explicit || loaded.status().code() != Code::kNotFound) {
    return Invalid(loaded.status().message() + " (set --config or HERD_CONFIG)");
  }
  auto endpoint = ChooseEndpoint(cfg.controller.listen, options.controller);
  if (!endpoint.ok()) return endpoint.status();
  auto auth = auth::MakeAuthenticator(cfg.auth.method, cfg.auth.munge_socket);
  if (!auth.ok()) return auth.status();
  auto client = std::make_unique<net::Client>(*endpoint, std::move(auth).value(),
                                              options.timeout_s * 1000);
  return std::unique_ptr<Controller>(std::make_unique<NetController>(std::move(client)));
}

}  // namespace herd::cli
