// Self-supervised views: torchvision's random-resized-crop box rules, the photometric steps, and the
// `views:` config section.
#include <gtest/gtest.h>

#include <cmath>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/ssl/views.h"

namespace lesseg {
namespace {

const std::array<double, 2> kRatio{3.0 / 4.0, 4.0 / 3.0};

bool inside(const cv::Rect& box, cv::Size image) { return (box & cv::Rect(cv::Point(), image)) == box; }

// A spec that only crops and resizes (every random photometric step off).
ViewSpec geometry_only(int size, std::array<double, 2> scale) {
  ViewSpec spec;
  spec.size = size;
  spec.scale = scale;
  spec.flip = spec.jitter_prob = spec.grayscale = spec.blur = spec.solarize = 0.0;
  return spec;
}

cv::Mat gradient_image(int h, int w) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(uint8_t(x * 7), uint8_t(y * 5), uint8_t(x + y));
  return m;
}

TEST(Views, RandomResizedCropBoxesFollowScaleAndRatio) {
  const cv::Size image(1000, 800);
  std::mt19937_64 rng(7);
  int fallbacks = 0;
  for (int i = 0; i < 2000; ++i) {
    cv::Rect box = random_resized_crop_box(image, {0.08, 1.0}, kRatio, rng);
    ASSERT_TRUE(inside(box, image)) << box;
    ASSERT_GT(box.area(), 0);
    if (box == cv::Rect(0, 0, 1000, 800)) {  // the central fallback (image ratio is inside the range)
      ++fallbacks;
      continue;
    }
    const double fraction = double(box.area()) / image.area();
    EXPECT_GE(fraction, 0.08 * 0.98);
    EXPECT_LE(fraction, 1.0);
    const double aspect = double(box.width) / box.height;
    EXPECT_GE(aspect, kRatio[0] * 0.98);
    EXPECT_LE(aspect, kRatio[1] * 1.02);
  }
  EXPECT_LT(fallbacks, 20);  // ten failed attempts in a row are rare on a 5:4 image
}

TEST(Views, RandomResizedCropCoversTheScaleRange) {
  std::mt19937_64 rng(3);
  double lo = 1.0, hi = 0.0;
  for (int i = 0; i < 500; ++i) {
    cv::Rect box = random_resized_crop_box({640, 640}, {0.2, 0.5}, kRatio, rng);
    const double fraction = double(box.area()) / (640.0 * 640.0);
    lo = std::min(lo, fraction);
    hi = std::max(hi, fraction);
  }
  EXPECT_NEAR(lo, 0.2, 0.02);
  EXPECT_NEAR(hi, 0.5, 0.02);
}

TEST(Views, RandomResizedCropFallsBackToACentralCropForExtremeImages) {
  std::mt19937_64 rng(1);
  // 10:1 and 1:10 images: no 3:4..4:3 box of 90-100 % of the area fits, so the crop is central with
  // the ratio clamped (torchvision: w = round(h * 4/3) or h = round(w / (3/4))).
  EXPECT_EQ(random_resized_crop_box({100, 10}, {0.9, 1.0}, kRatio, rng), cv::Rect(43, 0, 13, 10));
  EXPECT_EQ(random_resized_crop_box({10, 100}, {0.9, 1.0}, kRatio, rng), cv::Rect(0, 43, 10, 13));
}

TEST(Views, SameSeedSameViews) {
  const cv::Mat image = gradient_image(60, 80);
  std::vector<ViewSpec> specs(3);
  specs[0].size = specs[1].size = 32;
  specs[2].size = 16;
  specs[2].solarize = 0.5;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    std::mt19937_64 a(seed), b(seed);
    auto va = make_views(image, specs, a), vb = make_views(image, specs, b);
    ASSERT_EQ(va.size(), 3u);
    for (size_t v = 0; v < va.size(); ++v) {
      ASSERT_EQ(va[v].type(), CV_8UC3);
      ASSERT_EQ(va[v].size(), cv::Size(specs[v].size, specs[v].size));
      EXPECT_EQ(cv::norm(va[v], vb[v], cv::NORM_INF), 0.0);
    }
  }
  std::mt19937_64 a(1), b(2);
  EXPECT_GT(cv::norm(make_views(image, specs, a)[0], make_views(image, specs, b)[0], cv::NORM_INF), 0.0);
}

TEST(Views, GeometryOnlyViewOfTheWholeImageIsAResize) {
  const cv::Mat image = gradient_image(32, 32);
  ViewSpec spec = geometry_only(32, {1.0, 1.0});
  spec.ratio = {1.0, 1.0};
  std::mt19937_64 rng(0);
  EXPECT_EQ(cv::norm(make_views(image, {spec}, rng)[0], image, cv::NORM_INF), 0.0);
}

TEST(Views, SolarizeInvertsBrightPixelsOnly) {
  cv::Mat image(8, 8, CV_8UC3, cv::Scalar(200, 100, 128));
  ViewSpec spec = geometry_only(8, {1.0, 1.0});
  spec.solarize = 1.0;
  std::mt19937_64 rng(0);
  cv::Mat view = make_views(image, {spec}, rng)[0];
  EXPECT_EQ(view.at<cv::Vec3b>(3, 3), cv::Vec3b(55, 100, 127));
}

TEST(Views, GrayscaleGivesThreeEqualChannels) {
  const cv::Mat image = gradient_image(16, 16);
  ViewSpec spec = geometry_only(16, {0.5, 1.0});
  spec.grayscale = 1.0;
  std::mt19937_64 rng(4);
  cv::Mat view = make_views(image, {spec}, rng)[0];
  std::vector<cv::Mat> ch;
  cv::split(view, ch);
  EXPECT_EQ(cv::norm(ch[0], ch[1], cv::NORM_INF), 0.0);
  EXPECT_EQ(cv::norm(ch[0], ch[2], cv::NORM_INF), 0.0);
}

TEST(Views, JitterFactorsStayInTheirRanges) {
  cv::Mat image(16, 16, CV_8UC3, cv::Scalar(100, 100, 100));  // gray: contrast, saturation, hue do nothing
  ViewSpec spec = geometry_only(16, {1.0, 1.0});
  spec.jitter_prob = 1.0;
  spec.brightness = 0.4;
  double lo = 255, hi = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::mt19937_64 rng(seed);
    const double v = cv::mean(make_views(image, {spec}, rng)[0])[0];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_GE(lo, 59.5);
  EXPECT_LE(hi, 140.5);
  EXPECT_LT(lo, 70);
  EXPECT_GT(hi, 130);
}

TEST(Views, HueShiftKeepsValueAndSaturation) {
  cv::Mat image(4, 4, CV_8UC3, cv::Scalar(200, 40, 90));
  ViewSpec spec = geometry_only(4, {1.0, 1.0});
  spec.jitter_prob = 1.0;
  spec.brightness = spec.contrast = spec.saturation = 0.0;
  spec.hue = 0.5;
  int changed = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    cv::Mat view = make_views(image, {spec}, rng)[0];
    changed += cv::norm(view, image, cv::NORM_INF) > 2 ? 1 : 0;
    // Hue rotation keeps the max and min channel values (value and saturation of HSV).
    double mn, mx;
    cv::minMaxLoc(view.reshape(1), &mn, &mx);
    EXPECT_NEAR(mx, 200, 1);
    EXPECT_NEAR(mn, 40, 1);
  }
  EXPECT_GT(changed, 15);
}

// The blur scales with the recipe: SimCLR's 23-tap kernel at 224 px, 5 taps at 48 px (wider where
// +-3 sigma needs it); sigma's range [0.1, 2] is for a 224 px global view and scales with it, and
// local views keep the global views' pixel sigma (DINO).
TEST(Views, BlurKernelAndSigmaFollowTheRecipeSize) {
  EXPECT_EQ(blur_kernel_size(224, 2.0), 23);
  EXPECT_EQ(blur_kernel_size(48, 0.43), 5);
  EXPECT_EQ(blur_kernel_size(16, 0.1), 3);
  EXPECT_EQ(blur_kernel_size(96, 2.0), 13);  // +-3 sigma beats 10 % of 96
  ViewSpec spec;
  EXPECT_DOUBLE_EQ(blur_sigma(spec, 0.0), 0.1);
  EXPECT_NEAR(blur_sigma(spec, 1.0), 2.0, 1e-12);
  Config config;
  config.set("views.global_size", "56");
  config.set("views.local_count", "1");
  config.set("views.local_size", "24");
  auto specs = view_specs_from(config);
  EXPECT_NEAR(blur_sigma(specs[0], 1.0), 0.5, 1e-12);
  EXPECT_NEAR(blur_sigma(specs.back(), 1.0), 0.5, 1e-12);  // the local view: same pixel sigma
}

// A 4 px stripe texture survives the strongest blur of a 48 px view (it did not with a fixed sigma 2).
TEST(Views, BlurOfASmallViewKeepsFineTexture) {
  cv::Mat stripes(48, 48, CV_8UC3);
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 48; ++x) stripes.at<cv::Vec3b>(y, x) = cv::Vec3b::all((x / 2) % 2 ? 255 : 0);
  ViewSpec spec = geometry_only(48, {1.0, 1.0});
  spec.ratio = {1.0, 1.0};
  spec.blur = 1.0;
  spec.blur_sigma = {2.0, 2.0};
  spec.blur_scale = 48.0 / 224.0;
  std::mt19937_64 rng(3);
  cv::Mat view = make_views(stripes, {spec}, rng).front();
  cv::Scalar mean, stddev;
  cv::meanStdDev(view, mean, stddev);
  EXPECT_GT(stddev[0], 0.5 * 127.5) << "the blur erased the texture";
}

TEST(Views, ImageViewMakerMakesEverySpec) {
  std::vector<ViewSpec> specs{geometry_only(24, {0.5, 1.0}), geometry_only(12, {0.1, 0.3})};
  ImageViewMaker maker(specs);
  EXPECT_EQ(maker.num_views(), 2u);
  SegSample sample{gradient_image(40, 50), cv::Mat(), "x", {}};
  std::mt19937_64 rng(9);
  Views views = maker.make(sample, 0, rng);
  ASSERT_EQ(views.images.size(), 2u);
  EXPECT_EQ(views.images[1].size(), cv::Size(12, 12));
  EXPECT_FALSE(views.fallback);
}

TEST(Views, SpecsFromConfig) {
  Config config;
  auto specs = view_specs_from(config);
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].size, 224);
  EXPECT_DOUBLE_EQ(specs[0].scale[0], 0.08);
  EXPECT_DOUBLE_EQ(specs[1].hue, 0.1);
  // DINO: blur 1.0 / 0.1 on the two global views, 0.5 on locals, solarization on the second view.
  config.set("views.local_count", "6");
  config.set("views.blur", "[1.0, 0.1, 0.5]");
  config.set("views.solarize", "[0.0, 0.2, 0.0]");
  specs = view_specs_from(config);
  ASSERT_EQ(specs.size(), 8u);
  EXPECT_DOUBLE_EQ(specs[0].blur, 1.0);
  EXPECT_DOUBLE_EQ(specs[1].blur, 0.1);
  EXPECT_DOUBLE_EQ(specs[1].solarize, 0.2);
  EXPECT_DOUBLE_EQ(specs[0].solarize, 0.0);
  EXPECT_EQ(specs[2].size, 96);
  EXPECT_DOUBLE_EQ(specs[7].blur, 0.5);
  EXPECT_DOUBLE_EQ(specs[7].scale[1], 0.4);
}

void expect_usage_error(const std::string& key, const std::string& value) {
  Config config;
  config.set(key, value);
  try {
    view_specs_from(config);
    ADD_FAILURE() << key << "=" << value << " accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
}

TEST(Views, BadConfigValuesNameTheKey) {
  expect_usage_error("views.flip", "1.5");
  expect_usage_error("views.blur", "[0.5, 0.5]");
  expect_usage_error("views.blur_sigma", "[2.0, 0.1]");
  expect_usage_error("views.solarize", "[0.0, -0.1, 0.0]");
  expect_usage_error("views.global_scale", "[0.5, 0.2]");
  expect_usage_error("views.local_scale", "[0.0, 0.2]");
  expect_usage_error("views.global_count", "0");
  expect_usage_error("views.local_count", "-1");
  expect_usage_error("views.global_size", "0");
  expect_usage_error("views.jitter", "[0.4, 0.4, 0.2]");
  expect_usage_error("views.jitter", "[0.4, 0.4, 0.2, 0.7]");
}

}  // namespace
}  // namespace lesseg
