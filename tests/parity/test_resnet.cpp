// torchvision ResNet-18 / ResNet-50 loaded by name: same logits and multi-scale features.
#include "parity_util.h"

#include "lesseg/engine/checkpoint.h"
#include "lesseg/models/resnet.h"

namespace lesseg {
namespace {

class ResNetParity : public ::testing::TestWithParam<int> {};

TEST_P(ResNetParity, LogitsAndFeaturesMatchTorchvision) {
  const std::string name = "resnet" + std::to_string(GetParam());
  ResNet model(ResNetOptions().depth(GetParam()).num_classes(1000));
  load_module_tensors(*model, parity::reference_weights(name), parity::case_dir(name));
  model->eval();
  auto io = parity::reference_io(name);
  torch::NoGradGuard no_grad;
  parity::expect_close(model->forward(io["input"]), io["logits"], name + " logits");
  auto features = model->features(io["input"]);  // strides 2, 4, 8, 16, 32
  ASSERT_EQ(features.size(), 5u);
  for (int level = 2; level <= 5; ++level)
    parity::expect_close(features[level - 1], io["c" + std::to_string(level)], name + " c" + std::to_string(level));
}
INSTANTIATE_TEST_SUITE_P(Depths, ResNetParity, ::testing::Values(18, 50));

}  // namespace
}  // namespace lesseg
