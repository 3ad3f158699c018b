#pragma once
// SOLOv2's training targets, losses and inference (point NMS, Matrix NMS), as the authors' code
// (WXinlong/SOLO) and mmdetection define them; facts and sources in docs/design/solov2.md.
// Boxes are taken from masks with COCO's width (max x - min x + 1), as detectron2 / mmdet v2.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "lesseg/models/solov2.h"

namespace lesseg {

struct SoloTargetOptions {
  std::vector<int64_t> num_grids{40, 36, 24, 16, 12};
  // Inclusive sqrt(box area) ranges per level, in input pixels; they overlap, so an instance can
  // be assigned to two levels.
  std::vector<std::array<double, 2>> scale_ranges{{1, 96}, {48, 192}, {96, 384}, {192, 768}, {384, 2048}};
  double sigma = 0.2;  // centre region: mass centre +- sigma / 2 x box size, at most 3 x 3 cells
};

// One image's targets at one level.
struct SoloLevelTargets {
  at::Tensor labels;    // [S * S] int64: 0 background, c + 1 = category c
  at::Tensor positive;  // [P] int64 positive cell indices (row-major), ascending
  at::Tensor masks;     // [P, H / 4, W / 4] float 0/1: each positive cell's mask target
};

// gt_masks [N, H, W] (0/1, at the network input size, H and W multiples of 4), gt_labels [N]
// int64 0-based categories. An instance assigns its label to the cells of its centre region and
// its mask (bilinear 1/4 downsampling thresholded at 0.5) to each of them. Where instances share a
// cell, the later one's label and mask win: lesseg's choice, one target per cell (the authors' code
// keeps the cell's label from the later one but adds a Dice term for each instance). Instances
// empty at full or at 1/4 scale are skipped (lesseg's: an empty target only adds a constant Dice term).
std::vector<SoloLevelTargets> solo_targets(const at::Tensor& gt_masks, const at::Tensor& gt_labels,
                                           const SoloTargetOptions& options);

// torchvision.ops.sigmoid_focal_loss summed over elements, each multiplied by `weights` if given.
at::Tensor sigmoid_focal_loss_sum(const at::Tensor& logits, const at::Tensor& targets, double alpha, double gamma,
                                  const at::Tensor& weights = {});
// Per mask: 1 - 2 sum(p q) / (sum p^2 + 0.001 + sum q^2 + 0.001), p = sigmoid(logits) ([P, h, w] -> [P]).
at::Tensor dice_loss(const at::Tensor& mask_logits, const at::Tensor& targets);

struct SoloLossOptions {
  SoloTargetOptions targets;
  double focal_alpha = 0.25, focal_gamma = 2.0;
  double dice_weight = 3.0;
  // CutLER's DropLoss, carried to grid cells (lesseg's choice; CutLER drops RoI boxes): a
  // background cell whose predicted mask has IoU <= drop_iou with every ground-truth mask gets no
  // category loss, so the model is not punished for objects the pseudo-masks missed.
  bool drop_loss = false;
  double drop_iou = 0.01;
};

struct SoloLosses {
  at::Tensor category;  // focal loss summed over all cells / (positives + 1)
  at::Tensor mask;      // dice_weight x mean Dice over positive cells (0 with a graph if none)
  int64_t positives = 0;
  int64_t dropped = 0;  // background cells without category loss (DropLoss)
  int64_t cells = 0;
};

// gt_masks[b] [N_b, H, W] and gt_labels[b] [N_b] for image b of the batch `out` was computed on.
SoloLosses solo_losses(const SoloOutput& out, const std::vector<at::Tensor>& gt_masks,
                       const std::vector<at::Tensor>& gt_labels, const SoloLossOptions& options);

// Keeps a cell's probability only where it is the maximum of itself and its top, left and top-left
// neighbours (SOLO's points_nms, a 2 x 2 max pool); probabilities [C, S, S].
at::Tensor point_nms(const at::Tensor& probabilities);

struct MatrixNmsOptions {
  std::string kernel = "gaussian";  // gaussian: exp(-sigma iou^2) | linear: 1 - iou
  double sigma = 2.0;
  double filter_thr = 0.05;  // scores below this after decay are dropped (<= 0: none)
  int64_t nms_pre = 500;     // highest scores considered (<= 0: all)
  int64_t max_num = 100;     // kept at most (<= 0: all)
};

struct MatrixNmsResult {
  at::Tensor scores;  // decayed, descending
  at::Tensor labels;
  at::Tensor keep;    // indices into the inputs
};

// Matrix NMS (mmdetection's mask_matrix_nms): masks [n, h, w] bool, labels [n], scores [n], areas
// [n] (pixel counts of the masks). A mask's score decays by its overlap with higher-scored masks of
// its label, compensated by how much those were themselves suppressed.
MatrixNmsResult matrix_nms(const at::Tensor& masks, const at::Tensor& labels, const at::Tensor& scores,
                           const at::Tensor& areas, const MatrixNmsOptions& options);

struct SoloTestOptions {
  double score_thr = 0.1;  // category probability after point NMS
  double mask_thr = 0.5;
  MatrixNmsOptions nms;    // filter_thr 0.05 = SOLO's update_thr, max_num 100 = max_per_img
};

struct SoloInstances {
  at::Tensor masks;   // [K, out_h, out_w] bool
  at::Tensor scores;  // [K] float, descending
  at::Tensor labels;  // [K] int64
};

// The instances of image b: category x maskness scores, Matrix NMS, masks upsampled x4, cropped
// to the valid (unpadded) input region valid_h x valid_w and resized to out_h x out_w.
SoloInstances solo_instances(const SoloOutput& out, int64_t b, int64_t valid_h, int64_t valid_w, int64_t out_h,
                             int64_t out_w, const SoloTestOptions& options);

}  // namespace lesseg
