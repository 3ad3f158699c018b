#include "lesseg/data/ssl/views.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include <opencv2/imgproc.hpp>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"

namespace lesseg {

namespace {

double uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

bool happens(std::mt19937_64& rng, double probability) { return uniform(rng, 0.0, 1.0) < probability; }

// Python's round(): halves go to the even neighbour (the default FE_TONEAREST mode).
int round_half_even(double v) { return static_cast<int>(std::nearbyint(v)); }

// ref: torchvision.transforms.functional._blend: ratio * a + (1 - ratio) * b, clamped to the range.
void blend(cv::Mat& image, const cv::Mat& other, double ratio) {
  cv::addWeighted(image, ratio, other, 1.0 - ratio, 0.0, image);
  cv::min(cv::max(image, 0.0), 255.0, image);
}

void blend_scalar(cv::Mat& image, double value, double ratio) {
  image = image * ratio + cv::Scalar::all((1.0 - ratio) * value);
  cv::min(cv::max(image, 0.0), 255.0, image);
}

// ref: torchvision rgb_to_grayscale: 0.2989 r + 0.587 g + 0.114 b (float RGB in, one channel out).
cv::Mat grayscale_of(const cv::Mat& rgb) {
  cv::Mat gray;
  cv::transform(rgb, gray, cv::Matx13f(0.2989f, 0.587f, 0.114f));
  return gray;
}

cv::Mat gray3_of(const cv::Mat& rgb) {
  cv::Mat gray3;
  cv::cvtColor(grayscale_of(rgb), gray3, cv::COLOR_GRAY2RGB);
  return gray3;
}

// ref: torchvision adjust_hue: shift H (a full turn = 1) in HSV space, wrapping around.
void shift_hue(cv::Mat& rgb, double hue) {
  cv::Mat hsv = rgb / 255.0;
  cv::cvtColor(hsv, hsv, cv::COLOR_RGB2HSV);  // float input: H in [0, 360)
  const float shift = static_cast<float>(hue * 360.0);
  for (int y = 0; y < hsv.rows; ++y) {
    auto* px = hsv.ptr<cv::Vec3f>(y);
    for (int x = 0; x < hsv.cols; ++x) {
      float h = std::fmod(px[x][0] + shift, 360.0f);
      px[x][0] = h < 0 ? h + 360.0f : h;
    }
  }
  cv::cvtColor(hsv, rgb, cv::COLOR_HSV2RGB);
  rgb *= 255.0;
}

// ref: torchvision ColorJitter.forward: the four adjustments in a random order, each factor drawn once.
void color_jitter(cv::Mat& rgb, const ViewSpec& spec, std::mt19937_64& rng) {
  std::array<int, 4> order{0, 1, 2, 3};
  for (int i = 3; i > 0; --i) std::swap(order[i], order[std::uniform_int_distribution<int>(0, i)(rng)]);
  const double b = uniform(rng, std::max(0.0, 1 - spec.brightness), 1 + spec.brightness);
  const double c = uniform(rng, std::max(0.0, 1 - spec.contrast), 1 + spec.contrast);
  const double s = uniform(rng, std::max(0.0, 1 - spec.saturation), 1 + spec.saturation);
  const double h = uniform(rng, -spec.hue, spec.hue);
  cv::Mat f;
  rgb.convertTo(f, CV_32FC3);
  for (int op : order) {
    if (op == 0 && spec.brightness > 0) blend_scalar(f, 0.0, b);
    if (op == 1 && spec.contrast > 0) blend_scalar(f, cv::mean(grayscale_of(f))[0], c);
    if (op == 2 && spec.saturation > 0) blend(f, gray3_of(f), s);
    if (op == 3 && spec.hue > 0) shift_hue(f, h);
  }
  f.convertTo(rgb, CV_8UC3);  // rounds and saturates
}

void gaussian_blur(cv::Mat& rgb, const ViewSpec& spec, std::mt19937_64& rng) {
  const double sigma = blur_sigma(spec, uniform(rng, 0.0, 1.0));
  const int k = blur_kernel_size(spec.size, sigma);
  cv::GaussianBlur(rgb, rgb, cv::Size(k, k), sigma, sigma, cv::BORDER_REFLECT_101);
}

// ref: torchvision solarize(threshold=128): pixels >= threshold become 255 - pixel.
void solarize(cv::Mat& rgb) {
  cv::Mat inverted = cv::Scalar::all(255) - rgb;
  cv::Mat bright;
  cv::compare(rgb, cv::Scalar::all(128), bright, cv::CMP_GE);
  inverted.copyTo(rgb, bright);
}

cv::Mat make_view(const cv::Mat& rgb, const ViewSpec& spec, std::mt19937_64& rng) {
  cv::Rect box = random_resized_crop_box(rgb.size(), spec.scale, spec.ratio, rng);
  cv::Mat view;
  cv::resize(rgb(box), view, cv::Size(spec.size, spec.size), 0, 0, cv::INTER_LINEAR);
  if (happens(rng, spec.flip)) cv::flip(view, view, 1);
  photometric_augment(view, spec, rng);
  return view;
}

}  // namespace

void photometric_augment(cv::Mat& view, const ViewSpec& spec, std::mt19937_64& rng) {
  if (happens(rng, spec.jitter_prob)) color_jitter(view, spec, rng);
  if (happens(rng, spec.grayscale)) view = gray3_of(view);
  if (happens(rng, spec.blur)) gaussian_blur(view, spec, rng);
  if (happens(rng, spec.solarize)) solarize(view);
}

int blur_kernel_size(int view_side, double sigma) {
  return std::max({3, 2 * (view_side / 20) + 1, 2 * static_cast<int>(std::ceil(3.0 * sigma)) + 1});
}

double blur_sigma(const ViewSpec& spec, double u) {
  return (spec.blur_sigma[0] + (spec.blur_sigma[1] - spec.blur_sigma[0]) * u) * spec.blur_scale;
}

cv::Rect random_resized_crop_box(cv::Size image, const std::array<double, 2>& scale,
                                 const std::array<double, 2>& ratio, std::mt19937_64& rng) {
  // ref: torchvision RandomResizedCrop.get_params
  const int width = image.width, height = image.height;
  const double area = double(width) * height;
  const double log_lo = std::log(ratio[0]), log_hi = std::log(ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(rng, scale[0], scale[1]);
    const double aspect = std::exp(uniform(rng, log_lo, log_hi));
    const int w = round_half_even(std::sqrt(target_area * aspect));
    const int h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int y = std::uniform_int_distribution<int>(0, height - h)(rng);
      const int x = std::uniform_int_distribution<int>(0, width - w)(rng);
      return {x, y, w, h};
    }
  }
  // Fallback: a central crop with the aspect ratio clamped to the range.
  const double in_ratio = double(width) / height;
  int w = width, h = height;
  if (in_ratio < std::min(ratio[0], ratio[1])) {
    h = std::max(1, round_half_even(w / std::min(ratio[0], ratio[1])));
  } else if (in_ratio > std::max(ratio[0], ratio[1])) {
    w = std::max(1, round_half_even(h * std::max(ratio[0], ratio[1])));
  }
  return {(width - w) / 2, (height - h) / 2, w, h};
}

std::vector<cv::Mat> make_views(const cv::Mat& rgb, const std::vector<ViewSpec>& specs, std::mt19937_64& rng) {
  CV_Assert(rgb.type() == CV_8UC3 && !rgb.empty());
  std::vector<cv::Mat> views;
  views.reserve(specs.size());
  for (const ViewSpec& spec : specs) views.push_back(make_view(rgb, spec, rng));
  return views;
}

Views ImageViewMaker::make(const SegSample& sample, size_t, std::mt19937_64& rng) const {
  return Views{make_views(sample.image, specs_, rng), false};
}

namespace {

void check_probability(const std::string& key, double p) {
  if (!(p >= 0.0 && p <= 1.0)) throw_usage("config key '" + key + "' must be a probability in [0, 1], got " +
                                           std::to_string(p));
}

std::vector<double> probabilities(const Config& config, const std::string& key, size_t count) {
  auto values = config.get<std::vector<double>>(key);
  if (values.size() != count)
    throw_usage("config key '" + key + "' must hold " + std::to_string(count) + " values");
  for (double p : values) check_probability(key, p);
  return values;
}

std::array<double, 2> scale_range(const Config& config, const std::string& key) {
  auto v = config.get<std::vector<double>>(key);
  if (v.size() != 2 || !(v[0] > 0.0 && v[0] <= v[1] && v[1] <= 1.0))
    throw_usage("config key '" + key + "' must be [lo, hi] with 0 < lo <= hi <= 1");
  return {v[0], v[1]};
}

int count_at_least(const Config& config, const std::string& key, int minimum) {
  int n = config.get<int>(key);
  if (n < minimum) throw_usage("config key '" + key + "' must be >= " + std::to_string(minimum));
  return n;
}

// The settings every view shares.
ViewSpec common_spec(const Config& config) {
  ViewSpec spec;
  spec.flip = config.get<double>("views.flip");
  check_probability("views.flip", spec.flip);
  spec.jitter_prob = config.get<double>("views.jitter_prob");
  check_probability("views.jitter_prob", spec.jitter_prob);
  spec.grayscale = config.get<double>("views.grayscale");
  check_probability("views.grayscale", spec.grayscale);
  auto jitter = config.get<std::vector<double>>("views.jitter");
  if (jitter.size() != 4 || !(jitter[0] >= 0 && jitter[1] >= 0 && jitter[2] >= 0 && jitter[3] >= 0 && jitter[3] <= 0.5))
    throw_usage("config key 'views.jitter' must be [brightness, contrast, saturation, hue], each >= 0, hue <= 0.5");
  spec.brightness = jitter[0];
  spec.contrast = jitter[1];
  spec.saturation = jitter[2];
  spec.hue = jitter[3];
  auto sigma = config.get<std::vector<double>>("views.blur_sigma");
  if (sigma.size() != 2 || !(sigma[0] > 0.0 && sigma[0] <= sigma[1]))
    throw_usage("config key 'views.blur_sigma' must be [lo, hi] with 0 < lo <= hi");
  spec.blur_sigma = {sigma[0], sigma[1]};
  return spec;
}

}  // namespace

std::vector<ViewSpec> view_specs_from(const Config& config) {
  const ViewSpec common = common_spec(config);
  const int global_count = count_at_least(config, "views.global_count", 1);
  const int local_count = count_at_least(config, "views.local_count", 0);
  const auto blur = probabilities(config, "views.blur", 3);
  const auto solarize = probabilities(config, "views.solarize", 3);
  ViewSpec global = common, local = common;
  global.size = count_at_least(config, "views.global_size", 1);
  global.blur_scale = local.blur_scale = static_cast<double>(global.size) / 224.0;
  global.scale = scale_range(config, "views.global_scale");
  local.size = count_at_least(config, "views.local_size", 1);
  local.scale = scale_range(config, "views.local_scale");
  std::vector<ViewSpec> specs;
  for (int i = 0; i < global_count; ++i) {
    const size_t k = i == 0 ? 0 : 1;  // DINO: the first global view differs from the others
    specs.push_back(global);
    specs.back().blur = blur[k];
    specs.back().solarize = solarize[k];
  }
  for (int i = 0; i < local_count; ++i) {
    specs.push_back(local);
    specs.back().blur = blur[2];
    specs.back().solarize = solarize[2];
  }
  return specs;
}

}  // namespace lesseg
