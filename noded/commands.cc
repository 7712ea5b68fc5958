// What herd-noded does with each message from herd-ctld: registration replies, errors, event
// acknowledgements, launches, signals and log fetches.
#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "common/model/output_path.h"
#include "common/model/units.h"
#include "noded/agent.h"
#include "spdlog/spdlog.h"

namespace herd::noded {

namespace {

std::string JoinInts(const std::vector<int>& v) {
  std::string out;
  for (int x : v) out += (out.empty() ? "" : ",") + std::to_string(x);
  return out;
}

}  // namespace

void Agent::OnRegisterReply(const proto::Envelope& e) {
  auto r = proto::BodyOf<proto::RegisterReply>(e);
  if (r.ok()) heartbeat_ms_ = std::max(100, r->heartbeat_interval_ms);
  if (!registered_) spdlog::info("registered with herd-ctld at {}", options_.controller);
  registered_ = true;
  next_heartbeat_ms_ = clock_->MonotonicMillis() + heartbeat_ms_;
  unacked_.clear();  // the registration carried every ended job; resend the rest soon
  for (auto& [key, r2] : failed_launches_) unacked_[key] = 0;
}

void Agent::OnEventAck(const proto::EventAck& ack) {
  const std::string key = JobKey(ack.id, ack.run, ack.worker);
  unacked_.erase(key);
  last_state_.erase(key);
  last_state_.erase(key + "#sent");
  mps_.Release(key);
  if (failed_launches_.erase(key) == 0) {
    if (Status s = runtime_->Forget(key); !s.ok()) spdlog::warn("forget {}: {}", key, s.message());
  }
}

void Agent::OnError(const proto::Envelope& e) {
  auto err = proto::BodyOf<proto::ErrorReply>(e);
  std::string msg = err.ok() ? err->message : "malformed error reply";
  spdlog::warn("herd-ctld: {}", msg);
  if (err.ok() && err->code == static_cast<int>(Code::kNotRegistered)) {
    registered_ = false;
    next_register_ms_ = 0;
  }
}

void Agent::OnLaunch(const proto::LaunchCommand& cmd) {
  const model::Job& job = cmd.job;
  if (cmd.worker < 0 || cmd.worker >= static_cast<int>(job.placement.size())) return;
  const model::WorkerPlacement& w = job.placement[cmd.worker];
  runtime::LaunchSpec spec;
  spec.job_key = JobKey(job.id, job.restart_count, cmd.worker);
  if (job.uid == 0 && !options_.allow_root_jobs) {
    spdlog::warn("refused job {} worker {}: it would run as root, and herd.toml here does not set "
                 "allow_root_jobs = true under [controller]",
                 job.id, cmd.worker);
    FailLaunch(spec.job_key,
               Denied("jobs may not run as root on " + options_.name +
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
    spec.mounts.emplace_back(v.substr(0, colon), colon == std::string::npos ? v : v.substr(colon + 1));
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
  if (!options_.topology.emulated) spec.cpus = w.cores;
  spec.gpus = w.gpus;
  for (const auto& [k, v] : job.spec.env) spec.env.emplace_back(k, v);
  for (const auto& kv : cmd.env) spec.env.push_back(kv);
  const std::string gpus = JoinInts(w.gpus);
  spec.env.emplace_back("HERD_NODE", options_.name);
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
    auto limits = mps_.Acquire(spec.job_key, w.gpus[0], w.gpu_milli_each, mem_limit);
    if (limits.ok()) {
      spec.env.insert(spec.env.end(), limits->begin(), limits->end());
    } else {
      spdlog::warn("job {}: MPS: {}; its GPU share is advisory", job.id, limits.status().message());
      if (mem_limit > 0) spec.env.emplace_back("HERD_GPU_MEMORY_LIMIT", std::to_string(mem_limit) + "M");
      spec.env.emplace_back("HERD_GPU_LIMITS", "advisory");
    }
  }
  if (options_.topology.emulated) spec.env.emplace_back("HERD_EMULATED_GPUS", "1");
  const std::string hostfile = options_.state_dir + "/hostfiles/" + spec.job_key;
  {
    std::ofstream out(hostfile);
    for (const auto& p : job.placement) out << p.node << "\n";
  }
  spec.env.emplace_back("HERD_HOSTFILE", hostfile);

  Status s = runtime_->BeginLaunch(spec);
  if (!s.ok()) {
    mps_.Release(spec.job_key);
    FailLaunch(spec.job_key, s);
    return;
  }
  spdlog::info("starting job {} worker {} (GPUs {})", job.id, cmd.worker,
               gpus.empty() ? "none" : gpus);
}

void Agent::OnSignal(const proto::SignalCommand& cmd) {
  const std::string prefix = std::to_string(cmd.id) + "." + std::to_string(cmd.run) + ".";
  for (const auto& st : runtime_->Poll()) {
    if (st.job_key.rfind(prefix, 0) != 0 || st.state == runtime::JobStatus::kExited) continue;
    Status s;
    if (cmd.action == "kill") {
      s = runtime_->Kill(st.job_key, cmd.grace_ms);
      next_poll_ms_ = 0;  // a job that ends at once is reported at once
    } else if (cmd.action == "suspend") {
      s = runtime_->Suspend(st.job_key);
    } else if (cmd.action == "resume") {
      s = runtime_->Resume(st.job_key);
    } else {
      s = Invalid("unknown signal action '" + cmd.action + "'");
    }
    if (!s.ok()) spdlog::warn("{} {}: {}", cmd.action, st.job_key, s.message());
  }
}

void Agent::OnLogsFetch(const proto::LogsFetch& fetch) {
  proto::LogsData data;
  data.token = fetch.token;
  const std::string key = JobKey(fetch.request.id, fetch.run, fetch.request.worker);
  bool eof = false;
  const int64_t max = std::clamp<int64_t>(fetch.request.max_bytes, 1, 4 << 20);
  auto bytes = runtime_->ReadLog(key, fetch.request.stream, fetch.request.offset, max, &eof);
  if (!bytes.ok()) {
    data.error = bytes.status().message();
  } else {
    data.reply.next_offset = fetch.request.offset + static_cast<int64_t>(bytes->size());
    data.reply.data = std::move(*bytes);
    data.reply.eof = eof;
  }
  SendBody(data);
}

}  // namespace herd::noded
