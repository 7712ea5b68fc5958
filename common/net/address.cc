#include "common/net/address.h"

#include <netdb.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <memory>

namespace herd::net {
namespace {

Result<Address> ResolveTcp(const std::string& endpoint, Use use) {
  const std::string verb = use == Use::kBind ? "cannot listen on " : "cannot connect to ";
  const std::string rest = endpoint.substr(6);
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon + 1 == rest.size()) {
    return Invalid(verb + endpoint + ": no port (use tcp://HOST:PORT)");
  }
  std::string host = rest.substr(0, colon);
  std::string port = rest.substr(colon + 1);
  if (use == Use::kBind && port == "*") port = "0";
  bool bracketed = false;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    bracketed = true;
  }
  if (host.empty() || (use == Use::kConnect && host == "*")) {
    return Invalid(verb + endpoint + ": no host (use tcp://HOST:PORT)");
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (use == Use::kBind ? AI_PASSIVE : 0);
  const bool any = use == Use::kBind && host == "*";
  // Binding keeps the families a name resolves to; connecting tries IPv4 first, as ZeroMQ's clients
  // do, so that "localhost" reaches a server bound on "*" (IPv4).
  hints.ai_family = any ? AF_INET : (use == Use::kConnect && !bracketed ? AF_INET : AF_UNSPEC);
  addrinfo* found = nullptr;
  int gai = getaddrinfo(any ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (gai != 0 && use == Use::kConnect && hints.ai_family == AF_INET) {
    hints.ai_family = AF_UNSPEC;
    gai = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  }
  if (gai != 0) return Unavailable(verb + endpoint + ": " + gai_strerror(gai));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, freeaddrinfo);
  Address a;
  std::memcpy(&a.addr, found->ai_addr, found->ai_addrlen);
  a.len = found->ai_addrlen;
  a.family = found->ai_family;
  return a;
}

Result<Address> ResolveIpc(const std::string& endpoint, Use use) {
  const std::string verb = use == Use::kBind ? "cannot listen on " : "cannot connect to ";
  const std::string path = endpoint.substr(6);
  Address a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.addr);
  un->sun_family = AF_UNIX;
  if (path.empty() || path == "@" || path.size() >= sizeof un->sun_path) {
    return Invalid(verb + endpoint + ": the path is empty or too long (use ipc:///PATH)");
  }
  a.abstract = path.starts_with("@");
  std::memcpy(un->sun_path, path.data(), path.size());
  if (a.abstract) {
    un->sun_path[0] = '\0';
  } else {
    a.path = path;
  }
  a.len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (a.abstract ? 0 : 1));
  a.family = AF_UNIX;
  return a;
}

}  // namespace

Result<Address> ResolveEndpoint(const std::string& endpoint, Use use) {
  if (endpoint.starts_with("tcp://")) return ResolveTcp(endpoint, use);
  if (endpoint.starts_with("ipc://")) return ResolveIpc(endpoint, use);
  return Invalid((use == Use::kBind ? "cannot listen on " : "cannot connect to ") + endpoint +
                 ": use tcp://HOST:PORT or ipc://PATH");
}

}  // namespace herd::net
