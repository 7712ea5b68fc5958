// What herd-noded does with each message from herd-ctld: registration replies, errors, event
// acknowledgements, launches, signals and log fetches.
#include <algorithm>
#include <string_view>
#include <fstream>
#include <string>
#include <vector>

#include "common/model/output_path.h"
#include "common/model/units.h"
#include "noded/agent.h"
#include "noded/commands.h"
#include "spdlog/spdlog.h"

namespace herd::noded {

struct Commands {
  static void OnRegisterReply(Agent& agent, const proto::Envelope& e);
  static void OnError(Agent& agent, const proto::Envelope& e);
  static void OnEventAck(Agent& agent, const proto::EventAck& ack);
  static void OnLaunch(Agent& agent, const proto::LaunchCommand& cmd);
  static void OnSignal(Agent& agent, const proto::SignalCommand& cmd);
  static void OnLogsFetch(Agent& agent, const proto::LogsFetch& fetch);
  // Decodes the body of `e` as T for `handler`; a malformed body is logged and dropped.
  template <typename T, void (*handler)(Agent&, const T&)>
  static void Decoded(Agent& agent, const proto::Envelope& e) {
    auto body = proto::BodyOf<T>(e);
    if (!body.ok()) {
      spdlog::warn("dropped '{}' from herd-ctld: {}", e.type, body.status().message());
      return;
    }
    handler(agent, *body);
  }
};

// Every message herd-noded takes from herd-ctld and its handler.
const CommandRoute* FindCommandRoute(std::string_view type) {
  using proto::MessageName;
  static const CommandRoute kRoutes[] = {
      {MessageName<proto::RegisterReply>(), &Commands::OnRegisterReply},
      {MessageName<proto::LaunchCommand>(),
       &Commands::Decoded<proto::LaunchCommand, &Commands::OnLaunch>},
      {MessageName<proto::SignalCommand>(),
       &Commands::Decoded<proto::SignalCommand, &Commands::OnSignal>},
      {MessageName<proto::LogsFetch>(),
       &Commands::Decoded<proto::LogsFetch, &Commands::OnLogsFetch>},
      {MessageName<proto::EventAck>(), &Commands::Decoded<proto::EventAck, &Commands::OnEventAck>},
      {MessageName<proto::ErrorReply>(), &Commands::OnError},
  };
  for (const CommandRoute& r : kRoutes) {
    if (type == r.type) return &r;
  }
  return nullptr;
}

namespace {

std::string JoinInts(const std::vector<int>& v) {
  std::string out;
  for (int x : v) out += (out.empty() ? "" : ",") + std::to_string(x);
  return out;
}

}  // namespace

void Commands::OnRegisterReply(Agent& agent, const proto::Envelope& e) {
  auto r = proto::BodyOf<proto::RegisterReply>(e);
  if (r.ok()) agent.heartbeat_ms_ = std::max(100, r->heartbeat_interval_ms);
  if (!agent.registered_)
    spdlog::info("registered with herd-ctld at {}", agent.options_.controller);
  agent.registered_ = true;
  agent.next_heartbeat_ms_ = agent.clock_->MonotonicMillis() + agent.heartbeat_ms_;
  agent.unacked_.clear();  // the registration carried every ended job; resend the rest soon
  for (auto& [key, r2] : agent.failed_launches_) agent.unacked_[key] = 0;
}

void Commands::OnEventAck(Agent& agent, const proto::EventAck& ack) {
  const std::string key = JobKey(ack.id, ack.run, ack.worker);
  agent.unacked_.erase(key);
  agent.last_state_.erase(key);
  agent.last_state_.erase(key + "#sent");
  agent.mps_.Release(key);
  if (agent.failed_launches_.erase(key) == 0) {
    if (Status s = agent.runtime_->Forget(key); !s.ok())
      spdlog::warn("forget {}: {}", key, s.message());
  }
}

void Commands::OnError(Agent& agent, const proto::Envelope& e) {
  auto err = proto::BodyOf<proto::ErrorReply>(e);
  std::string msg = err.ok() ? err->message : "malformed error reply";
  spdlog::warn("herd-ctld: {}", msg);
  if (err.ok() && err->code == static_cast<int>(Code::kNotRegistered)) {
    agent.registered_ = false;
    agent.next_register_ms_ = 0;
  }
}

void Commands::OnLaunch(Agent& agent, const proto::LaunchCommand& cmd) {
  const model::Job& job = cmd.job;
  if (cmd.worker < 0 || cmd.worker >= static_cast<int>(job.placement.size())) return;
  const model::WorkerPlacement& w = job.placement[cmd.worker];
  runtime::LaunchSpec spec;
  spec.job_key = JobKey(job.id, job.restart_count, cmd.worker);
  if (job.uid == 0 && !agent.options_.allow_root_jobs) {
    spdlog::warn("refused job {} worker {}: it would run as root, and herd.toml here does not set "
                 "allow_root_jobs = true under [controller]",
                 job.id, cmd.worker);
    agent.FailLaunch(spec.job_key,
                     Denied("jobs may not run as root on " + agent.options_.name +
                            " (allow_root_jobs is not set in its herd.toml)"));
    return;
  }
  spec.argv = job.spec.argv;
  spec.script = job.spec.script;
  spec.session = job.spec.session;
  spec.cwd = job.spec.cwd;
  spec.image = job.spec.image;
  for (const auto& v : job.spec.volumes) {
    auto colon = v.find(':');
    spec.mounts.emplace_back(v.substr(0, colon),
                             colon == std::string::npos ? v : v.substr(colon + 1));
  }
  spec.uid = job.uid;
  spec.gid = job.gid;
  const model::OutputPaths outputs =
      model::ResolveOutputPaths(job.spec, model::OutputNamesOf(job, cmd.worker));
  spec.stdout_path = outputs.stdout_path;
  spec.stderr_path = outputs.stderr_path;
  // A restarted run, or a worker but the first, must not wipe what was written before it.
  spec.append_output = job.spec.output_append || job.restart_count > 0 || cmd.worker > 0;
  spec.memory_mib = w.memory_mib;
  // Cores of an emulated node are not this host's cores.
  if (!agent.options_.topology.emulated) spec.cpus = w.cores;
  spec.gpus = w.gpus;
  for (const auto& [k, v] : job.spec.env) spec.env.emplace_back(k, v);
  for (const auto& kv : cmd.env) spec.env.push_back(kv);
  const std::string gpus = JoinInts(w.gpus);
  spec.env.emplace_back("HERD_NODE", agent.options_.name);
  spec.env.emplace_back("HERD_CPUS", JoinInts(w.cores));
  spec.env.emplace_back("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
  spec.env.emplace_back("CUDA_VISIBLE_DEVICES", gpus);
  spec.env.emplace_back("NVIDIA_VISIBLE_DEVICES", gpus.empty() ? "void" : gpus);
  if (!w.gpus.empty() && w.gpu_milli_each < 1000) {
    spec.env.emplace_back("HERD_GPU_FRACTION", model::FormatGpuMilli(w.gpu_milli_each));
    // MPS enforces the share where nvidia-cuda-mps-control exists; elsewhere limits are advisory.
    // The scheduler reserved gpu_memory_mib; the job may use up to its limit, when it set one.
    const int64_t mem_limit = job.spec.gpu_memory_limit_mib > 0 ? job.spec.gpu_memory_limit_mib
                                                                : job.spec.gpu_memory_mib;
    auto limits = agent.mps_.Acquire(spec.job_key, w.gpus[0], w.gpu_milli_each, mem_limit);
    if (limits.ok()) {
      spec.env.insert(spec.env.end(), limits->begin(), limits->end());
    } else {
      spdlog::warn("job {}: MPS: {}; its GPU share is advisory", job.id, limits.status().message());
      if (mem_limit > 0)
        spec.env.emplace_back("HERD_GPU_MEMORY_LIMIT", std::to_string(mem_limit) + "M");
      spec.env.emplace_back("HERD_GPU_LIMITS", "advisory");
    }
  }
  if (agent.options_.topology.emulated) spec.env.emplace_back("HERD_EMULATED_GPUS", "1");
  const std::string hostfile = agent.options_.state_dir + "/hostfiles/" + spec.job_key;
  {
    std::ofstream out(hostfile);
    for (const auto& p : job.placement) out << p.node << "\n";
  }
  spec.env.emplace_back("HERD_HOSTFILE", hostfile);

  Status s = agent.runtime_->BeginLaunch(spec);
  if (!s.ok()) {
    agent.mps_.Release(spec.job_key);
    agent.FailLaunch(spec.job_key, s);
    return;
  }
  spdlog::info("starting job {} worker {} (GPUs {})", job.id, cmd.worker,
               gpus.empty() ? "none" : gpus);
}

void Commands::OnSignal(Agent& agent, const proto::SignalCommand& cmd) {
  const std::string prefix = std::to_string(cmd.id) + "." + std::to_string(cmd.run) + ".";
  for (const auto& st : agent.runtime_->Poll()) {
    if (st.job_key.rfind(prefix, 0) != 0 || st.state == runtime::JobStatus::kExited) continue;
    Status s;
    if (cmd.action == "kill") {
      s = agent.runtime_->Kill(st.job_key, cmd.grace_ms);
      agent.next_poll_ms_ = 0;  // a job that ends at once is reported at once
    } else if (cmd.action == "suspend") {
      s = agent.runtime_->Suspend(st.job_key);
    } else if (cmd.action == "resume") {
      s = agent.runtime_->Resume(st.job_key);
    } else {
      s = Invalid("unknown signal action '" + cmd.action + "'");
    }
    if (!s.ok()) spdlog::warn("{} {}: {}", cmd.action, st.job_key, s.message());
  }
}

void Commands::OnLogsFetch(Agent& agent, const proto::LogsFetch& fetch) {
  proto::LogsData data;
  data.token = fetch.token;
  const std::string key = JobKey(fetch.request.id, fetch.run, fetch.request.worker);
  bool eof = false;
  const int64_t max = std::clamp<int64_t>(fetch.request.max_bytes, 1, 4 << 20);
  int64_t offset = fetch.request.offset;
  if (fetch.request.tail) {
    // The last `max` bytes; a log not there yet reads from 0 and says so below.
    auto size = agent.runtime_->LogSize(key, fetch.request.stream);
    offset = size.ok() ? std::max<int64_t>(0, *size - max) : 0;
  }
  auto bytes = agent.runtime_->ReadLog(key, fetch.request.stream, offset, max, &eof);
  if (!bytes.ok()) {
    data.error = bytes.status().message();
  } else {
    data.reply.next_offset = offset + static_cast<int64_t>(bytes->size());
    data.reply.data = std::move(*bytes);
    data.reply.eof = eof;
  }
  agent.SendBody(data);
}

}  // namespace herd::noded
