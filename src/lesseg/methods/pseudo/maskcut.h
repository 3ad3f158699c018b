#pragma once
// MaskCut (CutLER, Wang et al. CVPR 2023): up to N object masks per image from repeated
// normalized cuts of a patch-affinity graph, with the official rules (specs/maskcut.md), plus
// what its users asked for: any grid shape, an adaptive stop, split components and a score.
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

#include "lesseg/methods/pseudo/refine.h"  // mask_iou
#include "lesseg/spectral/graph.h"

namespace lesseg {

struct MaskCutOptions {
  /// Binary affinity threshold tau. Default 0.15 (CutLER README).
  double tau = 0.15;
  /// Weight of the pairs at or below tau. Default 1e-5.
  double eps = 1e-5;
  /// Cuts per image N. Default 3.
  int max_masks = 3;
  /// A new mask is discarded when its IoU with the previous mask exceeds this. Default 0.5.
  double max_overlap = 0.5;
  /// ... or when it covers at most this share of the grid. Default 0.01.
  double min_area = 0.01;
  /// Adaptive stop: no further mask once a cut's normalized cut value (of the whole bipartition)
  /// exceeds this: the graph holds no well-separated segment. Default 2 = never (official fixed N).
  double max_ncut = 2.0;
  /// Keep every connected piece of the foreground above min_area as its own mask, instead of
  /// only the piece holding the seed (official). Default false.
  bool split_components = false;
  /// Compare a new mask with every earlier mask, not only the previous one (the official rule
  /// compares with the previous mask only). Default false.
  bool overlap_with_all = false;
  spectral::SolverOptions solver;
};

struct CutMask {
  cv::Mat mask;     // grid_h x grid_w CV_8U 0/1, earlier masks already subtracted
  double ncut = 0;  // normalized cut of the whole bipartition this mask came from, in [0, 2]
  // Share of the mask's affinity volume that stays inside its cut's foreground, in [0, 1]: near 1
  // for a segment that the graph separates cleanly, low for a piece tied to the background.
  double score = 0;
  double eigenvalue = 0;  // the second-smallest generalized eigenvalue of that graph
  int cut = 0;      // which cut produced it (0-based)
};

struct MaskCutResult {
  std::vector<CutMask> masks;  // the kept masks, in cut order
  int cuts = 0;                // cuts computed (fewer than max_masks after an adaptive stop)
  int64_t matrix_products = 0;
};

// features [grid_h * grid_w, D] in row-major patch order (the CLS token dropped).
// ref: CutLER maskcut/maskcut.py maskcut_forward.
MaskCutResult maskcut(const at::Tensor& features, int64_t grid_h, int64_t grid_w, const MaskCutOptions& options);

// The official bipartition of one cut on a h x w grid, given its second-smallest eigenvector:
// foreground = entries above the mean; flipped when >= 3 of the 4 corners are foreground, else
// when the peak |x| is not foreground; the seed (first argmax of the oriented vector) returned.
cv::Mat maskcut_bipartition(const Eigen::VectorXd& eigenvector, int64_t grid_h, int64_t grid_w, int64_t* seed);

}  // namespace lesseg
