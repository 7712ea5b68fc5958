// Time-decayed fair share ([scheduler] fair_share_half_life, herd.toml(5)): each queue's recent use
// of the cluster, in GPU-seconds that lose half their weight every half-life, makes its share of
// the surplus (the capacity beyond deserved quotas) smaller the more it used lately, as Slurm's
// multifactor fair-share factor 2^(-usage/shares) does. herd-ctld accumulates the usage each cycle
// with DecayUsage() and hands it to the core as QueueView::usage; the core weighs with
// UsageWeights().
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ctld/sched/snapshot.h"

namespace herd::sched {

// `usage` (GPU-seconds) after `elapsed_s` seconds during which `gpus` GPUs were held throughout,
// each second's use decayed with `half_life_s` from then on (the exact integral, so the result does
// not depend on how the time is cut into cycles). `half_life_s` <= 0: 0 (decay off, nothing kept).
// `elapsed_s` <= 0: `usage` unchanged. Bounded: it never exceeds usage + gpus x half_life / ln 2.
double DecayUsage(double usage, double gpus, int64_t elapsed_s, int64_t half_life_s);

// Each queue's over-quota weight once its recent usage is counted: among siblings (children of
// the same parent) with some usage, over_quota_weight x 2^-(U/S), where U is the queue's part of
// the siblings' usage and S its part of their over-quota weights; so siblings that used in
// proportion to their weights keep their ratio, and one that used more than its part gets less of
// the surplus. Siblings with no usage at all keep over_quota_weight exactly (decay off: today's
// shares).
std::map<std::string, double> UsageWeights(const std::vector<QueueView>& queues);

}  // namespace herd::sched
