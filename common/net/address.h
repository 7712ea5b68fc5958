// Endpoints ("tcp://HOST:PORT", "ipc:///path", "ipc://@abstract") turned into socket addresses, for
// the server (to bind) and the DEALER (to connect) alike.
#pragma once

#include <sys/socket.h>

#include <string>

#include "common/util/status.h"

namespace herd::net {

struct Address {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_UNSPEC;
  bool abstract = false;  // ipc://@name: a Linux abstract socket, no file
  std::string path;       // ipc: the socket file (empty when abstract)
};

enum class Use { kBind, kConnect };

// Resolves `endpoint`. For kBind, a tcp host "*" is every IPv4 address and a port "*" or 0 is any
// free one. For kConnect, a host name is looked up for IPv4 first (as ZeroMQ does), then IPv6; an
// IPv6 literal is written in brackets ("tcp://[::1]:6817"). Errors name the endpoint and say what
// form is expected.
Result<Address> ResolveEndpoint(const std::string& endpoint, Use use);

}  // namespace herd::net
