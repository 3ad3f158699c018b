// SOLOv2's ops against references on random inputs (tools/parity/solov2.py): torchvision's sigmoid
// focal loss, and numpy written from the definitions for the training targets, Dice, point NMS and
// Matrix NMS (gaussian and linear kernels, one and two labels, an exact duplicate mask).
#include "lesseg/models/solov2_ops.h"
#include "parity_util.h"

namespace lesseg {
namespace {

class SoloOpsParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { io_ = new std::map<std::string, at::Tensor>(parity::reference_io("solov2_ops")); }
  static void TearDownTestSuite() { delete io_; }
  static const at::Tensor& io(const std::string& name) { return io_->at(name); }
  static std::map<std::string, at::Tensor>* io_;
};
std::map<std::string, at::Tensor>* SoloOpsParity::io_ = nullptr;

TEST_F(SoloOpsParity, FocalLossMatchesTorchvision) {
  auto plain = sigmoid_focal_loss_sum(io("focal_logits"), io("focal_targets"), 0.25, 2.0);
  parity::expect_close(plain.reshape({1}), io("focal_sum"), "focal loss, sum", 1e-6);
  auto weighted = sigmoid_focal_loss_sum(io("focal_logits"), io("focal_targets"), 0.25, 2.0, io("focal_weights"));
  parity::expect_close(weighted.reshape({1}), io("focal_weighted"), "focal loss, weighted", 1e-6);
}

TEST_F(SoloOpsParity, DiceMatchesTheDefinition) {
  parity::expect_close(dice_loss(io("dice_logits"), io("dice_targets")), io("dice"), "dice per mask", 1e-6);
}

TEST_F(SoloOpsParity, PointNmsKeepsLocalMaximaWithTies) {
  EXPECT_TRUE(torch::equal(point_nms(io("point_in")), io("point_out")));
}

TEST_F(SoloOpsParity, MatrixNmsMatchesTheReference) {
  MatrixNmsOptions options;
  options.nms_pre = 30;
  options.max_num = 20;
  const auto masks = io("nms_masks").to(torch::kBool);
  for (const std::string labels_name : {"one", "two"}) {
    auto labels = labels_name == "one" ? torch::zeros({masks.size(0)}, torch::kLong) : io("nms_labels2");
    for (const std::string kernel : {"gaussian", "linear"}) {
      options.kernel = kernel;
      auto r = matrix_nms(masks, labels, io("nms_scores"), io("nms_areas"), options);
      const std::string key = "nms_" + labels_name + "_" + kernel;
      ASSERT_TRUE(torch::equal(r.keep, io(key + "_keep"))) << key << "\n" << r.keep << io(key + "_keep");
      parity::expect_close(r.scores, io(key + "_scores"), key + " scores", 1e-5);
    }
  }
}

TEST_F(SoloOpsParity, TargetsMatchTheDefinition) {
  SoloTargetOptions options;
  options.num_grids = {8, 6, 5, 4, 3};
  options.scale_ranges = {{1, 24}, {12, 48}, {24, 96}, {48, 192}, {96, 512}};
  auto targets = solo_targets(io("target_masks"), io("target_labels"), options);
  ASSERT_EQ(targets.size(), 5u);
  int64_t positives = 0;
  for (size_t level = 0; level < 5; ++level) {
    const std::string l = std::to_string(level);
    EXPECT_TRUE(torch::equal(targets[level].labels, io("target_labels_" + l))) << "level " << l;
    EXPECT_TRUE(torch::equal(targets[level].positive, io("target_positive_" + l))) << "level " << l;
    EXPECT_TRUE(torch::equal(targets[level].masks, io("target_masks_" + l))) << "level " << l;
    positives += targets[level].positive.numel();
  }
  EXPECT_GT(positives, 20);  // the random instances do land on cells
}

}  // namespace
}  // namespace lesseg
