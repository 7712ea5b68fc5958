// Store: herd-ctld's durable record of jobs, nodes and job history in one SQLite database.
// herd-ctld opens one per controller thread at start-up and rebuilds its in-memory state from
// LoadJobs/LoadNodes; every state change is written here before it is acknowledged or acted on.
// This is the only code in herd that speaks SQL. The database runs in WAL mode with
// synchronous=FULL; its schema is versioned with PRAGMA user_version and migrated on Open.
// Beside the database (PATH) Store keeps two files of its own:
//  * PATH.highwater: the highest job id handed out and the number of transactions committed,
//    rewritten after each commit that changed anything (fsync'd when a job id was handed out).
//    Open compares it with the database: a database holding less (its -wal file deleted, an older
//    copy restored) is refused, so acknowledged jobs never vanish silently and no id is reused.
//  * PATH.reserve: space held back so that, when the disk fills up, the reports of running jobs
//    can still be recorded while new work is refused (CheckSpace).
// Thread-safety: not thread-safe; one Store per thread (several Stores may share one file).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/model/job.h"
#include "common/model/node.h"
#include "common/util/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace herd::store {

// A node as last recorded: what it reported at registration and what the controller decided.
struct NodeRecord {
  std::string name;
  model::NodeTopology topology;
  model::NodeState state = model::NodeState::kDown;
  int64_t last_seen = 0;  // seconds since epoch of its latest heartbeat
  std::string drain_reason = {};  // why an admin drained it (herd admin drain --reason); "" if none
  bool operator==(const NodeRecord&) const = default;
};

// What a job runs with beyond its request: its environment and batch script (model::JobSpec's env
// and script), as InsertJob wrote them. herd-ctld keeps them here only, not in memory.
struct JobEnvironment {
  std::map<std::string, std::string> env;
  std::string script;
  bool operator==(const JobEnvironment&) const = default;
};

// A stop herd-ctld asked of a running job and whose end it awaits (a cancel, a time limit, a
// preemption), kept with the job so that a restarted herd-ctld ends the job as it was asked to.
struct JobStop {
  model::JobState final_state = model::JobState::kCancelled;  // PENDING: requeue (preemption)
  std::string reason;
  model::JobId for_job = 0;  // a preemption: the pending job it makes room for; 0: none
  bool requeue_asked = false;  // PENDING asked by a user or admin (herd requeue), no preemption
  bool operator==(const JobStop&) const = default;
};

// Accounting of finished jobs whose records were deleted (PruneJobs), summed per UTC day (`day`:
// its first second, a multiple of 86400), project, user and GPU type. GPU and core time are split
// among the days a job ran; the job itself, its wait and its preemptions count in the day it
// started.
struct DailyUsage {
  int64_t day = 0;
  std::string project;
  std::string user;
  std::string gpu_type;           // "" for a job without GPUs
  int64_t gpu_milli_seconds = 0;  // GPUs x seconds run in the day, x1000
  int64_t core_seconds = 0;
  int64_t jobs = 0;
  int64_t wait_seconds = 0;  // start - submit, summed
  int64_t preemptions = 0;
  double util_weighted = 0;  // GPU utilization (percent) x gpu_milli_seconds, of measured jobs
  int64_t util_weight = 0;   // gpu_milli_seconds of the measured jobs
  bool operator==(const DailyUsage&) const = default;
};

// The daily rows finished `job` adds (none for a job that never ran), by model::Job's accounting.
std::vector<DailyUsage> DailyUsageOf(const model::Job& job, const std::string& gpu_type);

// Where PruneJobs goes on from: the (end_time, id) of the last finished job it read.
struct PruneCursor {
  int64_t end_time = 0;
  model::JobId id = 0;
};

// A queue's recorded recent use: GPU-seconds decayed up to `as_of` (seconds since the epoch).
struct QueueUsage {
  double gpu_seconds = 0;
  int64_t as_of = 0;
  bool operator==(const QueueUsage&) const = default;
};

// One row of herd-ctld's history (ctld/history.h): the average of `samples` samples of one
// series, identified by its kind and key (a job's id, or an id from HistoryNameId).
inline constexpr int kHistoryValues = 6;
struct HistoryRow {
  int kind = 0;
  int64_t key = 0;
  int64_t samples = 1;
  std::array<int64_t, kHistoryValues> values = {};
  bool operator==(const HistoryRow&) const = default;
};
// A row at its time, as read back.
struct HistoryRecord {
  int64_t time = 0;
  HistoryRow row;
  bool operator==(const HistoryRecord&) const = default;
};

struct OpenOptions {
  // Open a database that holds less than PATH.highwater says was committed, going on with what it
  // holds; new job ids continue above the highest one ever handed out.
  bool accept_lost_state = false;
};

class Store {
 public:
  // The schema version this build writes; Open refuses databases with a newer one.
  static int CodeSchemaVersion();
  // Bytes of PATH.reserve, and the free space below which CheckSpace reports the disk full.
  static constexpr int64_t kReserveBytes = 8 << 20;
  static constexpr int64_t kLowSpaceBytes = 1 << 20;

  // Opens (creating if absent) the database at `path` and migrates it to CodeSchemaVersion().
  // The parent directory must exist. Errors name `path`. Invalid, saying what was lost and how to
  // recover, when the database holds fewer transactions or lower job ids than PATH.highwater
  // records (unless options.accept_lost_state).
  static Result<std::unique_ptr<Store>> Open(const std::string& path,
                                             const OpenOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Opens a write transaction (BEGIN IMMEDIATE) so many changes commit together (group commit).
  // REQUIRES: no transaction open on this Store.
  Status Begin();
  // Makes every change since Begin durable. On error the transaction stays open: call Rollback.
  Status Commit();
  // Discards every change since Begin. A no-op when no transaction is open.
  Status Rollback();

  // Records a new job and returns its id (job.id is ignored). Ids increase and are never reused.
  // Invalid when a string of the job is not valid UTF-8.
  Result<model::JobId> InsertJob(const model::Job& job);
  // Replaces the record of job `job.id` but its environment and batch script, which stay as
  // InsertJob wrote them (whatever job.spec.env and job.spec.script hold). NotFound if it is
  // absent; Invalid as InsertJob.
  Status UpdateJob(const model::Job& job);
  // The environment and batch script of job `id` (see UpdateJob). NotFound if it is absent.
  Result<JobEnvironment> GetJobEnvironment(model::JobId id);
  // All jobs ordered by id; finished ones (model::IsTerminal) only if `include_finished`.
  Result<std::vector<model::Job>> LoadJobs(bool include_finished);
  // Unfinished jobs and those that ended at `ended_since` or later, ordered by id (what herd-ctld
  // keeps in memory).
  Result<std::vector<model::Job>> LoadJobsInFlight(int64_t ended_since);
  // Up to `limit` finished jobs with an id above `after`, of `user` ("" any), ordered by id.
  Result<std::vector<model::Job>> FinishedJobsAfter(model::JobId after, const std::string& user,
                                                    int64_t limit);
  // The members of array `array` (the id of its first job), in id order; empty when it is none.
  Result<std::vector<model::Job>> LoadArray(model::JobId array);
  // Finished jobs that ran at some time in [since, until), ordered by id.
  Result<std::vector<model::Job>> FinishedJobsRunIn(int64_t since, int64_t until);
  // Deletes up to `limit` finished jobs that ended before `ended_before`, oldest first from
  // `*cursor` on, with their history, adding their accounting (DailyUsageOf, with the GPU type
  // `gpu_type_of` names) to the daily totals. Skips the jobs `keep` is true of. Moves *cursor past
  // the jobs read, back to the start once none is left. Returns how many it deleted. Runs inside
  // the caller's transaction, if any.
  Result<int64_t> PruneJobs(int64_t ended_before, int64_t limit, PruneCursor* cursor,
                            const std::function<bool(const model::Job&)>& keep,
                            const std::function<std::string(const model::Job&)>& gpu_type_of);
  // The daily totals of the days that overlap [since, until), by day, project, user, GPU type.
  Result<std::vector<DailyUsage>> DailyUsageIn(int64_t since, int64_t until);
  // The job with `id`, or nullopt if there is none.
  Result<std::optional<model::Job>> GetJob(model::JobId id);
  // Records the stop under way of job `id`, or clears it (nullopt); UpdateJob leaves it as is.
  // NotFound if there is no such job; Invalid when the reason is not valid UTF-8.
  Status SetJobStop(model::JobId id, const std::optional<JobStop>& stop);
  // Every recorded stop, by job id.
  Result<std::map<model::JobId, JobStop>> LoadJobStops();

  // Records node `name`, replacing any previous record of it.
  Status UpsertNode(const std::string& name, const model::NodeTopology& topo,
                    model::NodeState state, int64_t last_seen,
                    const std::string& drain_reason = "");
  // All nodes ordered by name.
  Result<std::vector<NodeRecord>> LoadNodes();

  // Appends a line to the history of job `id` ("started on dgx01"). NotFound if no such job.
  Status AppendJobEvent(model::JobId id, int64_t time, const std::string& what);
  // The history of job `id` as (time, what), oldest first; empty for an unknown job.
  Result<std::vector<std::pair<int64_t, std::string>>> JobEvents(model::JobId id);

  // ---- queue usage ([scheduler] fair_share_half_life, ctld/sched/usage.h) ----
  // Replaces the recorded usage by `usage` (queue -> decayed GPU-seconds) as of `as_of`.
  // Invalid when a name is not UTF-8 or a value is not finite and >= 0.
  Status SaveQueueUsage(const std::map<std::string, double>& usage, int64_t as_of);
  // The recorded usage of each queue and when it was recorded.
  Result<std::map<std::string, QueueUsage>> LoadQueueUsage();

  // ---- history (ctld/history.h): rows by tier (0 raw, 1 and 2 averages), time, kind and key ----
  // Every name with an id (projects, nodes), as (kind, name) -> id.
  Result<std::map<std::pair<int, std::string>, int64_t>> LoadHistoryNames();
  // Gives name `name` of `kind` an id (the existing one if it has one). Invalid when not UTF-8.
  Result<int64_t> AddHistoryName(int kind, const std::string& name);
  // Appends `rows` at `time` to `tier`. REQUIRES: rows ordered by (kind, key), each once.
  Status AppendHistory(int tier, int64_t time, std::span<const HistoryRow> rows);
  // Deletes the rows of `tier` older than `before`.
  Status PruneHistory(int tier, int64_t before);
  // The rows of `tier` at or after `from`, every series, by time then kind and key.
  Result<std::vector<HistoryRecord>> LoadHistorySince(int tier, int64_t from);
  // The latest time of `tier` (0 when it has none).
  Result<int64_t> LastHistoryTime(int tier);
  // The rows of one series in `tier` with from <= time < to, oldest first.
  Result<std::vector<HistoryRecord>> ReadHistory(int tier, int kind, int64_t key, int64_t from,
                                                 int64_t to);

  // PRAGMA user_version of the open database.
  Result<int> SchemaVersion();

  // What Open accepted to lose under accept_lost_state ("" when nothing was lost), for the log.
  const std::string& lost_state() const { return lost_state_; }

  // Whether the database's file system has room for new work. NoSpace (with a message for users)
  // while its free space is below kLowSpaceBytes or since a write failed for lack of space; on
  // entering that state PATH.reserve is deleted so the writes that must go on (reports of running
  // jobs) find room. Ok again, with the reserve made anew, once kReserveBytes + 2 * kLowSpaceBytes
  // are free. Cheap (one statfs): call it before each batch of requests.
  Status CheckSpace();

 private:
  Store(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  Status Configure();
  Status Migrate();
  // Compares the database with PATH.highwater (see Open) and opens that file for Commit.
  Status CheckHighWater(const OpenOptions& options);
  // Rewrites PATH.highwater with the database's marks; fsyncs when `sync`.
  Status WriteHighWater(bool sync);
  Status NoSpaceError() const;
  Status Exec(const char* sql);
  Status Error(const std::string& doing, int rc) const;
  // The cached prepared statement for `sql` (a constant of ctld/store/), reset and unbound.
  Result<sqlite3_stmt*> Prepare(const char* sql);
  Result<model::Job> ReadJob(sqlite3_stmt* stmt);
  // Steps `stmt` (bound, in use) to its end, reading each row as a job, until `stop` is true of one
  // (that one is left out).
  Result<std::vector<model::Job>> ReadJobs(
      sqlite3_stmt* stmt, const char* doing,
      const std::function<bool(const model::Job&)>& stop = nullptr);
  Status AddDailyUsage(const DailyUsage& row);
  Status WriteJob(const char* sql, const model::Job& job, bool with_id);

  std::string path_;
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;
  int highwater_fd_ = -1;
  int64_t commits_ = 0;       // transactions that changed something, as of the last commit
  int64_t max_job_id_ = 0;    // highest job id handed out, as of the last commit
  int64_t changes_at_begin_ = 0;  // sqlite3_total_changes64 when the transaction began
  bool full_ = false;         // the disk is full: new work is refused (CheckSpace)
  std::string lost_state_;
};

}  // namespace herd::store
