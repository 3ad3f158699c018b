#pragma once
// The self-supervised objectives: SimCLR's NT-Xent and DINO's self-distillation cross-entropy.
#include <vector>

#include <torch/nn/module.h>

#include "lesseg/engine/distributed.h"

namespace lesseg {

// ref: SimCLR (Chen et al. 2020) eq. 1. a, b [N, D] are the projections of two views of the same N
// images; each of the 2N views has its other view as positive and the 2N-2 others as negatives.
torch::Tensor nt_xent(const torch::Tensor& a, const torch::Tensor& b, double temperature);

// Multi-crop NT-Xent: the mean of nt_xent over the pairs (global view i, any other view j > i),
// so with two views it is plain NT-Xent. views [V] x [N, D], the first num_global are global.
torch::Tensor multi_view_nt_xent(const std::vector<torch::Tensor>& views, int64_t num_global, double temperature);

// ref: facebookresearch/dino main_dino.py DINOLoss. Holds the teacher centre (a buffer, so
// checkpoints keep it).
class DinoLossImpl : public torch::nn::Module {
 public:
  DinoLossImpl(int64_t out_dim, double student_temp, double center_momentum);
  // student: every crop's head output [B, K] (globals first); teacher: the global crops' outputs.
  // The mean over (teacher crop, different student crop) pairs of the cross-entropy between
  // softmax((t - center) / teacher_temp) and log_softmax(s / student_temp). Updates the centre.
  torch::Tensor forward(const std::vector<torch::Tensor>& student, const std::vector<torch::Tensor>& teacher,
                        double teacher_temp, Distributed* dist = nullptr);
  torch::Tensor center;

 private:
  void update_center(const std::vector<torch::Tensor>& teacher, Distributed* dist);
  double student_temp_, center_momentum_;
};
TORCH_MODULE(DinoLoss);

// Collapse diagnostics on one batch (ref: DINO paper section 5.3, SimSiam section 4.1).
struct DinoDiagnostics {
  double teacher_entropy = 0;        // mean entropy of the teacher's distributions: log K when uniform
  double teacher_batch_entropy = 0;  // entropy of their batch mean: 0 when every image picks one prototype
  double kl_teacher_student = 0;     // KL(P_teacher || P_student), 0 under either collapse
};
// teacher: one global crop's teacher outputs [B, K]; student: the student's outputs on another crop
// of the same images; `center` as before this step's update.
DinoDiagnostics dino_diagnostics(const torch::Tensor& teacher, const torch::Tensor& student, const torch::Tensor& center,
                                 double teacher_temp, double student_temp);

// The standard deviation over the batch of L2-normalized projections [B, D], averaged over the
// dimensions: 0 when collapsed to one point, about 1 / sqrt(D) when spread over the sphere.
double normalized_feature_std(const torch::Tensor& z);

}  // namespace lesseg
