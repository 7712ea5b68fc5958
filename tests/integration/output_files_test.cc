// Output files of batch jobs (herd submit -o/--output, --error) on a real cluster: written by
// the node as the job's user, one per array member with %A_%a, and never a file the user could
// not open themselves.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kNobody = 65534;

class OutputFilesTest : public SharedClusterTest<OutputFilesTest> {
 protected:
  void SetUp() override {
    SharedClusterTest::SetUp();
    if (geteuid() != 0) GTEST_SKIP() << "jobs of another user need root";
    if (RunShell("command -v setpriv").exit_code != 0) GTEST_SKIP() << "setpriv is not installed";
    // A directory of nobody's, where its jobs' output files go.
    dir_ = c().dir() + "/output-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    ASSERT_EQ(chown(dir_.c_str(), kNobody, kNobody), 0);
    chmod(c().dir().c_str(), 0755);
  }
  // `herd submit -q ARGS` as nobody: the new job's id, or -1 (the test failed).
  long SubmitAsNobody(const std::string& args) {
    CommandResult r = c().HerdAs(kNobody, kNobody, "submit -q " + args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.exit_code == 0 ? std::stol(r.out) : -1;
  }
  static uid_t Owner(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
  }
  std::string dir_;
};

TEST_F(OutputFilesTest, StdoutAndStderrGoToTheirFilesOwnedByTheUser) {
  const long id = SubmitAsNobody("--chdir " + dir_ + " -o out.%j --error err.%j -- sh -c "
                                 "'echo to-out; echo to-err >&2'");
  ASSERT_GT(id, 0);
  ASSERT_EQ(c().WaitForEnd(id), "COMPLETED") << c().log_tail();
  const std::string out = dir_ + "/out." + std::to_string(id);
  const std::string err = dir_ + "/err." + std::to_string(id);
  EXPECT_EQ(ReadText(out), "to-out\n");
  EXPECT_EQ(ReadText(err), "to-err\n");
  EXPECT_EQ(Owner(out), kNobody);
  EXPECT_EQ(Owner(err), kNobody);
  // herd's own copy stays: both streams, or each alone.
  EXPECT_EQ(c().Herd("logs " + std::to_string(id)).out, "to-out\nto-err\n");
  EXPECT_EQ(c().Herd("logs --stdout " + std::to_string(id)).out, "to-out\n");
  EXPECT_EQ(c().Herd("logs --stderr " + std::to_string(id)).out, "to-err\n");
  auto job = c().Show(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["output"], out);
  EXPECT_EQ((*job)["error"], err);
  EXPECT_THAT(c().Herd("show " + std::to_string(id)).out, HasSubstr("StdErr:"));
}

TEST_F(OutputFilesTest, EveryArrayMemberGetsItsOwnFile) {
  const long id = SubmitAsNobody("--array 1-3 -o " + dir_ + "/arr.%A_%a -- sh -c "
                                 "'echo member $HERD_ARRAY_INDEX'");
  ASSERT_GT(id, 0);
  for (long member = id; member < id + 3; ++member) {
    ASSERT_EQ(c().WaitForEnd(member), "COMPLETED") << c().log_tail();
  }
  for (int index = 1; index <= 3; ++index) {
    const std::string path = dir_ + "/arr." + std::to_string(id) + "_" + std::to_string(index);
    EXPECT_EQ(ReadText(path), "member " + std::to_string(index) + "\n") << path;
    EXPECT_EQ(Owner(path), kNobody) << path;
  }
}

// The node opens output files as the job's user: a file in a directory only root may write, or
// a link the user planted to root's file, fails the job with the path and the reason, and root's
// files stay as they were.
TEST_F(OutputFilesTest, AFileTheUserCouldNotOpenFailsTheJob) {
  const std::string root_file = c().dir() + "/root-owned";
  std::ofstream(root_file) << "root's\n";
  chmod(root_file.c_str(), 0644);
  std::filesystem::create_symlink(root_file, dir_ + "/link");
  const std::string in_etc = "/etc/herd-output-test-" + std::to_string(getpid());
  for (const std::string& path : {in_etc, dir_ + "/link"}) {
    const long id = SubmitAsNobody("-o " + path + " -- echo written");
    ASSERT_GT(id, 0);
    ASSERT_EQ(c().WaitForEnd(id), "FAILED") << c().log_tail();
    auto job = c().Show(id);
    ASSERT_TRUE(job.ok());
    EXPECT_THAT((*job)["reason"].get<std::string>(),
                HasSubstr("cannot open the output file '" + path + "': Permission denied"));
    CommandResult jobs = c().Herd("jobs --all --json");
    EXPECT_THAT(jobs.out, HasSubstr("cannot open the output file")) << jobs.out;
  }
  EXPECT_FALSE(std::filesystem::exists(in_etc));
  EXPECT_EQ(ReadText(root_file), "root's\n");
}

}  // namespace
}  // namespace herd::testing
