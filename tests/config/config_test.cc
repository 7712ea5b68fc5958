#include "common/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>

#include "common/model/job_class.h"
#include "common/model/placement.h"
#include "common/model/units.h"
#include "ctld/sched/scheduler.h"
#include "ctld/sched/snapshot_builder.h"

namespace herd::config {
namespace {

using ::testing::HasSubstr;

Config MustParse(const std::string& text) {
  Result<Config> c = ParseConfig(text, "herd.toml");
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? *c : Config{};
}

std::string ErrorOf(const std::string& text) {
  Result<Config> c = ParseConfig(text, "herd.toml");
  EXPECT_FALSE(c.ok()) << "expected an error for:\n" << text;
  EXPECT_EQ(c.ok() ? Code::kOk : c.status().code(), Code::kInvalid);
  return c.ok() ? "" : c.status().message();
}

std::string ReadEtcExample() {
  std::ifstream in(std::string(HERD_SOURCE_DIR) + "/etc/herd.toml");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ConfigTest, EmptyFileGivesDefaults) {
  Config c = MustParse("");
  EXPECT_EQ(c.controller.listen, std::vector<std::string>{"tcp://127.0.0.1:6817"});
  EXPECT_EQ(c.controller.state_dir, "/var/lib/herd");
  EXPECT_EQ(c.controller.log_file, "");
  EXPECT_FALSE(c.controller.allow_root_jobs);
  EXPECT_EQ(c.auth.method, "munge");
  EXPECT_EQ(c.scheduler, SchedulerConfig{});
  EXPECT_EQ(c.scheduler.placement, "herd");
  EXPECT_EQ(c.scheduler.reserve_after_s, 1800);
  EXPECT_EQ(c.scheduler.fair_share_half_life_s, 7 * 86400);  // Slurm's PriorityDecayHalfLife
  EXPECT_EQ(c.classes.size(), 3u);
  ASSERT_EQ(c.queues.size(), 1u);
  EXPECT_EQ(c.queues[0].name, "default");
  EXPECT_TRUE(c.queues[0].is_project);
  EXPECT_TRUE(c.queues[0].deserved.IsZero());
  EXPECT_FALSE(c.queues[0].limit.has_value());
  EXPECT_EQ(c.default_project, "default");
  EXPECT_TRUE(c.IsMember("default", "anyone"));
  EXPECT_TRUE(c.warnings.empty());
}

TEST(ConfigTest, EtcExampleParsesWithoutWarningsAndStatesTheDefaults) {
  const std::string text = ReadEtcExample();
  ASSERT_FALSE(text.empty());
  Config c = MustParse(text);
  EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
  Config d = MustParse("");
  EXPECT_EQ(c.controller, d.controller);
  EXPECT_EQ(c.auth, d.auth);
  EXPECT_EQ(c.scheduler, d.scheduler);
  EXPECT_EQ(c.classes, d.classes);
  EXPECT_EQ(c.queues, d.queues);
  EXPECT_EQ(c.default_project, d.default_project);
  EXPECT_EQ(c.volume_prefixes, d.volume_prefixes);
  EXPECT_EQ(c.node, d.node);
  EXPECT_EQ(c.history, d.history);
}

TEST(ConfigTest, HistoryTakesDurationsAndRefusesRetentionsTooShortToRebuildAPeriod) {
  Config c = MustParse("[history]\ninterval = \"30s\"\nraw_retention = \"1d\"\n"
                       "ten_minute_retention = \"2w\"\nhourly_retention = \"90d\"\n");
  EXPECT_EQ(c.history.interval_s, 30);
  EXPECT_EQ(c.history.raw_retention_s, 86400);
  EXPECT_EQ(c.history.ten_minute_retention_s, 14 * 86400);
  EXPECT_EQ(c.history.hourly_retention_s, 90 * 86400);
  EXPECT_EQ(MustParse("").history.interval_s, 60);
  EXPECT_EQ(MustParse("[history]\ninterval = 0\n").history.interval_s, 0);
  EXPECT_THAT(ErrorOf("[history]\nraw_retention = \"5m\"\n"),
              HasSubstr("history.raw_retention: must be at least 10m"));
  EXPECT_THAT(ErrorOf("[history]\nten_minute_retention = \"30m\"\n"),
              HasSubstr("history.ten_minute_retention: must be at least 1h"));
  EXPECT_THAT(ErrorOf("[history]\ninterval = \"soon\"\n"), HasSubstr("history.interval"));
}

TEST(ConfigTest, EtcExampleBlockIsValidWhenUncommented) {
  const std::string text = ReadEtcExample();
  std::istringstream in(text);
  std::string line, block;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line == "# --- example begin")
      inside = true;
    else if (line == "# --- example end")
      inside = false;
    else if (inside)
      block += (line.size() > 2 ? line.substr(2) : "") + "\n";
  }
  ASSERT_FALSE(block.empty());
  Config c = MustParse(block);
  EXPECT_TRUE(c.warnings.empty());
  const QueueConfig* vision = c.FindQueue("vision");
  ASSERT_NE(vision, nullptr);
  EXPECT_EQ(vision->deserved, (model::Resources{8000, 128, 1024 * 1024}));
  EXPECT_EQ(c.nodes.at("dgx01").labels.at("rack"), "r1");
  EXPECT_EQ(c.pools.at("dev").nodes,
            (std::vector<std::string>{"ws01", "ws02", "ws03", "ws04"}));
  EXPECT_EQ(c.gpu_types.at("a100").size(), 2u);
}

TEST(ConfigTest, PoolsSelectNodesByNameAndLabelsAndLabelPoolsNeedNoTable) {
  Config c = MustParse(
      "[nodes.dgx01]\nlabels = { pool = \"train\", gpu = \"a100\" }\n"
      "[nodes.ws01]\nlabels = { gpu = \"a6000\" }\n"
      "[nodes.ws02]\nlabels = { gpu = \"a6000\", pool = \"dev\" }\n"
      "[pools.dev]\nnodes = \"ws[01-03]\"\n"
      "[pools.big]\nnodes = [\"dgx*\"]\nlabels = { gpu = \"a100\" }\n");
  EXPECT_TRUE(c.InPool("dev", "ws01"));
  EXPECT_TRUE(c.InPool("dev", "ws03")) << "listed though it has no labels";
  EXPECT_FALSE(c.InPool("dev", "dgx01"));
  EXPECT_TRUE(c.InPool("big", "dgx01"));
  EXPECT_TRUE(c.InPool("train", "dgx01")) << "a label pool with no [pools.train]";
  EXPECT_FALSE(c.InPool("train", "ws01"));
  EXPECT_EQ(c.PoolsOf("dgx01"), (std::vector<std::string>{"big", "train"}));
  EXPECT_EQ(c.PoolsOf("ws02"), (std::vector<std::string>{"dev"})) << "the table wins, once";
  EXPECT_THAT(ErrorOf("[pools.x]\n"), HasSubstr("pools.x: a pool needs nodes"));
  EXPECT_THAT(ErrorOf("[pools.x]\nnodes = \"ws[1-\"\n"), HasSubstr("invalid host list item"));
  EXPECT_THAT(ErrorOf("[pools.x]\nlabel = {}\n"), HasSubstr("unknown pool key 'label'"));
}

TEST(ConfigTest, GpuTypesNameModelsOnce) {
  Config c = MustParse("[gpu_types]\nl40 = [\"NVIDIA L40S\", \"NVIDIA L40\"]\n");
  EXPECT_EQ(c.gpu_types.at("l40").size(), 2u);
  EXPECT_THAT(ErrorOf("[gpu_types]\nA100 = [\"x\"]\n"), HasSubstr("is not a valid GPU type"));
  EXPECT_THAT(ErrorOf("[gpu_types]\na = [\"x\"]\nb = [\"x\"]\n"),
              HasSubstr("model 'x' is already of type 'a'"));
}

TEST(ConfigTest, NodeSizesAreCheckedAndDefaultToACappedLogAndSomeFreeSpace) {
  EXPECT_EQ(MustParse("").node, (NodeDaemonConfig{1024, 64}));
  EXPECT_EQ(MustParse("[node]\nmax_log_size = 100\n").node.max_log_mib, 100);
  EXPECT_THAT(ErrorOf("[node]\nmax_log_size = \"lots\"\n"),
              HasSubstr("herd.toml:2:1: node.max_log_size: invalid size 'lots'"));
  EXPECT_THAT(ErrorOf("[node]\nmin_free_space = -1\n"),
              HasSubstr("node.min_free_space: expected a size"));
}

TEST(ConfigTest, NodeStartTimeoutAndMaxImageSizeAreCheckedAndDefaultToBounds) {
  const NodeDaemonConfig defaults = MustParse("").node;
  EXPECT_EQ(defaults.start_timeout_s, 600);
  EXPECT_EQ(defaults.max_image_mib, 64 << 10);
  const NodeDaemonConfig set =
      MustParse("[node]\nstart_timeout = \"90s\"\nmax_image_size = \"2G\"\n").node;
  EXPECT_EQ(set.start_timeout_s, 90);
  EXPECT_EQ(set.max_image_mib, 2048);
  EXPECT_THAT(ErrorOf("[node]\nstart_timeout = 0\n"), HasSubstr("node.start_timeout"));
  EXPECT_THAT(ErrorOf("[node]\nmax_image_size = \"huge\"\n"),
              HasSubstr("node.max_image_size: invalid size 'huge'"));
}

TEST(ConfigTest, PlacementErrorNamesLineAndChoices) {
  EXPECT_EQ(ErrorOf("\n\n\n[scheduler]\nplacement = \"best\"\n"),
            "herd.toml:5:1: scheduler.placement: 'best' is not a placement; use herd, bestfit, "
            "fgd, random or spread");
}

// Every placement policy of the one table is accepted and described in herd.toml(5).
TEST(ConfigTest, EveryPlacementPolicyIsAcceptedAndDocumented) {
  std::ifstream in(std::string(HERD_SOURCE_DIR) + "/man/herd.toml.5");
  std::string page((std::istreambuf_iterator<char>(in)), {});
  const size_t from = page.find("\\fBplacement\\fR");
  ASSERT_NE(from, std::string::npos) << "herd.toml(5) has no placement key";
  const std::string paragraph = page.substr(from, page.find(".TP", from) - from);
  for (const model::PlacementPolicy& p : model::kPlacementPolicies) {
    EXPECT_EQ(MustParse(std::string("[scheduler]\nplacement = \"") + p.name + "\"\n").scheduler.placement,
              p.name);
    const std::string name = p.name;
    EXPECT_TRUE(paragraph.find("\n.B " + name + "\n") != std::string::npos ||
                paragraph.find("\n.BR " + name + " ") != std::string::npos)
        << "herd.toml(5) does not describe placement " << p.name;
  }
}

// Each [scheduler] default has one value: the scheduler core's sched::Policy and herd.toml's
// config::SchedulerConfig start from the same constants (common/model/placement.h), an empty
// herd.toml gives them, and herd.toml(5) states them.
TEST(ConfigTest, SchedulerDefaultsAreTheCoresAndTheManPages) {
  std::ifstream in(std::string(HERD_SOURCE_DIR) + "/man/herd.toml.5");
  const std::string page((std::istreambuf_iterator<char>(in)), {});
  const size_t section = page.find(".SH [scheduler]");
  ASSERT_NE(section, std::string::npos) << "herd.toml(5) has no [scheduler] section";
  const std::string scheduler = page.substr(section, page.find("\n.SH ", section + 1) - section);
  // What the page gives as `key`'s default: \fBkey\fR (duration, default \(dq30m\(dq).
  auto stated = [&](const std::string& key) -> std::string {
    const size_t at = scheduler.find("\\fB" + key + "\\fR (");
    if (at == std::string::npos) return "<not described>";
    const std::string open = "default \\(dq", close = "\\(dq)";
    const size_t from = scheduler.find(open, at), eol = scheduler.find('\n', at);
    if (from == std::string::npos || from > eol) return "<no default>";
    const size_t value = from + open.size();
    return scheduler.substr(value, scheduler.find(close, value) - value);
  };
  auto seconds = [&](const std::string& key) -> int64_t {
    const Result<int64_t> s = model::ParseDurationSeconds(stated(key));
    EXPECT_TRUE(s.ok()) << key << ": herd.toml(5) states " << stated(key);
    return s.ok() ? *s : -1;
  };
  const SchedulerConfig c;
  const sched::Policy policy;
  EXPECT_EQ(c.placement, sched::PlacementName(policy.placement));
  EXPECT_EQ(c.reserve_after_s, policy.reserve_after_s);
  EXPECT_EQ(c.reclaim_backoff_s, policy.reclaim_backoff_s);
  EXPECT_EQ(MustParse("").scheduler, c);
  EXPECT_EQ(stated("placement"), c.placement);
  EXPECT_EQ(seconds("preempt_grace"), c.preempt_grace_s);
  EXPECT_EQ(seconds("reserve_after"), c.reserve_after_s);
  EXPECT_EQ(seconds("reclaim_backoff"), c.reclaim_backoff_s);
  EXPECT_EQ(seconds("cycle_interval") * 1000, c.cycle_interval_ms);
  EXPECT_EQ(seconds("heartbeat_interval") * 1000, c.heartbeat_interval_ms);
  EXPECT_EQ(seconds("node_timeout"), c.node_timeout_s);
  EXPECT_EQ(seconds("kill_grace"), c.kill_grace_s);
  EXPECT_EQ(seconds("fair_share_half_life"), c.fair_share_half_life_s);
}

// The built-in classes are one table (model::kBuiltinClasses): herd.toml's defaults, the classes
// scenario files run with (sched::BuiltinClasses), and what herd.toml(5) states, class by class.
TEST(ConfigTest, BuiltinClassesAreTheScenariosAndTheManPages) {
  std::ifstream in(std::string(HERD_SOURCE_DIR) + "/man/herd.toml.5");
  const std::string page((std::istreambuf_iterator<char>(in)), {});
  const size_t section = page.find(".SH [classes.NAME]");
  ASSERT_NE(section, std::string::npos) << "herd.toml(5) has no [classes.NAME] section";
  const std::string built_in = page.substr(section, page.find("\n.PP\n", section) - section);
  // What the page states for class `name`: ".TP\n.B name\n" then "key = value, ... ." up to the
  // next .TP, with \(dq quotes dropped.
  auto stated = [&](const std::string& name) {
    std::map<std::string, std::string> keys;
    const size_t at = built_in.find("\n.TP\n.B " + name + "\n");
    if (at == std::string::npos) return keys;
    const size_t from = at + 9 + name.size();  // past ".B name\n"
    std::string text = built_in.substr(from, built_in.find("\n.TP", from) - from);
    std::replace(text.begin(), text.end(), '\n', ' ');
    for (size_t q; (q = text.find("\\(dq")) != std::string::npos;) text.erase(q, 4);
    if (!text.empty() && text.back() == '.') text.pop_back();
    std::istringstream items(text);
    for (std::string item; std::getline(items >> std::ws, item, ',');) {
      const size_t eq = item.find(" = ");
      if (eq != std::string::npos) keys[item.substr(0, eq)] = item.substr(eq + 3);
    }
    return keys;
  };
  auto seconds = [](const std::string& text) {
    const Result<int64_t> s = model::ParseDurationSecondsOrZero(text);
    return s.ok() ? *s : -1;
  };
  const Config defaults = MustParse("");
  const std::map<std::string, sched::ClassView> scenario = sched::BuiltinClasses();
  EXPECT_EQ(defaults.classes.size(), std::size(model::kBuiltinClasses));
  EXPECT_EQ(scenario.size(), std::size(model::kBuiltinClasses));
  size_t described = 0;
  for (size_t at = 0; (at = built_in.find("\n.TP\n.B ", at)) != std::string::npos; ++at) {
    ++described;
  }
  EXPECT_EQ(described, std::size(model::kBuiltinClasses)) << "herd.toml(5) describes other classes";
  for (const model::BuiltinClass& b : model::kBuiltinClasses) {
    SCOPED_TRACE(b.name);
    const ClassConfig* c = defaults.FindClass(b.name);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(*c, (ClassConfig{b.name, b.priority, b.preemptible, b.max_time_s, b.min_runtime_s,
                               b.idle_timeout_s, b.within_quota_only, b.idle_input_timeout_s}));
    EXPECT_EQ(scenario.at(b.name), (sched::ClassView{b.name, b.priority, b.preemptible,
                                                     b.within_quota_only, b.min_runtime_s}));
    std::map<std::string, std::string> keys = stated(b.name);
    ASSERT_FALSE(keys.empty()) << "herd.toml(5) does not describe class " << b.name;
    EXPECT_EQ(keys["priority"], std::to_string(b.priority));
    EXPECT_EQ(keys["preemptible"], b.preemptible ? "true" : "false");
    EXPECT_EQ(keys["within_quota_only"], b.within_quota_only ? "true" : "false");
    EXPECT_EQ(seconds(keys["max_time"]), b.max_time_s) << keys["max_time"];
    EXPECT_EQ(seconds(keys["min_runtime"]), b.min_runtime_s) << keys["min_runtime"];
    EXPECT_EQ(seconds(keys["idle_timeout"]), b.idle_timeout_s) << keys["idle_timeout"];
  }
}

TEST(ConfigTest, TomlSyntaxErrorGivesFileAndLine) {
  std::string msg = ErrorOf("[controller]\nstate_dir = \"/x\"\nlisten = [\n");
  EXPECT_THAT(msg, HasSubstr("herd.toml:"));
  EXPECT_THAT(msg, HasSubstr("invalid TOML"));
  msg = ErrorOf("[controller]\nstate_dir = = 3\n");
  EXPECT_THAT(msg, HasSubstr("herd.toml:2:"));
}

TEST(ConfigTest, UnknownParentDepartmentIsAnError) {
  EXPECT_THAT(ErrorOf("[projects.vision]\ndepartment = \"reserch\"\n"),
              HasSubstr("herd.toml:2:1: projects.vision.department: unknown department 'reserch'"));
  EXPECT_THAT(ErrorOf("[projects.a]\n[projects.b]\ndepartment = \"a\"\n"),
              HasSubstr("herd.toml:3:1: projects.b.department: 'a' is a project"));
}

TEST(ConfigTest, DepartmentCycleIsAnError) {
  EXPECT_THAT(
      ErrorOf("[departments.a]\nparent = \"b\"\n[departments.b]\nparent = \"a\"\n"),
      HasSubstr("herd.toml:2:1: departments.a.parent: departments form a cycle: a -> b -> a"));
}

TEST(ConfigTest, NegativeQuotaIsAnError) {
  EXPECT_THAT(ErrorOf("[projects.p]\n\ndeserved = { gpu = -2 }\n"),
              HasSubstr("herd.toml:3:14: projects.p.deserved.gpu: must not be negative"));
  EXPECT_THAT(ErrorOf("[projects.p]\ndeserved = { gpu = -0.5 }\n"), HasSubstr("herd.toml:2:"));
}

TEST(ConfigTest, LimitBelowDeservedIsAnError) {
  EXPECT_THAT(ErrorOf("[projects.p]\ndeserved = { gpu = 8 }\nlimit = { gpu = 4 }\n"),
              HasSubstr("herd.toml:3:1: projects.p.limit.gpu: 4 is below the deserved 8"));
}

TEST(ConfigTest, ChildrenDeservingMoreThanTheirDepartmentIsAnError) {
  const std::string text =
      "[departments.research]\n"
      "deserved = { gpu = 16 }\n"
      "[projects.a]\ndepartment = \"research\"\ndeserved = { gpu = 10 }\n"
      "[projects.b]\ndepartment = \"research\"\ndeserved = { gpu = 8 }\n";
  EXPECT_THAT(ErrorOf(text), HasSubstr("herd.toml:2:1: departments.research.deserved: its queues "
                                       "deserve 18 gpu in all, more than the department's 16"));
}

TEST(ConfigTest, DepartmentResourcesLeftOutAreTheSumOfItsQueues) {
  Config c = MustParse(
      "[departments.research]\ndeserved = { gpu = 16 }\n"
      "[projects.a]\ndepartment = \"research\"\ndeserved = { gpu = 8, cpu = 64 }\n"
      "[projects.b]\ndepartment = \"research\"\ndeserved = { gpu = 0.5, memory = \"1T\" }\n");
  EXPECT_EQ(c.FindQueue("research")->deserved, (model::Resources{16000, 64, 1024 * 1024}));
  EXPECT_EQ(c.FindQueue("b")->deserved.gpu_milli, 500);
}

TEST(ConfigTest, QuotasPerGpuTypeAreGpuDotTypeKeys) {
  Config c = MustParse(
      "[departments.research]\n"
      "[projects.a]\ndepartment = \"research\"\ndeserved = { gpu = 8, \"gpu.h100\" = 4 }\n"
      "limit = { \"gpu.h100\" = 6, \"gpu.a100\" = 2.5 }\n"
      "over_quota_weight = { gpu = 2, \"gpu.h100\" = 0.5 }\n"
      "[projects.b]\ndepartment = \"research\"\ndeserved = { \"gpu.h100\" = 2 }\n"
      "over_quota_weight = 3\n");
  const QueueConfig& a = *c.FindQueue("a");
  EXPECT_EQ(a.deserved.gpu_milli, 8000);
  EXPECT_EQ(a.over_quota_weight, 2);
  EXPECT_EQ(a.by_type.at("h100"), (model::GpuTypeQuota{4000, 6000, 0.5}));
  EXPECT_EQ(a.by_type.at("a100"), (model::GpuTypeQuota{0, 2500, -1}));
  EXPECT_FALSE(a.limit.has_value());  // no limit on the GPUs as a whole
  EXPECT_EQ(c.FindQueue("b")->deserved.gpu_milli, 0);
  EXPECT_EQ(c.FindQueue("b")->over_quota_weight, 3);
  // A department's type left out is the sum of its queues'.
  EXPECT_EQ(c.FindQueue("research")->by_type.at("h100").deserved_milli, 6000);

  EXPECT_THAT(ErrorOf("[projects.p]\ndeserved = { \"gpu.h100\" = 4 }\n"
                      "limit = { \"gpu.h100\" = 2 }\n"),
              HasSubstr("projects.p.limit.\"gpu.h100\": 2 is below the deserved 4"));
  EXPECT_THAT(ErrorOf("[departments.d]\ndeserved = { \"gpu.h100\" = 2 }\n"
                      "[projects.p]\ndepartment = \"d\"\ndeserved = { \"gpu.h100\" = 4 }\n"),
              HasSubstr("its queues deserve 4 gpu.h100 in all, more than the department's 2"));
  EXPECT_THAT(ErrorOf("[projects.p]\ndeserved = { \"gpu.H 100\" = 4 }\n"),
              HasSubstr("not a GPU type: 'H 100'"));
  EXPECT_THAT(ErrorOf("[projects.p]\nover_quota_weight = { cpu = 2 }\n"),
              HasSubstr("unknown key 'cpu'; use gpu (the weight of every GPU), \"gpu.TYPE\""));
  EXPECT_THAT(ErrorOf("[projects.p]\nover_quota_weight = { \"gpu.h100\" = -1 }\n"),
              HasSubstr("expected a number from 0 to 1000000"));
}

TEST(ConfigTest, QuotasPerPoolArePoolDotNameKeys) {
  Config c = MustParse(
      "[pools.train]\nnodes = [\"t[1-2]\"]\n[pools.infer]\nnodes = [\"i1\"]\n"
      "[departments.research]\n"
      "[projects.a]\ndepartment = \"research\"\n"
      "deserved = { gpu = 8, \"gpu.h100\" = 4, \"pool.train\" = 6 }\n"
      "limit = { \"pool.train\" = 7, \"pool.infer\" = 2 }\n"
      "over_quota_weight = { gpu = 2, \"pool.train\" = 3 }\n"
      "[projects.b]\ndepartment = \"research\"\ndeserved = { \"pool.train\" = 2 }\n");
  const QueueConfig& a = *c.FindQueue("a");
  EXPECT_EQ(a.by_pool.at("train"), (model::GpuTypeQuota{6000, 7000, 3}));
  EXPECT_EQ(a.by_pool.at("infer"), (model::GpuTypeQuota{0, 2000, -1}));
  EXPECT_EQ(a.by_type.at("h100").deserved_milli, 4000);  // beside the type's
  // A department's pool left out is the sum of its queues'.
  EXPECT_EQ(c.FindQueue("research")->by_pool.at("train").deserved_milli, 8000);
  EXPECT_EQ(c.QuotaPools(), (std::vector<std::string>{"infer", "train"}));
  EXPECT_EQ(c.QuotaPoolOf("t2"), "train");
  EXPECT_EQ(c.QuotaPoolOf("i1"), "infer");
  EXPECT_EQ(c.QuotaPoolOf("x9"), "");

  EXPECT_THAT(ErrorOf("[projects.p]\ndeserved = { \"pool.train\" = 4 }\n"
                      "limit = { \"pool.train\" = 2 }\n"),
              HasSubstr("projects.p.limit.\"pool.train\": 2 is below the deserved 4"));
  EXPECT_THAT(ErrorOf("[departments.d]\ndeserved = { \"pool.train\" = 2 }\n"
                      "[projects.p]\ndepartment = \"d\"\ndeserved = { \"pool.train\" = 4 }\n"),
              HasSubstr("its queues deserve 4 pool.train in all, more than the department's 2"));
}

// Each GPU counts in one pool's quota: pools with quotas must not share a node.
TEST(ConfigTest, QuotaPoolsSharingANodeAreAnError) {
  const std::string pools =
      "[pools.train]\nnodes = [\"dgx[01-04]\"]\n"
      "[pools.big]\nlabels = { mem = \"2T\" }\n"
      "[nodes.dgx03]\nlabels = { mem = \"2T\" }\n";
  EXPECT_THAT(ErrorOf(pools + "[projects.p]\ndeserved = { \"pool.train\" = 4 }\n"
                              "[projects.q]\ndeserved = { \"pool.big\" = 2 }\n"),
              HasSubstr("node 'dgx03' is in pools 'big' and 'train', and both have quotas; a GPU "
                        "counts in one pool's quota: change [pools.big] or [pools.train] so that "
                        "they share no node, or drop the quota on one of them"));
  // One pool with a quota may overlap pools that have none.
  Config c = MustParse(pools + "[projects.p]\ndeserved = { \"pool.train\" = 4 }\n");
  EXPECT_EQ(c.QuotaPoolOf("dgx03"), "train");
  // Pools with quotas that share no node are fine.
  MustParse(
      "[pools.a]\nnodes = [\"n[1-2]\"]\n[pools.b]\nnodes = [\"n[3-4]\"]\n"
      "[projects.p]\ndeserved = { \"pool.a\" = 1, \"pool.b\" = 1 }\n");
}

// A quota on a pool that no [pools.NAME] and no node's `pool` label defines (a misspelt name)
// would hold no GPU: an error that lists the pools there are.
TEST(ConfigTest, AQuotaOnAnUndefinedPoolIsAnError) {
  EXPECT_THAT(ErrorOf("[pools.train]\nnodes = [\"n1\"]\n"
                      "[projects.p]\ndeserved = { gpu = 2, \"pool.trian\" = 2 }\n"),
              HasSubstr("pool.trian: no pool 'trian' is defined (pools: train): add [pools.trian], "
                        "give nodes the label pool = 'trian', or fix the name"));
  // A node's `pool` label defines a pool without a table.
  Config c = MustParse(
      "[nodes.n1]\nlabels = { pool = \"infer\" }\n"
      "[projects.p]\ndeserved = { \"pool.infer\" = 1 }\n");
  EXPECT_EQ(c.QuotaPoolOf("n1"), "infer");
}

TEST(ConfigTest, UnknownClassKeyIsAnError) {
  EXPECT_THAT(ErrorOf("[classes.train]\npreemptable = true\n"),
              HasSubstr("herd.toml:2:1: classes.train.preemptable: unknown class key"));
}

TEST(ConfigTest, NewClassWithoutPriorityIsAnError) {
  EXPECT_THAT(ErrorOf("[classes.debug]\npreemptible = true\n"),
              HasSubstr("herd.toml:1:10: classes.debug: a new class needs a priority"));
}

TEST(ConfigTest, UnknownTopLevelKeysAreWarningsNamingTheLine) {
  Config c = MustParse(
      "default_project = \"default\"\n[schedular]\nplacement = \"herd\"\n"
      "[scheduler]\nplacment = \"fgd\"\n");
  ASSERT_EQ(c.warnings.size(), 2u);
  EXPECT_THAT(c.warnings[0], HasSubstr("herd.toml:2:"));
  EXPECT_THAT(c.warnings[0], HasSubstr("'schedular'"));
  EXPECT_THAT(c.warnings[1], HasSubstr("herd.toml:5:1: unknown key 'scheduler.placment'"));
  EXPECT_EQ(c.scheduler.placement, "herd");
}

TEST(ConfigTest, ListenEndpointsMustBeTcpOrIpc) {
  EXPECT_THAT(ErrorOf("[controller]\nlisten = [\"udp://0.0.0.0:1\"]\n"),
              HasSubstr("herd.toml:2:1: controller.listen: 'udp://0.0.0.0:1' is not an endpoint"));
  MustParse("[controller]\nlisten = [\"tcp://0.0.0.0:6817\", \"ipc:///run/herd/ctld.sock\"]\n");
}

TEST(ConfigTest, SubmitLimitsAndPrivateCommandsAreReadAndChecked) {
  Config c = MustParse(
      "[controller]\nprivate_commands = true\nmax_name_bytes = 64\nmax_arg_bytes = 1000\n"
      "max_command_bytes = 2000\nmax_env_entries = 8\nmax_env_bytes = 3000\n"
      "max_spec_bytes = 4000\nmax_submit_bytes = 5000\nmax_pending_per_user = 6\n");
  EXPECT_TRUE(c.controller.private_commands);
  EXPECT_EQ(c.controller.max_name_bytes, 64);
  EXPECT_EQ(c.controller.max_arg_bytes, 1000);
  EXPECT_EQ(c.controller.max_command_bytes, 2000);
  EXPECT_EQ(c.controller.max_env_entries, 8);
  EXPECT_EQ(c.controller.max_env_bytes, 3000);
  EXPECT_EQ(c.controller.max_spec_bytes, 4000);
  EXPECT_EQ(c.controller.max_submit_bytes, 5000);
  EXPECT_EQ(c.controller.max_pending_per_user, 6);
  EXPECT_EQ(MustParse(ToToml(c)).controller, c.controller);
  EXPECT_FALSE(MustParse("").controller.private_commands);
  EXPECT_EQ(MustParse("").controller.max_pending_per_user, 10000);
  EXPECT_THAT(ErrorOf("[controller]\nmax_name_bytes = 0\n"),
              HasSubstr("herd.toml:2:1: controller.max_name_bytes: expected an integer from 1"));
}

TEST(ConfigTest, AuthMethodMustBeMungeOrNone) {
  EXPECT_THAT(
      ErrorOf("[auth]\nmethod = \"kerberos\"\n"),
      HasSubstr("herd.toml:2:1: auth.method: 'kerberos' is not a method; use munge or none"));
}

TEST(ConfigTest, AuthNoneOnlyOnLoopbackOrIpc) {
  EXPECT_THAT(
      ErrorOf("[controller]\nlisten = [\"tcp://0.0.0.0:6817\"]\n[auth]\nmethod = \"none\"\n"),
      HasSubstr("herd.toml:2:1: auth.method: 'none' trusts every caller"));
  EXPECT_THAT(ErrorOf("[auth]\nmethod = \"none\"\n[controller]\nlisten = [\"tcp://10.0.0.1:1\"]\n"),
              HasSubstr("is reachable from other hosts"));
  Config c = MustParse(
      "[auth]\nmethod = \"none\"\n[controller]\n"
      "listen = [\"tcp://127.0.0.1:*\", \"tcp://localhost:6817\", \"ipc:///tmp/x.sock\"]\n");
  EXPECT_EQ(c.auth.method, "none");
  MustParse("[auth]\nmethod = \"none\"\n");  // default listen is loopback
}

// herd-noded's sessions run commands as the job's user (herd exec): without credentials they must
// not be reachable from other hosts either.
TEST(ConfigTest, AuthNoneKeepsSessionsOnLoopback) {
  EXPECT_EQ(MustParse("").node.session_listen, "tcp://0.0.0.0:0");
  EXPECT_EQ(MustParse("[auth]\nmethod = \"none\"\n").node.session_listen, "tcp://127.0.0.1:0");
  EXPECT_THAT(
      ErrorOf("[auth]\nmethod = \"none\"\n[node]\nsession_listen = \"tcp://0.0.0.0:7000\"\n"),
      HasSubstr("node.session_listen: 'none' trusts every caller"));
  EXPECT_EQ(MustParse("[auth]\nmethod = \"none\"\n[node]\nsession_listen = \"ipc:///tmp/s\"\n")
                .node.session_listen,
            "ipc:///tmp/s");
}

TEST(ConfigTest, QueueNamesAreUniqueAndPlain) {
  EXPECT_THAT(ErrorOf("[departments.ml]\n[projects.ml]\n"),
              HasSubstr("herd.toml:2:11: projects.ml: 'ml' is already a department"));
  EXPECT_THAT(ErrorOf("[projects.\"a b\"]\n"), HasSubstr("'a b' is not a valid name"));
}

TEST(ConfigTest, ProjectsInheritTheirDepartmentsMembers) {
  Config c = MustParse(
      "[departments.research]\nmembers = [\"alice\", \"bob\"]\n"
      "[projects.vision]\ndepartment = \"research\"\n"
      "[projects.speech]\ndepartment = \"research\"\nmembers = [\"carol\"]\n"
      "[projects.open]\nmembers = [\"*\"]\n"
      "[projects.closed]\n");
  EXPECT_TRUE(c.IsMember("vision", "alice"));
  EXPECT_FALSE(c.IsMember("vision", "carol"));
  EXPECT_TRUE(c.IsMember("speech", "carol"));
  EXPECT_FALSE(c.IsMember("speech", "alice"));
  EXPECT_TRUE(c.IsMember("open", "anyone"));
  EXPECT_FALSE(c.IsMember("closed", "alice"));
  EXPECT_FALSE(c.IsMember("research", "alice"));  // a department is not a project
  EXPECT_FALSE(c.IsMember("nosuch", "alice"));
}

TEST(ConfigTest, QueuesListDepartmentsThenProjectsParentsFirst) {
  Config c = MustParse(
      "[projects.p]\ndepartment = \"child\"\n"
      "[departments.child]\nparent = \"root\"\n"
      "[departments.root]\n");
  ASSERT_EQ(c.queues.size(), 3u);
  EXPECT_EQ(c.queues[0].name, "root");
  EXPECT_EQ(c.queues[1].name, "child");
  EXPECT_EQ(c.queues[2].name, "p");
  EXPECT_EQ(c.queues[2].parent, "child");
}

TEST(ConfigTest, DefaultProjectFollowsConfiguredQueues) {
  EXPECT_EQ(MustParse("[projects.vision]\n").default_project, "");
  EXPECT_EQ(MustParse("default_project = \"vision\"\n[projects.vision]\n").default_project,
            "vision");
  EXPECT_THAT(ErrorOf("default_project = \"nope\"\n[projects.vision]\n"),
              HasSubstr("herd.toml:1:1: default_project: 'nope' is not a configured project"));
  EXPECT_EQ(MustParse("[projects.vision]\n").queues.size(), 1u);  // no implicit default
}

TEST(ConfigTest, BuiltinClassesAndOverrides) {
  Config d = MustParse("");
  const ClassConfig* interactive = d.FindClass("interactive");
  ASSERT_NE(interactive, nullptr);
  EXPECT_EQ(*interactive, (ClassConfig{"interactive", 100, false, 12 * 3600, 0, 3600, true}));
  EXPECT_EQ(*d.FindClass("train"), (ClassConfig{"train", 50, true, 0, 600, 0, false}));
  EXPECT_EQ(*d.FindClass("inference"), (ClassConfig{"inference", 125, false, 0, 0, 0, true}));
  EXPECT_EQ(d.FindClass("batch"), nullptr);

  Config c = MustParse(
      "[classes.train]\nmin_runtime = \"1h\"\n"
      "[classes.interactive]\nmax_time = 0\n"
      "[classes.debug]\npriority = 80\npreemptible = true\nmax_time = \"2h\"\n");
  EXPECT_EQ(c.FindClass("train")->min_runtime_s, 3600);
  EXPECT_EQ(c.FindClass("train")->priority, 50);
  EXPECT_TRUE(c.FindClass("train")->preemptible);
  EXPECT_EQ(c.FindClass("interactive")->max_time_s, 0);
  EXPECT_EQ(c.FindClass("interactive")->idle_timeout_s, 3600);
  EXPECT_EQ(*c.FindClass("debug"), (ClassConfig{"debug", 80, true, 7200, 0, 0, false}));
}

TEST(ConfigTest, UnitsOfSizesDurationsAndGpus) {
  Config c = MustParse(
      "[scheduler]\npreempt_grace = 45\nreserve_after = \"1h30m\"\ncycle_interval = \"500ms\"\n"
      "heartbeat_interval = \"3s\"\nfair_share_half_life = \"2d12h\"\n"
      "[projects.p]\ndeserved = { gpu = \"0.25\", cpu = 4, memory = \"512G\" }\n"
      "limit = { gpu = 1.5, memory = 1048576 }\nover_quota_weight = 2\nmin_runtime = \"5m\"\n");
  EXPECT_EQ(c.scheduler.preempt_grace_s, 45);
  EXPECT_EQ(c.scheduler.reserve_after_s, 5400);
  EXPECT_EQ(c.scheduler.cycle_interval_ms, 500);
  EXPECT_EQ(c.scheduler.heartbeat_interval_ms, 3000);
  EXPECT_EQ(c.scheduler.fair_share_half_life_s, 2 * 86400 + 12 * 3600);
  const QueueConfig* p = c.FindQueue("p");
  EXPECT_EQ(p->deserved, (model::Resources{250, 4, 512 * 1024}));
  EXPECT_EQ(p->limit, (model::Resources{1500, kUnlimited, 1024 * 1024}));
  EXPECT_EQ(p->over_quota_weight, 2);
  EXPECT_EQ(p->min_runtime_s, 300);
  EXPECT_THAT(ErrorOf("[scheduler]\nnode_timeout = \"soon\"\n"),
              HasSubstr("herd.toml:2:1: scheduler.node_timeout: invalid duration 'soon'"));
  EXPECT_THAT(ErrorOf("[projects.p]\ndeserved = { memory = \"lots\" }\n"),
              HasSubstr("projects.p.deserved.memory: invalid size 'lots'"));
  EXPECT_THAT(ErrorOf("[projects.p]\ndeserved = { gpus = 2 }\n"),
              HasSubstr("unknown resource 'gpus'; use gpu, \"gpu.TYPE\" (GPUs of one type), "
                        "\"pool.NAME\" (GPUs of one pool's nodes), cpu or memory"));
}

TEST(ConfigTest, MergeTomlExtraWinsTablesMergeArraysAreReplaced) {
  Result<std::string> merged = MergeToml(
      "[controller]\nlisten = [\"tcp://127.0.0.1:1\", \"ipc:///a\"]\nstate_dir = \"/base\"\n"
      "[scheduler]\nplacement = \"fgd\"\n[projects.p]\ndeserved = { gpu = 2, cpu = 8 }\n",
      "base.toml",
      "[controller]\nlisten = [\"ipc:///b\"]\n[projects.p.deserved]\ngpu = 4\n"
      "[auth]\nmethod = \"none\"\n",
      "extra.toml");
  ASSERT_TRUE(merged.ok()) << merged.status().message();
  Config c = MustParse(*merged);
  EXPECT_EQ(c.controller.listen, std::vector<std::string>{"ipc:///b"});
  EXPECT_EQ(c.controller.state_dir, "/base");
  EXPECT_EQ(c.scheduler.placement, "fgd");
  EXPECT_EQ(c.auth.method, "none");
  EXPECT_EQ(c.FindQueue("p")->deserved, (model::Resources{4000, 8, 0}));

  Result<std::string> bad = MergeToml("", "base.toml", "x = \n", "extra.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("extra.toml:1:"));
}

TEST(ConfigTest, ToTomlRoundTrips) {
  Config c = MustParse(
      "default_project = \"vision\"\nadmins = [\"root\"]\n"
      "[controller]\nlisten = [\"tcp://0.0.0.0:6817\"]\nlog_file = \"/var/log/herd.log\"\n"
      "max_message_size = \"4M\"\nmessage_timeout = \"1500ms\"\n"
      "[scheduler]\nplacement = \"spread\"\ncycle_interval = \"250ms\"\nkill_grace = 0\n"
      "reserve_after = 90061\n"
      "[classes.debug]\npriority = 80\n"
      "[departments.research]\ndeserved = { gpu = 16 }\nmembers = [\"alice\"]\n"
      "min_runtime = \"20m\"\n"
      "[departments.cv]\nparent = \"research\"\n"
      "[projects.vision]\ndepartment = \"cv\"\ndeserved = { gpu = 8.5, cpu = 128, memory = "
      "\"1T\", \"gpu.h100\" = 4, \"pool.dev\" = 2 }\nlimit = { gpu = 24, \"gpu.h100\" = 6 }\n"
      "over_quota_weight = { gpu = 2.5, \"gpu.h100\" = 3, \"pool.dev\" = 1.5 }\n"
      "[projects.speech]\ndepartment = \"research\"\ndeserved = { memory = 1537 }\n"
      "[nodes.dgx01]\nlabels = { pool = \"train\", rack = \"r1\" }\n"
      "[pools.dev]\nnodes = [\"ws[01-02]\", \"lab*\"]\nlabels = { gpu = \"a6000\" }\n"
      "[gpu_types]\na100 = [\"NVIDIA A100-SXM4-40GB\", \"NVIDIA A100-PCIE-40GB\"]\n"
      "[node]\nmax_log_size = \"2G\"\nmin_free_space = 0\n"
      "[containers]\nallowed_volumes = [\"/data\"]\n"
      "[web]\nlisten = \"[::1]:9180\"\nmetrics_listen = \"0.0.0.0:9181\"\nuser = \"herd\"\n"
      "[history]\ninterval = 0\nraw_retention = \"3d\"\n");
  const std::string text = ToToml(c);
  Config back = MustParse(text);
  EXPECT_TRUE(back.warnings.empty()) << back.warnings.front() << "\n" << text;
  EXPECT_EQ(back.controller, c.controller);
  EXPECT_EQ(back.auth, c.auth);
  EXPECT_EQ(back.scheduler, c.scheduler);
  EXPECT_EQ(back.classes, c.classes);
  EXPECT_EQ(back.queues, c.queues) << text;
  EXPECT_EQ(back.nodes, c.nodes);
  EXPECT_EQ(back.pools, c.pools);
  EXPECT_EQ(back.gpu_types, c.gpu_types);
  EXPECT_EQ(back.node, c.node);
  EXPECT_EQ(back.web, c.web);
  EXPECT_EQ(back.history, c.history);
  EXPECT_EQ(c.web.metrics_listen, "0.0.0.0:9181");
  EXPECT_EQ(c.node, (NodeDaemonConfig{2048, 0}));
  EXPECT_EQ(back.admins, c.admins);
  EXPECT_EQ(back.volume_prefixes, c.volume_prefixes);
  EXPECT_EQ(back.default_project, c.default_project);
  EXPECT_EQ(ToToml(back), text);
  // Inherited values are resolved in the output.
  EXPECT_EQ(c.FindQueue("vision")->members, std::vector<std::string>{"alice"});
  EXPECT_EQ(c.FindQueue("vision")->min_runtime_s, 1200);
}

TEST(ConfigTest, MessageLimitsStayWithinTheProtocol) {
  Config c = MustParse("");
  EXPECT_EQ(c.controller.max_message_mib, 16);
  EXPECT_EQ(c.controller.message_timeout_ms, 30000);
  EXPECT_EQ(c.controller.max_connections, 16384);
  c = MustParse(
      "[controller]\nmax_message_size = 2\nmessage_timeout = \"2s\"\nmax_connections = 64\n");
  EXPECT_EQ(c.controller.max_message_mib, 2);
  EXPECT_EQ(c.controller.message_timeout_ms, 2000);
  EXPECT_EQ(c.controller.max_connections, 64);
  for (const char* bad : {"max_message_size = \"1G\"", "max_message_size = 0",
                          "message_timeout = \"10ms\"", "max_connections = 1"}) {
    Result<Config> r = ParseConfig(std::string("[controller]\n") + bad + "\n", "herd.toml");
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(ConfigTest, MinJobAgeAndJobRetentionAreDurationsAndRetentionIsAtLeastADay) {
  Config c = MustParse("");
  EXPECT_EQ(c.controller.min_job_age_s, 600);
  EXPECT_EQ(c.controller.job_retention_s, 0);
  c = MustParse("[controller]\nmin_job_age = 0\njob_retention = \"90d\"\n");
  EXPECT_EQ(c.controller.min_job_age_s, 0);
  EXPECT_EQ(c.controller.job_retention_s, 90 * 86400);
  Result<Config> r = ParseConfig("[controller]\njob_retention = \"1h\"\n", "herd.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at least \"1d\""), std::string::npos)
      << r.status().message();
  EXPECT_FALSE(ParseConfig("[controller]\nmin_job_age = \"soon\"\n", "herd.toml").ok());
}

TEST(ConfigTest, LoadConfigReportsMissingFile) {
  Result<Config> c = LoadConfig("/nonexistent/herd.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("cannot read /nonexistent/herd.toml: "));
}

TEST(ConfigTest, LoadConfigNamesThePathInErrors) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/herd-config-XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/herd.toml";
  std::ofstream(path) << "[auth]\nmethod = \"none\"\n\n[controller]\nlisten = 5\n";
  Result<Config> c = LoadConfig(path);
  std::remove(path.c_str());
  rmdir(dir.c_str());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            path + ":5:1: controller.listen: expected an array of strings, got an integer");
}

// A temporary directory, removed with what it holds when the test ends.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::string(tmp && *tmp ? tmp : "/tmp") + "/herd-config-XXXXXX";
    if (mkdtemp(path_.data()) == nullptr) path_.clear();
  }
  ~TempDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    return file;
  }

 private:
  std::string path_;
};

// Reading a directory yields no text: it used to pass as an empty, valid herd.toml.
TEST(ConfigTest, ADirectoryIsRefusedNamingTheFileToGive) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  for (const Result<Config>& c : {LoadConfig(dir.path()), LoadClientConfig(dir.path())}) {
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), Code::kInvalid);
    EXPECT_EQ(c.status().message(), dir.path() + " is a directory: give the configuration "
                                    "file, such as " + dir.path() + "/herd.toml");
  }
}

// Where a key takes 0 for "none", every spelling of zero is 0; where it does not, both the
// number and the text are refused with the same message.
TEST(ConfigTest, ZeroDurationIsOneRuleForNumbersAndText) {
  for (const char* zero : {"0", "\"0\"", "\"0s\"", "\"0m\"", "\"0h0m\"", "\"00:00\""}) {
    SCOPED_TRACE(zero);
    const std::string z = zero;
    Config c = MustParse("[scheduler]\nkill_grace = " + z + "\npreempt_grace = " + z +
                         "\nfair_share_half_life = " + z +
                         "\nreserve_after = " + z + "\n[classes.train]\nmax_time = " + z +
                         "\nmin_runtime = " + z + "\nidle_timeout = " + z +
                         "\n[projects.p]\nmin_runtime = " + z + "\n");
    EXPECT_EQ(c.scheduler.kill_grace_s, 0);
    EXPECT_EQ(c.scheduler.preempt_grace_s, 0);
    EXPECT_EQ(c.scheduler.reserve_after_s, 0);
    EXPECT_EQ(c.scheduler.fair_share_half_life_s, 0);
    const ClassConfig* train = c.FindClass("train");
    const QueueConfig* p = c.FindQueue("p");
    ASSERT_TRUE(train != nullptr && p != nullptr);
    EXPECT_EQ(train->max_time_s, 0);
    EXPECT_EQ(train->min_runtime_s, 0);
    EXPECT_EQ(train->idle_timeout_s, 0);
    EXPECT_EQ(p->min_runtime_s, 0);
  }
  const std::string refused =
      "herd.toml:2:1: scheduler.node_timeout: expected a duration such as \"30s\", \"10m\" or "
      "\"12h\" (an integer is seconds), got ";
  EXPECT_EQ(ErrorOf("[scheduler]\nnode_timeout = 0\n"), refused + "0");
  EXPECT_EQ(ErrorOf("[scheduler]\nnode_timeout = \"0s\"\n"), refused + "'0s'");
  EXPECT_EQ(ErrorOf("[node]\nstart_timeout = \"0m\"\n"),
            "herd.toml:2:1: node.start_timeout: expected a duration such as \"30s\", \"10m\" or "
            "\"12h\" (an integer is seconds), got '0m'");
}

// herd reads only [controller] listen and [auth]: a TOML error elsewhere is a warning naming
// its line, and a bad value of a key herd does not use is not even that.
TEST(ConfigTest, ClientConfigReadsAroundAnErrorOutsideWhatItNeeds) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.Write(
      "herd.toml",
      "# cluster\n[controller]\nlisten = [\"tcp://127.0.0.2:7000\"]\nmax_name_bytes = -3\n\n"
      "[auth]\nmethod = \"none\"\n\n[projects.vision]\ndeserved = { gpu = 4\n"
      "members = [\"alice\"]\n");
  ASSERT_FALSE(LoadConfig(path).ok());
  Result<Config> c = LoadClientConfig(path);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->controller.listen, std::vector<std::string>{"tcp://127.0.0.2:7000"});
  EXPECT_EQ(c->auth.method, "none");
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_THAT(c->warnings[0], HasSubstr(path + ":10:"));
  EXPECT_THAT(c->warnings[0], HasSubstr("read only [controller] and [auth]"));
}

TEST(ConfigTest, ClientConfigWithAnErrorInWhatItNeedsNamesTheLine) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string broken_syntax = dir.Write(
      "a.toml", "[projects.p]\nmembers = [\"*\"]\n[controller]\nlisten = [\"tcp://h:1\"\n");
  Result<Config> c = LoadClientConfig(broken_syntax);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr(broken_syntax + ":4:"));
  const std::string bad_value =
      dir.Write("b.toml", "[auth]\nmethod = \"kerberos\"\n[projects.p]\nx = = 1\n");
  c = LoadClientConfig(bad_value);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr(bad_value + ":2:"));
}

TEST(ConfigTest, LocalEndpointReachesAWildcardListenOnLoopback) {
  EXPECT_EQ(LocalEndpoint("tcp://0.0.0.0:6817"), "tcp://127.0.0.1:6817");
  EXPECT_EQ(LocalEndpoint("tcp://*:7000"), "tcp://127.0.0.1:7000");
  EXPECT_EQ(LocalEndpoint("tcp://head:6817"), "tcp://head:6817");
  EXPECT_EQ(LocalEndpoint("ipc:///run/herd/ctld.sock"), "ipc:///run/herd/ctld.sock");
}

TEST(ConfigTest, WebAddressesAreHostAndPort) {
  Config c = MustParse("");
  EXPECT_EQ(c.web.listen, "127.0.0.1:9180");
  EXPECT_EQ(c.web.metrics_listen, "");
  for (const char* bad : {"9180", "localhost", "[::1:9180", "::1:9180", "host:0", "host:99999",
                          "host:12ab", ":9180"}) {
    auto r = ParseConfig(std::string("[web]\nlisten = \"") + bad + "\"\n", "herd.toml");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("herd.toml:2:1: web.listen:")) << bad;
  }
  auto v6 = SplitHostPort("[::1]:9180");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
  EXPECT_EQ(v6->second, 9180);
}

TEST(ConfigTest, WebTokensTlsAndUrl) {
  Config c = MustParse("");
  EXPECT_EQ(c.web.login_token_s, 600);
  EXPECT_EQ(c.web.session_s, 12 * 3600);
  EXPECT_EQ(c.web.BaseUrl(), "http://127.0.0.1:9180");
  c = MustParse(
      "[web]\nlogin_token_ttl = \"2m\"\nsession_ttl = \"1h\"\ntls_cert = \"/c.pem\"\n"
      "tls_key = \"/k.pem\"\n");
  EXPECT_EQ(c.web.login_token_s, 120);
  EXPECT_EQ(c.web.session_s, 3600);
  EXPECT_EQ(c.web.BaseUrl(), "https://127.0.0.1:9180");
  EXPECT_EQ(MustParse("[web]\nurl = \"https://herd.example.org/\"\n").web.BaseUrl(),
            "https://herd.example.org");
  auto half = ParseConfig("[web]\ntls_cert = \"/c.pem\"\n", "herd.toml");
  ASSERT_FALSE(half.ok());
  EXPECT_THAT(half.status().message(), HasSubstr("tls_cert and tls_key go together"));
  auto url = ParseConfig("[web]\nurl = \"herd:9180\"\n", "herd.toml");
  ASSERT_FALSE(url.ok());
  EXPECT_THAT(url.status().message(), HasSubstr("web.url"));
  EXPECT_FALSE(ParseConfig("[web]\nsession_ttl = 0\n", "herd.toml").ok());
}

// Tokens and session cookies cross [web] listen: plain HTTP is taken on
// loopback only.
TEST(ConfigTest, WebListensBeyondLoopbackOnlyWithTls) {
  for (const char* open : {"0.0.0.0:9180", "10.0.0.5:9180", "[::]:9180", "herd.example.org:80"}) {
    auto r = ParseConfig(std::string("[web]\nlisten = \"") + open + "\"\n", "herd.toml");
    ASSERT_FALSE(r.ok()) << open;
    EXPECT_THAT(r.status().message(), HasSubstr("web.listen")) << open;
    EXPECT_THAT(r.status().message(), HasSubstr("tls_cert")) << open;
    EXPECT_EQ(MustParse(std::string("[web]\nlisten = \"") + open +
                        "\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n")
                  .web.listen,
              open);
  }
  for (const char* local : {"127.0.0.1:9180", "127.0.1.1:80", "localhost:9180", "[::1]:9180"}) {
    EXPECT_EQ(MustParse(std::string("[web]\nlisten = \"") + local + "\"\n").web.listen, local);
  }
  // metrics_listen serves /metrics alone, no tokens: any address.
  EXPECT_EQ(MustParse("[web]\nmetrics_listen = \"0.0.0.0:9181\"\n").web.metrics_listen,
            "0.0.0.0:9181");
}

}  // namespace
}  // namespace herd::config
