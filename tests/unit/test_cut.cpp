// CUT, the trained stylizer: sizes, parameter counts and key names of the official networks, the
// PatchNCE and LSGAN losses against hand-computed values, and each player learning against the
// other held still.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "lesseg/models/cut.h"

namespace lesseg {
namespace {

int64_t count(torch::nn::Module& m) {
  int64_t n = 0;
  for (auto& p : m.parameters()) n += p.numel();
  return n;
}

TEST(Cut, NetworksHaveTheOfficialSizesAndNames) {
  CutGenerator g;
  PatchDiscriminator d;
  // CycleGAN / CUT print 11.378 M for resnet_9blocks and 2.765 M for the 3-layer PatchGAN.
  EXPECT_NEAR(double(count(*g)) / 1e6, 11.378, 0.0005);
  EXPECT_NEAR(double(count(*d)) / 1e6, 2.765, 0.0005);
  auto names = g->named_parameters();
  for (const char* key : {"model.1.weight", "model.1.bias", "model.4.weight", "model.12.conv_block.1.weight",
                          "model.12.conv_block.5.weight", "model.22.weight", "model.30.weight"})
    EXPECT_NE(names.find(key), nullptr) << key;
  EXPECT_NE(g->named_buffers().find("model.7.filt"), nullptr);
  g->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::rand({1, 3, 64, 48}) * 2 - 1;
  auto y = g->forward(x);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_LE(y.abs().max().item<double>(), 1.0);
  auto features = g->encode(x);
  ASSERT_EQ(features.size(), 5u);
  const auto channels = g->encoder_channels();
  const int64_t sides[] = {70, 64, 32, 16, 16};  // the padded input, then full, 1/2, 1/4, 1/4 height
  for (size_t l = 0; l < 5; ++l) {
    EXPECT_EQ(features[l].size(1), channels[l]) << l;
    EXPECT_EQ(features[l].size(2), sides[l]) << l;
  }
  EXPECT_EQ(d->forward(x).size(1), 1);
}

TEST(Cut, PatchNceMatchesHandComputedValues) {
  // One image, two patches: q = k = the unit axes, tau 1. Row i: [q_i.k_i, q_i.k_0, q_i.k_1] with
  // the own-key negative set to -10: row 0 = [1, -10, 0], row 1 = [1, 0, -10].
  auto q = torch::tensor({1.0f, 0.0f, 0.0f, 1.0f}).view({2, 2});
  auto loss = patch_nce_loss(q, q, 1, 1.0);
  const double expected = -std::log(std::exp(1.0) / (std::exp(1.0) + std::exp(-10.0) + std::exp(0.0)));
  ASSERT_EQ(loss.numel(), 2);
  EXPECT_NEAR(loss[0].item<double>(), expected, 1e-6);
  EXPECT_NEAR(loss[1].item<double>(), expected, 1e-6);
  // Swapped keys: the positive is orthogonal, the negative aligned: row 0 = [0, -10, 1] / 0.5.
  auto swapped = torch::tensor({0.0f, 1.0f, 1.0f, 0.0f}).view({2, 2});
  const double hard = -std::log(1.0 / (1.0 + std::exp(-20.0) + std::exp(2.0)));
  EXPECT_NEAR(patch_nce_loss(q, swapped, 1, 0.5)[0].item<double>(), hard, 1e-5);
  // Two images: negatives come from the same image only, so each image alone gives the same values.
  auto both = torch::cat({q, q});
  EXPECT_TRUE(torch::allclose(patch_nce_loss(both, both, 2, 1.0), torch::cat({loss, loss})));
  EXPECT_NEAR(lsgan_loss(torch::tensor({0.5f, 1.0f}), true).item<double>(), 0.125, 1e-7);
  EXPECT_NEAR(lsgan_loss(torch::tensor({0.5f, 1.0f}), false).item<double>(), 0.625, 1e-7);
}

TEST(Cut, EachPlayerLearnsAgainstTheOtherHeldStill) {
  torch::manual_seed(0);
  CutGenerator g(CutGeneratorOptions().ngf(8).blocks(5));
  PatchDiscriminator d(8);
  PatchSampler f(g->encoder_channels(), 32);
  // Source: dark-red squares on grey; target: the same layouts in bright blue on yellow.
  auto source = torch::full({4, 3, 32, 32}, 0.0f), target = torch::full({4, 3, 32, 32}, 0.0f);
  for (int64_t b = 0; b < 4; ++b) {
    const int64_t o = 4 + 4 * b;
    source[b].fill_(0.0f);
    source[b][0].slice(0, o, o + 12).slice(1, o, o + 12).fill_(-0.4f);
    target[b][0].fill_(0.8f), target[b][1].fill_(0.8f), target[b][2].fill_(-0.8f);
    target[b][2].slice(0, o, o + 12).slice(1, o, o + 12).fill_(0.9f);
  }
  // The discriminator, the generator fixed: its LSGAN loss falls.
  torch::optim::Adam opt_d(d->parameters(), torch::optim::AdamOptions(2e-4 * 5).betas({0.5, 0.999}));
  torch::Tensor fake;
  {
    torch::NoGradGuard no_grad;
    fake = g->forward(source);
  }
  auto d_loss = [&] { return 0.5 * (lsgan_loss(d->forward(target), true) + lsgan_loss(d->forward(fake), false)); };
  const double d_start = d_loss().item<double>();
  for (int step = 0; step < 30; ++step) {
    opt_d.zero_grad();
    d_loss().backward();
    opt_d.step();
  }
  EXPECT_LT(d_loss().item<double>(), 0.5 * d_start);
  // The generator (and the patch heads), the discriminator fixed: LSGAN + PatchNCE falls.
  for (auto& p : d->parameters()) p.set_requires_grad(false);
  std::vector<torch::Tensor> params = g->parameters();
  for (auto& p : f->parameters()) params.push_back(p);
  torch::optim::Adam opt_g(params, torch::optim::AdamOptions(2e-3).betas({0.5, 0.999}));
  auto g_loss = [&] {
    torch::manual_seed(1);  // the same patches each time
    std::vector<torch::Tensor> ids;
    auto k = f->forward(g->encode(source), 16, ids);
    auto generated = g->forward(source);
    auto q = f->forward(g->encode(generated), 16, ids);
    torch::Tensor nce = torch::zeros({});
    for (size_t l = 0; l < q.size(); ++l) nce = nce + patch_nce_loss(q[l], k[l], 4).mean();
    return lsgan_loss(d->forward(generated), true) + nce / double(q.size());
  };
  const double g_start = g_loss().item<double>();
  for (int step = 0; step < 30; ++step) {
    opt_g.zero_grad();
    g_loss().backward();
    opt_g.step();
  }
  EXPECT_LT(g_loss().item<double>(), 0.8 * g_start);
}

}  // namespace
}  // namespace lesseg
