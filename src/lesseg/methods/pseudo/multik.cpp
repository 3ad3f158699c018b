#include "lesseg/methods/pseudo/multik.h"

#include <algorithm>
#include <stdexcept>

#include <torch/torch.h>

#include "lesseg/methods/pseudo/refine.h"
#include "lesseg/spectral/clustering.h"

namespace lesseg {
namespace {

int border_count(const cv::Mat& mask) {
  int count = 0;
  for (int x = 0; x < mask.cols; ++x) count += mask.at<uint8_t>(0, x) + mask.at<uint8_t>(mask.rows - 1, x);
  for (int y = 1; y + 1 < mask.rows; ++y) count += mask.at<uint8_t>(y, 0) + mask.at<uint8_t>(y, mask.cols - 1);
  return count;
}

}  // namespace

std::vector<GridMask> multik_candidates(const at::Tensor& features, int64_t grid_h, int64_t grid_w,
                                        const MultiKOptions& options) {
  TORCH_CHECK(features.dim() == 2 && features.size(0) == grid_h * grid_w,
              "multik: features must be [grid_h * grid_w, D]");
  if (options.ks.empty()) throw std::invalid_argument("multik: no k given");
  const int k_max = *std::max_element(options.ks.begin(), options.ks.end());
  const int64_t n = grid_h * grid_w;
  if (k_max < 2 || k_max + 1 > n) throw std::invalid_argument("multik: every k must be in [2, patches - 1]");
  const auto graph = spectral::Graph::from_features(features, options.affinity);
  // ref: Deep Spectral Methods: eigenvectors 1..k (the trivial one dropped) are the embedding.
  const auto pairs = spectral::smallest_eigenpairs(graph, k_max + 1, options.solver);
  const auto min_pixels = int64_t(options.min_area * double(n)) + 1;
  std::vector<GridMask> out;
  for (int k : options.ks) {
    const std::vector<int> labels = spectral::kmeans(pairs.vectors.middleCols(1, k), k, options.seed);
    for (int c = 0; c < k; ++c) {
      cv::Mat cluster(int(grid_h), int(grid_w), CV_8U);
      for (int64_t i = 0; i < n; ++i) cluster.data[i] = labels[size_t(i)] == c ? 1 : 0;
      for (cv::Mat& piece : spectral::split_components(cluster, min_pixels)) {
        GridMask m;
        const std::vector<uint8_t> flags = spectral::flags_of(piece);
        m.score = spectral::association_share(graph, flags, flags);
        m.mask = std::move(piece);
        m.k = k;
        out.push_back(std::move(m));
      }
    }
  }
  return out;
}

cv::Mat saliency_foreground(const at::Tensor& features, int64_t grid_h, int64_t grid_w,
                            const spectral::AffinityOptions& affinity) {
  const auto graph = spectral::Graph::from_features(features, affinity);
  const auto pairs = spectral::smallest_eigenpairs(graph, 2);
  const Eigen::VectorXd x = pairs.vectors.col(1);
  const double mean = x.mean();
  cv::Mat side(int(grid_h), int(grid_w), CV_8U);
  for (int64_t i = 0; i < grid_h * grid_w; ++i) side.data[i] = x[i] > mean ? 1 : 0;
  cv::Mat other = 1 - side;
  const int a = border_count(side), b = border_count(other);
  if (a < b || (a == b && cv::countNonZero(side) <= cv::countNonZero(other))) return side;
  return other;
}

std::vector<GridMask> inside_foreground(std::vector<GridMask> candidates, const cv::Mat& foreground,
                                        double min_inside) {
  std::vector<GridMask> out;
  for (GridMask& m : candidates) {
    const double area = cv::countNonZero(m.mask);
    if (area > 0 && cv::countNonZero(m.mask & foreground) / area >= min_inside) out.push_back(std::move(m));
  }
  return out;
}

std::vector<GridMask> mask_nms(std::vector<GridMask> masks, double iou) {
  std::stable_sort(masks.begin(), masks.end(), [](const GridMask& a, const GridMask& b) {
    if (a.score != b.score) return a.score > b.score;
    return cv::countNonZero(a.mask) > cv::countNonZero(b.mask);
  });
  std::vector<GridMask> kept;
  for (GridMask& m : masks) {
    bool overlaps = false;
    for (const GridMask& k : kept) overlaps = overlaps || mask_iou(m.mask, k.mask) > iou;
    if (!overlaps) kept.push_back(std::move(m));
  }
  return kept;
}

}  // namespace lesseg
