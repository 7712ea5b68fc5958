// What one user may ask of herd-ctld: the sizes of a job's spec ([controller] max_* in herd.toml)
// and how much of the job list one reply may carry. herd-ctld is the authority: a client may
// check early, but only these checks count.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>

#include "common/config/config.h"
#include "common/model/job.h"
#include "common/util/status.h"

namespace herd::ctld {

// What each entry of a spec's lists (arguments, environment variables, volumes, dependencies,
// sweep values) costs beyond its bytes: an empty entry still takes memory and storage.
inline constexpr size_t kSpecEntryBytes = 32;

// Bytes of every text of `spec` together (name, command, environment, paths, dependencies,
// sweep values) plus kSpecEntryBytes per list entry: what storing and listing it costs, give or
// take a fixed overhead.
size_t SpecBytes(const model::JobSpec& spec);

// Ok, or kInvalid naming the first field over its limit, its size and the herd.toml key.
Status CheckSpecLimits(const model::JobSpec& spec, const config::ControllerConfig& limits);

// Ok when a command whose arguments take `bytes` together fits max_command_bytes.
Status CheckCommandBytes(size_t bytes, const config::ControllerConfig& limits);

// Ok when `members` jobs whose specs take `total_bytes` (SpecBytes summed) fit in one
// submission (max_submit_bytes).
Status CheckSubmitBytes(size_t members, size_t total_bytes, const config::ControllerConfig& limits);

// Ok when `spec` (its project and class resolved) could ever start as far as quotas go: no
// project or department above it has a limit below what the job needs (nor, for a job held to one
// pool with --pool, a limit of that pool: "pool.NAME"), and a class that starts
// only within the deserved quota (interactive by default) does not need more than the project's
// deserved share. Else kInvalid saying what to ask instead.
Status CheckQuotaCanHold(const model::JobSpec& spec, const config::Config& config,
                         const config::ClassConfig& cls);

// About the bytes `job` takes in a job listing (brief: without the spec's heavy parts).
size_t ListedBytes(const model::Job& job, bool brief);

// The most bytes of jobs one listing reply carries (ListedBytes summed; at least one job): a
// quarter of the message limit, so a page of huge jobs still fits one message.
inline constexpr size_t kJobsPageBytes = 4 << 20;

}  // namespace herd::ctld
