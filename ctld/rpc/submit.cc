// Submitting jobs: a request's spec checked against the configuration and the limits, then
// every job of it (one, an array or a sweep) written before any is acknowledged.
#include <algorithm>

#include "common/model/output_path.h"
#include "common/model/sweep.h"
#include "common/model/units.h"
#include "common/util/path.h"
#include "ctld/controller.h"
#include "ctld/limits.h"

namespace herd::ctld {

using model::Job;
using model::JobState;

namespace rpc {
namespace {
struct SubmitFamily;
}  // namespace

template <>
struct Handlers<SubmitFamily> {
  // herd submit (and herd run's submit).
  static Status OnSubmit(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
};
}  // namespace rpc

using SubmitRequests = rpc::Handlers<rpc::SubmitFamily>;

std::span<const rpc::Route> rpc::SubmitRoutes() {
  using proto::MessageName;
  static const Route kRoutes[] = {
      {MessageName<proto::SubmitRequest>(), Caller::kUser, &SubmitRequests::OnSubmit},
  };
  return kRoutes;
}

// A volume is a host path under a prefix the admin allows ([containers] allowed_volumes),
// mounted into a container; a plain process sees the host anyway.
Status Controller::CheckVolumes(const model::JobSpec& spec) const {
  if (!spec.volumes.empty() && spec.image.empty()) {
    return Invalid("--volume needs --image: a job without a container already sees the host");
  }
  for (const auto& v : spec.volumes) {
    const std::string host = v.substr(0, v.find(':'));
    const std::string inside = v.find(':') == std::string::npos ? host : v.substr(v.find(':') + 1);
    if (host.empty() || host[0] != '/' || inside.empty() || inside[0] != '/' ||
        host.find("/../") != std::string::npos || host.ends_with("/..")) {
      return Invalid("volume '" + v + "': use an absolute HOST[:CONTAINER] path without '..'");
    }
    // herd-shim checks again on the node what the path resolves to, as the job's user.
    if (!PathIsUnderAny(host, config_.volume_prefixes)) {
      std::string list;
      for (const auto& p : config_.volume_prefixes) list += (list.empty() ? "" : ", ") + p;
      return Denied("volume '" + host + "' is not under a path the admin allows (" +
                    (list.empty() ? "none are allowed: [containers] allowed_volumes in herd.toml"
                                  : list) +
                    ")");
    }
  }
  return Status::Ok();
}

namespace {

// Output files are opened on the node as the job's user; here only their form is checked.
Status CheckOutputFiles(const model::JobSpec& spec) {
  for (auto [pattern, option] : {std::pair{&spec.output, "--output"}, {&spec.error, "--error"}}) {
    if (pattern->empty()) continue;
    HERD_RETURN_IF_ERROR(model::CheckOutputPattern(*pattern, option));
    if ((*pattern)[0] != '/') {
      return Invalid(std::string(option) + ": '" + *pattern +
                     "' must be an absolute path (herd submit makes a relative one absolute)");
    }
    if (!spec.session.empty()) {
      return Invalid(std::string(option) + " is for batch jobs: an interactive session's output "
                     "goes to herd attach (and herd logs)");
    }
  }
  return Status::Ok();
}

// A session's terminal and relay are set up for a plain process only: refused at submit rather
// than failing on the node once the job was scheduled.
Status CheckSessionRuntime(const model::JobSpec& spec) {
  if (spec.session.empty() || spec.image.empty()) return Status::Ok();
  return Invalid("interactive sessions (herd run, --pty) cannot run in a container (--image) "
                 "yet: run without --image, or submit the job without --pty and use "
                 "herd exec JOB -- bash, which enters its container");
}

}  // namespace

Status Controller::CheckProject(model::JobSpec* spec, const auth::Identity& who) const {
  if (spec->project.empty()) spec->project = config_.default_project;
  const config::QueueConfig* q = config_.FindQueue(spec->project);
  if (q == nullptr || !q->is_project) {
    std::string known;
    for (const auto& qc : config_.queues) {
      if (qc.is_project) known += (known.empty() ? "" : ", ") + qc.name;
    }
    return Invalid("unknown project '" + spec->project + "': known projects are " + known);
  }
  if (!IsAdmin(who) && !config_.IsMember(spec->project, who.user)) {
    return Denied("permission denied: user " + who.user + " is not a member of project " +
                  spec->project + " (ask an admin to add you to its members in herd.toml)");
  }
  return Status::Ok();
}

Status Controller::CheckTimeLimit(model::JobSpec* spec) const {
  const config::ClassConfig* cls = config_.FindClass(spec->job_class);
  if (spec->time_limit_s < 0) return Invalid("the time limit must not be negative");
  if (cls == nullptr || cls->max_time_s <= 0) return Status::Ok();
  if (spec->time_limit_s == 0) spec->time_limit_s = cls->max_time_s;
  if (spec->time_limit_s > cls->max_time_s) {
    return Invalid("class " + cls->name + " allows at most " +
                   model::FormatDuration(cls->max_time_s) + "; ask for less with --time");
  }
  return Status::Ok();
}

Result<std::string> Controller::ValidateSubmit(model::JobSpec* spec,
                                               const auth::Identity& who) const {
  if (spec->argv.empty() || spec->argv[0].empty()) {
    return Invalid("no command given: herd submit [options] -- COMMAND [ARGS...]");
  }
  if (who.uid == 0 && !config_.controller.allow_root_jobs) {
    return Denied("jobs run as their submitter and this cluster runs none as root: submit as a "
                  "normal user (or set allow_root_jobs = true under [controller] in herd.toml)");
  }
  HERD_RETURN_IF_ERROR(CheckProject(spec, who));
  if (spec->job_class.empty()) spec->job_class = "train";
  const config::ClassConfig* cls = config_.FindClass(spec->job_class);
  if (cls == nullptr) {
    std::string known;
    for (const auto& [name, c] : config_.classes) known += (known.empty() ? "" : ", ") + name;
    return Invalid("unknown class '" + spec->job_class + "': use one of " + known);
  }
  if (spec->workers < 1 || spec->workers > 4096) {
    return Invalid("workers must be between 1 and 4096, not " + std::to_string(spec->workers));
  }
  if (spec->gpu_milli < 0 || (spec->gpu_milli > 1000 && spec->gpu_milli % 1000 != 0)) {
    return Invalid("a worker gets whole GPUs or a share of one, not " +
                   model::FormatGpuMilli(spec->gpu_milli));
  }
  if (spec->cpus < 1) return Invalid("a worker needs at least 1 core");
  if (spec->memory_mib < 0 || spec->gpu_memory_mib < 0)
    return Invalid("memory must not be negative");
  if (spec->gpu_memory_limit_mib != 0 && spec->gpu_memory_limit_mib < spec->gpu_memory_mib) {
    return Invalid("--gpu-memory: the limit (" + model::FormatSizeMiB(spec->gpu_memory_limit_mib) +
                   ") must be at least the request (" +
                   model::FormatSizeMiB(spec->gpu_memory_mib) + ")");
  }
  HERD_RETURN_IF_ERROR(CheckVolumes(*spec));
  HERD_RETURN_IF_ERROR(CheckOutputFiles(*spec));
  HERD_RETURN_IF_ERROR(CheckSessionRuntime(*spec));
  HERD_RETURN_IF_ERROR(ValidateWorkflow(spec));
  HERD_RETURN_IF_ERROR(CheckTimeLimit(spec));
  // Refuse what no node, and what the quotas, could ever let start, so it does not wait forever.
  HERD_RETURN_IF_ERROR(CheckQuotaCanHold(*spec, config_, *cls));
  HERD_RETURN_IF_ERROR(CheckWhereItCanRun(spec));
  return spec->project;
}

Status SubmitRequests::OnSubmit(Controller& ctl, const net::Incoming& in,
                                const auth::Identity& who) {
  if (!ctl.no_space_.ok())
    return ctl.no_space_;  // new work waits for room; reports of running jobs don't
  auto req = proto::BodyOf<proto::SubmitRequest>(in.envelope);
  if (!req.ok()) return req.status();
  auto valid = ctl.ValidateSubmit(&req->spec, who);
  if (!valid.ok()) return valid.status();
  Job job;
  job.spec = std::move(req->spec);
  if (job.spec.name.empty()) job.spec.name = ctl.DefaultName(job.spec.argv);
  job.user = who.user;
  job.uid = who.uid;
  job.gid = who.gid;  // a new Job is PENDING
  // With no node a cycle could only tell the job so (Schedule): say it here and spare a cycle
  // over the whole queue per batch of submits.
  ctl.SetPendingReason(job, {.code = ctl.nodes_.empty() ? model::ReasonCode::kNoNodeRegistered
                                                        : model::ReasonCode::kScheduler});
  job.submit_time = ctl.Now();
  // An array is one job per index, all in this transaction, so their ids are consecutive.
  // A sweep is an array whose member i runs point i of the sweep.
  const bool sweep = !req->sweep.empty();
  if (sweep && !req->array_indexes.empty()) return Invalid("choose one of --array and --sweep");
  if (req->sweep.size() > static_cast<size_t>(model::kMaxArrayJobs)) {
    return Invalid("a sweep has at most " + std::to_string(model::kMaxArrayJobs) + " jobs");
  }
  if (sweep) {
    for (size_t i = 0; i < req->sweep.size(); ++i) req->array_indexes.push_back(i);
  }
  const bool array = !req->array_indexes.empty();
  if (req->array_indexes.size() > static_cast<size_t>(model::kMaxArrayJobs)) {
    return Invalid("an array has at most " + std::to_string(model::kMaxArrayJobs) + " jobs");
  }
  if (job.spec.array_limit < 0) return Invalid("the array's %limit must not be negative");
  if (job.spec.stop_after_success && !array) {
    return Invalid("--stop-after-first-success needs --array or --sweep");
  }
  if (!array) job.spec.array_limit = 0;
  const std::vector<int64_t> indexes = array ? req->array_indexes : std::vector<int64_t>{0};
  // Sizes are checked for every member before any is written: one user's huge names and
  // arguments must not fill the database or the listings of everyone. The base spec first, and
  // each sweep point's command before it is built: a short {name} may stand for a huge value.
  HERD_RETURN_IF_ERROR(CheckSpecLimits(job.spec, ctl.config_.controller));
  size_t sweep_command_bytes = 0;
  for (size_t i = 0; i < req->sweep.size(); ++i) {
    for (const auto& [name, value] : req->sweep[i]) {
      if (!model::IsSweepName(name)) return Invalid("invalid sweep parameter name '" + name + "'");
    }
    auto bytes = model::SweepCommandBytes(job.spec.argv, req->sweep[i]);
    if (!bytes.ok()) return bytes.status();
    if (Status s = CheckCommandBytes(*bytes, ctl.config_.controller); !s.ok()) {
      return Invalid("sweep point " + std::to_string(i) + ": " + s.message());
    }
    sweep_command_bytes += *bytes;
    HERD_RETURN_IF_ERROR(CheckSubmitBytes(i + 1, sweep_command_bytes, ctl.config_.controller));
  }
  // Every member's command is built before any is written, so a bad point submits nothing.
  std::vector<std::vector<std::string>> sweep_argv;
  for (const auto& point : req->sweep) {
    auto argv = model::SubstituteSweep(job.spec.argv, point);
    if (!argv.ok()) return argv.status();
    sweep_argv.push_back(std::move(*argv));
  }
  const model::JobSpec base = job.spec;
  // A sweep member's spec: the base with its point's command, values and environment.
  auto sweep_member = [&](size_t i, model::JobSpec* spec) {
    spec->argv = sweep_argv[i];
    spec->env = base.env;
    spec->sweep = req->sweep[i];
    for (const auto& [name, value] : req->sweep[i]) spec->env[model::SweepEnvName(name)] = value;
    spec->env["HERD_SWEEP_INDEX"] = std::to_string(i);
  };
  size_t submit_bytes = indexes.size() * SpecBytes(base);
  if (sweep) {
    submit_bytes = 0;
    model::JobSpec member = base;
    for (size_t i = 0; i < indexes.size(); ++i) {
      sweep_member(i, &member);
      if (Status s = CheckSpecLimits(member, ctl.config_.controller); !s.ok()) {
        return Invalid("sweep point " + std::to_string(i) + ": " + s.message());
      }
      submit_bytes += SpecBytes(member);
    }
  }
  HERD_RETURN_IF_ERROR(CheckSubmitBytes(indexes.size(), submit_bytes, ctl.config_.controller));
  HERD_RETURN_IF_ERROR(ctl.CheckPendingLimit(who, static_cast<int64_t>(indexes.size())));
  model::JobId first = 0;
  for (size_t i = 0; i < indexes.size(); ++i) {
    job.spec.array_index = indexes[i];
    job.spec.array_id = first;
    if (sweep) sweep_member(i, &job.spec);
    auto id = ctl.store_->InsertJob(job);
    if (!id.ok()) {
      if (i > 0) ctl.store_failed_ = true;  // part of the array is written: roll it all back
      return id.status();  // nothing written: a refused value, not a broken store
    }
    job.id = *id;
    if (i == 0) {
      first = job.id;
      if (array) {
        job.spec.array_id = first;
        ctl.Save(job);
      }
    }
    ctl.jobs_.Add(job, job.submit_time);
  }
  ctl.pending_of_uid_[who.uid] += static_cast<int64_t>(indexes.size());
  ctl.stats_.submitted_jobs += static_cast<int64_t>(indexes.size());
  if (!ctl.nodes_.empty()) ctl.schedule_soon_ = true;
  ctl.ReplyBody(in, proto::SubmitReply{first});
  return Status::Ok();
}

Status Controller::CheckPendingLimit(const auth::Identity& who, int64_t more) {
  const int64_t limit = config_.controller.max_pending_per_user;
  int64_t& pending = pending_of_uid_[who.uid];
  if (pending + more <= limit) return Status::Ok();
  // The count only rises between recounts (starts and cancels leave it high): it is exact
  // enough to admit, and counted afresh before it refuses.
  pending = 0;
  for (const auto& [id, j] : jobs_) pending += j.uid == who.uid && j.state == JobState::kPending;
  if (pending + more <= limit) return Status::Ok();
  return Invalid("user " + who.user + " has " + std::to_string(pending) + " pending jobs and " +
                 std::to_string(more) + " more would be over the limit of " +
                 std::to_string(limit) +
                 " ([controller] max_pending_per_user in herd.toml): wait for some to start, "
                 "or cancel some");
}

std::string Controller::DefaultName(const std::vector<std::string>& argv) const {
  if (argv.empty()) return "";
  // A name the user did not choose never trips the name limit.
  std::string name = argv[0].substr(argv[0].rfind('/') + 1);
  name.resize(std::min<size_t>(name.size(), config_.controller.max_name_bytes));
  return name;
}

}  // namespace herd::ctld
