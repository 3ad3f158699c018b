#pragma once
// IGL-DT's student terms (Tran, Nguyen et al. 2025; no public code: the formulas the paper leaves
// open are lesseg's, documented here and in the README). Features are [B, C, h, w] with the same C
// (the student's already projected to the teacher's width).
#include <cstdint>

#include <ATen/core/Tensor.h>

namespace lesseg {

// Global Context Learning (paper): L1 between the global-average-pooled student and global
// teacher (SwinUnet) features, averaged over batch and channels.
at::Tensor global_context_loss(const at::Tensor& student, const at::Tensor& teacher);

// Local Regional Learning (lesseg's reading): the same L1 on a grid x grid of region averages
// (adaptive average pooling) against the local teacher (ResUnet), averaged over batch, channels
// and regions.
at::Tensor local_regional_loss(const at::Tensor& student, const at::Tensor& teacher, int64_t grid);

// Discrepancy Learning (lesseg's formula): where the two teachers' argmaxes differ, the student is
// trained toward both labels, each weighted by that teacher's share of the two confidences:
//   L_dis = sum_{p : y_g(p) != y_l(p), not ignored} [ w_g CE(s_p, y_g) + w_l CE(s_p, y_l) ] / #not ignored,
//   w_g = c_g / (c_g + c_l), w_l = c_l / (c_g + c_l),
// with y_t, c_t the argmax and max of teacher t's softmax. The fused pseudo-label (mean softmax,
// threshold 0.95) drops exactly these pixels; this term keeps them, trusting neither teacher alone.
// student_logits, global_probs, local_probs: [B, C, H, W]; ignored [B, H, W] bool or undefined.
at::Tensor discrepancy_loss(const at::Tensor& student_logits, const at::Tensor& global_probs,
                            const at::Tensor& local_probs, const at::Tensor& ignored = {});

}  // namespace lesseg
