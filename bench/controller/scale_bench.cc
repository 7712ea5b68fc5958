// scale_bench: drives herd-ctld for bench/controller/scale through the real client stack (one
// persistent DEALER of common/net, the proto codec, MUNGE credentials): many submits in flight
// at once, then, on request, polls until every submitted job is RUNNING.
//
//   scale_bench --endpoint E [--auth munge|none] [--munge-socket S] --jobs N [--project P]
//               [--gpus G] [--window W] [--array K] [--wait-running] [--timeout SECONDS]
//
// --array K submits K jobs per request (an array, as a user with many jobs would), so that
// herd-ctld runs fewer cycles between them.
//
// Prints one line: jobs=N errors=E submit_s=S rate=R [all_running_s=T], T counted from the first
// submit sent to the poll that saw the last job RUNNING.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/auth/auth.h"
#include "common/net/net.h"
#include "common/proto/messages.h"

namespace herd::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Options {
  std::string endpoint;
  std::string auth = "munge";
  std::string munge_socket;
  int jobs = 1;
  std::string project;
  double gpus = 1;
  int window = 500;  // below ZeroMQ's 1000-message queues, so no reply is dropped
  int array = 1;
  bool wait_running = false;
  double timeout_s = 300;
};

class Session {
 public:
  Session(std::unique_ptr<net::Dealer> dealer, std::unique_ptr<auth::Authenticator> auth)
      : dealer_(std::move(dealer)), auth_(std::move(auth)) {}

  template <typename T>
  Status Send(const T& body) {
    proto::Envelope e = proto::MakeEnvelope(body, next_id_++);
    auto cred = auth_->Credential(auth::MessageBinding(e.type, e.id, e.body));
    if (!cred.ok()) return cred.status();
    e.cred = std::move(*cred);
    return dealer_->Send(e);
  }
  std::optional<proto::Envelope> Receive(int timeout_ms) { return dealer_->Receive(timeout_ms); }

 private:
  std::unique_ptr<net::Dealer> dealer_;
  std::unique_ptr<auth::Authenticator> auth_;
  uint64_t next_id_ = 1;
};

int Run(const Options& o) {
  auto auth = auth::MakeAuthenticator(o.auth, o.munge_socket);
  if (!auth.ok()) {
    std::fprintf(stderr, "scale_bench: %s\n", auth.status().message().c_str());
    return 1;
  }
  auto dealer = net::Dealer::Connect(o.endpoint, "");
  if (!dealer.ok()) {
    std::fprintf(stderr, "scale_bench: %s\n", dealer.status().message().c_str());
    return 1;
  }
  Session session(std::move(*dealer), std::move(*auth));
  proto::SubmitRequest req;
  req.spec.argv = {"sleep", "infinity"};
  req.spec.cwd = "/tmp";
  req.spec.project = o.project;
  req.spec.gpu_milli = static_cast<int64_t>(o.gpus * 1000);
  req.spec.cpus = 1;
  req.spec.memory_mib = 1024;

  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(o.timeout_s);
  std::vector<model::JobId> ids;
  int sent = 0, answered = 0, errors = 0;
  std::string first_error;
  const int requests = (o.jobs + o.array - 1) / o.array;
  while (answered < requests) {
    while (sent < requests && sent - answered < o.window) {
      const int k = std::min(o.array, o.jobs - sent * o.array);
      req.array_indexes.clear();
      for (int i = 0; k > 1 && i < k; ++i) req.array_indexes.push_back(i);
      if (Status s = session.Send(req); !s.ok()) {
        std::fprintf(stderr, "scale_bench: %s\n", s.message().c_str());
        return 1;
      }
      ++sent;
    }
    auto reply = session.Receive(1000);
    if (!reply) {
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "scale_bench: %d of %d submits unanswered after %.0f s\n",
                     requests - answered, requests, o.timeout_s);
        return 1;
      }
      continue;
    }
    ++answered;
    if (auto r = proto::BodyOf<proto::SubmitReply>(*reply); r.ok()) {
      const int k = std::min(o.array, o.jobs - static_cast<int>(ids.size()));
      for (int i = 0; i < k; ++i) ids.push_back(r->id + i);  // an array's ids are consecutive
    } else {
      ++errors;
      auto e = proto::BodyOf<proto::ErrorReply>(*reply);
      if (first_error.empty()) first_error = e.ok() ? e->message : r.status().message();
    }
  }
  const double submit_s = Since(start);
  std::printf("jobs=%d errors=%d submit_s=%.3f rate=%.0f", o.jobs, errors, submit_s,
              o.jobs / submit_s);
  if (!first_error.empty()) std::fprintf(stderr, "scale_bench: first error: %s\n", first_error.c_str());
  if (o.wait_running) {
    // Ask only for the jobs not yet seen RUNNING, so replies shrink as they start.
    std::set<model::JobId> left(ids.begin(), ids.end());
    while (!left.empty()) {
      if (Clock::now() > deadline) {
        std::printf(" all_running_s=timeout(%zu_not_running)\n", left.size());
        return 1;
      }
      proto::JobsRequest q;
      q.ids.assign(left.begin(), left.end());
      q.states = {"RUNNING"};
      if (Status s = session.Send(q); !s.ok()) {
        std::fprintf(stderr, "scale_bench: %s\n", s.message().c_str());
        return 1;
      }
      for (auto reply = session.Receive(5000); reply; reply = session.Receive(5000)) {
        auto r = proto::BodyOf<proto::JobsReply>(*reply);
        if (!r.ok()) continue;  // a late submit answer
        for (const auto& j : r->jobs) left.erase(j.id);
        break;
      }
      if (!left.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(left.size() > 100 ? 20 : 2));
    }
    std::printf(" all_running_s=%.3f", Since(start));
  }
  std::printf("\n");
  return errors > 0 ? 1 : 0;
}

}  // namespace
}  // namespace herd::bench

int main(int argc, char** argv) {
  herd::bench::Options o;
  CLI::App app{"scale_bench: submit many jobs to herd-ctld at once and time them to RUNNING"};
  app.add_option("--endpoint", o.endpoint, "herd-ctld endpoint")->required();
  app.add_option("--auth", o.auth, "munge or none")->capture_default_str();
  app.add_option("--munge-socket", o.munge_socket, "munged socket");
  app.add_option("--jobs", o.jobs, "jobs to submit")->check(CLI::PositiveNumber);
  app.add_option("--project", o.project, "their project (default: the cluster's default)");
  app.add_option("--gpus", o.gpus, "GPUs per job")->capture_default_str();
  app.add_option("--window", o.window, "submits in flight at once")->capture_default_str();
  app.add_option("--array", o.array, "jobs per submit request (an array)")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app.add_flag("--wait-running", o.wait_running, "then poll until every job is RUNNING");
  app.add_option("--timeout", o.timeout_s, "give up after this many seconds")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return herd::bench::Run(o);
}
