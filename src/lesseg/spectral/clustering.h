#pragma once
// What follows an eigen-solve: k-means on spectral embeddings and connected components of the
// resulting masks.
#include <cstdint>
#include <vector>

#include <Eigen/Core>
#include <opencv2/core.hpp>

namespace lesseg::spectral {

// k-means on the rows of `points` (OpenCV: k-means++ seeding, `attempts` restarts keeping the
// lowest compactness, at most 300 iterations); deterministic for a seed. Labels in [0, k).
std::vector<int> kmeans(const Eigen::MatrixXd& points, int k, uint64_t seed, int attempts = 10);

// Connected components of the non-zero pixels of a CV_8U mask with 4-connectivity (as
// scipy.ndimage.label's default structure): CV_32S labels, 0 = background, 1..count.
cv::Mat components(const cv::Mat& mask, int* count);

// The 0/1 CV_8U mask of the component of `mask` that holds the pixel at row-major index `seed`
// (empty mask when that pixel is background).
cv::Mat component_at(const cv::Mat& mask, int64_t seed);

// Every component as its own 0/1 mask, in label order (top-left first), those with fewer than
// `min_pixels` pixels dropped.
std::vector<cv::Mat> split_components(const cv::Mat& mask, int64_t min_pixels = 1);

// A CV_8U mask's pixels in row-major order, as the per-node flags a Graph takes.
std::vector<uint8_t> flags_of(const cv::Mat& mask);

}  // namespace lesseg::spectral
