#include "lesseg/methods/pseudo/maskcut.h"

#include <algorithm>
#include <stdexcept>

#include <torch/torch.h>

#include "lesseg/spectral/clustering.h"

namespace lesseg {
namespace {

bool overlaps_too_much(const cv::Mat& candidate, const std::vector<cv::Mat>& earlier, const MaskCutOptions& options) {
  for (const cv::Mat& previous : earlier)
    if (mask_iou(previous, candidate) > options.max_overlap) return true;
  return false;
}

// The candidates of one cut: the seed's component, or every piece above min_area.
std::vector<cv::Mat> cut_candidates(const cv::Mat& bipartition, int64_t seed, const MaskCutOptions& options) {
  if (!options.split_components) return {spectral::component_at(bipartition, seed)};
  const auto min_pixels = int64_t(options.min_area * double(bipartition.total())) + 1;
  cv::Mat seed_piece = spectral::component_at(bipartition, seed);
  std::vector<cv::Mat> pieces{seed_piece};  // the seed's piece first, kept whatever its size
  for (cv::Mat& piece : spectral::split_components(bipartition, min_pixels))
    if (cv::countNonZero(piece & seed_piece) == 0) pieces.push_back(piece);
  return pieces;
}

// ref: get_masked_affinity_matrix: the features of painted patches are zeroed. With tau >= 0 a
// zero feature falls below tau against everything, so the edges are cleared instead.
spectral::Graph masked_graph(const spectral::Graph& first, const at::Tensor& feats, const cv::Mat& painting,
                             const spectral::AffinityOptions& affinity) {
  if (affinity.tau >= 0) return first.without_edges_of(spectral::flags_of(painting));
  auto keep = torch::from_blob(painting.data, {int64_t(painting.total())}, torch::kUInt8).eq(0).to(feats.device());
  return spectral::Graph::from_features(feats * keep.unsqueeze(1).to(torch::kFloat32), affinity);
}

}  // namespace

cv::Mat maskcut_bipartition(const Eigen::VectorXd& eigenvector, int64_t grid_h, int64_t grid_w, int64_t* seed) {
  const int64_t n = grid_h * grid_w;
  if (eigenvector.size() != n) throw std::invalid_argument("maskcut_bipartition: vector size != grid_h * grid_w");
  // ref: maskcut.py get_salient_areas, check_num_fg_corners and the reverse rule of maskcut_forward.
  const double mean = eigenvector.sum() / double(n);
  cv::Mat fg(int(grid_h), int(grid_w), CV_8U);
  for (int64_t i = 0; i < n; ++i) fg.data[i] = eigenvector[i] > mean ? 1 : 0;
  const int corners = fg.at<uint8_t>(0, 0) + fg.at<uint8_t>(0, int(grid_w - 1)) +
                      fg.at<uint8_t>(int(grid_h - 1), 0) + fg.at<uint8_t>(int(grid_h - 1), int(grid_w - 1));
  Eigen::Index peak = 0;
  eigenvector.cwiseAbs().maxCoeff(&peak);  // first index of the maximum, as np.argmax
  const bool reverse = corners >= 3 || fg.data[peak] != 1;
  Eigen::Index top = 0;
  if (reverse) {
    fg = 1 - fg;
    (-eigenvector).maxCoeff(&top);
  } else {
    eigenvector.maxCoeff(&top);
  }
  if (seed) *seed = top;
  return fg;
}

MaskCutResult maskcut(const at::Tensor& features, int64_t grid_h, int64_t grid_w, const MaskCutOptions& options) {
  TORCH_CHECK(features.dim() == 2 && features.size(0) == grid_h * grid_w,
              "maskcut: features must be [grid_h * grid_w, D]");
  TORCH_CHECK(grid_h >= 2 && grid_w >= 2, "maskcut: the grid needs at least 2 x 2 patches");
  torch::NoGradGuard no_grad;
  const spectral::AffinityOptions affinity{spectral::AffinityKind::binary, options.tau, options.eps};
  const at::Tensor feats = features.to(torch::kFloat32);
  cv::Mat painting = cv::Mat::zeros(int(grid_h), int(grid_w), CV_8U);  // patches of accepted masks
  cv::Mat covered = painting.clone();                                    // union of emitted masks
  std::vector<cv::Mat> accepted;  // accepted cut masks (before subtraction), for the overlap rule
  cv::Mat previous = painting.clone();  // the previous cut's mask, zero when it was discarded
  MaskCutResult result;
  const spectral::Graph first = spectral::Graph::from_features(feats, affinity);
  for (int i = 0; i < options.max_masks; ++i) {
    if (i > 0 && cv::countNonZero(painting) == int(painting.total())) break;
    const spectral::Graph graph = i == 0 ? first : masked_graph(first, feats, painting, affinity);
    const auto pairs = spectral::smallest_eigenpairs(graph, 2, options.solver);
    result.matrix_products += pairs.matrix_products;
    ++result.cuts;
    int64_t seed = 0;
    const cv::Mat bipartition = maskcut_bipartition(pairs.vectors.col(1), grid_h, grid_w, &seed);
    std::vector<cv::Mat> candidates = cut_candidates(bipartition, seed, options);
    const std::vector<uint8_t> foreground = spectral::flags_of(bipartition);
    const double ncut = spectral::normalized_cut(graph, foreground);
    if (ncut > options.max_ncut) break;  // adaptive stop: no well-separated segment is left
    cv::Mat cut_union = cv::Mat::zeros(painting.size(), CV_8U);
    for (cv::Mat& candidate : candidates) {
      const double area = double(cv::countNonZero(candidate)) / double(candidate.total());
      const std::vector<cv::Mat> compare = options.overlap_with_all ? accepted : std::vector<cv::Mat>{previous};
      if (i > 0 && (area <= options.min_area || overlaps_too_much(candidate, compare, options))) continue;
      accepted.push_back(candidate);
      cut_union |= candidate;
      cv::Mat emitted = candidate & (1 - covered);
      if (cv::countNonZero(emitted) == 0) continue;
      covered |= emitted;
      CutMask mask;
      mask.mask = emitted;
      mask.ncut = ncut;
      mask.score = spectral::association_share(graph, spectral::flags_of(candidate), foreground);
      mask.eigenvalue = pairs.values[1];
      mask.cut = i;
      result.masks.push_back(std::move(mask));
    }
    previous = cut_union;  // ref: current_mask = pseudo_mask (zeros when discarded)
    painting |= cut_union;
  }
  return result;
}

}  // namespace lesseg
