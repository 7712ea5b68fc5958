// placement_bench: placement quality of herd's scheduler core on the Alibaba GPU trace v2023, by the
// FGD paper's procedure, next to the paper's published numbers. See bench/README.md.
//   placement_bench --trace-dir ../shared/traces/alibaba-gpu-v2023 --out bench/results/placement
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/sim/simulator.h"
#include "bench/sim/trace.h"

namespace herd::sim {
namespace {

// The FGD paper's unallocated GPU % at arrived = 100 % (fgd-benchmark.md): Random, BestFit, FGD;
// the pod lists of `--lists all`.
const std::map<std::string, std::map<std::string, double>> kPublished = {
    {"default", {{"random", 13.70}, {"bestfit", 7.14}, {"fgd", 4.77}}},
    {"cpu050", {{"random", 10.98}, {"bestfit", 6.44}, {"fgd", 5.00}}},
    {"cpu100", {{"random", 12.57}, {"bestfit", 6.74}, {"fgd", 4.79}}},
    {"cpu200", {{"random", 16.97}, {"bestfit", 7.85}, {"fgd", 5.18}}},
    {"gpushare40", {{"random", 15.14}, {"bestfit", 8.56}, {"fgd", 6.04}}},
    {"gpushare60", {{"random", 17.19}, {"bestfit", 10.94}, {"fgd", 8.75}}},
    {"gpushare100", {{"random", 21.10}, {"bestfit", 15.38}, {"fgd", 13.36}}},
    {"gpuspec10", {{"random", 13.74}, {"bestfit", 6.90}, {"fgd", 5.34}}},
    {"multigpu20", {{"random", 13.08}, {"bestfit", 6.27}, {"fgd", 4.47}}},
    {"multigpu30", {{"random", 13.37}, {"bestfit", 5.43}, {"fgd", 3.64}}},
    {"multigpu50", {{"random", 18.72}, {"bestfit", 4.38}, {"fgd", 2.91}}},
    {"gpuspec05", {}},  // in the trace, not in the paper's table
};

struct Flags {
  std::string trace_dir = "../shared/traces/alibaba-gpu-v2023";
  std::string out = "bench/results/placement";
  std::vector<std::string> lists = {"default"};
  std::vector<std::string> policies = {"herd", "bestfit", "fgd", "random"};
  int seeds = 10;
  int jobs = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  int64_t cpu_unit = 100;
  std::string running = "none";  // which policies see the placed pods as Snapshot::running
  bool tell_workload = true;      // --workload trace (default) or jobs
};

constexpr char kUsage[] =
    "usage: placement_bench [--trace-dir DIR] [--out DIR] [--lists default|all|L1,L2..]\n"
    "         [--seeds N] [--policies herd,bestfit,fgd,random[,spread]] [--jobs N]\n"
    "         [--cpu-unit MCPU] [--running none|fgd|all] [--workload trace|jobs]\n"
    "  --lists all: the 12 pod lists (11 with published numbers, and gpuspec05); --jobs: runs in\n"
    "    parallel threads;\n"
    "  --cpu-unit: mCPU per simulated core (herd counts whole cores; pods round up), divides 1000\n"
    "    (default 100);\n"
    "  --running: which policies get the placed pods as Snapshot::running (default none: only FGD and\n"
    "    herd would use them, as their target workload with --workload jobs)\n"
    "  --workload: the target workload FGD and herd are told: trace (default; as the paper: the pod\n"
    "    list's most common shapes covering 95 %) or jobs (none: the shapes of pending + running jobs)\n";

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Status ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return Invalid("");
    static const std::vector<std::string> kValued = {"--trace-dir", "--out",  "--lists",   "--policies",
                                                     "--seeds",     "--jobs", "--cpu-unit", "--running",
                                                     "--workload"};
    if (std::find(kValued.begin(), kValued.end(), a) == kValued.end()) return Invalid("unknown flag " + a);
    if (i + 1 >= argc) return Invalid(a + " needs a value");
    std::string v = argv[++i];
    if (a == "--trace-dir") f->trace_dir = v;
    else if (a == "--out") f->out = v;
    else if (a == "--lists" && v == "all") {
      f->lists.clear();
      for (const auto& [name, published] : kPublished) f->lists.push_back(name);
    } else if (a == "--lists") f->lists = SplitComma(v);
    else if (a == "--policies") f->policies = SplitComma(v);
    else if (a == "--seeds") f->seeds = std::atoi(v.c_str());
    else if (a == "--jobs") f->jobs = std::atoi(v.c_str());
    else if (a == "--cpu-unit") f->cpu_unit = std::atoll(v.c_str());
    else if (a == "--running") f->running = v;
    else if (a == "--workload" && (v == "trace" || v == "jobs")) f->tell_workload = v == "trace";
    else if (a == "--workload") return Invalid("--workload must be trace or jobs, not " + v);
    else return Invalid("unknown flag " + a);
  }
  if (f->seeds < 1 || f->jobs < 1 || f->lists.empty() || f->policies.empty()) return Invalid("bad flag value");
  if (f->running != "fgd" && f->running != "all" && f->running != "none") return Invalid("bad --running");
  if (f->cpu_unit <= 0 || 1000 % f->cpu_unit != 0) return Invalid("--cpu-unit must divide 1000");
  for (const std::string& p : f->policies) {
    sched::Placement unused;
    if (!sched::ParsePlacement(p, &unused)) return Invalid("unknown policy " + p);
  }
  return Status::Ok();
}

struct Task {
  std::string list, policy;
  int seed = 0;
  Result<RunResult> result = Internal("not run");
};

struct Stat {
  double mean = 0, sd = 0;
};
Stat MeanSd(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x / static_cast<double>(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / static_cast<double>(v.size() - 1)) : 0;
  return s;
}
std::string Fmt(double x, int digits = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}
std::string Fmt(const Stat& s) { return Fmt(s.mean) + " ± " + Fmt(s.sd); }

int Main(int argc, char** argv) {
  Flags f;
  if (Status s = ParseFlags(argc, argv, &f); !s.ok()) {
    if (!s.message().empty()) std::cerr << "placement_bench: " << s.message() << "\n";
    std::cerr << kUsage;
    return s.message().empty() ? 0 : 2;
  }
  if (!std::filesystem::exists(f.trace_dir + "/openb_node_list_gpu_node.csv")) {
    std::cout << "skipped: trace not found at " << f.trace_dir
              << " (openb_node_list_gpu_node.csv; pass --trace-dir)\n";
    return 0;
  }
  std::map<std::string, Trace> traces;
  std::map<std::string, SimOptions> base;
  for (const std::string& list : f.lists) {
    Trace t;
    Status s = LoadNodes(f.trace_dir, &t);
    if (s.ok()) s = LoadPods(f.trace_dir, list, &t);
    if (!s.ok()) {
      std::cerr << "placement_bench: " << s.message() << "\n";
      return 1;
    }
    SimOptions o;
    o.cpu_milli_per_core = f.cpu_unit;
    o.workload = TargetWorkload(t, 0.95);
    std::cerr << list << ": " << t.nodes.size() << " nodes, " << t.GpuCapacityMilli() / 1000 << " GPUs, "
              << t.pods.size() << " pods, target workload " << o.workload.size() << " shapes\n";
    traces[list] = std::move(t);
    base[list] = std::move(o);
  }

  std::vector<Task> tasks;
  for (const std::string& list : f.lists) {
    for (const std::string& p : f.policies) {
      for (int seed = 1; seed <= f.seeds; ++seed) tasks.push_back({list, p, seed});
    }
  }
  std::mutex mu;
  size_t next = 0;
  auto worker = [&] {
    for (;;) {
      Task* t;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (next >= tasks.size()) return;
        t = &tasks[next++];
      }
      SimOptions o = base.at(t->list);
      sched::ParsePlacement(t->policy, &o.placement);
      o.seed = static_cast<uint64_t>(t->seed);
      o.tell_workload = f.tell_workload;
      o.snapshot_running = f.running == "all" || (f.running == "fgd" && o.placement == sched::Placement::kFgd);
      t->result = Simulate(traces.at(t->list), o);
      std::lock_guard<std::mutex> lock(mu);
      if (!t->result.ok()) {
        std::cerr << t->list << " " << t->policy << " seed " << t->seed << ": " << t->result.status().message()
                  << "\n";
      } else {
        const RunResult& r = *t->result;
        std::cerr << t->list << " " << t->policy << " seed " << t->seed << ": unallocated "
                  << Fmt(100 - r.At(100)->allocated_pct) << " % at 100 % arrived, " << r.failed << "/" << r.pods
                  << " pods dropped, " << Fmt(r.wall_s, 1) << " s (" << Fmt(1e3 * r.decide_s / r.decide_calls, 3)
                  << " ms/Decide)\n";
      }
    }
  };
  std::vector<std::thread> threads;
  for (int j = 0; j < f.jobs; ++j) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  for (const Task& t : tasks) {
    if (!t.result.ok()) return 1;
  }

  std::filesystem::create_directories(f.out);
  std::ofstream runs(f.out + "/runs.tsv");
  runs << "list\tpolicy\tseed\tunalloc_100\tunalloc_130\tfrag_gpus_100\tidle_gpus_100\tpods\tdropped\t"
          "preemptions\tdecide_s\twall_s\n";
  for (const Task& t : tasks) {
    const RunResult& r = *t.result;
    const CurvePoint& a = *r.At(100);
    runs << t.list << "\t" << t.policy << "\t" << t.seed << "\t" << Fmt(100 - a.allocated_pct, 3) << "\t"
         << Fmt(100 - r.curve.back().allocated_pct, 3) << "\t" << Fmt(a.frag_gpus, 1) << "\t"
         << Fmt(a.idle_gpus, 1) << "\t" << r.pods << "\t" << r.failed << "\t" << r.preemptions << "\t"
         << Fmt(r.decide_s, 2) << "\t" << Fmt(r.wall_s, 2) << "\n";
  }

  std::ostringstream md;
  md << "# Placement on the Alibaba GPU trace v2023 (herd sched::Decide, " << f.seeds << " seeds)\n\n"
     << "Unallocated GPU % (mean ± sd over seeds) at arrived GPU demand = 100 % and 130 % of capacity; "
        "fragmentation at 100 % in GPUs and as % of the idle GPUs; published: the FGD paper (ATC'23).\n";
  std::ofstream gp(f.out + "/placement.gp");
  gp << "# gnuplot " << f.out << "/placement.gp  (run from the repository root)\n"
     << "set terminal svg size 800,500\nset xlabel 'arrived GPU demand (% of capacity)'\n"
     << "set ylabel 'GPU allocation ratio (%)'\nset grid\n";
  for (const std::string& list : f.lists) {
    md << "\n## " << list << "\n\n| policy | unalloc @100 % | published | unalloc @130 % | frag @100 % (GPUs) | "
          "frag / idle % | dropped pods | s / run | ms / Decide |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    std::ofstream curve(f.out + "/curve-" + list + ".tsv");
    curve << "arrived_pct";
    for (const std::string& p : f.policies) curve << "\t" << p << "\t" << p << "_sd\t" << p << "_frag_gpus";
    curve << "\n";
    std::map<std::string, std::vector<const RunResult*>> by_policy;
    for (const Task& t : tasks) {
      if (t.list == list) by_policy[t.policy].push_back(&*t.result);
    }
    size_t points = SIZE_MAX;
    for (const auto& [p, rs] : by_policy) {
      for (const RunResult* r : rs) points = std::min(points, r->curve.size());
    }
    for (size_t i = 0; i < points; ++i) {
      curve << by_policy.begin()->second.front()->curve[i].arrived_pct;
      for (const std::string& p : f.policies) {
        std::vector<double> alloc, frag;
        for (const RunResult* r : by_policy[p]) {
          alloc.push_back(r->curve[i].allocated_pct);
          frag.push_back(r->curve[i].frag_gpus);
        }
        Stat a = MeanSd(alloc);
        curve << "\t" << Fmt(a.mean, 3) << "\t" << Fmt(a.sd, 3) << "\t" << Fmt(MeanSd(frag).mean, 1);
      }
      curve << "\n";
    }
    for (const std::string& p : f.policies) {
      std::vector<double> u100, u130, frag, frag_idle, dropped, wall, per_call;
      for (const RunResult* r : by_policy[p]) {
        const CurvePoint& a = *r->At(100);
        u100.push_back(100 - a.allocated_pct);
        u130.push_back(100 - r->curve.back().allocated_pct);
        frag.push_back(a.frag_gpus);
        frag_idle.push_back(100 * a.frag_gpus / std::max(a.idle_gpus, 1e-9));
        dropped.push_back(static_cast<double>(r->failed));
        wall.push_back(r->wall_s);
        per_call.push_back(1e3 * r->decide_s / static_cast<double>(r->decide_calls));
      }
      auto pub = kPublished.count(list) && kPublished.at(list).count(p) ? Fmt(kPublished.at(list).at(p)) : "—";
      md << "| " << p << " | " << Fmt(MeanSd(u100)) << " | " << pub << " | " << Fmt(MeanSd(u130)) << " | "
         << Fmt(MeanSd(frag).mean, 1) << " | " << Fmt(MeanSd(frag_idle).mean, 1) << " | "
         << Fmt(MeanSd(dropped).mean, 0) << " | " << Fmt(MeanSd(wall).mean, 1) << " | "
         << Fmt(MeanSd(per_call).mean, 3) << " |\n";
    }
    // The whole curve, and an inset of the saturated end where the policies differ.
    std::string lines;
    for (size_t i = 0; i < f.policies.size(); ++i) {
      lines += (i ? ", '" : "'") + f.out + "/curve-" + list + ".tsv' using 1:" + std::to_string(2 + 3 * i) +
               " with lines lw 2 lc " + std::to_string(i + 1) + " dt " + (f.policies[i] == "fgd" ? "2" : "1") +
               " title '" + f.policies[i] + "'";
    }
    if (kPublished.count(list) && kPublished.at(list).count("fgd")) {  // the paper's FGD at 100 %
      lines += ", '+' using (100):(" + Fmt(100 - kPublished.at(list).at("fgd")) +
               ") every ::0::0 with points pt 7 ps 1.2 lc 'black' title 'published FGD'";
    }
    gp << "set output '" << f.out << "/placement-" << list << ".svg'\nset multiplot\nset title 'herd placement, "
       << list << " pod list (" << f.seeds << " seeds)'\nset key top left\nplot [0:130] [0:100] " << lines
       << ", x with lines dashtype 3 lc 'gray' title 'arrived'\n"
       << "set origin 0.45,0.13\nset size 0.52,0.48\nunset title\nunset xlabel\nunset ylabel\nunset key\n"
       << "plot [80:130] [80:100] " << lines << "\nunset multiplot\nreset\n"
       << "set terminal svg size 800,500\nset xlabel 'arrived GPU demand (% of capacity)'\n"
       << "set ylabel 'GPU allocation ratio (%)'\nset grid\n";
  }
  std::ofstream(f.out + "/summary.md") << md.str();
  std::cout << md.str() << "\nfiles: " << f.out << "/{summary.md,runs.tsv,curve-*.tsv,placement.gp}\n";
  return 0;
}

}  // namespace
}  // namespace herd::sim

int main(int argc, char** argv) { return herd::sim::Main(argc, argv); }
