// MaskCut against the official algorithm (tools/maskcut/official.py: dense SciPy generalized
// eigensolve) on the same features: the same masks, cut by cut.
#include "lesseg/methods/pseudo/maskcut.h"
#include "parity_util.h"

namespace lesseg {
namespace {

TEST(MaskCutParity, SameMasksAsTheOfficialAlgorithm) {
  auto io = parity::reference_io("maskcut");
  int compared = 0;
  for (int i = 0; io.count("features_" + std::to_string(i)); ++i) {
    const auto grid = io.at("grid_" + std::to_string(i));
    const int64_t h = grid[0].item<int64_t>(), w = grid[1].item<int64_t>();
    const auto reference = io.at("masks_" + std::to_string(i));  // [3, h, w], discarded cuts empty
    auto ours = maskcut(io.at("features_" + std::to_string(i)), h, w, MaskCutOptions{});
    std::vector<cv::Mat> by_cut(3);
    for (const auto& m : ours.masks) by_cut[size_t(m.cut)] = m.mask;
    for (int c = 0; c < 3; ++c) {
      auto ref = reference[c].contiguous();
      cv::Mat expected(int(h), int(w), CV_8U, ref.data_ptr<uint8_t>());
      cv::Mat got = by_cut[size_t(c)].empty() ? cv::Mat::zeros(int(h), int(w), CV_8U) : by_cut[size_t(c)];
      const int ref_area = cv::countNonZero(expected), our_area = cv::countNonZero(got);
      std::printf("  case %d cut %d: areas %d (official) %d (lesseg)\n", i, c, ref_area, our_area);
      if (ref_area == 0) {
        EXPECT_EQ(our_area, 0) << "case " << i << " cut " << c;
      } else {
        EXPECT_GE(mask_iou(expected, got), 0.99) << "case " << i << " cut " << c;
      }
      ++compared;
    }
  }
  EXPECT_GE(compared, 12);
}

}  // namespace
}  // namespace lesseg
