// herd-web's REST API apart from HTTP and herd-ctld (web/api.h), against a FakeCtldLink that
// records what herd-web would relay: no token, no request to herd-ctld; every request carries its
// caller's token; bad input is refused before herd-ctld is asked; the login sets a cookie a script
// cannot read; a cookie POST needs the CSRF header; the OpenAPI description lists exactly the
// routes served.
#include "web/api.h"

#include <set>
#include <utility>

#include "common/proto/codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace herd::web {
namespace {

using ::testing::HasSubstr;

constexpr char kToken[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
// A job name a user chose to attack the dashboard with.
constexpr char kMarkupName[] = "<img src=x onerror=alert(1)><script>alert(2)</script>";
constexpr char kLogin[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

class FakeCtldLink : public CtldLink {
 public:
  Result<proto::Envelope> Relay(const std::string& token, proto::Envelope inner) override {
    relayed.emplace_back(token, inner.type);
    if (token != kToken) return BadToken("the web token is unknown, expired or revoked");
    if (inner.type == proto::MessageName<proto::SubmitRequest>()) {
      auto req = proto::BodyOf<proto::SubmitRequest>(inner);
      if (!req.ok()) return req.status();
      submitted.push_back(*req);
      return proto::MakeEnvelope(proto::SubmitReply{42});
    }
    if (inner.type == proto::MessageName<proto::JobsRequest>()) {
      model::Job j;
      j.id = 7;
      j.user = "alice";
      j.spec.project = "vision";
      j.spec.name = kMarkupName;
      j.reason_code = "quota_held";
      return proto::MakeEnvelope(proto::JobsReply{{j}, false});
    }
    if (inner.type == proto::MessageName<proto::NodesRequest>()) {
      proto::NodesReply reply;
      for (const char* name : {"n1", "n2", "n3", "n4", "n5"}) {
        proto::NodeStatus n;
        n.name = name;
        n.state = "UP";
        n.topology.gpus.push_back({0, "NVIDIA A100", 40960, "", 0, -1, "", ""});
        n.topology.gpus.push_back({1, "NVIDIA A100", 40960, "", 0, -1, "", ""});
        n.gpu_milli_used = {1000, 500};
        n.allocated.gpu_milli = 1500;
        n.labels = {{"rack", "r1"}};
        reply.nodes.push_back(std::move(n));
      }
      reply.nodes[4].state = "DRAIN";
      reply.nodes[4].reason = "ECC errors";
      return proto::MakeEnvelope(reply);
    }
    if (inner.type == proto::MessageName<proto::StatsRequest>()) {
      proto::StatsReply reply;
      reply.gpus = {{"n2", "a100", "", 2, 1500, 900}, {"n2", "a100", "vision", 0, 1500, 900}};
      return proto::MakeEnvelope(reply);
    }
    if (inner.type == proto::MessageName<proto::LogsRequest>()) {
      auto req = proto::BodyOf<proto::LogsRequest>(inner);
      if (!req.ok()) return req.status();
      logs.push_back(*req);
      if (req->id == 7) return Denied("permission denied: job 7 belongs to alice");
      // 100 bytes of output; the tail is its last max_bytes.
      const std::string out = std::string(91, 'x') + "step 10\xff\n";
      const size_t n = std::min<size_t>(out.size(), req->max_bytes);
      return proto::MakeEnvelope(proto::LogsReply{out.substr(out.size() - n), 100, false});
    }
    if (inner.type == proto::MessageName<proto::WhyRequest>()) {
      auto req = proto::BodyOf<proto::WhyRequest>(inner);
      if (!req.ok()) return req.status();
      proto::WhyReply reply;
      reply.job.id = req->id;
      reply.job.user = req->id == 7 ? "alice" : "bob";
      reply.may_act = req->id != 7;
      reply.job.reason =
          "project vision is at its limit of 4 GPUs (4 GPUs in use, job needs 1 GPU)";
      reply.job.reason_code = "limit";
      reply.waits_for = "quota";
      return proto::MakeEnvelope(reply);
    }
    if (inner.type == proto::MessageName<proto::JobActionRequest>()) {
      auto req = proto::BodyOf<proto::JobActionRequest>(inner);
      if (!req.ok()) return req.status();
      actions.push_back(*req);
      if (req->ids == std::vector<model::JobId>{8}) {
        return proto::MakeEnvelope(proto::JobActionReply{{{8, true, req->action + " done", 0}}});
      }
      return proto::MakeEnvelope(
          proto::JobActionReply{{{7, false, "permission denied: job 7 belongs to alice", 0}}});
    }
    return Internal("FakeCtldLink: no answer for " + inner.type);
  }
  Result<proto::WebTokenReply> WebToken(const proto::WebTokenRequest& request) override {
    token_requests.push_back(request);
    if (request.action == "exchange" && request.token == kLogin) {
      return proto::WebTokenReply{kToken, 1700000000, "alice", 0, ""};
    }
    return BadToken("the web token is unknown, expired or revoked");
  }

  std::vector<std::pair<std::string, std::string>> relayed;  // token, type
  std::vector<proto::SubmitRequest> submitted;
  std::vector<proto::LogsRequest> logs;
  std::vector<proto::JobActionRequest> actions;
  std::vector<proto::WebTokenRequest> token_requests;
};

class ApiTest : public ::testing::Test {
 protected:
  HttpResponse Call(const std::string& method, const std::string& path,
                    std::map<std::string, std::string> headers = {}, std::string body = "",
                    std::multimap<std::string, std::string> params = {}) {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.headers = std::move(headers);
    r.body = std::move(body);
    r.params = std::move(params);
    return api_.Handle(r);
  }
  static std::map<std::string, std::string> Bearer(const std::string& token = kToken) {
    return {{"authorization", "Bearer " + token}};
  }
  static std::string HeaderOf(const HttpResponse& r, const std::string& name) {
    std::string all;
    for (const auto& [n, v] : r.headers) {
      if (n == name) all += v + "\n";
    }
    return all;
  }

  FakeCtldLink link_;
  Api api_{&link_, {.tls = true, .session_s = 3600, .random_token = [] {
                      return std::string("csrf-value");
                    }}};
};

TEST_F(ApiTest, WithoutATokenNothingIsAskedAndTheAnswerIs401) {
  for (const char* path :
       {"/api/v1/jobs", "/api/v1/jobs/7", "/api/v1/nodes", "/api/v1/projects", "/api/v1/usage"}) {
    HttpResponse r = Call("GET", path);
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_THAT(r.body, HasSubstr("herd web")) << path;
    EXPECT_EQ(r.body.find("alice"), std::string::npos);
  }
  EXPECT_EQ(Call("GET", "/api/v1/jobs", {{"authorization", "Basic abc"}}).status, 401);
  EXPECT_TRUE(link_.relayed.empty());
}

// The dashboard reads job names from the API: they come as JSON strings that no browser renders
// as a page (application/json, nosniff), and the dashboard's script only ever sets them as text
// (UiTest.TheScriptNeverTurnsDataIntoHtml, and the browser test).
TEST_F(ApiTest, AJobNameWithMarkupComesAsAJsonStringNeverAsHtml) {
  HttpResponse r = Call("GET", "/api/v1/jobs", Bearer());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(HeaderOf(r, "X-Content-Type-Options"), "nosniff\n");
  EXPECT_EQ(nlohmann::json::parse(r.body)["jobs"][0]["name"], kMarkupName);
}

TEST_F(ApiTest, AWrongTokenGets401AndNoData) {
  HttpResponse r = Call("GET", "/api/v1/jobs", Bearer(std::string(64, 'f')));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(HeaderOf(r, "WWW-Authenticate"), "Bearer\n");
  EXPECT_EQ(r.body.find("alice"), std::string::npos) << r.body;
}

TEST_F(ApiTest, EachRequestCarriesItsCallersToken) {
  HttpResponse r = Call("GET", "/api/v1/jobs", Bearer(), "", {{"project", "vision"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  ASSERT_EQ(j["jobs"].size(), 1u);
  EXPECT_EQ(j["jobs"][0]["id"], 7);
  EXPECT_EQ(j["jobs"][0]["user"], "alice");
  ASSERT_EQ(link_.relayed.size(), 1u);
  EXPECT_EQ(link_.relayed[0], (std::pair<std::string, std::string>{kToken, "jobs"}));
  EXPECT_EQ(HeaderOf(r, "Cache-Control"), "no-store\n");
  // Another project's filter leaves the job out.
  r = Call("GET", "/api/v1/jobs", Bearer(), "", {{"project", "nlp"}});
  EXPECT_EQ(nlohmann::json::parse(r.body)["jobs"].size(), 0u);
}

TEST_F(ApiTest, SubmitMapsTheJsonSpecToAJobSpec) {
  HttpResponse r = Call("POST", "/api/v1/jobs", Bearer(),
                        R"({"command": ["python", "train.py"], "gpus": 0.5, "memory": "16G",
                            "time_limit": "1h30m", "cwd": "/home/alice", "project": "vision",
                            "env": {"SEED": "1"}, "output": "out.txt", "workers": 2})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["id"], 42);
  ASSERT_EQ(link_.submitted.size(), 1u);
  const model::JobSpec& s = link_.submitted[0].spec;
  EXPECT_EQ(s.argv, (std::vector<std::string>{"python", "train.py"}));
  EXPECT_EQ(s.gpu_milli, 500);
  EXPECT_EQ(s.memory_mib, 16 * 1024);
  EXPECT_EQ(s.time_limit_s, 5400);
  EXPECT_EQ(s.workers, 2);
  EXPECT_EQ(s.env.at("SEED"), "1");
  EXPECT_EQ(s.output, "/home/alice/out.txt");
}

TEST_F(ApiTest, BadBodiesAre400WithAMessageAndHerdCtldIsNotAsked) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not valid JSON"},
      {"[1, 2]", "JSON object"},
      {std::string(100, '[') + std::string(100, ']'), "nests deeper"},
      {R"({"command": "sleep 1", "cwd": "/"})", "'command'"},
      {R"({"command": ["sleep"], "cwd": "/", "gpus": "lots"})", "'gpus'"},
      {R"({"command": ["sleep"], "cwd": "/", "gpus": true})", "'gpus'"},
      {R"({"command": ["sleep"], "cwd": "/", "workers": 0})", "'workers'"},
      {R"({"command": ["sleep"], "cwd": "/", "env": {"A": 1}})", "'env.A'"},
      {R"({"command": ["sleep"], "cwd": "relative"})", "'cwd'"},
      {R"({"command": ["sleep"]})", "'cwd'"},
      {R"({"command": ["sleep"], "cwd": "/", "gpu": 1})", "unknown field 'gpu'"},
      {"\xff\xfe{}", "not valid JSON"},
  };
  for (const auto& [body, message] : cases) {
    HttpResponse r = Call("POST", "/api/v1/jobs", Bearer(), body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_THAT(r.body, HasSubstr(message)) << body;
  }
  EXPECT_TRUE(link_.relayed.empty());
}

TEST_F(ApiTest, CancelOfAnotherUsersJobIs403) {
  HttpResponse r = Call("POST", "/api/v1/jobs/7/cancel", Bearer());
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_THAT(r.body, HasSubstr("belongs to alice"));
  EXPECT_EQ(Call("POST", "/api/v1/jobs/x/cancel", Bearer()).status, 400);
}

// The job page's buttons: hold and release are relayed like cancel, one named job each; herd-ctld's
// refusal of another user's job is a 403.
TEST_F(ApiTest, HoldAndReleaseActOnTheNamedJobAndAnotherUsersJobIs403) {
  for (const char* action : {"cancel", "hold", "release"}) {
    link_.actions.clear();
    HttpResponse mine = Call("POST", std::string("/api/v1/jobs/8/") + action, Bearer());
    EXPECT_EQ(mine.status, 200) << action << ": " << mine.body;
    ASSERT_EQ(link_.actions.size(), 1u) << action;
    EXPECT_EQ(link_.actions[0].action, action);
    EXPECT_EQ(link_.actions[0].ids, std::vector<model::JobId>{8});
    HttpResponse other = Call("POST", std::string("/api/v1/jobs/7/") + action, Bearer());
    EXPECT_EQ(other.status, 403) << action << ": " << other.body;
    EXPECT_EQ(Call("POST", std::string("/api/v1/jobs/7/") + action).status, 401) << action;
    EXPECT_EQ(Call("GET", std::string("/api/v1/jobs/8/") + action, Bearer()).status, 405);
  }
  EXPECT_EQ(Call("POST", "/api/v1/jobs/8/suspend", Bearer()).status, 404);
}

TEST_F(ApiTest, AJobSaysWhetherItsViewerMayActOnIt) {
  using nlohmann::json;
  EXPECT_EQ(json::parse(Call("GET", "/api/v1/jobs/8", Bearer()).body)["may_act"], true);
  EXPECT_EQ(json::parse(Call("GET", "/api/v1/jobs/7", Bearer()).body)["may_act"], false);
}

// A job as the API gives it, in a list or alone, carries its reason's code as herd jobs --json.
TEST_F(ApiTest, AJobCarriesItsReasonCode) {
  using nlohmann::json;
  EXPECT_EQ(json::parse(Call("GET", "/api/v1/jobs", Bearer()).body)["jobs"][0]["reason_code"],
            "quota_held");
  const json shown = json::parse(Call("GET", "/api/v1/jobs/8", Bearer()).body);
  EXPECT_EQ(shown["job"]["reason_code"], "limit");
  EXPECT_EQ(shown["waits_for"], "quota");
}

TEST_F(ApiTest, TheLogIsTheTailOfTheJobsOutputAskedAsHerdLogsAsks) {
  using nlohmann::json;
  HttpResponse r = Call("GET", "/api/v1/jobs/8/log", Bearer());
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(link_.logs.size(), 1u);
  EXPECT_EQ(link_.logs[0].id, 8);
  EXPECT_TRUE(link_.logs[0].tail);
  EXPECT_EQ(link_.logs[0].max_bytes, kDefaultLogBytes);
  EXPECT_EQ(link_.logs[0].stream, "");
  const json body = json::parse(r.body);
  EXPECT_EQ(body["offset"], 0);
  EXPECT_EQ(body["next_offset"], 100);
  EXPECT_EQ(body["eof"], false);
  // A byte that is not UTF-8 still gives valid JSON.
  EXPECT_THAT(body["data"].get<std::string>(), HasSubstr("step 10"));

  r = Call("GET", "/api/v1/jobs/8/log", Bearer(), "",
           {{"bytes", "9"}, {"stream", "stderr"}, {"worker", "2"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(link_.logs.back().max_bytes, 9);
  EXPECT_EQ(link_.logs.back().stream, "stderr");
  EXPECT_EQ(link_.logs.back().worker, 2);
  EXPECT_EQ(json::parse(r.body)["offset"], 91);

  // Another user's output: herd-ctld's refusal, as for herd logs.
  r = Call("GET", "/api/v1/jobs/7/log", Bearer());
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.body.find("step 10"), std::string::npos);
  EXPECT_EQ(Call("GET", "/api/v1/jobs/8/log").status, 401);
}

TEST_F(ApiTest, BadLogParametersAre400WithAMessageAndHerdCtldIsNotAsked) {
  const std::vector<std::pair<std::multimap<std::string, std::string>, std::string>> cases = {
      {{{"bytes", "0"}}, "bytes: expected 1 to 1048576"},
      {{{"bytes", "1048577"}}, "bytes: expected 1 to 1048576"},
      {{{"bytes", "-5"}}, "bytes: expected a whole number"},
      {{{"bytes", "lots"}}, "bytes: expected a whole number"},
      {{{"stream", "stdin"}}, "stream: expected stdout or stderr"},
      {{{"worker", "-1"}}, "worker: expected a whole number"},
      {{{"worker", "999999999999"}}, "worker: a job has at most"},
  };
  for (const auto& [params, message] : cases) {
    HttpResponse r = Call("GET", "/api/v1/jobs/8/log", Bearer(), "", params);
    EXPECT_EQ(r.status, 400) << message;
    EXPECT_THAT(r.body, HasSubstr(message));
  }
  EXPECT_EQ(Call("GET", "/api/v1/jobs/x/log", Bearer()).status, 400);
  EXPECT_TRUE(link_.logs.empty());
}

// DNS rebinding: a Host header that names another site is refused; addresses, localhost and the
// configured names pass.
TEST(HostAllowedTest, OnlyAddressesLocalhostAndTheConfiguredNamesPass) {
  const std::vector<std::string> names = {"ctl01", "herd.example.org"};
  for (const char* host :
       {"127.0.0.1:9180", "127.0.0.1", "10.1.2.3:80", "[::1]:9180", "[fe80::1]", "localhost:9180",
        "LOCALHOST", "ctl01:9180", "Herd.Example.Org", "herd.example.org.:443", ""}) {
    EXPECT_TRUE(HostAllowed(host, names)) << host;
  }
  for (const char* host :
       {"evil.example:9180", "evil.example", "ctl01.evil.example:9180", "127.0.0.1.evil.example",
        "[evil]:80", "[::1", "localhost.evil:1", "1.2.3.4.5"}) {
    EXPECT_FALSE(HostAllowed(host, names)) << host;
  }
}

// The login address serves a page that asks; nothing is swapped and no cookie
// set until its form is posted, from this same origin.
TEST_F(ApiTest, TheLoginAddressServesAFormAndSetsNoCookie) {
  HttpResponse r = Call("GET", "/login", {}, "", {{"token", kLogin}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(r.body, HasSubstr("<form method=\"post\" action=\"/login\">"));
  EXPECT_THAT(r.body, HasSubstr(std::string("name=\"token\" value=\"") + kLogin + "\""));
  EXPECT_THAT(HeaderOf(r, "Content-Security-Policy"), HasSubstr("frame-ancestors 'none'"));
  EXPECT_EQ(HeaderOf(r, "Set-Cookie"), "");
  EXPECT_TRUE(link_.token_requests.empty());
  // Only a token's hex digits are written into the page.
  r = Call("GET", "/login", {}, "", {{"token", "\"><script>alert(1)</script>"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body.find("<script>"), std::string::npos) << r.body;
}

TEST_F(ApiTest, LoginPostSwapsTheTokenForAnHttpOnlyStrictHostCookie) {
  const std::string form = std::string("token=") + kLogin;
  HttpResponse r =
      Call("POST", "/login", {{"host", "herd:9180"}, {"origin", "https://herd:9180"}}, form);
  ASSERT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(HeaderOf(r, "Location"), "/\n");
  const std::string cookies = HeaderOf(r, "Set-Cookie");
  EXPECT_THAT(cookies, HasSubstr(std::string("__Host-herd_session=") + kToken +
                                 "; Path=/; SameSite=Strict; Max-Age=3600; Secure; HttpOnly\n"));
  EXPECT_THAT(cookies, HasSubstr("__Host-herd_csrf=csrf-value; Path=/; SameSite=Strict"));
  EXPECT_EQ(HeaderOf(r, "Referrer-Policy"), "no-referrer\n");
  ASSERT_EQ(link_.token_requests.size(), 1u);
  EXPECT_EQ(link_.token_requests[0].action, "exchange");

  // Sec-Fetch-Site: same-origin does as well as an Origin; a used token is
  // refused.
  r = Call("POST", "/login", {{"sec-fetch-site", "same-origin"}}, "token=" + std::string(64, 'b'));
  EXPECT_EQ(r.status, 401);
  EXPECT_THAT(r.body, HasSubstr("already used"));
  EXPECT_EQ(HeaderOf(r, "Set-Cookie"), "");

  // Without TLS the names have no __Host- prefix (browsers take it only with
  // Secure).
  Api plain{&link_, {.tls = false, .session_s = 60}};
  HttpRequest req{"POST", "/login", {}, {{"sec-fetch-site", "same-origin"}}, form};
  EXPECT_THAT(HeaderOf(plain.Handle(req), "Set-Cookie"),
              HasSubstr(std::string("herd_session=") + kToken + "; Path=/; SameSite=Strict"));
}

// Login CSRF: a page of another site that sends a victim's browser to the login
// address of the attacker's token, or posts it, must not log the victim in as
// the attacker.
TEST_F(ApiTest, ALoginFromAnotherSiteOrALinkAloneSetsNoSession) {
  const std::string form = std::string("token=") + kLogin;
  EXPECT_EQ(HeaderOf(Call("GET", "/login", {}, "", {{"token", kLogin}}), "Set-Cookie"), "");
  for (const auto& headers : std::vector<std::map<std::string, std::string>>{
           {},
           {{"host", "herd:9180"}, {"origin", "https://evil.example"}},
           {{"host", "herd:9180"}, {"origin", "null"}},
           {{"host", "herd:9180"}, {"sec-fetch-site", "cross-site"}},
           {{"host", "herd:9180"}, {"sec-fetch-site", "same-site"}}}) {
    HttpResponse r = Call("POST", "/login", headers, form);
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_THAT(r.body, HasSubstr("own login page"));
    EXPECT_EQ(HeaderOf(r, "Set-Cookie"), "");
  }
  EXPECT_TRUE(link_.token_requests.empty());  // the token is not even used up
}

// Session fixation: a browser already logged in is asked before its session is
// replaced.
TEST_F(ApiTest, ALoginAsksBeforeReplacingTheBrowsersSession) {
  const std::map<std::string, std::string> same = {
      {"host", "herd:9180"},
      {"origin", "https://herd:9180"},
      {"cookie", std::string("__Host-herd_session=") + std::string(64, 'c')}};
  HttpResponse r = Call("POST", "/login", same, std::string("token=") + kLogin);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_THAT(r.body, HasSubstr("already logged in"));
  EXPECT_THAT(r.body, HasSubstr("name=\"replace\" value=\"yes\""));
  EXPECT_EQ(HeaderOf(r, "Set-Cookie"), "");
  EXPECT_TRUE(link_.token_requests.empty());
  EXPECT_THAT(Call("GET", "/login", same, "", {{"token", kLogin}}).body,
              HasSubstr("already logged in"));
  r = Call("POST", "/login", same, std::string("token=") + kLogin + "&replace=yes");
  EXPECT_EQ(r.status, 303) << r.body;
  EXPECT_THAT(HeaderOf(r, "Set-Cookie"), HasSubstr(kToken));
}

TEST_F(ApiTest, ACookiePostNeedsTheCsrfHeaderAndTheSameOrigin) {
  const std::string cookie =
      std::string("__Host-herd_session=") + kToken + "; __Host-herd_csrf=csrf-value";
  const std::string spec = R"({"command": ["true"], "cwd": "/"})";
  // GET with the cookie alone is fine.
  EXPECT_EQ(Call("GET", "/api/v1/jobs", {{"cookie", cookie}}).status, 200);
  // A form posted from another site carries the cookie (were it not SameSite) but no header.
  EXPECT_EQ(Call("POST", "/api/v1/jobs", {{"cookie", cookie}}, spec).status, 403);
  EXPECT_EQ(
      Call("POST", "/api/v1/jobs", {{"cookie", cookie}, {"x-herd-csrf", "guess"}}, spec).status,
      403);
  EXPECT_EQ(Call("POST", "/api/v1/jobs",
                 {{"cookie", cookie},
                  {"x-herd-csrf", "csrf-value"},
                  {"host", "herd:9180"},
                  {"origin", "https://evil.example"}},
                 spec)
                .status,
            403);
  EXPECT_TRUE(link_.submitted.empty());
  HttpResponse ok = Call("POST", "/api/v1/jobs",
                         {{"cookie", cookie},
                          {"x-herd-csrf", "csrf-value"},
                          {"host", "herd:9180"},
                          {"origin", "https://herd:9180"}},
                         spec);
  EXPECT_EQ(ok.status, 201) << ok.body;
}

TEST_F(ApiTest, NodesComeWholeOrAsABriefPageWithEveryNodeThatIsNotUp) {
  using nlohmann::json;
  const json whole = json::parse(Call("GET", "/api/v1/nodes", Bearer()).body);
  ASSERT_EQ(whole["nodes"].size(), 5u);
  EXPECT_EQ(whole["total"], 5);
  EXPECT_EQ(whole["nodes"][0]["labels"]["rack"], "r1");  // the full form, as herd nodes --json
  EXPECT_EQ(whole["nodes"][0]["gpus_busy"], nullptr);    // herd-ctld said nothing of this node
  EXPECT_FALSE(whole.contains("unavailable"));

  const HttpResponse r = Call("GET", "/api/v1/nodes", Bearer(), "",
                              {{"brief", "true"}, {"offset", "1"}, {"limit", "2"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json page = json::parse(r.body);
  EXPECT_EQ(page["total"], 5);
  EXPECT_EQ(page["offset"], 1);
  ASSERT_EQ(page["nodes"].size(), 2u);
  const json& n2 = page["nodes"][0];
  EXPECT_EQ(n2["name"], "n2");
  EXPECT_EQ(n2["gpus_used"], 1.5);
  EXPECT_EQ(n2["gpus_busy"], 0.9);  // the node's row of herd-ctld's stats, not a project's
  EXPECT_EQ(n2["gpu_used"], json::parse("[1.0, 0.5]"));
  EXPECT_FALSE(n2.contains("labels"));
  EXPECT_EQ(page["nodes"][1]["name"], "n3");
  // The drained node is on no page asked for, yet listed.
  EXPECT_EQ(page["unavailable"],
            json::parse(R"([{"name": "n5", "state": "DRAIN", "reason": "ECC errors"}])"));

  const json past = json::parse(
      Call("GET", "/api/v1/nodes", Bearer(), "", {{"brief", "1"}, {"offset", "9"}}).body);
  EXPECT_TRUE(past["nodes"].empty());
  EXPECT_EQ(past["total"], 5);

  for (const auto& [name, value] : {std::pair{"offset", "-1"}, std::pair{"limit", "lots"}}) {
    const HttpResponse bad = Call("GET", "/api/v1/nodes", Bearer(), "", {{name, value}});
    EXPECT_EQ(bad.status, 400) << name;
    EXPECT_THAT(bad.body, HasSubstr(std::string(name) + ": expected a whole number")) << bad.body;
  }
}

TEST_F(ApiTest, UnknownPathsAre404AndWrongMethods405) {
  EXPECT_EQ(Call("GET", "/api/v1/nope", Bearer()).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/v1/jobs/7", Bearer()).status, 405);
  EXPECT_EQ(Call("GET", "/api/v1/jobs/7/cancel", Bearer()).status, 405);
  EXPECT_EQ(Call("GET", "/api/v1/jobs//cancel", Bearer()).status, 404);
}

// Every route the OpenAPI description lists is served, and every route served is listed.
TEST_F(ApiTest, OpenApiDescriptionListsExactlyTheRoutesServed) {
  HttpResponse r = Call("GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  auto doc = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["openapi"].get<std::string>().substr(0, 2), "3.");
  std::set<std::pair<std::string, std::string>> listed, served;
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      std::string upper = method;
      for (char& c : upper) c = static_cast<char>(std::toupper(c));
      listed.emplace(upper, path);
    }
  }
  for (const RouteInfo& route : Api::Routes()) served.emplace(route.method, route.path);
  EXPECT_EQ(listed, served);
  // And each answers as a route, not as an unknown path.
  for (const auto& [method, path] : listed) {
    std::string concrete = path;
    if (size_t at = concrete.find("{id}"); at != std::string::npos) concrete.replace(at, 4, "7");
    EXPECT_NE(Call(method, concrete, Bearer(), "{}").status, 404) << method << " " << path;
  }
}

}  // namespace
}  // namespace herd::web
