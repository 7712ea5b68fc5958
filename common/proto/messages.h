// The wire protocol between herd, herd-ctld and herd-noded: every message body.
// Each message travels as one msgpack map {v, type, id, cred, body} (see Envelope);
// `body` is the msgpack encoding of one of the structs below, named by `type`.
// Thread-safety: plain value types.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/model/job.h"
#include "common/model/node.h"
#include "common/model/resources.h"

namespace herd::proto {

// Major version: a peer with another major is refused with a clear error.
// 2: a worker's run (JobReport, EventAck, SignalCommand, LogsFetch); nodes bound to their Register.
inline constexpr int kProtocolVersion = 2;
// Limits every decode enforces.
inline constexpr size_t kMaxMessageBytes = 16 << 20;
inline constexpr size_t kMaxStringBytes = 1 << 20;
inline constexpr size_t kMaxArrayItems = 200000;
inline constexpr size_t kMaxDepth = 16;

struct Envelope {
  int v = kProtocolVersion;
  std::string type;   // message type name, e.g. "submit"
  uint64_t id = 0;    // request id; a reply carries the request's id
  std::string cred;   // MUNGE credential (empty with auth = "none")
  std::string body;   // msgpack bytes of the body struct
  bool operator==(const Envelope&) const = default;
};

// ---- replies used by many requests ----

struct ErrorReply {
  int code = 0;         // herd::Code
  std::string message;  // what went wrong and what to do
  bool operator==(const ErrorReply&) const = default;
};

// ---- herd (CLI) -> herd-ctld ----

struct SubmitRequest {
  model::JobSpec spec;
  std::vector<int64_t> array_indexes;  // non-empty: one job per index (an array)
  // Non-empty: a sweep, one job per point (parameter name -> value), ids consecutive like an
  // array's; {name} in the command is replaced and HERD_SWEEP_<NAME> set (common/model/sweep.h).
  std::vector<std::map<std::string, std::string>> sweep;
  bool operator==(const SubmitRequest&) const = default;
};
struct SubmitReply {
  model::JobId id = 0;  // the job; for an array its first job (the array id), members consecutive
  bool operator==(const SubmitReply&) const = default;
};

struct JobsRequest {
  std::vector<model::JobId> ids;  // empty: all matching the filters
  std::string user;               // empty: every user
  std::vector<std::string> states;  // state names; empty: every state but finished ones unless all
  bool all = false;               // include finished jobs
  int64_t limit = 0;              // 0: no limit (herd-ctld still serves at most a page)
  // Paging: only jobs with a larger id, in id order (ids too are served in id order).
  model::JobId after_id = 0;
  // Leave the spec's heavy parts empty (command, env, cwd, image, volumes, after, sweep) and the
  // placement's GPU and core lists: enough for a table, far less to copy and send.
  bool brief = false;
  // Non-zero: only the members of this array (its first job's id), as herd resolves ID_INDEX.
  model::JobId array = 0;
  bool operator==(const JobsRequest&) const = default;
};
struct JobsReply {
  std::vector<model::Job> jobs;   // in id order
  // The page is full and more jobs may match: ask again with after_id = the last job's id.
  bool more = false;
  bool operator==(const JobsReply&) const = default;
};

// cancel, suspend, resume, release, hold, requeue
struct JobActionRequest {
  std::string action;  // "cancel", "suspend", "resume", "release", "hold", "requeue"
  // Jobs; an array's id stands for its members (those the action applies to).
  std::vector<model::JobId> ids = {};
  // Jobs named as one member of an array (ID_INDEX): each acted on alone, an array's first too.
  std::vector<model::JobId> members = {};
  // cancel with neither ids nor members: every unfinished job matching all the filters given
  // (at least one); a user's own jobs unless an admin asks.
  std::string user = {};
  std::vector<std::string> states = {};  // state names
  std::string name = {};
  std::string project = {};
  bool operator==(const JobActionRequest&) const = default;
};
struct JobActionResult {
  model::JobId id = 0;
  bool ok = false;
  std::string message;            // new state or the reason it was refused
  int32_t array_jobs = 0;         // > 0: id named an array; this many members were acted on
  bool operator==(const JobActionResult&) const = default;
};
struct JobActionReply {
  std::vector<JobActionResult> results;
  bool operator==(const JobActionReply&) const = default;
};

// herd update JOB...: changes what a job asked for. Pending jobs for their owner; an admin may
// also change a running job's time limit. Each field left at its default is left unchanged.
struct UpdateJobRequest {
  std::vector<model::JobId> ids = {};      // an array's id stands for its pending members
  std::vector<model::JobId> members = {};  // as in JobActionRequest
  int64_t time_limit_s = -1;               // -1: unchanged
  std::string name = {};
  std::string project = {};
  bool hold = false;  // true: hold it (as herd hold)
  bool operator==(const UpdateJobRequest&) const = default;
};

struct LogsRequest {
  model::JobId id = 0;
  int32_t worker = 0;
  int64_t offset = 0;             // byte offset into the log
  int64_t max_bytes = 1 << 20;
  // Which of the job's output: "" both, as written (interleaved), "stdout" or "stderr" alone.
  std::string stream;
  // The last max_bytes of the log instead of those from offset (the dashboard's tail):
  // next_offset - data's size tells where they start.
  bool tail = false;
  bool operator==(const LogsRequest&) const = default;
};
struct LogsReply {
  std::string data;
  int64_t next_offset = 0;
  bool eof = false;               // job ended and all data returned
  bool operator==(const LogsReply&) const = default;
};

struct NodesRequest {
  bool operator==(const NodesRequest&) const = default;
};
struct NodeStatus {
  std::string name;               // node name (topology.hostname is the host's own name)
  model::NodeTopology topology;
  std::string state;              // "UP", "DOWN", "DRAIN"
  model::Resources capacity;
  model::Resources allocated;
  std::vector<int64_t> gpu_milli_used;  // per GPU
  int64_t last_heartbeat = 0;
  std::string reason;             // why it is DRAIN: reported by the node, or an admin's drain
  std::vector<std::string> gpu_types;  // per GPU, as herd.toml's [gpu_types] types its model
  std::map<std::string, std::string> labels;  // herd.toml's [nodes.NAME] labels
  std::vector<std::string> pools;      // the pools it belongs to
  bool operator==(const NodeStatus&) const = default;
};
struct NodesReply {
  std::vector<NodeStatus> nodes;
  bool operator==(const NodesReply&) const = default;
};

// One queue of the tree as the last scheduling cycle saw it.
struct ProjectsRequest {
  bool operator==(const ProjectsRequest&) const = default;
};
// A queue's quota and use of one GPU type that some queue's quota names ("gpu.TYPE" in
// herd.toml(5)), in GPU thousandths: the part of its fair share and use on that type alone.
struct ProjectTypeStatus {
  std::string type;
  int64_t deserved = 0;
  int64_t limit = -1;  // -1 = unlimited
  int64_t fair_share = 0;
  int64_t allocated = 0;
  bool operator==(const ProjectTypeStatus&) const = default;
};
struct ProjectStatus {
  std::string name;
  std::string parent;             // "" for a top-level queue
  bool is_project = false;        // a leaf that holds jobs (else a department)
  model::Resources deserved;      // guaranteed quota
  model::Resources limit{-1, -1, -1};  // -1 = unlimited
  model::Resources fair_share;    // deserved plus its share of idle capacity, this cycle
  model::Resources allocated;     // held by its running jobs
  model::Resources pending_demand;  // asked for by its pending jobs
  int64_t running_jobs = 0;
  int64_t pending_jobs = 0;
  // Time-decayed fair share ([scheduler] fair_share_half_life): its recent use in GPU-seconds,
  // decayed; its configured over_quota_weight, and that weight with the usage counted (the one
  // the fair share above was divided by).
  double usage_gpu_seconds = 0;
  double over_quota_weight = 1;
  double effective_weight = 1;
  std::vector<ProjectTypeStatus> by_type;  // per GPU type some queue's quota names, by type
  // Likewise per node pool some queue's quota names ("pool.NAME"), by pool (`type` is the pool).
  std::vector<ProjectTypeStatus> by_pool;
  bool operator==(const ProjectStatus&) const = default;
};
struct ProjectsReply {
  std::vector<ProjectStatus> projects;
  bool operator==(const ProjectsReply&) const = default;
};

// herd admin: reconfigure, drain NODE, undrain NODE. Root or a configured admin only.
struct AdminRequest {
  std::string action;
  std::vector<std::string> args;
  bool operator==(const AdminRequest&) const = default;
};
struct AdminReply {
  std::string message;
  bool operator==(const AdminReply&) const = default;
};

// herd why JOB: why a job waits (or a summary of its run), as the last cycle saw it.
struct WhyRequest {
  model::JobId id = 0;
  bool operator==(const WhyRequest&) const = default;
};
// One line of a job's history (submitted, started on dgx01, preempted...), as herd-ctld stored it.
struct JobEventLine {
  int64_t time = 0;  // epoch seconds
  std::string what;
  bool operator==(const JobEventLine&) const = default;
};
struct WhyReply {
  model::Job job;
  std::string waits_for;          // pending: "quota", "resources", "reservation", "dependency",
                                  // "preemption", "hold", "begin time", "array limit", "node",
                                  // "scheduler"; "" when not pending
  int64_t position = 0;           // pending jobs of its project ahead of it (class, then submit)
  int64_t queue_length = 0;       // pending jobs of its project
  ProjectStatus project;          // its project's quota and the last cycle's share
  // Pending: the earliest time (epoch seconds) enough resources free up for it as running jobs
  // reach their time limits; 0: no estimate, for the reason in `estimate_note`.
  int64_t estimated_start = 0;
  std::string estimate_note;
  // The job's events, oldest first, for its owner and admins (others: none); the latest
  // kMaxWhyEvents.
  std::vector<JobEventLine> events = {};
  // The asker may act on the job (cancel, hold, release, its output): its owner or an admin.
  bool may_act = false;
  bool operator==(const WhyReply&) const = default;
};

inline constexpr size_t kMaxWhyEvents = 200;

// herd usage: GPU-hours and waits of jobs overlapping [since, until), grouped.
struct UsageRequest {
  int64_t since = 0;              // epoch seconds
  int64_t until = 0;              // epoch seconds; 0: now
  std::string by = "user";        // "user", "project", "department" or "type" (GPU type)
  bool operator==(const UsageRequest&) const = default;
};
struct UsageRow {
  std::string group;
  int64_t gpu_milli_seconds = 0;  // GPUs x seconds of run time inside the period, x1000
  int64_t jobs = 0;               // jobs that ran inside the period
  int64_t wait_p50_s = 0;         // start - submit, nearest rank
  int64_t wait_p90_s = 0;
  int64_t wait_p99_s = 0;
  int32_t gpu_util_pct = -1;      // average GPU utilization weighted by GPU-hours; -1: unmeasured
  int64_t preemptions = 0;        // times its jobs were preempted
  bool operator==(const UsageRow&) const = default;
};
struct UsageReply {
  int64_t since = 0;
  int64_t until = 0;
  std::string by;
  std::vector<UsageRow> rows;     // by group name
  bool operator==(const UsageReply&) const = default;
};

// herd-web's /metrics: aggregates only (counts by project, class, node, GPU type; no job's
// details), so any authenticated user may ask. Histograms and counters accumulate in herd-ctld
// from its start (StatsReply::start_time); a restart starts them again from zero.
struct StatsRequest {
  bool operator==(const StatsRequest&) const = default;
};
// Observations of one histogram: counts[i] of them at most bounds[i] (per bucket, not cumulative;
// the last count is those above every bound), and their sum, in the unit of the bounds.
struct Histogram {
  std::vector<int64_t> counts;
  int64_t sum = 0;
  bool operator==(const Histogram&) const = default;
};
struct JobCount {
  std::string state;      // JobStateName
  std::string project;
  std::string job_class;
  int64_t jobs = 0;
  bool operator==(const JobCount&) const = default;
};
// GPUs of one type on one node, as a whole (project "") or as held by one project's jobs.
struct GpuUse {
  std::string node;
  std::string gpu_type;
  std::string project;      // "": every GPU of the type on the node, whoever holds it
  int64_t gpus = 0;         // project "": how many GPUs of the type the node has
  int64_t allocated_milli = 0;  // held by running jobs (of the project), thousandths of a GPU
  // Utilization in thousandths of a GPU: each GPU's latest utilization times the share held
  // (project ""): the GPUs' whole utilization); GPUs that report none count as idle.
  int64_t busy_milli = 0;
  bool operator==(const GpuUse&) const = default;
};
struct NodeStateCount {
  std::string node;
  std::string state;        // "UP", "DOWN", "DRAIN" (as NodeStatus::state)
  bool operator==(const NodeStateCount&) const = default;
};
struct EvictionCount {
  std::string kind;         // "reclaim", "preempt", "consolidate"
  int64_t evictions = 0;
  // GPU time of the evicted runs, from their start to the eviction: work lost unless the job
  // checkpoints. GPUs x seconds x 1000.
  int64_t gpu_milli_seconds = 0;
  bool operator==(const EvictionCount&) const = default;
};
struct WaitHistogram {
  std::string project;
  std::string job_class;
  Histogram waits;          // seconds from submit to start, of the jobs that started
  bool operator==(const WaitHistogram&) const = default;
};
struct StatsReply {
  int64_t start_time = 0;   // when this herd-ctld started, epoch seconds
  int64_t rss_bytes = 0;    // herd-ctld's resident memory
  std::vector<JobCount> jobs;
  std::vector<GpuUse> gpus;
  std::vector<NodeStateCount> nodes;
  std::vector<int64_t> wait_bounds_s;
  std::vector<WaitHistogram> waits;
  std::vector<int64_t> cycle_bounds_us;
  Histogram cycles;         // scheduling cycles, microseconds
  std::vector<int64_t> lag_bounds_us;
  // How late the event loop came back to its poll (handling, cycles, a stalled disk), microseconds.
  Histogram loop_lag;
  std::vector<EvictionCount> evictions;
  int64_t submitted_jobs = 0;  // jobs submitted (each array member, each sweep point)
  bool operator==(const StatsReply&) const = default;
};

// herd history, herd-web's charts: a series of herd-ctld's own time series (ctld/history.h), kept
// in its database at three resolutions (every [history] interval, 10-minute and hourly averages).
// Public facts only (allocation and GPU utilization, as herd jobs/nodes/projects show them), so
// any authenticated user may ask for any series, a job's included.
inline constexpr int64_t kHistoryDefaultPoints = 500;
inline constexpr int64_t kHistoryMaxPoints = 2000;  // a larger max_points is served as this
struct HistoryRequest {
  std::string series;      // "cluster", "project", "node" or "job"
  std::string key;         // the project's or node's name, the job's id; "" for cluster
  int64_t from = 0;        // epoch seconds; 0: a day before `to`
  int64_t to = 0;          // epoch seconds, exclusive; 0: now
  int64_t max_points = 0;  // 0: kHistoryDefaultPoints; capped at kHistoryMaxPoints
  bool operator==(const HistoryRequest&) const = default;
};
// One point: the averages over [time, time + step_s) of the samples taken then.
struct HistoryPoint {
  int64_t time = 0;             // epoch seconds, start of its period
  int64_t samples = 0;          // how many samples it averages
  std::vector<int64_t> values;  // one per HistoryReply::fields
  bool operator==(const HistoryPoint&) const = default;
};
struct HistoryReply {
  std::string series;
  std::string key;
  int64_t from = 0;
  int64_t to = 0;
  int64_t step_s = 0;  // the resolution served: the tier chosen, or wider when points were merged
  // Names of the values, in order ("gpus_milli", "allocated_milli", "measured_milli",
  // "busy_milli", ...): GPUs in thousandths; busy_milli / measured_milli is the utilization of
  // the GPUs that reported any (ctld/history.h lists each series' fields).
  std::vector<std::string> fields;
  std::vector<HistoryPoint> points;  // oldest first, at most the max_points asked
  bool operator==(const HistoryReply&) const = default;
};

// herd run / attach / exec: where a running job's worker can be reached. Only its owner or an
// admin is told; herd-noded checks the same again on every session message.
struct SessionWhereRequest {
  model::JobId id = 0;
  int32_t worker = 0;
  bool operator==(const SessionWhereRequest&) const = default;
};
struct SessionWhereReply {
  std::string node;
  std::string endpoint;  // the node's session endpoint (RegisterRequest::session_endpoint)
  bool operator==(const SessionWhereReply&) const = default;
};

// A connection key (common/auth/connection_key.h): a client with many requests to send on one
// connection opens it with one MUNGE-signed request, then signs each request with the key.
struct ConnectionKeyRequest {
  std::string client_public;  // X25519 public key, 32 bytes
  bool operator==(const ConnectionKeyRequest&) const = default;
};
struct ConnectionKeyReply {
  std::string server_public;  // herd-ctld's X25519 public key for this connection, 32 bytes
  bool operator==(const ConnectionKeyReply&) const = default;
};

// ---- herd web: tokens that let herd-web act for a user (ctld/web_tokens.h) ----
// A token is 256 random bits, shown once; herd-ctld keeps only its SHA-256, in memory (a restart
// of herd-ctld ends every web session). A login token is used once, by herd-web, which swaps it
// for a session token; a session token lets herd-web act for its user until it expires or is
// revoked.
struct WebTokenRequest {
  // "login": a login token for the caller (`herd web`); "api": a session token for the caller,
  // for Authorization: Bearer (`herd web --token`); "revoke": every token of `user` (the
  // caller's own when "", another's for admins); "exchange": herd-web's user only, `token` (a
  // login token) swapped for a session token; "logout": revokes session `token`.
  std::string action;
  std::string token = {};
  std::string user = {};
  // login, api, exchange: the caller's throwaway X25519 public key (32 bytes, auth::SealKey):
  // the reply's token is sealed to it and never crosses the network in the clear. herd-ctld
  // refuses these actions without one.
  std::string public_key = {};
  bool operator==(const WebTokenRequest&) const = default;
};
struct WebTokenReply {
  std::string token;      // login, api, exchange: the new token (hex), sealed to public_key
  int64_t expires = 0;    // when it expires, epoch seconds
  std::string user;       // whose token it is
  int64_t revoked = 0;    // revoke, logout: how many tokens ended
  std::string url = {};   // login: herd-web's address ([web] url), without the token
  bool operator==(const WebTokenReply&) const = default;
};
// herd-web -> herd-ctld: the user request `type` with msgpack `body`, made for the holder of
// session token `token`. Taken only from herd-web's user ([web] user); herd-ctld answers it as
// if the token's user had sent the inner request (a wrong token: Code::kBadToken). Only what the
// REST API sends may be relayed (ctld::CheckRelayable).
struct WebRelay {
  std::string token;
  std::string type;
  std::string body;
  bool operator==(const WebRelay&) const = default;
};

// ---- herd (CLI) <-> herd-noded: an interactive session ----
// Every message from herd carries a MUNGE credential that herd-noded verifies; only the job's
// owner, root and admins may open a session, and only the uid that opened one may use it.
// The `data` fields are bytes of the session stream (common/proto/stream.h), which herd-noded
// relays without reading.

struct SessionOpen {
  model::JobId id = 0;
  int32_t worker = 0;
  bool exec = false;  // false: attach to the job's own session; true: herd exec (a new process)
  // The node herd-ctld named (SessionWhereReply::node). Covered by the credential, so a request
  // seen on the network cannot be replayed to another node (each node's munged keeps its own
  // replay cache) where the same job and worker run later.
  std::string node;
  // herd port-forward: > 0 opens a connection to 127.0.0.1:port in the job's network view, made
  // and relayed by a process running as the job's user, instead of a session (exec is false).
  int32_t port = 0;
  // With MUNGE: a fresh X25519 public key (as ConnectionKeyRequest's), covered by the
  // credential. herd-noded answers with its own, and the session's later messages on this
  // connection are signed with the key both derive (common/auth/connection_key.h) instead of a
  // MUNGE credential each. "" = none.
  std::string client_public;
  bool operator==(const SessionOpen&) const = default;
};
struct SessionOpened {
  uint64_t session = 0;
  std::string server_public;  // "" = no connection key: every message keeps its MUNGE credential
  bool operator==(const SessionOpened&) const = default;
};
// herd -> herd-noded: stream bytes, and how many output bytes herd has received so far (its
// window: herd-noded sends at most kSessionWindow bytes beyond it). An empty one keeps the
// session alive and is answered with a SessionOutput.
struct SessionInput {
  uint64_t session = 0;
  std::string data;
  int64_t received = 0;
  bool close = false;  // herd detaches
  bool operator==(const SessionInput&) const = default;
};
// herd-noded -> herd: stream bytes, how many input bytes the relay has taken so far (herd sends
// at most kSessionWindow beyond it), and whether the session is over.
struct SessionOutput {
  uint64_t session = 0;
  std::string data;
  int64_t taken = 0;
  bool closed = false;
  std::string error;  // why it closed, when not by the command's end
  bool operator==(const SessionOutput&) const = default;
};
inline constexpr int64_t kSessionWindow = 1 << 20;
// A session that hears nothing from herd this long is detached by herd-noded.
inline constexpr int kSessionIdleMs = 20'000;

// ---- herd-noded -> herd-ctld ----

struct JobReport {
  model::JobId id = 0;
  int32_t worker = 0;
  std::string state;              // "STARTING", "RUNNING", "SUSPENDED", "ENDED"
  int32_t exit_code = -1;
  std::string reason;             // "out of memory", "killed by signal 9", ...
  model::JobUsage usage;          // this worker's CPU and memory (final figures when ENDED)
  // Which run of the job (its restart_count when launched): a report of an earlier run never
  // touches the current one.
  int32_t run = 0;
  // ENDED before it ran through a fault of the node (its state directory is full), not of the
  // job: herd-ctld requeues the job instead of failing it.
  bool requeue = false;
  // A job with an interactive session (JobSpec::session): "attached" while a `herd` is
  // connected to it, else "detached"; "" for other jobs.
  std::string session = {};
  // A job with a session: milliseconds since herd last sent it input (keys, a resize, bytes to
  // a forwarded port), counted from when this herd-noded first saw the job; -1: unknown.
  int64_t input_idle_ms = -1;
  bool operator==(const JobReport&) const = default;
};

struct RegisterRequest {
  std::string node;
  model::NodeTopology topology;
  std::vector<JobReport> jobs;    // everything it is running or has not yet reported ended
  // Drawn once per herd-noded process: a Register with the instance herd-ctld already knows is
  // a resent copy (its jobs stay), a new one is a restart. 0: unknown (every Register a restart).
  uint64_t instance = 0;
  // Where `herd` reaches this node's sessions (attach, exec): "tcp://HOST:PORT"; "" = none.
  std::string session_endpoint = {};
  bool operator==(const RegisterRequest&) const = default;
};
struct RegisterReply {
  int32_t heartbeat_interval_ms = 1000;
  bool operator==(const RegisterReply&) const = default;
};

// One GPU's activity at heartbeat time (-1: unknown).
struct GpuMetric {
  int32_t index = 0;
  int32_t utilization_pct = -1;
  int64_t memory_used_mib = -1;
  bool operator==(const GpuMetric&) const = default;
};

struct Heartbeat {
  std::string node;
  std::vector<JobReport> jobs;
  std::vector<GpuMetric> gpus;    // empty when the node has no metrics source
  // Why the node can take no new job now ("state directory /var/lib/herd-noded is full: ..."),
  // "" when it can. herd-ctld shows the node DRAIN with this reason until a heartbeat clears it.
  std::string unavailable;
  bool operator==(const Heartbeat&) const = default;
};

// A job started or ended on a node; acknowledged by EventAck so none is lost.
struct JobEvent {
  std::string node;
  JobReport report;
  bool operator==(const JobEvent&) const = default;
};
struct EventAck {
  model::JobId id = 0;
  int32_t worker = 0;
  int32_t run = 0;
  bool operator==(const EventAck&) const = default;
};

// ---- herd-ctld -> herd-noded ----

struct LaunchCommand {
  model::Job job;                 // includes spec and placement
  int32_t worker = 0;             // which placement entry this node runs
  std::vector<std::pair<std::string, std::string>> env;  // HERD_* and gang variables
  bool operator==(const LaunchCommand&) const = default;
};
struct SignalCommand {
  model::JobId id = 0;
  std::string action;             // "kill", "suspend", "resume"
  int32_t grace_ms = 0;           // for kill: SIGTERM, wait, then SIGKILL
  std::string reason;             // recorded as the end reason
  int32_t run = 0;                // only the workers of this run of the job
  bool operator==(const SignalCommand&) const = default;
};
// Asks a node for log bytes; answered by LogsData carrying the same token.
struct LogsFetch {
  uint64_t token = 0;
  LogsRequest request;
  int32_t run = 0;                // the run whose log is read
  bool operator==(const LogsFetch&) const = default;
};
struct LogsData {
  uint64_t token = 0;
  LogsReply reply;
  std::string error;
  bool operator==(const LogsData&) const = default;
};

}  // namespace herd::proto
