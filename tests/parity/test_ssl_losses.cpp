// The self-supervised losses against their reference formulations (tools/parity/ssl_losses.py):
// DINO's loss and centre update as the official DINOLoss computes them, NT-Xent written the common
// way (positives as class 0 of a [positive | negatives] row).
#include "parity_util.h"

#include "lesseg/engine/ema.h"
#include "lesseg/methods/ssl/losses.h"

#include <cmath>

namespace lesseg {
namespace {

TEST(SslLossParity, DinoLossAndCentreMatchTheOfficialFormula) {
  auto io = parity::reference_io("ssl_losses");
  const int64_t k = io["dino.center"].size(1);
  DinoLoss loss(k, 0.1, 0.9);
  loss->center.copy_(io["dino.center"]);
  auto student = io["dino.student"].chunk(4), teacher = io["dino.teacher"].chunk(2);
  auto value = loss->forward(student, teacher, 0.04);
  parity::expect_close(value.reshape(1), io["dino.loss"], "DINO loss");
  parity::expect_close(loss->center, io["dino.new_center"], "DINO centre after the update");
}

TEST(SslLossParity, NtXentMatchesTheReference) {
  auto io = parity::reference_io("ssl_losses");
  parity::expect_close(nt_xent(io["nt_xent.a"], io["nt_xent.b"], 0.5).reshape(1), io["nt_xent.loss_t0.5"], "NT-Xent t=0.5");
  parity::expect_close(nt_xent(io["nt_xent.a"], io["nt_xent.b"], 0.07).reshape(1), io["nt_xent.loss_t0.07"], "NT-Xent t=0.07");
  // two views: the multi-crop form is plain NT-Xent
  auto multi = multi_view_nt_xent({io["nt_xent.a"], io["nt_xent.b"]}, 2, 0.5);
  parity::expect_close(multi.reshape(1), io["nt_xent.loss_t0.5"], "multi-view NT-Xent, 2 views");
}

TEST(SslLossParity, EmaMomentumFollowsDinoCosineSchedule) {
  // ref: dino utils.cosine_scheduler(0.996, 1, epochs, iters): base at 0, 1 at the end
  EXPECT_DOUBLE_EQ(ema_momentum(0.996, 0, 100), 0.996);
  EXPECT_NEAR(ema_momentum(0.996, 50, 100), 0.998, 1e-12);
  EXPECT_DOUBLE_EQ(ema_momentum(0.996, 100, 100), 1.0);
}

// The collapse diagnostics on the two collapses DINO guards against and on a healthy batch.
TEST(SslDiagnostics, DinoSeesBothCollapses) {
  const int64_t b = 8, k = 16;
  auto zeros = torch::zeros({1, k});
  // uniform: every teacher row equal -> entropy log K for each image and for the batch mean
  auto uniform = dino_diagnostics(torch::zeros({b, k}), torch::zeros({b, k}), zeros, 0.04, 0.1);
  EXPECT_NEAR(uniform.teacher_entropy, std::log(double(k)), 1e-5);
  EXPECT_NEAR(uniform.teacher_batch_entropy, std::log(double(k)), 1e-5);
  EXPECT_NEAR(uniform.kl_teacher_student, 0.0, 1e-6);
  // one prototype for every image -> both entropies 0
  auto one_hot = torch::zeros({b, k});
  one_hot.select(1, 3).fill_(10.0);
  auto dominant = dino_diagnostics(one_hot, one_hot, zeros, 0.04, 0.04);
  EXPECT_NEAR(dominant.teacher_entropy, 0.0, 1e-5);
  EXPECT_NEAR(dominant.teacher_batch_entropy, 0.0, 1e-5);
  EXPECT_NEAR(dominant.kl_teacher_student, 0.0, 1e-5);
  // a different confident prototype per image: sharp per image, spread over the batch
  auto spread = 10.0 * torch::eye(k).narrow(0, 0, b);
  auto healthy = dino_diagnostics(spread, torch::zeros({b, k}), zeros, 0.04, 0.1);
  EXPECT_NEAR(healthy.teacher_entropy, 0.0, 1e-5);
  EXPECT_NEAR(healthy.teacher_batch_entropy, std::log(double(b)), 1e-5);
  EXPECT_NEAR(healthy.kl_teacher_student, std::log(double(k)), 1e-4);  // sharp teacher vs uniform student
  // the centre is subtracted before the softmax: centring away the dominant logit restores uniformity
  auto centred = dino_diagnostics(one_hot, one_hot, one_hot.narrow(0, 0, 1), 0.04, 0.04);
  EXPECT_NEAR(centred.teacher_entropy, std::log(double(k)), 1e-5);
  // SimCLR: all projections equal -> 0; 16 orthogonal unit rows -> 0.25 (a one among 15 zeros per dim)
  EXPECT_NEAR(normalized_feature_std(torch::ones({b, k})), 0.0, 1e-6);
  EXPECT_GT(normalized_feature_std(torch::eye(k)), 0.2);
}

}  // namespace
}  // namespace lesseg
