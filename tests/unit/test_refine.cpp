// Mask refinement: hole filling as scipy.ndimage.binary_fill_holes, and the bilateral solver
// snapping a blocky patch-grid mask to the object's edges.
#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "lesseg/methods/pseudo/refine.h"

namespace lesseg {
namespace {

TEST(Refine, FillHolesFillsEnclosedBackgroundOnly) {
  cv::Mat ring = (cv::Mat_<uint8_t>(5, 6) << 0, 1, 1, 1, 0, 0,  //
                  0, 1, 0, 1, 0, 0,                             // enclosed hole at (1, 2)
                  0, 1, 1, 1, 0, 1,                             //
                  0, 0, 0, 0, 1, 0,                             // (3, 5) touches the border: not a hole
                  0, 0, 0, 0, 0, 1);
  cv::Mat filled = fill_holes(ring);
  EXPECT_EQ(filled.at<uint8_t>(1, 2), 1);
  EXPECT_EQ(filled.at<uint8_t>(3, 5), 0);
  EXPECT_EQ(cv::countNonZero(filled), cv::countNonZero(ring) + 1);
  // 4-connected background: a diagonal gap in the wall does not let the flood in.
  cv::Mat diagonal = (cv::Mat_<uint8_t>(4, 4) << 0, 1, 0, 0,  //
                      1, 0, 1, 0,                             //
                      0, 1, 0, 0,                             //
                      0, 0, 0, 0);
  EXPECT_EQ(fill_holes(diagonal).at<uint8_t>(1, 1), 1);
}

TEST(Refine, BilateralSolverSnapsABlockyMaskToTheObject) {
  // A bright disk on a dark textured background; the coarse mask is its 16-px patch cover.
  cv::Mat rgb(128, 128, CV_8UC3);
  cv::randu(rgb, cv::Scalar(20, 20, 20), cv::Scalar(60, 60, 60));
  cv::Mat truth = cv::Mat::zeros(128, 128, CV_8U);
  cv::circle(truth, {64, 64}, 30, 1, cv::FILLED);
  rgb.setTo(cv::Scalar(220, 180, 40), truth);
  cv::Mat coarse = cv::Mat::zeros(128, 128, CV_8U);
  for (int y = 0; y < 128; y += 16)
    for (int x = 0; x < 128; x += 16)
      if (cv::countNonZero(truth(cv::Rect(x, y, 16, 16))) > 64) coarse(cv::Rect(x, y, 16, 16)).setTo(1);
  cv::Mat refined = refine_mask(rgb, coarse);
  ASSERT_FALSE(refined.empty());
  const double before = mask_iou(coarse, truth), after = mask_iou(refined, truth);
  std::printf("  IoU with the disk: coarse %.3f, refined %.3f\n", before, after);
  EXPECT_GT(after, before + 0.03);
  // A coarse mask the image does not support at all changes too much and is dropped.
  cv::Mat stray = cv::Mat::zeros(128, 128, CV_8U);
  stray(cv::Rect(0, 0, 8, 8)).setTo(1);
  RefineOptions strict;
  strict.min_iou = 0.99;
  EXPECT_TRUE(refine_mask(rgb, stray, strict).empty());
}

TEST(Refine, MaskIou) {
  cv::Mat a = cv::Mat::zeros(4, 4, CV_8U), b = a.clone();
  EXPECT_EQ(mask_iou(a, b), 0.0);
  a(cv::Rect(0, 0, 2, 2)).setTo(1);
  b(cv::Rect(1, 0, 2, 2)).setTo(1);
  EXPECT_DOUBLE_EQ(mask_iou(a, b), 2.0 / 6.0);
}

}  // namespace
}  // namespace lesseg
