// History: herd-ctld's own time series, so that a fresh install has charts of allocation and GPU
// utilization from its first day without Prometheus (the scale-out path, fed by herd-web's
// /metrics). Design:
//  * Series. One for the cluster, one per project or department ([projects], [departments]), one
//    per node, one per job holding GPUs. Each sample is up to store::kHistoryValues integers
//    named per kind below; GPUs in thousandths. Utilization comes from the GPU activity herd-noded
//    sends with its heartbeats: busy_milli is the sum over GPUs of utilization x share held, and
//    measured_milli the share of GPUs that reported any, so busy / measured is the utilization
//    and GPUs without metrics (no NVML) are not counted as idle.
//  * Tiers. Every [history] interval (60 s) herd-ctld samples every series into tier 0 inside
//    the Step's one transaction (one transaction per sample, never one per row). Tiers 1 and 2 are
//    10-minute and hourly averages (jobs: 10-minute only), accumulated in memory as the samples come and written when
//    their period ends (a restart rebuilds the open periods from the finer tier). Each tier is
//    pruned to its retention at each sample. Rows are keyed (tier, time, kind, key), so a sample
//    appends at the end of the table and a pruning deletes its oldest range: no scattered writes.
//  * Reads. A HistoryRequest is served from the finest tier that still covers its start and gives
//    at most max_points points (coarser points are merged further when even hourly gives more),
//    one indexed lookup per stored time, plus the open period of a tier from memory.
// Owned by Controller (ctld/controller.h), which builds the samples from its live state
// (Controller::SampleHistory); ctld/rpc/history.cc serves HistoryRequest.
// Thread-safety: not thread-safe (the controller's one thread).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config/config.h"
#include "common/model/job.h"
#include "common/proto/messages.h"
#include "common/util/status.h"
#include "ctld/store/store.h"

namespace herd::ctld {

enum class SeriesKind : int { kCluster = 0, kProject = 1, kNode = 2, kJob = 3 };
// "cluster", "project", "node", "job" (HistoryRequest::series).
const char* SeriesKindName(SeriesKind kind);
std::optional<SeriesKind> ParseSeriesKind(std::string_view name);
// A job series' key ("42") as the job's id; nullopt unless a positive decimal id.
std::optional<model::JobId> ParseJobKey(std::string_view key);
// The names of a kind's values, in their order (HistoryReply::fields).
std::span<const char* const> SeriesFields(SeriesKind kind);

// The value indexes of each kind (positions in SeriesFields).
namespace cluster_field {
enum { kGpus, kAllocated, kMeasured, kBusy, kRunningJobs, kPendingJobs };
}
namespace project_field {
enum { kAllocated, kMeasured, kBusy, kDeserved, kRunningJobs, kPendingJobs };
}
namespace node_field {
enum { kGpus, kAllocated, kMeasured, kBusy, kUp, kDrain };
}
namespace job_field {
enum { kAllocated, kMeasured, kBusy };
}

// One series' values at one sample.
struct SeriesValues {
  SeriesKind kind = SeriesKind::kCluster;
  std::string name;       // project or node; "" otherwise
  model::JobId job = 0;   // kJob
  std::array<int64_t, store::kHistoryValues> values = {};
};

class History {
 public:
  static constexpr int kTiers = 3;
  // Job series are kept in tiers 0 and 1 only: they are nine tenths of the rows on a busy
  // cluster, and a job's hourly points would outlive interest in it (bench/README.md).
  static constexpr int kJobTiers = 2;
  // Seconds per point of tiers 1 and 2 (tier 0: the configured interval).
  static constexpr int64_t kTenMinutes = 600;
  static constexpr int64_t kHour = 3600;

  explicit History(config::HistoryConfig config) : config_(config) {}
  void Reconfigure(const config::HistoryConfig& config) { config_ = config; }
  const config::HistoryConfig& config() const { return config_; }

  // Loads the names' ids and rebuilds the open 10-minute and hourly periods from the store.
  Status Recover(store::Store& store, int64_t now);
  // Writes the sample `series` taken at `time` (epoch seconds) into tier 0, the averages of the
  // periods it closes into tiers 1 and 2, and prunes each tier to its retention.
  // REQUIRES: a transaction is open on `store`.
  Status Record(store::Store& store, int64_t time, const std::vector<SeriesValues>& series);
  // The points of the series `req` names. REQUIRES: req.series is a SeriesKindName and its key a
  // project, node or job herd-ctld knows (the caller checks; Invalid otherwise).
  Result<proto::HistoryReply> Read(store::Store& store, const proto::HistoryRequest& req,
                                   int64_t now) const;

 private:
  // Sums of value x samples of each series over one open period, by (kind, key).
  struct Sums {
    int64_t samples = 0;
    std::array<int64_t, store::kHistoryValues> total = {};
  };
  struct Open {
    int64_t period = -1;  // its start, epoch seconds; -1: none
    std::map<std::pair<int, int64_t>, Sums> series;
  };
  int64_t Step(int tier) const;
  int64_t Retention(int tier) const;
  // Adds `rows` (each the average of row.samples samples) to the period of `open`.
  static void Add(Open& open, std::span<const store::HistoryRow> rows);
  static std::vector<store::HistoryRow> Averages(const Open& open);
  // The rows of `rows` (sorted by kind) that `tier` keeps.
  static std::span<const store::HistoryRow> TierRows(int tier,
                                                     std::span<const store::HistoryRow> rows);
  // Rebuilds open_[tier] from the rows of tier - 1 after the last period written to `tier`.
  Status RecoverTier(store::Store& store, int tier, int64_t now);

  config::HistoryConfig config_;
  std::map<std::pair<int, std::string>, int64_t> names_;  // (kind, name) -> key
  Open open_[kTiers];                                     // [0] unused: tier 0 is written as sampled
};

}  // namespace herd::ctld
