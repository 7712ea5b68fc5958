// The store's accounting beyond job records: daily usage totals and the pruning that makes them,
// each queue's decayed usage for fair share, and herd-ctld's history series.
#include <algorithm>
#include <string>
#include <vector>

#include "ctld/store/internal.h"

namespace herd::store {

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

}  // namespace herd::store
