// history_bench: what one history sample costs herd-ctld (ctld/history.h) at scale: the write of
// every series in one transaction (with synchronous=FULL, as herd-ctld commits), the 10-minute and
// hourly averages as their periods end, and pruning once raw retention is reached; then what one
// HistoryRequest costs. The sample itself is synthetic (the walk over the controller's jobs and
// nodes that builds it is not timed). Prints the figures and the command that reproduces them.
//
//   build/bin/history_bench [--nodes 4000] [--running 30000] [--projects 50] [--samples 80]
#include <sqlite3.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "ctld/history.h"
#include "ctld/store/store.h"

namespace {

using herd::ctld::History;
using herd::ctld::SeriesKind;
using herd::ctld::SeriesValues;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// The database's size as a reader sees it (its pages, those still in the WAL included).
int64_t DatabaseBytes(const std::string& path) {
  sqlite3* db = nullptr;
  int64_t bytes = 0;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    int64_t count = 0, size = 0;
    for (auto [sql, out] : {std::pair{"PRAGMA page_count", &count}, {"PRAGMA page_size", &size}}) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW) {
        *out = sqlite3_column_int64(stmt, 0);
      }
      sqlite3_finalize(stmt);
    }
    bytes = count * size;
  }
  sqlite3_close(db);
  return bytes;
}

// One sample of a cluster with `nodes` 8-GPU nodes, `running` 1-GPU jobs and `projects` projects.
std::vector<SeriesValues> Sample(int nodes, int running, int projects, int round) {
  std::vector<SeriesValues> s;
  s.reserve(1 + projects + nodes + running);
  SeriesValues cluster;
  cluster.values = {nodes * 8000LL, running * 1000LL, nodes * 8000LL, running * 600LL, running,
                    70000};
  s.push_back(cluster);
  for (int p = 0; p < projects; ++p) {
    SeriesValues v;
    v.kind = SeriesKind::kProject;
    v.name = "project" + std::to_string(p);
    v.values = {running * 1000LL / projects, running * 1000LL / projects, 400000, 600000, 600,
                1400};
    s.push_back(std::move(v));
  }
  for (int n = 0; n < nodes; ++n) {
    SeriesValues v;
    v.kind = SeriesKind::kNode;
    v.name = "node" + std::to_string(n);
    v.values = {8000, 7500, 8000, (n * 37 + round) % 8000, 1000, 0};
    s.push_back(std::move(v));
  }
  for (int j = 0; j < running; ++j) {
    SeriesValues v;
    v.kind = SeriesKind::kJob;
    v.job = 100000 + j;
    v.values = {1000, 1000, (j * 13 + round * 7) % 1000, 0, 0, 0};
    s.push_back(std::move(v));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"history_bench: the cost of one herd-ctld history sample and read"};
  int nodes = 4000, running = 30000, projects = 50, samples = 80;
  std::string dir;
  app.add_option("--nodes", nodes, "8-GPU nodes (default 4000)");
  app.add_option("--running", running, "running 1-GPU jobs (default 30000)");
  app.add_option("--projects", projects, "projects (default 50)");
  app.add_option("--samples", samples, "samples, one minute apart (default 80)");
  app.add_option("--dir", dir, "directory of the database (default: a new one in /tmp)");
  CLI11_PARSE(app, argc, argv);
  if (dir.empty()) {
    char pattern[] = "/tmp/herd-history-bench-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return 1;
    dir = pattern;
  }
  const std::string path = dir + "/herd.db";
  auto store = herd::store::Store::Open(path);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().message().c_str());
    return 1;
  }
  herd::config::HistoryConfig config;
  config.interval_s = 60;
  config.raw_retention_s = 600;  // the smallest allowed: pruning runs from the 11th sample on
  History history(config);
  if (auto s = history.Recover(**store, 0); !s.ok()) return 1;

  int64_t time = 1'800'000'000;  // a whole hour
  std::vector<double> plain_ms, flush_ms;
  int64_t bytes_before = 0, bytes_steady = 0;
  for (int i = 0; i < samples; ++i) {
    time += 60;
    const auto series = Sample(nodes, running, projects, i);
    const auto start = Clock::now();
    herd::Status s = (*store)->Begin();
    if (s.ok()) s = history.Record(**store, time, series);
    if (s.ok()) s = (*store)->Commit();
    const double ms = Ms(Clock::now() - start);
    if (!s.ok()) {
      std::fprintf(stderr, "sample %d: %s\n", i, s.message().c_str());
      return 1;
    }
    (time % 600 == 0 ? flush_ms : plain_ms).push_back(ms);
    // Growth while nothing is pruned yet (samples 2 to 9).
    if (i == 1) bytes_before = DatabaseBytes(path);
    if (i == 9) bytes_steady = (DatabaseBytes(path) - bytes_before) / 8;
  }
  std::sort(plain_ms.begin(), plain_ms.end());
  std::sort(flush_ms.begin(), flush_ms.end());
  const size_t rows = 1 + projects + nodes + running;

  // Reads: a node's and a job's last day (10-minute tier) and last hour (samples).
  auto read = [&](const char* series, const std::string& key, int64_t ago) {
    const auto start = Clock::now();
    auto r = history.Read(**store, {series, key, time - ago, time + 1, 0}, time);
    const double ms = Ms(Clock::now() - start);
    std::printf("  read %-7s %-12s last %5llds: %4zu points, %.2f ms\n", series, key.c_str(),
                static_cast<long long>(ago), r.ok() ? r->points.size() : 0, ms);
  };
  std::printf("history_bench: %d nodes, %d running GPU jobs, %d projects = %zu series per sample; "
              "%d samples 60 s apart, raw retention 10m (2-core VM, shared)\n",
              nodes, running, projects, rows, samples);
  std::printf("  sample (one transaction, synchronous=FULL): median %.1f ms, max %.1f ms "
              "(%zu samples)\n",
              plain_ms[plain_ms.size() / 2], plain_ms.back(), plain_ms.size());
  if (!flush_ms.empty()) {
    std::printf("  sample that also writes 10-minute/hourly averages: median %.1f ms, max %.1f ms "
                "(%zu samples)\n",
                flush_ms[flush_ms.size() / 2], flush_ms.back(), flush_ms.size());
  }
  std::printf("  database growth of one sample: %.1f KiB (%.1f bytes per series)\n",
              bytes_steady / 1024.0, static_cast<double>(bytes_steady) / rows);
  read("node", "node17", 3000);
  read("node", "node17", 86400);
  read("job", "100042", 3000);
  read("cluster", "", 86400);
  std::printf("  database with %d samples (raw pruned to 10m): %.1f MiB\n", samples,
              DatabaseBytes(path) / 1048576.0);
  std::printf("reproduce: build/bin/history_bench --nodes %d --running %d --projects %d "
              "--samples %d\n",
              nodes, running, projects, samples);
  store->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
