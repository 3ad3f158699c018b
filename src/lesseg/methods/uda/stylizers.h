#pragma once
// Stylizers turn labeled source images (a renderer's) toward the look of the unlabeled target
// domain while keeping their content, so a segmenter trained on them meets target-like pixels
// (CSA, specs/uda.md). One interface for the trained one (CUT, to come) and the fast ones here,
// which need no training: FDA's Fourier amplitude swap and AdaIN-style colour statistics.
#include <memory>
#include <string>

#include <opencv2/core.hpp>
#include <torch/types.h>

namespace lesseg {

class Stylizer {
 public:
  virtual ~Stylizer() = default;
  virtual std::string name() const = 0;
  // source: float (N, 3, H, W) RGB in [0, 1]; target: float (M, 3, h, w), the style references.
  // Source image i takes the style of target image i % M (resized to H x W). Returns (N, 3, H, W)
  // in [0, 1].
  virtual at::Tensor stylize(const at::Tensor& source, const at::Tensor& target) = 0;
};

// ref: Yang & Soatto 2020, "FDA: Fourier Domain Adaptation" (YanchaoYang/FDA). Per channel, the
// centred low-frequency square of the source's amplitude spectrum (half side floor(min(H, W) x beta),
// plus the centre) is replaced by the target's; the source's phase is kept. Same-shape inputs; not
// clamped (the official code is not either).
at::Tensor fda_transfer(const at::Tensor& source, const at::Tensor& target, double beta);

// Each channel of each source image shifted and scaled to the target image's mean and standard
// deviation (AdaIN's statistics on pixels), blended with the source by `strength` in [0, 1].
at::Tensor adain_transfer(const at::Tensor& source, const at::Tensor& target, double strength);

struct FastStylizerOptions {
  std::string name = "fda";  // fda | adain
  double fda_beta = 0.01;    // the paper's range 0.01-0.09
  double adain_strength = 1.0;
};

// A stylizer that needs no training; an unknown name is a usage error naming the known ones.
std::unique_ptr<Stylizer> make_fast_stylizer(const FastStylizerOptions& options);

class Config;
// csa.stylizer / csa.fda_beta / csa.adain_strength (name "none" when CSA runs without one).
FastStylizerOptions stylizer_options_from(const Config& config);

// One RGB image (CV_8UC3) in the style of another, as RGB.
cv::Mat stylize_image(Stylizer& stylizer, const cv::Mat& source, const cv::Mat& target);

}  // namespace lesseg
