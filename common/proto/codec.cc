#include "common/proto/codec.h"

#include <msgpack.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <concepts>
#include <functional>
#include <map>
#include <memory>
#include <type_traits>
#include <utility>

namespace herd::proto {
namespace {

using model::JobState;
using StringPair = std::pair<std::string, std::string>;
using Packer = msgpack::packer<msgpack::sbuffer>;

// Schema<T> lists the fields of a struct once; encoding and decoding both walk that list,
// so a field cannot be written and forgotten on read. Structs travel as maps keyed by field
// name: a newer peer may add keys (ignored here), an older one may omit them (defaults kept).
template <typename T>
struct Schema;

#define HERD_SCHEMA(Type, wire_name, ...)            \
  template <>                                        \
  struct Schema<Type> {                              \
    static constexpr const char* kName = wire_name;  \
    template <typename V, typename X>                \
    static void Visit(V&& f, X& x) {                 \
      (void)f;                                       \
      (void)x;                                       \
      __VA_ARGS__                                    \
    }                                                \
  };
#define F(member) f(#member, x.member);

HERD_SCHEMA(model::Resources, nullptr, F(gpu_milli) F(cpus) F(memory_mib))
HERD_SCHEMA(model::JobSpec, nullptr,
            F(name) F(argv) F(env) F(cwd) F(project) F(job_class) F(workers) F(gpu_milli)
                F(gpu_memory_mib) F(cpus) F(memory_mib) F(time_limit_s) F(image) F(spread)
                    F(volumes) F(after) F(hold) F(admin_hold) F(begin_time) F(array_id) F(array_index)
                        F(array_limit) F(sweep) F(stop_after_success) F(gpu_memory_limit_mib)
                            F(script) F(gpu_types) F(pool) F(constraints) F(nodelist)
                                F(exclude) F(session) F(output) F(error)
                                    F(output_append))
HERD_SCHEMA(model::WorkerPlacement, nullptr,
            F(node) F(gpus) F(gpu_milli_each) F(cores) F(memory_mib) F(nic))
HERD_SCHEMA(model::JobUsage, nullptr, F(cpu_ms) F(memory_bytes) F(memory_peak_bytes))
HERD_SCHEMA(model::Job, nullptr,
            F(id) F(spec) F(user) F(uid) F(gid) F(state) F(reason) F(submit_time) F(start_time)
                F(end_time) F(exit_code) F(restart_count) F(placement) F(preemptions)
                    F(gpu_util_sum) F(gpu_sampled_ms) F(usage) F(session_state) F(reason_code))
HERD_SCHEMA(model::GpuInfo, nullptr,
            F(index) F(model) F(memory_mib) F(pci_bus_id) F(numa) F(pcie_switch) F(nic) F(uuid))
HERD_SCHEMA(model::NicInfo, nullptr, F(name) F(pci_bus_id) F(numa) F(pcie_switch))
HERD_SCHEMA(model::NumaInfo, nullptr, F(id) F(cores) F(memory_mib))
HERD_SCHEMA(model::NodeTopology, nullptr,
            F(hostname) F(sockets) F(numa) F(gpus) F(nics) F(memory_mib) F(emulated) F(source))
HERD_SCHEMA(StringPair, nullptr, F(first) F(second))

HERD_SCHEMA(ErrorReply, "error", F(code) F(message))
HERD_SCHEMA(SubmitRequest, "submit", F(spec) F(array_indexes) F(sweep))
HERD_SCHEMA(SubmitReply, "submit_reply", F(id))
HERD_SCHEMA(JobsRequest, "jobs", F(ids) F(user) F(states) F(all) F(limit) F(after_id) F(brief) F(array))
HERD_SCHEMA(JobsReply, "jobs_reply", F(jobs) F(more))
HERD_SCHEMA(JobActionRequest, "job_action",
            F(action) F(ids) F(members) F(user) F(states) F(name) F(project))
HERD_SCHEMA(UpdateJobRequest, "update_job",
            F(ids) F(members) F(time_limit_s) F(name) F(project) F(hold))
HERD_SCHEMA(JobActionResult, nullptr, F(id) F(ok) F(message) F(array_jobs))
HERD_SCHEMA(JobActionReply, "job_action_reply", F(results))
HERD_SCHEMA(LogsRequest, "logs", F(id) F(worker) F(offset) F(max_bytes) F(stream) F(tail))
HERD_SCHEMA(LogsReply, "logs_reply", F(data) F(next_offset) F(eof))
HERD_SCHEMA(NodesRequest, "nodes")
HERD_SCHEMA(NodeStatus, nullptr,
            F(name) F(topology) F(state) F(capacity) F(allocated) F(gpu_milli_used) F(last_heartbeat)
            F(reason) F(gpu_types) F(labels) F(pools))
HERD_SCHEMA(NodesReply, "nodes_reply", F(nodes))
HERD_SCHEMA(ProjectsRequest, "projects")
HERD_SCHEMA(ProjectTypeStatus, nullptr, F(type) F(deserved) F(limit) F(fair_share) F(allocated))
HERD_SCHEMA(ProjectStatus, nullptr,
            F(name) F(parent) F(is_project) F(deserved) F(limit) F(fair_share) F(allocated)
                F(pending_demand) F(running_jobs) F(pending_jobs) F(usage_gpu_seconds)
                    F(over_quota_weight) F(effective_weight) F(by_type) F(by_pool))
HERD_SCHEMA(ProjectsReply, "projects_reply", F(projects))
HERD_SCHEMA(AdminRequest, "admin", F(action) F(args))
HERD_SCHEMA(AdminReply, "admin_reply", F(message))
HERD_SCHEMA(WhyRequest, "why", F(id))
HERD_SCHEMA(JobEventLine, nullptr, F(time) F(what))
HERD_SCHEMA(WhyReply, "why_reply", F(job) F(waits_for) F(position) F(queue_length) F(project)
                                       F(estimated_start) F(estimate_note) F(events)
                                       F(may_act))
HERD_SCHEMA(UsageRequest, "usage", F(since) F(until) F(by))
HERD_SCHEMA(UsageRow, nullptr,
            F(group) F(gpu_milli_seconds) F(jobs) F(wait_p50_s) F(wait_p90_s) F(wait_p99_s)
                F(gpu_util_pct) F(preemptions))
HERD_SCHEMA(UsageReply, "usage_reply", F(since) F(until) F(by) F(rows))
HERD_SCHEMA(StatsRequest, "stats")
HERD_SCHEMA(Histogram, nullptr, F(counts) F(sum))
HERD_SCHEMA(JobCount, nullptr, F(state) F(project) F(job_class) F(jobs))
HERD_SCHEMA(GpuUse, nullptr,
            F(node) F(gpu_type) F(project) F(gpus) F(allocated_milli) F(busy_milli))
HERD_SCHEMA(NodeStateCount, nullptr, F(node) F(state))
HERD_SCHEMA(EvictionCount, nullptr, F(kind) F(evictions) F(gpu_milli_seconds))
HERD_SCHEMA(WaitHistogram, nullptr, F(project) F(job_class) F(waits))
HERD_SCHEMA(StatsReply, "stats_reply",
            F(start_time) F(rss_bytes) F(jobs) F(gpus) F(nodes) F(wait_bounds_s) F(waits)
                F(cycle_bounds_us) F(cycles) F(lag_bounds_us) F(loop_lag) F(evictions)
                    F(submitted_jobs))
HERD_SCHEMA(JobReport, nullptr,
            F(id) F(worker) F(state) F(exit_code) F(reason) F(usage) F(run) F(requeue) F(session)
            F(input_idle_ms))
HERD_SCHEMA(RegisterRequest, "register", F(node) F(topology) F(jobs) F(instance) F(session_endpoint))
HERD_SCHEMA(RegisterReply, "register_reply", F(heartbeat_interval_ms))
HERD_SCHEMA(GpuMetric, nullptr, F(index) F(utilization_pct) F(memory_used_mib))
HERD_SCHEMA(Heartbeat, "heartbeat", F(node) F(jobs) F(gpus) F(unavailable))
HERD_SCHEMA(JobEvent, "job_event", F(node) F(report))
HERD_SCHEMA(EventAck, "event_ack", F(id) F(worker) F(run))
HERD_SCHEMA(LaunchCommand, "launch", F(job) F(worker) F(env))
HERD_SCHEMA(SignalCommand, "signal", F(id) F(action) F(grace_ms) F(reason) F(run))
HERD_SCHEMA(LogsFetch, "logs_fetch", F(token) F(request) F(run))
HERD_SCHEMA(LogsData, "logs_data", F(token) F(reply) F(error))
HERD_SCHEMA(HistoryRequest, "history", F(series) F(key) F(from) F(to) F(max_points))
HERD_SCHEMA(HistoryPoint, nullptr, F(time) F(samples) F(values))
HERD_SCHEMA(HistoryReply, "history_reply",
            F(series) F(key) F(from) F(to) F(step_s) F(fields) F(points))
HERD_SCHEMA(SessionWhereRequest, "session_where", F(id) F(worker))
HERD_SCHEMA(SessionWhereReply, "session_where_reply", F(node) F(endpoint))
HERD_SCHEMA(ConnectionKeyRequest, "connection_key", F(client_public))
HERD_SCHEMA(ConnectionKeyReply, "connection_key_reply", F(server_public))
HERD_SCHEMA(SessionOpen, "session_open", F(id) F(worker) F(exec) F(node) F(port) F(client_public))
HERD_SCHEMA(SessionOpened, "session_opened", F(session) F(server_public))
HERD_SCHEMA(SessionInput, "session_input", F(session) F(data) F(received) F(close))
HERD_SCHEMA(SessionOutput, "session_output", F(session) F(data) F(taken) F(closed) F(error))
HERD_SCHEMA(WebTokenRequest, "web_token", F(action) F(token) F(user) F(public_key))
HERD_SCHEMA(WebTokenReply, "web_token_reply", F(token) F(expires) F(user) F(revoked) F(url))
HERD_SCHEMA(WebRelay, "web_relay", F(token) F(type) F(body))
HERD_SCHEMA(Envelope, nullptr, F(v) F(type) F(id) F(cred) F(body))

#undef F
#undef HERD_SCHEMA

template <typename T>
concept HasSchema = requires { Schema<T>::kName; };
template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};
template <typename T>
concept Integer = std::integral<T> && !std::same_as<T, bool>;

// ---- encoding ----

// A field name, packed without making a std::string of it.
void PutKey(Packer& pk, std::string_view name) {
  pk.pack_str(static_cast<uint32_t>(name.size()));
  pk.pack_str_body(name.data(), static_cast<uint32_t>(name.size()));
}

template <typename T>
void Put(Packer& pk, const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    pk.pack_str(static_cast<uint32_t>(v.size()));
    pk.pack_str_body(v.data(), static_cast<uint32_t>(v.size()));
  } else if constexpr (std::is_same_v<T, bool> || Integer<T>) {
    pk.pack(v);
  } else if constexpr (std::is_same_v<T, double>) {
    pk.pack_double(v);
  } else if constexpr (std::is_same_v<T, JobState>) {
    Put(pk, std::string(model::JobStateName(v)));
  } else if constexpr (IsVector<T>::value) {
    pk.pack_array(static_cast<uint32_t>(v.size()));
    for (const auto& item : v) Put(pk, item);
  } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
    pk.pack_map(static_cast<uint32_t>(v.size()));
    for (const auto& [key, value] : v) {
      Put(pk, key);
      Put(pk, value);
    }
  } else {
    static_assert(HasSchema<T>, "no Schema for this type");
    uint32_t n = 0;
    Schema<T>::Visit([&](const char*, const auto&) { ++n; }, v);
    pk.pack_map(n);
    Schema<T>::Visit(
        [&](const char* name, const auto& field) {
          PutKey(pk, name);
          Put(pk, field);
        },
        v);
  }
}

// A brief job (JobsRequest::brief) leaves these fields out; the decoder keeps their defaults.
bool LeftOutOfBrief(std::string_view field) {
  for (std::string_view heavy : {"argv", "env", "script", "cwd", "image", "volumes", "after", "sweep",
                                 "gpus", "cores"}) {
    if (field == heavy) return true;
  }
  return false;
}

// Put of a Job, its spec or a placement, leaving out the fields LeftOutOfBrief names and those
// that hold their default value (the decoder keeps defaults): a pending job is half defaults.
template <typename T>
void PutBrief(Packer& pk, const T& v) {
  // Per field, by position: heavy, or a test of whether it holds its default. Once per type.
  struct FieldInfo {
    bool heavy = false;
    std::function<bool(const void*)> is_default;
  };
  static const std::vector<FieldInfo> fields = [] {
    std::vector<FieldInfo> out;
    const T sample{};
    Schema<T>::Visit(
        [&](const char* name, const auto& d) {
          using Field = std::decay_t<decltype(d)>;
          out.push_back({LeftOutOfBrief(name),
                         [d](const void* f) { return *static_cast<const Field*>(f) == d; }});
        },
        sample);
    return out;
  }();
  uint64_t keep = 0;  // bit i: field i is written (no schema here has more than 64 fields)
  size_t i = 0;
  Schema<T>::Visit(
      [&](const char*, const auto& field) {
        if (!fields[i].heavy && !fields[i].is_default(&field)) keep |= uint64_t{1} << i;
        ++i;
      },
      v);
  pk.pack_map(static_cast<uint32_t>(std::popcount(keep)));
  i = 0;
  Schema<T>::Visit(
      [&](const char* name, const auto& field) {
        using Field = std::decay_t<decltype(field)>;
        if (((keep >> i++) & 1) == 0) return;
        PutKey(pk, name);
        if constexpr (std::is_same_v<Field, model::JobSpec>) {
          PutBrief(pk, field);
        } else if constexpr (std::is_same_v<Field, std::vector<model::WorkerPlacement>>) {
          pk.pack_array(static_cast<uint32_t>(field.size()));
          for (const auto& p : field) PutBrief(pk, p);
        } else {
          Put(pk, field);
        }
      },
      v);
}

// ---- decoding ----

// Where in the message a value sits, built as a chain on the stack and only turned into text
// when there is an error to report.
struct Path {
  const Path* parent = nullptr;
  std::string_view name;  // field name, or empty for an array element
  int64_t index = -1;
};

std::string PathText(const Path& p) {
  std::string s = p.parent ? PathText(*p.parent) : "";
  if (p.index >= 0) return s + "[" + std::to_string(p.index) + "]";
  if (p.name.empty()) return s;
  return s.empty() ? std::string(p.name) : s + "." + std::string(p.name);
}

const char* KindName(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "a boolean";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER: return "an integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return "a float";
    case msgpack::type::STR: return "a string";
    case msgpack::type::BIN: return "binary data";
    case msgpack::type::ARRAY: return "an array";
    case msgpack::type::MAP: return "a map";
    default: return "an extension";
  }
}

Status Bad(const Path& p, const std::string& what) {
  std::string where = PathText(p);
  return Invalid("malformed message: " + (where.empty() ? "body" : "field '" + where + "'") + " " +
                 what);
}
Status WrongKind(const Path& p, const char* expected, const msgpack::object& o) {
  return Bad(p, std::string("should be ") + expected + ", got " + KindName(o));
}

template <typename T>
Status Get(const msgpack::object& o, T& out, const Path& p) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (o.type == msgpack::type::STR) {
      out.assign(o.via.str.ptr, o.via.str.size);
    } else if (o.type == msgpack::type::BIN) {
      out.assign(o.via.bin.ptr, o.via.bin.size);
    } else {
      return WrongKind(p, "a string", o);
    }
  } else if constexpr (std::is_same_v<T, bool>) {
    if (o.type != msgpack::type::BOOLEAN) return WrongKind(p, "a boolean", o);
    out = o.via.boolean;
  } else if constexpr (Integer<T>) {
    bool fits;
    if (o.type == msgpack::type::POSITIVE_INTEGER) {
      fits = std::in_range<T>(o.via.u64);
      if (fits) out = static_cast<T>(o.via.u64);
    } else if (o.type == msgpack::type::NEGATIVE_INTEGER) {
      fits = std::in_range<T>(o.via.i64);
      if (fits) out = static_cast<T>(o.via.i64);
    } else {
      return WrongKind(p, "an integer", o);
    }
    if (!fits) return Bad(p, "is out of range");
  } else if constexpr (std::is_same_v<T, double>) {
    // A whole number may come packed as an integer; NaN and infinities are refused.
    if (o.type == msgpack::type::FLOAT64 || o.type == msgpack::type::FLOAT32) {
      out = o.via.f64;
    } else if (o.type == msgpack::type::POSITIVE_INTEGER) {
      out = static_cast<double>(o.via.u64);
    } else if (o.type == msgpack::type::NEGATIVE_INTEGER) {
      out = static_cast<double>(o.via.i64);
    } else {
      return WrongKind(p, "a number", o);
    }
    if (!std::isfinite(out)) return Bad(p, "is not a finite number");
  } else if constexpr (std::is_same_v<T, JobState>) {
    std::string name;
    HERD_RETURN_IF_ERROR(Get(o, name, p));
    auto state = model::ParseJobState(name);
    if (!state) return Bad(p, "has unknown job state '" + name.substr(0, 64) + "'");
    out = *state;
  } else if constexpr (IsVector<T>::value) {
    if (o.type != msgpack::type::ARRAY) return WrongKind(p, "an array", o);
    out.clear();
    out.resize(o.via.array.size);
    for (uint32_t i = 0; i < o.via.array.size; ++i) {
      HERD_RETURN_IF_ERROR(Get(o.via.array.ptr[i], out[i], Path{&p, {}, i}));
    }
  } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
    if (o.type != msgpack::type::MAP) return WrongKind(p, "a map", o);
    out.clear();
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      std::string key, value;
      HERD_RETURN_IF_ERROR(Get(o.via.map.ptr[i].key, key, p));
      HERD_RETURN_IF_ERROR(Get(o.via.map.ptr[i].val, value, Path{&p, key}));
      out[std::move(key)] = std::move(value);
    }
  } else {
    static_assert(HasSchema<T>, "no Schema for this type");
    if (o.type != msgpack::type::MAP) return WrongKind(p, "a map", o);
    // herd writes a struct's keys in schema order: one walk of the schema takes them as they come.
    // Whatever it leaves (a newer peer's keys, another order) is looked up key by key below, so a
    // map decodes the same whatever its order; for a duplicate key, the last one wins.
    uint32_t next = 0;
    Status status;
    Schema<T>::Visit(
        [&](const char* name, auto& field) {
          if (!status.ok() || next == o.via.map.size) return;
          const msgpack::object_kv& kv = o.via.map.ptr[next];
          if (kv.key.type != msgpack::type::STR) return;
          std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
          if (!key.empty() && key[0] == name[0] && key == name) {
            status = Get(kv.val, field, Path{&p, name});
            ++next;
          }
        },
        out);
    HERD_RETURN_IF_ERROR(status);
    for (uint32_t i = next; i < o.via.map.size; ++i) {
      const msgpack::object_kv& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) return Bad(p, "has a key that is not a string");
      std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
      Status status;
      Schema<T>::Visit(
          [&](const char* name, auto& field) {
            // The first letter rules out most fields without a strlen.
            if (status.ok() && !key.empty() && key[0] == name[0] && key == name) {
              status = Get(kv.val, field, Path{&p, name});
            }
          },
          out);
      HERD_RETURN_IF_ERROR(status);
    }
  }
  return Status::Ok();
}

// Strings and binary data in the object tree point into the bytes instead of being copied into
// its zone (a listing of jobs is mostly strings): every caller reads the tree while the bytes live.
bool ReferToBytes(msgpack::type::object_type, std::size_t, void*) { return true; }

// Parses `bytes` into a msgpack object tree within the protocol's limits. Containers are
// allocated by their declared size before their items are read, so no container may declare
// more items than there are bytes left: a few bytes cannot make the parser reserve gigabytes.
Status Unpack(std::string_view bytes, size_t max_bin, msgpack::object_handle& out) {
  if (bytes.empty()) return Invalid("malformed message: empty");
  if (bytes.size() > kMaxMessageBytes) {
    return Invalid("malformed message: " + std::to_string(bytes.size()) +
                   " bytes is over the limit of " + std::to_string(kMaxMessageBytes));
  }
  size_t items = std::min(kMaxArrayItems, bytes.size());
  msgpack::unpack_limit limit(items, items, kMaxStringBytes, max_bin, 0, kMaxDepth);
  try {
    size_t offset = 0;
    // A zone sized to the message (an object takes up to 24 times the bytes it came from):
    // msgpack's default, 8 KiB and then a second chunk for a job spec, is two slow mallocs per
    // message where one fits. The zone grows when it must.
    auto zone =
        std::make_unique<msgpack::zone>(std::clamp<size_t>(bytes.size() * 24, 512, 1 << 16));
    msgpack::object object =
        msgpack::unpack(*zone, bytes.data(), bytes.size(), offset, ReferToBytes, nullptr, limit);
    out = msgpack::object_handle(object, std::move(zone));
    if (offset != bytes.size()) {
      return Invalid("malformed message: " + std::to_string(bytes.size() - offset) +
                     " unexpected bytes after the end");
    }
  } catch (const std::exception& e) {
    return Invalid(std::string("malformed message: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace

template <typename T>
const char* MessageName() {
  return Schema<T>::kName;
}

template <typename T>
std::string EncodeBody(const T& body) {
  // msgpack's default first block is 8 KiB: a malloc (and page faults) per message that most
  // messages, a few dozen bytes, do not need. The buffer doubles as it fills.
  msgpack::sbuffer buffer(256);
  Packer pk(buffer);
  Put(pk, body);
  return std::string(buffer.data(), buffer.size());
}

template <typename T>
Result<T> DecodeBody(std::string_view bytes) {
  msgpack::object_handle handle;
  HERD_RETURN_IF_ERROR(Unpack(bytes, 0, handle));
  T body;
  HERD_RETURN_IF_ERROR(Get(handle.get(), body, Path{}));
  return body;
}

std::string EncodeEnvelope(const Envelope& e) {
  msgpack::sbuffer buffer(64 + e.type.size() + e.cred.size() + e.body.size());
  Packer pk(buffer);
  pk.pack_map(5);
  Put(pk, std::string("v"));
  pk.pack(e.v);
  Put(pk, std::string("type"));
  Put(pk, e.type);
  Put(pk, std::string("id"));
  pk.pack(e.id);
  Put(pk, std::string("cred"));
  Put(pk, e.cred);
  Put(pk, std::string("body"));
  pk.pack_bin(static_cast<uint32_t>(e.body.size()));
  pk.pack_bin_body(e.body.data(), static_cast<uint32_t>(e.body.size()));
  return std::string(buffer.data(), buffer.size());
}

Result<Envelope> DecodeEnvelope(std::string_view bytes, int64_t* version_out) {
  msgpack::object_handle handle;
  HERD_RETURN_IF_ERROR(Unpack(bytes, kMaxMessageBytes, handle));
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::MAP) return Invalid("malformed message: not a map");
  // The version is checked before anything else: another major may lay out the rest differently.
  const msgpack::object* version = nullptr;
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const msgpack::object& key = o.via.map.ptr[i].key;
    if (key.type == msgpack::type::STR && std::string_view(key.via.str.ptr, key.via.str.size) == "v") {
      version = &o.via.map.ptr[i].val;
    }
  }
  if (version == nullptr) return Invalid("malformed message: no protocol version");
  if (version->type == msgpack::type::POSITIVE_INTEGER ||
      version->type == msgpack::type::NEGATIVE_INTEGER) {
    int64_t v = version->type == msgpack::type::NEGATIVE_INTEGER
                    ? version->via.i64
                    : static_cast<int64_t>(std::min<uint64_t>(version->via.u64, INT64_MAX));
    if (version_out != nullptr) *version_out = v;
    if (v != kProtocolVersion) {
      return Invalid("protocol version " + std::to_string(v) + " not supported (this herd speaks " +
                     std::to_string(kProtocolVersion) +
                     "): upgrade herd so that the CLI, herd-ctld and herd-noded match");
    }
  }
  Envelope e;
  HERD_RETURN_IF_ERROR(Get(o, e, Path{}));
  if (e.type.empty()) return Invalid("malformed message: no message type");
  return e;
}

std::string EncodeJobsReply(std::span<const model::Job* const> jobs, bool more, bool brief) {
  // Laid out as Schema<JobsReply> (a test decodes it as one): {jobs: [...], more}.
  // Sized for the page at once: pages not written are never touched, growing would copy.
  msgpack::sbuffer buffer(64 + jobs.size() * (brief ? 1024 : 2048));
  Packer pk(buffer);
  pk.pack_map(2);
  PutKey(pk, "jobs");
  pk.pack_array(static_cast<uint32_t>(jobs.size()));
  for (const model::Job* job : jobs) {
    if (brief) {
      PutBrief(pk, *job);
    } else {
      Put(pk, *job);
    }
  }
  PutKey(pk, "more");
  pk.pack(more);
  return std::string(buffer.data(), buffer.size());
}

#define HERD_BODY(T)                               \
  template std::string EncodeBody<T>(const T&);   \
  template Result<T> DecodeBody<T>(std::string_view);
#define HERD_MESSAGE(T) \
  HERD_BODY(T)          \
  template const char* MessageName<T>();

HERD_MESSAGE(ErrorReply)
HERD_MESSAGE(SubmitRequest)
HERD_MESSAGE(SubmitReply)
HERD_MESSAGE(JobsRequest)
HERD_MESSAGE(JobsReply)
HERD_MESSAGE(JobActionRequest)
HERD_MESSAGE(UpdateJobRequest)
HERD_BODY(JobActionResult)
HERD_MESSAGE(JobActionReply)
HERD_MESSAGE(LogsRequest)
HERD_MESSAGE(LogsReply)
HERD_MESSAGE(NodesRequest)
HERD_BODY(NodeStatus)
HERD_MESSAGE(NodesReply)
HERD_MESSAGE(ProjectsRequest)
HERD_BODY(ProjectTypeStatus)
HERD_BODY(ProjectStatus)
HERD_MESSAGE(ProjectsReply)
HERD_MESSAGE(AdminRequest)
HERD_MESSAGE(AdminReply)
HERD_MESSAGE(WhyRequest)
HERD_BODY(JobEventLine)
HERD_MESSAGE(WhyReply)
HERD_MESSAGE(UsageRequest)
HERD_BODY(UsageRow)
HERD_MESSAGE(UsageReply)
HERD_MESSAGE(StatsRequest)
HERD_MESSAGE(StatsReply)
HERD_MESSAGE(HistoryRequest)
HERD_BODY(HistoryPoint)
HERD_MESSAGE(HistoryReply)
HERD_BODY(JobReport)
HERD_MESSAGE(RegisterRequest)
HERD_MESSAGE(RegisterReply)
HERD_BODY(GpuMetric)
HERD_MESSAGE(Heartbeat)
HERD_MESSAGE(JobEvent)
HERD_MESSAGE(EventAck)
HERD_MESSAGE(LaunchCommand)
HERD_MESSAGE(SignalCommand)
HERD_MESSAGE(LogsFetch)
HERD_MESSAGE(LogsData)
HERD_MESSAGE(SessionWhereRequest)
HERD_MESSAGE(SessionWhereReply)
HERD_MESSAGE(ConnectionKeyRequest)
HERD_MESSAGE(ConnectionKeyReply)
HERD_MESSAGE(SessionOpen)
HERD_MESSAGE(SessionOpened)
HERD_MESSAGE(SessionInput)
HERD_MESSAGE(SessionOutput)
HERD_MESSAGE(WebTokenRequest)
HERD_MESSAGE(WebTokenReply)
HERD_MESSAGE(WebRelay)

}  // namespace herd::proto
