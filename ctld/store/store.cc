#include "ctld/store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>
#include <system_error>

namespace herd::store {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Every SQL statement herd runs. Prepared statements are cached by the address of these constants.

constexpr char kPragmaForeignKeys[] = "PRAGMA foreign_keys = ON";
constexpr char kPragmaJournalModeWal[] = "PRAGMA journal_mode = WAL";
constexpr char kPragmaSynchronousFull[] = "PRAGMA synchronous = FULL";
constexpr char kPragmaUserVersion[] = "PRAGMA user_version";
constexpr char kBegin[] = "BEGIN IMMEDIATE";
constexpr char kCommit[] = "COMMIT";
constexpr char kRollback[] = "ROLLBACK";

// Schema version 1. spec and placement hold the JSON of model::JobSpec and of the
// WorkerPlacement list; name, project, class and gpu_milli (all workers) copy fields of the
// spec so they can be queried. Each migration ends by setting user_version.
constexpr char kMigration1[] = R"sql(
CREATE TABLE jobs (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  name          TEXT    NOT NULL,
  user          TEXT    NOT NULL,
  uid           INTEGER NOT NULL,
  gid           INTEGER NOT NULL,
  project       TEXT    NOT NULL,
  class         TEXT    NOT NULL,
  state         TEXT    NOT NULL,
  reason        TEXT    NOT NULL,
  submit_time   INTEGER NOT NULL,
  start_time    INTEGER NOT NULL,
  end_time      INTEGER NOT NULL,
  exit_code     INTEGER NOT NULL,
  restart_count INTEGER NOT NULL,
  gpu_milli     INTEGER NOT NULL,
  spec          TEXT    NOT NULL,
  placement     TEXT    NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state);
CREATE TABLE nodes (
  name      TEXT    PRIMARY KEY,
  topology  TEXT    NOT NULL,
  state     TEXT    NOT NULL,
  last_seen INTEGER NOT NULL
);
CREATE TABLE job_events (
  seq    INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs (id),
  time   INTEGER NOT NULL,
  what   TEXT    NOT NULL
);
CREATE INDEX job_events_by_job ON job_events (job_id, seq);
PRAGMA user_version = 1;
)sql";

// Schema version 2: accounting holds the JSON of a job's accounting fields (preemptions, GPU
// utilization samples); rows written before it read as none measured.
constexpr char kMigration2[] = R"sql(
ALTER TABLE jobs ADD COLUMN accounting TEXT NOT NULL DEFAULT '{}';
PRAGMA user_version = 2;
)sql";

// Schema version 3: stop holds the JSON of the stop herd-ctld asked of a running job whose end it
// awaits (JobStop), '' when none. A job stored as PREEMPTED was being stopped to be requeued.
constexpr char kMigration3[] = R"sql(
ALTER TABLE jobs ADD COLUMN stop TEXT NOT NULL DEFAULT '';
UPDATE jobs SET stop = json_object('state', 'PENDING', 'reason', reason)
  WHERE state = 'PREEMPTED';
PRAGMA user_version = 3;
)sql";

// Schema version 4: store_marks holds the number of transactions that changed something (one
// row), compared at Open with the copy kept in PATH.highwater.
constexpr char kMigration4[] = R"sql(
CREATE TABLE store_marks (commits INTEGER NOT NULL);
INSERT INTO store_marks (commits) VALUES (0);
PRAGMA user_version = 4;
)sql";

// Schema version 5: what a pending job waits for, by model::WaitsForName ('' for none: a job
// stored before it waits for the next cycle, which sets it).
constexpr char kMigration5[] = R"sql(
ALTER TABLE jobs ADD COLUMN waits_for TEXT NOT NULL DEFAULT '';
PRAGMA user_version = 5;
)sql";

// Schema version 6: why an admin drained a node (herd admin drain --reason), '' for none.
constexpr char kMigration6[] = R"sql(
ALTER TABLE nodes ADD COLUMN drain_reason TEXT NOT NULL DEFAULT '';
PRAGMA user_version = 6;
)sql";

// Schema version 7: jobs_by_end finds finished jobs by age (restart, pruning, herd usage);
// usage_daily holds the accounting of job records deleted by [controller] job_retention, per UTC
// day (its first second), project, user and GPU type. util_weighted is the sum of utilization
// (percent) x GPU-milli-seconds of the measured jobs, util_weight those GPU-milli-seconds.
constexpr char kMigration7[] = R"sql(
CREATE INDEX IF NOT EXISTS jobs_by_end ON jobs (end_time);
CREATE TABLE IF NOT EXISTS usage_daily (
  day               INTEGER NOT NULL,
  project           TEXT    NOT NULL,
  user              TEXT    NOT NULL,
  gpu_type          TEXT    NOT NULL,
  gpu_milli_seconds INTEGER NOT NULL,
  core_seconds      INTEGER NOT NULL,
  jobs              INTEGER NOT NULL,
  wait_seconds      INTEGER NOT NULL,
  preemptions       INTEGER NOT NULL,
  util_weighted     REAL    NOT NULL,
  util_weight       INTEGER NOT NULL,
  PRIMARY KEY (day, project, user, gpu_type)
);
PRAGMA user_version = 7;
)sql";

// Schema version 8: herd-ctld's history (ctld/history.h). history holds one row per series and
// sample time in each tier (0: as sampled, 1: 10-minute and 2: hourly averages of `samples`
// samples), keyed time first so that each sample appends and each pruning deletes a range;
// history_times lists each tier's times, so one series is read by a lookup per time.
// history_names gives projects and nodes integer keys (a job's key is its id); v0..v5 hold the
// values named per kind in ctld/history.h.
constexpr char kMigration8[] = R"sql(
CREATE TABLE IF NOT EXISTS history_names (
  id   INTEGER PRIMARY KEY,
  kind INTEGER NOT NULL,
  name TEXT    NOT NULL,
  UNIQUE (kind, name)
);
CREATE TABLE IF NOT EXISTS history_times (
  tier INTEGER NOT NULL,
  time INTEGER NOT NULL,
  PRIMARY KEY (tier, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
  tier    INTEGER NOT NULL,
  time    INTEGER NOT NULL,
  kind    INTEGER NOT NULL,
  key     INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  v0 INTEGER NOT NULL, v1 INTEGER NOT NULL, v2 INTEGER NOT NULL,
  v3 INTEGER NOT NULL, v4 INTEGER NOT NULL, v5 INTEGER NOT NULL,
  PRIMARY KEY (tier, time, kind, key)
) WITHOUT ROWID;
PRAGMA user_version = 8;
)sql";

// Schema version 9: each queue's recent GPU use for time-decayed fair share ([scheduler]
// fair_share_half_life): GPU-seconds decayed up to `as_of` (seconds since the epoch), so a restart
// resumes from there with the decay of the time in between.
constexpr char kMigration9[] = R"sql(
CREATE TABLE IF NOT EXISTS queue_usage (
  queue TEXT    PRIMARY KEY,
  usage REAL    NOT NULL,
  as_of INTEGER NOT NULL
);
PRAGMA user_version = 9;
)sql";

// kMigrations[i] takes a database from version i to version i + 1.
constexpr const char* kMigrations[] = {kMigration1, kMigration2, kMigration3,
                                       kMigration4, kMigration5, kMigration6,
                                       kMigration7, kMigration8, kMigration9};

constexpr char kCountCommit[] = "UPDATE store_marks SET commits = commits + 1 RETURNING commits";
constexpr char kSelectCommits[] = "SELECT commits FROM store_marks";
constexpr char kSetCommits[] = "UPDATE store_marks SET commits = ?1";
// The highest job id AUTOINCREMENT handed out (sqlite_sequence exists once a job was inserted).
constexpr char kSelectMaxJobId[] =
    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0)";
// ?1: the lowest value the next job id must exceed.
constexpr char kRaiseJobSequence[] =
    "INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs', ?1 "
    "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs')";
constexpr char kRaiseJobSequenceExisting[] =
    "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'jobs'";

constexpr char kInsertJob[] =
    "INSERT INTO jobs (name, user, uid, gid, project, class, state, reason, submit_time, "
    "start_time, end_time, exit_code, restart_count, gpu_milli, spec, placement, accounting, "
    "waits_for) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?18, ?19)";
constexpr char kUpdateJob[] =
    "UPDATE jobs SET name = ?1, user = ?2, uid = ?3, gid = ?4, project = ?5, class = ?6, "
    "state = ?7, reason = ?8, submit_time = ?9, start_time = ?10, end_time = ?11, "
    "exit_code = ?12, restart_count = ?13, gpu_milli = ?14, spec = ?15, placement = ?16, "
    "accounting = ?18, waits_for = ?19 WHERE id = ?17";
constexpr char kSelectAllJobs[] =
    "SELECT id, user, uid, gid, state, reason, submit_time, start_time, end_time, exit_code, "
    "restart_count, spec, placement, accounting, waits_for FROM jobs ORDER BY id";
// ?1: JSON array of state names.
constexpr char kSelectJobsInStates[] =
    "SELECT id, user, uid, gid, state, reason, submit_time, start_time, end_time, exit_code, "
    "restart_count, spec, placement, accounting, waits_for FROM jobs "
    "WHERE state IN (SELECT value FROM json_each(?1)) ORDER BY id";
constexpr char kSelectJob[] =
    "SELECT id, user, uid, gid, state, reason, submit_time, start_time, end_time, exit_code, "
    "restart_count, spec, placement, accounting, waits_for FROM jobs WHERE id = ?1";
// The columns ReadJob reads, in its order, for the job queries below.
#define HERD_SELECT_JOBS                                                                     \
  "SELECT id, user, uid, gid, state, reason, submit_time, start_time, end_time, exit_code, " \
  "restart_count, spec, placement, accounting, waits_for FROM jobs "
// ?1: JSON array of unfinished state names; ?2: the earliest end of a finished job wanted.
constexpr char kSelectJobsInFlight[] = HERD_SELECT_JOBS
    "WHERE end_time >= ?2 OR state IN (SELECT value FROM json_each(?1)) ORDER BY id";
// ?1: JSON array of unfinished state names; ?2: after this id; ?3: user ('' any); ?4: how many.
constexpr char kSelectFinishedJobsAfter[] = HERD_SELECT_JOBS
    "WHERE id > ?2 AND state NOT IN (SELECT value FROM json_each(?1)) AND (?3 = '' OR user = ?3) "
    "ORDER BY id LIMIT ?4";
// Jobs from ?1 on, in id order: an array's members follow its first job (the caller stops at the
// first job of another array).
constexpr char kSelectJobsFrom[] = HERD_SELECT_JOBS "WHERE id >= ?1 ORDER BY id";
// Finished jobs that ran at some time in [?2, ?3): ended at ?2 or later, started before ?3.
constexpr char kSelectFinishedJobsRunIn[] = HERD_SELECT_JOBS
    "WHERE end_time >= ?2 AND start_time > 0 AND start_time < ?3 "
    "AND state NOT IN (SELECT value FROM json_each(?1)) ORDER BY id";
// Finished jobs that ended before ?2, after the one that ended at ?3 with id ?4, oldest first.
constexpr char kSelectPrunable[] = HERD_SELECT_JOBS
    "WHERE end_time < ?2 AND (end_time, id) > (?3, ?4) "
    "AND state NOT IN (SELECT value FROM json_each(?1)) ORDER BY end_time, id LIMIT ?5";
#undef HERD_SELECT_JOBS
constexpr char kDeleteJobEvents[] = "DELETE FROM job_events WHERE job_id = ?1";
constexpr char kDeleteJob[] = "DELETE FROM jobs WHERE id = ?1";
constexpr char kAddDailyUsage[] =
    "INSERT INTO usage_daily (day, project, user, gpu_type, gpu_milli_seconds, core_seconds, "
    "jobs, wait_seconds, preemptions, util_weighted, util_weight) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
    "ON CONFLICT (day, project, user, gpu_type) DO UPDATE SET "
    "gpu_milli_seconds = gpu_milli_seconds + excluded.gpu_milli_seconds, "
    "core_seconds = core_seconds + excluded.core_seconds, jobs = jobs + excluded.jobs, "
    "wait_seconds = wait_seconds + excluded.wait_seconds, "
    "preemptions = preemptions + excluded.preemptions, "
    "util_weighted = util_weighted + excluded.util_weighted, "
    "util_weight = util_weight + excluded.util_weight";
// Days that overlap [?1, ?2).
constexpr char kSelectDailyUsage[] =
    "SELECT day, project, user, gpu_type, gpu_milli_seconds, core_seconds, jobs, wait_seconds, "
    "preemptions, util_weighted, util_weight FROM usage_daily "
    "WHERE day > ?1 - 86400 AND day < ?2 ORDER BY day, project, user, gpu_type";
constexpr char kUpdateJobStop[] = "UPDATE jobs SET stop = ?2 WHERE id = ?1";
constexpr char kSelectJobStops[] = "SELECT id, stop FROM jobs WHERE stop != '' ORDER BY id";
constexpr char kUpsertNode[] =
    "INSERT INTO nodes (name, topology, state, last_seen, drain_reason) "
    "VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (name) DO UPDATE SET topology = excluded.topology, state = excluded.state, "
    "last_seen = excluded.last_seen, drain_reason = excluded.drain_reason";
constexpr char kSelectNodes[] =
    "SELECT name, topology, state, last_seen, drain_reason FROM nodes ORDER BY name";
constexpr char kInsertJobEvent[] =
    "INSERT INTO job_events (job_id, time, what) VALUES (?1, ?2, ?3)";
constexpr char kSelectJobEvents[] =
    "SELECT time, what FROM job_events WHERE job_id = ?1 ORDER BY seq";

constexpr char kDeleteQueueUsage[] = "DELETE FROM queue_usage";
constexpr char kInsertQueueUsage[] =
    "INSERT INTO queue_usage (queue, usage, as_of) VALUES (?1, ?2, ?3)";
constexpr char kSelectQueueUsage[] = "SELECT queue, usage, as_of FROM queue_usage";
constexpr char kSelectHistoryNames[] = "SELECT kind, name, id FROM history_names";
constexpr char kInsertHistoryName[] =
    "INSERT INTO history_names (kind, name) VALUES (?1, ?2) "
    "ON CONFLICT (kind, name) DO UPDATE SET name = excluded.name RETURNING id";
constexpr char kInsertHistoryTime[] =
    "INSERT OR IGNORE INTO history_times (tier, time) VALUES (?1, ?2)";
constexpr char kInsertHistory[] =
    "INSERT OR REPLACE INTO history (tier, time, kind, key, samples, v0, v1, v2, v3, v4, v5) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
constexpr char kPruneHistory[] = "DELETE FROM history WHERE tier = ?1 AND time < ?2";
constexpr char kPruneHistoryTimes[] = "DELETE FROM history_times WHERE tier = ?1 AND time < ?2";
constexpr char kSelectHistorySince[] =
    "SELECT time, kind, key, samples, v0, v1, v2, v3, v4, v5 FROM history "
    "WHERE tier = ?1 AND time >= ?2 ORDER BY time, kind, key";
constexpr char kSelectLastHistoryTime[] =
    "SELECT coalesce(max(time), 0) FROM history_times WHERE tier = ?1";
// CROSS JOIN keeps history_times outside: a range of its times, then one primary-key lookup of
// the series at each.
constexpr char kSelectHistorySeries[] =
    "SELECT t.time, h.kind, h.key, h.samples, h.v0, h.v1, h.v2, h.v3, h.v4, h.v5 "
    "FROM history_times AS t CROSS JOIN history AS h "
    "ON h.tier = t.tier AND h.time = t.time AND h.kind = ?2 AND h.key = ?3 "
    "WHERE t.tier = ?1 AND t.time >= ?4 AND t.time < ?5 ORDER BY t.time";

// ---------------------------------------------------------------------------------------------

constexpr int kBusyTimeoutMs = 5000;

// PATH.highwater: one line, padded to a fixed size so each rewrite overwrites it in place
// (needing no new disk block, even on a full disk).
constexpr size_t kHighWaterSize = 64;
constexpr char kHighWaterFormat[] = "herd-ctld highwater 1 job_id %lld commits %lld";

struct HighWater {
  int64_t job_id = 0;
  int64_t commits = 0;
};

std::optional<HighWater> ParseHighWater(const std::string& text) {
  long long job_id = 0, commits = 0;
  if (std::sscanf(text.c_str(), "herd-ctld highwater 1 job_id %lld commits %lld", &job_id,
                  &commits) != 2 ||
      job_id < 0 || commits < 0) {
    return std::nullopt;
  }
  return HighWater{job_id, commits};
}

std::string Errno(int err) { return std::strerror(err); }

// The directory of the database (herd-ctld's state_dir).
std::string StateDir(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// Writes `size` bytes at the end of `fd`'s file for real (posix_fallocate, or zeros where the file
// system cannot preallocate).
bool Allocate(int fd, int64_t size) {
  if (posix_fallocate(fd, 0, size) == 0) return true;
  std::string zeros(1 << 16, '\0');
  for (int64_t done = 0; done < size;) {
    const ssize_t n = pwrite(fd, zeros.data(), std::min<int64_t>(zeros.size(), size - done), done);
    if (n <= 0) return false;
    done += n;
  }
  return fsync(fd) == 0;
}

// Resets a cached statement when the scope that uses it ends, so no statement keeps a read
// transaction open between calls.
class StatementUse {
 public:
  explicit StatementUse(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StatementUse() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StatementUse(const StatementUse&) = delete;
  StatementUse& operator=(const StatementUse&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// Binds parameters, keeping the first error so callers check once.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Binder& Text(int i, std::string_view v) {
    return Check(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Binder& Int(int i, int64_t v) { return Check(sqlite3_bind_int64(stmt_, i, v)); }
  Binder& Real(int i, double v) { return Check(sqlite3_bind_double(stmt_, i, v)); }
  int rc() const { return rc_; }

 private:
  Binder& Check(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
    return *this;
  }
  sqlite3_stmt* stmt_;
  int rc_ = SQLITE_OK;
};

std::string ColumnText(sqlite3_stmt* stmt, int i) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
  return text ? std::string(text, sqlite3_column_bytes(stmt, i)) : std::string();
}

// nlohmann validates UTF-8 when it serializes, so one dump both encodes and checks the text.
std::optional<std::string> Dump(const json& j) {
  try {
    return j.dump();
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

// The rules nlohmann's dump enforces: no overlong form, no surrogate, nothing past U+10FFFF.
bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

// JSON text of one object, written directly: building an nlohmann tree and dumping it cost more
// than the rest of a submit (the spec column). Reads back with nlohmann like any JSON.
class JsonObject {
 public:
  JsonObject() {
    out_.reserve(512);
    out_ += '{';
  }
  JsonObject& Str(const char* key, std::string_view v) {
    Key(key);
    String(v);
    return *this;
  }
  JsonObject& Int(const char* key, int64_t v) {
    Key(key);
    out_ += std::to_string(v);
    return *this;
  }
  JsonObject& Bool(const char* key, bool v) {
    Key(key);
    out_ += v ? "true" : "false";
    return *this;
  }
  JsonObject& Strings(const char* key, const std::vector<std::string>& list) {
    Key(key);
    out_ += '[';
    for (size_t i = 0; i < list.size(); ++i) {
      if (i > 0) out_ += ',';
      String(list[i]);
    }
    out_ += ']';
    return *this;
  }
  JsonObject& StringMap(const char* key, const std::map<std::string, std::string>& map) {
    Key(key);
    out_ += '{';
    bool first = true;
    for (const auto& [k, v] : map) {
      if (!first) out_ += ',';
      first = false;
      String(k);
      out_ += ':';
      String(v);
    }
    out_ += '}';
    return *this;
  }
  // The text, or nullopt when a string was not valid UTF-8.
  std::optional<std::string> Done() {
    if (!utf8_) return std::nullopt;
    out_ += '}';
    return std::move(out_);
  }

 private:
  void Key(const char* key) {
    if (out_.size() > 1) out_ += ',';
    out_ += '"';
    out_ += key;  // constants of this file: plain ASCII
    out_ += "\":";
  }
  void String(std::string_view v) {
    if (!IsUtf8(v)) utf8_ = false;
    out_ += '"';
    for (char ch : v) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += ch;
      } else if (c < 0x20) {
        static constexpr char kHex[] = "0123456789abcdef";
        out_ += "\\u00";
        out_ += kHex[c >> 4];
        out_ += kHex[c & 0xf];
      } else {
        out_ += ch;
      }
    }
    out_ += '"';
  }

  std::string out_;
  bool utf8_ = true;
};

// Sets `out` from j[key] when present, so rows written before a field existed keep its default.
template <typename T>
void Get(const json& j, const char* key, T& out) {
  if (auto it = j.find(key); it != j.end()) it->get_to(out);
}

std::optional<std::string> SpecText(const model::JobSpec& s) {
  return JsonObject()
      .Str("name", s.name)
      .Strings("argv", s.argv)
      .StringMap("env", s.env)
      .Str("cwd", s.cwd)
      .Str("project", s.project)
      .Str("class", s.job_class)
      .Int("workers", s.workers)
      .Int("gpu_milli", s.gpu_milli)
      .Int("gpu_memory_mib", s.gpu_memory_mib)
      .Int("cpus", s.cpus)
      .Int("memory_mib", s.memory_mib)
      .Int("time_limit_s", s.time_limit_s)
      .Str("image", s.image)
      .Bool("spread", s.spread)
      .Strings("volumes", s.volumes)
      .Strings("after", s.after)
      .Bool("hold", s.hold)
      .Bool("admin_hold", s.admin_hold)
      .Int("begin_time", s.begin_time)
      .Int("array_id", s.array_id)
      .Int("array_index", s.array_index)
      .Int("array_limit", s.array_limit)
      .StringMap("sweep", s.sweep)
      .Bool("stop_after_success", s.stop_after_success)
      .Int("gpu_memory_limit_mib", s.gpu_memory_limit_mib)
      .Str("script", s.script)
      .Strings("gpu_types", s.gpu_types)
      .Str("pool", s.pool)
      .StringMap("constraints", s.constraints)
      .Strings("nodelist", s.nodelist)
      .Strings("exclude", s.exclude)
      .Str("session", s.session)
      .Str("output", s.output)
      .Str("error", s.error)
      .Bool("output_append", s.output_append)
      .Done();
}

model::JobSpec SpecFromJson(const json& j) {
  model::JobSpec s;
  Get(j, "name", s.name);
  Get(j, "argv", s.argv);
  Get(j, "env", s.env);
  Get(j, "cwd", s.cwd);
  Get(j, "project", s.project);
  Get(j, "class", s.job_class);
  Get(j, "workers", s.workers);
  Get(j, "gpu_milli", s.gpu_milli);
  Get(j, "gpu_memory_mib", s.gpu_memory_mib);
  Get(j, "cpus", s.cpus);
  Get(j, "memory_mib", s.memory_mib);
  Get(j, "time_limit_s", s.time_limit_s);
  Get(j, "image", s.image);
  Get(j, "spread", s.spread);
  Get(j, "volumes", s.volumes);
  Get(j, "after", s.after);
  Get(j, "hold", s.hold);
  Get(j, "admin_hold", s.admin_hold);
  Get(j, "begin_time", s.begin_time);
  Get(j, "array_id", s.array_id);
  Get(j, "array_index", s.array_index);
  Get(j, "array_limit", s.array_limit);
  Get(j, "sweep", s.sweep);
  Get(j, "stop_after_success", s.stop_after_success);
  Get(j, "gpu_memory_limit_mib", s.gpu_memory_limit_mib);
  Get(j, "script", s.script);
  Get(j, "gpu_types", s.gpu_types);
  Get(j, "pool", s.pool);
  Get(j, "constraints", s.constraints);
  Get(j, "nodelist", s.nodelist);
  Get(j, "exclude", s.exclude);
  Get(j, "session", s.session);
  Get(j, "output", s.output);
  Get(j, "error", s.error);
  Get(j, "output_append", s.output_append);
  return s;
}

std::string AccountingText(const model::Job& j) {
  return *JsonObject()
              .Int("preemptions", j.preemptions)
              .Int("gpu_util_sum", j.gpu_util_sum)
              .Int("gpu_sampled_ms", j.gpu_sampled_ms)
              .Int("cpu_ms", j.usage.cpu_ms)
              .Int("memory_peak_bytes", j.usage.memory_peak_bytes)
              .Done();  // numbers only: always valid
}

void AccountingFromJson(const json& j, model::Job& job) {
  Get(j, "preemptions", job.preemptions);
  Get(j, "gpu_util_sum", job.gpu_util_sum);
  Get(j, "gpu_sampled_ms", job.gpu_sampled_ms);
  Get(j, "cpu_ms", job.usage.cpu_ms);
  Get(j, "memory_peak_bytes", job.usage.memory_peak_bytes);
}

json PlacementToJson(const std::vector<model::WorkerPlacement>& placement) {
  json list = json::array();
  for (const auto& w : placement) {
    list.push_back({{"node", w.node},
                    {"gpus", w.gpus},
                    {"gpu_milli_each", w.gpu_milli_each},
                    {"cores", w.cores},
                    {"memory_mib", w.memory_mib},
                    {"nic", w.nic}});
  }
  return list;
}

std::vector<model::WorkerPlacement> PlacementFromJson(const json& list) {
  std::vector<model::WorkerPlacement> placement;
  for (const auto& j : list) {
    model::WorkerPlacement& w = placement.emplace_back();
    Get(j, "node", w.node);
    Get(j, "gpus", w.gpus);
    Get(j, "gpu_milli_each", w.gpu_milli_each);
    Get(j, "cores", w.cores);
    Get(j, "memory_mib", w.memory_mib);
    Get(j, "nic", w.nic);
  }
  return placement;
}

json TopologyToJson(const model::NodeTopology& t) {
  json numa = json::array();
  for (const auto& n : t.numa) {
    numa.push_back({{"id", n.id}, {"cores", n.cores}, {"memory_mib", n.memory_mib}});
  }
  json gpus = json::array();
  for (const auto& g : t.gpus) {
    gpus.push_back({{"index", g.index},
                    {"model", g.model},
                    {"memory_mib", g.memory_mib},
                    {"pci_bus_id", g.pci_bus_id},
                    {"numa", g.numa},
                    {"pcie_switch", g.pcie_switch},
                    {"nic", g.nic},
                    {"uuid", g.uuid}});
  }
  json nics = json::array();
  for (const auto& n : t.nics) {
    nics.push_back({{"name", n.name},
                    {"pci_bus_id", n.pci_bus_id},
                    {"numa", n.numa},
                    {"pcie_switch", n.pcie_switch}});
  }
  return {{"hostname", t.hostname}, {"sockets", t.sockets}, {"numa", numa},
          {"gpus", gpus},           {"nics", nics},         {"memory_mib", t.memory_mib},
          {"emulated", t.emulated}, {"source", t.source}};
}

model::NodeTopology TopologyFromJson(const json& j) {
  model::NodeTopology t;
  Get(j, "hostname", t.hostname);
  Get(j, "sockets", t.sockets);
  for (const auto& e : j.value("numa", json::array())) {
    model::NumaInfo& n = t.numa.emplace_back();
    Get(e, "id", n.id);
    Get(e, "cores", n.cores);
    Get(e, "memory_mib", n.memory_mib);
  }
  for (const auto& e : j.value("gpus", json::array())) {
    model::GpuInfo& g = t.gpus.emplace_back();
    Get(e, "index", g.index);
    Get(e, "model", g.model);
    Get(e, "memory_mib", g.memory_mib);
    Get(e, "pci_bus_id", g.pci_bus_id);
    Get(e, "numa", g.numa);
    Get(e, "pcie_switch", g.pcie_switch);
    Get(e, "nic", g.nic);
    Get(e, "uuid", g.uuid);
  }
  for (const auto& e : j.value("nics", json::array())) {
    model::NicInfo& n = t.nics.emplace_back();
    Get(e, "name", n.name);
    Get(e, "pci_bus_id", n.pci_bus_id);
    Get(e, "numa", n.numa);
    Get(e, "pcie_switch", n.pcie_switch);
  }
  Get(j, "memory_mib", t.memory_mib);
  Get(j, "emulated", t.emulated);
  Get(j, "source", t.source);
  return t;
}

std::optional<model::NodeState> ParseNodeState(std::string_view name) {
  for (auto s : {model::NodeState::kUp, model::NodeState::kDown, model::NodeState::kDrain}) {
    if (name == model::NodeStateName(s)) return s;
  }
  return std::nullopt;
}

// JSON array of the names of the states a job can still leave (not model::IsTerminal).
const std::string& UnfinishedStatesJson() {
  static const std::string names = [] {
    json list = json::array();
    for (int i = 0; i <= static_cast<int>(model::JobState::kNodeFail); ++i) {
      auto state = static_cast<model::JobState>(i);
      if (!model::IsTerminal(state)) list.push_back(model::JobStateName(state));
    }
    return list.dump();
  }();
  return names;
}

}  // namespace

int Store::CodeSchemaVersion() { return static_cast<int>(std::size(kMigrations)); }

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, const OpenOptions& options) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(parent, ec)) {
    return NotFound(path + ": cannot open database: directory " + parent.string() +
                    " does not exist");
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Internal(path + ": cannot open database: " + why);
  }
  std::unique_ptr<Store> store(new Store(path, db));
  HERD_RETURN_IF_ERROR(store->Configure());
  HERD_RETURN_IF_ERROR(store->Migrate());
  HERD_RETURN_IF_ERROR(store->CheckHighWater(options));
  return store;
}

Store::~Store() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);  // rolls back an open transaction
  if (highwater_fd_ >= 0) close(highwater_fd_);
}

Status Store::NoSpaceError() const {
  return NoSpace("herd-ctld cannot write its database: " + Errno(ENOSPC) + " in " +
                 StateDir(path_) + "; new work is refused until space is freed");
}

Status Store::Error(const std::string& doing, int rc) const {
  std::string message = path_ + ": " + doing + ": " + sqlite3_errmsg(db_);
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Unavailable(message);
  if (primary == SQLITE_FULL) {
    const_cast<Store*>(this)->full_ = true;
    return NoSpace(NoSpaceError().message() + " (" + message + ")");
  }
  return Internal(message);
}

Status Store::Exec(const char* sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string message = path_ + ": " + (error ? error : sqlite3_errstr(rc));
  sqlite3_free(error);
  if ((rc & 0xff) == SQLITE_FULL) {
    full_ = true;
    return NoSpace(NoSpaceError().message() + " (" + message + ")");
  }
  return (rc & 0xff) == SQLITE_BUSY ? Unavailable(message) : Internal(message);
}

Status Store::CheckHighWater(const OpenOptions& options) {
  const std::string file = path_ + ".highwater";
  // What the database holds.
  HERD_RETURN_IF_ERROR(Begin());
  Status s;
  {
    auto stmt = Prepare(kSelectCommits);
    if (stmt.ok()) {
      StatementUse use(*stmt);
      int rc = sqlite3_step(*stmt);
      if (rc == SQLITE_ROW) {
        commits_ = sqlite3_column_int64(*stmt, 0);
      } else {
        s = Error("reading the commit count", rc);
      }
    } else {
      s = stmt.status();
    }
  }
  if (s.ok()) {
    auto stmt = Prepare(kSelectMaxJobId);
    if (stmt.ok()) {
      StatementUse use(*stmt);
      int rc = sqlite3_step(*stmt);
      if (rc == SQLITE_ROW) {
        max_job_id_ = sqlite3_column_int64(*stmt, 0);
      } else {
        s = Error("reading the highest job id", rc);
      }
    } else {
      s = stmt.status();
    }
  }
  (void)Rollback();
  HERD_RETURN_IF_ERROR(s);

  // What herd-ctld committed before, as recorded beside the database.
  const bool existed = std::filesystem::exists(file);
  highwater_fd_ = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (highwater_fd_ < 0) return Internal(file + ": cannot open: " + Errno(errno));
  HighWater recorded;
  if (existed) {
    char buf[kHighWaterSize + 1] = {};
    const ssize_t n = pread(highwater_fd_, buf, kHighWaterSize, 0);
    if (n < 0) return Internal(file + ": cannot read: " + Errno(errno));
    auto parsed = ParseHighWater(std::string(buf, n));
    if (!parsed) {
      return Invalid(file + ": not a high-water record herd-ctld wrote; if it was damaged, move " +
                     "it away and start herd-ctld again (it then records a new one, but cannot " +
                     "tell this time whether " + path_ + " lost committed work)");
    }
    recorded = *parsed;
  }
  if (commits_ < recorded.commits || max_job_id_ < recorded.job_id) {
    const std::string what =
        path_ + " holds less than herd-ctld committed: " + std::to_string(commits_) +
        " transactions and job ids up to " + std::to_string(max_job_id_) + ", but " + file +
        " records " + std::to_string(recorded.commits) + " transactions and job ids up to " +
        std::to_string(recorded.job_id) + ".";
    if (!options.accept_lost_state) {
      return Invalid(
          what + " Its write-ahead log (" + path_ + "-wal) was probably deleted, or an older " +
          "copy of the database was restored: acknowledged jobs are missing from it. Put the " +
          "-wal file (or the newer copy) back beside the database and start herd-ctld again; or, " +
          "to go on with what the database holds, start herd-ctld once with " +
          "--accept-lost-state (new job ids then continue above " +
          std::to_string(recorded.job_id) + ").");
    }
    // Going on: ids stay above every one handed out, and the counts match the record again.
    HERD_RETURN_IF_ERROR(Begin());
    for (const char* sql : {kRaiseJobSequence, kRaiseJobSequenceExisting, kSetCommits}) {
      auto stmt = Prepare(sql);
      if (!stmt.ok()) {
        s = stmt.status();
        break;
      }
      StatementUse use(*stmt);
      int rc = Binder(*stmt)
                   .Int(1, sql == kSetCommits ? std::max(commits_, recorded.commits)
                                              : std::max(max_job_id_, recorded.job_id))
                   .rc();
      if (rc == SQLITE_OK) rc = sqlite3_step(*stmt);
      if (rc != SQLITE_DONE) {
        s = Error("raising the marks after lost state", rc);
        break;
      }
    }
    if (s.ok()) s = Commit();
    if (!s.ok()) {
      (void)Rollback();
      return s;
    }
    lost_state_ = what + " Started with --accept-lost-state: the jobs missing from it are lost; " +
                  "new job ids continue above " + std::to_string(recorded.job_id) + ".";
    return Status::Ok();
  }
  HERD_RETURN_IF_ERROR(WriteHighWater(/*sync=*/true));
  if (!existed) {
    // The new file's name must survive a crash too.
    int dir = open(StateDir(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      (void)fsync(dir);
      close(dir);
    }
  }
  return Status::Ok();
}

Status Store::WriteHighWater(bool sync) {
  char buf[kHighWaterSize];
  std::memset(buf, ' ', sizeof buf);
  const int n = std::snprintf(buf, sizeof buf, kHighWaterFormat,
                              static_cast<long long>(max_job_id_),
                              static_cast<long long>(commits_));
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) {
    return Internal(path_ + ".highwater: record too long");
  }
  buf[n] = ' ';
  buf[sizeof buf - 1] = '\n';
  if (pwrite(highwater_fd_, buf, sizeof buf, 0) != static_cast<ssize_t>(sizeof buf)) {
    return Internal(path_ + ".highwater: cannot write: " + Errno(errno));
  }
  if (sync && fdatasync(highwater_fd_) != 0) {
    return Internal(path_ + ".highwater: cannot sync: " + Errno(errno));
  }
  return Status::Ok();
}

Status Store::CheckSpace() {
  const std::string dir = StateDir(path_);
  const std::string reserve = path_ + ".reserve";
  struct statvfs fs {};
  if (statvfs(dir.c_str(), &fs) != 0) return full_ ? NoSpaceError() : Status::Ok();
  const int64_t free_bytes = static_cast<int64_t>(fs.f_bavail) * fs.f_frsize;
  if (!full_ && free_bytes < kLowSpaceBytes) full_ = true;
  if (full_) {
    if (free_bytes < kReserveBytes + 2 * kLowSpaceBytes) {
      // Room for the writes that must go on.
      (void)unlink(reserve.c_str());
      return NoSpaceError();
    }
    full_ = false;
  }
  if (access(reserve.c_str(), F_OK) != 0 && free_bytes >= kReserveBytes + 2 * kLowSpaceBytes) {
    int fd = open(reserve.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
      const bool made = Allocate(fd, kReserveBytes);
      close(fd);
      if (!made) (void)unlink(reserve.c_str());
    }
  }
  return Status::Ok();
}

Result<sqlite3_stmt*> Store::Prepare(const char* sql) {
  if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(std::string("preparing \"") + sql + "\"", rc);
  statements_.emplace(sql, stmt);
  return stmt;
}

Status Store::Configure() {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  HERD_RETURN_IF_ERROR(Exec(kPragmaForeignKeys));
  // journal_mode answers with the mode in force, which stays "delete" if WAL is impossible.
  auto stmt = Prepare(kPragmaJournalModeWal);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = sqlite3_step(*stmt);
  if (rc != SQLITE_ROW) return Error("switching to WAL journal mode", rc);
  std::string mode = ColumnText(*stmt, 0);
  if (mode != "wal") {
    return Internal(path_ + ": cannot switch to WAL journal mode (mode is " + mode + ")");
  }
  return Exec(kPragmaSynchronousFull);
}

Status Store::Migrate() {
  const int target = CodeSchemaVersion();
  for (;;) {
    // Reading the version inside the write transaction keeps two controllers opening one fresh
    // database from both running a migration.
    HERD_RETURN_IF_ERROR(Begin());
    auto version = SchemaVersion();
    Status s = version.status();
    if (s.ok() && *version > target) {
      s = Invalid(path_ + ": database schema version " + std::to_string(*version) +
                  " is newer than this herd-ctld (" + std::to_string(target) +
                  "): upgrade herd-ctld");
    }
    if (s.ok() && *version < 0) {
      s = Invalid(path_ + ": database schema version " + std::to_string(*version) +
                  " is not one herd-ctld ever wrote");
    }
    if (s.ok() && *version == target) return Commit();
    if (s.ok()) s = Exec(kMigrations[*version]);
    if (s.ok()) s = Commit();
    if (!s.ok()) {
      (void)Rollback();
      return s;
    }
  }
}

Status Store::Begin() {
  if (!sqlite3_get_autocommit(db_)) return Internal(path_ + ": a transaction is already open");
  auto stmt = Prepare(kBegin);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = sqlite3_step(*stmt);
  changes_at_begin_ = sqlite3_total_changes64(db_);
  return rc == SQLITE_DONE ? Status::Ok() : Error("beginning a transaction", rc);
}

Status Store::Commit() {
  // A transaction that changed something is counted (for the comparison with PATH.highwater);
  // one that changed nothing writes nothing.
  const bool changed = sqlite3_total_changes64(db_) != changes_at_begin_;
  int64_t commits = commits_, max_job_id = max_job_id_;
  if (changed && highwater_fd_ >= 0) {
    {
      auto stmt = Prepare(kCountCommit);
      if (!stmt.ok()) return stmt.status();
      StatementUse use(*stmt);
      int rc = sqlite3_step(*stmt);
      if (rc != SQLITE_ROW) return Error("counting the commit", rc);
      commits = sqlite3_column_int64(*stmt, 0);
    }
    auto stmt = Prepare(kSelectMaxJobId);
    if (!stmt.ok()) return stmt.status();
    StatementUse use(*stmt);
    int rc = sqlite3_step(*stmt);
    if (rc != SQLITE_ROW) return Error("reading the highest job id", rc);
    max_job_id = sqlite3_column_int64(*stmt, 0);
  }
  auto stmt = Prepare(kCommit);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = sqlite3_step(*stmt);
  if (rc != SQLITE_DONE) return Error("committing", rc);
  if (!changed || highwater_fd_ < 0) return Status::Ok();
  const bool new_ids = max_job_id > max_job_id_;
  commits_ = std::max(commits_, commits);
  max_job_id_ = std::max(max_job_id_, max_job_id);
  // An id handed out is recorded durably before it is acknowledged, so it is never reused.
  return WriteHighWater(/*sync=*/new_ids);
}

Status Store::Rollback() {
  if (sqlite3_get_autocommit(db_)) return Status::Ok();
  auto stmt = Prepare(kRollback);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = sqlite3_step(*stmt);
  return rc == SQLITE_DONE ? Status::Ok() : Error("rolling back", rc);
}

Status Store::WriteJob(const char* sql, const model::Job& job, bool with_id) {
  if (!IsUtf8(job.user)) return Invalid(path_ + ": job user is not valid UTF-8");
  if (!IsUtf8(job.reason)) return Invalid(path_ + ": job reason is not valid UTF-8");
  std::optional<std::string> spec = SpecText(job.spec);
  if (!spec) return Invalid(path_ + ": job spec is not valid UTF-8");
  std::optional<std::string> placement = std::string("[]");
  if (!job.placement.empty()) placement = Dump(PlacementToJson(job.placement));
  if (!placement) return Invalid(path_ + ": job placement is not valid UTF-8");

  auto stmt = Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  Binder bind(*stmt);
  bind.Text(1, job.spec.name)
      .Text(2, job.user)
      .Int(3, job.uid)
      .Int(4, job.gid)
      .Text(5, job.spec.project)
      .Text(6, job.spec.job_class)
      .Text(7, model::JobStateName(job.state))
      .Text(8, job.reason)
      .Int(9, job.submit_time)
      .Int(10, job.start_time)
      .Int(11, job.end_time)
      .Int(12, job.exit_code)
      .Int(13, job.restart_count)
      .Int(14, job.spec.gpu_milli * job.spec.workers)
      .Text(15, *spec)
      .Text(16, *placement)
      .Text(18, AccountingText(job))
      .Text(19, model::WaitsForName(job.waits_for));
  if (with_id) bind.Int(17, job.id);
  if (bind.rc() != SQLITE_OK) return Error("binding job values", bind.rc());
  int rc = sqlite3_step(*stmt);
  if (rc != SQLITE_DONE) return Error("writing job " + std::to_string(job.id), rc);
  return Status::Ok();
}

Result<model::JobId> Store::InsertJob(const model::Job& job) {
  HERD_RETURN_IF_ERROR(WriteJob(kInsertJob, job, /*with_id=*/false));
  return static_cast<model::JobId>(sqlite3_last_insert_rowid(db_));
}

Status Store::UpdateJob(const model::Job& job) {
  HERD_RETURN_IF_ERROR(WriteJob(kUpdateJob, job, /*with_id=*/true));
  if (sqlite3_changes(db_) == 0) {
    return NotFound(path_ + ": job " + std::to_string(job.id) + " does not exist");
  }
  return Status::Ok();
}

Result<model::Job> Store::ReadJob(sqlite3_stmt* stmt) {
  model::Job job;
  job.id = sqlite3_column_int64(stmt, 0);
  const std::string what = "job " + std::to_string(job.id);
  job.user = ColumnText(stmt, 1);
  job.uid = static_cast<uint32_t>(sqlite3_column_int64(stmt, 2));
  job.gid = static_cast<uint32_t>(sqlite3_column_int64(stmt, 3));
  std::string state = ColumnText(stmt, 4);
  auto parsed = model::ParseJobState(state);
  if (!parsed) return Internal(path_ + ": " + what + " has unknown state '" + state + "'");
  job.state = *parsed;
  job.reason = ColumnText(stmt, 5);
  // A name this herd does not know (written by a newer one) is left for the next cycle to set.
  job.waits_for = model::ParseWaitsFor(ColumnText(stmt, 14)).value_or(model::WaitsFor::kScheduler);
  job.submit_time = sqlite3_column_int64(stmt, 6);
  job.start_time = sqlite3_column_int64(stmt, 7);
  job.end_time = sqlite3_column_int64(stmt, 8);
  job.exit_code = sqlite3_column_int(stmt, 9);
  job.restart_count = sqlite3_column_int(stmt, 10);
  try {
    job.spec = SpecFromJson(json::parse(ColumnText(stmt, 11)));
    job.placement = PlacementFromJson(json::parse(ColumnText(stmt, 12)));
    AccountingFromJson(json::parse(ColumnText(stmt, 13)), job);
  } catch (const json::exception& e) {
    return Internal(path_ + ": " + what + " has a malformed record: " + e.what());
  }
  return job;
}

Result<std::vector<model::Job>> Store::LoadJobs(bool include_finished) {
  auto stmt = Prepare(include_finished ? kSelectAllJobs : kSelectJobsInStates);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  if (!include_finished) {
    int rc = Binder(*stmt).Text(1, UnfinishedStatesJson()).rc();
    if (rc != SQLITE_OK) return Error("binding job states", rc);
  }
  std::vector<model::Job> jobs;
  int rc;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
    auto job = ReadJob(*stmt);
    if (!job.ok()) return job.status();
    jobs.push_back(std::move(job).value());
  }
  if (rc != SQLITE_DONE) return Error("loading jobs", rc);
  return jobs;
}

Result<std::vector<model::Job>> Store::ReadJobs(
    sqlite3_stmt* stmt, const char* doing, const std::function<bool(const model::Job&)>& stop) {
  std::vector<model::Job> jobs;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    auto job = ReadJob(stmt);
    if (!job.ok()) return job.status();
    if (stop && stop(*job)) return jobs;
    jobs.push_back(std::move(job).value());
  }
  if (rc != SQLITE_DONE) return Error(doing, rc);
  return jobs;
}

Result<std::vector<model::Job>> Store::LoadJobsInFlight(int64_t ended_since) {
  auto stmt = Prepare(kSelectJobsInFlight);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Text(1, UnfinishedStatesJson()).Int(2, ended_since).rc();
  if (rc != SQLITE_OK) return Error("binding job states", rc);
  return ReadJobs(*stmt, "loading jobs");
}

Result<std::vector<model::Job>> Store::FinishedJobsAfter(model::JobId after,
                                                         const std::string& user, int64_t limit) {
  auto stmt = Prepare(kSelectFinishedJobsAfter);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc =
      Binder(*stmt).Text(1, UnfinishedStatesJson()).Int(2, after).Text(3, user).Int(4, limit).rc();
  if (rc != SQLITE_OK) return Error("binding a job listing", rc);
  return ReadJobs(*stmt, "listing finished jobs");
}

Result<std::vector<model::Job>> Store::LoadArray(model::JobId array) {
  auto stmt = Prepare(kSelectJobsFrom);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Int(1, array).rc();
  if (rc != SQLITE_OK) return Error("binding an array id", rc);
  auto jobs = ReadJobs(*stmt, "loading an array",
                       [array](const model::Job& j) { return j.spec.array_id != array; });
  if (jobs.ok() && !jobs->empty() && jobs->front().id != array) jobs->clear();
  return jobs;
}

Result<std::vector<model::Job>> Store::FinishedJobsRunIn(int64_t since, int64_t until) {
  auto stmt = Prepare(kSelectFinishedJobsRunIn);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Text(1, UnfinishedStatesJson()).Int(2, since).Int(3, until).rc();
  if (rc != SQLITE_OK) return Error("binding a usage period", rc);
  return ReadJobs(*stmt, "reading finished jobs for usage");
}

std::vector<DailyUsage> DailyUsageOf(const model::Job& job, const std::string& gpu_type) {
  std::vector<DailyUsage> rows;
  if (job.start_time <= 0) return rows;  // never ran
  constexpr int64_t kDay = 86400;
  const int64_t end = std::max(job.end_time, job.start_time);
  const int64_t gpu_milli = job.spec.gpu_milli * job.spec.workers;
  const int64_t cores = job.spec.cpus * job.spec.workers;
  const double util = job.gpu_sampled_ms > 0 ? static_cast<double>(job.gpu_util_sum) /
                                                   static_cast<double>(job.gpu_sampled_ms)
                                             : -1;
  const int64_t first = job.start_time / kDay * kDay;
  for (int64_t day = first; day == first || day < end; day += kDay) {
    const int64_t seconds =
        std::max<int64_t>(0, std::min(end, day + kDay) - std::max(job.start_time, day));
    DailyUsage r{day, job.spec.project, job.user, gpu_type};
    r.gpu_milli_seconds = gpu_milli * seconds;
    r.core_seconds = cores * seconds;
    if (day == first) {
      r.jobs = 1;
      r.wait_seconds = std::max<int64_t>(0, job.start_time - job.submit_time);
      r.preemptions = job.preemptions;
    }
    if (util >= 0 && r.gpu_milli_seconds > 0) {
      r.util_weighted = util * static_cast<double>(r.gpu_milli_seconds);
      r.util_weight = r.gpu_milli_seconds;
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

Status Store::AddDailyUsage(const DailyUsage& r) {
  auto stmt = Prepare(kAddDailyUsage);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt)
               .Int(1, r.day)
               .Text(2, r.project)
               .Text(3, r.user)
               .Text(4, r.gpu_type)
               .Int(5, r.gpu_milli_seconds)
               .Int(6, r.core_seconds)
               .Int(7, r.jobs)
               .Int(8, r.wait_seconds)
               .Int(9, r.preemptions)
               .rc();
  if (rc == SQLITE_OK) rc = sqlite3_bind_double(*stmt, 10, r.util_weighted);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(*stmt, 11, r.util_weight);
  if (rc != SQLITE_OK) return Error("binding daily usage", rc);
  rc = sqlite3_step(*stmt);
  return rc == SQLITE_DONE ? Status::Ok() : Error("adding daily usage", rc);
}

Result<int64_t> Store::PruneJobs(int64_t ended_before, int64_t limit, PruneCursor* cursor,
                                 const std::function<bool(const model::Job&)>& keep,
                                 const std::function<std::string(const model::Job&)>& gpu_type_of) {
  Result<std::vector<model::Job>> old = [&]() -> Result<std::vector<model::Job>> {
    auto stmt = Prepare(kSelectPrunable);
    if (!stmt.ok()) return stmt.status();
    StatementUse use(*stmt);
    int rc = Binder(*stmt)
                 .Text(1, UnfinishedStatesJson())
                 .Int(2, ended_before)
                 .Int(3, cursor->end_time)
                 .Int(4, cursor->id)
                 .Int(5, limit)
                 .rc();
    if (rc != SQLITE_OK) return Error("binding a pruning batch", rc);
    return ReadJobs(*stmt, "reading old jobs to prune");
  }();
  if (!old.ok()) return old.status();
  if (old->empty()) {
    *cursor = {};
    return int64_t{0};
  }
  *cursor = {old->back().end_time, old->back().id};
  int64_t deleted = 0;
  for (const model::Job& job : *old) {
    if (keep && keep(job)) continue;
    for (const DailyUsage& row : DailyUsageOf(job, gpu_type_of ? gpu_type_of(job) : "")) {
      HERD_RETURN_IF_ERROR(AddDailyUsage(row));
    }
    for (const char* sql : {kDeleteJobEvents, kDeleteJob}) {
      auto stmt = Prepare(sql);
      if (!stmt.ok()) return stmt.status();
      StatementUse use(*stmt);
      int rc = Binder(*stmt).Int(1, job.id).rc();
      if (rc == SQLITE_OK) rc = sqlite3_step(*stmt);
      if (rc != SQLITE_DONE) return Error("deleting old job " + std::to_string(job.id), rc);
    }
    ++deleted;
  }
  return deleted;
}

Result<std::vector<DailyUsage>> Store::DailyUsageIn(int64_t since, int64_t until) {
  auto stmt = Prepare(kSelectDailyUsage);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Int(1, since).Int(2, until).rc();
  if (rc != SQLITE_OK) return Error("binding a usage period", rc);
  std::vector<DailyUsage> rows;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
    DailyUsage r;
    r.day = sqlite3_column_int64(*stmt, 0);
    r.project = ColumnText(*stmt, 1);
    r.user = ColumnText(*stmt, 2);
    r.gpu_type = ColumnText(*stmt, 3);
    r.gpu_milli_seconds = sqlite3_column_int64(*stmt, 4);
    r.core_seconds = sqlite3_column_int64(*stmt, 5);
    r.jobs = sqlite3_column_int64(*stmt, 6);
    r.wait_seconds = sqlite3_column_int64(*stmt, 7);
    r.preemptions = sqlite3_column_int64(*stmt, 8);
    r.util_weighted = sqlite3_column_double(*stmt, 9);
    r.util_weight = sqlite3_column_int64(*stmt, 10);
    rows.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return Error("reading daily usage", rc);
  return rows;
}

Result<std::optional<model::Job>> Store::GetJob(model::JobId id) {
  auto stmt = Prepare(kSelectJob);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Int(1, id).rc();
  if (rc != SQLITE_OK) return Error("binding job id", rc);
  rc = sqlite3_step(*stmt);
  if (rc == SQLITE_DONE) return std::optional<model::Job>();
  if (rc != SQLITE_ROW) return Error("reading job " + std::to_string(id), rc);
  auto job = ReadJob(*stmt);
  if (!job.ok()) return job.status();
  return std::optional<model::Job>(std::move(job).value());
}

Status Store::SetJobStop(model::JobId id, const std::optional<JobStop>& stop) {
  std::string text;
  if (stop) {
    std::optional<std::string> dumped = Dump({{"state", model::JobStateName(stop->final_state)},
                                              {"reason", stop->reason},
                                              {"for_job", stop->for_job},
                                              {"requeue_asked", stop->requeue_asked}});
    if (!dumped) return Invalid(path_ + ": stop reason of job " + std::to_string(id) +
                                " is not valid UTF-8");
    text = std::move(*dumped);
  }
  auto stmt = Prepare(kUpdateJobStop);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Int(1, id).Text(2, text).rc();
  if (rc != SQLITE_OK) return Error("binding job stop values", rc);
  rc = sqlite3_step(*stmt);
  if (rc != SQLITE_DONE) return Error("writing the stop of job " + std::to_string(id), rc);
  if (sqlite3_changes(db_) == 0) {
    return NotFound(path_ + ": job " + std::to_string(id) + " does not exist");
  }
  return Status::Ok();
}

Result<std::map<model::JobId, JobStop>> Store::LoadJobStops() {
  auto stmt = Prepare(kSelectJobStops);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  std::map<model::JobId, JobStop> stops;
  int rc;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
    const model::JobId id = sqlite3_column_int64(*stmt, 0);
    const std::string what = "job " + std::to_string(id);
    JobStop stop;
    std::string state;
    try {
      const json j = json::parse(ColumnText(*stmt, 1));
      Get(j, "state", state);
      Get(j, "reason", stop.reason);
      Get(j, "for_job", stop.for_job);
      Get(j, "requeue_asked", stop.requeue_asked);
    } catch (const json::exception& e) {
      return Internal(path_ + ": " + what + " has a malformed stop: " + e.what());
    }
    auto parsed = model::ParseJobState(state);
    if (!parsed) return Internal(path_ + ": " + what + " has a stop to unknown state '" + state + "'");
    stop.final_state = *parsed;
    stops.emplace(id, std::move(stop));
  }
  if (rc != SQLITE_DONE) return Error("loading job stops", rc);
  return stops;
}

Status Store::UpsertNode(const std::string& name, const model::NodeTopology& topo,
                         model::NodeState state, int64_t last_seen,
                         const std::string& drain_reason) {
  if (!IsUtf8(name)) return Invalid(path_ + ": node name is not valid UTF-8");
  if (!IsUtf8(drain_reason)) return Invalid(path_ + ": drain reason is not valid UTF-8");
  std::optional<std::string> topology = Dump(TopologyToJson(topo));
  if (!topology) return Invalid(path_ + ": topology of node " + name + " is not valid UTF-8");
  auto stmt = Prepare(kUpsertNode);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt)
               .Text(1, name)
               .Text(2, *topology)
               .Text(3, model::NodeStateName(state))
               .Int(4, last_seen)
               .Text(5, drain_reason)
               .rc();
  if (rc != SQLITE_OK) return Error("binding node values", rc);
  rc = sqlite3_step(*stmt);
  return rc == SQLITE_DONE ? Status::Ok() : Error("writing node " + name, rc);
}

Result<std::vector<NodeRecord>> Store::LoadNodes() {
  auto stmt = Prepare(kSelectNodes);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  std::vector<NodeRecord> nodes;
  int rc;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
    NodeRecord& node = nodes.emplace_back();
    node.name = ColumnText(*stmt, 0);
    std::string state = ColumnText(*stmt, 2);
    auto parsed = ParseNodeState(state);
    if (!parsed) {
      return Internal(path_ + ": node " + node.name + " has unknown state '" + state + "'");
    }
    node.state = *parsed;
    node.last_seen = sqlite3_column_int64(*stmt, 3);
    node.drain_reason = ColumnText(*stmt, 4);
    try {
      node.topology = TopologyFromJson(json::parse(ColumnText(*stmt, 1)));
    } catch (const json::exception& e) {
      return Internal(path_ + ": node " + node.name + " has a malformed topology: " + e.what());
    }
  }
  if (rc != SQLITE_DONE) return Error("loading nodes", rc);
  return nodes;
}

Status Store::AppendJobEvent(model::JobId id, int64_t time, const std::string& what) {
  if (!IsUtf8(what)) return Invalid(path_ + ": job event text is not valid UTF-8");
  auto stmt = Prepare(kInsertJobEvent);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Int(1, id).Int(2, time).Text(3, what).rc();
  if (rc != SQLITE_OK) return Error("binding job event values", rc);
  rc = sqlite3_step(*stmt);
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
    return NotFound(path_ + ": job " + std::to_string(id) + " does not exist");
  }
  if (rc != SQLITE_DONE) return Error("recording an event of job " + std::to_string(id), rc);
  return Status::Ok();
}

Result<std::vector<std::pair<int64_t, std::string>>> Store::JobEvents(model::JobId id) {
  auto stmt = Prepare(kSelectJobEvents);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Int(1, id).rc();
  if (rc != SQLITE_OK) return Error("binding job id", rc);
  std::vector<std::pair<int64_t, std::string>> events;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
    events.emplace_back(sqlite3_column_int64(*stmt, 0), ColumnText(*stmt, 1));
  }
  if (rc != SQLITE_DONE) return Error("loading events of job " + std::to_string(id), rc);
  return events;
}

Status Store::SaveQueueUsage(const std::map<std::string, double>& usage, int64_t as_of) {
  HERD_RETURN_IF_ERROR(Exec(kDeleteQueueUsage));
  auto stmt = Prepare(kInsertQueueUsage);
  if (!stmt.ok()) return stmt.status();
  for (const auto& [queue, u] : usage) {
    if (!IsUtf8(queue)) return Invalid(path_ + ": queue name is not valid UTF-8");
    if (!std::isfinite(u) || u < 0) {
      return Invalid(path_ + ": usage of queue " + queue + " is not a finite number >= 0");
    }
    StatementUse use(*stmt);
    int rc = Binder(*stmt).Text(1, queue).Real(2, u).Int(3, as_of).rc();
    if (rc != SQLITE_OK) return Error("binding the usage of queue " + queue, rc);
    rc = sqlite3_step(*stmt);
    if (rc != SQLITE_DONE) return Error("recording the usage of queue " + queue, rc);
  }
  return Status::Ok();
}

Result<std::map<std::string, QueueUsage>> Store::LoadQueueUsage() {
  auto stmt = Prepare(kSelectQueueUsage);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  std::map<std::string, QueueUsage> out;
  int rc;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
    const double u = sqlite3_column_double(*stmt, 1);
    // A value nobody wrote (edited by hand) counts as no usage rather than stopping herd-ctld.
    out[ColumnText(*stmt, 0)] = {std::isfinite(u) && u > 0 ? u : 0,
                                 sqlite3_column_int64(*stmt, 2)};
  }
  if (rc != SQLITE_DONE) return Error("loading queue usage", rc);
  return out;
}

Result<std::map<std::pair<int, std::string>, int64_t>> Store::LoadHistoryNames() {
  auto stmt = Prepare(kSelectHistoryNames);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  std::map<std::pair<int, std::string>, int64_t> names;
  int rc;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
    names[{sqlite3_column_int(*stmt, 0), ColumnText(*stmt, 1)}] = sqlite3_column_int64(*stmt, 2);
  }
  if (rc != SQLITE_DONE) return Error("loading history names", rc);
  return names;
}

Result<int64_t> Store::AddHistoryName(int kind, const std::string& name) {
  if (!IsUtf8(name)) return Invalid(path_ + ": history name is not valid UTF-8");
  auto stmt = Prepare(kInsertHistoryName);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Int(1, kind).Text(2, name).rc();
  if (rc != SQLITE_OK) return Error("binding a history name", rc);
  rc = sqlite3_step(*stmt);
  if (rc != SQLITE_ROW) return Error("recording history name " + name, rc);
  return sqlite3_column_int64(*stmt, 0);
}

Status Store::AppendHistory(int tier, int64_t time, std::span<const HistoryRow> rows) {
  {
    auto stmt = Prepare(kInsertHistoryTime);
    if (!stmt.ok()) return stmt.status();
    StatementUse use(*stmt);
    int rc = Binder(*stmt).Int(1, tier).Int(2, time).rc();
    if (rc == SQLITE_OK) rc = sqlite3_step(*stmt);
    if (rc != SQLITE_DONE) return Error("recording a history time", rc);
  }
  auto stmt = Prepare(kInsertHistory);
  if (!stmt.ok()) return stmt.status();
  for (const HistoryRow& r : rows) {
    StatementUse use(*stmt);
    Binder bind(*stmt);
    bind.Int(1, tier).Int(2, time).Int(3, r.kind).Int(4, r.key).Int(5, r.samples);
    for (int i = 0; i < kHistoryValues; ++i) bind.Int(6 + i, r.values[i]);
    int rc = bind.rc();
    if (rc == SQLITE_OK) rc = sqlite3_step(*stmt);
    if (rc != SQLITE_DONE) return Error("recording history", rc);
  }
  return Status::Ok();
}

Status Store::PruneHistory(int tier, int64_t before) {
  for (const char* sql : {kPruneHistory, kPruneHistoryTimes}) {
    auto stmt = Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    StatementUse use(*stmt);
    int rc = Binder(*stmt).Int(1, tier).Int(2, before).rc();
    if (rc == SQLITE_OK) rc = sqlite3_step(*stmt);
    if (rc != SQLITE_DONE) return Error("pruning history", rc);
  }
  return Status::Ok();
}

namespace {

// A row of kSelectHistorySince or kSelectHistorySeries.
HistoryRecord ReadHistoryRecord(sqlite3_stmt* stmt) {
  HistoryRecord r;
  r.time = sqlite3_column_int64(stmt, 0);
  r.row.kind = sqlite3_column_int(stmt, 1);
  r.row.key = sqlite3_column_int64(stmt, 2);
  r.row.samples = sqlite3_column_int64(stmt, 3);
  for (int i = 0; i < kHistoryValues; ++i) r.row.values[i] = sqlite3_column_int64(stmt, 4 + i);
  return r;
}

}  // namespace

Result<std::vector<HistoryRecord>> Store::LoadHistorySince(int tier, int64_t from) {
  auto stmt = Prepare(kSelectHistorySince);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Int(1, tier).Int(2, from).rc();
  if (rc != SQLITE_OK) return Error("binding history values", rc);
  std::vector<HistoryRecord> records;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) records.push_back(ReadHistoryRecord(*stmt));
  if (rc != SQLITE_DONE) return Error("loading history", rc);
  return records;
}

Result<int64_t> Store::LastHistoryTime(int tier) {
  auto stmt = Prepare(kSelectLastHistoryTime);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Int(1, tier).rc();
  if (rc == SQLITE_OK) rc = sqlite3_step(*stmt);
  if (rc != SQLITE_ROW) return Error("reading the latest history time", rc);
  return sqlite3_column_int64(*stmt, 0);
}

Result<std::vector<HistoryRecord>> Store::ReadHistory(int tier, int kind, int64_t key,
                                                      int64_t from, int64_t to) {
  auto stmt = Prepare(kSelectHistorySeries);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Int(1, tier).Int(2, kind).Int(3, key).Int(4, from).Int(5, to).rc();
  if (rc != SQLITE_OK) return Error("binding history values", rc);
  std::vector<HistoryRecord> records;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) records.push_back(ReadHistoryRecord(*stmt));
  if (rc != SQLITE_DONE) return Error("reading history", rc);
  return records;
}

Result<int> Store::SchemaVersion() {
  auto stmt = Prepare(kPragmaUserVersion);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = sqlite3_step(*stmt);
  if (rc != SQLITE_ROW) return Error("reading the schema version", rc);
  return sqlite3_column_int(*stmt, 0);
}

}  // namespace herd::store
