#include "web/api.h"

#include <arpa/inet.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>

#include "cli/format.h"
#include "common/model/units.h"
#include "common/proto/codec.h"

namespace herd::web {
namespace {

using nlohmann::json;

HttpResponse JsonReply(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse Error(int status, const std::string& message) {
  return JsonReply(status, {{"error", message}});
}

// The HTTP status of an error herd-ctld (or herd-web) gave.
int HttpStatusOf(const Status& s) {
  switch (s.code()) {
    case Code::kBadToken:
      return 401;
    case Code::kDenied:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kInvalid:
      return 400;
    case Code::kUnavailable:
    case Code::kNoSpace:
      return 503;
    default:
      return 500;
  }
}

HttpResponse ErrorOf(const Status& s) {
  HttpResponse r = Error(HttpStatusOf(s), s.message());
  if (s.code() == Code::kBadToken) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

// Deep nesting is refused before parsing: nothing a job spec needs is deeper than 3.
bool TooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

Result<json> ParseJson(std::string_view text) {
  if (text.size() > kMaxApiBodyBytes) {
    return Invalid("the body has " + std::to_string(text.size()) + " bytes; at most " +
                   std::to_string(kMaxApiBodyBytes));
  }
  if (TooDeep(text)) {
    return Invalid("the JSON body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Invalid(
        "the body is not valid JSON: send one JSON object (Content-Type: application/json)");
  }
  return j;
}

// A whole number from a query parameter or a path segment.
Result<int64_t> ParseInt(std::string_view text, const std::string& what) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || n < 0) {
    return Invalid(what + ": expected a whole number, got '" + std::string(text.substr(0, 40)) +
                   "'");
  }
  return n;
}

// ---- the job spec of POST /api/v1/jobs ----

Status FieldError(const std::string& field, const std::string& what) {
  return Invalid("field '" + field + "': " + what);
}

Result<std::string> StringField(const json& v, const std::string& field) {
  if (!v.is_string()) return FieldError(field, "expected a string");
  return v.get<std::string>();
}

Result<std::vector<std::string>> StringArray(const json& v, const std::string& field) {
  if (!v.is_array()) return FieldError(field, "expected an array of strings");
  std::vector<std::string> out;
  for (const json& e : v) {
    if (!e.is_string()) return FieldError(field, "expected an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<int64_t> CountField(const json& v, const std::string& field, int64_t max) {
  if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > max) {
    return FieldError(field, "expected a whole number from 1 to " + std::to_string(max));
  }
  return v.get<int64_t>();
}

// A quantity given as a number or as herd submit's text ("0.5", "40G", "2h").
template <typename Parse>
Result<int64_t> UnitField(const json& v, const std::string& field, Parse parse) {
  std::string text;
  if (v.is_string()) {
    text = v.get<std::string>();
  } else if (v.is_number_integer()) {
    text = std::to_string(v.get<int64_t>());
  } else if (v.is_number_float()) {
    text = json(v.get<double>()).dump();
  } else {
    return FieldError(field, "expected a number or a string such as herd submit takes");
  }
  Result<int64_t> r = parse(text);
  if (!r.ok()) return FieldError(field, r.status().message());
  return r;
}

#define HERD_ASSIGN(lhs, expr)        \
  do {                                \
    auto _r = (expr);                 \
    if (!_r.ok()) return _r.status(); \
    lhs = std::move(*_r);             \
  } while (0)

// ---- the handlers ----

using Params = std::multimap<std::string, std::string>;

std::string Param(const Params& params, const std::string& name) {
  auto it = params.find(name);
  return it == params.end() ? "" : it->second;
}

// The value of cookie `name` in a Cookie header, "" when absent.
std::string CookieValue(const std::string& header, std::string_view name) {
  std::string_view rest(header);
  while (!rest.empty()) {
    const size_t semi = rest.find(';');
    std::string_view pair = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? "" : rest.substr(semi + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      return std::string(pair.substr(eq + 1));
    }
  }
  return "";
}

bool SameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && !a.empty() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

// True when Origin `origin` names `host` (the Host header), over HTTP or HTTPS
// (a TLS proxy).
bool SameOrigin(const std::string& origin, const std::string& host) {
  return !host.empty() && (origin == "http://" + host || origin == "https://" + host);
}

struct Caller {
  std::string token;
  bool by_cookie = false;  // else Authorization: Bearer
};

// Who is asking: a Bearer token, else the session cookie; 401 when neither. A POST that comes with
// the cookie alone must echo the CSRF cookie in X-Herd-CSRF and, when the browser names its Origin,
// come from this same host: another site's form or script can do neither.
Result<Caller> Authenticate(const HttpRequest& req, bool tls) {
  const std::string auth = req.Header("authorization");
  if (!auth.empty()) {
    static constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() <= kBearer.size() || auth.compare(0, kBearer.size(), kBearer) != 0) {
      return BadToken("Authorization: expected 'Bearer TOKEN' (a token from herd web --token)");
    }
    return Caller{auth.substr(kBearer.size()), false};
  }
  const std::string cookies = req.Header("cookie");
  Caller c{CookieValue(cookies, CookieName(kSessionCookie, tls)), true};
  if (c.token.empty()) {
    return BadToken(
        "not logged in: open the address `herd web` prints, or send "
        "'Authorization: Bearer TOKEN' (herd web --token)");
  }
  if (req.method != "GET" && req.method != "HEAD") {
    if (!SameSecret(req.Header(kCsrfHeader), CookieValue(cookies, CookieName(kCsrfCookie, tls)))) {
      return Denied("a POST with the session cookie must carry the X-Herd-CSRF header with the " +
                    CookieName(kCsrfCookie, tls) + " cookie's value");
    }
    const std::string origin = req.Header("origin");
    if (!origin.empty() && !SameOrigin(origin, req.Header("host"))) {
      return Denied("cross-site request refused (Origin " + origin.substr(0, 100) + ")");
    }
  }
  return c;
}

// ---- /login ----
// GET /login?token=T serves a page whose button POSTs T back: a login address
// opened by a link from elsewhere logs nobody in by itself. POST /login must
// come from that page (Origin is this host, or Sec-Fetch-Site says
// same-origin), and replaces a session this browser already has only when the
// user confirms it on a second page.

bool IsLoginToken(std::string_view t) {
  return t.size() == 64 && std::all_of(t.begin(), t.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The value of `name` in an application/x-www-form-urlencoded body, undecoded
// ("" when absent): the login form's fields are hex and words.
std::string FormValue(std::string_view body, std::string_view name) {
  while (!body.empty()) {
    const size_t amp = body.find('&');
    std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? "" : body.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      return std::string(pair.substr(eq + 1));
    }
  }
  return "";
}

// The login page: `token` (64 hex digits, checked) in a form the user must
// submit themselves.
HttpResponse LoginPage(int status, const std::string& token, bool replace) {
  HttpResponse o;
  o.status = status;
  o.content_type = "text/html; charset=utf-8";
  o.body =
      "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>herd: "
      "log in</title></head>"
      "<body><h1>Log in to herd</h1>\n"
      "<p>Continue only if you ran <code>herd web</code> yourself just "
      "now: this logs this "
      "browser in as the user who did.</p>\n" +
      std::string(replace ? "<p><strong>This browser is already logged in "
                            "to herd.</strong> "
                            "Logging in ends that session here.</p>\n"
                          : "") +
      "<form method=\"post\" action=\"/login\"><input type=\"hidden\" "
      "name=\"token\" value=\"" +
      token + "\">" + (replace ? "<input type=\"hidden\" name=\"replace\" value=\"yes\">" : "") +
      "<button type=\"submit\">" + (replace ? "Replace the session and log in" : "Log in") +
      "</button></form></body></html>\n";
  // No script, no frame around it (a hidden frame could trick a click), posts
  // only to herd-web.
  o.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; form-action 'self'; frame-ancestors 'none'");
  o.headers.emplace_back("X-Frame-Options", "DENY");
  return o;
}

template <typename Rep, typename Req>
Result<Rep> Ask(CtldLink* link, const std::string& token, const Req& request) {
  auto reply = link->Relay(token, proto::MakeEnvelope(request));
  if (!reply.ok()) return reply.status();
  return proto::BodyOf<Rep>(*reply);
}

// Why a pending job waits, in a sentence, from what herd why shows.
std::string PendingReason(const proto::WhyReply& why) {
  if (why.job.state != model::JobState::kPending) return "";
  std::string s = "Waits for " + (why.waits_for.empty() ? "the scheduler" : why.waits_for);
  if (!why.job.reason.empty()) s += ": " + why.job.reason;
  s += ".";
  if (why.queue_length > 0) {
    s += " " + std::to_string(why.position) + " of the " + std::to_string(why.queue_length) +
         " pending jobs of project " + why.job.spec.project + " come before it.";
  }
  if (why.estimated_start > 0) {
    s += " Expected to start by " + cli::FormatTimestamp(why.estimated_start) + ".";
  } else if (!why.estimate_note.empty()) {
    s += " No start estimate: " + why.estimate_note + ".";
  }
  return s;
}

using Handler = std::function<HttpResponse(CtldLink*, const Caller&, const HttpRequest&,
                                           const std::vector<std::string>&)>;

HttpResponse ListJobs(CtldLink* link, const Caller& caller, const HttpRequest& req,
                      const std::vector<std::string>&) {
  proto::JobsRequest jr;
  jr.user = Param(req.params, "user");
  const std::string project = Param(req.params, "project");
  for (auto [it, end] = req.params.equal_range("state"); it != end; ++it) {
    std::string_view rest(it->second);
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string state(rest.substr(0, comma));
      std::transform(state.begin(), state.end(), state.begin(),
                     [](unsigned char c) { return std::toupper(c); });
      if (!state.empty()) jr.states.push_back(state);
      rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    }
  }
  const std::string all = Param(req.params, "all");
  jr.all = all == "true" || all == "1";
  int64_t limit = kDefaultJobsListed;
  if (std::string l = Param(req.params, "limit"); !l.empty()) {
    auto n = ParseInt(l, "limit");
    if (!n.ok()) return ErrorOf(n.status());
    limit = std::clamp<int64_t>(*n, 1, kMaxJobsListed);
  }
  if (std::string a = Param(req.params, "after"); !a.empty()) {
    auto n = ParseInt(a, "after");
    if (!n.ok()) return ErrorOf(n.status());
    jr.after_id = *n;
  }
  jr.brief = true;  // the table's facts: no command, environment or placement lists
  json jobs = json::array();
  bool more = true;
  // herd-ctld serves a page at a time; a project filter may need several pages.
  for (int page = 0; more && page < 100 && static_cast<int64_t>(jobs.size()) < limit; ++page) {
    jr.limit = limit - static_cast<int64_t>(jobs.size());
    auto reply = Ask<proto::JobsReply>(link, caller.token, jr);
    if (!reply.ok()) return ErrorOf(reply.status());
    more = reply->more;
    for (const model::Job& j : reply->jobs) {
      jr.after_id = j.id;
      if (!project.empty() && j.spec.project != project) continue;
      jobs.push_back(cli::JobToJson(j));
      if (static_cast<int64_t>(jobs.size()) == limit) {
        more = more || &j != &reply->jobs.back();
        break;
      }
    }
  }
  return JsonReply(200, {{"jobs", jobs}, {"more", more}, {"next_after", jr.after_id}});
}

Result<model::JobId> JobIdOf(const std::string& text) { return ParseInt(text, "job id"); }

HttpResponse ShowJob(CtldLink* link, const Caller& caller, const HttpRequest&,
                     const std::vector<std::string>& args) {
  auto id = JobIdOf(args[0]);
  if (!id.ok()) return ErrorOf(id.status());
  auto why = Ask<proto::WhyReply>(link, caller.token, proto::WhyRequest{*id});
  if (!why.ok()) return ErrorOf(why.status());
  json events = json::array();
  for (const auto& e : why->events) events.push_back({{"time", e.time}, {"what", e.what}});
  return JsonReply(
      200, {{"job", cli::JobToJson(why->job)},
            {"waits_for", why->waits_for.empty() ? json() : json(why->waits_for)},
            {"pending_reason", PendingReason(*why)},
            {"position", why->position},
            {"queue_length", why->queue_length},
            {"estimated_start", why->estimated_start > 0 ? json(why->estimated_start) : json()},
            {"estimate_note", why->estimate_note},
            {"may_act", why->may_act},
            {"events", events}});
}

// GET /api/v1/nodes[?offset=N&limit=N&brief=true]: the nodes in herd-ctld's order (by name), a
// page of them when offset or limit is given. brief=true gives each node's grid facts alone (the
// dashboard's) and every node that is not UP, wherever it is in the list.
HttpResponse Nodes(CtldLink* link, const Caller& caller, const HttpRequest& req,
                   const std::vector<std::string>&) {
  int64_t offset = 0, limit = kMaxNodesListed;
  for (auto [name, out] : {std::pair{"offset", &offset}, std::pair{"limit", &limit}}) {
    if (std::string v = Param(req.params, name); !v.empty()) {
      auto n = ParseInt(v, name);
      if (!n.ok()) return ErrorOf(n.status());
      *out = *n;
    }
  }
  limit = std::clamp<int64_t>(limit, 1, kMaxNodesListed);
  const std::string brief_param = Param(req.params, "brief");
  const bool brief = brief_param == "true" || brief_param == "1";
  auto reply = Ask<proto::NodesReply>(link, caller.token, proto::NodesRequest{});
  if (!reply.ok()) return ErrorOf(reply.status());
  const auto& all = reply->nodes;
  const size_t first = static_cast<size_t>(std::min<int64_t>(offset, all.size()));
  const size_t end = first + static_cast<size_t>(std::min<int64_t>(limit, all.size() - first));
  // Each node's GPU utilization (the dashboard's grid), as /metrics has it: null when herd-ctld
  // does not say.
  std::map<std::string, int64_t> busy_milli;
  if (auto stats = Ask<proto::StatsReply>(link, caller.token, proto::StatsRequest{}); stats.ok()) {
    for (const proto::GpuUse& g : stats->gpus) {
      if (g.project.empty()) busy_milli[g.node] += g.busy_milli;
    }
  }
  auto name_of = [](const proto::NodeStatus& n) {
    return n.name.empty() ? n.topology.hostname : n.name;
  };
  auto busy_of = [&](const proto::NodeStatus& n) {
    auto busy = busy_milli.find(name_of(n));
    return busy == busy_milli.end() ? json() : json(busy->second / 1000.0);
  };
  json nodes = json::array();
  for (size_t i = first; i < end; ++i) {
    const proto::NodeStatus& n = all[i];
    if (brief) {
      json used = json::array();
      for (int64_t u : n.gpu_milli_used) used.push_back(u / 1000.0);
      nodes.push_back({{"name", name_of(n)},
                       {"state", n.state},
                       {"reason", n.reason},
                       {"gpus_used", n.allocated.gpu_milli / 1000.0},
                       {"gpus_busy", busy_of(n)},
                       {"gpu_used", std::move(used)}});
      continue;
    }
    json node = cli::NodeToJson(n);
    node["gpus_busy"] = busy_of(n);
    nodes.push_back(std::move(node));
  }
  json body = {{"nodes", std::move(nodes)}, {"total", all.size()}, {"offset", first}};
  if (brief) {
    json unavailable = json::array();
    for (const proto::NodeStatus& n : all) {
      if (n.state != "UP") {
        unavailable.push_back({{"name", name_of(n)}, {"state", n.state}, {"reason", n.reason}});
      }
    }
    body["unavailable"] = std::move(unavailable);
  }
  return JsonReply(200, body);
}

HttpResponse Projects(CtldLink* link, const Caller& caller, const HttpRequest&,
                      const std::vector<std::string>&) {
  auto reply = Ask<proto::ProjectsReply>(link, caller.token, proto::ProjectsRequest{});
  if (!reply.ok()) return ErrorOf(reply.status());
  json projects = json::array();
  for (const auto& p : reply->projects) projects.push_back(cli::ProjectToJson(p));
  return JsonReply(200, {{"projects", projects}});
}

// The query's since and until (as herd usage takes them) into `since` and `until`, each left as
// it is when absent.
Status ParseRange(const Params& params, int64_t* since, int64_t* until) {
  const int64_t now = static_cast<int64_t>(time(nullptr));
  for (auto [name, out] : {std::pair{"since", since}, std::pair{"until", until}}) {
    const std::string v = Param(params, name);
    if (v.empty()) continue;
    auto t = cli::ParseWhen(v, now);
    if (!t.ok()) return Invalid(std::string(name) + ": " + t.status().message());
    *out = *t;
  }
  return Status::Ok();
}

HttpResponse Usage(CtldLink* link, const Caller& caller, const HttpRequest& req,
                   const std::vector<std::string>&) {
  proto::UsageRequest ur;
  if (Status s = ParseRange(req.params, &ur.since, &ur.until); !s.ok()) return ErrorOf(s);
  if (std::string by = Param(req.params, "by"); !by.empty()) ur.by = by;
  const std::string format = Param(req.params, "format");
  if (!format.empty() && format != "json" && format != "csv") {
    return Error(400, "format: expected json or csv");
  }
  auto reply = Ask<proto::UsageReply>(link, caller.token, ur);
  if (!reply.ok()) return ErrorOf(reply.status());
  if (format == "csv") {
    HttpResponse r;
    r.content_type = "text/csv; charset=utf-8";
    r.body = cli::UsageCsv(*reply);
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"herd-usage.csv\"");
    return r;
  }
  return JsonReply(200, cli::UsageToJson(*reply));
}

// GET /api/v1/history?series=cluster|project|node|job&key=NAME&since=1d&until=&points=N
HttpResponse History(CtldLink* link, const Caller& caller, const HttpRequest& req,
                     const std::vector<std::string>&) {
  proto::HistoryRequest hr;
  hr.series = Param(req.params, "series");
  if (hr.series.empty()) hr.series = "cluster";
  hr.key = Param(req.params, "key");
  if (Status s = ParseRange(req.params, &hr.from, &hr.to); !s.ok()) return ErrorOf(s);
  if (std::string p = Param(req.params, "points"); !p.empty()) {
    auto n = ParseInt(p, "points");
    if (!n.ok()) return ErrorOf(n.status());
    hr.max_points = std::min<int64_t>(*n, proto::kHistoryMaxPoints);
  }
  auto reply = Ask<proto::HistoryReply>(link, caller.token, hr);
  if (!reply.ok()) return ErrorOf(reply.status());
  return JsonReply(200, cli::HistoryToJson(*reply));
}

HttpResponse Submit(CtldLink* link, const Caller& caller, const HttpRequest& req,
                    const std::vector<std::string>&) {
  auto request = ParseSubmission(req.body);
  if (!request.ok()) return ErrorOf(request.status());
  auto reply = Ask<proto::SubmitReply>(link, caller.token, *request);
  if (!reply.ok()) return ErrorOf(reply.status());
  return JsonReply(201, {{"id", reply->id}});
}

// GET /api/v1/jobs/{id}/log?worker=N&stream=stdout|stderr&bytes=N: the last `bytes` of a job's
// output, asked of herd-ctld as herd logs asks (its owner and admins only).
HttpResponse JobLog(CtldLink* link, const Caller& caller, const HttpRequest& req,
                    const std::vector<std::string>& args) {
  auto id = JobIdOf(args[0]);
  if (!id.ok()) return ErrorOf(id.status());
  proto::LogsRequest lr;
  lr.id = *id;
  lr.tail = true;
  lr.max_bytes = kDefaultLogBytes;
  if (std::string w = Param(req.params, "worker"); !w.empty()) {
    auto n = ParseInt(w, "worker");
    if (!n.ok()) return ErrorOf(n.status());
    if (*n > kMaxWorkerIndex) return Error(400, "worker: a job has at most 100000 workers");
    lr.worker = static_cast<int32_t>(*n);
  }
  lr.stream = Param(req.params, "stream");
  if (!lr.stream.empty() && lr.stream != "stdout" && lr.stream != "stderr") {
    return Error(400, "stream: expected stdout or stderr (leave it out for both, as written)");
  }
  if (std::string b = Param(req.params, "bytes"); !b.empty()) {
    auto n = ParseInt(b, "bytes");
    if (!n.ok()) return ErrorOf(n.status());
    if (*n < 1 || *n > kMaxLogBytes) {
      return Error(400, "bytes: expected 1 to " + std::to_string(kMaxLogBytes) +
                            " (the tail's size; the default is " +
                            std::to_string(kDefaultLogBytes) + ")");
    }
    lr.max_bytes = *n;
  }
  auto reply = Ask<proto::LogsReply>(link, caller.token, lr);
  if (!reply.ok()) return ErrorOf(reply.status());
  const int64_t size = static_cast<int64_t>(reply->data.size());
  return JsonReply(200, {{"id", *id},
                         {"worker", lr.worker},
                         {"offset", std::max<int64_t>(0, reply->next_offset - size)},
                         {"next_offset", reply->next_offset},
                         {"eof", reply->eof},
                         {"data", reply->data}});
}

// POST /api/v1/jobs/{id}/ACTION: herd cancel, hold or release of one job, as its user.
HttpResponse JobAction(CtldLink* link, const Caller& caller, const std::string& action,
                       const std::vector<std::string>& args) {
  auto id = JobIdOf(args[0]);
  if (!id.ok()) return ErrorOf(id.status());
  proto::JobActionRequest ar;
  ar.action = action;
  ar.ids = {*id};
  auto reply = Ask<proto::JobActionReply>(link, caller.token, ar);
  if (!reply.ok()) return ErrorOf(reply.status());
  if (reply->results.empty()) return Error(500, "herd-ctld answered no result");
  const proto::JobActionResult& r = reply->results.front();
  int status = 200;
  if (!r.ok) {
    status = r.message.starts_with("permission denied") ? 403
             : r.message == "not found"                 ? 404
                                                        : 409;
  }
  return JsonReply(status, {{"id", r.id}, {"ok", r.ok}, {"message", r.message}});
}

constexpr char kCancel[] = "cancel";
constexpr char kHold[] = "hold";
constexpr char kRelease[] = "release";

template <const char* kAction>
HttpResponse ActionRoute(CtldLink* link, const Caller& caller, const HttpRequest&,
                         const std::vector<std::string>& args) {
  return JobAction(link, caller, kAction, args);
}

struct Route {
  RouteInfo info;
  Handler handle;
};

const std::vector<Route>& ApiRoutes() {
  static const std::vector<Route> kRoutes = {
      {{"GET", "/api/v1/jobs"}, ListJobs},
      {{"POST", "/api/v1/jobs"}, Submit},
      {{"GET", "/api/v1/jobs/{id}"}, ShowJob},
      {{"GET", "/api/v1/jobs/{id}/log"}, JobLog},
      {{"POST", "/api/v1/jobs/{id}/cancel"}, ActionRoute<kCancel>},
      {{"POST", "/api/v1/jobs/{id}/hold"}, ActionRoute<kHold>},
      {{"POST", "/api/v1/jobs/{id}/release"}, ActionRoute<kRelease>},
      {{"GET", "/api/v1/nodes"}, Nodes},
      {{"GET", "/api/v1/projects"}, Projects},
      {{"GET", "/api/v1/usage"}, Usage},
      {{"GET", "/api/v1/history"}, History},
  };
  return kRoutes;
}

// Matches `path` against `pattern`, whose {name} segments take one non-empty segment each.
bool Match(std::string_view pattern, std::string_view path, std::vector<std::string>* args) {
  args->clear();
  while (!pattern.empty() || !path.empty()) {
    if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    const std::string_view p = pattern.substr(0, pattern.find('/'));
    const std::string_view s = path.substr(0, path.find('/'));
    if (p.starts_with('{')) {
      if (s.empty()) return false;
      args->emplace_back(s);
    } else if (p != s) {
      return false;
    }
    pattern.remove_prefix(p.size());
    path.remove_prefix(s.size());
  }
  return true;
}

std::vector<RouteInfo> AllRouteInfos() {
  std::vector<RouteInfo> out = {{"GET", "/api/v1/openapi.json"}};
  for (const Route& r : ApiRoutes()) out.push_back(r.info);
  return out;
}

}  // namespace

std::string HttpRequest::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

Result<proto::SubmitRequest> ParseSubmission(std::string_view body) {
  json j;
  HERD_ASSIGN(j, ParseJson(body));
  if (!j.is_object())
    return Invalid(
        "the job spec must be a JSON object such as "
        "{\"command\": [\"python\", \"train.py\"], \"gpus\": 1}");
  proto::SubmitRequest req;
  model::JobSpec& s = req.spec;
  for (const auto& [key, v] : j.items()) {
    if (key == "command") {
      HERD_ASSIGN(s.argv, StringArray(v, key));
    } else if (key == "name") {
      HERD_ASSIGN(s.name, StringField(v, key));
    } else if (key == "project") {
      HERD_ASSIGN(s.project, StringField(v, key));
    } else if (key == "class") {
      HERD_ASSIGN(s.job_class, StringField(v, key));
    } else if (key == "workers") {
      HERD_ASSIGN(s.workers, CountField(v, key, 100000));
    } else if (key == "gpus") {
      HERD_ASSIGN(s.gpu_milli, UnitField(v, key, model::ParseGpuMilli));
    } else if (key == "gpu_type") {
      std::string t;
      HERD_ASSIGN(t, StringField(v, key));
      s.gpu_types = {t};
    } else if (key == "gpu_memory") {
      HERD_ASSIGN(s.gpu_memory_mib, UnitField(v, key, model::ParseSizeMiB));
    } else if (key == "cpus") {
      HERD_ASSIGN(s.cpus, CountField(v, key, 1 << 20));
    } else if (key == "memory") {
      HERD_ASSIGN(s.memory_mib, UnitField(v, key, model::ParseSizeMiB));
    } else if (key == "time_limit") {
      HERD_ASSIGN(s.time_limit_s, UnitField(v, key, model::ParseDurationSeconds));
    } else if (key == "image") {
      HERD_ASSIGN(s.image, StringField(v, key));
    } else if (key == "cwd") {
      HERD_ASSIGN(s.cwd, StringField(v, key));
    } else if (key == "env") {
      if (!v.is_object()) return FieldError(key, "expected an object of strings");
      for (const auto& [name, value] : v.items()) {
        if (!value.is_string()) return FieldError("env." + name, "expected a string");
        s.env[name] = value.get<std::string>();
      }
    } else if (key == "after") {
      HERD_ASSIGN(s.after, StringArray(v, key));
    } else if (key == "hold") {
      if (!v.is_boolean()) return FieldError(key, "expected true or false");
      s.hold = v.get<bool>();
    } else if (key == "output") {
      HERD_ASSIGN(s.output, StringField(v, key));
    } else if (key == "error") {
      HERD_ASSIGN(s.error, StringField(v, key));
    } else {
      return Invalid("unknown field '" + key.substr(0, 100) +
                     "': see /api/v1/openapi.json for a job spec's fields");
    }
  }
  if (s.argv.empty() || s.argv[0].empty()) {
    return FieldError("command", "required: the program and its arguments, as an array");
  }
  if (!s.gpu_types.empty() && s.gpu_milli == 0) s.gpu_milli = 1000;
  if (s.cwd.empty() && !s.image.empty()) s.cwd = "/";
  if (s.cwd.empty() || s.cwd[0] != '/') {
    return FieldError("cwd",
                      "required: the absolute directory the job runs in (herd submit "
                      "takes the current directory)");
  }
  if (!s.image.empty() && s.image[0] != '/') {
    return FieldError("image", "expected an absolute path");
  }
  for (auto [path, field] : {std::pair{&s.output, "output"}, {&s.error, "error"}}) {
    if (!path->empty() && (*path)[0] != '/') *path = s.cwd + "/" + *path;
    (void)field;
  }
  return req;
}

bool HostAllowed(std::string_view host, const std::vector<std::string>& names) {
  if (host.empty()) return true;
  std::string name;
  if (host.front() == '[') {  // [IPv6]:port
    const size_t end = host.find(']');
    if (end == std::string_view::npos) return false;
    name = std::string(host.substr(1, end - 1));
    in6_addr a6{};
    return inet_pton(AF_INET6, name.c_str(), &a6) == 1;
  }
  name = std::string(host.substr(0, host.rfind(':')));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (!name.empty() && name.back() == '.') name.pop_back();  // the root's dot
  in_addr a4{};
  if (name == "localhost" || inet_pton(AF_INET, name.c_str(), &a4) == 1) return true;
  return std::find(names.begin(), names.end(), name) != names.end();
}

Api::Api(CtldLink* link, Options options) : link_(link), options_(std::move(options)) {}

bool Api::Serves(std::string_view path) {
  return path == "/login" || path == "/logout" || path.starts_with("/api/");
}

std::span<const RouteInfo> Api::Routes() {
  static const std::vector<RouteInfo> kInfos = AllRouteInfos();
  return kInfos;
}

HttpResponse Api::Login(const HttpRequest& req) const {
  const bool has_session =
      !CookieValue(req.Header("cookie"), CookieName(kSessionCookie, options_.tls)).empty();
  if (req.method == "GET") {
    const std::string login = Param(req.params, "token");
    if (!IsLoginToken(login)) {
      return Error(401, "no login token here: open the address `herd web` prints");
    }
    return LoginPage(200, login, has_session);
  }
  if (req.method != "POST") return Error(405, "use GET (the login page) or POST (its form)");
  // Only herd-web's own page posts here: another site's form is refused before the token is used.
  const std::string origin = req.Header("origin");
  if (req.Header("sec-fetch-site") != "same-origin" && !SameOrigin(origin, req.Header("host"))) {
    return Error(403,
                 "login refused: it must be posted from herd-web's own login page (open the "
                 "address `herd web` prints and press its button)");
  }
  const std::string login = FormValue(req.body, "token");
  if (!IsLoginToken(login)) {
    return Error(401, "no login token in the form: open the address `herd web` prints");
  }
  if (has_session && FormValue(req.body, "replace") != "yes") {
    return LoginPage(409, login, /*replace=*/true);  // asks; the token stays unused
  }
  auto session = link_->WebToken({"exchange", login, ""});
  if (!session.ok()) {
    HttpResponse e = ErrorOf(session.status());
    if (e.status == 401) {
      e.body = json({{"error",
                      "this login address is unknown, expired or already used: "
                      "run `herd web` for a new one"}})
                   .dump();
    }
    return e;
  }
  const std::string attrs = std::string("; Path=/; SameSite=Strict; Max-Age=") +
                            std::to_string(options_.session_s) + (options_.tls ? "; Secure" : "");
  HttpResponse o;
  o.status = 303;
  o.headers.emplace_back("Location", "/");
  o.headers.emplace_back("Set-Cookie", CookieName(kSessionCookie, options_.tls) + "=" +
                                           session->token + attrs + "; HttpOnly");
  const std::string csrf = options_.random_token ? options_.random_token() : "";
  o.headers.emplace_back("Set-Cookie", CookieName(kCsrfCookie, options_.tls) + "=" + csrf + attrs);
  o.body = json({{"user", session->user}, {"expires", session->expires}}).dump();
  return o;
}

HttpResponse Api::Handle(const HttpRequest& req) const {
  HttpResponse r = [&]() -> HttpResponse {
    if (req.path == "/api/v1/openapi.json") {
      if (req.method != "GET") return Error(405, "use GET");
      HttpResponse o;
      o.body = std::string(OpenApiJson());
      return o;
    }
    if (req.path == "/login") return Login(req);
    auto caller = Authenticate(req, options_.tls);
    if (!caller.ok()) return ErrorOf(caller.status());
    if (req.path == "/logout") {
      if (req.method != "POST") return Error(405, "use POST");
      auto ended = link_->WebToken({"logout", caller->token, ""});
      if (!ended.ok()) return ErrorOf(ended.status());
      HttpResponse o = JsonReply(200, {{"revoked", ended->revoked}});
      for (const char* name : {kSessionCookie, kCsrfCookie}) {
        o.headers.emplace_back("Set-Cookie", CookieName(name, options_.tls) +
                                                 "=; Path=/; Max-Age=0" +
                                                 (options_.tls ? "; Secure" : ""));
      }
      return o;
    }
    std::vector<std::string> args;
    bool path_known = false;
    for (const Route& route : ApiRoutes()) {
      if (!Match(route.info.path, req.path, &args)) continue;
      path_known = true;
      if (req.method == route.info.method) return route.handle(link_, *caller, req, args);
    }
    if (path_known) return Error(405, "method " + req.method.substr(0, 10) + " not allowed here");
    return Error(404, "no such API path: see /api/v1/openapi.json");
  }();
  // Neither a shared cache nor a browser's keeps an answer that was for one user, and the login
  // address (with its token) is not sent on as a Referer.
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

}  // namespace herd::web
