// CheckScenario: runs a scenario cycle by cycle, applying each cycle's decisions and the
// statements between cycles, and checks every expectation (the format is in scenario.h).
#include "ctld/sched/scenario.h"
#include <algorithm>
#include <set>
#include <sstream>
#include "common/model/fleet.h"
#include "common/model/units.h"
#include "ctld/sched/estimate.h"
#include "ctld/sched/evictions.h"
#include "ctld/sched/internal.h"
#include "ctld/sched/scenario_lines.h"
#include "ctld/sched/snapshot_builder.h"

namespace herd::sched {
namespace {

using namespace scenario_lines;

// Gives back to its nodes what running job `r` holds (TakeFromNode took it).
void Release(Snapshot& s, const Scenario& sc, const RunningJob& r) {
  for (const auto& w : r.placement) {
    NodeView& n = *FindNode(s, w.node);
    for (int g : w.gpus) FindGpu(n, g);
    GiveBackToNode(n, w, r.request.gpu_memory_mib, sc.core_numa.at(n.name));
  }
}

// A running job stops: it releases its resources and waits again, with its place in line.
void StopRunning(Snapshot& s, const Scenario& sc, model::JobId id) {
  auto r = std::find_if(s.running.begin(), s.running.end(), [&](const RunningJob& x) { return x.id == id; });
  if (r == s.running.end()) throw std::runtime_error("job " + std::to_string(id) + " is not running");
  Release(s, sc, *r);
  s.pending.push_back(Requeued(*r, s.now));
  s.running.erase(r);
}

// herd-ctld's side of a cycle: victims stop (those in `stopping` still hold their resources) and
// are recorded with the job they were evicted for; started jobs run. `world` holds every job; the
// next Decide() sees it through View().
void ApplyDecisions(Snapshot& world, EvictedFor& evicted_for, RoomFor& room, const Scenario& sc, const Decisions& d,
                    const std::set<model::JobId>& stopping) {
  RecordEvictions(d, evicted_for, room);
  for (const PreemptDecision& p : d.preemptions) {
    CountReclaim(p, world.running);
    if (!stopping.count(p.id)) StopRunning(world, sc, p.id);
  }
  for (const StartDecision& st : d.starts) {
    auto p = std::find_if(world.pending.begin(), world.pending.end(), [&](const PendingJob& x) { return x.id == st.id; });
    RunningJob r = Started(*p, st.placement, world.now);
    for (const auto& w : r.placement) {
      TakeFromNode(*FindNode(world, w.node), w, r.request.gpu_memory_mib);
    }
    world.running.push_back(std::move(r));
    world.pending.erase(p);
  }
}

// What Decide() sees of `world`, as herd-ctld builds it (ctld/sched/evictions.h).
Snapshot View(const Snapshot& world, EvictedFor& evicted_for, RoomFor& room) {
  std::set<model::JobId> pending;
  for (const PendingJob& p : world.pending) pending.insert(p.id);
  ForgetSettled(evicted_for, room, [&](model::JobId id) { return pending.count(id) > 0; });
  Snapshot view = world;
  MarkEvictions(evicted_for, room, view);
  return view;
}

// A statement of a `cycle` section.
void ApplyStatement(Snapshot& s, const Scenario& sc, const std::string& text) {
  auto tokens = Tokens(text);
  Line l = ParseLine(tokens, 1);
  if (tokens[0] == "now") {
    s.now = std::stoll(l.words.at(0));
  } else if (tokens[0] == "pending") {
    s.pending.push_back(PendingOf(l, s.now));
  } else if (tokens[0] == "running") {
    s.running.push_back(RunningOf(l, s));
  } else if (tokens[0] == "stopping") {
    // read by CheckScenario before it applies the previous cycle's decisions
  } else if (tokens[0] == "stopped") {
    StopRunning(s, sc, std::stoll(l.words.at(0)));
  } else if (tokens[0] == "finish") {
    model::JobId id = std::stoll(l.words.at(0));
    auto r = std::find_if(s.running.begin(), s.running.end(), [&](const RunningJob& x) { return x.id == id; });
    if (r == s.running.end()) throw std::runtime_error("job " + l.words.at(0) + " is not running");
    Release(s, sc, *r);
    s.running.erase(r);
  } else {
    throw std::runtime_error("unknown statement in a cycle: " + tokens[0]);
  }
}

std::string WhereOf(const std::vector<model::WorkerPlacement>& p) {
  std::vector<std::string> parts;
  for (const auto& w : p) {
    std::string s = w.node + "[";
    for (size_t i = 0; i < w.gpus.size(); ++i) s += (i ? "," : "") + std::to_string(w.gpus[i]);
    parts.push_back(s + "]");
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const auto& s : parts) out += (out.empty() ? "" : "+") + s;
  return out;
}


// Checks one cycle's expectations against its decisions `d` for snapshot `snap`.
void CheckExpects(const Snapshot& snap, const Policy& policy,
                  const std::vector<std::pair<int, std::string>>& expects, const Decisions& d,
                  std::vector<std::string>& fails) {
  auto start_of = [&](model::JobId id) -> const StartDecision* {
    for (const auto& st : d.starts) {
      if (st.id == id) return &st;
    }
    return nullptr;
  };
  auto preempt_of = [&](model::JobId id) -> const PreemptDecision* {
    for (const auto& p : d.preemptions) {
      if (p.id == id) return &p;
    }
    return nullptr;
  };
  for (const auto& [number, text] : expects) {
    std::string where = "line " + std::to_string(number) + " (expect " + text + "): ";
    try {
      Line l = ParseLine(Tokens(text), 0);
      const std::string& what = l.words.at(0);
      auto id = [&] { return std::stoll(l.words.at(1)); };
      if (what == "start") {
        const StartDecision* st = start_of(id());
        if (!st) {
          auto r = d.pending_reasons.find(id());
          fails.push_back(where + "not started (" +
                          (r == d.pending_reasons.end() ? "" : model::ReasonText(r->second)) + ")");
        } else if (l.words.size() > 3) {
          auto want = ParseWhere(l.words.at(3));
          bool nodes_only = !want.front().second;
          std::string got = WhereOf(st->placement);
          std::string expected;
          if (nodes_only) {
            std::vector<model::WorkerPlacement> w;
            for (const auto& [node, g] : want) w.push_back({node, {}, 0, {}, 0, ""});
            expected = WhereOf(w);
            std::vector<model::WorkerPlacement> g2 = st->placement;
            for (auto& x : g2) x.gpus.clear();
            got = WhereOf(g2);
          } else {
            std::vector<model::WorkerPlacement> w;
            for (const auto& [node, g] : want) w.push_back({node, *g, 0, {}, 0, ""});
            expected = WhereOf(w);
          }
          if (got != expected) fails.push_back(where + "started on " + WhereOf(st->placement));
        }
      } else if (what == "nostart") {
        if (const StartDecision* st = start_of(id())) fails.push_back(where + "started on " + WhereOf(st->placement));
      } else if (what == "preempt") {
        const PreemptDecision* p = preempt_of(id());
        if (!p) {
          fails.push_back(where + "not preempted");
        } else if ((l.opts.count("for") && std::stoll(l.opts["for"]) != p->for_job) ||
                   (l.opts.count("kind") && l.opts["kind"] != EvictionKindName(p->kind))) {
          fails.push_back(where + "preempted for " + std::to_string(p->for_job) + " kind " + EvictionKindName(p->kind));
        }
      } else if (what == "nopreempt") {
        if (preempt_of(id()))
          fails.push_back(where + "preempted: " + EvictionText(*preempt_of(id())));
      } else if (what == "starts" || what == "preemptions") {
        size_t n = what == "starts" ? d.starts.size() : d.preemptions.size();
        if (n != std::stoul(l.words.at(1))) fails.push_back(where + "got " + std::to_string(n));
      } else if (what == "reason") {
        auto r = d.pending_reasons.find(id());
        std::string got =
            r == d.pending_reasons.end() ? "<no reason: started?>" : model::ReasonText(r->second);
        if (l.words.at(2) == "is") {  // by the code's name
          const char* code =
              r == d.pending_reasons.end() ? "<none>" : model::ReasonCodeName(r->second.code);
          if (l.words.at(3) != code)
            fails.push_back(where + "reason is " + code + ": \"" + got + "\"");
        } else if (got.find(l.words.at(3)) == std::string::npos) {
          fails.push_back(where + "reason is \"" + got + "\"");
        }
      } else if (what == "reserve") {
        const ReserveDecision* found = nullptr;
        for (const auto& r : d.reservations) {
          if (r.id == id()) found = &r;
        }
        if (!found) {
          fails.push_back(where + "no reservation");
        } else if (l.words.size() > 3 && DecList(l.words.at(3)) != found->nodes) {
          std::string got;
          for (const auto& n : found->nodes) got += n + " ";
          fails.push_back(where + "reserved " + got);
        }
      } else if (what == "share") {
        const QueueShare* q = nullptr;
        for (const auto& x : d.shares) {
          if (x.name == l.words.at(1)) q = &x;
        }
        if (!q) throw std::runtime_error("no share for " + l.words.at(1));
        for (const auto& [key, got] : {std::pair{"fair", q->fair_share}, std::pair{"allocated", q->allocated},
                                       std::pair{"deserved", q->deserved}}) {
          if (!l.opts.count(key)) continue;
          std::map<std::string, int64_t> typed, pooled;
          model::Resources want = ParseResources(l.opts[key], got, &typed, &pooled);
          if (!(want == got)) fails.push_back(where + key + " is " + model::FormatResources(got));
          for (const auto& [name, milli] : typed) pooled["gpu." + name] = milli;
          for (const auto& [name, milli] : pooled) {  // fair=gpu.h100:4 (of a type), pool.train:4
            const bool pool = !name.starts_with("gpu.");
            const auto& sets = pool ? q->by_pool : q->by_type;
            const std::string type = pool ? name : name.substr(4);
            auto t = sets.find(type);
            const std::string k = key;
            const int64_t have = t == sets.end()    ? 0
                                 : k == "fair"      ? t->second.fair_share
                                 : k == "allocated" ? t->second.allocated
                                                    : t->second.deserved;
            if (have != milli) {
              fails.push_back(where + key + " of " + (pool ? "pool " : "") + type + " is " +
                              model::FormatGpuMilli(have) + " GPUs");
            }
          }
        }
      } else if (what == "nic") {
        const StartDecision* st = start_of(id());
        if (!st || st->placement.front().nic != l.words.at(2)) {
          fails.push_back(where + "nic is " + (st ? st->placement.front().nic : "<not started>"));
        }
      } else if (what == "cores") {
        const StartDecision* st = start_of(id());
        auto range = Split(l.words.at(3), '-');
        int lo = std::stoi(range.at(0)), hi = std::stoi(range.at(1));
        if (!st) {
          fails.push_back(where + "not started");
        } else {
          for (int c : st->placement.front().cores) {
            if (c < lo || c > hi) fails.push_back(where + "core " + std::to_string(c) + " outside");
          }
        }
      } else if (what == "deterministic") {
        if (DumpDecisions(Decide(snap, policy)) != DumpDecisions(d)) {
          fails.push_back(where + "two runs differ");
        }
      } else if (what == "estimate") {
        // estimate ID by T | at T | none [over_limit|no_time_limit|never_fits]
        const PendingJob* job = nullptr;
        for (const PendingJob& p : snap.pending) {
          if (p.id == id()) job = &p;
        }
        if (job == nullptr) throw std::runtime_error("job " + l.words.at(1) + " is not pending");
        const StartEstimate e = EstimateStart(snap, *job);
        const std::string got = e.at >= 0
                                    ? "estimate " + std::to_string(e.at)
                                    : std::string("no estimate (") + NoEstimateName(e.none) + ")";
        const std::string& how = l.words.at(2);
        if (how == "none") {
          if (e.at >= 0 || (l.words.size() > 3 && l.words[3] != NoEstimateName(e.none))) {
            fails.push_back(where + got);
          }
        } else if (how == "by" || how == "at") {
          const int64_t t = std::stoll(l.words.at(3));
          if (e.at < 0 || (how == "by" ? e.at > t : e.at != t)) fails.push_back(where + got);
        } else {
          throw std::runtime_error("estimate: by T, at T or none, not " + how);
        }
      } else {
        throw std::runtime_error("unknown expectation " + what);
      }
    } catch (const std::exception& e) {
      fails.push_back(where + e.what());
    }
  }
}

}  // namespace

std::vector<std::string> CheckScenario(const Scenario& sc) {
  std::vector<std::string> fails = sc.errors;
  Snapshot world = sc.snapshot;
  EvictedFor evicted_for;
  RoomFor room;
  Snapshot snap = View(world, evicted_for, room);
  Decisions d = Decide(snap, sc.policy);
  CheckExpects(snap, sc.policy, sc.expects, d, fails);
  if (!fails.empty()) {
    fails.push_back("decisions:\n" + DumpDecisions(d));
    return fails;
  }
  for (size_t k = 0; k < sc.later.size(); ++k) {
    std::set<model::JobId> stopping;
    for (const auto& [number, text] : sc.later[k].statements) {
      auto tokens = Tokens(text);
      if (tokens.size() == 2 && tokens[0] == "stopping") stopping.insert(std::stoll(tokens[1]));
    }
    try {
      ApplyDecisions(world, evicted_for, room, sc, d, stopping);
    } catch (const std::exception& e) {
      fails.push_back(std::string("applying the decisions: ") + e.what());
    }
    for (const auto& [number, text] : sc.later[k].statements) {
      try {
        ApplyStatement(world, sc, text);
      } catch (const std::exception& e) {
        fails.push_back("line " + std::to_string(number) + ": " + e.what());
      }
    }
    snap = View(world, evicted_for, room);
    d = Decide(snap, sc.policy);
    CheckExpects(snap, sc.policy, sc.later[k].expects, d, fails);
    if (!fails.empty()) {
      fails.push_back("decisions of cycle " + std::to_string(k + 2) + ":\n" + DumpDecisions(d));
      return fails;
    }
  }
  return fails;
}

}  // namespace herd::sched
