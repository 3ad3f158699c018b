// Shared pieces of the semi-supervised methods: the strong view leaves pixels in place, CutMix /
// ClassMix move an image's pixels and its labels together, the confidence-masked pseudo-label loss
// matches a hand-computed value.
#include <cmath>
#include <random>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "lesseg/data/semi_views.h"
#include "lesseg/methods/common/mixing.h"
#include "lesseg/methods/common/pseudo_label.h"

namespace lesseg {
namespace {

// Images whose pixels encode where they come from: channel 0 the batch index, 1 the row, 2 the
// column; the label of pixel (b, y, x) is b * 10000 + y * 100 + x.
struct Encoded {
  at::Tensor images, labels;
};
Encoded encoded(int64_t batch, int64_t height, int64_t width) {
  auto b = torch::arange(batch).view({batch, 1, 1}).expand({batch, height, width});
  auto y = torch::arange(height).view({1, height, 1}).expand({batch, height, width});
  auto x = torch::arange(width).view({1, 1, width}).expand({batch, height, width});
  return {torch::stack({b, y, x}, 1).to(torch::kFloat), b * 10000 + y * 100 + x};
}

TEST(CutMix, ImagesAndLabelsMoveTogether) {
  std::mt19937_64 rng(3);
  const int64_t batch = 64, height = 40, width = 56;
  Encoded target = encoded(batch, height, width);
  // The source is the batch rolled by one, as CPS / DACS pair images.
  Encoded source{target.images.roll(1, 0), target.labels.roll(1, 0)};
  CutMixOptions options;
  at::Tensor boxes = cutmix_boxes(batch, height, width, options, rng);
  at::Tensor images = mix(target.images, source.images, boxes), labels = mix(target.labels, source.labels, boxes);
  // Every pixel's label is the one its image pixel came with, and nothing moved within an image.
  auto decoded = images.select(1, 0).to(torch::kLong) * 10000 + images.select(1, 1).to(torch::kLong) * 100 +
                 images.select(1, 2).to(torch::kLong);
  EXPECT_TRUE(torch::equal(decoded, labels));
  EXPECT_TRUE(torch::equal(images.slice(1, 1, 3), target.images.slice(1, 1, 3)));
  // Each box is one axis-aligned rectangle of 2-40 % of the image (truncating its sides to whole
  // pixels takes up to a third off the smallest boxes here).
  int64_t with_box = 0;
  for (int64_t b = 0; b < batch; ++b) {
    auto box = boxes[b];
    const int64_t area = box.sum().item<int64_t>();
    if (area == 0) continue;
    ++with_box;
    auto rows = box.any(1).nonzero().flatten(), cols = box.any(0).nonzero().flatten();
    const int64_t h = rows.numel(), w = cols.numel();
    EXPECT_EQ(area, h * w) << "not a rectangle in image " << b;
    EXPECT_EQ(rows[-1].item<int64_t>() - rows[0].item<int64_t>() + 1, h);
    EXPECT_GE(double(area), 0.02 * height * width * 0.6);
    EXPECT_LE(double(area), 0.4 * height * width);
    EXPECT_TRUE(torch::all(labels[b].masked_select(box).div(10000, "floor") == (b + batch - 1) % batch).item<bool>());
  }
  // Probability 0.5 over 64 images: 32 expected, outside [16, 48] has probability < 1e-4.
  EXPECT_GE(with_box, 16);
  EXPECT_LE(with_box, 48);
}

TEST(ClassMix, MasksCoverHalfTheClassesPresentAndNoIgnoredPixel) {
  std::mt19937_64 rng(5);
  // Image 0: classes 0..3 in four stripes plus an ignored stripe; image 1: one class.
  auto labels = torch::zeros({2, 5, 8}, torch::kLong);
  for (int64_t r = 0; r < 4; ++r) labels[0][r].fill_(r);
  labels[0][4].fill_(255);
  labels[1].fill_(7);
  at::Tensor masks = classmix_masks(labels, 255, rng);
  auto rows = masks[0].all(1);  // a stripe is taken whole or not at all
  EXPECT_TRUE(torch::equal(rows, masks[0].any(1)));
  EXPECT_EQ(rows.sum().item<int64_t>(), 2);  // ceil(4 / 2) of the classes
  EXPECT_FALSE(rows[4].item<bool>());        // ignored pixels are never a class
  EXPECT_TRUE(masks[1].all().item<bool>());  // ceil(1 / 2) = the one class
  // Different draws pick different classes.
  bool differs = false;
  for (int i = 0; i < 20 && !differs; ++i) differs = !torch::equal(classmix_masks(labels, 255, rng)[0], masks[0]);
  EXPECT_TRUE(differs);
}

TEST(StrongView, ChangesColoursButNoPixelMoves) {
  // Dark left half, bright right half: after any strong view the edge is still between columns 15
  // and 16 (blur spreads it by at most a few pixels symmetrically) and the size is unchanged.
  cv::Mat weak(24, 32, CV_8UC3, cv::Scalar(40, 60, 80));
  weak(cv::Rect(16, 0, 16, 24)).setTo(cv::Scalar(200, 180, 160));
  std::mt19937_64 rng(11);
  const ViewSpec spec = strong_view_spec(32);
  int changed = 0;
  for (int i = 0; i < 40; ++i) {
    cv::Mat strong = strong_view(weak, spec, rng);
    ASSERT_EQ(strong.size(), weak.size());
    ASSERT_EQ(strong.type(), weak.type());
    changed += cv::norm(strong, weak, cv::NORM_L1) > 0;
    cv::Mat grey;
    cv::cvtColor(strong, grey, cv::COLOR_RGB2GRAY);
    cv::Mat column_means;
    cv::reduce(grey, column_means, 0, cv::REDUCE_AVG, CV_64F);
    // The largest step between neighbouring columns sits at the true edge (15 | 16), whatever the
    // jitter did to the two levels (it may swap which side is brighter, so the absolute step).
    int best = -1;
    double best_step = -1;
    for (int x = 0; x + 1 < grey.cols; ++x) {
      const double step = std::abs(column_means.at<double>(0, x + 1) - column_means.at<double>(0, x));
      if (step > best_step) best_step = step, best = x;
    }
    if (best_step > 1.0) {
      EXPECT_EQ(best, 15) << "draw " << i;
    }
  }
  EXPECT_GE(changed, 30);  // jitter p 0.8, grayscale 0.2, blur 0.5: almost every view differs
}

TEST(ConfidentCrossEntropy, MatchesAHandComputedExample) {
  // Two classes, one image of 1 x 3 pixels; the student is undecided (CE = ln 2 per pixel).
  auto logits = torch::zeros({1, 2, 1, 3}, torch::requires_grad());
  // Teacher: pixel 0 class 1 at 0.97, pixel 1 class 0 at 0.6, pixel 2 class 0 at 0.99.
  auto probabilities = torch::tensor({0.03, 0.6, 0.99, 0.97, 0.4, 0.01}).view({1, 2, 1, 3});
  PseudoLabel target = pseudo_label(probabilities);
  EXPECT_TRUE(torch::equal(target.label, torch::tensor({1, 0, 0}, torch::kLong).view({1, 1, 3})));
  // Threshold 0.95: pixels 0 and 2 count, divided by all 3 valid pixels.
  auto loss = confident_cross_entropy(logits, target, 0.95);
  EXPECT_NEAR(loss.item<double>(), 2 * std::log(2.0) / 3, 1e-6);
  loss.backward();
  // d/dlogit of CE at uniform softmax: (0.5 - onehot) / 3 on kept pixels, 0 on pixel 1.
  auto grad = logits.grad();
  EXPECT_NEAR(grad[0][1][0][0].item<double>(), (0.5 - 1) / 3, 1e-6);
  EXPECT_NEAR(grad[0][0][0][1].item<double>(), 0.0, 1e-9);
  EXPECT_NEAR(grad[0][0][0][2].item<double>(), (0.5 - 1) / 3, 1e-6);
  // Pixel 2 ignored (padding): one kept pixel over two valid ones; threshold 0 (CPS) keeps all.
  auto ignored = torch::tensor({false, false, true}).view({1, 1, 3});
  EXPECT_NEAR(confident_cross_entropy(logits, target, 0.95, ignored).item<double>(), std::log(2.0) / 2, 1e-6);
  EXPECT_NEAR(confident_cross_entropy(logits, target, 0.0).item<double>(), std::log(2.0), 1e-6);
}

}  // namespace
}  // namespace lesseg
