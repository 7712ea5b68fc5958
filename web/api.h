// herd-web's REST API (/api/v1/...) and its login (/login, /logout), apart from
// HTTP: herd-web's main.cc turns each cpp-httplib request into an HttpRequest and the HttpResponse
// back, so the handlers are tested and fuzzed without sockets. Every answer about the cluster comes
// from herd-ctld, asked for the holder of the request's session token (proto::WebRelay): herd-web
// itself decides nothing about who may see or do what, herd-ctld does, as for the CLI.
// Thread-safety: Api is immutable after construction; Handle may run on many threads at once if the
// CtldLink allows it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/proto/messages.h"
#include "common/util/status.h"

namespace herd::web {

// herd-web's connection to herd-ctld. The real one (main.cc) is a net::Client with herd-web's MUNGE
// credential; tests use a fake.
class CtldLink {
 public:
  virtual ~CtldLink() = default;
  // Sends `inner` (type and body) as a WebRelay for session token `token` and returns the reply, or
  // the error herd-ctld answered (Code::kBadToken for a token it does not hold).
  virtual Result<proto::Envelope> Relay(const std::string& token, proto::Envelope inner) = 0;
  // herd-web's own WebTokenRequest (exchange, logout).
  virtual Result<proto::WebTokenReply> WebToken(const proto::WebTokenRequest& request) = 0;
};

// The parts of an HTTP request the API reads.
struct HttpRequest {
  std::string method;                              // "GET", "POST", ...
  std::string path;                                // without the query
  std::multimap<std::string, std::string> params;  // the query, decoded
  std::map<std::string, std::string> headers;      // names in lower case
  std::string body;
  // The header `name` (lower case), "" when absent.
  std::string Header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Bounds on what a client can make herd-web hold or send on.
inline constexpr size_t kMaxApiBodyBytes = 256 << 10;  // a job spec with its environment
inline constexpr int kMaxJsonDepth = 32;
inline constexpr int64_t kMaxJobsListed = 10000;  // GET /api/v1/jobs?limit=
inline constexpr int64_t kDefaultJobsListed = 1000;
inline constexpr int64_t kMaxNodesListed = 100000;  // GET /api/v1/nodes?limit=
inline constexpr int64_t kDefaultLogBytes = 64 << 10;  // GET /api/v1/jobs/{id}/log?bytes=
inline constexpr int64_t kMaxLogBytes = 1 << 20;
inline constexpr int64_t kMaxWorkerIndex = 99999;  // ?worker=

// The cookies herd-web sets at /login: the session (HttpOnly, SameSite=Strict) and its CSRF value,
// which a page echoes in the X-Herd-CSRF header of every POST (double submit). Under TLS their
// names carry the __Host- prefix (CookieName), so that no other host or plain-HTTP page can set
// them.
inline constexpr char kSessionCookie[] = "herd_session";
inline constexpr char kCsrfCookie[] = "herd_csrf";
inline constexpr char kCsrfHeader[] = "x-herd-csrf";
inline std::string CookieName(const char* name, bool tls) {
  return (tls ? "__Host-" : "") + std::string(name);
}

// One route of the API, as the OpenAPI description names it ("/api/v1/jobs/{id}").
struct RouteInfo {
  const char* method;
  const char* path;
};

class Api {
 public:
  struct Options {
    bool tls = false;           // cookies are marked Secure
    int64_t session_s = 43200;  // the session cookie's Max-Age (herd-ctld ends it anyway)
    // A random value per login, for the CSRF cookie: the real one draws 256 bits.
    std::string (*random_token)() = nullptr;
  };
  // link: must outlive the Api.
  Api(CtldLink* link, Options options);

  // True for the paths Handle answers: /login, /logout and /api/v1/...
  static bool Serves(std::string_view path);
  // Answers `request`: JSON (or CSV for ?format=csv usage), an error as {"error": "..."}.
  HttpResponse Handle(const HttpRequest& request) const;
  // Every route Handle answers, for the OpenAPI description's test.
  static std::span<const RouteInfo> Routes();

 private:
  // GET /login (the page with its form) and POST /login (the form: the session cookie).
  HttpResponse Login(const HttpRequest& request) const;

  CtldLink* link_;
  Options options_;
};

// POST /api/v1/jobs: a JSON job spec as herd submit's options, refused with what to fix. Fields:
// command (array, required), name, project, class, workers, gpus (number or text such as "0.5"),
// gpu_type, gpu_memory ("40G"), cpus, memory ("16G"), time_limit ("2h" or seconds), image, cwd
// (absolute; required without an image), env (object), after (array of "ID[:ok|any| fail]"), hold,
// output, error.
Result<proto::SubmitRequest> ParseSubmission(std::string_view body);

// DNS rebinding: a page of another site whose name is made to resolve to herd-web's address would
// be same-origin with herd-web and read what it serves without a token (/metrics). So herd-web
// answers a request only when its Host header (with or without a port) names herd-web: an IP
// address, localhost, or one of `names` (lower case: the hosts of [web] listen and url, and this
// machine's name when listen is a wildcard). A request without Host (HTTP/1.0) passes.
bool HostAllowed(std::string_view host, const std::vector<std::string>& names);

// The OpenAPI 3 description of the API (web/openapi.json, built in).
std::string_view OpenApiJson();

}  // namespace herd::web
