#include "ctld/store/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace herd::store {
namespace {

using model::Job;
using model::JobId;
using model::JobState;

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at the end.
class StoreTest : public testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/herd-store-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/herd.db";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::unique_ptr<Store> OpenStore() {
    auto store = Store::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // What a database of schema version 7 or older lacks: herd-ctld's history (version 8).
  void DropHistory() {
    for (const char* sql :
         {"DROP TABLE history", "DROP TABLE history_times", "DROP TABLE history_names"}) {
      RawQuery(sql);
    }
  }

  // Runs one statement on the database through a separate connection; returns its first column.
  std::string RawQuery(const char* sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    std::string result;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    int rc = sqlite3_step(stmt);
    EXPECT_TRUE(rc == SQLITE_ROW || rc == SQLITE_DONE) << sqlite3_errmsg(db);
    if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0)) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return result;
  }

  // Folds the write-ahead log into the main database file (through a separate connection).
  void Checkpoint() {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    // Reading first makes the connection open the log; then the checkpoint has work to do.
    ASSERT_EQ(sqlite3_exec(db, "SELECT count(*) FROM jobs", nullptr, nullptr, &error), SQLITE_OK);
    int log = -1, done = -1;
    ASSERT_EQ(sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_FULL, &log, &done),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    EXPECT_EQ(log, done) << "the checkpoint did not copy the whole log";
    sqlite3_close(db);
  }

  std::string dir_;
  std::string path_;
};

// Writes `path` until its file system has no room left.
void RunFill(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::string block(1 << 16, 'x');
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
  }
  std::fclose(f);
}

Job SimpleJob(const std::string& name, JobState state = JobState::kPending) {
  Job job;
  job.spec.name = name;
  job.spec.argv = {"python", "train.py"};
  job.spec.project = "vision";
  job.user = "alice";
  job.uid = 1000;
  job.gid = 1000;
  job.state = state;
  job.submit_time = 1700000000;
  return job;
}

Job FullJob() {
  Job job;
  job.spec.name = "resnet-50 ☃";
  job.spec.argv = {"torchrun", "--nproc_per_node=4", "train.py", "--lr=0.1", ""};
  job.spec.env = {{"NCCL_DEBUG", "INFO"}, {"WANDB_PROJECT", "vision"}, {"EMPTY", ""}};
  job.spec.cwd = "/home/alice/work";
  job.spec.project = "vision";
  job.spec.job_class = "interactive";
  job.spec.workers = 2;
  job.spec.gpu_milli = 4000;
  job.spec.gpu_memory_mib = 40960;
  job.spec.cpus = 32;
  job.spec.memory_mib = 262144;
  job.spec.time_limit_s = 86400;
  job.spec.image = "/srv/images/pytorch.tar";
  job.spec.spread = true;
  job.spec.volumes = {"/data/imagenet:/data"};
  job.spec.array_id = 7;
  job.spec.array_index = 3;
  job.spec.sweep = {{"lr", "1e-3"}, {"bs", "64"}};
  job.spec.stop_after_success = true;
  job.spec.gpu_types = {"a100", "h100"};
  job.spec.pool = "train";
  job.spec.constraints = {{"rack", "r1"}, {"ib", "yes"}};
  job.spec.nodelist = {"dgx01", "dgx0*"};
  job.spec.exclude = {"dgx03"};
  job.spec.output = "/home/alice/logs/%x.%j.out";
  job.spec.error = "/home/alice/logs/%x.%j.err";
  job.spec.output_append = true;
  job.preemptions = 2;
  job.gpu_util_sum = 85LL * 4 * 3600000;
  job.gpu_sampled_ms = 4LL * 3600000;
  job.user = "alice";
  job.uid = 4000000000u;  // above INT32_MAX: stored without sign trouble
  job.gid = 1001;
  job.state = JobState::kRunning;
  job.reason = "started on dgx01, dgx02";
  job.submit_time = 1700000000;
  job.start_time = 1700000100;
  job.end_time = 0;
  job.exit_code = -1;
  job.restart_count = 3;
  model::WorkerPlacement w0{"dgx01", {0, 1, 2, 3}, 1000, {0, 1, 2, 3, 4, 5, 6, 7},
                            131072,  "mlx5_0"};
  model::WorkerPlacement w1{"dgx02", {4, 5, 6, 7}, 1000, {64, 65, 66, 67}, 131072, "mlx5_4"};
  job.placement = {w0, w1};
  return job;
}

TEST_F(StoreTest, FullyPopulatedJobRoundTrips) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job job = FullJob();
  auto id = store->InsertJob(job);
  ASSERT_TRUE(id.ok()) << id.status().message();
  job.id = *id;

  auto jobs = store->LoadJobs(/*include_finished=*/false);
  ASSERT_TRUE(jobs.ok()) << jobs.status().message();
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0], job);

  auto got = store->GetJob(job.id);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, job);
  EXPECT_EQ(RawQuery("SELECT gpu_milli FROM jobs"), "8000");  // both workers
}

TEST_F(StoreTest, SpecStringsNeedingEscapesRoundTripAsJson) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job job = FullJob();
  job.spec.argv = {"sh", "-c", "echo \"a\\b\"\n\t\x01\x1f\x7f", ""};
  job.spec.env = {{"K\"EY", "v\\al"},
                  {"LANG", "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x9a\x80"}};
  job.spec.sweep = {{"lr", "0.1"}};
  job.spec.name = "\xe6\x97\xa5\xe6\x9c\xac";
  auto id = store->InsertJob(job);
  ASSERT_TRUE(id.ok()) << id.status().message();
  job.id = *id;
  auto got = store->GetJob(job.id);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, job);
  // The column is JSON that SQLite's own functions read too.
  EXPECT_EQ(RawQuery("SELECT json_extract(spec, '$.env.LANG') FROM jobs"), job.spec.env["LANG"]);
  // Overlong, truncated and out-of-range sequences are refused wherever they are.
  for (const char* bad : {"\xc0\xaf", "\xe2\x82", "\xf4\x90\x80\x80", "a\xf0"}) {
    Job b = SimpleJob("bad");
    b.spec.env["X"] = bad;
    EXPECT_EQ(store->InsertJob(b).status().code(), Code::kInvalid) << bad;
  }
}

TEST_F(StoreTest, GetJobOfUnknownIdIsEmpty) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto got = store->GetJob(42);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_FALSE(got->has_value());
}

TEST_F(StoreTest, IdsIncreaseAndAreNotReusedAfterReopen) {
  model::JobId last = 0;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 3; ++i) {
      auto id = store->InsertJob(SimpleJob("j" + std::to_string(i)));
      ASSERT_TRUE(id.ok()) << id.status().message();
      EXPECT_GT(*id, last);
      last = *id;
    }
  }
  // Deleting the newest row behind the store's back must not free its id.
  RawQuery("DELETE FROM jobs WHERE id = (SELECT max(id) FROM jobs)");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto id = store->InsertJob(SimpleJob("after-reopen"));
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_GT(*id, last);
}

TEST_F(StoreTest, UpdateChangesStateAndReason) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job job = SimpleJob("train");
  auto id = store->InsertJob(job);
  ASSERT_TRUE(id.ok()) << id.status().message();
  job.id = *id;
  job.state = JobState::kCompleted;
  job.reason = "exited with code 0";
  job.exit_code = 0;
  job.end_time = 1700009999;
  ASSERT_TRUE(store->UpdateJob(job).ok());

  auto got = store->GetJob(job.id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, job);
  EXPECT_EQ(RawQuery("SELECT state FROM jobs"), "COMPLETED");
}

// herd-ctld keeps no environment or script in memory and writes its jobs back without them:
// UpdateJob leaves the ones InsertJob wrote, and GetJobEnvironment reads them.
TEST_F(StoreTest, UpdateKeepsTheEnvironmentAndScriptInsertWrote) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job job = FullJob();
  job.spec.env["K\"EY"] = "gr\xc3\xbc\xc3\x9f \\ \xe2\x82\xac";
  job.spec.script = "#!/bin/sh\necho \"$1\"\n";
  auto id = store->InsertJob(job);
  ASSERT_TRUE(id.ok()) << id.status().message();
  job.id = *id;
  Job in_memory = job;
  in_memory.spec.env.clear();
  in_memory.spec.script.clear();
  in_memory.spec.name = "renamed";
  in_memory.state = JobState::kCompleted;
  ASSERT_TRUE(store->UpdateJob(in_memory).ok());

  auto env = store->GetJobEnvironment(job.id);
  ASSERT_TRUE(env.ok()) << env.status().message();
  EXPECT_EQ(env->env, job.spec.env);
  EXPECT_EQ(env->script, job.spec.script);
  auto got = store->GetJob(job.id);
  ASSERT_TRUE(got.ok() && got->has_value());
  Job want = in_memory;
  want.spec.env = job.spec.env;
  want.spec.script = job.spec.script;
  EXPECT_EQ(**got, want);

  // A job without either reads back empty ones; an unknown job is NotFound.
  Job bare = SimpleJob("bare");
  auto bare_id = store->InsertJob(bare);
  ASSERT_TRUE(bare_id.ok());
  bare.id = *bare_id;
  ASSERT_TRUE(store->UpdateJob(bare).ok());
  auto bare_env = store->GetJobEnvironment(bare.id);
  ASSERT_TRUE(bare_env.ok()) << bare_env.status().message();
  EXPECT_EQ(*bare_env, JobEnvironment{});
  EXPECT_EQ(store->GetJobEnvironment(999).status().code(), Code::kNotFound);
}

TEST_F(StoreTest, UpdateOfMissingJobIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job job = SimpleJob("ghost");
  job.id = 77;
  Status s = store->UpdateJob(job);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("job 77"), std::string::npos) << s.message();
}

TEST_F(StoreTest, LoadJobsLeavesOutFinishedUnlessAsked) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const JobState states[] = {JobState::kPending,   JobState::kStarting,  JobState::kRunning,
                             JobState::kSuspended, JobState::kPreempted, JobState::kCompleted,
                             JobState::kFailed,    JobState::kCancelled, JobState::kTimeout,
                             JobState::kNodeFail};
  size_t unfinished = 0;
  for (JobState state : states) {
    ASSERT_TRUE(store->InsertJob(SimpleJob(model::JobStateName(state), state)).ok());
    if (!model::IsTerminal(state)) ++unfinished;
  }
  auto all = store->LoadJobs(/*include_finished=*/true);
  ASSERT_TRUE(all.ok()) << all.status().message();
  ASSERT_EQ(all->size(), std::size(states));
  for (size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].state, states[i]);  // ordered by id
  }
  auto live = store->LoadJobs(/*include_finished=*/false);
  ASSERT_TRUE(live.ok()) << live.status().message();
  ASSERT_EQ(live->size(), unfinished);
  for (const Job& job : *live) EXPECT_FALSE(model::IsTerminal(job.state));
}

// A finished job of `user` that ran from `start` for `seconds` on `gpus` GPUs.
Job RanJob(const std::string& user, int64_t start, int64_t seconds, int64_t gpus = 1) {
  Job job = SimpleJob("ran", JobState::kCompleted);
  job.user = user;
  job.submit_time = start - 5;
  job.start_time = start;
  job.end_time = start + seconds;
  job.spec.gpu_milli = gpus * 1000;
  job.spec.cpus = 2;
  return job;
}

TEST_F(StoreTest, JobsInFlightAreTheUnfinishedAndTheRecentlyFinished) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const JobId old_job = *store->InsertJob(RanJob("alice", 1700000000, 60));
  const JobId recent = *store->InsertJob(RanJob("alice", 1700010000, 60));
  const JobId pending = *store->InsertJob(SimpleJob("waiting"));
  auto jobs = store->LoadJobsInFlight(1700005000);
  ASSERT_TRUE(jobs.ok()) << jobs.status().message();
  std::vector<JobId> ids;
  for (const Job& j : *jobs) ids.push_back(j.id);
  EXPECT_EQ(ids, (std::vector<JobId>{recent, pending}));
  EXPECT_NE(old_job, 0);
}

TEST_F(StoreTest, FinishedJobsAfterPagesByIdAndUser) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::vector<JobId> alices;
  for (int i = 0; i < 5; ++i) {
    const JobId id = *store->InsertJob(RanJob(i % 2 ? "bob" : "alice", 1700000000 + i, 10));
    if (i % 2 == 0) alices.push_back(id);
  }
  ASSERT_TRUE(store->InsertJob(SimpleJob("unfinished")).ok());
  auto page = store->FinishedJobsAfter(0, "", 3);
  ASSERT_TRUE(page.ok()) << page.status().message();
  ASSERT_EQ(page->size(), 3u);
  auto rest = store->FinishedJobsAfter(page->back().id, "", 10);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 2u) << "the unfinished job is not listed";
  auto of_alice = store->FinishedJobsAfter(0, "alice", 10);
  ASSERT_TRUE(of_alice.ok());
  std::vector<JobId> ids;
  for (const Job& j : *of_alice) ids.push_back(j.id);
  EXPECT_EQ(ids, alices);
}

TEST_F(StoreTest, LoadArrayReadsItsMembersOnly) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const JobId before = *store->InsertJob(RanJob("alice", 1700000000, 10));
  JobId array = 0;
  for (int i = 0; i < 3; ++i) {
    Job m = RanJob("alice", 1700000000, 10);
    m.spec.array_id = array;  // the first member's id, known once it is inserted
    m.spec.array_index = i;
    const JobId id = *store->InsertJob(m);
    if (i == 0) {
      array = id;
      m.id = id;
      m.spec.array_id = id;
      ASSERT_TRUE(store->UpdateJob(m).ok());
    }
  }
  ASSERT_TRUE(store->InsertJob(RanJob("alice", 1700000000, 10)).ok());
  auto members = store->LoadArray(array);
  ASSERT_TRUE(members.ok()) << members.status().message();
  ASSERT_EQ(members->size(), 3u);
  EXPECT_EQ(members->back().spec.array_index, 2);
  EXPECT_TRUE(store->LoadArray(before)->empty()) << "a job that is no array";
  EXPECT_TRUE(store->LoadArray(array + 1)->empty()) << "a member that is not the first";
}

TEST_F(StoreTest, DailyUsageSplitsGpuTimeAcrossTheDaysAJobRan) {
  const int64_t day = 1700006400;  // a multiple of 86400
  Job job = RanJob("alice", day - 100, 300, 2);
  job.preemptions = 1;
  const auto rows = DailyUsageOf(job, "a100");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].day, day - 86400);
  EXPECT_EQ(rows[0].gpu_milli_seconds, 2000 * 100);
  EXPECT_EQ(rows[0].core_seconds, 2 * 100);
  EXPECT_EQ(rows[0].jobs, 1);
  EXPECT_EQ(rows[0].wait_seconds, 5);
  EXPECT_EQ(rows[0].preemptions, 1);
  EXPECT_EQ(rows[1].day, day);
  EXPECT_EQ(rows[1].gpu_milli_seconds, 2000 * 200);
  EXPECT_EQ(rows[1].jobs, 0);
  EXPECT_TRUE(DailyUsageOf(SimpleJob("never ran", JobState::kCancelled), "").empty());
}

TEST_F(StoreTest, PruneDeletesOldJobsInBatchesAndKeepsTheirUsageAsDailyTotals) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const int64_t day = 1700006400;
  std::vector<JobId> old_ids;
  for (int i = 0; i < 5; ++i) {
    const JobId id = *store->InsertJob(RanJob(i < 3 ? "alice" : "bob", day + i * 100, 60));
    ASSERT_TRUE(store->AppendJobEvent(id, day, "started").ok());
    old_ids.push_back(id);
  }
  const JobId kept = *store->InsertJob(RanJob("alice", day + 1000, 60));
  const JobId young = *store->InsertJob(RanJob("alice", day + 90000, 60));
  PruneCursor cursor;
  auto keep = [kept](const Job& j) { return j.id == kept; };
  auto type = [](const Job&) { return std::string("a100"); };
  int64_t deleted = 0;
  for (int batch = 0; batch < 3; ++batch) {
    auto n = store->PruneJobs(day + 86400, 2, &cursor, keep, type);
    ASSERT_TRUE(n.ok()) << n.status().message();
    EXPECT_LE(*n, 2);
    deleted += *n;
  }
  EXPECT_EQ(deleted, 5);
  for (JobId id : old_ids) {
    EXPECT_FALSE(store->GetJob(id)->has_value());
    EXPECT_TRUE(store->JobEvents(id)->empty());
  }
  EXPECT_TRUE(store->GetJob(kept)->has_value()) << "kept: still in memory";
  EXPECT_TRUE(store->GetJob(young)->has_value()) << "ended after the cutoff";
  EXPECT_EQ(*store->PruneJobs(day + 86400, 2, &cursor, keep, type), 0);
  EXPECT_EQ(cursor.id, 0) << "back to the start once none is left";

  auto rows = store->DailyUsageIn(day, day + 86400);
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].user, "alice");
  EXPECT_EQ((*rows)[0].gpu_type, "a100");
  EXPECT_EQ((*rows)[0].jobs, 3);
  EXPECT_EQ((*rows)[0].gpu_milli_seconds, 3 * 1000 * 60);
  EXPECT_EQ((*rows)[1].user, "bob");
  EXPECT_EQ((*rows)[1].jobs, 2);
  EXPECT_TRUE(store->DailyUsageIn(day + 86400, day + 2 * 86400)->empty());
}

TEST_F(StoreTest, QueueUsageRoundTripsAndEachSaveReplacesTheLast) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    EXPECT_TRUE(store->LoadQueueUsage()->empty());
    ASSERT_TRUE(store->SaveQueueUsage({{"vision", 3600.5}, {"research", 7200.25}}, 1000).ok());
    ASSERT_TRUE(store->SaveQueueUsage({{"vision", 1800.125}, {"nlp", 0}}, 2000).ok());
  }
  auto store = OpenStore();  // what a restarted herd-ctld reads
  ASSERT_NE(store, nullptr);
  auto usage = store->LoadQueueUsage();
  ASSERT_TRUE(usage.ok()) << usage.status().message();
  EXPECT_EQ(*usage, (std::map<std::string, QueueUsage>{{"nlp", {0, 2000}},
                                                       {"vision", {1800.125, 2000}}}));
  // Values a fair share cannot use are refused, not stored.
  EXPECT_FALSE(store->SaveQueueUsage({{"vision", -1}}, 3000).ok());
  EXPECT_FALSE(store->SaveQueueUsage({{"vision", std::nan("")}}, 3000).ok());
  EXPECT_FALSE(store->SaveQueueUsage({{"\xff", 1}}, 3000).ok());
}

TEST_F(StoreTest, VersionEightDatabaseMigratesToQueueUsage) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->InsertJob(RanJob("alice", 1700000000, 60)).ok());
  }
  RawQuery("DROP TABLE queue_usage");  // what herd-ctld of schema version 8 wrote
  RawQuery("PRAGMA user_version = 8");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), 9);
  EXPECT_EQ(Store::CodeSchemaVersion(), 9);
  ASSERT_TRUE(store->SaveQueueUsage({{"vision", 60}}, 1000).ok());
  EXPECT_EQ(store->LoadQueueUsage()->at("vision"), (QueueUsage{60, 1000}));
  EXPECT_EQ(store->LoadJobsInFlight(0)->size(), 1u);
}

TEST_F(StoreTest, VersionSixDatabaseMigratesToDailyUsageAndKeepsItsJobs) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->InsertJob(RanJob("alice", 1700000000, 60)).ok());
  }
  // What herd-ctld of schema version 6 wrote: no end-time index, no daily totals.
  RawQuery("DROP INDEX jobs_by_end");
  RawQuery("DROP TABLE usage_daily");
  RawQuery("PRAGMA user_version = 6");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), Store::CodeSchemaVersion());
  EXPECT_EQ(RawQuery("SELECT count(*) FROM sqlite_master WHERE name = 'jobs_by_end'"), "1");
  auto jobs = store->LoadJobsInFlight(0);
  ASSERT_TRUE(jobs.ok()) << jobs.status().message();
  EXPECT_EQ(jobs->size(), 1u);
  PruneCursor cursor;
  EXPECT_EQ(*store->PruneJobs(1800000000, 10, &cursor, nullptr, nullptr), 1);
  EXPECT_EQ(store->DailyUsageIn(1699900000, 1700100000)->size(), 1u);
}

TEST_F(StoreTest, RollbackLeavesNothing) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Begin().ok());
  auto id = store->InsertJob(SimpleJob("doomed"));
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(store->AppendJobEvent(*id, 1, "submitted").ok());
  ASSERT_TRUE(store->UpsertNode("dgx01", {}, model::NodeState::kUp, 1).ok());
  ASSERT_TRUE(store->Rollback().ok());

  auto jobs = store->LoadJobs(true);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
  auto events = store->JobEvents(*id);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(events->empty());
  auto nodes = store->LoadNodes();
  ASSERT_TRUE(nodes.ok());
  EXPECT_TRUE(nodes->empty());
}

TEST_F(StoreTest, BeginTwiceIsRefused) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Begin().ok());
  EXPECT_FALSE(store->Begin().ok());
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_TRUE(store->Rollback().ok());  // nothing open: a no-op
}

TEST_F(StoreTest, CommittedDataSurvivesReopen) {
  Job job = FullJob();
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Begin().ok());
    auto id = store->InsertJob(job);
    ASSERT_TRUE(id.ok()) << id.status().message();
    job.id = *id;
    ASSERT_TRUE(store->AppendJobEvent(job.id, 5, "submitted").ok());
    ASSERT_TRUE(store->Commit().ok());
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto jobs = store->LoadJobs(true);
  ASSERT_TRUE(jobs.ok()) << jobs.status().message();
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0], job);
  auto events = store->JobEvents(job.id);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].second, "submitted");
}

TEST_F(StoreTest, NewSchemaIsAtCodeVersion) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto version = store->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, Store::CodeSchemaVersion());
  EXPECT_EQ(*version, 9);
}

TEST_F(StoreTest, WhatAPendingJobWaitsForIsKeptAndAVersionFourDatabaseReadsAsNothingYet) {
  Job job = SimpleJob("gated", JobState::kPending);
  job.reason = "held: herd release 1";
  job.waits_for = model::WaitsFor::kHold;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    job.id = *store->InsertJob(job);
    auto jobs = store->LoadJobs(true);
    ASSERT_TRUE(jobs.ok()) << jobs.status().message();
    ASSERT_EQ(jobs->size(), 1u);
    EXPECT_EQ((*jobs)[0].waits_for, model::WaitsFor::kHold);
  }
  // What herd-ctld of schema version 4 wrote: no waits_for column.
  RawQuery("ALTER TABLE jobs DROP COLUMN waits_for");
  RawQuery("ALTER TABLE nodes DROP COLUMN drain_reason");
  DropHistory();
  RawQuery("PRAGMA user_version = 4");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), Store::CodeSchemaVersion());
  auto jobs = store->LoadJobs(true);
  ASSERT_TRUE(jobs.ok()) << jobs.status().message();
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].reason, job.reason);
  EXPECT_EQ((*jobs)[0].waits_for, model::WaitsFor::kNothing);
}

TEST_F(StoreTest, VersionOneDatabaseMigratesAndItsJobsReadAsUnmeasured) {
  Job job = FullJob();
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->InsertJob(job).ok());
  }
  // What herd-ctld of schema version 1 wrote: no accounting column (nor stop column, nor
  // commit count and its high-water record).
  RawQuery("ALTER TABLE jobs DROP COLUMN accounting");
  RawQuery("ALTER TABLE jobs DROP COLUMN stop");
  RawQuery("ALTER TABLE jobs DROP COLUMN waits_for");
  RawQuery("ALTER TABLE nodes DROP COLUMN drain_reason");
  RawQuery("DROP TABLE store_marks");
  std::filesystem::remove(path_ + ".highwater");
  DropHistory();
  RawQuery("PRAGMA user_version = 1");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), Store::CodeSchemaVersion());
  auto jobs = store->LoadJobs(true);
  ASSERT_TRUE(jobs.ok()) << jobs.status().message();
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].preemptions, 0);
  EXPECT_EQ((*jobs)[0].GpuUtilPct(), -1);
  EXPECT_EQ((*jobs)[0].spec.sweep, job.spec.sweep);
}

TEST_F(StoreTest, SpecWrittenBeforeFleetFieldsLoadsWithoutRestrictions) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->InsertJob(FullJob()).ok());
  }
  // What herd-ctld wrote before jobs could ask for GPU types, pools and nodes.
  RawQuery("UPDATE jobs SET spec = json_remove(spec, '$.gpu_types', '$.pool', '$.constraints', "
           "'$.nodelist', '$.exclude')");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto jobs = store->LoadJobs(true);
  ASSERT_TRUE(jobs.ok()) << jobs.status().message();
  ASSERT_EQ(jobs->size(), 1u);
  const model::JobSpec& s = (*jobs)[0].spec;
  EXPECT_TRUE(s.gpu_types.empty());
  EXPECT_EQ(s.pool, "");
  EXPECT_TRUE(s.constraints.empty());
  EXPECT_TRUE(s.nodelist.empty());
  EXPECT_TRUE(s.exclude.empty());
  EXPECT_EQ(s.sweep, FullJob().spec.sweep);
}

TEST_F(StoreTest, JobStopIsKeptAcrossUpdatesAndReopenUntilCleared) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job job = SimpleJob("victim", JobState::kRunning);
  auto id = store->InsertJob(job);
  ASSERT_TRUE(id.ok());
  job.id = *id;
  EXPECT_TRUE(store->LoadJobStops()->empty());
  const JobStop stop{JobState::kPending, "preempted for job 9", 9};
  ASSERT_TRUE(store->SetJobStop(job.id, stop).ok());
  job.state = JobState::kPreempted;
  ASSERT_TRUE(store->UpdateJob(job).ok());  // the job's own record leaves its stop alone
  store.reset();

  store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto stops = store->LoadJobStops();
  ASSERT_TRUE(stops.ok()) << stops.status().message();
  EXPECT_EQ(*stops, (std::map<model::JobId, JobStop>{{job.id, stop}}));
  const JobStop cancel{JobState::kCancelled, "cancelled by alice", 0};
  ASSERT_TRUE(store->SetJobStop(job.id, cancel).ok());
  EXPECT_EQ(store->LoadJobStops()->at(job.id), cancel);
  ASSERT_TRUE(store->SetJobStop(job.id, std::nullopt).ok());
  EXPECT_TRUE(store->LoadJobStops()->empty());

  Status missing = store->SetJobStop(job.id + 1, cancel);
  EXPECT_EQ(missing.code(), Code::kNotFound) << missing.message();
}

TEST_F(StoreTest, VersionTwoDatabaseMigratesAndItsPreemptedJobsAreStillRequeued) {
  Job preempted = SimpleJob("victim", JobState::kPreempted);
  preempted.reason = "preempted for job 9";
  Job running = SimpleJob("other", JobState::kRunning);
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    preempted.id = *store->InsertJob(preempted);
    running.id = *store->InsertJob(running);
  }
  // What herd-ctld of schema version 2 wrote: no stop column; a PREEMPTED job awaited its end.
  RawQuery("ALTER TABLE jobs DROP COLUMN stop");
  RawQuery("ALTER TABLE jobs DROP COLUMN waits_for");
  RawQuery("ALTER TABLE nodes DROP COLUMN drain_reason");
  RawQuery("DROP TABLE store_marks");
  std::filesystem::remove(path_ + ".highwater");
  DropHistory();
  RawQuery("PRAGMA user_version = 2");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), Store::CodeSchemaVersion());
  auto stops = store->LoadJobStops();
  ASSERT_TRUE(stops.ok()) << stops.status().message();
  EXPECT_EQ(*stops, (std::map<model::JobId, JobStop>{
                        {preempted.id, JobStop{JobState::kPending, "preempted for job 9", 0}}}));
}

HistoryRow Row(int kind, int64_t key, int64_t samples, int64_t v0) {
  return {kind, key, samples, {v0, v0 + 1, v0 + 2, v0 + 3, v0 + 4, -1}};
}

TEST_F(StoreTest, HistoryRoundTripsByTierSeriesAndTimeAndIsPrunedByTier) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Begin().ok());
  auto n1 = store->AddHistoryName(2, "n1");
  auto vision = store->AddHistoryName(1, "vision");
  ASSERT_TRUE(n1.ok() && vision.ok()) << n1.status().message();
  EXPECT_EQ(*store->AddHistoryName(2, "n1"), *n1);  // the same name keeps its id
  for (int64_t t : {100, 160, 220}) {
    const HistoryRow rows[] = {Row(0, 0, 1, t), Row(1, *vision, 1, t + 1), Row(2, *n1, 1, t + 2),
                               Row(3, 42, 1, t + 3)};
    ASSERT_TRUE(store->AppendHistory(0, t, rows).ok());
  }
  const HistoryRow ten[] = {Row(3, 42, 10, 7)};
  ASSERT_TRUE(store->AppendHistory(1, 0, ten).ok());
  ASSERT_TRUE(store->Commit().ok());

  auto names = store->LoadHistoryNames();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 2u);
  EXPECT_EQ((names->at({2, "n1"})), *n1);
  auto job = store->ReadHistory(0, 3, 42, 150, 221);
  ASSERT_TRUE(job.ok()) << job.status().message();
  ASSERT_EQ(job->size(), 2u);
  EXPECT_EQ((*job)[0], (HistoryRecord{160, Row(3, 42, 1, 163)}));
  EXPECT_EQ((*job)[1].time, 220);
  auto node = store->ReadHistory(0, 2, *n1, 0, 1000);
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(node->size(), 3u);
  EXPECT_EQ((*store->ReadHistory(1, 3, 42, 0, 1000)).at(0).row, ten[0]);
  EXPECT_EQ(*store->LastHistoryTime(0), 220);
  EXPECT_EQ(*store->LastHistoryTime(2), 0);
  EXPECT_EQ(store->LoadHistorySince(0, 160)->size(), 8u);

  // Pruning one tier leaves the others.
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->PruneHistory(0, 220).ok());
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(store->LoadHistorySince(0, 0)->size(), 4u);
  EXPECT_EQ(store->ReadHistory(0, 3, 42, 0, 1000)->size(), 1u);
  EXPECT_EQ(store->LoadHistorySince(1, 0)->size(), 1u);
}

TEST_F(StoreTest, VersionSixDatabaseMigratesToOneWithHistoryAndKeepsItsJobs) {
  Job job = SimpleJob("kept", JobState::kRunning);
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    job.id = *store->InsertJob(job);
  }
  DropHistory();
  RawQuery("PRAGMA user_version = 7");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), Store::CodeSchemaVersion());
  auto jobs = store->LoadJobs(true);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0], job);
  ASSERT_TRUE(store->Begin().ok());
  const HistoryRow rows[] = {Row(0, 0, 1, 5)};
  ASSERT_TRUE(store->AppendHistory(0, 60, rows).ok());
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(store->ReadHistory(0, 0, 0, 0, 100)->size(), 1u);
}

TEST_F(StoreTest, NewerSchemaVersionIsRefused) {
  { ASSERT_NE(OpenStore(), nullptr); }
  RawQuery("PRAGMA user_version = 99");
  auto store = Store::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kInvalid);
  const std::string& m = store.status().message();
  EXPECT_NE(
      m.find("database schema version 99 is newer than this herd-ctld (9): upgrade herd-ctld"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find(path_), std::string::npos) << m;
}

TEST_F(StoreTest, MissingParentDirectoryIsAnError) {
  std::string path = dir_ + "/no/such/dir/herd.db";
  auto store = Store::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status().message();
}

TEST_F(StoreTest, FileThatIsNotADatabaseIsAnErrorNamingIt) {
  {
    std::FILE* f = std::fopen(path_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("this is not an SQLite database, just some text long enough to be a header\n", f);
    std::fclose(f);
  }
  auto store = Store::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(path_), std::string::npos) << store.status().message();
}

TEST_F(StoreTest, DatabaseIsInWalMode) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawQuery("PRAGMA journal_mode"), "wal");
}

TEST_F(StoreTest, NodesUpsertAndLoad) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  model::NodeTopology topo;
  topo.hostname = "dgx01";
  topo.sockets = 2;
  topo.numa = {{0, {0, 1, 2, 3}, 131072}, {1, {4, 5, 6, 7}, 131072}};
  topo.gpus = {{0, "NVIDIA A100-SXM4-40GB", 40960, "0000:07:00.0", 0, 0, "mlx5_0", "GPU-abc"},
               {1, "NVIDIA A100-SXM4-40GB", 40960, "0000:0f:00.0", 1, 0, "mlx5_0", "GPU-def"}};
  topo.nics = {{"mlx5_0", "0000:0c:00.0", 0, 0}};
  topo.memory_mib = 262144;
  topo.emulated = true;
  topo.source = "etc/topologies/dgx.xml";
  ASSERT_TRUE(store->UpsertNode("dgx01", topo, model::NodeState::kUp, 100).ok());
  ASSERT_TRUE(store->UpsertNode("cpu01", {}, model::NodeState::kDown, 50).ok());
  ASSERT_TRUE(
      store->UpsertNode("dgx01", topo, model::NodeState::kDrain, 200, "fan on GPU 3").ok());

  auto nodes = store->LoadNodes();
  ASSERT_TRUE(nodes.ok()) << nodes.status().message();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0], (NodeRecord{"cpu01", {}, model::NodeState::kDown, 50}));
  EXPECT_EQ((*nodes)[1],
            (NodeRecord{"dgx01", topo, model::NodeState::kDrain, 200, "fan on GPU 3"}));
}

TEST_F(StoreTest, EventsAppendAndListInOrder) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto a = store->InsertJob(SimpleJob("a"));
  auto b = store->InsertJob(SimpleJob("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(store->AppendJobEvent(*a, 10, "started on dgx01").ok());
  ASSERT_TRUE(store->AppendJobEvent(*b, 11, "started on dgx02").ok());
  ASSERT_TRUE(
      store->AppendJobEvent(*a, 10, "preempted by job 12 of project vision (reclaim)").ok());

  auto events = store->JobEvents(*a);
  ASSERT_TRUE(events.ok()) << events.status().message();
  using Event = std::pair<int64_t, std::string>;
  EXPECT_EQ(*events, (std::vector<Event>{{10, "started on dgx01"},
                                         {10, "preempted by job 12 of project vision (reclaim)"}}));
  Status s = store->AppendJobEvent(9999, 1, "for nobody");
  EXPECT_EQ(s.code(), Code::kNotFound) << s.message();
}

TEST_F(StoreTest, InvalidUtf8IsRefusedAndNothingIsWritten) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job bad_argv = SimpleJob("bad");
  bad_argv.spec.argv.push_back("\xc3\x28");  // truncated two-byte sequence
  auto id = store->InsertJob(bad_argv);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), Code::kInvalid);
  EXPECT_NE(id.status().message().find("is not valid UTF-8"), std::string::npos)
      << id.status().message();

  Job bad_user = SimpleJob("bad");
  bad_user.user = "\xff";
  EXPECT_EQ(store->InsertJob(bad_user).status().code(), Code::kInvalid);

  Job good = SimpleJob("good");
  auto good_id = store->InsertJob(good);
  ASSERT_TRUE(good_id.ok());
  good.id = *good_id;
  Job bad_update = good;
  bad_update.reason = "stopped by \xed\xa0\x80";  // an encoded surrogate
  Status s = store->UpdateJob(bad_update);
  EXPECT_EQ(s.code(), Code::kInvalid) << s.message();
  Job bad_placement = good;
  bad_placement.placement = {{"node\x80", {}, 0, {}, 0, ""}};
  EXPECT_EQ(store->UpdateJob(bad_placement).code(), Code::kInvalid);

  auto jobs = store->LoadJobs(true);
  ASSERT_TRUE(jobs.ok()) << jobs.status().message();
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0], good);
}

TEST_F(StoreTest, TenThousandJobsInOneTransactionAllLoad) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  constexpr int kJobs = 10000;
  ASSERT_TRUE(store->Begin().ok());
  for (int i = 0; i < kJobs; ++i) {
    auto id = store->InsertJob(SimpleJob("job-" + std::to_string(i)));
    ASSERT_TRUE(id.ok()) << id.status().message();
  }
  ASSERT_TRUE(store->Commit().ok());
  auto jobs = store->LoadJobs(false);
  ASSERT_TRUE(jobs.ok()) << jobs.status().message();
  ASSERT_EQ(jobs->size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(jobs->front().spec.name, "job-0");
  EXPECT_EQ(jobs->back().spec.name, "job-9999");
}

// Commits `n` pending jobs, one transaction each; returns the last id.
model::JobId InsertJobs(Store& store, int n) {
  model::JobId last = 0;
  for (int i = 0; i < n; ++i) {
    EXPECT_TRUE(store.Begin().ok());
    auto id = store.InsertJob(SimpleJob("job-" + std::to_string(i)));
    EXPECT_TRUE(id.ok()) << id.status().message();
    if (id.ok()) last = *id;
    EXPECT_TRUE(store.Commit().ok());
  }
  return last;
}

// What a disk holds when herd-ctld was killed and its -wal file deleted: the main database file
// (which has not absorbed the log: no checkpoint ran) and the files beside it, copied to `to`.
void CopyWithoutWal(const std::string& from_dir, const std::string& to_dir) {
  std::filesystem::create_directories(to_dir);
  for (const char* name : {"herd.db", "herd.db.highwater"}) {
    std::filesystem::copy_file(from_dir + "/" + name, to_dir + "/" + name);
  }
}

TEST_F(StoreTest, OpenRefusesDatabaseThatLostCommittedJobsWithItsWal) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  InsertJobs(*store, 3);
  CopyWithoutWal(dir_, dir_ + "/lost");

  auto reopened = Store::Open(dir_ + "/lost/herd.db");
  ASSERT_FALSE(reopened.ok()) << "a database missing 3 acknowledged jobs was opened";
  EXPECT_EQ(reopened.status().code(), Code::kInvalid);
  const std::string& why = reopened.status().message();
  EXPECT_NE(why.find("holds less than herd-ctld committed"), std::string::npos) << why;
  EXPECT_NE(why.find("job ids up to 3"), std::string::npos) << why;
  EXPECT_NE(why.find("herd.db-wal"), std::string::npos) << why;
  EXPECT_NE(why.find("--accept-lost-state"), std::string::npos) << why;
}

TEST_F(StoreTest, OpenRefusesDatabaseThatLostCommittedUpdatesWithItsWal) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const model::JobId id = InsertJobs(*store, 1);
  // Checkpoint: the job itself is in the main file; only its later change is in the log.
  Checkpoint();
  Job done = SimpleJob("job-0", JobState::kCompleted);
  done.id = id;
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->UpdateJob(done).ok());
  ASSERT_TRUE(store->Commit().ok());
  CopyWithoutWal(dir_, dir_ + "/lost");

  auto reopened = Store::Open(dir_ + "/lost/herd.db");
  ASSERT_FALSE(reopened.ok()) << "a database that lost a committed update was opened";
  EXPECT_NE(reopened.status().message().find("holds less than herd-ctld committed"),
            std::string::npos)
      << reopened.status().message();
}

TEST_F(StoreTest, AcceptLostStateNeverReusesAJobId) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(InsertJobs(*store, 2), 2);
  const std::string copy = dir_ + "/lost/herd.db";
  std::filesystem::create_directories(dir_ + "/lost");
  Checkpoint();  // the main file holds jobs 1 and 2; jobs 3..5 will exist only in the log
  ASSERT_EQ(InsertJobs(*store, 3), 5);
  CopyWithoutWal(dir_, dir_ + "/lost");

  auto accepted = Store::Open(copy, OpenOptions{.accept_lost_state = true});
  ASSERT_TRUE(accepted.ok()) << accepted.status().message();
  EXPECT_NE((*accepted)->lost_state().find("job ids up to 5"), std::string::npos)
      << (*accepted)->lost_state();
  auto jobs = (*accepted)->LoadJobs(/*include_finished=*/true);
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 2u);
  EXPECT_EQ(InsertJobs(**accepted, 1), 6) << "a lost job's id was handed out again";
  accepted->reset();

  // Accepted once: the next start needs no flag and still counts on from there.
  auto again = Store::Open(copy);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE((*again)->lost_state().empty());
  EXPECT_EQ(InsertJobs(**again, 1), 7);
}

TEST_F(StoreTest, OpenAfterCleanCloseAndWithoutHighWaterRecordSucceeds) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    InsertJobs(*store, 2);
  }
  EXPECT_NE(OpenStore(), nullptr) << "a cleanly closed database was refused";
  // A database from before the record existed (or whose record was moved away) opens and gets one.
  std::filesystem::remove(path_ + ".highwater");
  EXPECT_NE(OpenStore(), nullptr);
  EXPECT_TRUE(std::filesystem::exists(path_ + ".highwater"));
}

TEST_F(StoreTest, FullDiskRefusesNewWorkKeepsWritingReportsAndRecovers) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  const std::string mnt = dir_ + "/small";
  std::filesystem::create_directories(mnt);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=16m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  std::unique_ptr<Store> store;
  {
    auto opened = Store::Open(mnt + "/herd.db");
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    store = std::move(opened).value();
  }
  ASSERT_TRUE(store->CheckSpace().ok());
  EXPECT_TRUE(std::filesystem::exists(mnt + "/herd.db.reserve"));
  const model::JobId id = InsertJobs(*store, 1);

  // Fill the file system up.
  RunFill(mnt + "/fill");
  Status full = store->CheckSpace();
  ASSERT_EQ(full.code(), Code::kNoSpace) << full.message();
  EXPECT_EQ(full.message(), "herd-ctld cannot write its database: No space left on device in " +
                                mnt + "; new work is refused until space is freed");
  EXPECT_FALSE(std::filesystem::exists(mnt + "/herd.db.reserve"));
  // What running jobs report is still written, into the room the reserve left.
  Job done = SimpleJob("job-0", JobState::kCompleted);
  done.id = id;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(store->Begin().ok());
    Status s = store->UpdateJob(done);
    if (s.ok()) s = store->AppendJobEvent(id, 1700000000 + i, "reported " + std::to_string(i));
    if (s.ok()) s = store->Commit();
    ASSERT_TRUE(s.ok()) << s.message();
  }
  EXPECT_EQ(store->CheckSpace().code(), Code::kNoSpace) << "still full: still refused";

  std::filesystem::remove(mnt + "/fill");
  EXPECT_TRUE(store->CheckSpace().ok());
  EXPECT_TRUE(std::filesystem::exists(mnt + "/herd.db.reserve"));
  EXPECT_EQ(InsertJobs(*store, 1), id + 1);
  auto jobs = store->LoadJobs(/*include_finished=*/true);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ(jobs->front().state, JobState::kCompleted);
}

}  // namespace
}  // namespace herd::store
