// The spectral core against plain references: Spectra's Lanczos against a dense generalized
// eigensolve, the sparse product against the dense one, hand-worked cuts and components.
#include <cmath>

#include <Eigen/Eigenvalues>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/methods/pseudo/maskcut.h"
#include "lesseg/methods/pseudo/multik.h"
#include "lesseg/spectral/clustering.h"
#include "lesseg/spectral/graph.h"

namespace lesseg {
namespace {

using spectral::AffinityKind;
using spectral::AffinityOptions;
using spectral::Graph;

// Features with `groups` clusters on n nodes plus noise: a graph with structure to find.
at::Tensor clustered_features(int64_t n, int64_t dim, int64_t groups, double noise, uint64_t seed) {
  torch::manual_seed(seed);
  auto centers = torch::randn({groups, dim});
  auto labels = torch::arange(n) % groups;
  return centers.index_select(0, labels) + noise * torch::randn({n, dim});
}

// Reference: dense generalized solve of (D - W) x = lambda D x (Eigen's Cholesky-based solver).
void expect_matches_dense(const Graph& graph, int64_t k) {
  const Eigen::MatrixXd w = graph.dense();
  const Eigen::MatrixXd d = graph.degree().asDiagonal();
  Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> reference(d - w, d);
  const auto ours = spectral::smallest_eigenpairs(graph, k);
  for (int64_t i = 0; i < k; ++i) {
    EXPECT_NEAR(ours.values[i], reference.eigenvalues()[i], 1e-9) << "eigenvalue " << i;
    // Same vector up to sign, both D-normalized.
    const double agreement = std::abs(ours.vectors.col(i).dot(d * reference.eigenvectors().col(i)));
    EXPECT_NEAR(agreement, 1.0, 1e-7) << "eigenvector " << i;
  }
}

TEST(Spectral, LanczosMatchesDenseGeneralizedSolveOnDenseBinaryGraph) {
  auto graph = Graph::from_features(clustered_features(300, 16, 3, 0.8, 1), AffinityOptions{});
  EXPECT_FALSE(graph.is_sparse());
  expect_matches_dense(graph, 4);
}

TEST(Spectral, LanczosMatchesDenseGeneralizedSolveOnSparseBinaryGraph) {
  // 128-d noise: few pairs above tau, so the graph is held sparse.
  auto graph = Graph::from_features(clustered_features(400, 128, 20, 1.5, 2), AffinityOptions{});
  EXPECT_TRUE(graph.is_sparse());
  expect_matches_dense(graph, 3);
}

TEST(Spectral, LanczosMatchesDenseGeneralizedSolveOnPositiveAffinity) {
  AffinityOptions options;
  options.kind = AffinityKind::positive;
  expect_matches_dense(Graph::from_features(clustered_features(250, 24, 5, 1.0, 3), options), 6);
}

TEST(Spectral, SmallGraphsUseTheDenseSolver) {
  auto graph = Graph::from_features(clustered_features(30, 8, 2, 0.5, 4), AffinityOptions{});
  expect_matches_dense(graph, 2);
  EXPECT_EQ(spectral::smallest_eigenpairs(graph, 2).matrix_products, 0);
}

TEST(Spectral, SparseProductEqualsDenseProduct) {
  auto graph = Graph::from_features(clustered_features(200, 128, 20, 2.0, 5), AffinityOptions{});
  ASSERT_TRUE(graph.is_sparse());
  Eigen::VectorXd x = Eigen::VectorXd::Random(200);
  EXPECT_LT((graph.multiply(x) - graph.dense() * x).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((graph.degree() - graph.dense().rowwise().sum()).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(Spectral, BinaryAffinityFollowsTheOfficialRule) {
  // Three unit vectors: cos(a, b) = 0.2 > tau, cos(a, c) = 0 (below), zero row -> eps everywhere.
  auto f = torch::tensor({{1.0, 0.0, 0.0}, {0.2, std::sqrt(1 - 0.04), 0.0}, {0.0, 0.0, 1.0}, {0.0, 0.0, 0.0}});
  auto w = Graph::from_features(f, AffinityOptions{}).dense();
  EXPECT_DOUBLE_EQ(w(0, 1), 1.0);
  EXPECT_DOUBLE_EQ(w(0, 2), 1e-5);
  EXPECT_DOUBLE_EQ(w(0, 0), 1.0);
  EXPECT_DOUBLE_EQ(w(3, 3), 1e-5);  // a zeroed feature is below tau even against itself
}

TEST(Spectral, NormalizedCutOfTwoCliquesJoinedByOneEdge) {
  // Two 3-cliques (self-loops included, as the affinity has them) and one bridge 2-3.
  Eigen::MatrixXd w = Eigen::MatrixXd::Zero(6, 6);
  w.topLeftCorner(3, 3).setOnes();
  w.bottomRightCorner(3, 3).setOnes();
  w(2, 3) = w(3, 2) = 1;
  auto graph = Graph::from_dense(w);
  // vol = 10 each side, cut = 1: 1/10 + 1/10.
  EXPECT_NEAR(spectral::normalized_cut(graph, {1, 1, 1, 0, 0, 0}), 0.2, 1e-12);
  EXPECT_DOUBLE_EQ(spectral::normalized_cut(graph, {0, 0, 0, 0, 0, 0}), 2.0);
  // Node 2's weight: 3 inside its clique, 1 across the bridge; the clique keeps 9 of its 10.
  EXPECT_NEAR(spectral::association_share(graph, {0, 0, 1, 0, 0, 0}, {1, 1, 1, 0, 0, 0}), 0.75, 1e-12);
  EXPECT_NEAR(spectral::association_share(graph, {1, 1, 1, 0, 0, 0}, {1, 1, 1, 0, 0, 0}), 0.9, 1e-12);
  // The Fiedler vector separates the cliques.
  auto pairs = spectral::smallest_eigenpairs(graph, 2);
  EXPECT_NEAR(pairs.values[0], 0.0, 1e-12);
  EXPECT_LT(pairs.vectors(0, 1) * pairs.vectors(5, 1), 0.0);
  EXPECT_GT(pairs.vectors(0, 1) * pairs.vectors(2, 1), 0.0);
}

TEST(Spectral, KmeansSeparatesClustersAndIsSeeded) {
  Eigen::MatrixXd points(90, 2);
  for (int i = 0; i < 90; ++i) {
    const int c = i / 30;
    points(i, 0) = 10.0 * c + 0.01 * (i % 7);
    points(i, 1) = -5.0 * c + 0.01 * (i % 5);
  }
  auto labels = spectral::kmeans(points, 3, 7);
  for (int i = 0; i < 90; ++i) EXPECT_EQ(labels[size_t(i)], labels[size_t(i / 30 * 30)]);
  EXPECT_NE(labels[0], labels[30]);
  EXPECT_NE(labels[30], labels[60]);
  EXPECT_EQ(labels, spectral::kmeans(points, 3, 7));
}

TEST(Spectral, ComponentsAreFourConnected) {
  cv::Mat mask = (cv::Mat_<uint8_t>(3, 4) << 1, 1, 0, 0,  //
                  0, 0, 1, 0,                             // touches (0, 1) only diagonally
                  0, 0, 1, 1);
  int count = 0;
  spectral::components(mask, &count);
  EXPECT_EQ(count, 2);
  cv::Mat piece = spectral::component_at(mask, 6);
  EXPECT_EQ(cv::countNonZero(piece), 3);
  EXPECT_EQ(piece.at<uint8_t>(0, 0), 0);
  EXPECT_EQ(cv::countNonZero(spectral::component_at(mask, 2)), 0);  // background seed
  EXPECT_EQ(spectral::split_components(mask, 3).size(), 1u);
  EXPECT_EQ(spectral::split_components(mask, 1).size(), 2u);
}

TEST(MaskCut, BipartitionFlipsWhenThreeCornersAreForeground) {
  // 3x3 grid: the vector is high everywhere except the centre -> foreground would hold the
  // corners, so the official rule flips it: the centre becomes the object and the seed.
  Eigen::VectorXd x = Eigen::VectorXd::Constant(9, 1.0);
  x[4] = -5.0;
  int64_t seed = -1;
  cv::Mat fg = maskcut_bipartition(x, 3, 3, &seed);
  EXPECT_EQ(cv::countNonZero(fg), 1);
  EXPECT_EQ(fg.at<uint8_t>(1, 1), 1);
  EXPECT_EQ(seed, 4);
  // Without the corner rule: the peak |x| decides (peak -5 is not foreground -> flip as well).
  x = Eigen::VectorXd::Zero(9);
  x[1] = 3.0;
  fg = maskcut_bipartition(x, 3, 3, &seed);
  EXPECT_EQ(cv::countNonZero(fg), 1);
  EXPECT_EQ(seed, 1);
}

// Two disjoint blobs sharing one feature vector over a uniform background.
at::Tensor two_blob_features(int64_t h, int64_t w) {
  torch::manual_seed(11);
  auto background = torch::zeros({32}).index_fill_(0, torch::tensor({0}), 1.0);  // orthogonal to the object
  auto object = torch::zeros({32}).index_fill_(0, torch::tensor({1}), 2.0);
  auto feats = background.expand({h, w, 32}).clone();
  feats.index_put_({torch::indexing::Slice(2, 7), torch::indexing::Slice(2, 8)}, object);
  feats.index_put_({torch::indexing::Slice(10, 15), torch::indexing::Slice(14, 20)}, object);
  return (feats + 0.03 * torch::randn({h, w, 32})).reshape({h * w, 32});
}

TEST(MaskCut, SplitComponentsGivesDisconnectedPiecesTheirOwnMask) {
  auto feats = two_blob_features(18, 24);
  MaskCutOptions options;
  options.max_masks = 1;
  auto official = maskcut(feats, 18, 24, options);
  ASSERT_EQ(official.masks.size(), 1u);
  EXPECT_EQ(cv::countNonZero(official.masks[0].mask), 30);  // the seed's blob only
  options.split_components = true;
  auto split = maskcut(feats, 18, 24, options);
  ASSERT_EQ(split.masks.size(), 2u);
  EXPECT_EQ(cv::countNonZero(split.masks[0].mask), 30);
  EXPECT_EQ(cv::countNonZero(split.masks[1].mask), 30);
  EXPECT_GT(split.masks[0].score, 0.99);  // every edge of a blob stays inside the cut's foreground
  EXPECT_LT(split.masks[0].ncut, 0.01);
}

TEST(MaskCut, AdaptiveStopEndsWhenNoSegmentIsLeft) {
  auto feats = two_blob_features(18, 24);
  MaskCutOptions options;
  options.split_components = true;
  options.max_masks = 3;
  auto fixed = maskcut(feats, 18, 24, options);
  EXPECT_EQ(fixed.cuts, 3);
  options.max_ncut = 0.5;
  auto adaptive = maskcut(feats, 18, 24, options);
  EXPECT_LT(adaptive.cuts, 3);
  EXPECT_EQ(adaptive.masks.size(), 2u);  // both blobs, nothing from the background noise
  for (const auto& m : adaptive.masks) EXPECT_LE(m.ncut, 0.5);
}

// Three objects with their own (orthogonal) features over a background touching the border.
at::Tensor three_object_features(std::vector<cv::Mat>* truth) {
  const int64_t h = 20, w = 24;
  torch::manual_seed(5);
  auto feats = torch::zeros({h, w, 16});
  feats.index_put_({torch::indexing::Ellipsis, 0}, 1.0);
  const cv::Rect boxes[] = {{2, 2, 6, 5}, {14, 3, 7, 6}, {6, 12, 8, 6}};
  for (int o = 0; o < 3; ++o) {
    const cv::Rect r = boxes[o];
    auto vec = torch::zeros({16}).index_fill_(0, torch::tensor({o + 1}), 1.0);
    feats.index_put_({torch::indexing::Slice(r.y, r.y + r.height), torch::indexing::Slice(r.x, r.x + r.width)}, vec);
    cv::Mat m = cv::Mat::zeros(int(h), int(w), CV_8U);
    m(r).setTo(1);
    truth->push_back(m);
  }
  return (feats + 0.05 * torch::randn({h, w, 16})).reshape({h * w, 16});
}

TEST(MultiK, CandidatesHoldEveryObjectAndTheSaliencyFilterDropsTheBackground) {
  std::vector<cv::Mat> truth;
  auto feats = three_object_features(&truth);
  MultiKOptions options;
  auto candidates = multik_candidates(feats, 20, 24, options);
  ASSERT_FALSE(candidates.empty());
  for (const cv::Mat& object : truth) {
    double best = 0;
    for (const auto& c : candidates) best = std::max(best, mask_iou(c.mask, object));
    EXPECT_GT(best, 0.95);
  }
  cv::Mat salient = saliency_foreground(feats, 20, 24);
  EXPECT_EQ(salient.at<uint8_t>(0, 0), 0);  // the border side is background
  auto kept = mask_nms(inside_foreground(candidates, salient), 0.5);
  for (const auto& m : kept) EXPECT_EQ(m.mask.at<uint8_t>(0, 0), 0) << "a background piece survived";
  EXPECT_LT(kept.size(), candidates.size());
  // NMS leaves no two masks overlapping more than the threshold.
  for (size_t i = 0; i < kept.size(); ++i)
    for (size_t j = i + 1; j < kept.size(); ++j) EXPECT_LE(mask_iou(kept[i].mask, kept[j].mask), 0.5);
}

TEST(MultiK, MaskNmsKeepsTheBetterScoredOfTwoOverlappingMasks) {
  cv::Mat a = cv::Mat::zeros(4, 4, CV_8U), b = a.clone(), c = a.clone();
  a(cv::Rect(0, 0, 3, 3)).setTo(1);
  b(cv::Rect(0, 0, 3, 2)).setTo(1);  // IoU with a = 6 / 9
  c(cv::Rect(3, 3, 1, 1)).setTo(1);
  auto kept = mask_nms({{a, 0.5, 2}, {b, 0.9, 3}, {c, 0.1, 2}}, 0.5);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].k, 3);
  EXPECT_EQ(kept[1].score, 0.1);
}

}  // namespace
}  // namespace lesseg
