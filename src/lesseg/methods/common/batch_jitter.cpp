#include "lesseg/methods/common/batch_jitter.h"

#include <cmath>

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {
namespace {

double uniform(std::mt19937_64& rng, double low, double high) {
  return low + (high - low) * (static_cast<double>(rng() >> 11) * 0x1.0p-53);
}

at::Tensor grey(const at::Tensor& rgb) {  // [3, H, W] -> [1, H, W], ITU-R 601 luma
  return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]).unsqueeze(0);
}

// torchvision's order and forms: brightness scales, contrast blends with the mean grey level,
// saturation with the grey image; hue rotates the I/Q chroma plane by `hue` of a full turn.
at::Tensor color_jitter(at::Tensor x, double strength, std::mt19937_64& rng) {
  const double brightness = uniform(rng, 1 - strength, 1 + strength);
  const double contrast = uniform(rng, 1 - strength, 1 + strength);
  const double saturation = uniform(rng, 1 - strength, 1 + strength);
  const double hue = uniform(rng, -strength, strength) * 2 * M_PI;
  x = (x * brightness).clamp(0, 1);
  x = ((x - grey(x).mean()) * contrast + grey(x).mean()).clamp(0, 1);
  x = ((x - grey(x)) * saturation + grey(x)).clamp(0, 1);
  const auto to_yiq = torch::tensor({0.299, 0.587, 0.114, 0.596, -0.274, -0.322, 0.211, -0.523, 0.312}, x.options()).view({3, 3});
  const double c = std::cos(hue), s = std::sin(hue);
  const auto rotate = torch::tensor({1.0, 0.0, 0.0, 0.0, c, -s, 0.0, s, c}, x.options()).view({3, 3});
  const auto matrix = torch::linalg_inv(to_yiq).matmul(rotate).matmul(to_yiq);
  return torch::einsum("ij,jhw->ihw", {matrix, x}).clamp(0, 1);
}

at::Tensor gaussian_blur(const at::Tensor& x, double sigma) {
  const int64_t near = static_cast<int64_t>(std::ceil(0.1 * double(x.size(1))));
  const int64_t size = std::max<int64_t>(3, near % 2 == 1 ? near : near - 1);
  auto offsets = torch::arange(size, x.options()) - double(size - 1) / 2;
  auto kernel = torch::exp(-offsets.pow(2) / (2 * sigma * sigma));
  kernel = kernel / kernel.sum();
  const int64_t pad = size / 2;
  namespace F = torch::nn::functional;
  auto image = x.unsqueeze(0);
  const int64_t pad_h = std::min(pad, x.size(1) - 1), pad_w = std::min(pad, x.size(2) - 1);
  image = F::pad(image, F::PadFuncOptions({pad_w, pad_w, pad_h, pad_h}).mode(torch::kReflect));
  // Separable: rows, then columns; a kernel trimmed to the padding when the image is tiny.
  auto row = kernel.slice(0, pad - pad_w, size - (pad - pad_w)).view({1, 1, 1, -1}).repeat({3, 1, 1, 1});
  auto column = kernel.slice(0, pad - pad_h, size - (pad - pad_h)).view({1, 1, -1, 1}).repeat({3, 1, 1, 1});
  image = F::conv2d(image, row, F::Conv2dFuncOptions().groups(3));
  image = F::conv2d(image, column, F::Conv2dFuncOptions().groups(3));
  return image.squeeze(0);
}

}  // namespace

at::Tensor jitter_and_blur(const at::Tensor& images, const std::array<double, 3>& mean, const std::array<double, 3>& std,
                           const BatchJitterOptions& options, std::mt19937_64& rng) {
  if (images.dim() != 4 || images.size(1) != 3) throw_usage("jitter_and_blur needs images [B, 3, H, W]");
  torch::NoGradGuard no_grad;
  const auto m = torch::tensor({mean[0], mean[1], mean[2]}, images.options()).view({3, 1, 1});
  const auto s = torch::tensor({std[0], std[1], std[2]}, images.options()).view({3, 1, 1});
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < images.size(0); ++b) {
    at::Tensor x = images[b] * s + m;
    if (uniform(rng, 0, 1) > options.jitter_skip) x = color_jitter(x, options.jitter_strength, rng);
    if (uniform(rng, 0, 1) < options.blur_probability) x = gaussian_blur(x, uniform(rng, options.sigma_min, options.sigma_max));
    out.push_back((x - m) / s);
  }
  return torch::stack(out);
}

}  // namespace lesseg
