// The /metrics page of herd-web: herd-ctld's numbers (StatsReply, ProjectsReply) in the Prometheus
// text exposition format, version 0.0.4. Pure: it formats its arguments and reads nothing else,
// so tests check the text without a cluster. Built by herd-web's /metrics handler.
// Thread-safety: plain functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/proto/messages.h"

namespace herd::web {

// What one scrape learned from herd-ctld.
struct Scrape {
  bool up = false;  // herd-ctld answered both requests; the rest is empty otherwise
  proto::StatsReply stats;
  proto::ProjectsReply queues;
};

// The Content-Type of FormatMetrics's text.
inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// The whole /metrics body: herd_ctld_up, which says whether herd-ctld answered, and when it did
// every other family with its HELP and TYPE lines, even one with no sample.
std::string FormatMetrics(const Scrape& scrape);

// `value` / `scale` as exact decimal text without trailing zeros: (2500, 1000) -> "2.5".
std::string Scaled(int64_t value, int64_t scale);
// A label value escaped for the exposition format (backslash, double quote, newline).
std::string EscapeLabel(std::string_view value);

}  // namespace herd::web
