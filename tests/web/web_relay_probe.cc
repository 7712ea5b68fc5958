// web_relay_probe CONFIG TOKEN: sends herd-ctld a WebRelay (a JobsRequest) for web token TOKEN with
// the MUNGE credential of whoever runs it, as herd-web would. Prints "ok" and exits 0 when
// herd-ctld answers the relayed request; prints "refused CODE MESSAGE" and exits 1 when it refuses;
// exits 2 when it cannot ask. web_integration_test runs it as a user other than herd-web's, who
// must be refused even with a valid token.
// web_relay_probe CONFIG --mint: asks herd-ctld for an API token without a
// public key to seal it to, as a client from before sealing would; prints "ok
// TOKEN" (exit 0) or "refused CODE MESSAGE" (exit 1).
#include <cstdio>
#include <string_view>

#include "common/auth/auth.h"
#include "common/config/config.h"
#include "common/net/net.h"
#include "common/proto/codec.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: web_relay_probe CONFIG TOKEN\n");
    return 2;
  }
  auto config = herd::config::LoadConfig(argv[1]);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().message().c_str());
    return 2;
  }
  auto auth = herd::auth::MakeAuthenticator(config->auth.method, config->auth.munge_socket);
  if (!auth.ok()) {
    std::fprintf(stderr, "%s\n", auth.status().message().c_str());
    return 2;
  }
  herd::net::Client client(herd::config::LocalEndpoint(config->controller.listen.front()),
                           std::move(auth).value(), 5000);
  if (std::string_view(argv[2]) == "--mint") {
    auto minted = client.Call<herd::proto::WebTokenRequest, herd::proto::WebTokenReply>({"api"});
    if (!minted.ok()) {
      std::printf("refused %d %s\n", static_cast<int>(minted.status().code()),
                  minted.status().message().c_str());
      return minted.status().code() == herd::Code::kUnavailable ? 2 : 1;
    }
    std::printf("ok %s\n", minted->token.c_str());
    return 0;
  }
  herd::proto::JobsRequest jobs;
  jobs.all = true;
  herd::proto::WebRelay relay{argv[2], herd::proto::MessageName<herd::proto::JobsRequest>(),
                              herd::proto::EncodeBody(jobs)};
  auto reply = client.CallRaw(herd::proto::MakeEnvelope(relay));
  if (!reply.ok()) {
    std::printf("refused %d %s\n", static_cast<int>(reply.status().code()),
                reply.status().message().c_str());
    return reply.status().code() == herd::Code::kUnavailable ? 2 : 1;
  }
  std::printf("ok\n");
  return 0;
}
