#include "lesseg/methods/pseudo/refine.h"

#include <iostream>
#include <sstream>
#include <stdexcept>

#include <opencv2/imgproc.hpp>
#include <opencv2/ximgproc/edge_filter.hpp>

namespace lesseg {

double mask_iou(const cv::Mat& a, const cv::Mat& b) {
  const double inter = cv::countNonZero((a != 0) & (b != 0));
  const double uni = cv::countNonZero((a != 0) | (b != 0));
  return uni > 0 ? inter / uni : 0.0;
}

cv::Mat fill_holes(const cv::Mat& mask) {
  if (mask.type() != CV_8U) throw std::invalid_argument("fill_holes: mask must be CV_8U");
  // Flood the background from a one-pixel frame; what the flood does not reach is a hole.
  cv::Mat padded;
  cv::copyMakeBorder(mask != 0, padded, 1, 1, 1, 1, cv::BORDER_CONSTANT, 0);
  cv::floodFill(padded, cv::Point(0, 0), 128, nullptr, 0, 0, 4);
  cv::Mat inner = padded(cv::Rect(1, 1, mask.cols, mask.rows));
  cv::Mat out = cv::Mat::zeros(mask.size(), CV_8U);
  out.setTo(1, inner != 128);
  return out;
}

cv::Mat refine_mask(const cv::Mat& rgb, const cv::Mat& coarse, const RefineOptions& options) {
  if (rgb.type() != CV_8UC3 || coarse.type() != CV_8U || rgb.size() != coarse.size())
    throw std::invalid_argument("refine_mask: rgb CV_8UC3 and coarse CV_8U of the same size");
  cv::Mat target, confidence(coarse.size(), CV_8U, cv::Scalar(255)), solved;
  coarse.convertTo(target, CV_32F);
  {
    // OpenCV's solver prints its iteration count to std::cout, where lesseg writes its results.
    std::ostringstream sink;
    std::streambuf* saved = std::cout.rdbuf(sink.rdbuf());
    try {
      cv::ximgproc::fastBilateralSolverFilter(rgb, target, confidence, solved, options.sigma_spatial,
                                              options.sigma_luma, options.sigma_chroma, options.lambda,
                                              options.iterations);
    } catch (...) {
      std::cout.rdbuf(saved);
      throw;
    }
    std::cout.rdbuf(saved);
  }
  cv::Mat refined = fill_holes(solved > 0.5);
  if (mask_iou(coarse, refined) < options.min_iou) return cv::Mat();
  return refined;
}

}  // namespace lesseg
