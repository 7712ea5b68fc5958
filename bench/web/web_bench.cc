// web_bench: how fast the dashboard's pages render for a large cluster. herd-web's own Api and Ui
// (web/api.h, web/ui.h) are served over HTTP as herd-web serves them, but the answers herd-ctld
// would give come from an emulated cluster held in memory (EmulatedCtld: N nodes of 8 GPUs, M
// jobs, history), so that the figure is the HTTP, JSON and browser work alone. A headless
// Chromium (tests/web/chromium.h) logs in and opens each page; the time is from navigation to
// the page's content built and painted (two animation frames after it says it is ready).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/proto/codec.h"
#include "httplib.h"
#include "tests/web/chromium.h"
#include "web/api.h"
#include "web/httplib_glue.h"
#include "web/ui.h"

namespace {

using namespace herd;
using Clock = std::chrono::steady_clock;

constexpr char kLogin[] = "1111111111111111111111111111111111111111111111111111111111111111";
constexpr char kSession[] = "2222222222222222222222222222222222222222222222222222222222222222";
constexpr int kGpusPerNode = 8;
constexpr size_t kJobsPage = 5000;  // herd-ctld's page of JobsReply

// herd-ctld's answers for an emulated cluster: nodes n00001.., jobs 1..M (the first ones running
// on one GPU each while GPUs last, the rest pending), 20 projects, a day of history.
class EmulatedCtld : public web::CtldLink {
 public:
  EmulatedCtld(int nodes, int jobs) {
    for (int i = 0; i < nodes; ++i) {
      proto::NodeStatus n;
      char name[16];
      snprintf(name, sizeof name, "n%05d", i + 1);
      n.name = n.topology.hostname = name;
      n.state = i % 200 == 7 ? "DRAIN" : "UP";
      if (n.state == "DRAIN") n.reason = "ECC errors on GPU 3";
      n.capacity = {kGpusPerNode * 1000, 64, 1 << 20};
      for (int g = 0; g < kGpusPerNode; ++g) {
        n.topology.gpus.push_back({g, "NVIDIA H100 80GB HBM3", 81920, "", 0, -1, "", ""});
        n.gpu_types.push_back("h100");
      }
      n.gpu_milli_used.assign(kGpusPerNode, 0);
      nodes_.push_back(std::move(n));
    }
    const int64_t gpus = static_cast<int64_t>(nodes) * kGpusPerNode;
    for (int i = 0; i < jobs; ++i) {
      model::Job j;
      j.id = i + 1;
      j.user = "user" + std::to_string(i % 300);
      j.spec.name = "train-" + std::to_string(i);
      j.spec.project = "project" + std::to_string(i % 20);
      j.spec.job_class = "train";
      j.spec.gpu_milli = 1000;
      j.spec.workers = 1;
      j.submit_time = 1765000000 + i;
      if (i < gpus * 9 / 10) {
        proto::NodeStatus& n = nodes_[i % nodes];
        const int g = i / nodes;
        j.state = model::JobState::kRunning;
        j.start_time = j.submit_time + 5;
        j.placement.push_back({n.name, {g}, 1000, {}, 0, ""});
        n.gpu_milli_used[g] = 1000;
        n.allocated.gpu_milli += 1000;
        stats_.gpus.push_back({n.name, "h100", "", 0, 1000, 100 * (i % 11)});
      } else {
        j.state = model::JobState::kPending;
        j.reason = "waiting for 1 GPU of type h100: the project is over its fair share";
      }
      jobs_.push_back(std::move(j));
    }
    for (int p = 0; p < 20; ++p) {
      proto::ProjectStatus s;
      s.name = "project" + std::to_string(p);
      s.is_project = true;
      s.deserved = {gpus * 1000 / 20, 0, 0};
      projects_.projects.push_back(std::move(s));
    }
  }

  Result<proto::Envelope> Relay(const std::string& token, proto::Envelope inner) override {
    if (token != kSession) return BadToken("the web token is unknown, expired or revoked");
    using proto::MessageName;
    if (inner.type == MessageName<proto::JobsRequest>()) {
      auto req = proto::BodyOf<proto::JobsRequest>(inner);
      if (!req.ok()) return req.status();
      proto::JobsReply reply;
      const size_t limit = req->limit > 0 ? std::min<size_t>(req->limit, kJobsPage) : kJobsPage;
      for (size_t i = static_cast<size_t>(req->after_id); i < jobs_.size(); ++i) {
        const model::Job& j = jobs_[i];
        const bool active = j.state == model::JobState::kRunning ||
                            j.state == model::JobState::kPending;
        if (!req->states.empty() &&
            std::find(req->states.begin(), req->states.end(), model::JobStateName(j.state)) ==
                req->states.end()) {
          continue;
        }
        if ((!active && !req->all) || (!req->user.empty() && j.user != req->user)) continue;
        if (reply.jobs.size() == limit) {
          reply.more = true;
          break;
        }
        reply.jobs.push_back(j);
      }
      return proto::MakeEnvelope(reply);
    }
    if (inner.type == MessageName<proto::NodesRequest>()) {
      return proto::MakeEnvelope(proto::NodesReply{nodes_});
    }
    if (inner.type == MessageName<proto::StatsRequest>()) return proto::MakeEnvelope(stats_);
    if (inner.type == MessageName<proto::ProjectsRequest>()) {
      return proto::MakeEnvelope(projects_);
    }
    if (inner.type == MessageName<proto::HistoryRequest>()) {
      auto req = proto::BodyOf<proto::HistoryRequest>(inner);
      if (!req.ok()) return req.status();
      proto::HistoryReply h;
      h.series = req->series;
      h.key = req->key;
      h.step_s = 60;
      h.fields = {"gpus_milli", "allocated_milli", "measured_milli",
                  "busy_milli", "running_jobs",    "pending_jobs"};
      const int64_t gpus = static_cast<int64_t>(nodes_.size()) * kGpusPerNode * 1000;
      for (int i = 0; i < 1440; ++i) {
        h.points.push_back({1765000000 + 60 * i, 1,
                            {gpus, gpus * 9 / 10, gpus * 9 / 10, gpus * (40 + i % 20) / 100,
                             static_cast<int64_t>(jobs_.size() / 3),
                             static_cast<int64_t>(jobs_.size() * 2 / 3)}});
      }
      return proto::MakeEnvelope(h);
    }
    return Internal("the emulated cluster does not answer " + inner.type);
  }

  Result<proto::WebTokenReply> WebToken(const proto::WebTokenRequest& request) override {
    if (request.action == "exchange" && request.token == kLogin) {
      return proto::WebTokenReply{kSession, 4000000000, "admin", 0, ""};
    }
    return BadToken("the web token is unknown, expired or revoked");
  }

 private:
  std::vector<proto::NodeStatus> nodes_;
  std::vector<model::Job> jobs_;
  proto::StatsReply stats_;
  proto::ProjectsReply projects_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"web_bench: time to render the dashboard's pages for an emulated cluster"};
  int nodes = 4000, jobs = 100000, runs = 3;
  std::string profile = "/tmp/web_bench-chromium";
  app.add_option("--nodes", nodes, "emulated nodes (8 GPUs each)")->capture_default_str();
  app.add_option("--jobs", jobs, "emulated jobs")->capture_default_str();
  app.add_option("--runs", runs, "loads of each page (the median is reported)")
      ->capture_default_str();
  app.add_option("--profile", profile, "Chromium's profile directory")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  EmulatedCtld ctld(nodes, jobs);
  const web::Api api(&ctld, {.random_token = [] { return std::string(kSession); }});
  const web::Ui ui(web::kDygraphsDir);
  httplib::Server server;
  server.Get(R"(/|/ui/.*)", [&ui](const httplib::Request& req, httplib::Response& res) {
    web::ToHttplib(ui.Serve(req.path).value_or(web::HttpResponse{404, "text/plain", "", {}}), res);
  });
  for (const char* pattern : {"/login", R"(/api/.*)"}) {
    auto serve = [&api](const httplib::Request& req, httplib::Response& res) {
      web::ToHttplib(api.Handle(web::FromHttplib(req)), res);
    };
    server.Get(pattern, serve);
    server.Post(pattern, serve);
  }
  // herd-web's own time and the size of each answer the pages ask for (no HTTP, no browser).
  printf("herd-web's answers (median of %d):\n", runs);
  for (const char* path :
       {"/api/v1/history?series=cluster&since=1d", "/api/v1/jobs?state=RUNNING&limit=200",
        "/api/v1/jobs?limit=200", "/api/v1/nodes", "/api/v1/nodes?brief=true&limit=1000",
        "/api/v1/projects"}) {
    web::HttpRequest req{
        "GET", path, {}, {{"authorization", std::string("Bearer ") + kSession}}, ""};
    const std::string_view p(path);
    if (const size_t q = p.find('?'); q != std::string_view::npos) {
      req.path = std::string(p.substr(0, q));
      for (std::string_view rest = p.substr(q + 1); !rest.empty();) {
        const std::string_view kv = rest.substr(0, rest.find('&'));
        rest = kv.size() == rest.size() ? "" : rest.substr(kv.size() + 1);
        const size_t eq = kv.find('=');
        req.params.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
      }
    }
    std::vector<double> ms;
    size_t bytes = 0;
    int status = 0;
    for (int r = 0; r < runs; ++r) {
      const auto start = Clock::now();
      const web::HttpResponse res = api.Handle(req);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      bytes = res.body.size();
      status = res.status;
    }
    std::sort(ms.begin(), ms.end());
    printf("  %-42s %3d %7.0f ms %9zu bytes\n", path, status, ms[ms.size() / 2], bytes);
  }

  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread serving([&server] { server.listen_after_bind(); });
  const std::string base = "http://127.0.0.1:" + std::to_string(port);

  int code = 0;
  {
    auto browser = testing::Chromium::Start(profile);
    if (!browser.ok()) {
      fprintf(stderr, "web_bench: %s\n", browser.status().message().c_str());
      code = 2;
    } else {
      testing::Chromium& b = **browser;
      const auto ready = [](const std::string& page) {
        return "document.getElementById('page')?.dataset.state === 'ready' && "
               "document.getElementById('page').dataset.page === '" +
               page + "'";
      };
      if (!b.Navigate(base + "/login?token=" + kLogin).ok() ||
          !b.Evaluate("document.querySelector('form').submit(), true").ok() ||
          !b.WaitFor(ready("overview"), std::chrono::seconds(30))) {
        fprintf(stderr, "web_bench: cannot log in\n");
        code = 1;
      }
      printf("%d nodes x %d GPUs, %d jobs; median of %d loads, navigation to rendered\n", nodes,
             kGpusPerNode, jobs, runs);
      for (const char* page : {"overview", "jobs", "nodes", "projects"}) {
        if (code != 0) break;
        std::vector<double> ms;
        for (int r = 0; r < runs; ++r) {
          (void)b.Navigate("about:blank#");
          const auto start = Clock::now();
          if (!b.Navigate(base + "/#" + page).ok() ||
              !b.WaitFor(ready(page), std::chrono::seconds(60)) ||
              !b.Evaluate("new Promise(r => requestAnimationFrame(() => "
                          "requestAnimationFrame(() => r(true))))")
                   .ok()) {
            fprintf(stderr, "web_bench: page %s did not render\n", page);
            code = 1;
            break;
          }
          ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        }
        if (ms.empty()) break;
        std::sort(ms.begin(), ms.end());
        const double median = ms[ms.size() / 2];
        printf("%-9s %7.0f ms  %s\n", page, median, median < 2000 ? "(< 2 s)" : "(over 2 s)");
      }
    }
  }
  server.stop();
  serving.join();
  return code;
}
