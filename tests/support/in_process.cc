#include "tests/support/in_process.h"

#include <stdlib.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "gtest/gtest.h"

namespace herd::testing {

// ---- FakeAuthForTests ----

Result<std::string> FakeAuthForTests::Credential(std::string_view binding) {
  return "fake:" + std::to_string(uid_) + ":" + std::string(binding);
}

Result<auth::Identity> FakeAuthForTests::Verify(const std::string& cred,
                                                std::string_view binding) {
  std::string_view rest(cred);
  if (!rest.starts_with("fake:")) return Denied("authentication failed: not a fake credential");
  rest.remove_prefix(5);
  uint32_t uid = 0;
  auto [colon, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), uid);
  if (ec != std::errc() || colon == rest.data() + rest.size() || *colon != ':') {
    return Denied("authentication failed: malformed fake credential");
  }
  if (std::string_view(colon + 1, rest.data() + rest.size() - colon - 1) != binding) {
    return Denied("authentication failed: the credential was made for another message");
  }
  return auth::Identity{uid, uid, UserName(uid)};
}

std::string FakeAuthForTests::UserName(uint32_t uid) {
  return uid == 0 ? "root" : "user" + std::to_string(uid);
}

proto::Envelope SignedAs(uint32_t uid, proto::Envelope e) {
  e.cred = *FakeAuthForTests(uid).Credential(auth::MessageBinding(e.type, e.id, e.body));
  return e;
}

proto::Envelope SignedForOtherMessage(uint32_t uid, proto::Envelope e) {
  e.cred = *FakeAuthForTests(uid).Credential(auth::MessageBinding(e.type, e.id + 1, e.body));
  return e;
}

// ---- InProcessNetwork ----

struct InProcessNetwork::Wire {
  bool bound = false;
  std::vector<net::Incoming> server_inbox;
  std::map<std::string, std::deque<proto::Envelope>> dealer_inboxes;  // by route, while connected
  int next_route = 1;
  int64_t moved = 0;
  std::vector<Message> log;
  Filter filter;

  void Queue(Message m) {
    if (filter && !filter(m)) return;
    if (m.to_server) {
      if (!bound) return;
      server_inbox.push_back({m.route, m.envelope});
    } else {
      auto it = dealer_inboxes.find(m.route);
      if (it == dealer_inboxes.end()) return;
      it->second.push_back(m.envelope);
    }
    ++moved;
    log.push_back(std::move(m));
  }
};

namespace {

class InProcessServer final : public net::Server {
 public:
  explicit InProcessServer(std::shared_ptr<InProcessNetwork::Wire> wire) : wire_(std::move(wire)) {
    wire_->bound = true;
  }
  ~InProcessServer() override {
    wire_->bound = false;
    wire_->server_inbox.clear();
  }
  std::vector<net::Incoming> Poll(int /*timeout_ms*/) override {
    return std::exchange(wire_->server_inbox, {});
  }
  void Send(const std::string& peer, const proto::Envelope& e) override {
    wire_->Queue({peer, false, e});
  }
  std::vector<std::string> Endpoints() const override { return {"inproc://herd-ctld"}; }
  int Fd() const override { return -1; }

 private:
  std::shared_ptr<InProcessNetwork::Wire> wire_;
};

class InProcessDealer final : public net::Dealer {
 public:
  InProcessDealer(std::shared_ptr<InProcessNetwork::Wire> wire, std::string route)
      : wire_(std::move(wire)), route_(std::move(route)) {
    wire_->dealer_inboxes[route_];
  }
  ~InProcessDealer() override { wire_->dealer_inboxes.erase(route_); }
  Status Send(const proto::Envelope& e) override {
    wire_->Queue({route_, true, e});
    return Status::Ok();
  }
  std::optional<proto::Envelope> Receive(int /*timeout_ms*/) override {
    auto& inbox = wire_->dealer_inboxes[route_];
    if (inbox.empty()) return std::nullopt;
    proto::Envelope e = std::move(inbox.front());
    inbox.pop_front();
    return e;
  }
  int Fd() const override { return -1; }

 private:
  std::shared_ptr<InProcessNetwork::Wire> wire_;
  std::string route_;
};

}  // namespace

InProcessNetwork::InProcessNetwork() : wire_(std::make_shared<Wire>()) {}
InProcessNetwork::~InProcessNetwork() = default;

std::unique_ptr<net::Server> InProcessNetwork::Bind() {
  return std::make_unique<InProcessServer>(wire_);
}

std::unique_ptr<net::Dealer> InProcessNetwork::Connect() {
  return std::make_unique<InProcessDealer>(wire_, "conn-" + std::to_string(wire_->next_route++));
}

void InProcessNetwork::Inject(const std::string& route, const proto::Envelope& e) {
  wire_->Queue({route, true, e});
}

void InProcessNetwork::set_filter(Filter filter) { wire_->filter = std::move(filter); }
int64_t InProcessNetwork::moved() const { return wire_->moved; }
const std::vector<InProcessNetwork::Message>& InProcessNetwork::log() const { return wire_->log; }

// ---- FakeNodeJobs and FakeRuntime ----

using runtime::JobStatus;

bool FakeNodeJobs::Exit(const std::string& key, int exit_code, std::string reason) {
  auto it = jobs_.find(key);
  if (it == jobs_.end() || it->second.status.state == JobStatus::kExited) return false;
  JobStatus& st = it->second.status;
  st.state = JobStatus::kExited;
  st.exit_code = exit_code;
  st.reason = !reason.empty() || exit_code == 0 ? std::move(reason)
                                                 : "exit code " + std::to_string(exit_code);
  return true;
}

const FakeNodeJobs::Job* FakeNodeJobs::Find(const std::string& key) const {
  auto it = jobs_.find(key);
  return it == jobs_.end() ? nullptr : &it->second;
}

std::vector<std::string> FakeNodeJobs::Running() const {
  std::vector<std::string> out;
  for (const auto& [key, job] : jobs_) {
    if (job.status.state != JobStatus::kExited) out.push_back(key);
  }
  return out;
}

Status FakeRuntime::BeginLaunch(const runtime::LaunchSpec& spec) {
  jobs_->launched.push_back(spec);
  if (!jobs_->fail_next_launch.ok()) return std::exchange(jobs_->fail_next_launch, Status::Ok());
  auto it = jobs_->jobs_.find(spec.job_key);
  if (it != jobs_->jobs_.end() && it->second.status.state != JobStatus::kExited) {
    return Invalid("job " + spec.job_key + " already runs here");
  }
  FakeNodeJobs::Job& job = jobs_->jobs_[spec.job_key];
  job = FakeNodeJobs::Job{};
  job.spec = spec;
  job.status.job_key = spec.job_key;
  job.status.state = JobStatus::kRunning;
  started_.push_back({spec.job_key, Status::Ok()});
  return Status::Ok();
}

std::vector<runtime::StartOutcome> FakeRuntime::TakeStartOutcomes() {
  return std::exchange(started_, {});
}

Status FakeRuntime::Kill(const std::string& job_key, int /*grace_ms*/) {
  auto it = jobs_->jobs_.find(job_key);
  if (it == jobs_->jobs_.end()) return NotFound("no job " + job_key + " on this node");
  ++it->second.kills;
  jobs_->Exit(job_key, 128 + 15, "killed by signal 15");
  return Status::Ok();
}

Status FakeRuntime::Set(const std::string& job_key, JobStatus::State state) {
  auto it = jobs_->jobs_.find(job_key);
  if (it == jobs_->jobs_.end() || it->second.status.state == JobStatus::kExited) {
    return NotFound("no running job " + job_key + " on this node");
  }
  it->second.status.state = state;
  return Status::Ok();
}

Status FakeRuntime::Suspend(const std::string& job_key) {
  return Set(job_key, JobStatus::kSuspended);
}

Status FakeRuntime::Resume(const std::string& job_key) { return Set(job_key, JobStatus::kRunning); }

std::vector<JobStatus> FakeRuntime::Poll() {
  std::vector<JobStatus> out;
  for (const auto& [key, job] : jobs_->jobs_) out.push_back(job.status);
  return out;
}

runtime::CgroupUsage FakeRuntime::Usage(const std::string& /*job_key*/) const { return {}; }

Status FakeRuntime::Forget(const std::string& job_key) {
  jobs_->forgotten.push_back(job_key);
  jobs_->jobs_.erase(job_key);
  return Status::Ok();
}

Result<std::string> FakeRuntime::ReadLog(const std::string& job_key,
                                         const std::string& /*stream*/, int64_t /*offset*/,
                                         int64_t /*max_bytes*/, bool* eof) {
  const FakeNodeJobs::Job* job = jobs_->Find(job_key);
  if (job == nullptr) return NotFound("no job " + job_key + " on this node");
  *eof = job->status.state == JobStatus::kExited;
  return std::string();
}

// ---- CapturedLog and TempDir ----

CapturedLog::CapturedLog()
    : previous_(spdlog::default_logger()),
      sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(2000)) {
  auto logger = std::make_shared<spdlog::logger>("herd-test", sink_);
  logger->set_level(spdlog::level::debug);
  spdlog::set_default_logger(std::move(logger));
}

CapturedLog::~CapturedLog() {
  spdlog::set_default_logger(previous_);
  if (::testing::Test::HasFailure()) std::fprintf(stderr, "log of the daemons:\n%s", Text().c_str());
}

std::string CapturedLog::Text() const {
  std::string out;
  for (const auto& line : sink_->last_formatted()) out += line;
  return out;
}

TempDir::TempDir() {
  // herd-ctld's store syncs every commit to disk: in memory (/dev/shm) a test's hundred commits
  // take no time, on a disk seconds.
  const char* tmp = getenv("TMPDIR");
  std::string base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  if (tmp == nullptr && access("/dev/shm", W_OK) == 0) base = "/dev/shm";
  std::string pattern = base + "/herd-test-XXXXXX";
  if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

}  // namespace herd::testing
