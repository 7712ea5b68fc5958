#include "common/model/fleet.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace herd::model {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsBrandWord(const std::string& lower) {
  static const char* const kBrands[] = {"nvidia", "amd",    "tesla",    "geforce",
                                        "quadro", "radeon", "instinct", "intel"};
  return std::any_of(std::begin(kBrands), std::end(kBrands),
                     [&](const char* b) { return lower == b; });
}

constexpr size_t kMaxHosts = 65536;

// Expands the bracket groups of one host-list item ("ws[01-02]x[1,3]") onto `out`.
Status ExpandItem(std::string_view item, std::vector<std::string>* out) {
  const Status bad = Invalid("invalid host list item '" + std::string(item) +
                             "': use names such as ws01, ws[01-04] or ws[01-04,07]");
  std::vector<std::string> names{""};
  size_t i = 0;
  while (i < item.size()) {
    if (item[i] == ']') return bad;
    if (item[i] != '[') {
      const size_t next = std::min(item.find_first_of("[]", i), item.size());
      for (auto& n : names) n.append(item.substr(i, next - i));
      i = next;
      continue;
    }
    const size_t close = item.find(']', i);
    if (close == std::string_view::npos) return bad;
    std::vector<std::string> parts;
    std::string_view body = item.substr(i + 1, close - i - 1);
    if (body.empty()) return bad;
    size_t start = 0;
    while (start <= body.size()) {
      const size_t comma = std::min(body.find(',', start), body.size());
      std::string_view range = body.substr(start, comma - start);
      const size_t dash = range.find('-');
      std::string_view lo = range.substr(0, dash);
      std::string_view hi = dash == std::string_view::npos ? lo : range.substr(dash + 1);
      int64_t a = 0, b = 0;
      auto pa = std::from_chars(lo.data(), lo.data() + lo.size(), a);
      auto pb = std::from_chars(hi.data(), hi.data() + hi.size(), b);
      if (lo.empty() || hi.empty() || pa.ptr != lo.data() + lo.size() ||
          pb.ptr != hi.data() + hi.size() || a < 0 || b < a || b - a >= int64_t{kMaxHosts}) {
        return bad;
      }
      for (int64_t v = a; v <= b; ++v) {
        std::string digits = std::to_string(v);
        if (digits.size() < lo.size()) digits.insert(0, lo.size() - digits.size(), '0');
        parts.push_back(std::move(digits));
      }
      start = comma + 1;
    }
    std::vector<std::string> grown;
    if (names.size() * parts.size() > kMaxHosts) return Invalid("host list too long");
    for (const auto& n : names) {
      for (const auto& p : parts) grown.push_back(n + p);
    }
    names = std::move(grown);
    i = close + 1;
  }
  for (auto& n : names) {
    if (n.empty()) return bad;
    out->push_back(std::move(n));
  }
  return Status::Ok();
}

}  // namespace

std::string DefaultGpuType(std::string_view model) {
  std::string joined;
  size_t i = 0;
  while (i < model.size()) {
    while (i < model.size() && std::isspace(static_cast<unsigned char>(model[i]))) ++i;
    const size_t end = std::min(model.find_first_of(" \t", i), model.size());
    const std::string word = Lower(model.substr(i, end - i));
    i = end;
    if (word.empty() || IsBrandWord(word)) continue;
    joined += word;
    if (word.find_first_of("0123456789") != std::string::npos) {
      joined = joined.substr(0, joined.find('-'));
      std::string clean;
      for (char c : joined) {
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_') clean += c;
      }
      return IsGpuTypeName(clean) ? clean : "gpu";
    }
  }
  return "gpu";
}

std::string GpuTypeOf(std::string_view model, const GpuTypeRules& rules) {
  for (const auto& [type, models] : rules) {
    for (const auto& m : models) {
      if (m == model) return type;
    }
  }
  const std::string lower = Lower(model);
  for (const auto& [type, models] : rules) {
    for (const auto& m : models) {
      if (Lower(m) == lower) return type;
    }
  }
  return DefaultGpuType(model);
}

bool IsGpuTypeName(std::string_view name) {
  if (name.empty() || name.size() > 64 || !std::isalnum(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

Result<std::vector<std::string>> ExpandHostList(std::string_view list) {
  std::vector<std::string> out;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= list.size(); ++i) {
    if (i < list.size() && list[i] == '[') ++depth;
    if (i < list.size() && list[i] == ']') --depth;
    if (i < list.size() && (list[i] != ',' || depth > 0)) continue;
    std::string_view item = list.substr(start, i - start);
    start = i + 1;
    if (item.empty()) continue;
    HERD_RETURN_IF_ERROR(ExpandItem(item, &out));
    if (out.size() > kMaxHosts) return Invalid("host list too long");
  }
  if (out.empty()) return Invalid("empty host list");
  return out;
}

bool NameMatches(std::string_view pattern, std::string_view name) {
  if (pattern.find_first_of("*?[") == std::string_view::npos) return pattern == name;
  return fnmatch(std::string(pattern).c_str(), std::string(name).c_str(), 0) == 0;
}

bool NodeSelector::Matches(std::string_view name,
                           const std::map<std::string, std::string>& node_labels) const {
  if (!names.empty() &&
      std::none_of(names.begin(), names.end(),
                   [&](const std::string& p) { return NameMatches(p, name); })) {
    return false;
  }
  for (const auto& [k, v] : labels) {
    auto it = node_labels.find(k);
    if (it == node_labels.end() || it->second != v) return false;
  }
  return true;
}

bool NodeFilter::Matches(std::string_view name,
                         const std::map<std::string, std::string>& node_labels) const {
  if (pool && !pool->Matches(name, node_labels)) return false;
  if (!NodeSelector{nodelist, constraints}.Matches(name, node_labels)) return false;
  return std::none_of(exclude.begin(), exclude.end(),
                      [&](const std::string& p) { return NameMatches(p, name); });
}

NodeSelector LabelPool(const std::string& name) { return {{}, {{"pool", name}}}; }

Result<std::map<std::string, std::string>> ParseConstraints(std::string_view text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    std::string_view item = text.substr(start, comma - start);
    start = comma + 1;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == item.size()) {
      return Invalid("invalid constraint '" + std::string(item) +
                     "': use KEY=VALUE[,KEY=VALUE] on node labels, e.g. pool=train,rack=r1");
    }
    out[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
  }
  return out;
}

}  // namespace herd::model
