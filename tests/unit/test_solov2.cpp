// SOLOv2 (models/solov2.h): output shapes on a real ResNet-18, the focal prior, DropLoss on
// hand-made kernels, Matrix NMS on a worked case, and CutLER's copy-paste.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/data/copy_paste.h"
#include "lesseg/methods/cutler/selftrain.h"
#include "lesseg/models/registry.h"
#include "lesseg/models/solov2.h"
#include "lesseg/models/solov2_ops.h"

namespace lesseg {
namespace {

Solov2Options small_solo() {
  return Solov2Options().num_grids({12, 10, 8, 6, 4}).fpn_channels(64).head_channels(64).stacked_convs(2).mask_hidden(32).mask_channels(32);
}

TEST(Solov2, OutputShapesOnAResNet) {
  ModelSpec spec;
  spec.backbone = "resnet18";
  Solov2 model(build_backbone(spec), small_solo());
  model->eval();
  torch::NoGradGuard no_grad;
  SoloOutput out = model->forward(torch::randn({2, 3, 64, 96}));
  ASSERT_EQ(out.category.size(), 5u);
  const std::vector<int64_t> grids{12, 10, 8, 6, 4};
  for (size_t l = 0; l < 5; ++l) {
    EXPECT_EQ(out.category[l].sizes(), (std::vector<int64_t>{2, 1, grids[l], grids[l]}));
    EXPECT_EQ(out.kernels[l].sizes(), (std::vector<int64_t>{2, 32, grids[l], grids[l]}));
  }
  EXPECT_EQ(out.mask_features.sizes(), (std::vector<int64_t>{2, 32, 16, 24}));
  EXPECT_GE(out.mask_features.min().item<float>(), 0.0f);  // GroupNorm + ReLU
  // The focal prior: every cell starts near probability 0.01.
  EXPECT_NEAR(torch::sigmoid(out.category[0]).mean().item<double>(), 0.01, 0.005);
  EXPECT_THROW(model->forward(torch::randn({1, 3, 48, 64})), c10::Error);  // 48 is not a multiple of 32
}

// Mask features: channel 0 is +4 on the left half, -4 on the right; a cell with kernel +1 predicts
// the left half, -1 the right half. The ground truth is the left half.
SoloOutput half_planes(const at::Tensor& signs /*[S*S]*/, int64_t s) {
  SoloOutput out;
  auto features = torch::full({1, 1, 8, 8}, 4.0);
  features.slice(3, 4, 8).fill_(-4);
  out.mask_features = features;
  for (int l = 0; l < 5; ++l) {
    out.category.push_back(torch::zeros({1, 1, s, s}, torch::requires_grad()));
    out.kernels.push_back(signs.view({1, 1, s, s}).clone());
  }
  return out;
}

TEST(SoloLosses, DropLossSkipsBackgroundCellsWhoseMaskOverlapsNoTruth) {
  const int64_t s = 4;
  auto signs = torch::ones({s * s});
  signs.slice(0, 10, 16).fill_(-1);  // the last six cells predict the right half
  SoloOutput out = half_planes(signs, s);
  auto gt = torch::zeros({1, 32, 32}, torch::kUInt8);
  gt.slice(2, 0, 16).fill_(1);
  SoloLossOptions options;
  options.targets.num_grids = {s, s, s, s, s};
  options.targets.scale_ranges = {{1, 1000}, {2000, 3000}, {2000, 3000}, {2000, 3000}, {2000, 3000}};
  SoloLosses plain = solo_losses(out, {gt}, {torch::zeros({1}, torch::kLong)}, options);
  options.drop_loss = true;
  SoloLosses dropped = solo_losses(out, {gt}, {torch::zeros({1}, torch::kLong)}, options);
  ASSERT_GT(plain.positives, 0);
  // The right-half cells that are background drop (IoU 0 with the truth); left-half cells (IoU 1)
  // keep their loss, at every level.
  auto targets = solo_targets(gt, torch::zeros({1}, torch::kLong), options.targets);
  int64_t expected = 0;
  for (int l = 0; l < 5; ++l)
    for (int64_t k = 10; k < 16; ++k) expected += targets[l].labels[k].item<int64_t>() == 0 ? 1 : 0;
  EXPECT_EQ(dropped.dropped, expected);
  EXPECT_EQ(plain.dropped, 0);
  EXPECT_LT(dropped.category.item<double>(), plain.category.item<double>());
  // The positive cells (kernel +1 = the left half = the truth) have a near-perfect Dice.
  EXPECT_LT(plain.mask.item<double>(), 3 * 0.01);
  dropped.category.backward();
  EXPECT_TRUE(out.category[0].grad().defined());
}

TEST(MatrixNms, DecaysADuplicateByTheKernel) {
  auto masks = torch::zeros({3, 4, 4}, torch::kBool);
  masks[0].slice(0, 0, 2).fill_(true);
  masks[1].slice(0, 0, 2).fill_(true);  // duplicate of 0
  masks[2].slice(0, 2, 4).fill_(true);  // disjoint
  auto areas = masks.flatten(1).sum(1).to(torch::kFloat);
  auto scores = torch::tensor({0.9f, 0.8f, 0.7f});
  auto labels = torch::zeros({3}, torch::kLong);
  MatrixNmsOptions options;
  options.filter_thr = 0;
  auto g = matrix_nms(masks, labels, scores, areas, options);
  EXPECT_TRUE(torch::equal(g.keep, torch::tensor({0, 2, 1}, torch::kLong))) << g.keep;
  EXPECT_NEAR(g.scores[2].item<double>(), 0.8 * std::exp(-2.0), 1e-6);
  EXPECT_NEAR(g.scores[1].item<double>(), 0.7, 1e-6);
  options.kernel = "linear";
  options.filter_thr = 0.05;
  auto l = matrix_nms(masks, labels, scores, areas, options);
  EXPECT_EQ(l.keep.numel(), 2);  // the duplicate decays to 0 and is filtered
}

TEST(CopyPaste, PastesObjectsAndRespectsExistingOnes) {
  auto images = torch::zeros({2, 3, 8, 8});
  images[1].fill_(5);
  std::vector<at::Tensor> instances{torch::zeros({0, 8, 8}, torch::kUInt8), torch::zeros({1, 8, 8}, torch::kUInt8)};
  instances[1][0].slice(0, 2, 4).slice(1, 2, 4).fill_(1);
  CopyPasteOptions options;
  options.scale_min = options.scale_max = 1.0;  // same size: the offset is 0
  std::mt19937_64 rng(1);
  EXPECT_EQ(copy_paste(images, instances, options, rng), 1);
  // Image 0 received image 1's object with its pixels; image 1 had nothing to receive from image 0.
  ASSERT_EQ(instances[0].size(0), 1);
  EXPECT_TRUE(torch::equal(instances[0][0], instances[1][0]));
  EXPECT_EQ(images[0].sum().item<double>(), 5.0 * 3 * 4);
  EXPECT_EQ(instances[1].size(0), 1);

  // A pasted object covering >= 50 % of an existing one is dropped; a smaller overlap cuts it.
  auto two = torch::zeros({2, 3, 8, 8});
  std::vector<at::Tensor> big{torch::zeros({1, 8, 8}, torch::kUInt8), torch::zeros({1, 8, 8}, torch::kUInt8)};
  big[0][0].slice(0, 0, 2).slice(1, 0, 2).fill_(1);  // small, under the big one
  big[1][0].slice(0, 0, 8).slice(1, 0, 4).fill_(1);  // the left half
  options.probability = 1.0;
  std::mt19937_64 rng2(3);
  copy_paste(two, big, options, rng2);
  EXPECT_EQ(big[0].size(0), 1);  // image 0: the pasted half covered all of its object, dropped
  EXPECT_EQ(big[0][0].sum().item<int64_t>(), 4);
  ASSERT_EQ(big[1].size(0), 2);  // image 1: the small object pasted, cutting the half
  EXPECT_EQ(big[1][0].sum().item<int64_t>(), 32 - 4);
  EXPECT_EQ(big[1][1].sum().item<int64_t>(), 4);
}

coco::Annotation box_annotation(int64_t image_id, int y, int x, int side, double score) {
  cv::Mat mask = cv::Mat::zeros(16, 16, CV_8U);
  mask(cv::Rect(x, y, side, side)).setTo(1);
  coco::Annotation a;
  a.image_id = image_id;
  a.category_id = 1;
  a.mask = rle::encode(mask);
  a.area = side * side;
  a.score = score;
  return a;
}

coco::Dataset two_images(const std::vector<coco::Annotation>& annotations) {
  coco::Dataset d;
  d.images = {{1, "a.png", 16, 16}, {2, "b.png", 16, 16}};
  d.categories = {{1, "object"}};
  for (const auto& a : annotations) {
    d.annotations_by_image[a.image_id].push_back(d.annotations.size());
    d.annotations.push_back(a);
  }
  return d;
}

TEST(SelfTraining, MergeKeepsConfidentPredictionsAndUncoveredPseudoMasks) {
  // a.png: old masks at the top left (covered by a confident prediction) and bottom right (not);
  // b.png: only an unconfident prediction, so its old mask stays.
  coco::Dataset previous = two_images({box_annotation(1, 0, 0, 6, -1), box_annotation(1, 10, 10, 6, -1),
                                       box_annotation(2, 4, 4, 4, -1)});
  coco::Dataset predicted = two_images({box_annotation(1, 0, 0, 7, 0.9), box_annotation(1, 0, 8, 4, 0.5),
                                        box_annotation(2, 0, 0, 8, 0.6)});
  std::swap(predicted.images[0].id, predicted.images[1].id);  // matched by file name, not id
  for (auto& a : predicted.annotations) a.image_id = a.image_id == 1 ? 2 : 1;
  predicted.annotations_by_image = {{2, {0, 1}}, {1, {2}}};
  SelfTrainMerge options;
  coco::Dataset merged = merge_self_training(previous, predicted, options);
  ASSERT_EQ(merged.annotations_by_image.at(1).size(), 2u);
  const auto& first = merged.annotations[merged.annotations_by_image.at(1)[0]];
  EXPECT_DOUBLE_EQ(first.score, 0.9);                     // the confident prediction
  EXPECT_EQ(rle::area(first.mask), 49u);
  const auto& kept_old = merged.annotations[merged.annotations_by_image.at(1)[1]];
  EXPECT_EQ(rle::bbox(kept_old.mask)[0], 10);             // the uncovered old mask
  ASSERT_EQ(merged.annotations_by_image.at(2).size(), 1u);
  EXPECT_EQ(rle::area(merged.annotations[merged.annotations_by_image.at(2)[0]].mask), 16u);  // old, kept
  for (size_t i = 0; i < merged.annotations.size(); ++i) EXPECT_EQ(merged.annotations[i].id, int64_t(i + 1));
  options.threshold = 0.55;  // now b.png's prediction is kept and covers its old mask (IoU 0.25 < 0.5: kept too)
  merged = merge_self_training(previous, predicted, options);
  EXPECT_EQ(merged.annotations_by_image.at(2).size(), 2u);
}

}  // namespace
}  // namespace lesseg
