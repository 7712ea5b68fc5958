// The one table of herd-ctld's messages: every family's routes
// (ctld/rpc/rpc.h), by type.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string_view>
#include <vector>

#include "ctld/rpc/rpc.h"

namespace herd::ctld::rpc {

namespace {

using Family = std::span<const Route> (*)();
constexpr Family kFamilies[] = {
    AdminRoutes, ConnectionKeyRoutes, HistoryRoutes, JobIoRoutes,  JobVerbRoutes, NodeRoutes,
    QueryRoutes, ReportRoutes,        StatsRoutes,   SubmitRoutes, WebRoutes,
};

struct Table {
  std::vector<Route> all;
  std::map<std::string_view, const Route*, std::less<>> by_type;
};

const Table& TheTable() {
  static const Table* const table = [] {
    auto* t = new Table;
    for (Family family : kFamilies) {
      for (const Route& r : family()) t->all.push_back(r);
    }
    for (const Route& r : t->all) {
      if (!t->by_type.emplace(r.type, &r).second) {
        // Two handlers for one message: a programming error that no request may
        // reach.
        std::fprintf(stderr, "herd-ctld: message '%s' has two routes in ctld/rpc/\n", r.type);
        std::abort();
      }
    }
    return t;
  }();
  return *table;
}

}  // namespace

std::span<const Route> AllRoutes() { return TheTable().all; }

const Route* FindRoute(std::string_view type) {
  const auto& by_type = TheTable().by_type;
  auto it = by_type.find(type);
  return it == by_type.end() ? nullptr : it->second;
}

}  // namespace herd::ctld::rpc
