#include "tests/support/in_process_cluster.h"

#include <algorithm>

#include "common/config/config.h"
#include "ctld/store/store.h"
#include "gtest/gtest.h"
#include "noded/gpu/gpu.h"

namespace herd::testing {

// ---- TestClient ----

TestClient::TestClient(InProcessCluster* cluster, uint32_t uid)
    : cluster_(cluster), uid_(uid), dealer_(cluster->network().Connect()) {}

Result<proto::Envelope> TestClient::CallRaw(proto::Envelope request) {
  request.id = next_id_++;
  const uint64_t id = request.id;
  HERD_RETURN_IF_ERROR(dealer_->Send(SignedAs(uid_, std::move(request))));
  cluster_->Settle();
  for (auto e = dealer_->Receive(0); e; e = dealer_->Receive(0)) {
    if (e->id == id) return *e;
  }
  return Unavailable("no reply from herd-ctld to request " + std::to_string(id));
}

Result<model::JobId> TestClient::Submit(model::JobSpec spec) {
  auto reply = Call<proto::SubmitReply>(proto::SubmitRequest{std::move(spec), {}, {}});
  if (!reply.ok()) return reply.status();
  return reply->id;
}

Result<model::Job> TestClient::Show(model::JobId id) {
  proto::JobsRequest req;
  req.ids = {id};
  req.all = true;
  auto reply = Call<proto::JobsReply>(req);
  if (!reply.ok()) return reply.status();
  if (reply->jobs.size() != 1) return NotFound("no job " + std::to_string(id));
  return reply->jobs[0];
}

Result<proto::JobActionResult> TestClient::Action(const std::string& action, model::JobId id) {
  auto reply = Call<proto::JobActionReply>(proto::JobActionRequest{action, {id}});
  if (!reply.ok()) return reply.status();
  if (reply->results.size() != 1) return Internal("expected one result");
  return reply->results[0];
}

// ---- InProcessCluster ----

namespace {

model::NodeTopology Topology(const InProcessCluster::NodeOptions& o) {
  model::NodeTopology t;
  t.hostname = o.name;
  t.sockets = 1;
  model::NumaInfo numa;
  for (int c = 0; c < o.cores; ++c) numa.cores.push_back(c);
  numa.memory_mib = o.memory_mib;
  t.numa.push_back(numa);
  for (int g = 0; g < o.gpus; ++g) {
    model::GpuInfo gpu;
    gpu.index = g;
    gpu.model = "NVIDIA A100-SXM4-40GB";
    gpu.memory_mib = 40 << 10;
    gpu.numa = 0;
    gpu.pci_bus_id = "0000:" + std::to_string(10 + g) + ":00.0";
    t.gpus.push_back(gpu);
  }
  t.memory_mib = o.memory_mib;
  t.emulated = true;
  t.source = "in-process test";
  return t;
}

}  // namespace

Result<std::unique_ptr<InProcessCluster>> InProcessCluster::Start(const Options& options) {
  std::unique_ptr<InProcessCluster> c(new InProcessCluster());
  if (c->dir_.path().empty()) return Internal("cannot make a temporary directory");
  auto config = config::ParseConfig(options.toml, "herd.toml");
  if (!config.ok()) return config.status();
  c->config_ = std::move(*config);
  HERD_RETURN_IF_ERROR(c->StartController());
  c->root_ = std::make_unique<TestClient>(c.get(), 0);
  for (const auto& n : options.nodes) {
    c->nodes_[n.name].options = n;
    HERD_RETURN_IF_ERROR(c->StartNode(n.name));
  }
  return c;
}

std::unique_ptr<InProcessCluster> InProcessCluster::Started(const Options& options) {
  auto c = Start(options);
  if (!c.ok()) {
    ADD_FAILURE() << "the in-process cluster did not start: " << c.status().message();
    return nullptr;
  }
  (*c)->Settle();
  return std::move(*c);
}

std::unique_ptr<InProcessCluster> InProcessCluster::Started() { return Started(Options{}); }

InProcessCluster::~InProcessCluster() {
  // Agents and the controller log while they go: before the log capture ends.
  nodes_.clear();
  controller_.reset();
}

Status InProcessCluster::StartController() {
  auto store = store::Store::Open(database());
  if (!store.ok()) return store.status();
  controller_ = std::make_unique<ctld::Controller>(config_, std::move(*store), network_.Bind(),
                                                   std::make_unique<FakeAuthForTests>(0), &clock_);
  controller_->set_pacing_clock([] { return std::chrono::steady_clock::time_point(); });
  return controller_->Recover();
}

void InProcessCluster::StopController() { controller_.reset(); }

Status InProcessCluster::RestartController() {
  StopController();
  return StartController();
}

void InProcessCluster::StepController() {
  if (controller_ == nullptr) return;
  if (Status s = controller_->Step(0); !s.ok()) {
    ADD_FAILURE() << "herd-ctld's Step failed: " << s.message();
  }
}

Status InProcessCluster::StartNode(const std::string& name) {
  Node& n = nodes_.at(name);
  if (n.state_dir == nullptr) {
    n.state_dir = std::make_unique<TempDir>();
    n.jobs = std::make_shared<FakeNodeJobs>();
  }
  noded::AgentOptions o;
  o.name = name;
  o.controller = "inproc://herd-ctld";
  o.state_dir = n.state_dir->path();
  o.topology = Topology(n.options);
  n.agent.reset();  // a herd-noded still there is gone first
  n.agent = std::make_unique<noded::Agent>(std::move(o), std::make_unique<FakeRuntime>(n.jobs),
                                           std::make_unique<FakeAuthForTests>(0),
                                           n.options.gpu_feed.empty()
                                               ? gpu::NoMetrics()
                                               : gpu::OpenFedSource(n.options.gpu_feed),
                                           &clock_);
  n.frozen = false;
  return n.agent->Connect(network_.Connect());
}

void InProcessCluster::StopNode(const std::string& name) { nodes_.at(name).agent.reset(); }

void InProcessCluster::FreezeNode(const std::string& name, bool frozen) {
  nodes_.at(name).frozen = frozen;
}

void InProcessCluster::Settle() {
  for (int round = 0; round < 1000; ++round) {
    const int64_t moved = network_.moved();
    StepController();
    for (auto& [name, n] : nodes_) {
      if (n.agent != nullptr && !n.frozen) n.agent->Step(0);
    }
    if (network_.moved() == moved) return;
  }
  ADD_FAILURE() << "messages still move after 1000 rounds of steps";
}

void InProcessCluster::Advance(int64_t ms) {
  while (ms > 0) {
    const int64_t step = std::min<int64_t>(ms, 100);
    clock_.Advance(step);
    Settle();
    ms -= step;
  }
}

void InProcessCluster::Cycle() { Advance(config_.scheduler.cycle_interval_ms); }

model::JobId InProcessCluster::Submit(uint32_t uid, model::JobSpec spec) {
  auto id = Client(uid).Submit(std::move(spec));
  if (!id.ok()) {
    ADD_FAILURE() << "submit refused: " << id.status().message();
    return 0;
  }
  return *id;
}

model::JobId InProcessCluster::SubmitRunning(uint32_t uid, model::JobSpec spec) {
  const model::JobId id = Submit(uid, std::move(spec));
  if (id == 0) return 0;
  Cycle();
  const model::Job job = Job(id);
  if (job.state != model::JobState::kRunning) {
    ADD_FAILURE() << "job " << id << " is " << model::JobStateName(job.state) << ", not RUNNING: "
                  << job.reason;
    return 0;
  }
  return id;
}

model::Job InProcessCluster::Job(model::JobId id) {
  auto job = root_->Show(id);
  if (!job.ok()) {
    ADD_FAILURE() << "job " << id << ": " << job.status().message();
    return {};
  }
  return *job;
}

std::string InProcessCluster::NodeState(const std::string& name) {
  auto reply = root_->Call<proto::NodesReply>(proto::NodesRequest{});
  if (!reply.ok()) return "";
  for (const auto& n : reply->nodes) {
    if (n.name == name) return n.state;
  }
  return "";
}

model::JobSpec Spec(int64_t gpus, const std::string& job_class, const std::string& project) {
  model::JobSpec spec;
  spec.argv = {"train.py"};
  spec.gpu_milli = gpus * 1000;
  spec.job_class = job_class;
  spec.project = project;
  return spec;
}

model::JobId SubmitArray(InProcessCluster& c, uint32_t uid, std::vector<int64_t> indexes,
                         int64_t gpus) {
  auto reply = c.Client(uid).Call<proto::SubmitReply>(
      proto::SubmitRequest{Spec(gpus), std::move(indexes), {}});
  EXPECT_TRUE(reply.ok()) << reply.status().message();
  return reply.ok() ? reply->id : 0;
}

model::JobId SubmitAfter(InProcessCluster& c, uint32_t uid, const std::string& after) {
  model::JobSpec spec = Spec(0);
  spec.after = {after};
  return c.Submit(uid, spec);
}

bool Ends(InProcessCluster& c, model::JobId id, int exit_code) {
  const bool ok = c.jobs("n1").Exit(noded::JobKey(id, c.Job(id).restart_count, 0), exit_code);
  c.Advance(100);
  return ok;
}

}  // namespace herd::testing
