#pragma once
// Pseudo-labels from a teacher's prediction and the loss that trains a student on the confident
// ones, shared by the semi-supervised methods (UniMatch, CPS, IGL-DT's student) and adaptation.
#include <ATen/core/Tensor.h>

namespace lesseg {

struct PseudoLabel {
  at::Tensor label;       // [B, H, W] int64, the most probable class
  at::Tensor confidence;  // [B, H, W] float, its probability
};

// From class probabilities [B, C, H, W] (a softmax, or the mean of several teachers' softmaxes);
// no gradient flows back into the teacher.
PseudoLabel pseudo_label(const at::Tensor& probabilities);

// ref: UniMatch: cross-entropy of the student's logits [B, C, H, W] against the pseudo-label on the
// pixels whose confidence >= threshold, summed over those pixels and divided by the number of
// pixels that are not ignored (confident or not), so that a batch with few confident pixels gives a
// small loss, not a noisy mean of a few. `ignored` [B, H, W] bool (padding after a crop) may be
// undefined. CPS is threshold 0.
at::Tensor confident_cross_entropy(const at::Tensor& logits, const PseudoLabel& target, double threshold,
                                   const at::Tensor& ignored = {});

// ref: DACS / DAFormer: one weight for a whole pseudo-labeled batch, the fraction of its pixels
// (not `ignored`) whose confidence >= threshold (DAFormer: 0.968).
double confident_fraction(const PseudoLabel& target, double threshold, const at::Tensor& ignored = {});

// Cross-entropy with a weight per pixel [B, H, W], averaged over all pixels (DAFormer's mixed
// loss: mmseg's weighted mean); pixels labeled ignore_index count as 0.
at::Tensor weighted_cross_entropy(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& weights,
                                  int64_t ignore_index);

}  // namespace lesseg
