#include "ctld/sched/evictions.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace herd::sched {

void RecordEvictions(const Decisions& decisions, EvictedFor& evicted_for, RoomFor& room) {
  for (const PreemptDecision& p : decisions.preemptions) {
    if (p.for_job != 0 && p.for_job != p.id) evicted_for[p.id] = p.for_job;
  }
  RecordRoom(decisions, room);
}

void RecordRoom(const Decisions& decisions, RoomFor& room) {
  for (const PreemptDecision& p : decisions.preemptions) {
    if (p.for_job != 0 && p.for_job != p.id && !p.room.empty()) room[p.for_job] = p.room;
  }
}

void CountReclaim(const PreemptDecision& p, std::vector<RunningJob>& running) {
  if (p.kind != EvictionKind::kReclaim) return;
  for (RunningJob& r : running) {
    if (r.id == p.id) ++r.reclaims;
  }
}

void ForgetSettled(EvictedFor& evicted_for, RoomFor& room,
                   const std::function<bool(model::JobId)>& waiting) {
  std::erase_if(evicted_for, [&](const auto& e) { return !waiting(e.second); });
  std::erase_if(room, [&](const auto& e) { return !waiting(e.first); });
}

void MarkEvictions(const EvictedFor& evicted_for, const RoomFor& room, Snapshot& snapshot) {
  if (evicted_for.empty()) return;
  std::unordered_set<model::JobId> pending;
  for (const PendingJob& p : snapshot.pending) pending.insert(p.id);
  std::unordered_map<model::JobId, int> holding;   // beneficiary -> victims still holding resources
  std::unordered_set<model::JobId> made;           // beneficiaries with a victim that has released
  for (RunningJob& r : snapshot.running) {
    auto e = evicted_for.find(r.id);
    if (e == evicted_for.end() || !pending.count(e->second)) continue;
    r.evicted_for = e->second;
    holding[e->second]++;
  }
  std::erase_if(snapshot.pending, [&](const PendingJob& p) {
    auto e = evicted_for.find(p.id);
    if (e == evicted_for.end() || !pending.count(e->second)) return false;
    made.insert(e->second);
    snapshot.held_out.push_back(p);
    return true;
  });
  for (PendingJob& p : snapshot.pending) {
    auto h = holding.find(p.id);
    p.victims_stopping = h == holding.end() ? 0 : h->second;
    p.room_made = p.victims_stopping == 0 && made.count(p.id) > 0;
    auto r = room.find(p.id);
    if ((p.victims_stopping > 0 || p.room_made) && r != room.end()) p.room_on = r->second;
  }
}

}  // namespace herd::sched
