// The codec: every message survives a round trip, and no sequence of bytes crashes a decode.
// PendingBytes: what a session writes out a part at a time comes out whole and in order.
#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <string>

#include "common/proto/codec.h"
#include "common/proto/stream.h"

namespace herd::proto {
namespace {

// ---- samples with a non-default value in every field ----

model::JobSpec FullSpec() {
  model::JobSpec s;
  s.name = "resnet";
  s.argv = {"python", "train.py", "--epochs=3"};
  s.env = {{"A", "1"}, {"B", "two"}};
  s.cwd = "/home/u";
  s.project = "vision";
  s.job_class = "interactive";
  s.workers = 4;
  s.gpu_milli = 500;
  s.gpu_memory_mib = 20000;
  s.cpus = 8;
  s.memory_mib = 65536;
  s.time_limit_s = 3600;
  s.image = "/img/pytorch.tar";
  s.spread = true;
  s.volumes = {"/data/imagenet:/data", "/scratch"};
  s.after = {"12:ok", "13:any"};
  s.hold = true;
  s.admin_hold = true;
  s.begin_time = 1700000500;
  s.array_id = 40;
  s.array_index = 7;
  s.array_limit = 8;
  s.sweep = {{"lr", "1e-3"}, {"bs", "64"}};
  s.stop_after_success = true;
  s.gpu_types = {"a100", "h100"};
  s.pool = "train";
  s.constraints = {{"rack", "r1"}};
  s.nodelist = {"ws01", "ws02"};
  s.exclude = {"ws03"};
  s.output = "/home/a/out.%j";
  s.error = "/home/a/err.%A_%a";
  s.output_append = true;
  return s;
}

model::Job FullJob() {
  model::Job j;
  j.id = 1234567890123;
  j.spec = FullSpec();
  j.user = "alice";
  j.uid = 4000000000u;
  j.gid = 1001;
  j.state = model::JobState::kSuspended;
  j.reason = "frozen by admin";
  j.reason_code = "quota_held";
  j.submit_time = 1700000000;
  j.start_time = 1700000100;
  j.end_time = 1700000200;
  j.exit_code = -9;
  j.restart_count = 2;
  j.preemptions = 1;
  j.gpu_util_sum = 4200000;
  j.gpu_sampled_ms = 60000;
  j.placement = {{"dgx01", {0, 1}, 1000, {0, 1, 2, 3}, 8192, "mlx5_0"},
                 {"dgx02", {7}, 250, {64}, 4096, "mlx5_3"}};
  return j;
}

model::NodeTopology FullTopology() {
  model::NodeTopology t;
  t.hostname = "dgx01";
  t.sockets = 2;
  t.numa = {{0, {0, 1, 2}, 128000}, {1, {3, 4}, 64000}};
  t.gpus = {{0, "NVIDIA A100-SXM4-40GB", 40960, "0000:07:00.0", 3, 1, "mlx5_0", "GPU-abc"},
            {1, "NVIDIA A100-SXM4-40GB", 40960, "0000:0f:00.0", 3, 1, "mlx5_1", "GPU-def"}};
  t.nics = {{"mlx5_0", "0000:0c:00.0", 3, 1}};
  t.memory_mib = 1024000;
  t.emulated = true;
  t.source = "/etc/herd/topologies/dgx.xml";
  return t;
}

JobReport FullReport() {
  return {77, 3, "ENDED", 137, "out of memory", {1500, 0, 41943040}, 2, true};
}
LogsRequest FullLogsRequest() { return {42, 2, 4096, 65536, "stderr", true}; }
LogsReply FullLogsReply() { return {std::string("line\n\0\xff", 7), 8192, true}; }

template <typename T>
T Sample();
template <> ErrorReply Sample() { return {static_cast<int>(Code::kDenied), "not yours"}; }
template <> SubmitRequest Sample() {
  return {FullSpec(), {1, 3, 5}, {{{"lr", "1e-3"}, {"bs", "32"}}, {{"lr", "1e-4"}, {"bs", "32"}}}};
}
template <> SubmitReply Sample() { return {99}; }
template <> JobsRequest Sample() {
  return {{1, 2, 3}, "bob", {"RUNNING", "PENDING"}, true, 50, 1234, true, 12};
}
template <> JobsReply Sample() { return {{FullJob(), FullJob()}, true}; }
template <> JobActionRequest Sample() {
  return {"cancel", {5, 6}, {7}, "bob", {"PENDING"}, "sweep", "vision"};
}
template <> UpdateJobRequest Sample() { return {{5}, {7, 8}, 3600, "renamed", "vision", true}; }
template <> JobActionResult Sample() { return {5, true, "SUSPENDED", 3}; }
template <> JobActionReply Sample() {
  return {{{5, true, "SUSPENDED", 0}, {6, false, "not running", 0}}};
}
template <> LogsRequest Sample() { return FullLogsRequest(); }
template <> LogsReply Sample() { return FullLogsReply(); }
template <> NodesRequest Sample() { return {}; }
template <> NodeStatus Sample() {
  return {"dgx01", FullTopology(), "DRAIN", {8000, 128, 1024000}, {2500, 16, 65536}, {1000, 500}, 1700000300,
          "state directory /var/lib/herd-noded is full", {"a100", "a100"}, {{"rack", "r1"}},
          {"train"}};
}
template <> NodesReply Sample() { return {{Sample<NodeStatus>(), Sample<NodeStatus>()}}; }
template <> ProjectsRequest Sample() { return {}; }
template <> ProjectStatus Sample() {
  return {"vision", "research", true, {8000, 128, 1048576}, {24000, -1, -1}, {12000, 160, 2097152},
          {10500, 96, 524288}, {2000, 8, 65536}, 7, 3, 86400.125, 2, 0.2871745887492587,
          {{"a100", 8000, -1, 10000, 9000}, {"h100", 4000, 6000, 2000, 1500}},
          {{"train", 6000, 8000, 5000, 4000}}};
}
template <> AdminRequest Sample() { return {"drain", {"dgx01"}}; }
template <> AdminReply Sample() { return {"node dgx01 drained"}; }
template <> WhyRequest Sample() { return {77}; }
template <> WhyReply Sample() {
  return {FullJob(), "quota", 3, 5, Sample<ProjectStatus>(), 1700000900, "no estimate: hold",
          {{1700000000, "submitted"}, {1700000100, "started on dgx01"}}, true};
}
template <> UsageRequest Sample() { return {1700000000, 1700086400, "project"}; }
template <> UsageRow Sample() { return {"vision", 7200000, 4, 10, 60, 3600, 87, 2}; }
template <> UsageReply Sample() {
  return {1700000000, 1700086400, "project", {Sample<UsageRow>(), {"nlp", 1000, 1, 0, 0, 0, -1, 0}}};
}
template <> ProjectsReply Sample() { return {{Sample<ProjectStatus>(), Sample<ProjectStatus>()}}; }
template <> StatsRequest Sample() { return {}; }
template <> StatsReply Sample() {
  return {1700000000,
          123456789,
          {{"RUNNING", "vision", "train", 3}, {"PENDING", "nlp", "interactive", 1}},
          {{"dgx01", "a100", "", 8, 2500, 1970}, {"dgx01", "a100", "vision", 0, 2500, 1500}},
          {{"dgx01", "UP"}, {"ws01", "DRAIN"}},
          {10, 60},
          {{"vision", "train", {{4, 1, 0}, 700}}},
          {1000, 10000},
          {{5, 2, 1}, 31000},
          {1000},
          {{90, 1}, 4000},
          {{"reclaim", 2, 7200000}},
          42};
}
template <> HistoryRequest Sample() { return {"job", "77", 1700000000, 1700086400, 300}; }
template <> HistoryPoint Sample() { return {1700000600, 10, {4000, 3000, -1}}; }
template <> HistoryReply Sample() {
  return {"node",
          "dgx01",
          1700000000,
          1700086400,
          600,
          {"gpus_milli", "allocated_milli"},
          {Sample<HistoryPoint>(), {1700001200, 1, {8000, 0}}}};
}
template <> JobReport Sample() { return FullReport(); }
template <> RegisterRequest Sample() {
  return {"dgx01", FullTopology(), {FullReport()}, 0xfedcba9876543210ull};
}
template <> RegisterReply Sample() { return {250}; }
template <> Heartbeat Sample() {
  return {"dgx01", {FullReport(), FullReport()}, {{0, 97, 30000}, {1, 0, 512}},
          "state directory /var/lib/herd-noded is full"};
}
template <> JobEvent Sample() { return {"dgx01", FullReport()}; }
template <> EventAck Sample() { return {77, 3, 2}; }
template <> LaunchCommand Sample() { return {FullJob(), 1, {{"HERD_JOB_ID", "1"}, {"HERD_RANK", "1"}}}; }
template <> SignalCommand Sample() { return {77, "kill", 30000, "preempted", 4}; }
template <> LogsFetch Sample() { return {0xfedcba9876543210ull, FullLogsRequest(), 5}; }
template <> LogsData Sample() { return {12, FullLogsReply(), "no such log"}; }
template <>
WebTokenRequest Sample() {
  return {"exchange", std::string(64, 'a'), "alice", std::string(32, '\xfe')};
}
template <> WebTokenReply Sample() {
  return {std::string(64, 'b'), 1700000600, "alice", 2, "http://web:9180"};
}
template <> WebRelay Sample() { return {std::string(64, 'c'), "jobs", "\x80"}; }

template <typename T>
class BodyTest : public ::testing::Test {};
using BodyTypes =
    ::testing::Types<ErrorReply, SubmitRequest, SubmitReply, JobsRequest, JobsReply,
                     JobActionRequest, UpdateJobRequest, JobActionResult, JobActionReply,
                     LogsRequest, LogsReply, NodesRequest, NodeStatus, NodesReply, ProjectsRequest, ProjectStatus,
                     ProjectsReply, AdminRequest, AdminReply, WhyRequest, WhyReply,
                     UsageRequest, UsageRow, UsageReply, StatsRequest, StatsReply, HistoryRequest,
                     HistoryPoint, HistoryReply, JobReport,
                     RegisterRequest,
                     RegisterReply, Heartbeat, JobEvent, EventAck, LaunchCommand, SignalCommand,
                     LogsFetch, LogsData, WebTokenRequest, WebTokenReply, WebRelay>;
TYPED_TEST_SUITE(BodyTest, BodyTypes);

TYPED_TEST(BodyTest, RoundTripKeepsEveryField) {
  TypeParam sample = Sample<TypeParam>();
  if (!std::is_same_v<TypeParam, NodesRequest> && !std::is_same_v<TypeParam, ProjectsRequest> &&
      !std::is_same_v<TypeParam, StatsRequest>) {
    EXPECT_FALSE(sample == TypeParam{});
  }
  auto decoded = DecodeBody<TypeParam>(EncodeBody(sample));
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_TRUE(*decoded == sample);
}

TEST(CodecTest, NumbersThatAreNotFiniteAreRefused) {
  ProjectStatus p = Sample<ProjectStatus>();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {std::nan(""), inf, -inf}) {
    p.effective_weight = bad;
    auto r = DecodeBody<ProjectStatus>(EncodeBody(p));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("effective_weight' is not a finite number"),
              std::string::npos)
        << r.status().message();
  }
}

TYPED_TEST(BodyTest, EveryTruncationIsAnErrorNotACrash) {
  std::string bytes = EncodeBody(Sample<TypeParam>());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = DecodeBody<TypeParam>(std::string_view(bytes.data(), n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes";
    EXPECT_NE(r.status().message().find("malformed message"), std::string::npos);
  }
}

// The wire names of the 20 message types; nested bodies have none.
template <typename... T>
std::vector<std::string> Names() {
  return {MessageName<T>()...};
}

TEST(CodecTest, MessageNamesAreTheDocumentedOnes) {
  auto names = Names<ErrorReply, SubmitRequest, SubmitReply, JobsRequest, JobsReply,
                     JobActionRequest, JobActionReply, LogsRequest, LogsReply, NodesRequest,
                     NodesReply, RegisterRequest, RegisterReply, Heartbeat, JobEvent, EventAck,
                     LaunchCommand, SignalCommand, LogsFetch, LogsData>();
  std::vector<std::string> expected = {
      "error", "submit",   "submit_reply",   "jobs",      "jobs_reply", "job_action",
      "job_action_reply", "logs", "logs_reply", "nodes", "nodes_reply", "register",
      "register_reply", "heartbeat", "job_event", "event_ack", "launch", "signal",
      "logs_fetch", "logs_data"};
  EXPECT_EQ(names, expected);
}

TEST(CodecTest, EnvelopeRoundTrip) {
  Envelope e = MakeEnvelope(Sample<LaunchCommand>(), 0xffffffffffffull, "MUNGE:cred");
  auto decoded = DecodeEnvelope(EncodeEnvelope(e));
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_TRUE(*decoded == e);
  auto body = BodyOf<LaunchCommand>(*decoded);
  ASSERT_TRUE(body.ok()) << body.status().message();
  EXPECT_TRUE(*body == Sample<LaunchCommand>());
}

TEST(CodecTest, EveryTruncatedEnvelopeIsAnError) {
  std::string bytes = EncodeEnvelope(MakeEnvelope(Sample<JobsReply>(), 7, "cred"));
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(DecodeEnvelope(std::string_view(bytes.data(), n)).ok()) << n;
  }
}

TEST(CodecTest, BodyOfWrongTypeIsRefused) {
  auto r = BodyOf<SubmitReply>(MakeEnvelope(Sample<SubmitRequest>()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_EQ(r.status().message(), "expected message 'submit_reply', got 'submit'");
}

TEST(CodecTest, WrongVersionNamesBothVersions) {
  Envelope e = MakeEnvelope(SubmitReply{1});
  e.v = 1;
  auto r = DecodeEnvelope(EncodeEnvelope(e));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "protocol version 1 not supported (this herd speaks 2): upgrade herd so that the CLI, "
            "herd-ctld and herd-noded match");
}

TEST(CodecTest, EmptyBytesAreAnError) {
  EXPECT_FALSE(DecodeEnvelope("").ok());
  EXPECT_FALSE(DecodeBody<SubmitRequest>("").ok());
}

TEST(CodecTest, TrailingBytesAreAnError) {
  EXPECT_FALSE(DecodeEnvelope(EncodeEnvelope(MakeEnvelope(NodesRequest{})) + "x").ok());
}

TEST(CodecTest, OversizedMessageIsRefusedBeforeParsing) {
  std::string big(kMaxMessageBytes + 1, '\x90');
  auto r = DecodeEnvelope(big);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("over the limit"), std::string::npos);
}

TEST(CodecTest, OversizedStringIsRefused) {
  LogsReply reply;
  reply.data.assign(kMaxStringBytes + 1, 'x');
  auto r = DecodeBody<LogsReply>(EncodeBody(reply));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("malformed message"), std::string::npos);
  reply.data.resize(kMaxStringBytes);  // exactly at the limit is fine
  EXPECT_TRUE(DecodeBody<LogsReply>(EncodeBody(reply)).ok());
}

TEST(CodecTest, ArrayLongerThanTheBytesIsRefusedWithoutAllocating) {
  // array32 header declaring 4 billion items, followed by almost nothing.
  std::string bytes = "\x81\xa4jobs\xdd\xff\xff\xff\xff\xc0";
  EXPECT_FALSE(DecodeBody<JobsReply>(bytes).ok());
}

TEST(CodecTest, TooDeepNestingIsRefused) {
  std::string bytes(200, '\x91');  // fixarray of one element, 200 levels deep
  bytes += '\xc0';
  auto r = DecodeBody<JobsReply>(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("depth"), std::string::npos) << r.status().message();
  EXPECT_FALSE(DecodeEnvelope(bytes).ok());
}

// Packs a hand-built map so tests can write what a buggy or hostile peer would send.
template <typename Fn>
std::string Pack(Fn fn) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  fn(pk);
  return std::string(buffer.data(), buffer.size());
}

TEST(CodecTest, WrongFieldTypeNamesTheField) {
  std::string bytes = Pack([](auto& pk) {
    pk.pack_map(1);
    pk.pack(std::string("spec"));
    pk.pack_map(1);
    pk.pack(std::string("workers"));
    pk.pack(std::string("four"));
  });
  auto r = DecodeBody<SubmitRequest>(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "malformed message: field 'spec.workers' should be an integer, got a string");
}

TEST(CodecTest, IntegerOutOfRangeIsRefused) {
  std::string bytes = Pack([](auto& pk) {
    pk.pack_map(1);
    pk.pack(std::string("worker"));
    pk.pack(int64_t{1} << 40);
  });
  auto r = DecodeBody<EventAck>(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'worker' is out of range"), std::string::npos);
}

TEST(CodecTest, UnknownJobStateIsAnError) {
  std::string bytes = Pack([](auto& pk) {
    pk.pack_map(1);
    pk.pack(std::string("jobs"));
    pk.pack_array(1);
    pk.pack_map(1);
    pk.pack(std::string("state"));
    pk.pack(std::string("DANCING"));
  });
  auto r = DecodeBody<JobsReply>(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "malformed message: field 'jobs[0].state' has unknown job state 'DANCING'");
}

TEST(CodecTest, UnknownKeysAreIgnoredAndMissingOnesKeepDefaults) {
  std::string bytes = Pack([](auto& pk) {
    pk.pack_map(2);
    pk.pack(std::string("from_the_future"));
    pk.pack_array(2);
    pk.pack(1);
    pk.pack(2.5);
    pk.pack(std::string("spec"));
    pk.pack_map(1);
    pk.pack(std::string("name"));
    pk.pack(std::string("x"));
  });
  auto r = DecodeBody<SubmitRequest>(bytes);
  ASSERT_TRUE(r.ok()) << r.status().message();
  model::JobSpec expected;
  expected.name = "x";
  EXPECT_TRUE(r->spec == expected);
}

// A struct's keys decode the same in any order, with unknown keys between them, and a duplicate
// key's last value wins (herd writes them in schema order and reads that order fastest).
TEST(CodecTest, KeysDecodeInAnyOrder) {
  std::string bytes = Pack([](auto& pk) {
    pk.pack_map(1);
    pk.pack(std::string("spec"));
    pk.pack_map(5);
    pk.pack(std::string("memory_mib"));
    pk.pack(2048);
    pk.pack(std::string("name"));
    pk.pack(std::string("first"));
    pk.pack(std::string("from_the_future"));
    pk.pack(7);
    pk.pack(std::string("cpus"));
    pk.pack(3);
    pk.pack(std::string("name"));
    pk.pack(std::string("last"));
  });
  auto r = DecodeBody<SubmitRequest>(bytes);
  ASSERT_TRUE(r.ok()) << r.status().message();
  model::JobSpec expected;
  expected.name = "last";
  expected.cpus = 3;
  expected.memory_mib = 2048;
  EXPECT_TRUE(r->spec == expected);
}

// A job from an herd-ctld older than reason codes (no "reason_code" key) decodes with none, in a
// listing and in herd why's reply; a code this herd does not know yet is kept as it came.
TEST(CodecTest, JobWithoutAReasonCodeFromAnOlderPeerDecodesWithNone) {
  auto old_job = [](auto& pk) {
    pk.pack_map(3);
    pk.pack(std::string("id"));
    pk.pack(5);
    pk.pack(std::string("state"));
    pk.pack(std::string("PENDING"));
    pk.pack(std::string("reason"));
    pk.pack(std::string("project vision is at its limit of 4 GPUs"));
  };
  auto jobs = DecodeBody<JobsReply>(Pack([&](auto& pk) {
    pk.pack_map(1);
    pk.pack(std::string("jobs"));
    pk.pack_array(1);
    old_job(pk);
  }));
  ASSERT_TRUE(jobs.ok()) << jobs.status().message();
  ASSERT_EQ(jobs->jobs.size(), 1u);
  EXPECT_EQ(jobs->jobs[0].reason, "project vision is at its limit of 4 GPUs");
  EXPECT_EQ(jobs->jobs[0].reason_code, "");

  auto why = DecodeBody<WhyReply>(Pack([&](auto& pk) {
    pk.pack_map(2);
    pk.pack(std::string("job"));
    old_job(pk);
    pk.pack(std::string("waits_for"));
    pk.pack(std::string("quota"));
  }));
  ASSERT_TRUE(why.ok()) << why.status().message();
  EXPECT_EQ(why->waits_for, "quota");
  EXPECT_EQ(why->job.reason_code, "");

  WhyReply newer;
  newer.job.reason_code = "a_code_from_a_later_herd";
  auto back = DecodeBody<WhyReply>(EncodeBody(newer));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->job.reason_code, "a_code_from_a_later_herd");
}

// A peer that sends an error as its message alone still decodes: the code is then 0, which no
// receiver acts on.
TEST(CodecTest, ErrorReplyWithoutACodeDecodesWithCodeZero) {
  std::string bytes = Pack([](auto& pk) {
    pk.pack_map(1);
    pk.pack(std::string("message"));
    pk.pack(std::string("node n1 is not registered"));
  });
  auto r = DecodeBody<ErrorReply>(bytes);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->code, 0);
  EXPECT_EQ(r->message, "node n1 is not registered");
}

TEST(CodecTest, JobsReplyEncodedFromPointersDecodesAsAJobsReply) {
  model::Job a = FullJob(), b = FullJob();
  b.id = a.id + 1;
  const std::vector<const model::Job*> page = {&a, &b};
  auto full = DecodeBody<JobsReply>(EncodeJobsReply(page, true, /*brief=*/false));
  ASSERT_TRUE(full.ok()) << full.status().message();
  EXPECT_TRUE(*full == (JobsReply{{a, b}, true}));

  auto brief = DecodeBody<JobsReply>(EncodeJobsReply(page, false, /*brief=*/true));
  ASSERT_TRUE(brief.ok()) << brief.status().message();
  ASSERT_EQ(brief->jobs.size(), 2u);
  EXPECT_FALSE(brief->more);
  // What a table shows is there; the heavy parts keep their defaults.
  model::Job expected = b;
  model::JobSpec& s = expected.spec;
  s.argv.clear(), s.env.clear(), s.cwd.clear(), s.image.clear(), s.volumes.clear();
  s.after.clear(), s.sweep.clear();
  for (auto& p : expected.placement) p.gpus.clear(), p.cores.clear();
  EXPECT_TRUE(brief->jobs[1] == expected);
  EXPECT_EQ(brief->jobs[1].spec.name, b.spec.name);
  EXPECT_EQ(brief->jobs[1].placement.at(0).node, "dgx01");
}

TEST(CodecTest, RandomGarbageNeverCrashes) {
  std::mt19937 rng(20240611);
  std::string real = EncodeEnvelope(MakeEnvelope(Sample<LaunchCommand>(), 3, "cred"));
  std::string real_body = EncodeBody(Sample<NodesReply>());
  for (int i = 0; i < 4000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {  // pure noise
      bytes.resize(rng() % 256);
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {  // a real message with a few bytes changed: reaches deeper into the decoder
      bytes = i % 4 == 1 ? real : real_body;
      for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) {
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
      }
    }
    auto e = DecodeEnvelope(bytes);
    if (!e.ok()) {
      EXPECT_FALSE(e.status().message().empty());
    }
    (void)DecodeBody<LaunchCommand>(bytes);
    (void)DecodeBody<NodesReply>(bytes);
    (void)DecodeBody<JobsRequest>(bytes);
  }
}

TEST(PendingBytesTest, PartialWritesComeOutWholeAndInOrder) {
  stream::PendingBytes pending;
  EXPECT_TRUE(pending.empty());
  pending.Append(std::string_view("abcdef"));
  pending.Consume(2);  // a third written: kept in place
  EXPECT_EQ(pending.Unwritten(), "cdef");
  pending.Append(std::string_view("gh"));
  pending.Consume(3);  // more than half written: the written bytes are dropped
  EXPECT_EQ(pending.Unwritten(), "fgh");
  EXPECT_EQ(pending.size(), 3u);
  pending.Consume(3);
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(pending.Unwritten(), "");
}

TEST(PendingBytesTest, RandomAppendsAndWritesKeepTheStream) {
  std::mt19937 rng(20261207);
  stream::PendingBytes pending;
  std::string sent, written;  // what was appended, and what came out so far
  for (int i = 0; i < 5000; ++i) {
    if (rng() % 2 == 0) {
      std::string bytes(rng() % 64, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      sent += bytes;
      if (i % 4 == 0) {
        pending.Append(std::move(bytes));
      } else {
        pending.Append(std::string_view(bytes));
      }
    } else {
      const size_t n = pending.empty() ? 0 : rng() % (pending.size() + 1);
      written += pending.Unwritten().substr(0, n);
      pending.Consume(n);
    }
    ASSERT_EQ(pending.size(), sent.size() - written.size());
    ASSERT_EQ(pending.Unwritten(), std::string_view(sent).substr(written.size()));
  }
}

TEST(PendingBytesTest, ClearDropsWhatIsHeld) {
  stream::PendingBytes pending;
  pending.Append(std::string("taken over"));
  pending.Consume(1);
  pending.Clear();
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(pending.size(), 0u);
  pending.Append(std::string_view("next"));
  EXPECT_EQ(pending.Unwritten(), "next");
}

TEST(PendingBytesTest, AppendFrameWritesWhatEncodeFrameMakes) {
  stream::PendingBytes pending;
  stream::AppendFrame(&pending, stream::kOutput, "hello");
  stream::AppendFrame(&pending, stream::kExit, stream::ExitPayload(3));
  EXPECT_EQ(pending.Unwritten(), stream::EncodeFrame(stream::kOutput, "hello") +
                                     stream::EncodeFrame(stream::kExit, stream::ExitPayload(3)));
}

}  // namespace
}  // namespace herd::proto
