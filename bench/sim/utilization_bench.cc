// utilization_bench: a synthetic month of a research team played twice on the
// same demand through herd's scheduler core, with static per-researcher GPUs
// and with herd's quotas, under an open-loop and a closed-loop (researchers
// wait for results) demand model. See bench/README.md.
//   utilization_bench --out bench/results/utilization --report
//   bench/results/utilization.md
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "bench/sim/team_workload.h"
#include "bench/sim/utilization_sim.h"

namespace herd::sim {
namespace {

struct Flags {
  std::string out = "bench/results/utilization";
  std::string report = "bench/results/utilization.md";
  std::string plot = "bench/results/utilization.svg";
  uint64_t seed = 1;
  int days = 30;
  int64_t cycle_s = 30;
  double load = 1;
  std::vector<double> sensitivity = {0.5, 0.75};  // further loads, summary rows only
  std::vector<Demand> demands = {Demand::kOpen, Demand::kClosed};
  double think_median_min = TeamParams().think_median_min;
  double think_sigma = TeamParams().think_sigma;
  bool think_office_hours = TeamParams().think_office_hours;
  int64_t reclaim_backoff_s = sched::Policy().reclaim_backoff_s;
};

constexpr char kUsage[] =
    "usage: utilization_bench [--out DIR] [--report FILE.md] [--plot FILE.svg] "
    "[--seed N] [--days N]\n"
    "         [--cycle SECONDS] [--load X] [--sensitivity X,Y,..|none] "
    "[--demand open,closed]\n"
    "         [--think-median MINUTES] [--think-sigma X] [--think-hours "
    "office|any] [--reclaim-backoff SECONDS]\n"
    "  --out: raw data (series.tsv, jobs.tsv) and the gnuplot script "
    "utilization.gp, which writes\n"
    "    --plot; --report: the Markdown report; --cycle: scheduling cycle, "
    "divides 3600 (default 30);\n"
    "  --load: multiplies the training and sweep arrival rates (default 1); "
    "--sensitivity: further\n"
    "    loads run for one summary table (default 0.5,0.75; above 1 the\n"
    "    herd backlog grows to thousands of jobs and each run takes many "
    "minutes);\n"
    "  --demand: the demand models to run, open (arrivals at drawn times) "
    "and/or closed (each\n"
    "    researcher submits the next experiment when the last one returned, "
    "after a think time;\n"
    "    default both); --think-median / --think-sigma: the closed model's "
    "think time, lognormal\n"
    "    (default median 60 min, sigma 1), divided by load x the researcher's "
    "activity;\n"
    "    --think-hours: office (default: thinking only on weekdays 9:00-19:00) "
    "or any (round the clock)\n"
    "  --reclaim-backoff: herd.toml's [scheduler] reclaim_backoff for herd (default 900; 0 off)\n";

Status ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return Invalid("");
    if (i + 1 >= argc) return Invalid(a.rfind("--", 0) == 0 ? a + " needs a value" : "unknown argument " + a);
    std::string v = argv[++i];
    try {
      if (a == "--out") f->out = v;
      else if (a == "--report") f->report = v;
      else if (a == "--plot") f->plot = v;
      else if (a == "--seed") f->seed = std::stoull(v);
      else if (a == "--days") f->days = std::stoi(v);
      else if (a == "--cycle") f->cycle_s = std::stoll(v);
      else if (a == "--load") f->load = std::stod(v);
      else if (a == "--reclaim-backoff")
        f->reclaim_backoff_s = std::stoll(v);
      else if (a == "--think-median")
        f->think_median_min = std::stod(v);
      else if (a == "--think-sigma")
        f->think_sigma = std::stod(v);
      else if (a == "--think-hours") {
        if (v != "office" && v != "any")
          return Invalid("--think-hours takes office or any, not '" + v + "'");
        f->think_office_hours = v == "office";
      } else if (a == "--demand") {
        f->demands.clear();
        std::stringstream in(v);
        for (std::string x; std::getline(in, x, ',');) {
          if (x != "open" && x != "closed")
            return Invalid("--demand takes open, closed or open,closed, not '" + v + "'");
          Demand d = x == "open" ? Demand::kOpen : Demand::kClosed;
          if (std::find(f->demands.begin(), f->demands.end(), d) == f->demands.end())
            f->demands.push_back(d);
        }
        if (f->demands.empty()) return Invalid("--demand needs open, closed or both");
      } else if (a == "--sensitivity") {
        f->sensitivity.clear();
        if (v != "none") {
          std::stringstream in(v);
          for (std::string x; std::getline(in, x, ',');) f->sensitivity.push_back(std::stod(x));
        }
      } else
        return Invalid("unknown flag " + a);
    } catch (const std::exception&) {
      return Invalid(a + " needs a number, not '" + v + "'");
    }
  }
  if (f->days < 1 || f->days > 366) return Invalid("--days must be 1..366");
  if (f->load < 0) return Invalid("--load must not be negative");
  for (double x : f->sensitivity) {
    if (x < 0) return Invalid("--sensitivity loads must not be negative");
  }
  if (f->cycle_s <= 0 || 3600 % f->cycle_s != 0) return Invalid("--cycle must divide 3600 seconds");
  if (!(f->think_median_min > 0) || f->think_sigma < 0) {
    return Invalid("--think-median must be positive and --think-sigma not negative");
  }
  return Status::Ok();
}

std::string Fixed(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string Wait(double s) {  // "45 s", "12 min", "3.4 h", "2.1 d"
  if (s < 60) return Fixed(s, 0) + " s";
  if (s < 3600) return Fixed(s / 60, 0) + " min";
  if (s < 86400) return Fixed(s / 3600, 1) + " h";
  return Fixed(s / 86400, 1) + " d";
}

// What the month asks of the cluster, from the workload alone.
struct Offered {
  double gpu_hours[kJobKinds] = {};   // train / sweep: work; sessions: as planned (forgotten: max_time)
  double busy_hours[kJobKinds] = {};  // the same, times the busy fraction
  int64_t jobs[kJobKinds] = {};
};

Offered OfferedLoad(const TeamWorkload& w, const UtilizationOptions& o) {
  Offered off;
  for (const TeamJob& j : w.jobs) {
    const int k = static_cast<int>(j.kind);
    off.jobs[k]++;
    double hold = static_cast<double>(j.kind != JobKind::kSession ? j.work_s
                                      : j.forgotten          ? o.session_max_s
                                                             : std::min(j.work_s, o.session_max_s));
    double busy = j.busy * hold;
    if (j.kind == JobKind::kSession) {
      busy = 0;
      for (const Burst& b : j.bursts) busy += j.busy * static_cast<double>(b.end - b.begin);
    }
    off.gpu_hours[k] += j.gpus * hold / 3600;
    off.busy_hours[k] += j.gpus * busy / 3600;
  }
  return off;
}

// One load: the workload and both regimes played on it (in two threads).
struct Run {
  TeamWorkload workload;
  UtilizationOptions options[2];
  UtilizationResult result[2];  // static, herd
};

Result<Run> RunPair(const TeamParams &params, int64_t cycle_s, int64_t reclaim_backoff_s) {
  Result<TeamWorkload> w = MakeTeamWorkload(params);
  if (!w.ok()) return w.status();
  Run run;
  run.workload = std::move(w.value());
  run.options[0].regime = Regime::kStatic;
  run.options[1].regime = Regime::kHerd;
  run.options[0].cycle_s = run.options[1].cycle_s = cycle_s;
  run.options[1].policy.reclaim_backoff_s = reclaim_backoff_s;
  std::optional<Result<UtilizationResult>> results[2];
  {
    std::jthread other([&] { results[0].emplace(SimulateTeam(run.workload, run.options[0])); });
    results[1].emplace(SimulateTeam(run.workload, run.options[1]));
  }
  for (int i = 0; i < 2; ++i) {
    if (!results[i]->ok()) {
      return Status(results[i]->status().code(),
                    std::string(RegimeName(run.options[i].regime)) + ": " + results[i]->status().message());
    }
    run.result[i] = std::move(results[i]->value());
  }
  return run;
}

void WriteSeries(const Flags& f, const UtilizationResult& st, const UtilizationResult& hd) {
  std::ofstream out(f.out + "/series.tsv");
  out << "hour\tday\tstatic_allocated_pct\tstatic_utilized_pct\tstatic_pending_gpus"
         "\therd_allocated_pct\therd_utilized_pct\therd_pending_gpus\n";
  for (size_t h = 0; h < st.hours.size(); ++h) {
    const HourSample &a = st.hours[h], &b = hd.hours[h];
    out << h << '\t' << Fixed(static_cast<double>(h) / 24, 3) << '\t' << Fixed(a.allocated_pct, 2) << '\t'
        << Fixed(a.utilized_pct, 2) << '\t' << Fixed(a.pending_gpus, 1) << '\t' << Fixed(b.allocated_pct, 2)
        << '\t' << Fixed(b.utilized_pct, 2) << '\t' << Fixed(b.pending_gpus, 1) << '\n';
  }
}

void WriteJobs(const Flags& f, const TeamWorkload& w) {
  std::ofstream out(f.out + "/jobs.tsv");
  out << "id\tuser\tproject\tkind\tsubmit_s\tgpus\twork_s\tbusy\tforgotten\tsweep\n";
  for (const TeamJob& j : w.jobs) {
    const Researcher& r = w.researchers[j.user];
    out << j.id << '\t' << r.name << '\t' << w.projects[r.project].name << '\t' << KindName(j.kind) << '\t'
        << j.submit << '\t' << j.gpus << '\t' << j.work_s << '\t' << Fixed(j.busy, 3) << '\t'
        << j.forgotten << '\t' << j.sweep << '\n';
  }
}

void WritePlot(const Flags& f, const UtilizationResult& st, const UtilizationResult& hd) {
  std::ofstream out(f.out + "/utilization.gp");
  const std::string data = f.out + "/series.tsv";
  out << "# gnuplot " << f.out << "/utilization.gp  (writes " << f.plot << ")\n"
      << "set terminal svg size 1100,700 dynamic font 'sans,12' background '#ffffff'\n"
      << "set output '" << f.plot << "'\n"
      << "set datafile separator '\\t'\n"
      << "set key outside right top\n"
      << "set grid\n"
      << "set xrange [0:" << st.hours.size() / 24 << "]\n"
      << "set yrange [0:105]\n"
      << "set xtics 7\n"
      << "set mxtics 7\n"
      << "set multiplot layout 2,1 title 'Synthetic month, " << "emulated cluster (bench/sim): static per-researcher GPUs vs herd quotas'\n"
      << "set title 'GPU utilization (held GPUs x busy fraction), hourly; means: static "
      << Fixed(st.UtilizedPct()) << " %, herd " << Fixed(hd.UtilizedPct()) << " %'\n"
      << "set ylabel '% of GPUs'\n"
      << "plot '" << data << "' using 2:4 skip 1 with lines lw 1.5 lc rgb '#d62728' title 'static', \\\n"
      << "     '' using 2:7 skip 1 with lines lw 1.5 lc rgb '#1f77b4' title 'herd'\n"
      << "set title 'GPU allocation (GPUs held by jobs), hourly; means: static " << Fixed(st.AllocatedPct())
      << " %, herd " << Fixed(hd.AllocatedPct()) << " %'\n"
      << "set xlabel 'day of the month (day 0 is a Monday)'\n"
      << "plot '" << data << "' using 2:3 skip 1 with lines lw 1.5 lc rgb '#d62728' title 'static', \\\n"
      << "     '' using 2:6 skip 1 with lines lw 1.5 lc rgb '#1f77b4' title 'herd'\n"
      << "unset multiplot\n";
}

// The results table of one demand model at one load: static and herd side by
// side.
void ResultsTable(std::ostringstream &md, const TeamWorkload &w, const UtilizationResult &st,
                  const UtilizationResult &hd) {
  const double gpus = static_cast<double>(w.Gpus());
  const int kS = static_cast<int>(JobKind::kSession), kT = static_cast<int>(JobKind::kTrain),
            kW = static_cast<int>(JobKind::kSweep);
  md << "| | static | herd |\n|---|---:|---:|\n";
  auto row = [&](const std::string& name, const std::string& a, const std::string& b) {
    md << "| " << name << " | " << a << " | " << b << " |\n";
  };
  auto both = [&](const std::string &name, auto value) { row(name, value(st), value(hd)); };
  both("GPU utilization, mean (held GPUs x busy fraction)",
       [](const UtilizationResult &r) { return Fixed(r.UtilizedPct()) + " %"; });
  both("GPU allocation, mean (GPUs held by jobs)",
       [](const UtilizationResult &r) { return Fixed(r.AllocatedPct()) + " %"; });
  auto done = [](const UtilizationResult &r, int k) { return r.kinds[k].completed; };
  for (int k : {kT, kW}) {
    both(std::string(KindName(static_cast<JobKind>(k))) + " jobs completed / submitted",
         [&](const UtilizationResult &r) {
           return std::to_string(done(r, k)) + " / " + std::to_string(r.kinds[k].submitted);
         });
  }
  both("experiments per GPU (training + sweep jobs completed / " + std::to_string(w.Gpus()) +
           " GPUs)",
       [&](const UtilizationResult &r) {
         return Fixed(static_cast<double>(done(r, kT) + done(r, kW)) / gpus);
       });
  both(
      "experiments returned per GPU (a training job or a whole sweep, all its "
      "jobs done)",
      [&](const UtilizationResult &r) {
        return Fixed(static_cast<double>(r.ExperimentsReturned()) / gpus, 2) + " (" +
               std::to_string(r.ExperimentsReturned()) + ")";
      });
  both("training GPU-hours delivered (held)",
       [&](const UtilizationResult &r) { return Fixed(r.kinds[kT].gpu_hours, 0); });
  both("sweep GPU-hours delivered (held)",
       [&](const UtilizationResult &r) { return Fixed(r.kinds[kW].gpu_hours, 0); });
  both("session GPU-hours held / of them busy", [&](const UtilizationResult &r) {
    return Fixed(r.kinds[kS].gpu_hours, 0) + " / " + Fixed(r.kinds[kS].busy_gpu_hours, 0);
  });
  both("sessions opened (incl. reopened after idle termination)",
       [&](const UtilizationResult &r) { return std::to_string(r.kinds[kS].submitted); });
  both("sessions closed by the researcher / reached max_time (left open)",
       [&](const UtilizationResult &r) {
         return std::to_string(r.kinds[kS].completed) + " / " +
                std::to_string(r.kinds[kS].timed_out);
       });
  both("sessions stopped by idle_timeout / reopened later", [](const UtilizationResult &r) {
    return std::to_string(r.idle_terminations) + " / " + std::to_string(r.resubmissions);
  });
  for (int k : {kS, kT, kW}) {
    both(std::string("wait p50 / p90 / p99, ") + KindName(static_cast<JobKind>(k)),
         [&](const UtilizationResult &r) {
           return Wait(r.WaitPercentile(static_cast<JobKind>(k), 50)) + " / " +
                  Wait(r.WaitPercentile(static_cast<JobKind>(k), 90)) + " / " +
                  Wait(r.WaitPercentile(static_cast<JobKind>(k), 99));
         });
  }
  both("never started by the end: session / train / sweep", [&](const UtilizationResult &r) {
    return std::to_string(r.kinds[kS].submitted - r.kinds[kS].started) + " / " +
           std::to_string(r.kinds[kT].submitted - r.kinds[kT].started) + " / " +
           std::to_string(r.kinds[kW].submitted - r.kinds[kW].started);
  });
  both("jobs evicted", [&](const UtilizationResult &r) {
    std::string by;
    for (const auto &[kind, n] : r.preemptions_by_kind)
      by += (by.empty() ? "" : ", ") + kind + " " + std::to_string(n);
    return std::to_string(r.preemptions) + (by.empty() ? "" : " (" + by + "; train jobs " +
                                                              std::to_string(r.evicted[kT]) + ", sweep jobs " +
                                                              std::to_string(r.evicted[kW]) + ")");
  });
  both("GPU-hours of work lost to preemption",
       [](const UtilizationResult &r) { return Fixed(r.lost_gpu_hours, 0); });
}

// Evictions by kind of a herd run, "consolidate 1, preempt 2, reclaim 3" ("0"
// without any).
std::string EvictionsByKind(const UtilizationResult &r) {
  std::string by;
  for (const auto &[kind, n] : r.preemptions_by_kind)
    by += (by.empty() ? "" : ", ") + kind + " " + std::to_string(n);
  return by.empty() ? "0" : by;
}

std::string RunName(const Run &r) {
  return std::string(DemandName(r.workload.params.demand)) + " " + Fixed(r.workload.params.load, 2);
}

void WriteReport(const Flags &f, const std::vector<Run> &runs) {
  const Run &main_run = runs.front();
  const TeamWorkload &w = main_run.workload;
  const UtilizationOptions &o = main_run.options[1];
  const UtilizationResult &st = main_run.result[0], &hd = main_run.result[1];
  const TeamParams &p = w.params;
  const double gpus = static_cast<double>(w.Gpus());
  const double capacity_h = gpus * static_cast<double>(w.DurationS()) / 3600;
  const int kS = static_cast<int>(JobKind::kSession), kT = static_cast<int>(JobKind::kTrain),
            kW = static_cast<int>(JobKind::kSweep);
  std::ostringstream md;
  md << "# GPU utilization: static per-researcher GPUs vs herd's guaranteed "
        "quotas\n\n"
     << "A synthetic month (" << p.days << " days) of a " << w.researchers.size()
     << "-researcher team in " << w.projects.size() << " projects on " << w.nodes.size()
     << " emulated servers (" << w.Gpus()
     << " GPUs), played twice on the same demand through herd's real scheduler "
        "core (`sched::Decide`, "
     << "placement `" << sched::PlacementName(o.policy.placement)
     << "`) by `bench/sim/utilization_bench`, "
     << "under two models of demand: open-loop (experiments arrive at drawn "
        "times whatever the cluster "
        "does) and closed-loop (each researcher submits the next experiment "
        "when the previous one has "
        "returned, after a think time). Nothing runs on GPUs: jobs, their "
        "durations and their GPU activity "
        "come from the workload model below, and every number here depends on "
        "it.\n\n"
     << "Reproduce: `make bench-utilization` (= `bench/sim/run-utilization "
        "build`, which runs "
     << "`build/bin/utilization_bench --seed " << f.seed << " --days " << f.days << " --cycle "
     << f.cycle_s << " --load " << Fixed(f.load, 2) << " --sensitivity ";
  for (size_t i = 0; i < f.sensitivity.size(); ++i) md << (i > 0 ? "," : "") << f.sensitivity[i];
  if (f.sensitivity.empty()) md << "none";
  md << " --demand ";
  for (size_t i = 0; i < f.demands.size(); ++i)
    md << (i > 0 ? "," : "") << DemandName(f.demands[i]);
  md << " --think-median " << f.think_median_min << " --think-sigma " << f.think_sigma
     << " --think-hours " << (f.think_office_hours ? "office" : "any")
     << "` and gnuplot). Raw data: `bench/results/utilization/` (series.tsv, "
        "jobs.tsv of the first run; "
        "not tracked).\n\n"
     << "Machine: " << std::thread::hardware_concurrency()
     << " cores (shared), the two regimes of a run in "
        "parallel threads; wall time of the first run: static "
     << Fixed(st.wall_s) << " s (" << st.decide_calls << " `Decide` calls, "
     << Fixed(1000 * st.decide_s / std::max<int64_t>(1, st.decide_calls), 3) << " ms each), herd "
     << Fixed(hd.wall_s) << " s (" << hd.decide_calls << " calls, "
     << Fixed(1000 * hd.decide_s / std::max<int64_t>(1, hd.decide_calls), 3) << " ms each).\n\n"
     << "![GPU utilization and allocation over the month](utilization.svg)\n\n";
  for (const Run &r : runs) {
    if (r.workload.params.load != f.load) continue;
    md << "## Results, " << DemandName(r.workload.params.demand) << "-loop demand, load "
       << Fixed(r.workload.params.load, 2) << "\n\n";
    ResultsTable(md, r.workload, r.result[0], r.result[1]);
    md << "\n";
  }
  md << "Waits run from submission to the first start; a job never started "
        "counts with its wait so far "
        "(a lower bound). Percentiles are nearest-rank. An experiment returns "
        "when its last job is done.\n\n";

  auto exp_ratio = [&](const Run &r) {
    const UtilizationResult &a = r.result[0], &b = r.result[1];
    return Fixed(static_cast<double>(b.kinds[kT].completed + b.kinds[kW].completed) /
                     std::max<double>(
                         1, static_cast<double>(a.kinds[kT].completed + a.kinds[kW].completed)),
                 2) +
           " in jobs, x" +
           Fixed(static_cast<double>(b.ExperimentsReturned()) /
                     std::max<double>(1, static_cast<double>(a.ExperimentsReturned())),
                 2) +
           " in experiments returned";
  };
  md << "## Against the reference story\n\n"
     << "The reference story: utilization of 28 % under static allocation rose "
        "above 70 % with guaranteed "
        "quotas, and experiments per GPU doubled. Here, at load "
     << Fixed(f.load, 2) << ":\n\n";
  for (const Run &r : runs) {
    if (r.workload.params.load != f.load) continue;
    md << "* " << DemandName(r.workload.params.demand) << "-loop: utilization "
       << Fixed(r.result[0].UtilizedPct()) << " % -> " << Fixed(r.result[1].UtilizedPct())
       << " % (x" << Fixed(r.result[1].UtilizedPct() / std::max(1e-9, r.result[0].UtilizedPct()), 2)
       << "), experiments per GPU x" << exp_ratio(r) << ".\n";
  }
  md << "\n";
  if (p.demand == Demand::kOpen) {
    const Offered off = OfferedLoad(w, o);
    const double offered_hold = off.gpu_hours[kT] + off.gpu_hours[kW] + off.gpu_hours[kS];
    const double offered_busy = off.busy_hours[kT] + off.busy_hours[kW] + off.busy_hours[kS];
    md << "What bounds the open-loop numbers, from the workload alone: the "
          "month offers "
       << Fixed(offered_hold, 0) << " GPU-hours of holding ("
       << Fixed(100 * offered_hold / capacity_h) << " % of the cluster's " << Fixed(capacity_h, 0)
       << "; training " << Fixed(off.gpu_hours[kT], 0) << ", sweeps " << Fixed(off.gpu_hours[kW], 0)
       << ", sessions as planned " << Fixed(off.gpu_hours[kS], 0) << ") with "
       << Fixed(offered_busy, 0) << " GPU-hours of GPU activity: about "
       << Fixed(100 * offered_busy / capacity_h)
       << " % mean utilization if every job ran within the month "
          "(work submitted near the end cannot; work lost to preemption and "
          "run again adds to the figure "
          "without adding results). herd's figure is bounded by that; the "
          "static figure is low because demand is "
          "uneven (researchers' activity multipliers are lognormal, sigma "
       << Fixed(p.activity_sigma, 2) << ": heavy users queue behind their own "
       << w.researchers[0].gpus
       << " GPUs while light users' GPUs "
          "sit empty), bursty (weekdays, deadlines) and because sessions hold "
          "GPUs that are mostly idle.\n\n"
       << "Experiments per GPU: under open-loop demand the job list is the "
          "same in both regimes, so herd can "
          "only add the work static leaves unfinished. Under closed-loop "
          "demand a researcher whose "
          "experiment returns sooner submits the next one sooner: herd's "
          "shorter waits and wider jobs "
          "(a sweep spread over idle GPUs instead of one researcher's "
       << w.researchers[0].gpus
       << ") turn into more experiments, as researchers who submit more once "
          "they get more GPUs would "
          "(the likely source of the reference story's doubling). Sweep jobs, "
          "many and short, dominate the "
          "job count, hence the second measure, experiments returned. herd "
          "pays for sharing with evictions (open "
       << hd.preemptions << ", " << Fixed(hd.lost_gpu_hours, 0)
       << " GPU-hours of work lost) and with sessions stopped when idle (open "
       << hd.idle_terminations << ", of which " << hd.resubmissions
       << " reopened and waited again).\n\n";
  }

  md << "## Both demand models at each load\n\n"
     << "The same team, seed and model with the training and sweep arrival "
        "rates (open) or the rate of "
        "thinking (closed: think time / load) multiplied by `load`; sessions "
        "unchanged.\n\n"
     << "| demand | load | utilization static / herd | allocation static / "
        "herd "
        "| experiments per GPU (jobs) static / herd | experiments returned per "
        "GPU static / herd "
        "| train wait p90 static / herd | herd evictions by kind | herd "
        "GPU-hours lost |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---|---:|\n";
  for (const Run &r : runs) {
    auto exp = [&](const UtilizationResult &x) {
      return Fixed(static_cast<double>(x.kinds[kT].completed + x.kinds[kW].completed) / gpus);
    };
    auto ret = [&](const UtilizationResult &x) {
      return Fixed(static_cast<double>(x.ExperimentsReturned()) / gpus, 2);
    };
    const UtilizationResult &a = r.result[0], &b = r.result[1];
    md << "| " << DemandName(r.workload.params.demand) << " | " << Fixed(r.workload.params.load, 2)
       << " | " << Fixed(a.UtilizedPct()) << " / " << Fixed(b.UtilizedPct()) << " % | "
       << Fixed(a.AllocatedPct()) << " / " << Fixed(b.AllocatedPct()) << " % | " << exp(a) << " / "
       << exp(b) << " | " << ret(a) << " / " << ret(b) << " | "
       << Wait(a.WaitPercentile(JobKind::kTrain, 90)) << " / "
       << Wait(b.WaitPercentile(JobKind::kTrain, 90)) << " | " << b.preemptions << " ("
       << EvictionsByKind(b) << ") | " << Fixed(b.lost_gpu_hours, 0) << " |\n";
  }
  md << "\n";
  // herd's evictions by cause in each run: what each was for, and what was free
  // at the decision.
  std::set<std::string> causes;
  for (const Run& r : runs) {
    for (const auto& [cause, n] : r.result[1].eviction_causes) causes.insert(cause);
  }
  md << "## herd's evictions by cause\n\n"
     << "Each eviction by kind, the victim's and the beneficiary's job kinds "
        "(victim<-beneficiary), for a "
        "reclaim whether the beneficiary's project stays within its deserved "
        "quota with it, and what was "
        "free once the cycle's starts had taken their GPUs (less the room held "
        "for jobs whose victims "
        "stop): a node with the GPUs it needs, only a node reserved by that "
        "cycle's reservations, enough "
        "GPUs in all but on no one node, or too few. \"(beneficiaries)\" "
        "counts the jobs evicted for. "
        "Columns: demand model and load.\n\n"
     << "| cause |";
  for (const Run &r : runs) md << " " << RunName(r) << " |";
  md << "\n|---|";
  for (size_t i = 0; i < runs.size(); ++i) md << "---:|";
  md << "\n";
  for (const std::string& cause : causes) {
    md << "| " << cause << " |";
    for (const Run& r : runs) {
      auto it = r.result[1].eviction_causes.find(cause);
      md << " " << (it == r.result[1].eviction_causes.end() ? 0 : it->second) << " |";
    }
    md << "\n";
  }
  md << "| all evictions |";
  for (const Run& r : runs) md << " " << r.result[1].preemptions << " |";
  md << "\n\n";
  const Offered off = OfferedLoad(w, o);  // sessions: the same in both models
  md << "## The model\n\n"
     << "* **Clock**: cycles of " << o.cycle_s << " s (" << w.DurationS() / o.cycle_s << " per regime). Each "
        "cycle, as herd-ctld orders it: arrivals, ends (work done, session closed, `max_time`), idle "
        "terminations, one scheduling pass, then the sample. Ends and releases fall on the next cycle.\n"
     << "* **static**: every researcher owns " << w.researchers[0].gpus << " GPUs on one node (the cluster "
        "divided equally, blocks dealt at random; a block of an A100 server has half its cores and memory) "
        "and their jobs run only there: per researcher one `Decide` over a snapshot of just that block, with "
        "one queue whose deserved quota and limit are the block; nothing is preemptible and there is no "
        "idle termination (the GPUs are the researcher's). A researcher whose block and queue did not "
        "change since their last `Decide` is skipped (the answer would be the same).\n"
     << "* **herd**: one `Decide` over the whole cluster with the projects as queues, deserved GPUs in "
        "proportion to members (";
  for (size_t i = 0; i < w.projects.size(); ++i) {
    md << (i ? ", " : "") << w.projects[i].name << " " << w.projects[i].deserved_gpus;
  }
  md << "; sum = the cluster), no limit, over-quota weight 1. Class "
        "`interactive` (sessions): priority 100, "
        "not preemptible, within quota only, `max_time` "
     << o.session_max_s / 3600 << " h, `idle_timeout` " << o.idle_timeout_s / 60
     << " min. Class `train` (training jobs and sweeps): priority 50, "
        "preemptible, "
        "may go over quota, `min_runtime` "
     << o.min_runtime_s / 60
     << " min. Reclaim, preemption and "
        "consolidation as `Decide` returns them; an evicted job is pending "
        "again at once with its place in "
        "line and, like herd-ctld, is offered again only once the job it made "
        "room for has started.\n"
     << "* **Preemption cost**: training jobs checkpoint every " << o.checkpoint_s / 60
     << " min and resume "
        "from the last checkpoint; sweep jobs restart from scratch (no restart "
        "overhead otherwise).\n"
     << "* **Idle termination** (herd only) is herd-ctld's rule "
        "(ctld/lifecycle.cc `UpdateIdle`, "
        "`CheckTimeLimits`): a running job of a class with an `idle_timeout` "
        "whose GPUs all report 0 % is "
        "stopped once they have been seen idle for `idle_timeout`; here the "
        "GPUs are read every cycle. A "
        "session's GPUs report the burst's busy fraction during its bursts and "
        "0 % between them. The "
        "researcher reopens a stopped session when their next burst would have "
        "begun (a new submission, "
        "which waits like any other), with the rest of the day's plan.\n"
     << "* **Utilization** = GPUs held x the job's busy fraction at the "
        "sample; allocation = GPUs held. GPU "
        "models do not change run times; every job is one worker of whole GPUs "
        "(1, 2 or 4, so that each "
        "fits a static block).\n"
     << "* **Demand**: open-loop, training jobs and sweeps arrive at the times "
        "drawn below whatever the "
        "cluster does. Closed-loop, each researcher has one experiment (a "
        "training job, or a sweep as a "
        "whole) in flight at a time: when its last job is done they think, "
        "then submit the next one. The "
        "next experiment is a sweep with probability "
     << p.sweeps_per_week << " / (" << p.sweeps_per_week << " + 7 x " << p.train_per_day
     << ") (the open model's mix), else a training job, shaped as below. "
        "Think time: lognormal, median "
     << f.think_median_min << " min, sigma " << f.think_sigma
     << ", divided by load x the researcher's activity, clipped to 1 min - 7 "
        "d; "
     << (f.think_office_hours ? "it counts only weekday hours 9:00-19:00 (a result that returns "
                                "at night or "
                                "on a weekend is looked at the next working morning)"
                              : "it runs round the clock")
     << ". The first experiment comes after one think time from the month's "
        "start (a Monday, 0:00). "
        "Each researcher's experiments and think times are drawn from a "
        "generator of their own (seeded "
        "by the seed and the researcher), so both regimes see the same "
        "sequence; only the submit times "
        "differ. Sessions are the same in both models.\n\n";

  md << "## The workload (seed " << p.seed << ")\n\n"
     << "* Cluster: " << p.a100_servers << " servers of 8x NVIDIA A100-SXM4-40GB, 128 cores (8 NUMA nodes x "
        "16), 1 TiB, GPU g on NUMA node g (shaped like etc/topologies/dgx-a100-8gpu.xml); "
     << p.workstations << " workstations of 4x NVIDIA RTX A6000, 16 cores, 128 GiB (like "
        "workstation-4gpu.xml). " << w.Gpus() << " GPUs.\n"
     << "* Team: ";
  for (size_t i = 0; i < p.projects.size(); ++i) {
    md << (i ? ", " : "") << p.projects[i].first << " " << p.projects[i].second;
  }
  md << " researchers. Load " << Fixed(p.load, 2) << ". Each has an activity multiplier for training and sweep arrivals, lognormal(0, "
     << Fixed(p.activity_sigma, 2) << ") scaled to a team mean of 1 (here from ";
  double lo = 1e9, hi = 0;
  for (const Researcher& r : w.researchers) lo = std::min(lo, r.activity), hi = std::max(hi, r.activity);
  md << Fixed(lo, 2) << " to " << Fixed(hi, 2) << "). Each project has a deadline day (";
  for (size_t i = 0; i < w.projects.size(); ++i) {
    md << (i ? ", " : "") << w.projects[i].name << " " << w.deadline_day[i];
  }
  md << "; drawn in [" << p.deadline_first_day << ", " << p.days << ")).\n"
     << "* Sessions (interactive/build, class interactive): on a weekday a "
        "researcher opens one at 9:00-11:30 "
        "with probability "
     << p.session_weekday_p << " and another at 13:30-15:30 with probability "
     << p.session_afternoon_p
     << ", both open until they leave at 17:30-19:30; on a weekend day one "
        "with "
        "probability "
     << p.session_weekend_p << " at 11:00-15:00 for 2-5 h. " << p.session_two_gpu_p * 100
     << " % ask 2 GPUs, the rest 1. Activity: bursts (exponential, mean " << p.burst_mean_min
     << " min, at least 1 min) at " << p.burst_busy * 100
     << " % GPU busy, separated by idle gaps "
        "(exponential, mean "
     << p.gap_mean_min << " min), and a lunch break of " << p.lunch_min << "-"
     << p.lunch_min * 3 / 2 << " min from about noon. " << p.session_forgotten_p * 100
     << " % are left open when the researcher leaves (held until max_time). "
        "Offered: "
     << off.jobs[kS] << " sessions, " << Fixed(off.gpu_hours[kS], 0) << " GPU-hours held, "
     << Fixed(100 * off.busy_hours[kS] / std::max(1e-9, off.gpu_hours[kS])) << " % busy.\n"
     << "* Training jobs (class train): " << p.train_per_day
     << " per researcher per day at activity 1; " << p.train_gpus_p[0] * 100 << " / "
     << p.train_gpus_p[1] * 100 << " / " << p.train_gpus_p[2] * 100
     << " % ask 1 / 2 / 4 GPUs; run time lognormal, median " << p.train_median_h << " h, sigma "
     << p.train_sigma << ", clipped to 0.5 h - 4 d; busy uniform " << p.train_busy_min << "-"
     << p.train_busy_max << ". Offered (open model, load " << Fixed(p.load, 2)
     << "): " << off.jobs[kT] << " jobs, " << Fixed(off.gpu_hours[kT], 0) << " GPU-hours.\n"
     << "* Sweeps (class train): " << p.sweeps_per_week
     << " per researcher per week at activity 1, each " << p.sweep_min << "-" << p.sweep_max
     << " one-GPU jobs submitted at once; run time lognormal, median " << p.sweep_median_min
     << " min, sigma " << p.sweep_sigma << ", clipped to 5 min - 4 h; busy " << p.sweep_busy
     << ". Offered (open model): " << off.jobs[kW] << " jobs, " << Fixed(off.gpu_hours[kW], 0)
     << " GPU-hours.\n"
     << "* Open-loop arrivals of training jobs and sweeps: Poisson per hour, "
        "rate x the time of week (weekdays "
        "9:00-19:00 x"
     << p.weekday_day_rate << ", weekday nights x" << p.weekday_night_rate << ", weekends x"
     << p.weekend_rate << ", normalized to a weekly mean of 1), x" << p.deadline_boost << " in the "
     << p.deadline_before_days << " days before the project's deadline and x" << p.deadline_after
     << " in the " << p.deadline_after_days << " days after it.\n"
     << "* Every job asks " << p.cpus_per_gpu << " cores and " << p.memory_mib_per_gpu / 1024
     << " GiB of memory per GPU.\n";
  std::ofstream(f.report) << md.str();
}

int Main(int argc, char** argv) {
  Flags f;
  if (Status s = ParseFlags(argc, argv, &f); !s.ok()) {
    if (!s.message().empty()) std::cerr << "utilization_bench: " << s.message() << "\n";
    std::cerr << kUsage;
    return s.message().empty() ? 0 : 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(f.out, ec);
  if (ec) {
    std::cerr << "utilization_bench: cannot create " << f.out << ": " << ec.message() << "\n";
    return 1;
  }
  std::vector<double> loads = {f.load};
  loads.insert(loads.end(), f.sensitivity.begin(), f.sensitivity.end());
  std::vector<Run> runs;
  for (double load : loads) {
    for (Demand demand : f.demands) {
      TeamParams params;
      params.seed = f.seed;
      params.days = f.days;
      params.load = load;
      params.demand = demand;
      params.think_median_min = f.think_median_min;
      params.think_sigma = f.think_sigma;
      params.think_office_hours = f.think_office_hours;
      Result<Run> r = RunPair(params, f.cycle_s, f.reclaim_backoff_s);
      if (!r.ok()) {
        std::cerr << "utilization_bench: " << r.status().message() << "\n";
        return r.status().code() == Code::kInvalid ? 2 : 1;
      }
      const UtilizationResult &st = r->result[0], &hd = r->result[1];
      std::printf(
          "%s load %.2f: utilization static %.1f %%, herd %.1f %%; "
          "allocation static %.1f %%, herd "
          "%.1f %%; experiments returned static %lld, herd %lld\n",
          DemandName(demand), load, st.UtilizedPct(), hd.UtilizedPct(), st.AllocatedPct(),
          hd.AllocatedPct(), static_cast<long long>(st.ExperimentsReturned()),
          static_cast<long long>(hd.ExperimentsReturned()));
      std::printf("  herd evictions %lld (%s; lost %.0f GPU-hours):\n",
                  static_cast<long long>(hd.preemptions), EvictionsByKind(hd).c_str(),
                  hd.lost_gpu_hours);
      for (const auto &[cause, n] : hd.eviction_causes)
        std::printf("    %6lld  %s\n", static_cast<long long>(n), cause.c_str());
      std::fflush(stdout);
      runs.push_back(std::move(r.value()));
    }
  }
  const Run& main_run = runs.front();
  WriteSeries(f, main_run.result[0], main_run.result[1]);
  WriteJobs(f, main_run.workload);
  WritePlot(f, main_run.result[0], main_run.result[1]);
  WriteReport(f, runs);
  std::printf("wrote %s, %s/{series.tsv,jobs.tsv,utilization.gp}\n", f.report.c_str(), f.out.c_str());
  return 0;
}

}  // namespace
}  // namespace herd::sim

int main(int argc, char** argv) { return herd::sim::Main(argc, argv); }
