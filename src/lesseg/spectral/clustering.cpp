#include "lesseg/spectral/clustering.h"

#include <stdexcept>

#include <opencv2/core/eigen.hpp>
#include <opencv2/imgproc.hpp>

namespace lesseg::spectral {

std::vector<int> kmeans(const Eigen::MatrixXd& points, int k, uint64_t seed, int attempts) {
  if (k < 1 || k > points.rows()) throw std::invalid_argument("kmeans: k must be in [1, rows]");
  Eigen::MatrixXf rows = points.cast<float>();  // OpenCV's k-means works in float32
  cv::Mat samples;
  cv::eigen2cv(rows, samples);
  cv::Mat labels;
  // OpenCV draws from its thread-local generator: seed it, and restore it for other callers.
  cv::RNG& rng = cv::theRNG();
  const uint64_t saved = rng.state;
  rng.state = seed ? seed : 0x9e3779b97f4a7c15ULL;  // a zero state is invalid
  cv::kmeans(samples, k, labels, cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS, 300, 1e-4),
             attempts, cv::KMEANS_PP_CENTERS);
  rng.state = saved;
  return std::vector<int>(labels.begin<int>(), labels.end<int>());
}

cv::Mat components(const cv::Mat& mask, int* count) {
  if (mask.type() != CV_8U) throw std::invalid_argument("components: mask must be CV_8U");
  cv::Mat labels;
  const int n = cv::connectedComponents(mask != 0, labels, 4, CV_32S);
  if (count) *count = n - 1;
  return labels;
}

cv::Mat component_at(const cv::Mat& mask, int64_t seed) {
  if (seed < 0 || seed >= int64_t(mask.total())) throw std::invalid_argument("component_at: seed outside the mask");
  cv::Mat labels = components(mask, nullptr);
  const int label = labels.at<int>(int(seed / mask.cols), int(seed % mask.cols));
  cv::Mat out = cv::Mat::zeros(mask.size(), CV_8U);
  if (label > 0) out.setTo(1, labels == label);
  return out;
}

std::vector<cv::Mat> split_components(const cv::Mat& mask, int64_t min_pixels) {
  int count = 0;
  cv::Mat labels = components(mask, &count);
  std::vector<cv::Mat> out;
  for (int label = 1; label <= count; ++label) {
    cv::Mat piece = labels == label;
    if (cv::countNonZero(piece) < min_pixels) continue;
    out.push_back(piece / 255);
  }
  return out;
}

std::vector<uint8_t> flags_of(const cv::Mat& mask) {
  const cv::Mat continuous = mask.isContinuous() ? mask : mask.clone();
  return std::vector<uint8_t>(continuous.datastart, continuous.dataend);
}

}  // namespace lesseg::spectral
