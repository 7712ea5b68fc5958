// submit_bench: load generator for herd-ctld through the real client stack (common/net Client,
// proto codec, auth), used by bench/controller/clients and bench/vs-slurm/run.
//
//   submit_bench throughput --endpoint E [--auth munge|none] [--munge-socket S]
//                           --clients N [--window W] --jobs M [--hold] [--credential-per-request]
//     N persistent clients (one thread and one DEALER each) submit M jobs in total, each with up
//     to W requests in flight (pipelined, default 1; replies matched by request id), each job
//     acknowledged by herd-ctld only after it is committed to SQLite. With MUNGE each client
//     opens a connection key and signs its requests with it (net::Client::UseConnectionKeys);
//     --credential-per-request gives every request a MUNGE credential of its own instead.
//     Prints: clients=N window=W jobs=M seconds=S rate=R errors=E
//   submit_bench latency --endpoint E [--auth ...] --jobs M --dir D
//     One job at a time on an idle cluster: submit `sh -c 'date +%s%N > D/t.K'`, poll its state
//     every millisecond until it is RUNNING (or later), then wait for the file the job writes.
//     Prints p50/p99 of submit -> RUNNING (as seen by polling) and submit -> job process started.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/auth/auth.h"
#include "common/net/net.h"
#include "common/proto/messages.h"

namespace herd::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string endpoint;
  std::string auth = "munge";
  std::string munge_socket;
  int clients = 1;
  int window = 1;
  int jobs = 1000;
  bool hold = false;
  bool credential_per_request = false;
  std::string dir;
};

int64_t WallNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<net::Client>> Connect(const Options& o) {
  auto auth = auth::MakeAuthenticator(o.auth, o.munge_socket);
  if (!auth.ok()) return auth.status();
  auto client = std::make_unique<net::Client>(o.endpoint, std::move(*auth), 10000);
  if (!o.credential_per_request) client->UseConnectionKeys();
  return client;
}

proto::SubmitRequest SmallJob(std::vector<std::string> argv, bool hold) {
  proto::SubmitRequest req;
  req.spec.argv = std::move(argv);
  req.spec.cpus = 1;
  req.spec.memory_mib = 64;
  req.spec.cwd = "/tmp";
  req.spec.hold = hold;
  return req;
}

int Throughput(const Options& o) {
  std::atomic<int> claimed{0}, errors{0};
  std::mutex mu;
  std::string first_error;
  auto loop = [&] {
    auto client = Connect(o);
    if (!client.ok()) {
      std::lock_guard lock(mu);
      if (first_error.empty()) first_error = client.status().message();
      errors.fetch_add(1);
      return;
    }
    auto fail = [&](const Status& s, int count) {
      std::lock_guard lock(mu);
      if (first_error.empty()) first_error = s.message();
      errors.fetch_add(count);
    };
    const proto::Envelope request = proto::MakeEnvelope(SmallJob({"true"}, o.hold));
    // Up to o.window requests in flight; each reply frees a slot for the next job.
    std::unordered_set<uint64_t> in_flight;
    bool more = true;
    while (more || !in_flight.empty()) {
      while (more && static_cast<int>(in_flight.size()) < o.window) {
        more = claimed.fetch_add(1) < o.jobs;
        if (!more) break;
        auto id = (*client)->Post(request);
        if (id.ok()) {
          in_flight.insert(*id);
        } else {
          fail(id.status(), 1);
        }
      }
      if (in_flight.empty()) continue;
      auto reply = (*client)->NextReply();
      if (!reply.ok()) {  // the connection is dropped: every request in flight is lost
        fail(reply.status(), static_cast<int>(in_flight.size()));
        in_flight.clear();
        continue;
      }
      Status s = net::ReplyStatus(*reply);
      if (reply->id == 0 && !s.ok()) {  // an error the server could not match: count one
        fail(s, 1);
        in_flight.erase(in_flight.begin());
      } else if (in_flight.erase(reply->id) > 0) {
        if (!s.ok()) fail(s, 1);
      }
    }
  };
  // Client setup (a DEALER connect, a MUNGE context) is inside the timing: it is small.
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < o.clients; ++i) threads.emplace_back(loop);
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("clients=%d window=%d jobs=%d seconds=%.3f rate=%.0f errors=%d\n", o.clients,
              o.window, o.jobs, seconds, o.jobs / seconds, errors.load());
  if (!first_error.empty()) std::fprintf(stderr, "submit_bench: %s\n", first_error.c_str());
  return errors.load() == 0 ? 0 : 1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

int Latency(const Options& o) {
  if (o.dir.empty()) {
    std::fprintf(stderr, "submit_bench: latency needs --dir (where jobs write their start time)\n");
    return 2;
  }
  auto client = Connect(o);
  if (!client.ok()) {
    std::fprintf(stderr, "submit_bench: %s\n", client.status().message().c_str());
    return 1;
  }
  std::vector<double> to_running, to_started;
  for (int k = 0; k < o.jobs; ++k) {
    const std::string file = o.dir + "/t." + std::to_string(k);
    const int64_t t0 = WallNanos();
    auto id = (*client)->Call<proto::SubmitRequest, proto::SubmitReply>(
        SmallJob({"sh", "-c", "date +%s%N > " + file + ".tmp && mv " + file + ".tmp " + file},
                 false));
    if (!id.ok()) {
      std::fprintf(stderr, "submit_bench: submit: %s\n", id.status().message().c_str());
      return 1;
    }
    proto::JobsRequest poll;
    poll.ids = {id->id};
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    int64_t t_running = 0;
    while (Clock::now() < deadline) {
      auto jobs = (*client)->Call<proto::JobsRequest, proto::JobsReply>(poll);
      if (jobs.ok() && !jobs->jobs.empty() && jobs->jobs[0].state != model::JobState::kPending &&
          jobs->jobs[0].state != model::JobState::kStarting) {
        t_running = WallNanos();
        break;
      }
      usleep(1000);
    }
    int64_t t_started = 0;
    while (Clock::now() < deadline) {
      std::ifstream in(file);
      if (in >> t_started) break;
      usleep(200);
    }
    if (t_running == 0 || t_started == 0) {
      std::fprintf(stderr, "submit_bench: job %ld did not start within 30 s\n",
                   static_cast<long>(id->id));
      return 1;
    }
    to_running.push_back((t_running - t0) / 1e6);
    to_started.push_back((t_started - t0) / 1e6);
  }
  std::printf("jobs=%d running_p50_ms=%.1f running_p99_ms=%.1f started_p50_ms=%.1f "
              "started_p99_ms=%.1f\n",
              o.jobs, Percentile(to_running, 50), Percentile(to_running, 99),
              Percentile(to_started, 50), Percentile(to_started, 99));
  return 0;
}

}  // namespace
}  // namespace herd::bench

int main(int argc, char** argv) {
  herd::bench::Options o;
  CLI::App app("Load generator for herd-ctld (see bench/README.md)");
  app.require_subcommand(1);
  for (const char* mode : {"throughput", "latency"}) {
    const bool throughput = mode[0] == 't';
    CLI::App* sub = app.add_subcommand(
        mode, throughput ? "persistent clients submitting" : "submit -> RUNNING, one at a time");
    sub->add_option("--endpoint", o.endpoint, "herd-ctld, e.g. tcp://127.0.0.1:6817")->required();
    sub->add_option("--auth", o.auth, "munge or none (as the cluster's [auth] method)");
    sub->add_option("--munge-socket", o.munge_socket, "munged socket");
    sub->add_option("--clients", o.clients, "concurrent clients")->check(CLI::Range(1, 1024));
    if (throughput) {
      sub->add_option("--window", o.window, "requests in flight per client (pipelined)")
          ->check(CLI::Range(1, 1000));
      sub->add_flag("--credential-per-request", o.credential_per_request,
                    "a MUNGE credential for every request (no connection key)");
    }
    sub->add_option("--jobs", o.jobs, "jobs in total")->check(CLI::Range(1, 10000000));
    sub->add_flag("--hold", o.hold, "submit held jobs");
    sub->add_option("--dir", o.dir, "latency: directory the jobs write their start time to");
  }
  CLI11_PARSE(app, argc, argv);
  if (app.got_subcommand("latency")) return herd::bench::Latency(o);
  return herd::bench::Throughput(o);
}
