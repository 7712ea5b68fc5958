// Connects the CLI to herd-ctld for real: reads herd.toml (the defaults when the default path
// does not exist), picks the endpoint (ChooseEndpoint), makes the authenticator of [auth] and a
// net::Client with the request timeout. Used by cli/main.cc as Environment::connect.
// Thread-safety: the returned Controller is used by one thread.
#pragma once

#include <memory>

#include "cli/context.h"

namespace herd::cli {

// Fails with the config's own message (file:line) or the authenticator's.
Result<std::unique_ptr<Controller>> ConnectController(const GlobalOptions& options);

}  // namespace herd::cli
