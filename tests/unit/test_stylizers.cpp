// The fast stylizers: AdaIN statistics move each channel to the target's mean and spread; the
// factory and the batch pairing (source i takes target i % M, resized) work on image batches.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/methods/uda/stylizers.h"

namespace lesseg {
namespace {

TEST(Stylizer, AdainTakesTheTargetChannelStatistics) {
  torch::manual_seed(0);
  const at::Tensor source = torch::rand({2, 3, 12, 10}, torch::kFloat64);
  const at::Tensor target = torch::rand({2, 3, 12, 10}, torch::kFloat64) * 0.3 + 0.5;
  const at::Tensor out = adain_transfer(source, target, 1.0);
  EXPECT_TRUE(torch::allclose(out.mean({2, 3}), target.mean({2, 3}), 1e-9, 1e-9));
  EXPECT_TRUE(torch::allclose(out.std({2, 3}, false), target.std({2, 3}, false), 1e-3, 1e-4));
  EXPECT_TRUE(torch::allclose(adain_transfer(source, target, 0.0), source));
  EXPECT_THROW(adain_transfer(source, target, 1.5), Error);
}

TEST(Stylizer, FastStylizersPairEachSourceWithATargetAndStayInRange) {
  torch::manual_seed(0);
  const at::Tensor source = torch::rand({3, 3, 24, 32});
  const at::Tensor target = torch::rand({2, 3, 20, 20}) * 0.2;  // dark, another size
  for (const char* name : {"fda", "adain"}) {
    auto stylizer = make_fast_stylizer({name, 0.05, 1.0});
    EXPECT_EQ(stylizer->name(), name);
    const at::Tensor out = stylizer->stylize(source, target);
    ASSERT_EQ(out.sizes(), source.sizes()) << name;
    EXPECT_GE(out.min().item<float>(), 0.0f) << name;
    EXPECT_LE(out.max().item<float>(), 1.0f) << name;
    EXPECT_LT(out.mean().item<float>(), source.mean().item<float>() - 0.2f) << name << ": darker, like the target";
  }
  // Pairing: source i takes target i mod 2 (constant targets: AdaIN moves each image to its colour).
  const at::Tensor flat = torch::stack({torch::full({3, 8, 8}, 0.2), torch::full({3, 8, 8}, 0.7)});
  const at::Tensor paired = make_fast_stylizer({"adain", 0.0, 1.0})->stylize(source, flat).mean({1, 2, 3});
  EXPECT_NEAR(paired[0].item<float>(), 0.2f, 1e-4);
  EXPECT_NEAR(paired[1].item<float>(), 0.7f, 1e-4);
  EXPECT_NEAR(paired[2].item<float>(), 0.2f, 1e-4);
  EXPECT_THROW(make_fast_stylizer({"cyclegan", 0.01, 1.0}), Error);
  EXPECT_THROW(make_fast_stylizer({"fda", 0.7, 1.0}), Error);
}

}  // namespace
}  // namespace lesseg
