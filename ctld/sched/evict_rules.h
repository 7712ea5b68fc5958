// Rules shared by ctld/sched/evict.cc (room held for evictions) and victims.cc (who is evicted).
// Internal to ctld/sched.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ctld/sched/cycle.h"

namespace herd::sched::internal {

inline int64_t Get(const model::Resources& r, int c) { return r.Component(c); }

// With `taken` gone, q is above its fair share on a resource `holds` has some of; on each such
// resource it keeps at least its fair share less its smallest job (it ends at most one job below;
// `holds` counts among its jobs: a job started this cycle is not among the running ones).
[[gnu::always_inline]] inline bool AboveShare(const QueueState& q, const model::Resources& taken,
                                              const model::Resources& holds) {
  const model::Resources left = q.allocated - taken;
  bool over = false;
  for (int c = 0; c < 3; ++c) {
    const int64_t h = Get(holds, c), l = Get(left, c), f = Get(q.fair, c);
    if (h <= 0 || l <= f) continue;
    const int64_t least = Get(q.smallest, c) > 0 ? std::min(Get(q.smallest, c), h) : h;
    if (l - h < f - least) return false;
    over = true;
  }
  return over;
}

// A job whose room is being made by evictions planned for others.
inline model::PendingReason RoomBeingMade() { return {.code = model::ReasonCode::kRoomBeingMade}; }

}  // namespace herd::sched::internal
