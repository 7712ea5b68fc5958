// Parameter sweeps: `herd submit --sweep 'lr=1e-3,1e-4 bs=32,64' -- train --lr {lr}` runs one
// job per point of the cartesian product of the value lists, as one array (consecutive ids).
// The CLI parses and checks the text (ParseSweep, SweepPoints); herd-ctld checks each point
// again and builds each member's command (SubstituteSweep) and environment (SweepEnvName).
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/util/status.h"

namespace herd::model {

// The most jobs one array may have; a sweep is an array, so also its most jobs.
inline constexpr int64_t kMaxArrayJobs = 10000;

struct SweepParam {
  std::string name;                 // letters, digits and _, not starting with a digit
  std::vector<std::string> values;  // non-empty, each non-empty
  bool operator==(const SweepParam&) const = default;
};

// "lr=1e-3,1e-4 bs=32,64": NAME=V1,V2,... items separated by blanks. Invalid (saying how to
// write it) for a malformed item, a bad or duplicate name (case-insensitive, as the
// environment variable is upper-cased), an empty value, or a product over kMaxArrayJobs.
Result<std::vector<SweepParam>> ParseSweep(std::string_view text);
// Every point of the product, the first parameter varying slowest (nested loops in the order
// written). REQUIRES: params as ParseSweep returns them.
std::vector<std::map<std::string, std::string>> SweepPoints(const std::vector<SweepParam>& params);
// True for a valid parameter name.
bool IsSweepName(std::string_view name);
// `argv` with every {name} replaced by the point's value; ${name} (a shell variable) is left
// as written. Invalid when a {name} is not a parameter of the sweep. Linear in the sizes of argv
// and of the result: check the result's size first with SweepCommandBytes.
Result<std::vector<std::string>> SubstituteSweep(const std::vector<std::string>& argv,
                                                 const std::map<std::string, std::string>& point);
// The bytes of SubstituteSweep(argv, point) together, found without building it (linear in
// argv's size); the same errors.
Result<size_t> SweepCommandBytes(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& point);
// The environment variable that carries parameter `name`: "lr" -> "HERD_SWEEP_LR".
std::string SweepEnvName(std::string_view name);

}  // namespace herd::model
