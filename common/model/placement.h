// The placement policies of herd's scheduler, in one table: herd.toml's [scheduler] placement is
// checked against it, the scheduler core's sched::Placement has one value per row in this order,
// and the tests walk it (herd.toml(5) must describe every row: ConfigTest checks the page). Then
// the defaults of the [scheduler] keys the core reads, written once for the core's sched::Policy
// and herd.toml's config::SchedulerConfig (ConfigTest checks that herd.toml(5) states them).
// Thread-safety: constants.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace herd::model {

struct PlacementPolicy {
  const char* name;     // as herd.toml, scenario files and benchmarks spell it
  const char* summary;  // one line, for error messages
};

inline constexpr PlacementPolicy kPlacementPolicies[] = {
    {"herd",
     "least fragmentation of the expected workload (its cores and GPU models counted), "
     "fullest node first, topology aware"},
    {"bestfit", "the node left with the least free resources"},
    {"fgd", "fragmentation gradient descent (Weng et al., ATC'23)"},
    {"random", "a uniformly random node that fits"},
    {"spread", "the least-used node first"},
};

// "herd, bestfit, fgd, random or spread".
inline std::string PlacementNames() {
  std::string out;
  const size_t n = std::size(kPlacementPolicies);
  for (size_t i = 0; i < n; ++i) {
    out += (i == 0 ? "" : i + 1 == n ? " or " : ", ") + std::string(kPlacementPolicies[i].name);
  }
  return out;
}

// [scheduler] placement: the row of kPlacementPolicies used when herd.toml names none ("herd").
inline constexpr size_t kDefaultPlacement = 0;
static_assert(kDefaultPlacement < std::size(kPlacementPolicies));
// [scheduler] reserve_after: a job pending this long reserves the nodes it will get.
inline constexpr int64_t kDefaultReserveAfterS = 30 * 60;
// [scheduler] reclaim_backoff: a job reclaimed once waits this long before it runs beyond its
// project's deserved quota again (twice as long after each further reclaim, at most 8 times).
inline constexpr int64_t kDefaultReclaimBackoffS = 15 * 60;

}  // namespace herd::model
