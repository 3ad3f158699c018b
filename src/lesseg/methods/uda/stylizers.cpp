#include "lesseg/methods/uda/stylizers.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"

namespace lesseg {
namespace {

// The style references for each source image: target i % M, resized to the source's size.
at::Tensor references_for(const at::Tensor& source, const at::Tensor& target) {
  if (source.dim() != 4 || target.dim() != 4 || source.size(1) != target.size(1) || target.size(0) == 0)
    throw_usage("stylize: source and target must be (N, C, H, W) batches with the same channels");
  at::Tensor style = target.to(source.device(), source.scalar_type());
  if (style.size(2) != source.size(2) || style.size(3) != source.size(3))
    style = torch::nn::functional::interpolate(
        style, torch::nn::functional::InterpolateFuncOptions()
                   .size(std::vector<int64_t>{source.size(2), source.size(3)})
                   .mode(torch::kBilinear)
                   .align_corners(false));
  const at::Tensor index = torch::arange(source.size(0), torch::kLong) % style.size(0);
  return style.index_select(0, index.to(style.device()));
}

// A training-free stylizer: one image-to-image transfer applied to each source and its reference.
class TransferStylizer : public Stylizer {
 public:
  using Transfer = std::function<at::Tensor(const at::Tensor& source, const at::Tensor& reference)>;
  TransferStylizer(std::string name, Transfer transfer) : name_(std::move(name)), transfer_(std::move(transfer)) {}
  std::string name() const override { return name_; }
  at::Tensor stylize(const at::Tensor& source, const at::Tensor& target) override {
    return transfer_(source, references_for(source, target)).clamp(0, 1);
  }

 private:
  std::string name_;
  Transfer transfer_;
};

void check_beta(double beta) {
  if (!(beta >= 0 && beta < 0.5)) throw_usage("FDA beta must be in [0, 0.5)");
}

void check_strength(double strength) {
  if (!(strength >= 0 && strength <= 1)) throw_usage("AdaIN strength must be in [0, 1]");
}

}  // namespace

at::Tensor fda_transfer(const at::Tensor& source, const at::Tensor& target, double beta) {
  if (source.sizes() != target.sizes()) throw_usage("FDA needs a source and a target of the same shape");
  check_beta(beta);
  const int64_t h = source.size(-2), w = source.size(-1);
  const int64_t half = static_cast<int64_t>(std::floor(static_cast<double>(std::min(h, w)) * beta));
  const at::Tensor spectrum = torch::fft::fft2(source);
  // Centred spectra (zero frequency in the middle), as the official numpy version.
  at::Tensor amplitude = torch::fft::fftshift(spectrum.abs(), std::vector<int64_t>{-2, -1});
  const at::Tensor target_amplitude = torch::fft::fftshift(torch::fft::fft2(target).abs(), std::vector<int64_t>{-2, -1});
  const int64_t ch = h / 2, cw = w / 2;
  auto box = [&](const at::Tensor& t) {
    return t.slice(-2, std::max<int64_t>(0, ch - half), std::min(h, ch + half + 1))
        .slice(-1, std::max<int64_t>(0, cw - half), std::min(w, cw + half + 1));
  };
  box(amplitude).copy_(box(target_amplitude));
  amplitude = torch::fft::ifftshift(amplitude, std::vector<int64_t>{-2, -1});
  return torch::real(torch::fft::ifft2(torch::polar(amplitude, torch::angle(spectrum))));
}

at::Tensor adain_transfer(const at::Tensor& source, const at::Tensor& target, double strength) {
  if (source.sizes() != target.sizes()) throw_usage("AdaIN transfer needs a source and a target of the same shape");
  check_strength(strength);
  const std::vector<int64_t> pixels{2, 3};
  const at::Tensor mean_s = source.mean(pixels, true), std_s = source.std(pixels, false, true);
  const at::Tensor mean_t = target.mean(pixels, true), std_t = target.std(pixels, false, true);
  const at::Tensor moved = (source - mean_s) / (std_s + 1e-5) * std_t + mean_t;
  return source + strength * (moved - source);
}

std::unique_ptr<Stylizer> make_fast_stylizer(const FastStylizerOptions& options) {
  using std::placeholders::_1, std::placeholders::_2;
  if (options.name == "fda") {
    check_beta(options.fda_beta);  // refused here, before any image is read
    return std::make_unique<TransferStylizer>("fda", std::bind(fda_transfer, _1, _2, options.fda_beta));
  }
  if (options.name == "adain") {
    check_strength(options.adain_strength);
    return std::make_unique<TransferStylizer>("adain", std::bind(adain_transfer, _1, _2, options.adain_strength));
  }
  throw_usage("unknown stylizer '" + options.name + "' (known: fda, adain)");
}

FastStylizerOptions stylizer_options_from(const Config& config) {
  FastStylizerOptions options;
  options.name = config.get<std::string>("csa.stylizer");
  options.fda_beta = config.get<double>("csa.fda_beta");
  options.adain_strength = config.get<double>("csa.adain_strength");
  return options;
}

cv::Mat stylize_image(Stylizer& stylizer, const cv::Mat& source, const cv::Mat& target) {
  auto to_unit = [](const cv::Mat& rgb) {
    const cv::Mat image = rgb.isContinuous() ? rgb : rgb.clone();
    return torch::from_blob(image.data, {image.rows, image.cols, 3}, torch::kUInt8)
        .permute({2, 0, 1}).to(torch::kFloat32).div(255).unsqueeze(0);
  };
  torch::NoGradGuard no_grad;
  const at::Tensor hwc = stylizer.stylize(to_unit(source), to_unit(target)).squeeze(0).permute({1, 2, 0})
                             .mul(255).round().clamp(0, 255).to(torch::kUInt8).contiguous();
  return cv::Mat(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr()).clone();
}

}  // namespace lesseg
