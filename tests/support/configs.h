// herd.toml fragments that several test suites run under.
#pragma once

namespace herd::testing {

// For scheduling tests on one 4-GPU node: projects a and b are each guaranteed 2 GPUs, anyone
// may use them, and train jobs may be preempted at once.
inline constexpr char kTwoProjects[] = R"(
default_project = "a"

[projects.a]
deserved = { gpu = 2 }
members = ["*"]

[projects.b]
deserved = { gpu = 2 }
members = ["*"]

[classes.train]
min_runtime = 0
)";

}  // namespace herd::testing
