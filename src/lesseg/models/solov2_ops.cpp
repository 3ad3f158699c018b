#include "lesseg/models/solov2_ops.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/nn/functional.h"

namespace lesseg {
namespace F = torch::nn::functional;

namespace {

// Grid index of coordinate v along a side of `size` pixels with S cells.
int64_t cell_of(double v, double size, int64_t grid) { return static_cast<int64_t>(std::floor((v / size) / (1.0 / grid))); }

// [N, H, W] 0/1 -> [N, H / 4, W / 4] float 0/1: bilinear (align_corners false) thresholded at 0.5.
at::Tensor quarter_scale(const at::Tensor& masks) {
  if (masks.size(0) == 0) return torch::zeros({0, masks.size(1) / 4, masks.size(2) / 4}, torch::kFloat);
  auto m = resize_bilinear(masks.to(torch::kFloat).unsqueeze(1), masks.size(1) / 4, masks.size(2) / 4).squeeze(1);
  return m.ge(0.5).to(torch::kFloat);
}

// Each cell's mask logits: kernels [E, K] applied to features [E, h, w] -> [K, h, w].
at::Tensor apply_kernels(const at::Tensor& kernels, const at::Tensor& features) {
  const int64_t e = features.size(0), h = features.size(1), w = features.size(2);
  return torch::matmul(kernels.t(), features.reshape({e, h * w})).view({kernels.size(1), h, w});
}

// DropLoss weights of one image's cells at one level: 1 for positives and for background cells
// whose binary mask (logit > 0) overlaps a ground truth by IoU > drop_iou, else 0.
at::Tensor drop_weights(const at::Tensor& kernels, const at::Tensor& features, const at::Tensor& gt_quarter,
                        const at::Tensor& labels, double drop_iou) {
  torch::NoGradGuard no_grad;
  const int64_t cells = kernels.size(1), pixels = features.size(1) * features.size(2);
  auto gt = gt_quarter.reshape({gt_quarter.size(0), pixels}).to(features.device());
  gt = gt.index_select(0, gt.sum(1).gt(0).nonzero().squeeze(1));
  // No truth to compare with (an image without masks, or a crop that lost them): the loss stays
  // unweighted, as CutLER's when its ground-truth lookup fails.
  if (gt.size(0) == 0) return torch::ones({cells}, features.options());
  auto gt_area = gt.sum(1);
  auto best = torch::zeros({cells}, features.options());
  const int64_t chunk = 512;  // bounds memory at large inputs
  for (int64_t start = 0; start < cells; start += chunk) {
    const int64_t end = std::min(cells, start + chunk);
    auto pred = apply_kernels(kernels.slice(1, start, end), features).reshape({end - start, pixels}).gt(0).to(torch::kFloat);
    auto inter = torch::matmul(pred, gt.t());
    auto uni = pred.sum(1, true) + gt_area.unsqueeze(0) - inter;
    auto iou = torch::where(uni > 0, inter / uni.clamp_min(1), torch::zeros_like(inter));
    best.slice(0, start, end).copy_(std::get<0>(iou.max(1)));
  }
  return (best.gt(drop_iou) | labels.to(features.device()).gt(0)).to(torch::kFloat);
}

}  // namespace

std::vector<SoloLevelTargets> solo_targets(const at::Tensor& gt_masks, const at::Tensor& gt_labels,
                                           const SoloTargetOptions& options) {
  TORCH_CHECK(gt_masks.dim() == 3 && gt_masks.size(1) % 4 == 0 && gt_masks.size(2) % 4 == 0,
              "solo_targets: masks must be [N, H, W] with H, W multiples of 4, got ", gt_masks.sizes());
  TORCH_CHECK(options.num_grids.size() == options.scale_ranges.size(), "solo_targets: one scale range per grid");
  const int64_t n = gt_masks.size(0), height = gt_masks.size(1), width = gt_masks.size(2);
  auto masks = gt_masks.to(torch::kCPU).ne(0);
  auto labels = gt_labels.to(torch::kCPU).to(torch::kLong);
  auto quarter = quarter_scale(masks);
  // Per instance: mass centre, box size, sqrt(box area); invalid if empty at either scale.
  std::vector<double> cy(n), cx(n), box_h(n), box_w(n), scale(n);
  std::vector<bool> valid(n, false);
  for (int64_t i = 0; i < n; ++i) {
    auto points = masks[i].nonzero();  // [K, 2] (y, x)
    if (points.size(0) == 0 || quarter[i].sum().item<double>() == 0) continue;
    auto pf = points.to(torch::kDouble);
    cy[i] = pf.select(1, 0).mean().item<double>();
    cx[i] = pf.select(1, 1).mean().item<double>();
    box_h[i] = (points.select(1, 0).max() - points.select(1, 0).min()).item<double>() + 1;
    box_w[i] = (points.select(1, 1).max() - points.select(1, 1).min()).item<double>() + 1;
    scale[i] = std::sqrt(box_h[i] * box_w[i]);
    valid[i] = true;
  }
  std::vector<SoloLevelTargets> out;
  for (size_t level = 0; level < options.num_grids.size(); ++level) {
    const int64_t s = options.num_grids[level];
    std::vector<int64_t> cell_labels(s * s, 0);
    std::vector<int64_t> owner(s * s, -1);  // instance whose mask the cell learns
    for (int64_t i = 0; i < n; ++i) {
      const auto& range = options.scale_ranges[level];
      if (!valid[i] || scale[i] < range[0] || scale[i] > range[1]) continue;
      const double half_h = 0.5 * box_h[i] * options.sigma, half_w = 0.5 * box_w[i] * options.sigma;
      const int64_t ch = cell_of(cy[i], height, s), cw = cell_of(cx[i], width, s);
      const int64_t top = std::max({int64_t{0}, cell_of(cy[i] - half_h, height, s), ch - 1});
      const int64_t down = std::min({s - 1, cell_of(cy[i] + half_h, height, s), ch + 1});
      const int64_t left = std::max({int64_t{0}, cell_of(cx[i] - half_w, width, s), cw - 1});
      const int64_t right = std::min({s - 1, cell_of(cx[i] + half_w, width, s), cw + 1});
      for (int64_t r = top; r <= down; ++r) {
        for (int64_t c = left; c <= right; ++c) {
          cell_labels[r * s + c] = labels[i].item<int64_t>() + 1;  // later instances overwrite
          owner[r * s + c] = i;
        }
      }
    }
    SoloLevelTargets t;
    t.labels = torch::tensor(cell_labels, torch::kLong);
    std::vector<int64_t> positive, source;
    for (int64_t k = 0; k < s * s; ++k) {
      if (owner[k] < 0) continue;
      positive.push_back(k);
      source.push_back(owner[k]);
    }
    t.positive = torch::tensor(positive, torch::kLong);
    t.masks = positive.empty() ? torch::zeros({0, height / 4, width / 4}, torch::kFloat)
                               : quarter.index_select(0, torch::tensor(source, torch::kLong));
    out.push_back(std::move(t));
  }
  return out;
}

at::Tensor sigmoid_focal_loss_sum(const at::Tensor& logits, const at::Tensor& targets, double alpha, double gamma,
                                  const at::Tensor& weights) {
  // ref: torchvision.ops.sigmoid_focal_loss
  auto p = torch::sigmoid(logits);
  auto ce = F::binary_cross_entropy_with_logits(logits, targets,
                                                F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  auto p_t = p * targets + (1 - p) * (1 - targets);
  auto loss = ce * torch::pow(1 - p_t, gamma);
  if (alpha >= 0) loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss;
  if (weights.defined()) loss = loss * weights;
  return loss.sum();
}

at::Tensor dice_loss(const at::Tensor& mask_logits, const at::Tensor& targets) {
  // ref: WXinlong/SOLO solov2_head.py dice_loss (V-Net form, eps 0.001 on each sum)
  auto p = torch::sigmoid(mask_logits).flatten(1);
  auto q = targets.flatten(1).to(p.dtype());
  auto a = (p * q).sum(1);
  auto b = (p * p).sum(1) + 0.001;
  auto c = (q * q).sum(1) + 0.001;
  return 1 - 2 * a / (b + c);
}

SoloLosses solo_losses(const SoloOutput& out, const std::vector<at::Tensor>& gt_masks,
                       const std::vector<at::Tensor>& gt_labels, const SoloLossOptions& options) {
  const int64_t batch = out.mask_features.size(0), levels = static_cast<int64_t>(out.category.size());
  TORCH_CHECK(static_cast<int64_t>(gt_masks.size()) == batch && gt_labels.size() == gt_masks.size(),
              "solo_losses: one ground-truth set per image");
  const auto device = out.mask_features.device();
  std::vector<at::Tensor> logits, targets, weights, mask_logits, mask_targets;
  SoloLosses losses;
  for (int64_t b = 0; b < batch; ++b) {
    auto level_targets = solo_targets(gt_masks[b], gt_labels[b], options.targets);
    auto gt_quarter = options.drop_loss ? quarter_scale(gt_masks[b].to(torch::kCPU).ne(0)) : at::Tensor();
    const auto& features = out.mask_features[b];
    for (int64_t level = 0; level < levels; ++level) {
      const auto& t = level_targets[level];
      const auto& category = out.category[level][b];  // [C, S, S]
      const int64_t classes = category.size(0);
      auto cell_logits = category.flatten(1).t();  // [S * S, C]
      auto one_hot = torch::zeros({cell_logits.size(0), classes + 1}, torch::kFloat);
      one_hot.scatter_(1, t.labels.unsqueeze(1), 1.0);
      logits.push_back(cell_logits);
      targets.push_back(one_hot.slice(1, 1).to(device));
      auto kernels = out.kernels[level][b].flatten(1);  // [E, S * S]
      if (options.drop_loss) {
        auto w = drop_weights(kernels, features, gt_quarter, t.labels, options.drop_iou);
        losses.dropped += (w.numel() - w.sum().item<int64_t>());
        weights.push_back(w.unsqueeze(1).expand({-1, classes}));
      }
      losses.positives += t.positive.numel();
      losses.cells += t.labels.numel();
      if (t.positive.numel() == 0) continue;
      mask_logits.push_back(apply_kernels(kernels.index_select(1, t.positive.to(device)), features));
      mask_targets.push_back(t.masks.to(device));
    }
  }
  auto all_weights = weights.empty() ? at::Tensor() : torch::cat(weights);
  losses.category = sigmoid_focal_loss_sum(torch::cat(logits), torch::cat(targets), options.focal_alpha,
                                           options.focal_gamma, all_weights) /
                    static_cast<double>(losses.positives + 1);
  if (mask_logits.empty()) {
    losses.mask = out.mask_features.sum() * 0;  // keeps the graph (mmdetection's guard)
  } else {
    losses.mask = dice_loss(torch::cat(mask_logits), torch::cat(mask_targets)).mean() * options.dice_weight;
  }
  return losses;
}

at::Tensor point_nms(const at::Tensor& probabilities) {
  // ref: WXinlong/SOLO points_nms (kernel 2)
  auto x = probabilities.unsqueeze(0);
  auto pooled = torch::max_pool2d(x, {2, 2}, {1, 1}, {1, 1});
  auto hmax = pooled.slice(2, 0, x.size(2)).slice(3, 0, x.size(3));
  return (x * (hmax == x).to(x.dtype())).squeeze(0);
}

MatrixNmsResult matrix_nms(const at::Tensor& masks, const at::Tensor& labels, const at::Tensor& scores,
                           const at::Tensor& areas, const MatrixNmsOptions& options) {
  // ref: mmdetection mmdet/models/layers/matrix_nms.py mask_matrix_nms
  MatrixNmsResult r;
  const auto long_opts = scores.options().dtype(torch::kLong);
  auto empty = [&] {
    return MatrixNmsResult{torch::zeros({0}, scores.options()), torch::zeros({0}, long_opts),
                           torch::zeros({0}, long_opts)};
  };
  if (scores.numel() == 0) return empty();
  auto order = std::get<1>(torch::sort(scores, /*stable=*/true, /*dim=*/0, /*descending=*/true));
  if (options.nms_pre > 0 && order.numel() > options.nms_pre) order = order.slice(0, 0, options.nms_pre);
  auto keep = order;
  auto s = scores.index_select(0, order);
  auto l = labels.index_select(0, order);
  auto a = areas.index_select(0, order).to(torch::kFloat);
  const int64_t n = order.numel();
  auto flat = masks.index_select(0, order).reshape({n, -1}).to(torch::kFloat);
  auto inter = torch::matmul(flat, flat.t());
  auto area_rows = a.expand({n, n});
  auto iou = (inter / (area_rows + area_rows.t() - inter)).triu(1);
  auto label_rows = l.expand({n, n});
  auto same_label = (label_rows == label_rows.t()).triu(1).to(torch::kFloat);
  auto decay_iou = iou * same_label;
  auto compensate = std::get<0>(decay_iou.max(0)).expand({n, n}).t();
  at::Tensor decay;
  if (options.kernel == "gaussian") {
    decay = std::get<0>((torch::exp(-options.sigma * decay_iou.pow(2)) / torch::exp(-options.sigma * compensate.pow(2))).min(0));
  } else if (options.kernel == "linear") {
    // (1 - compensate) is 0 for an exact duplicate of a higher mask: lesseg clamps it (mmdetection divides by 0)
    decay = std::get<0>(((1 - decay_iou) / (1 - compensate).clamp_min(1e-6)).min(0));
  } else {
    throw_usage("matrix NMS kernel must be gaussian or linear, got '" + options.kernel + "'");
  }
  s = s * decay.to(s.dtype());
  if (options.filter_thr > 0) {
    auto kept = s.ge(options.filter_thr).nonzero().squeeze(1);
    if (kept.numel() == 0) return empty();
    keep = keep.index_select(0, kept);
    s = s.index_select(0, kept);
    l = l.index_select(0, kept);
  }
  auto resort = std::get<1>(torch::sort(s, /*stable=*/true, /*dim=*/0, /*descending=*/true));
  if (options.max_num > 0 && resort.numel() > options.max_num) resort = resort.slice(0, 0, options.max_num);
  r.scores = s.index_select(0, resort);
  r.labels = l.index_select(0, resort);
  r.keep = keep.index_select(0, resort);
  return r;
}

SoloInstances solo_instances(const SoloOutput& out, int64_t b, int64_t valid_h, int64_t valid_w, int64_t out_h,
                             int64_t out_w, const SoloTestOptions& options) {
  // ref: WXinlong/SOLO solov2_head.py get_seg_single
  torch::NoGradGuard no_grad;
  const auto& features = out.mask_features[b];
  std::vector<at::Tensor> probabilities, kernels, strides;
  for (size_t level = 0; level < out.category.size(); ++level) {
    auto p = point_nms(torch::sigmoid(out.category[level][b]));  // [C, S, S]
    probabilities.push_back(p.flatten(1).t());                 // [S * S, C]
    kernels.push_back(out.kernels[level][b].flatten(1));        // [E, S * S]
    strides.push_back(torch::full({p.size(1) * p.size(2)}, solo_level_strides().at(level), torch::kFloat));
  }
  auto probs = torch::cat(probabilities);
  auto all_kernels = torch::cat(kernels, 1);
  auto all_strides = torch::cat(strides).to(features.device());
  SoloInstances result;
  auto none = [&] {
    result.masks = torch::zeros({0, out_h, out_w}, torch::kBool);
    result.scores = torch::zeros({0}, torch::kFloat);
    result.labels = torch::zeros({0}, torch::kLong);
    return result;
  };
  auto hits = probs.gt(options.score_thr).nonzero();  // [n, 2] (cell, class)
  if (hits.size(0) == 0) return none();
  auto cells = hits.select(1, 0), labels = hits.select(1, 1);
  auto scores = probs.index({cells, labels});
  auto soft = torch::sigmoid(apply_kernels(all_kernels.index_select(1, cells), features));
  auto binary = soft.gt(options.mask_thr);
  auto area = binary.sum({1, 2}).to(torch::kFloat);
  auto big = area.gt(all_strides.index_select(0, cells)).nonzero().squeeze(1);
  if (big.numel() == 0) return none();
  soft = soft.index_select(0, big);
  binary = binary.index_select(0, big);
  area = area.index_select(0, big);
  labels = labels.index_select(0, big);
  auto maskness = (soft * binary.to(soft.dtype())).sum({1, 2}) / area;
  scores = scores.index_select(0, big) * maskness;
  auto kept = matrix_nms(binary, labels, scores, area, options.nms);
  if (kept.scores.numel() == 0) return none();
  auto chosen = soft.index_select(0, kept.keep).unsqueeze(0);
  std::vector<at::Tensor> masks;  // in chunks: a few full-size float masks at a time
  for (int64_t start = 0; start < chosen.size(1); start += 8) {
    auto part = chosen.slice(1, start, std::min(chosen.size(1), start + 8));
    auto full = resize_bilinear(part, features.size(1) * 4, features.size(2) * 4).slice(2, 0, valid_h).slice(3, 0, valid_w);
    masks.push_back(resize_bilinear(full, out_h, out_w).squeeze(0).gt(options.mask_thr).cpu());
  }
  result.masks = torch::cat(masks);
  result.scores = kept.scores.to(torch::kFloat).cpu();
  result.labels = kept.labels.cpu();
  return result;
}

}  // namespace lesseg
