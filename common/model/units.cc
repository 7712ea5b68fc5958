#include "common/model/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace herd::model {
namespace {

// Parses a non-negative decimal with at most `max_decimals` digits after the point, scaled by
// 10^max_decimals. "1.25" with 3 -> 1250.
bool ParseScaledDecimal(std::string_view s, int max_decimals, int64_t* out) {
  if (s.empty()) return false;
  int64_t whole = 0;
  int64_t frac = 0;
  int frac_digits = 0;
  bool seen_point = false;
  bool seen_digit = false;
  for (char c : s) {
    if (c == '.') {
      if (seen_point) return false;
      seen_point = true;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    seen_digit = true;
    if (seen_point) {
      if (++frac_digits > max_decimals) return false;
      frac = frac * 10 + (c - '0');
    } else {
      if (whole > (int64_t{1} << 40)) return false;
      whole = whole * 10 + (c - '0');
    }
  }
  if (!seen_digit) return false;
  int64_t scale = 1;
  for (int i = 0; i < max_decimals; ++i) scale *= 10;
  for (int i = frac_digits; i < max_decimals; ++i) frac *= 10;
  *out = whole * scale + frac;
  return true;
}

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && *out >= 0;
}

// Longer than any job may run (100 years): bounds arithmetic so no input overflows.
constexpr int64_t kMaxDurationSeconds = int64_t{100} * 365 * 86400;
// 1 EiB: bounds sizes the same way.
constexpr int64_t kMaxSizeMiB = int64_t{1} << 40;

Status BadDuration(std::string_view text) {
  return Invalid("invalid duration '" + std::string(text) +
                 "': use a number with a unit (90s, 15m, 2h, 1d, 1h30m) or [D-]HH:MM:SS");
}

}  // namespace

Result<int64_t> ParseDurationSeconds(std::string_view text) {
  Result<int64_t> seconds = ParseDurationSecondsOrZero(text);
  if (seconds.ok() && *seconds == 0) {
    return Invalid("duration '" + std::string(text) + "' must be more than zero");
  }
  return seconds;
}

Result<int64_t> ParseDurationSecondsOrZero(std::string_view text) {
  if (text.empty()) return BadDuration(text);
  // Slurm's clock forms: [D-]HH:MM:SS, HH:MM:SS, MM:SS.
  if (text.find(':') != std::string_view::npos) {
    int64_t days = 0;
    std::string_view rest = text;
    if (auto dash = rest.find('-'); dash != std::string_view::npos) {
      if (!ParseInt(rest.substr(0, dash), &days)) return BadDuration(text);
      rest = rest.substr(dash + 1);
    }
    int64_t parts[3] = {0, 0, 0};
    int n = 0;
    while (true) {
      auto colon = rest.find(':');
      if (n == 3) return BadDuration(text);
      if (!ParseInt(rest.substr(0, colon), &parts[n++])) return BadDuration(text);
      if (colon == std::string_view::npos) break;
      rest = rest.substr(colon + 1);
    }
    int64_t h = 0, m = 0, s = 0;
    if (days > kMaxDurationSeconds / 86400 || parts[0] > kMaxDurationSeconds / 3600) {
      return Invalid("duration '" + std::string(text) + "' is too long");
    }
    if (n == 3) {
      h = parts[0], m = parts[1], s = parts[2];
    } else if (n == 2) {
      m = parts[0], s = parts[1];
    } else {
      return BadDuration(text);
    }
    if (m >= 60 || s >= 60) return BadDuration(text);
    return ((days * 24 + h) * 60 + m) * 60 + s;
  }
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i) return BadDuration(text);
    int64_t n = 0;
    if (!ParseInt(text.substr(i, j - i), &n) || n > (int64_t{1} << 40)) return BadDuration(text);
    int64_t unit = 1;
    if (j < text.size()) {
      switch (text[j]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: return BadDuration(text);
      }
      ++j;
    } else if (i != 0) {
      return BadDuration(text);  // "1h30" is ambiguous
    }
    if (n > kMaxDurationSeconds / unit || total + n * unit > kMaxDurationSeconds) {
      return Invalid("duration '" + std::string(text) + "' is too long");
    }
    total += n * unit;
    i = j;
  }
  return total;
}

std::string FormatDuration(int64_t seconds) {
  if (seconds <= 0) return "0s";
  std::string out;
  const int64_t d = seconds / 86400, h = seconds % 86400 / 3600, m = seconds % 3600 / 60,
                s = seconds % 60;
  if (d) out += std::to_string(d) + "d";
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (s && !d) out += std::to_string(s) + "s";
  return out.empty() ? "0s" : out;
}

Result<int64_t> ParseSizeMiB(std::string_view text) {
  const std::string bad = "invalid size '" + std::string(text) +
                          "': use a number with a unit, e.g. 512M, 10G, 1.5T (a bare number is MiB)";
  if (text.empty()) return Invalid(bad);
  std::string_view num = text;
  int64_t scale = 1;  // in MiB
  char last = static_cast<char>(std::toupper(static_cast<unsigned char>(text.back())));
  if (last == 'B' && text.size() > 1) {  // accept "10GB", "10GiB" -> strip B / iB
    num = text.substr(0, text.size() - 1);
    if (!num.empty() && (num.back() == 'i' || num.back() == 'I')) num.remove_suffix(1);
    if (num.empty()) return Invalid(bad);
    last = static_cast<char>(std::toupper(static_cast<unsigned char>(num.back())));
  }
  if (std::isalpha(static_cast<unsigned char>(last))) {
    switch (last) {
      case 'K': scale = -1024; break;
      case 'M': scale = 1; break;
      case 'G': scale = 1024; break;
      case 'T': scale = 1024 * 1024; break;
      default: return Invalid(bad);
    }
    num.remove_suffix(1);
  }
  int64_t milli = 0;
  if (!ParseScaledDecimal(num, 3, &milli)) return Invalid(bad);
  if (scale > 0 && milli / 1000 > kMaxSizeMiB / scale) {
    return Invalid("size '" + std::string(text) + "' is too large");
  }
  int64_t mib = scale > 0 ? milli * scale / 1000 : milli / 1000 / 1024;
  return mib;
}

std::string FormatSizeMiB(int64_t mib) {
  auto fmt = [](int64_t v, int64_t unit, const char* suffix) {
    if (v % unit == 0) return std::to_string(v / unit) + suffix;
    double x = static_cast<double>(v) / static_cast<double>(unit);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%s", x, suffix);
    return std::string(buf);
  };
  if (mib >= 1024 * 1024) return fmt(mib, 1024 * 1024, "T");
  if (mib >= 1024) return fmt(mib, 1024, "G");
  return std::to_string(mib) + "M";
}

Result<int64_t> ParseGpuMilli(std::string_view text) {
  int64_t milli = 0;
  if (!text.empty() && text[0] == '-') {
    return Invalid("invalid GPU count '" + std::string(text) + "': must not be negative");
  }
  if (!ParseScaledDecimal(text, 3, &milli)) {
    return Invalid("invalid GPU count '" + std::string(text) +
                   "': use a whole number (2) or a share of one GPU (0.25, 0.5)");
  }
  if (milli > 1000 && milli % 1000 != 0) {
    return Invalid("invalid GPU count '" + std::string(text) +
                   "': a job gets whole GPUs or a share of one; ask for " +
                   std::to_string(milli / 1000) + " or " + std::to_string(milli / 1000 + 1));
  }
  return milli;
}

std::string FormatGpuMilli(int64_t milli) {
  if (milli % 1000 == 0) return std::to_string(milli / 1000);
  std::string frac = std::to_string(1000 + milli % 1000).substr(1);
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return std::to_string(milli / 1000) + "." + frac;
}

}  // namespace herd::model
