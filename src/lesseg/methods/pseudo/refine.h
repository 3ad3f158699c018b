#pragma once
// Refining a coarse patch-grid mask on the image: an edge-aware bilateral solve, hole filling and
// the official rejection rule (CutLER maskcut.py: drop a mask whose refined IoU with the coarse
// one is below 0.5).
#include <opencv2/core.hpp>

namespace lesseg {

struct RefineOptions {
  // ref: TokenCut bilateral solver sigmas; lambda and iterations are OpenCV's defaults.
  double sigma_spatial = 16, sigma_luma = 16, sigma_chroma = 8;
  double lambda = 128;
  int iterations = 25;
  double min_iou = 0.5;  // refined vs coarse; below it the mask is dropped
};

// IoU of two masks (non-zero = inside); 0 when both are empty.
double mask_iou(const cv::Mat& a, const cv::Mat& b);

// Fills the background regions that do not reach the border (4-connected, as
// scipy.ndimage.binary_fill_holes). CV_8U 0/1 in and out.
cv::Mat fill_holes(const cv::Mat& mask);

// coarse: CV_8U 0/1 at the image's size; rgb: CV_8UC3. Returns the refined 0/1 mask, or an empty
// Mat when it was dropped.
cv::Mat refine_mask(const cv::Mat& rgb, const cv::Mat& coarse, const RefineOptions& options = {});

}  // namespace lesseg
