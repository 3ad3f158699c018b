#pragma once
// Multi-k spectral clustering and the saliency filter (Engstler et al. 2023, "Understanding
// Self-Supervised Features for Learning Unsupervised Instance Segmentation"; clustering as Deep
// Spectral Methods): k-way clusterings of one patch graph for several k, every connected piece of
// every cluster a candidate mask; optionally only candidates inside the foreground of a k = 2 cut
// on (other) features, then mask NMS.
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

#include "lesseg/spectral/graph.h"

namespace lesseg {

struct MultiKOptions {
  std::vector<int> ks{2, 3, 4, 5, 6};
  spectral::AffinityOptions affinity{spectral::AffinityKind::positive};  // Deep Spectral Methods
  uint64_t seed = 0;      // k-means
  double min_area = 0.01;  // pieces covering less of the grid are dropped
  double nms_iou = 0.5;   // a candidate overlapping a better one more than this is dropped
  spectral::SolverOptions solver;
};

struct GridMask {
  cv::Mat mask;  // grid_h x grid_w CV_8U 0/1
  double score = 0;  // share of its affinity volume that stays inside it (association_share)
  int k = 0;     // the clustering it came from
};

// Every piece of every k-way clustering (eigenvectors 1..k of the normalized Laplacian, k-means
// with k clusters), before any filtering, in (k, cluster, piece) order.
std::vector<GridMask> multik_candidates(const at::Tensor& features, int64_t grid_h, int64_t grid_w,
                                        const MultiKOptions& options);

// The salient side of a k = 2 cut (MaskCut's binary affinity, tau): the side touching fewer
// border patches (ties: the smaller side). CV_8U 0/1 grid.
cv::Mat saliency_foreground(const at::Tensor& features, int64_t grid_h, int64_t grid_w,
                            const spectral::AffinityOptions& affinity = {});

// Keeps candidates whose share inside `foreground` is at least `min_inside`.
std::vector<GridMask> inside_foreground(std::vector<GridMask> candidates, const cv::Mat& foreground,
                                        double min_inside = 0.5);

// Greedy mask NMS by score (ties: larger first): drops a mask whose IoU with a kept one > iou.
std::vector<GridMask> mask_nms(std::vector<GridMask> masks, double iou);

}  // namespace lesseg
