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

#include "ctld/store/internal.h"

namespace herd::store {
namespace {

// ---------------------------------------------------------------------------------------------
// The schema and the statements of transactions; the others are in ctld/store/internal.h.

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


Result<int> Store::SchemaVersion() {
  auto stmt = Prepare(kPragmaUserVersion);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = sqlite3_step(*stmt);
  if (rc != SQLITE_ROW) return Error("reading the schema version", rc);
  return sqlite3_column_int(*stmt, 0);
}

}  // namespace herd::store
