#pragma once
// Spectral graph partitioning shared by every graph cut in lesseg (MaskCut, multi-k clustering,
// saliency cuts): patch features -> cosine affinity graph -> the smallest eigenvectors of its
// normalized Laplacian (a partial Lanczos solve in float64, never a dense generalized eigensolve).
//
// ref: Shi & Malik 2000; CutLER maskcut/maskcut.py (binary affinity); Deep Spectral Methods
// (lukemelas/deep-spectral-segmentation, positive affinity).
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <Eigen/Core>
#include <Eigen/SparseCore>

namespace lesseg::spectral {

enum class AffinityKind {
  binary,    // MaskCut / TokenCut: 1 where cosine > tau, eps elsewhere
  positive,  // Deep Spectral Methods: max(0, cosine)
};

struct AffinityOptions {
  AffinityKind kind = AffinityKind::binary;
  double tau = 0.15;  // binary threshold (MaskCut README 0.15, TokenCut 0.2)
  double eps = 1e-5;  // binary weight of the pairs at or below tau (keeps the graph connected)
  // A binary graph whose share of edges above tau is at most this is multiplied in sparse form;
  // denser ones as a byte matrix. Either way W = (1 - eps) E + eps 1 1^T, E the 0/1 edges.
  double sparse_max_density = 0.15;
};

// A weighted undirected graph on N nodes with a product y = W x.
class Graph {
 public:
  // features [N, D] (any float dtype, any device): rows are L2-normalized (zero rows stay zero,
  // their cosine is 0) and multiplied in float32 as the official code does.
  static Graph from_features(const at::Tensor& features, const AffinityOptions& options);
  // The binary graph of from_features after the features of the `removed` nodes were zeroed,
  // for tau >= 0: a zero feature's cosine is 0, so those nodes keep only eps weights
  // (ref: maskcut.py get_masked_affinity_matrix), without recomputing any cosine.
  Graph without_edges_of(const std::vector<uint8_t>& removed) const;
  // From a dense symmetric weight matrix (tests, references).
  static Graph from_dense(Eigen::MatrixXd weights);

  int64_t size() const { return n_; }
  bool is_sparse() const { return storage_ == Storage::binary_sparse; }
  const Eigen::VectorXd& degree() const { return degree_; }  // row sums of W
  void multiply(const double* x, double* y) const;           // y = W x
  Eigen::VectorXd multiply(const Eigen::VectorXd& x) const;
  Eigen::MatrixXd dense() const;                             // W as a dense matrix

 private:
  enum class Storage { weighted, binary_bytes, binary_sparse };
  static Graph from_edges(at::Tensor edges, const AffinityOptions& options);  // uint8 [N, N] on the CPU
  int64_t n_ = 0;
  Storage storage_ = Storage::weighted;
  Eigen::MatrixXd weights_;                             // weighted: W itself
  at::Tensor edge_bytes_;                               // binary: E as uint8 [N, N] on the CPU
  AffinityOptions options_;
  Eigen::SparseMatrix<double, Eigen::RowMajor> edges_;  // binary_sparse: E
  double eps_ = 0;
  Eigen::VectorXd degree_;
};

struct Eigenpairs {
  Eigen::VectorXd values;   // ascending eigenvalues of L x = lambda D x (values[0] ~ 0, trivial)
  Eigen::MatrixXd vectors;  // N x k generalized eigenvectors x = D^-1/2 y, x^T D x = 1
  int64_t matrix_products = 0;  // products with W the solver needed (0 for the dense fallback)
};

struct SolverOptions {
  double tolerance = 1e-10;  // Spectra's relative convergence tolerance
  int64_t max_restarts = 1000;
  int64_t dense_below = 64;  // graphs smaller than this are solved densely (exact and as fast)
};

// The k smallest eigenpairs of the generalized problem (D - W) x = lambda D x, the trivial one
// first, via the k largest eigenpairs of D^-1/2 W D^-1/2 (Spectra's symmetric Lanczos, float64).
// Each vector's sign is fixed so that its largest-magnitude entry is positive. Throws
// std::runtime_error when the solver does not converge.
Eigenpairs smallest_eigenpairs(const Graph& graph, int64_t k, const SolverOptions& options = {});

// The normalized cut of the partition {inside, outside}: cut / vol(inside) + cut / vol(outside),
// in [0, 2]; 2 when either side is empty. inside: N flags.
double normalized_cut(const Graph& graph, const std::vector<uint8_t>& inside);

// assoc(part, within) / vol(part): the share of part's edge weight that ends inside `within`
// (N flags each), in [0, 1]; 0 for an empty part.
double association_share(const Graph& graph, const std::vector<uint8_t>& part, const std::vector<uint8_t>& within);

}  // namespace lesseg::spectral
