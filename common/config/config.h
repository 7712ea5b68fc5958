// herd::config::Config: herd.toml parsed and validated, with every default filled in.
// Built by ParseConfig/LoadConfig (herd-ctld, herd-noded and the CLI's --print-config); the only
// code in herd that reads TOML. Every error names file:line:column and says what is expected.
// Thread-safety: plain value types; the functions are pure apart from LoadConfig's file read.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/model/fleet.h"
#include "common/model/placement.h"
#include "common/model/resources.h"
#include "common/util/status.h"

namespace herd::config {

// A resource component of a limit that is not capped.
inline constexpr int64_t kUnlimited = -1;
// The largest max_message_size: the protocol's own limit (proto::kMaxMessageBytes, asserted
// equal where both are known, in herd-ctld).
inline constexpr int64_t kMaxMessageMib = 16;

struct ControllerConfig {
  std::vector<std::string> listen = {"tcp://127.0.0.1:6817"};  // tcp:// or ipc:// endpoints
  std::string state_dir = "/var/lib/herd";
  std::string log_file;  // "" = stderr
  // The user herd-ctld runs as ("" = whoever starts it). Started as root, herd-ctld becomes this
  // user; herd-noded accepts herd-ctld's messages signed by root, itself or this user.
  std::string user;
  bool allow_root_jobs = false;  // jobs run as their submitter; root's only when allowed
  int64_t jobs_page_size = 5000;  // most jobs one reply lists; herd asks page after page
  // Others see a job's public facts; with this, not its command, arguments or sweep values either
  // (its environment and output are never shown to others).
  bool private_commands = false;
  // Limits on what one user may ask of herd-ctld (checked at submit; 0 is never a valid value).
  int64_t max_name_bytes = 256;            // the job's name
  int64_t max_arg_bytes = 128 << 10;       // each argument of the command
  int64_t max_command_bytes = 1 << 20;     // the command and its arguments together
  int64_t max_env_entries = 1024;          // --env variables
  int64_t max_env_bytes = 256 << 10;       // --env names and values together
  int64_t max_spec_bytes = 1 << 20;        // every text of the job's spec together
  int64_t max_submit_bytes = 64 << 20;     // one submission: array members x spec bytes
  int64_t max_pending_per_user = 10'000;   // PENDING jobs one user may have at once
  // Largest message herd-ctld and herd-noded accept (at most the protocol's 16 MiB, which a
  // page of jobs_page_size jobs stays within): a peer declaring more is dropped at once.
  int64_t max_message_mib = kMaxMessageMib;
  // A peer that completes no message for this long is dropped with its partial message.
  int64_t message_timeout_ms = 30'000;
  // Connections herd-ctld holds at once (nodes, CLI calls, and any peer before authentication).
  int64_t max_connections = 16384;
  // A finished job leaves herd-ctld's memory this long after its end (Slurm's MinJobAge); the
  // database still answers for it. 0 = at the next sweep.
  int64_t min_job_age_s = 600;
  // Job records (with their history) and node-side logs of jobs that ended longer ago than this are
  // deleted, their accounting kept as daily aggregates; 0 = kept forever.
  int64_t job_retention_s = 0;
  bool operator==(const ControllerConfig&) const = default;
};

struct AuthConfig {
  std::string method = "munge";  // munge | none (none: loopback and ipc endpoints only)
  std::string munge_socket;      // "" = MUNGE's default socket
  bool operator==(const AuthConfig&) const = default;
};

struct SchedulerConfig {
  // herd | bestfit | fgd | random | spread. It, reserve_after_s and reclaim_backoff_s default to
  // what the scheduler core's sched::Policy does: one constant each, in common/model/placement.h.
  std::string placement = model::kPlacementPolicies[model::kDefaultPlacement].name;
  int64_t preempt_grace_s = 30;                            // SIGTERM to SIGKILL for a preempted job
  int64_t reserve_after_s = model::kDefaultReserveAfterS;  // a pending job reserves after this
  // A reclaimed job runs beyond its project's deserved quota again after this (sched::Policy).
  int64_t reclaim_backoff_s = model::kDefaultReclaimBackoffS;
  int64_t cycle_interval_ms = 1000;
  int64_t heartbeat_interval_ms = 2000;
  int64_t node_timeout_s = 30;  // a node silent this long is down
  int64_t kill_grace_s = 10;    // SIGTERM to SIGKILL for a cancelled or timed-out job
  // Half-life of each queue's recorded GPU use, which lowers its share of idle capacity
  // (ctld/sched/usage.h); 0 = off: the surplus goes by over_quota_weight alone.
  int64_t fair_share_half_life_s = 7 * 86400;
  bool operator==(const SchedulerConfig&) const = default;
};

// A priority class. Built-ins (model::kBuiltinClasses: interactive, train, inference) are always
// present unless overridden key by key. within_quota_only defaults to !preemptible.
struct ClassConfig {
  std::string name;
  int priority = 0;  // higher is scheduled first and may preempt lower
  bool preemptible = false;
  int64_t max_time_s = 0;      // 0 = no limit
  int64_t min_runtime_s = 0;   // never preempted sooner
  int64_t idle_timeout_s = 0;  // 0 = never
  bool within_quota_only = true;
  // A job with a session (herd run, --pty) and no GPU whose herd sent it no input this long
  // (keys, resizes, forwarded bytes; detached counts as none) is stopped. 0 = never.
  int64_t idle_input_timeout_s = 0;
  bool operator==(const ClassConfig&) const = default;
};

// A node of the queue tree: a department ([departments.X]) or a project ([projects.X]).
struct QueueConfig {
  std::string name;
  std::string parent;  // "" = root; a department's name otherwise
  bool is_project = false;
  // A department's component left out of its `deserved` is the sum of its children's.
  model::Resources deserved;
  std::optional<model::Resources> limit;  // nullopt = none; kUnlimited for uncapped components
  double over_quota_weight = 1;
  // Quotas per GPU type ("gpu.TYPE" keys of deserved, limit and over_quota_weight). A
  // department's typed deserved left out is the sum of its children's.
  model::GpuTypeQuotas by_type;
  // Quotas per node pool ("pool.NAME" keys, likewise): they count only the GPUs of that pool's
  // nodes. Pools named so share no node (checked at load).
  model::GpuTypeQuotas by_pool;
  // Resolved: empty in the file means the parent's list. "*" = anyone; empty = nobody.
  std::vector<std::string> members;
  int64_t min_runtime_s = -1;  // -1 = the parent's, else the job's class's
  bool operator==(const QueueConfig&) const = default;
};

// [node]: what every herd-noded applies to its jobs and its state directory.
struct NodeDaemonConfig {
  int64_t max_log_mib = 1024;  // a job's log keeps this much of its output, then a note; 0 = no cap
  // Below this much free space in its state directory a node takes no new job (shown DRAIN with
  // the reason) until space returns; a write that fails for lack of space does the same.
  int64_t min_free_space_mib = 64;
  // A job not started this long after herd-noded got it (its image still unpacking, say) is
  // killed and reported as not started.
  int64_t start_timeout_s = 600;
  // The most a container image may take once unpacked (each file, and the whole as the disk's
  // free space shows it); 0 = no bound.
  int64_t max_image_mib = 64 << 10;
  // Where herd-noded listens for interactive sessions (herd run, attach, exec); port 0 picks a
  // free one, reported to herd-ctld; "" = no sessions on this node.
  std::string session_listen = "tcp://0.0.0.0:0";
  bool operator==(const NodeDaemonConfig&) const = default;
};

// [web]: herd-web, the HTTP daemon beside herd-ctld (herd-web(8)).
struct WebConfig {
  std::string listen = "127.0.0.1:9180";  // HOST:PORT it serves on
  std::string metrics_listen;  // HOST:PORT that serves /metrics alone, open to all; "" = none
  // The user herd-web runs as: started as root it becomes this user; root itself is refused.
  std::string user;
  std::string log_file;  // "" = stderr
  // The address `herd web` prints (a browser's way to herd-web); "" = http(s)://listen.
  std::string url;
  int64_t login_token_s = 600;     // a login token must be used within this
  int64_t session_s = 12 * 3600;   // a session (browser or API token) lasts this long
  // PEM files for HTTPS on `listen`; both or neither ("" = plain HTTP).
  std::string tls_cert;
  std::string tls_key;
  // The URL `herd web` prints, without its token: `url`, else from `listen` and TLS.
  std::string BaseUrl() const;
  bool operator==(const WebConfig&) const = default;
};

// [history]: herd-ctld's own time series (ctld/history.h): a sample every `interval_s`, kept as
// taken for `raw_retention_s`, as 10-minute averages for `ten_minute_retention_s` and as hourly
// averages for `hourly_retention_s`.
struct HistoryConfig {
  int64_t interval_s = 60;  // 0 = no history
  int64_t raw_retention_s = 2 * 86400;
  int64_t ten_minute_retention_s = 30 * 86400;
  int64_t hourly_retention_s = 365 * 86400;
  bool operator==(const HistoryConfig&) const = default;
};

struct NodeConfig {
  std::string name;
  std::map<std::string, std::string> labels;
  bool operator==(const NodeConfig&) const = default;
};

// [pools.NAME]: the nodes whose name matches one of `nodes` (Slurm host lists such as
// ws[01-04], or patterns such as dgx*) and that carry every one of `labels`. A job asks for a pool
// with --pool; a pool not configured selects the nodes labelled pool = NAME.
struct PoolConfig {
  std::string name;
  std::vector<std::string> nodes;  // host lists expanded; patterns as they are; empty: any name
  std::map<std::string, std::string> labels;
  bool operator==(const PoolConfig&) const = default;
};

struct Config {
  ControllerConfig controller;
  AuthConfig auth;
  SchedulerConfig scheduler;
  std::map<std::string, ClassConfig> classes;  // keyed by name; built-ins always present
  // Departments then projects, parents before children. Without any configured queue, one
  // project "default" (members "*", nothing deserved, no limit).
  std::vector<QueueConfig> queues;
  std::map<std::string, NodeConfig> nodes;
  // [gpu_types]: type -> GPU model names of that type; models not listed get
  // model::DefaultGpuType (common/model/fleet.h).
  std::map<std::string, std::vector<std::string>> gpu_types;
  std::map<std::string, PoolConfig> pools;  // [pools.NAME], by name
  NodeDaemonConfig node;
  WebConfig web;
  HistoryConfig history;
  std::vector<std::string> admins;
  std::vector<std::string> volume_prefixes;  // [containers] allowed_volumes
  // Project for jobs submitted without --project; "" when none (the key was left out and no
  // project is named "default").
  std::string default_project = "default";
  std::vector<std::string> warnings;  // "file:line:col: ..." for ignored unknown keys

  // The queue named `name`, or nullptr.
  const QueueConfig* FindQueue(std::string_view name) const;
  // The class named `name`, or nullptr.
  const ClassConfig* FindClass(std::string_view name) const;
  // The labels of node `name` ([nodes.NAME]); empty when it has none.
  const std::map<std::string, std::string>& LabelsOf(const std::string& name) const;
  // The names of the pools node `name` belongs to: configured pools that select it, and the
  // value of its label `pool` when no configured pool has that name.
  std::vector<std::string> PoolsOf(const std::string& name) const;
  // Which nodes pool `pool` selects: [pools.POOL], else the nodes labelled pool = POOL.
  model::NodeSelector PoolSelector(const std::string& pool) const;
  // Whether node `name` is in pool `pool` (configured, else by its label pool = POOL).
  bool InPool(const std::string& pool, const std::string& name) const;
  // The pools some queue's quota names ("pool.NAME" keys), sorted.
  std::vector<std::string> QuotaPools() const;
  // The quota pool node `name` is in (of QuotaPools(); they share no node), "" when none.
  std::string QuotaPoolOf(const std::string& name) const;
  // True when `user` may submit to `project` (listed, or the project admits "*").
  bool IsMember(std::string_view project, std::string_view user) const;
};

// Parses and validates TOML `text`; `source_name` prefixes every message ("herd.toml:12:5: ...").
Result<Config> ParseConfig(std::string_view text, std::string_view source_name);
// Reads and parses the file at `path`. A missing file is kNotFound "cannot read PATH: ...".
Result<Config> LoadConfig(const std::string& path);

// A "HOST:PORT" listen address ([web] listen) as host and port; an IPv6 host is bracketed
// ("[::1]:9180") and returned without brackets. Port 0 is refused.
Result<std::pair<std::string, int>> SplitHostPort(std::string_view address);

// Only what a client needs ([controller] listen and [auth]), so that `herd` keeps working while the rest
// of the file has an error that herd-ctld refuses (and reports) on reload.
Result<Config> LoadClientConfig(const std::string& path);

// Merges TOML `extra` over `base` table by table (extra wins key by key, tables merge
// recursively, arrays are replaced) and returns the TOML text. Names are used in errors.
Result<std::string> MergeToml(std::string_view base, std::string_view base_name,
                              std::string_view extra, std::string_view extra_name);

// How a client on this host reaches the listen address `listen`: a wildcard host (tcp://0.0.0.0:P,
// tcp://*:P) becomes tcp://127.0.0.1:P; any other endpoint is returned as it is.
std::string LocalEndpoint(const std::string& listen);

// Canonical TOML of the effective config (every key explicit); ParseConfig reads it back equal.
std::string ToToml(const Config& config);

}  // namespace herd::config
