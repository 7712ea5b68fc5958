// Parsing and formatting of the units users type: durations, sizes, GPU counts.
// Every parser returns a Status whose message says what form is expected.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/util/status.h"

namespace herd::model {

// "90", "90s", "15m", "2h", "1d", "1h30m", "1-02:00:00", "02:30:00", "30:00" -> seconds (> 0).
Result<int64_t> ParseDurationSeconds(std::string_view text);
// The same forms, where zero ("0", "0s", "0h0m", "00:00") is a value too (herd.toml's "0 = none").
Result<int64_t> ParseDurationSecondsOrZero(std::string_view text);
// 5400 -> "1h30m"; 0 -> "0s".
std::string FormatDuration(int64_t seconds);

// "512M", "10G", "1T", "1024" (MiB), "1.5G" -> MiB (>= 0).
Result<int64_t> ParseSizeMiB(std::string_view text);
// 10240 -> "10G"; 1536 -> "1.5G"; 512 -> "512M".
std::string FormatSizeMiB(int64_t mib);

// "2" -> 2000, "0.25" -> 250, ".5" -> 500. Rejects negatives, more than three decimals,
// and fractions above one GPU that are not whole ("1.5": a job gets whole GPUs or a share of one).
Result<int64_t> ParseGpuMilli(std::string_view text);
// 2000 -> "2", 250 -> "0.25".
std::string FormatGpuMilli(int64_t milli);

}  // namespace herd::model
