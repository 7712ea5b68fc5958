// CSV reading is by header name, so column order and extra columns do not matter.
#include "bench/sim/trace.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <tuple>

namespace herd::sim {
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

// Rows of a CSV file as maps from column name to text.
Status ReadCsv(const std::string& path, std::vector<std::map<std::string, std::string>>* rows) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read " + path);
  std::string line;
  if (!std::getline(in, line)) return Invalid(path + ": empty file");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string> header = Split(line, ',');
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> cells = Split(line, ',');
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows->push_back(std::move(row));
  }
  return Status::Ok();
}

Status Int(const std::map<std::string, std::string>& row, const std::string& col, int64_t* out) {
  auto it = row.find(col);
  if (it == row.end()) return Invalid("missing column " + col);
  const std::string& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (ec != std::errc() || p != s.data() + s.size()) return Invalid(col + ": not an integer: '" + s + "'");
  return Status::Ok();
}

}  // namespace

int64_t Trace::GpuCapacityMilli() const {
  int64_t total = 0;
  for (const TraceNode& n : nodes) total += 1000 * int64_t{n.gpus};
  return total;
}

Status LoadNodes(const std::string& dir, Trace* trace) {
  std::string path = dir + "/openb_node_list_gpu_node.csv";
  std::vector<std::map<std::string, std::string>> rows;
  HERD_RETURN_IF_ERROR(ReadCsv(path, &rows));
  for (const auto& row : rows) {
    TraceNode n;
    int64_t gpus = 0;
    n.name = row.count("sn") ? row.at("sn") : "";
    Status s = Int(row, "cpu_milli", &n.cpu_milli);
    if (s.ok()) s = Int(row, "memory_mib", &n.memory_mib);
    if (s.ok()) s = Int(row, "gpu", &gpus);
    if (!s.ok()) return Invalid(path + ": " + s.message());
    n.gpus = static_cast<int>(gpus);
    std::string model = row.count("model") ? row.at("model") : "";
    auto it = std::find(trace->models.begin(), trace->models.end(), model);
    n.model = static_cast<int>(it - trace->models.begin());
    if (it == trace->models.end()) trace->models.push_back(model);
    trace->nodes.push_back(std::move(n));
  }
  if (trace->models.size() > 32) return Invalid(path + ": more than 32 GPU models");
  if (trace->nodes.empty()) return Invalid(path + ": no nodes");
  return Status::Ok();
}

Status LoadPods(const std::string& dir, const std::string& list, Trace* trace) {
  std::string path = dir + "/openb_pod_list_" + list + ".csv";
  std::vector<std::map<std::string, std::string>> rows;
  HERD_RETURN_IF_ERROR(ReadCsv(path, &rows));
  trace->pods.clear();
  for (const auto& row : rows) {
    TracePod p;
    int64_t num_gpu = 0;
    Status s = Int(row, "cpu_milli", &p.cpu_milli);
    if (s.ok()) s = Int(row, "memory_mib", &p.memory_mib);
    if (s.ok()) s = Int(row, "num_gpu", &num_gpu);
    if (s.ok()) s = Int(row, "gpu_milli", &p.gpu_milli);
    if (!s.ok()) return Invalid(path + ": " + s.message());
    p.num_gpu = static_cast<int>(num_gpu);
    if (p.num_gpu == 0) p.gpu_milli = 0;
    if (p.num_gpu > 1 && p.gpu_milli != 1000) return Invalid(path + ": a multi-GPU pod must take whole GPUs");
    auto spec = row.find("gpu_spec");
    if (spec != row.end() && !spec->second.empty()) {
      for (const std::string& m : Split(spec->second, '|')) {
        auto it = std::find(trace->models.begin(), trace->models.end(), m);
        if (it == trace->models.end()) return Invalid(path + ": gpu_spec names unknown model " + m);
        p.model_mask |= 1u << (it - trace->models.begin());
      }
    }
    trace->pods.push_back(p);
  }
  if (trace->pods.empty()) return Invalid(path + ": no pods");
  return Status::Ok();
}

std::vector<int> ArrivalOrder(const Trace& trace, uint64_t seed, double inflate) {
  std::vector<int> order(trace.pods.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  int64_t total = 0;
  for (const TracePod& p : trace.pods) total += p.TotalGpuMilli();
  auto target = static_cast<int64_t>(inflate * static_cast<double>(trace.GpuCapacityMilli()));
  std::uniform_int_distribution<size_t> pick(0, trace.pods.size() - 1);
  if (total <= 0) return order;  // a CPU-only list never reaches the target
  while (total < target) {
    int i = static_cast<int>(pick(rng));
    order.push_back(i);
    total += trace.pods[i].TotalGpuMilli();
  }
  return order;
}

std::vector<WorkloadShape> TargetWorkload(const Trace& trace, double coverage) {
  std::map<std::tuple<int64_t, int64_t, int, uint32_t>, int64_t> counts;
  for (const TracePod& p : trace.pods) ++counts[{p.cpu_milli, p.gpu_milli, p.num_gpu, p.model_mask}];
  std::vector<std::pair<int64_t, std::tuple<int64_t, int64_t, int, uint32_t>>> sorted;
  for (const auto& [shape, n] : counts) sorted.push_back({-n, shape});
  std::sort(sorted.begin(), sorted.end());
  std::vector<WorkloadShape> out;
  int64_t covered = 0;
  auto needed = static_cast<int64_t>(coverage * static_cast<double>(trace.pods.size()));
  for (const auto& [neg, shape] : sorted) {
    if (covered >= needed) break;
    WorkloadShape w;
    std::tie(w.shape.cpu_milli, w.shape.gpu_milli, w.shape.num_gpu, w.shape.model_mask) = shape;
    w.popularity = static_cast<double>(-neg);
    covered += -neg;
    out.push_back(w);
  }
  for (WorkloadShape& w : out) w.popularity /= static_cast<double>(covered);
  return out;
}

}  // namespace herd::sim
