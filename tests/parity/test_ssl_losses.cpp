// The self-supervised losses against their reference formulations (tools/parity/ssl_losses.py):
// DINO's loss and centre update as the official DINOLoss computes them, NT-Xent written the common
// way (positives as class 0 of a [positive | negatives] row).
#include "parity_util.h"

#include "lesseg/engine/ema.h"
#include "lesseg/methods/ssl/losses.h"

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

}  // namespace
}  // namespace lesseg
