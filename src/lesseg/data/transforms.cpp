#include "lesseg/data/transforms.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

namespace lesseg {

namespace {
double uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}
}  // namespace

void resize_sample(SegSample& sample, int height, int width) {
  if (sample.image.rows == height && sample.image.cols == width) return;
  cv::resize(sample.image, sample.image, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
  if (!sample.mask.empty())
    cv::resize(sample.mask, sample.mask, cv::Size(width, height), 0, 0, cv::INTER_NEAREST);
  for (auto& instance : sample.instances)
    cv::resize(instance, instance, cv::Size(width, height), 0, 0, cv::INTER_NEAREST);
}

void random_scale(SegSample& sample, double scale_min, double scale_max, std::mt19937_64& rng) {
  double scale = uniform(rng, scale_min, scale_max);
  int h = std::max(1, int(std::lround(sample.image.rows * scale)));
  int w = std::max(1, int(std::lround(sample.image.cols * scale)));
  resize_sample(sample, h, w);
}

void random_crop(SegSample& sample, int height, int width, int ignore_index, std::mt19937_64& rng) {
  int pad_h = std::max(0, height - sample.image.rows), pad_w = std::max(0, width - sample.image.cols);
  if (pad_h > 0 || pad_w > 0) {
    cv::copyMakeBorder(sample.image, sample.image, 0, pad_h, 0, pad_w, cv::BORDER_CONSTANT, cv::Scalar::all(0));
    if (!sample.mask.empty())
      cv::copyMakeBorder(sample.mask, sample.mask, 0, pad_h, 0, pad_w, cv::BORDER_CONSTANT,
                         cv::Scalar::all(ignore_index));
    for (auto& instance : sample.instances)
      cv::copyMakeBorder(instance, instance, 0, pad_h, 0, pad_w, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  }
  int y = std::uniform_int_distribution<int>(0, sample.image.rows - height)(rng);
  int x = std::uniform_int_distribution<int>(0, sample.image.cols - width)(rng);
  cv::Rect box(x, y, width, height);
  sample.image = sample.image(box).clone();
  if (!sample.mask.empty()) sample.mask = sample.mask(box).clone();
  for (auto& instance : sample.instances) instance = instance(box).clone();
}

void random_flip(SegSample& sample, std::mt19937_64& rng) {
  if (std::uniform_int_distribution<int>(0, 1)(rng) == 0) return;
  cv::flip(sample.image, sample.image, 1);
  if (!sample.mask.empty()) cv::flip(sample.mask, sample.mask, 1);
  for (auto& instance : sample.instances) cv::flip(instance, instance, 1);
}

void color_jitter(cv::Mat& image, double strength, std::mt19937_64& rng) {
  double brightness = uniform(rng, 1 - strength, 1 + strength);
  double contrast = uniform(rng, 1 - strength, 1 + strength);
  double saturation = uniform(rng, 1 - strength, 1 + strength);
  cv::Mat f;
  image.convertTo(f, CV_32FC3);
  f *= brightness;
  cv::Scalar mean = cv::mean(f);
  double grey_mean = (mean[0] + mean[1] + mean[2]) / 3.0;
  f = (f - cv::Scalar::all(grey_mean)) * contrast + cv::Scalar::all(grey_mean);
  cv::Mat grey;
  cv::cvtColor(f, grey, cv::COLOR_RGB2GRAY);
  cv::cvtColor(grey, grey, cv::COLOR_GRAY2RGB);
  f = grey + (f - grey) * saturation;
  f.convertTo(image, CV_8UC3);  // saturates to [0, 255]
}

void random_blur(cv::Mat& image, double probability, std::mt19937_64& rng) {
  if (uniform(rng, 0, 1) >= probability) return;
  double sigma = uniform(rng, 0.1, 2.0);
  cv::GaussianBlur(image, image, cv::Size(0, 0), sigma);
}

void augment(SegSample& sample, const AugmentOptions& options, int ignore_index, std::mt19937_64& rng) {
  if (options.resize_h > 0 && options.resize_w > 0) resize_sample(sample, options.resize_h, options.resize_w);
  if (options.scale_max > options.scale_min || options.scale_min != 1.0)
    random_scale(sample, options.scale_min, options.scale_max, rng);
  if (options.crop_h > 0 && options.crop_w > 0) random_crop(sample, options.crop_h, options.crop_w, ignore_index, rng);
  if (options.flip) random_flip(sample, rng);
  if (options.color_jitter > 0) color_jitter(sample.image, options.color_jitter, rng);
  if (options.blur_prob > 0) random_blur(sample.image, options.blur_prob, rng);
}

}  // namespace lesseg
