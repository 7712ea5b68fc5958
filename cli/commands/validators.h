// CLI11 transforms that parse herd's units with common/model/units.h, so a bad value fails the
// parse with "--gpus: invalid GPU count '1.5': ..." (exit 1) and the option receives the number.
// Used by the Register* functions. Thread-safety: pure.
#pragma once

#include <charconv>
#include <string>

#include <CLI/CLI.hpp>

#include "common/model/units.h"
#include "common/util/status.h"

namespace herd::cli {

// Wraps a parser returning Result<int64_t> into a transform writing the number back. Its help
// text is the option's type_name (set by the caller), so "--gpus GPUS" rather than "INT".
template <typename Parse>
CLI::Validator UnitValidator(Parse parse) {
  return CLI::Validator(
      [parse](std::string& value) -> std::string {
        Result<int64_t> parsed = parse(value);
        if (!parsed.ok()) return parsed.status().message();
        value = std::to_string(*parsed);
        return {};
      },
      "");
}

// "2", "0.25" -> milli-GPUs.
inline CLI::Validator GpuValidator() {
  return UnitValidator([](const std::string& v) { return model::ParseGpuMilli(v); });
}
// "10G" -> MiB; `positive` rejects 0.
inline CLI::Validator SizeValidator(bool positive) {
  return UnitValidator(
      [positive](const std::string& v) -> Result<int64_t> {
        auto mib = model::ParseSizeMiB(v);
        if (mib.ok() && positive && *mib <= 0) {
          return Invalid("size '" + v + "' must be more than zero");
        }
        return mib;
      });
}
// "90", "15m", "1h30m", "02:00:00" -> seconds.
inline CLI::Validator DurationValidator() {
  return UnitValidator([](const std::string& v) { return model::ParseDurationSeconds(v); });
}
// A whole number, at least 1; `what` names it in the message ("worker count").
inline CLI::Validator CountValidator(const std::string& what) {
  return UnitValidator(
      [what](const std::string& v) -> Result<int64_t> {
        int64_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n < 1 ||
            n > 1000000) {
          return Invalid("invalid " + what + " '" + v + "': use a whole number, 1 or more");
        }
        return n;
      });
}

}  // namespace herd::cli
