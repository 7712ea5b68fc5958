#include "ctld/limits.h"

#include <string>

namespace herd::ctld {

namespace {

Status OverLimit(const std::string& what, size_t value, int64_t limit, const char* key) {
  return Invalid(what + " is " + std::to_string(value) + ", over the limit of " +
                 std::to_string(limit) + " ([controller] " + key +
                 " in herd.toml): make it smaller, or ask an admin to raise the limit");
}

size_t TextBytes(const std::vector<std::string>& texts) {
  size_t n = 0;
  for (const auto& t : texts) n += t.size();
  return n;
}

size_t TextBytes(const std::map<std::string, std::string>& texts) {
  size_t n = 0;
  for (const auto& [k, v] : texts) n += k.size() + v.size();
  return n;
}

}  // namespace

size_t SpecBytes(const model::JobSpec& s) {
  const size_t entries =
      s.argv.size() + s.env.size() + s.volumes.size() + s.after.size() + s.sweep.size() +
      s.gpu_types.size() + s.constraints.size() + s.nodelist.size() + s.exclude.size();
  return s.name.size() + TextBytes(s.argv) + TextBytes(s.env) + s.script.size() + s.cwd.size() +
         s.project.size() +
         s.job_class.size() + s.image.size() + TextBytes(s.volumes) + TextBytes(s.after) +
         TextBytes(s.sweep) + TextBytes(s.gpu_types) + s.pool.size() +
         TextBytes(s.constraints) + TextBytes(s.nodelist) + TextBytes(s.exclude) +
         s.output.size() + s.error.size() +
         kSpecEntryBytes * entries;
}

Status CheckCommandBytes(size_t bytes, const config::ControllerConfig& c) {
  if (bytes > static_cast<size_t>(c.max_command_bytes)) {
    return OverLimit("the command with its arguments (bytes)", bytes, c.max_command_bytes,
                     "max_command_bytes");
  }
  return Status::Ok();
}

Status CheckSpecLimits(const model::JobSpec& s, const config::ControllerConfig& c) {
  auto over = [](size_t value, int64_t limit) { return value > static_cast<size_t>(limit); };
  if (over(s.name.size(), c.max_name_bytes)) {
    return OverLimit("the job's name (bytes)", s.name.size(), c.max_name_bytes, "max_name_bytes");
  }
  for (size_t i = 0; i < s.argv.size(); ++i) {
    if (over(s.argv[i].size(), c.max_arg_bytes)) {
      return OverLimit("argument " + std::to_string(i) + " of the command (bytes)",
                       s.argv[i].size(), c.max_arg_bytes, "max_arg_bytes");
    }
  }
  HERD_RETURN_IF_ERROR(CheckCommandBytes(TextBytes(s.argv), c));
  if (over(s.env.size(), c.max_env_entries)) {
    return OverLimit("the number of environment variables", s.env.size(), c.max_env_entries,
                     "max_env_entries");
  }
  if (const size_t n = TextBytes(s.env); over(n, c.max_env_bytes)) {
    return OverLimit("the environment (bytes of names and values)", n, c.max_env_bytes,
                     "max_env_bytes");
  }
  if (over(s.script.size(), c.max_spec_bytes)) {
    return OverLimit("the batch script (bytes)", s.script.size(), c.max_spec_bytes,
                     "max_spec_bytes");
  }
  if (const size_t n = SpecBytes(s); over(n, c.max_spec_bytes)) {
    return OverLimit("the job's spec (bytes of its texts together)", n, c.max_spec_bytes,
                     "max_spec_bytes");
  }
  return Status::Ok();
}

Status CheckSubmitBytes(size_t members, size_t total_bytes, const config::ControllerConfig& c) {
  if (total_bytes > static_cast<size_t>(c.max_submit_bytes)) {
    return OverLimit("the submission (" + std::to_string(members) + " jobs, bytes of their specs)",
                     total_bytes, c.max_submit_bytes, "max_submit_bytes");
  }
  return Status::Ok();
}

namespace {

// The first queue from `project` up whose limit on GPU set `name` (a pool or a type, as `set`
// picks) is below `need` GPU thousandths, with that limit in *limit; nullptr when none is.
const config::QueueConfig* LimitBelow(const config::Config& config,
                                      const config::QueueConfig* project,
                                      model::GpuTypeQuotas config::QueueConfig::*set,
                                      const std::string& name, int64_t need, int64_t* limit) {
  for (const config::QueueConfig* q = project; q != nullptr;
       q = q->parent.empty() ? nullptr : config.FindQueue(q->parent)) {
    auto it = (q->*set).find(name);
    if (it == (q->*set).end() || it->second.limit_milli < 0) continue;
    if (need > it->second.limit_milli) {
      *limit = it->second.limit_milli;
      return q;
    }
  }
  return nullptr;
}

}  // namespace

Status CheckQuotaCanHold(const model::JobSpec& spec, const config::Config& config,
                         const config::ClassConfig& cls) {
  const model::Resources need = spec.PerWorker() * spec.workers;
  using model::AmountText;
  const config::QueueConfig* project = config.FindQueue(spec.project);
  for (const config::QueueConfig* q = project; q != nullptr;
       q = q->parent.empty() ? nullptr : config.FindQueue(q->parent)) {
    if (!q->limit) continue;
    for (int c = 0; c < model::Resources::kComponents; ++c) {
      const int64_t limit = q->limit->Component(c);
      if (limit >= 0 && need.Component(c) > limit) {
        return Invalid("the job needs " + AmountText(c, need.Component(c)) + " but " +
                       (q->is_project ? "project " : "department ") + q->name +
                       " may use at most " + AmountText(c, limit) + ": ask for less");
      }
    }
  }
  // A job held to a pool with quotas (--pool) counts against that pool's limits alone.
  int64_t limit = 0;
  if (!spec.pool.empty()) {
    if (const config::QueueConfig* q = LimitBelow(config, project, &config::QueueConfig::by_pool,
                                                  spec.pool, need.gpu_milli, &limit)) {
      return Invalid("the job needs " + AmountText(0, need.gpu_milli) + " in pool " + spec.pool +
                     " but " + (q->is_project ? "project " : "department ") + q->name +
                     " may use at most " + AmountText(0, limit) +
                     " there: ask for less, or for another pool (--pool)");
    }
  }
  // A job allowed only some GPU types (--gpu-type) whose every type a limit of that type keeps
  // below its need can never start.
  if (need.gpu_milli > 0 && !spec.gpu_types.empty()) {
    std::string refused;  // why the last type is ruled out
    for (const std::string& type : spec.gpu_types) {
      const config::QueueConfig* q = LimitBelow(config, project, &config::QueueConfig::by_type,
                                                type, need.gpu_milli, &limit);
      if (q == nullptr) {
        refused.clear();
        break;
      }
      refused = "the job needs " + AmountText(0, need.gpu_milli) + " of type " + type + " but " +
                (q->is_project ? "project " : "department ") + q->name + " may use at most " +
                AmountText(0, limit) + " of that type: ask for less, or for another type " +
                "(--gpu-type)";
    }
    if (!refused.empty()) return Invalid(refused);
  }
  if (project == nullptr || !cls.within_quota_only) return Status::Ok();
  for (int c = 0; c < model::Resources::kComponents; ++c) {
    const int64_t deserved = project->deserved.Component(c);
    // As the scheduler counts it: cores and memory only where the project is given some.
    if (need.Component(c) <= 0 || (c > 0 && deserved <= 0)) continue;
    if (need.Component(c) > deserved) {
      return Invalid("class " + cls.name + " starts only within the project's guaranteed quota, " +
                     "and project " + project->name + " is guaranteed " + AmountText(c, deserved) +
                     " (the job needs " + AmountText(c, need.Component(c)) +
                     "): ask for less, use a class that may borrow idle GPUs (--class train), "
                     "or another project (-p)");
    }
  }
  return Status::Ok();
}

size_t ListedBytes(const model::Job& job, bool brief) {
  constexpr size_t kFixed = 256;  // numbers, states and field names
  size_t n = kFixed + job.user.size() + job.reason.size() + job.spec.name.size() +
             job.spec.project.size() + job.spec.job_class.size();
  for (const auto& w : job.placement) {
    n += 64 + w.node.size() + w.nic.size() + (brief ? 0 : 9 * (w.gpus.size() + w.cores.size()));
  }
  return brief ? n : n + SpecBytes(job.spec);
}

}  // namespace herd::ctld
