// Joint transforms keep image and mask aligned, pad with ignore, and are deterministic per seed.
#include <gtest/gtest.h>

#include "lesseg/data/transforms.h"

namespace lesseg {
namespace {

// An image whose red channel encodes x and green encodes y, and a mask derived from both.
SegSample coordinate_sample(int h, int w) {
  SegSample s;
  s.image.create(h, w, CV_8UC3);
  s.mask.create(h, w, CV_8U);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      s.image.at<cv::Vec3b>(y, x) = cv::Vec3b(uint8_t(x), uint8_t(y), 0);
      s.mask.at<uint8_t>(y, x) = uint8_t((5 * x + 3 * y) % 251);
    }
  return s;
}

TEST(Transforms, CropAndFlipKeepImageAndMaskAligned) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    SegSample s = coordinate_sample(30, 40);
    std::mt19937_64 rng(seed);
    random_crop(s, 16, 16, 255, rng);
    random_flip(s, rng);
    ASSERT_EQ(s.image.size(), cv::Size(16, 16));
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x) {
        const cv::Vec3b& rgb = s.image.at<cv::Vec3b>(y, x);
        EXPECT_EQ(s.mask.at<uint8_t>(y, x), (5 * rgb[0] + 3 * rgb[1]) % 251);
      }
  }
}

TEST(Transforms, CropLargerThanImagePadsMaskWithIgnore) {
  SegSample s = coordinate_sample(10, 10);
  std::mt19937_64 rng(1);
  random_crop(s, 16, 20, 255, rng);
  EXPECT_EQ(s.mask.size(), cv::Size(20, 16));
  EXPECT_EQ(s.mask.at<uint8_t>(15, 19), 255);
  EXPECT_EQ(s.image.at<cv::Vec3b>(15, 19), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(cv::countNonZero(s.mask == 255), 16 * 20 - 100);
}

TEST(Transforms, ScaleUsesNearestNeighbourForMasks) {
  SegSample s = coordinate_sample(20, 20);
  s.mask = cv::Mat::zeros(20, 20, CV_8U);
  s.mask(cv::Rect(5, 5, 7, 9)).setTo(200);
  std::mt19937_64 rng(3);
  random_scale(s, 1.7, 1.7, rng);
  EXPECT_EQ(s.mask.size(), cv::Size(34, 34));
  // Only the two original values survive: linear interpolation would create values in between.
  EXPECT_EQ(cv::countNonZero(s.mask == 0) + cv::countNonZero(s.mask == 200), 34 * 34);
  EXPECT_GT(cv::countNonZero(s.mask == 200), 0);
}

TEST(Transforms, AugmentIsDeterministicForASeed) {
  AugmentOptions o;
  o.crop_h = o.crop_w = 24;
  o.scale_min = 0.5;
  o.scale_max = 2.0;
  o.flip = true;
  o.color_jitter = 0.4;
  o.blur_prob = 0.5;
  SegSample a = coordinate_sample(32, 32), b = coordinate_sample(32, 32), c = coordinate_sample(32, 32);
  std::mt19937_64 ra(9), rb(9), rc(10);
  augment(a, o, 255, ra);
  augment(b, o, 255, rb);
  augment(c, o, 255, rc);
  EXPECT_EQ(cv::norm(a.image, b.image, cv::NORM_L1), 0);
  EXPECT_EQ(cv::norm(a.mask, b.mask, cv::NORM_L1), 0);
  EXPECT_GT(cv::norm(a.image, c.image, cv::NORM_L1), 0);
}

TEST(Transforms, ColorJitterChangesOnlyTheImage) {
  SegSample s = coordinate_sample(8, 8);
  cv::Mat before = s.image.clone();
  std::mt19937_64 rng(5);
  color_jitter(s.image, 0.5, rng);
  EXPECT_GT(cv::norm(before, s.image, cv::NORM_L1), 0);
}

}  // namespace
}  // namespace lesseg
