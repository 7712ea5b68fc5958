// Path rules shared by herd-ctld (which checks what a user asks for) and herd-shim (which checks
// what a path resolves to on the node). Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

namespace herd {

// Whether absolute `path` is `prefix` or lies below it, comparing whole components
// ("/data2" is not under "/data"). Purely textual: callers resolve symlinks first.
inline bool PathIsUnder(const std::string& path, const std::string& prefix) {
  if (prefix.empty()) return false;
  if (prefix == "/") return !path.empty() && path[0] == '/';
  const std::string p = prefix.ends_with("/") ? prefix : prefix + "/";
  return path == prefix || path + "/" == p || path.rfind(p, 0) == 0;
}

// Whether `path` is under one of `prefixes` (see PathIsUnder).
inline bool PathIsUnderAny(const std::string& path, const std::vector<std::string>& prefixes) {
  for (const std::string& prefix : prefixes) {
    if (PathIsUnder(path, prefix)) return true;
  }
  return false;
}

}  // namespace herd
