#include "lesseg/spectral/graph.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <ATen/Parallel.h>
#include <Eigen/Eigenvalues>
#include <Spectra/SymEigsSolver.h>
#include <torch/torch.h>

namespace lesseg::spectral {
namespace {

// Row-major float64 copy of a [N, N] tensor.
Eigen::MatrixXd to_eigen(const at::Tensor& square) {
  auto cpu = square.to(torch::kCPU, torch::kFloat64).contiguous();
  const int64_t n = cpu.size(0);
  Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> map(
      cpu.data_ptr<double>(), n, n);
  return map;  // symmetric: the storage order does not matter
}

// y = D^-1/2 W D^-1/2 x, the symmetric normalized form whose largest eigenvectors Lanczos finds.
class NormalizedAffinityProduct {
 public:
  using Scalar = double;
  NormalizedAffinityProduct(const Graph& graph, const Eigen::VectorXd& inv_sqrt_degree)
      : graph_(graph), inv_sqrt_degree_(inv_sqrt_degree), scratch_(graph.size()) {}
  Eigen::Index rows() const { return graph_.size(); }
  Eigen::Index cols() const { return graph_.size(); }
  void perform_op(const double* x_in, double* y_out) const {
    Eigen::Map<const Eigen::VectorXd> x(x_in, rows());
    scratch_ = inv_sqrt_degree_.cwiseProduct(x);
    graph_.multiply(scratch_.data(), y_out);
    Eigen::Map<Eigen::VectorXd> y(y_out, rows());
    y.array() *= inv_sqrt_degree_.array();
    ++products;
  }
  mutable int64_t products = 0;

 private:
  const Graph& graph_;
  const Eigen::VectorXd& inv_sqrt_degree_;
  mutable Eigen::VectorXd scratch_;
};

void fix_signs(Eigen::MatrixXd& vectors) {
  for (Eigen::Index c = 0; c < vectors.cols(); ++c) {
    Eigen::Index peak = 0;
    vectors.col(c).cwiseAbs().maxCoeff(&peak);
    if (vectors(peak, c) < 0) vectors.col(c) *= -1.0;
  }
}

}  // namespace

Graph Graph::from_features(const at::Tensor& features, const AffinityOptions& options) {
  TORCH_CHECK(features.dim() == 2 && features.size(0) > 0, "Graph::from_features takes features [N, D]");
  torch::NoGradGuard no_grad;
  // ref: maskcut.py get_affinity_matrix: F.normalize (eps 1e-12), A = F^T F in float32.
  auto normalized = torch::nn::functional::normalize(
      features.to(torch::kFloat32), torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
  auto cosine = torch::matmul(normalized, normalized.t());
  Graph graph;
  graph.n_ = features.size(0);
  if (options.kind == AffinityKind::positive) {
    graph.weights_ = to_eigen(cosine.clamp_min(0));
    graph.degree_ = graph.weights_.rowwise().sum();
    return graph;
  }
  // ref: np.where(A > tau, 1, eps).
  return from_edges((cosine > options.tau).to(torch::kCPU, torch::kUInt8).contiguous(), options);
}

Graph Graph::from_edges(at::Tensor above, const AffinityOptions& options) {
  Graph graph;
  graph.n_ = above.size(0);
  graph.eps_ = options.eps;
  // Row sums of W: count + eps * (N - count).
  Eigen::VectorXd count(graph.n_);
  const uint8_t* e = above.data_ptr<uint8_t>();
  at::parallel_for(0, graph.n_, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      count[i] = double(std::count(e + i * graph.n_, e + (i + 1) * graph.n_, uint8_t(1)));
  });
  graph.degree_ = count + options.eps * (Eigen::VectorXd::Constant(graph.n_, double(graph.n_)) - count);
  graph.options_ = options;
  const double density = count.sum() / (double(graph.n_) * double(graph.n_));
  if (density > options.sparse_max_density) {
    graph.storage_ = Storage::binary_bytes;
    graph.edge_bytes_ = above;
    return graph;
  }
  graph.storage_ = Storage::binary_sparse;
  graph.edge_bytes_ = above;  // kept for without_nodes
  auto index = above.nonzero().contiguous();  // [E, 2] row-major order
  const int64_t edges = index.size(0);
  const int64_t* ij = index.data_ptr<int64_t>();
  std::vector<Eigen::Triplet<double>> triplets;
  triplets.reserve(size_t(edges));
  for (int64_t e = 0; e < edges; ++e) triplets.emplace_back(ij[2 * e], ij[2 * e + 1], 1.0);
  graph.edges_.resize(graph.n_, graph.n_);
  graph.edges_.setFromTriplets(triplets.begin(), triplets.end());
  return graph;
}

Graph Graph::without_edges_of(const std::vector<uint8_t>& removed) const {
  if (storage_ == Storage::weighted) throw std::invalid_argument("without_edges_of needs a binary graph");
  if (int64_t(removed.size()) != n_) throw std::invalid_argument("without_edges_of: one flag per node");
  auto edges = edge_bytes_.clone();
  uint8_t* e = edges.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n_; ++i) {
    if (!removed[size_t(i)]) continue;
    std::fill(e + i * n_, e + (i + 1) * n_, uint8_t(0));
    for (int64_t j = 0; j < n_; ++j) e[j * n_ + i] = 0;
  }
  return from_edges(edges, options_);
}

Graph Graph::from_dense(Eigen::MatrixXd weights) {
  if (weights.rows() != weights.cols() || weights.rows() == 0)
    throw std::invalid_argument("Graph::from_dense takes a non-empty square matrix");
  Graph graph;
  graph.n_ = weights.rows();
  graph.weights_ = std::move(weights);
  graph.degree_ = graph.weights_.rowwise().sum();
  return graph;
}

void Graph::multiply(const double* x_in, double* y_out) const {
  Eigen::Map<const Eigen::VectorXd> x(x_in, n_);
  Eigen::Map<Eigen::VectorXd> y(y_out, n_);
  switch (storage_) {
    case Storage::weighted:
      y.noalias() = weights_ * x;  // symmetric, so W x = W^T x
      return;
    case Storage::binary_sparse:
      y.noalias() = edges_ * x;
      break;
    case Storage::binary_bytes: {
      // E x from the byte matrix (8x less memory traffic than float64). E is symmetric, so
      // E x = sum_j x_j E[j, :]: each thread owns a slice of y and streams the rows over it, an
      // inner loop the compiler vectorizes; every y_i sums over j in the same order.
      const uint8_t* e = edge_bytes_.data_ptr<uint8_t>();
      const int64_t n = n_;
      at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
        std::fill(y_out + begin, y_out + end, 0.0);
        for (int64_t j = 0; j < n; ++j) {
          const double xj = x_in[j];
          const uint8_t* row = e + j * n;
          for (int64_t i = begin; i < end; ++i) y_out[i] += xj * double(row[i]);
        }
      });
      break;
    }
  }
  y = (1.0 - eps_) * y + Eigen::VectorXd::Constant(n_, eps_ * x.sum());
}

Eigen::VectorXd Graph::multiply(const Eigen::VectorXd& x) const {
  Eigen::VectorXd y(n_);
  multiply(x.data(), y.data());
  return y;
}

Eigen::MatrixXd Graph::dense() const {
  if (storage_ == Storage::weighted) return weights_;
  Eigen::MatrixXd w(n_, n_);
  if (storage_ == Storage::binary_sparse) {
    w = Eigen::MatrixXd(edges_);
  } else {
    const uint8_t* e = edge_bytes_.data_ptr<uint8_t>();
    for (int64_t i = 0; i < n_; ++i)
      for (int64_t j = 0; j < n_; ++j) w(i, j) = e[i * n_ + j];
  }
  return (1.0 - eps_) * w + Eigen::MatrixXd::Constant(n_, n_, eps_);
}

Eigenpairs smallest_eigenpairs(const Graph& graph, int64_t k, const SolverOptions& options) {
  const int64_t n = graph.size();
  if (k < 1 || k > n) throw std::invalid_argument("smallest_eigenpairs: k must be in [1, N]");
  if ((graph.degree().array() <= 0).any()) throw std::invalid_argument("smallest_eigenpairs: a node has degree 0");
  const Eigen::VectorXd inv_sqrt_degree = graph.degree().cwiseSqrt().cwiseInverse();
  Eigenpairs out;
  Eigen::VectorXd largest;  // eigenvalues mu of the normalized affinity, descending
  Eigen::MatrixXd unit;     // their unit eigenvectors y
  const int64_t ncv = std::min<int64_t>(n, std::max<int64_t>(2 * k + 1, 20));
  if (n < options.dense_below || ncv <= k) {
    Eigen::MatrixXd m = inv_sqrt_degree.asDiagonal() * graph.dense() * inv_sqrt_degree.asDiagonal();
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(m);  // ascending
    largest = solver.eigenvalues().tail(k).reverse();
    unit = solver.eigenvectors().rightCols(k).rowwise().reverse();
  } else {
    NormalizedAffinityProduct op(graph, inv_sqrt_degree);
    Spectra::SymEigsSolver<NormalizedAffinityProduct> solver(op, k, ncv);
    solver.init();
    solver.compute(Spectra::SortRule::LargestAlge, options.max_restarts, options.tolerance,
                   Spectra::SortRule::LargestAlge);
    if (solver.info() != Spectra::CompInfo::Successful)
      throw std::runtime_error("spectral solver did not converge (" + std::to_string(n) + " nodes, k = " +
                               std::to_string(k) + ")");
    largest = solver.eigenvalues();
    unit = solver.eigenvectors();
    out.matrix_products = op.products;
  }
  // ref: L_sym = I - D^-1/2 W D^-1/2; its eigenvalue 1 - mu; generalized vector x = D^-1/2 y.
  out.values = Eigen::VectorXd::Ones(k) - largest;
  out.vectors = inv_sqrt_degree.asDiagonal() * unit;
  fix_signs(out.vectors);
  return out;
}

double normalized_cut(const Graph& graph, const std::vector<uint8_t>& inside) {
  const int64_t n = graph.size();
  if (int64_t(inside.size()) != n) throw std::invalid_argument("normalized_cut: one flag per node");
  Eigen::VectorXd in(n);
  for (int64_t i = 0; i < n; ++i) in[i] = inside[size_t(i)] ? 1.0 : 0.0;
  const Eigen::VectorXd w_in = graph.multiply(in);  // weight from each node into `inside`
  const double vol_in = in.dot(graph.degree());
  const double vol_out = graph.degree().sum() - vol_in;
  if (vol_in <= 0 || vol_out <= 0) return 2.0;
  const double cut = vol_in - in.dot(w_in);  // edges leaving `inside`
  return cut / vol_in + cut / vol_out;
}

double association_share(const Graph& graph, const std::vector<uint8_t>& part, const std::vector<uint8_t>& within) {
  const int64_t n = graph.size();
  if (int64_t(part.size()) != n || int64_t(within.size()) != n)
    throw std::invalid_argument("association_share: one flag per node");
  Eigen::VectorXd p(n), w(n);
  for (int64_t i = 0; i < n; ++i) {
    p[i] = part[size_t(i)] ? 1.0 : 0.0;
    w[i] = within[size_t(i)] ? 1.0 : 0.0;
  }
  const double volume = p.dot(graph.degree());
  return volume > 0 ? p.dot(graph.multiply(w)) / volume : 0.0;
}

}  // namespace lesseg::spectral
