// The parts of herd::Store's implementation its files share (ctld/store/*.cc): the SQL of its
// statements, and how rows and JSON columns are bound and read. Not for use outside ctld/store/.
#pragma once

#include <sqlite3.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "ctld/store/store.h"

namespace herd::store {

using nlohmann::json;

// Every SQL statement herd runs but the schema's (ctld/store/store.cc). Prepared statements are
// cached by the address of these constants: inline, so each has one address in every file.

inline constexpr char kCountCommit[] = "UPDATE store_marks SET commits = commits + 1 RETURNING commits";
inline constexpr char kSelectCommits[] = "SELECT commits FROM store_marks";
inline constexpr char kSetCommits[] = "UPDATE store_marks SET commits = ?1";
// The highest job id AUTOINCREMENT handed out (sqlite_sequence exists once a job was inserted).
inline constexpr char kSelectMaxJobId[] =
    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0)";
// ?1: the lowest value the next job id must exceed.
inline constexpr char kRaiseJobSequence[] =
    "INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs', ?1 "
    "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs')";
inline constexpr char kRaiseJobSequenceExisting[] =
    "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'jobs'";

inline constexpr char kInsertJob[] =
    "INSERT INTO jobs (name, user, uid, gid, project, class, state, reason, submit_time, "
    "start_time, end_time, exit_code, restart_count, gpu_milli, spec, placement, accounting, "
    "waits_for) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?18, ?19)";
// The spec's env and script stay those of the row (Store::UpdateJob).
inline constexpr char kUpdateJob[] =
    "UPDATE jobs SET name = ?1, user = ?2, uid = ?3, gid = ?4, project = ?5, class = ?6, "
    "state = ?7, reason = ?8, submit_time = ?9, start_time = ?10, end_time = ?11, "
    "exit_code = ?12, restart_count = ?13, gpu_milli = ?14, "
    "spec = json_set(?15, '$.env', json(coalesce(json_extract(spec, '$.env'), '{}')), "
    "'$.script', coalesce(json_extract(spec, '$.script'), '')), placement = ?16, "
    "accounting = ?18, waits_for = ?19 WHERE id = ?17";
inline constexpr char kSelectJobEnvironment[] =
    "SELECT coalesce(json_extract(spec, '$.env'), '{}'), coalesce(json_extract(spec, '$.script'), "
    "'') FROM jobs WHERE id = ?1";
inline constexpr char kSelectAllJobs[] =
    "SELECT id, user, uid, gid, state, reason, submit_time, start_time, end_time, exit_code, "
    "restart_count, spec, placement, accounting, waits_for FROM jobs ORDER BY id";
// ?1: JSON array of state names.
inline constexpr char kSelectJobsInStates[] =
    "SELECT id, user, uid, gid, state, reason, submit_time, start_time, end_time, exit_code, "
    "restart_count, spec, placement, accounting, waits_for FROM jobs "
    "WHERE state IN (SELECT value FROM json_each(?1)) ORDER BY id";
inline constexpr char kSelectJob[] =
    "SELECT id, user, uid, gid, state, reason, submit_time, start_time, end_time, exit_code, "
    "restart_count, spec, placement, accounting, waits_for FROM jobs WHERE id = ?1";
// The columns ReadJob reads, in its order, for the job queries below.
#define HERD_SELECT_JOBS                                                                     \
  "SELECT id, user, uid, gid, state, reason, submit_time, start_time, end_time, exit_code, " \
  "restart_count, spec, placement, accounting, waits_for FROM jobs "
// ?1: JSON array of unfinished state names; ?2: the earliest end of a finished job wanted.
inline constexpr char kSelectJobsInFlight[] = HERD_SELECT_JOBS
    "WHERE end_time >= ?2 OR state IN (SELECT value FROM json_each(?1)) ORDER BY id";
// ?1: JSON array of unfinished state names; ?2: after this id; ?3: user ('' any); ?4: how many.
inline constexpr char kSelectFinishedJobsAfter[] = HERD_SELECT_JOBS
    "WHERE id > ?2 AND state NOT IN (SELECT value FROM json_each(?1)) AND (?3 = '' OR user = ?3) "
    "ORDER BY id LIMIT ?4";
// Jobs from ?1 on, in id order: an array's members follow its first job (the caller stops at the
// first job of another array).
inline constexpr char kSelectJobsFrom[] = HERD_SELECT_JOBS "WHERE id >= ?1 ORDER BY id";
// Finished jobs that ran at some time in [?2, ?3): ended at ?2 or later, started before ?3.
inline constexpr char kSelectFinishedJobsRunIn[] = HERD_SELECT_JOBS
    "WHERE end_time >= ?2 AND start_time > 0 AND start_time < ?3 "
    "AND state NOT IN (SELECT value FROM json_each(?1)) ORDER BY id";
// Finished jobs that ended before ?2, after the one that ended at ?3 with id ?4, oldest first.
inline constexpr char kSelectPrunable[] = HERD_SELECT_JOBS
    "WHERE end_time < ?2 AND (end_time, id) > (?3, ?4) "
    "AND state NOT IN (SELECT value FROM json_each(?1)) ORDER BY end_time, id LIMIT ?5";
#undef HERD_SELECT_JOBS
inline constexpr char kDeleteJobEvents[] = "DELETE FROM job_events WHERE job_id = ?1";
inline constexpr char kDeleteJob[] = "DELETE FROM jobs WHERE id = ?1";
inline constexpr char kAddDailyUsage[] =
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
inline constexpr char kSelectDailyUsage[] =
    "SELECT day, project, user, gpu_type, gpu_milli_seconds, core_seconds, jobs, wait_seconds, "
    "preemptions, util_weighted, util_weight FROM usage_daily "
    "WHERE day > ?1 - 86400 AND day < ?2 ORDER BY day, project, user, gpu_type";
inline constexpr char kUpdateJobStop[] = "UPDATE jobs SET stop = ?2 WHERE id = ?1";
inline constexpr char kSelectJobStops[] = "SELECT id, stop FROM jobs WHERE stop != '' ORDER BY id";
inline constexpr char kUpsertNode[] =
    "INSERT INTO nodes (name, topology, state, last_seen, drain_reason) "
    "VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (name) DO UPDATE SET topology = excluded.topology, state = excluded.state, "
    "last_seen = excluded.last_seen, drain_reason = excluded.drain_reason";
inline constexpr char kSelectNodes[] =
    "SELECT name, topology, state, last_seen, drain_reason FROM nodes ORDER BY name";
inline constexpr char kInsertJobEvent[] =
    "INSERT INTO job_events (job_id, time, what) VALUES (?1, ?2, ?3)";
inline constexpr char kSelectJobEvents[] =
    "SELECT time, what FROM job_events WHERE job_id = ?1 ORDER BY seq";

inline constexpr char kDeleteQueueUsage[] = "DELETE FROM queue_usage";
inline constexpr char kInsertQueueUsage[] =
    "INSERT INTO queue_usage (queue, usage, as_of) VALUES (?1, ?2, ?3)";
inline constexpr char kSelectQueueUsage[] = "SELECT queue, usage, as_of FROM queue_usage";
inline constexpr char kSelectHistoryNames[] = "SELECT kind, name, id FROM history_names";
inline constexpr char kInsertHistoryName[] =
    "INSERT INTO history_names (kind, name) VALUES (?1, ?2) "
    "ON CONFLICT (kind, name) DO UPDATE SET name = excluded.name RETURNING id";
inline constexpr char kInsertHistoryTime[] =
    "INSERT OR IGNORE INTO history_times (tier, time) VALUES (?1, ?2)";
inline constexpr char kInsertHistory[] =
    "INSERT OR REPLACE INTO history (tier, time, kind, key, samples, v0, v1, v2, v3, v4, v5) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
inline constexpr char kPruneHistory[] = "DELETE FROM history WHERE tier = ?1 AND time < ?2";
inline constexpr char kPruneHistoryTimes[] = "DELETE FROM history_times WHERE tier = ?1 AND time < ?2";
inline constexpr char kSelectHistorySince[] =
    "SELECT time, kind, key, samples, v0, v1, v2, v3, v4, v5 FROM history "
    "WHERE tier = ?1 AND time >= ?2 ORDER BY time, kind, key";
inline constexpr char kSelectLastHistoryTime[] =
    "SELECT coalesce(max(time), 0) FROM history_times WHERE tier = ?1";
// CROSS JOIN keeps history_times outside: a range of its times, then one primary-key lookup of
// the series at each.
inline constexpr char kSelectHistorySeries[] =
    "SELECT t.time, h.kind, h.key, h.samples, h.v0, h.v1, h.v2, h.v3, h.v4, h.v5 "
    "FROM history_times AS t CROSS JOIN history AS h "
    "ON h.tier = t.tier AND h.time = t.time AND h.kind = ?2 AND h.key = ?3 "
    "WHERE t.tier = ?1 AND t.time >= ?4 AND t.time < ?5 ORDER BY t.time";

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

inline std::string ColumnText(sqlite3_stmt* stmt, int i) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
  return text ? std::string(text, sqlite3_column_bytes(stmt, i)) : std::string();
}

// nlohmann validates UTF-8 when it serializes, so one dump both encodes and checks the text.
inline std::optional<std::string> Dump(const json& j) {
  try {
    return j.dump();
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

// The rules nlohmann's dump enforces: no overlong form, no surrogate, nothing past U+10FFFF.
inline bool IsUtf8(std::string_view s) {
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

// JSON array of the names of the states a job can still leave (not model::IsTerminal).
inline const std::string& UnfinishedStatesJson() {
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

}  // namespace herd::store
