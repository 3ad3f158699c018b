// `lesseg probe` end to end: `lesseg synth` writes single-object crops, a shrunken backbone is
// probed with --knn; one JSON line on stdout, the same in --out; usage and bad input exit codes.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lesseg/core/fs.h"
#include "smoke_util.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;
using smoke::fresh_dir;
using smoke::run_cli;

// The last non-empty line of the output (stderr may hold log lines before it).
std::string last_line(const std::string& output) {
  std::string text = output;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text.substr(text.find_last_of('\n') == std::string::npos ? 0 : text.find_last_of('\n') + 1);
}

class ProbeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fresh_dir("probe");
    auto synth = run_cli("synth --out " + (dir_ / "world").string() + " --size 32 --train 0 --val 0 --crops 40");
    ASSERT_EQ(synth.code, 0) << synth.output;
    std::ofstream(dir_ / "probe.yaml") << "threads: 2\nmodel:\n  backbone: resnet18\nprobe:\n  data: "
                                       << (dir_ / "world" / "crops").string() << "\n  image_size: 32\n";
  }
  static std::string config() { return (dir_ / "probe.yaml").string(); }
  static fs::path dir_;
};
fs::path ProbeCli::dir_;

TEST_F(ProbeCli, KnnOnSynthCropsPrintsOneJsonLine) {
  const fs::path out = dir_ / "knn.json";
  auto r = run_cli("probe " + config() + " --knn --set probe.knn_k=5 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  auto result = nlohmann::json::parse(last_line(r.output));
  EXPECT_EQ(result["probe"], "knn");
  EXPECT_EQ(result["backbone"], "resnet18");
  EXPECT_TRUE(result["weights"].is_null());
  const double top1 = result["knn_top1"].get<double>();
  EXPECT_GE(top1, 0.0);
  EXPECT_LE(top1, 1.0);
  EXPECT_EQ(result["train_images"].get<int>() + result["test_images"].get<int>(), 40);
  EXPECT_EQ(result["knn_k"], 5);
  EXPECT_EQ(nlohmann::json::parse(read_file(out)), result);
}

TEST_F(ProbeCli, UsageAndBadInputExitCodes) {
  EXPECT_EQ(run_cli("probe " + config()).code, 2);                      // no mode
  EXPECT_EQ(run_cli("probe " + config() + " --knn --linear").code, 2);  // two modes
  EXPECT_EQ(run_cli("probe " + config() + " --knn --set \"probe.data=''\"").code, 2);
  EXPECT_EQ(run_cli("probe " + config() + " --knn --set probe.nope=1").code, 2);
  auto attention = run_cli("probe " + config() + " --attention " + (dir_ / "att").string());
  EXPECT_EQ(attention.code, 2) << attention.output;  // resnet18 has no attention maps
  const fs::path bad = dir_ / "bad";
  fs::create_directories(bad);
  std::ofstream(bad / "labels.txt") << "x.png 0\n";
  auto r = run_cli("probe " + config() + " --knn --set probe.data=" + bad.string());
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find((bad / "labels.txt").string()), std::string::npos) << r.output;
  auto w = run_cli("probe " + config() + " --knn --weights " + (bad / "labels.txt").string());
  EXPECT_EQ(w.code, 4) << w.output;
}

}  // namespace
}  // namespace lesseg
