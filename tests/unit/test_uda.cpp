// The shared pieces of the adaptation methods: ClassMix keeps images, labels and weights aligned,
// the batch jitter only recolours and blurs, the confident fraction and the weighted loss against
// hand-computed values, weighted sampling.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "lesseg/data/sampler.h"
#include "lesseg/methods/common/batch_jitter.h"
#include "lesseg/methods/common/mixing.h"
#include "lesseg/methods/common/pseudo_label.h"
#include "lesseg/methods/uda/prototypes.h"

namespace lesseg {
namespace {

TEST(ClassMix, ImagesLabelsAndWeightsStayAligned) {
  // Each image's red channel holds its pixel's label (source classes 0..5, target pseudo-labels
  // 6..9), so after mixing the label map can be read back from the image.
  torch::manual_seed(3);
  const auto source_labels = torch::randint(0, 6, {3, 16, 20}, torch::kLong);
  const auto target_labels = torch::randint(6, 10, {3, 16, 20}, torch::kLong);
  auto as_image = [](const at::Tensor& labels) {
    return torch::stack({labels.to(torch::kFloat), torch::zeros(labels.sizes()), torch::ones(labels.sizes())}, 1);
  };
  std::mt19937_64 rng(7);
  const auto mask = classmix_masks(source_labels, 255, rng);
  const auto images = mix(as_image(target_labels), as_image(source_labels), mask);
  const auto labels = mix(target_labels, source_labels, mask);
  const auto weights = mix(torch::full({3, 16, 20}, 0.25), torch::ones({3, 16, 20}), mask);
  EXPECT_TRUE(torch::equal(images.select(1, 0).to(torch::kLong), labels));
  EXPECT_TRUE(torch::equal(weights.eq(1), labels.lt(6)));  // weight 1 exactly where the pixel is the source's
  for (int64_t b = 0; b < 3; ++b) {
    // The mask is a set of whole source classes: ceil(n / 2) of those present.
    auto present = std::get<0>(at::_unique(source_labels[b].flatten()));
    auto taken = std::get<0>(at::_unique(source_labels[b].masked_select(mask[b])));
    EXPECT_EQ(taken.numel(), (present.numel() + 1) / 2);
    EXPECT_TRUE(torch::equal(mask[b], torch::isin(source_labels[b], taken)));
  }
}

TEST(BatchJitter, RecoloursAndBlursWithoutMovingPixels) {
  const std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  const auto m = torch::tensor({mean[0], mean[1], mean[2]}).view({1, 3, 1, 1});
  const auto s = torch::tensor({std[0], std[1], std[2]}).view({1, 3, 1, 1});
  // Left half dark, right half bright.
  auto raw = torch::full({2, 3, 20, 40}, 0.2);
  raw.slice(3, 20).fill_(0.8);
  const auto images = (raw - m) / s;
  BatchJitterOptions off;
  off.jitter_skip = 1.0;
  off.blur_probability = 0.0;
  std::mt19937_64 rng(1);
  EXPECT_TRUE(torch::allclose(jitter_and_blur(images, mean, std, off, rng), images, 1e-5, 1e-5));
  BatchJitterOptions on;
  on.jitter_skip = 0.0;  // always jitter and blur
  on.blur_probability = 1.0;
  for (int trial = 0; trial < 5; ++trial) {
    const auto out = jitter_and_blur(images, mean, std, on, rng) * s + m;
    ASSERT_EQ(out.sizes(), images.sizes());
    EXPECT_GE(out.min().item<double>(), -1e-5);
    EXPECT_LE(out.max().item<double>(), 1 + 1e-5);
    EXPECT_FALSE(torch::allclose(out, raw, 1e-3, 1e-3));
    // The edge stays between columns 19 and 20: far columns keep their side's brightness order.
    const auto left = out.slice(3, 0, 15).mean().item<double>(), right = out.slice(3, 25).mean().item<double>();
    EXPECT_LT(left, right);
  }
}

TEST(PseudoLabelWeight, ConfidentFractionAndWeightedLoss) {
  PseudoLabel label;
  label.label = torch::zeros({1, 2, 2}, torch::kLong);
  label.confidence = torch::tensor({0.99f, 0.5f, 0.97f, 0.96f}).view({1, 2, 2});
  EXPECT_DOUBLE_EQ(confident_fraction(label, 0.968), 0.5);
  const auto ignored = torch::tensor({false, true, false, false}).view({1, 2, 2});
  EXPECT_NEAR(confident_fraction(label, 0.968, ignored), 2.0 / 3.0, 1e-12);
  // Two classes, logits (0, log 3) -> p(class 1) = 0.75: CE = -log 0.25 for class 0, -log 0.75 for 1.
  auto logits = torch::zeros({1, 2, 2, 2});
  logits.select(1, 1).fill_(std::log(3.0));
  const auto labels = torch::tensor({0L, 1L, 255L, 1L}).view({1, 2, 2});
  const auto weights = torch::tensor({1.0f, 0.5f, 1.0f, 0.0f}).view({1, 2, 2});
  const double expected = (std::log(4.0) + 0.5 * std::log(4.0 / 3.0)) / 4.0;  // mean over all 4 pixels
  EXPECT_NEAR(weighted_cross_entropy(logits, labels, weights, 255).item<double>(), expected, 1e-6);
}

TEST(WeightedSampler, DrawsByWeightAndRepeatsForASeed) {
  ShardedSampler sampler(4, true, 9);
  sampler.set_weights({0.0, 1.0, 3.0, 0.0});
  std::vector<int> seen(4, 0);
  for (int epoch = 0; epoch < 500; ++epoch)
    for (size_t i : sampler.epoch_indices(epoch)) ++seen[i];
  EXPECT_EQ(seen[0] + seen[3], 0);
  // 2000 draws, P(2) = 0.75: 1500 expected, sd ~19.
  EXPECT_NEAR(seen[2], 1500, 100);
  EXPECT_EQ(sampler.epoch_indices(3), sampler.epoch_indices(3));
  ShardedSampler other(4, true, 9);
  other.set_weights({0.0, 1.0, 3.0, 0.0});
  EXPECT_EQ(other.epoch_indices(7), sampler.epoch_indices(7));
}

TEST(Prototypes, UpdateIsTheEmaOfTheCamWeightedTopPixels) {
  PrototypeBank bank(3, 2);
  // Class 0: pixels (1, 0) with CAM 3, (0, 1) with CAM 1, (0.6, 0.8) with CAM 0.5 (left out by top 2).
  // Class 2: one pixel. Class 1: none. One ignored pixel.
  auto features = torch::tensor({1.0f, 0.0f, 0.0f, 1.0f, 0.6f, 0.8f, 0.0f, 1.0f, 1.0f, 0.0f}).view({5, 2});
  auto labels = torch::tensor({0L, 0L, 0L, 2L, 255L});
  auto scores = torch::zeros({5, 3});
  scores[0][0] = 3.0;
  scores[1][0] = 1.0;
  scores[2][0] = 0.5;
  scores[3][2] = 2.0;
  bank->update(features, labels, scores, 2, 0.5, 255);
  // First update: P_0 = normalize((3 (1, 0) + 1 (0, 1)) / 4) = (3, 1) / sqrt(10).
  EXPECT_NEAR(bank->prototypes()[0][0].item<double>(), 3 / std::sqrt(10.0), 1e-6);
  EXPECT_NEAR(bank->prototypes()[0][1].item<double>(), 1 / std::sqrt(10.0), 1e-6);
  EXPECT_TRUE(torch::equal(bank->seen(), torch::tensor({true, false, true})));
  EXPECT_TRUE(torch::allclose(bank->prototypes()[2], torch::tensor({0.0f, 1.0f})));
  EXPECT_TRUE(torch::equal(bank->prototypes()[1], torch::zeros({2})));
  // Second update of class 0 without scores (uniform, first top_k = 1 pixel: (0, 1)), momentum 0.5:
  // normalize(0.5 (3, 1) / sqrt(10) + 0.5 (0, 1)).
  bank->update(torch::tensor({0.0f, 1.0f}).view({1, 2}), torch::tensor({0L}), {}, 1, 0.5, 255);
  const double x = 0.5 * 3 / std::sqrt(10.0), y = 0.5 * 1 / std::sqrt(10.0) + 0.5, n = std::hypot(x, y);
  EXPECT_NEAR(bank->prototypes()[0][0].item<double>(), x / n, 1e-6);
  EXPECT_NEAR(bank->prototypes()[0][1].item<double>(), y / n, 1e-6);
}

TEST(Prototypes, ContrastAndDiversityMatchHandComputedValues) {
  PrototypeBank bank(3, 2);
  bank->update(torch::tensor({1.0f, 0.0f, 0.0f, 1.0f}).view({2, 2}), torch::tensor({0L, 1L}), {}, 1, 0.0, 255);
  // Pixel (1, 0) labeled 0, tau 0.5: logits (2, 0) -> CE = ln(1 + e^-2). A pixel of class 2 (no
  // prototype yet) and an ignored one are left out.
  auto features = torch::tensor({1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 0.0f}).view({3, 2});
  const double one = std::log(1 + std::exp(-2.0));
  EXPECT_NEAR(prototype_contrast(features.slice(0, 0, 1), torch::tensor({0L}), bank, 0.5, 255).item<double>(), one, 1e-6);
  EXPECT_NEAR(prototype_contrast(features, torch::tensor({0L, 2L, 255L}), bank, 0.5, 255).item<double>(), one, 1e-6);
  // Weights scale each pixel: (0.5 one + 0.5 one) / 2 for two such pixels.
  EXPECT_NEAR(prototype_contrast(features.slice(0, 0, 1).repeat({2, 1}), torch::tensor({0L, 0L}), bank, 0.5, 255,
                                 torch::tensor({0.5f, 0.5f})).item<double>(), 0.5 * one, 1e-6);
  // Mislabeled: the feature sits on prototype 1's side: CE = ln(1 + e^2).
  EXPECT_NEAR(prototype_contrast(features.slice(0, 1, 2), torch::tensor({0L}), bank, 0.5, 255).item<double>(),
              std::log(1 + std::exp(2.0)), 1e-6);
  // Diversity: both pixels at (1, 0): p = (s, 1 - s), s = e^2 / (e^2 + 1); sum p ln p / (2 ln 2).
  const double s = std::exp(2.0) / (std::exp(2.0) + 1);
  EXPECT_NEAR(prototype_diversity(features.slice(0, 0, 1).repeat({2, 1}), bank, 0.5).item<double>(),
              (s * std::log(s) + (1 - s) * std::log(1 - s)) / (2 * std::log(2.0)), 1e-6);
  // One pixel on each prototype: p = (1/2, 1/2), the lowest value, -1/2.
  EXPECT_NEAR(prototype_diversity(features.slice(0, 0, 2), bank, 0.5).item<double>(), -0.5, 1e-6);
}

}  // namespace
}  // namespace lesseg
