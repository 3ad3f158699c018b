#pragma once
// Class prototypes in a projected feature space and the pixel-to-prototype contrast (CSA /
// CONFETI, specs/uda.md): each class keeps one unit vector, an EMA of the CAM-weighted mean of its
// most class-like pixels; a pixel's feature is pulled to its class's prototype and pushed from the
// others, so that source and target pixels of a class gather around one point.
#include <cstdint>

#include <torch/nn/module.h>

namespace lesseg {

class PrototypeBankImpl : public torch::nn::Module {
 public:
  PrototypeBankImpl(int64_t num_classes, int64_t dim);
  // features [N, D] (one row per pixel, L2-normalized), labels [N] (ignore_index: skipped), scores
  // [N, C] (the CAM of each pixel; undefined: uniform weights). For each class present: its top_k
  // pixels by score (all of them, if fewer; without scores the first top_k), f_c = score-weighted
  // mean, L2-normalized; P_c <- momentum P_c + (1 - momentum) f_c, renormalized (the first update
  // sets P_c = f_c). No gradient.
  void update(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& scores, int64_t top_k,
              double momentum, int64_t ignore_index);
  at::Tensor prototypes() const { return prototypes_; }  // [C, D]
  at::Tensor seen() const { return seen_; }              // [C] bool: updated at least once

 private:
  at::Tensor prototypes_, seen_;
};
TORCH_MODULE(PrototypeBank);

// ref: CONFETI's contrast: cross-entropy of the pixel-to-prototype similarities / tau against the
// pixel's class, over the pixels whose class has a prototype (others and ignore_index dropped);
// `weights` [N] (undefined: 1) scale each pixel (target pixels: the confident fraction). 0 when no
// pixel counts.
at::Tensor prototype_contrast(const at::Tensor& features, const at::Tensor& labels, const PrototypeBank& bank,
                              double tau, int64_t ignore_index, const at::Tensor& weights = {});

// The diversity regulariser on the mean prediction: with p = mean over pixels of
// softmax(features Pᵀ / tau), sum_c p_c ln p_c / (C ln C) (0 at most, lowest when the pixels spread
// over all C prototypes made so far). CONFETI's sign is ambiguous in its code; lesseg uses this standard form.
at::Tensor prototype_diversity(const at::Tensor& features, const PrototypeBank& bank, double tau);

}  // namespace lesseg
