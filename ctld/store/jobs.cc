// The store's jobs (their specs, placements and accounting as JSON columns), the stops under way,
// job events and nodes.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ctld/store/internal.h"

namespace herd::store {
namespace {

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
              .Int("reclaims", j.reclaims)
              .Int("gpu_util_sum", j.gpu_util_sum)
              .Int("gpu_sampled_ms", j.gpu_sampled_ms)
              .Int("cpu_ms", j.usage.cpu_ms)
              .Int("memory_peak_bytes", j.usage.memory_peak_bytes)
              .Done();  // numbers only: always valid
}

void AccountingFromJson(const json& j, model::Job& job) {
  Get(j, "preemptions", job.preemptions);
  Get(j, "reclaims", job.reclaims);
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

}  // namespace

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

Result<JobEnvironment> Store::GetJobEnvironment(model::JobId id) {
  auto stmt = Prepare(kSelectJobEnvironment);
  if (!stmt.ok()) return stmt.status();
  StatementUse use(*stmt);
  int rc = Binder(*stmt).Int(1, id).rc();
  if (rc != SQLITE_OK) return Error("binding job id", rc);
  rc = sqlite3_step(*stmt);
  const std::string what = "job " + std::to_string(id);
  if (rc == SQLITE_DONE) return NotFound(path_ + ": " + what + " does not exist");
  if (rc != SQLITE_ROW) return Error("reading the environment of " + what, rc);
  JobEnvironment out;
  try {
    json::parse(ColumnText(*stmt, 0)).get_to(out.env);
  } catch (const json::exception& e) {
    return Internal(path_ + ": " + what + " has a malformed environment: " + e.what());
  }
  out.script = ColumnText(*stmt, 1);
  return out;
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

}  // namespace herd::store
