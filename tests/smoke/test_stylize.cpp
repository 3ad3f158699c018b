// `lesseg stylize` on the synthetic world's two domains: every source image is written stylized, its
// colour statistics move toward the target's, the grid is written; writing into the source folder
// (given absolute, or relative and not yet existing) is refused (exit 2) and nothing there changes.
#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "lesseg/io/image_io.h"
#include "smoke_util.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;
using smoke::run_cli;

double mean_gap(const cv::Mat& a, const cv::Mat& b) {
  const cv::Scalar ma = cv::mean(a), mb = cv::mean(b);
  return std::abs(ma[0] - mb[0]) + std::abs(ma[1] - mb[1]) + std::abs(ma[2] - mb[2]);
}

TEST(Stylize, WritesStylizedSourceImagesAndAGrid) {
  const fs::path dir = smoke::fresh_dir("stylize");
  ASSERT_EQ(run_cli("synth --out " + (dir / "source").string() + " --domain source --train 3 --val 0 --crops 0 --size 64").code, 0);
  ASSERT_EQ(run_cli("synth --out " + (dir / "target").string() + " --domain target --train 3 --val 0 --crops 0 --size 64 --seed 5").code, 0);
  const fs::path source = dir / "source" / "images", target = dir / "target" / "images";
  for (const char* stylizer : {"fda", "adain"}) {
    const fs::path out = dir / stylizer;
    auto result = run_cli(std::string("stylize --stylizer ") + stylizer + " --beta 0.05 --threads 1 --source " +
                          source.string() + " --target " + target.string() + " --out " + out.string());
    ASSERT_EQ(result.code, 0) << result.output;
    EXPECT_TRUE(fs::exists(out / "stylize_grid.png"));
    double before = 0, after = 0;
    for (int i = 0; i < 3; ++i) {
      const std::string name = "source_00000" + std::to_string(i) + ".png";
      const cv::Mat s = read_image_rgb(source / name), styled = read_image_rgb(out / name);
      const cv::Mat t = read_image_rgb(target / ("target_00000" + std::to_string(i) + ".png"));
      ASSERT_EQ(styled.size(), s.size());
      before += mean_gap(s, t);
      after += mean_gap(styled, t);
    }
    std::cout << stylizer << ": mean colour gap to the target " << before / 3 << " -> " << after / 3 << std::endl;
    EXPECT_LT(after, 0.5 * before) << stylizer;
  }
  const auto before = fs::last_write_time(source / "source_000000.png");
  auto refused = run_cli("stylize --source " + source.string() + " --target " + target.string() + " --out " + source.string());
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_NE(refused.output.find("inside the --source folder"), std::string::npos) << refused.output;
  // A relative --out that does not exist yet, from inside the source folder: refused as well.
  refused = smoke::run_command("cd " + source.string() + " && " + LESSEG_CLI + " stylize --source . --target " +
                               target.string() + " --out styled");
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_FALSE(fs::exists(source / "styled"));
  EXPECT_EQ(fs::last_write_time(source / "source_000000.png"), before);
}

}  // namespace
}  // namespace lesseg
