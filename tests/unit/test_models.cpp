// Model structure: torchvision key names and shapes, multi-scale features, decoders' outputs.
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/models/deeplabv2.h"
#include "lesseg/models/registry.h"
#include "lesseg/models/resnet.h"
#include "lesseg/models/swin.h"

namespace lesseg {
namespace {

// name -> "AxBxC" from a golden written by tools/make_goldens.py from torchvision.
std::map<std::string, std::string> torchvision_keys(const std::string& arch) {
  std::ifstream in(std::string(LESSEG_FIXTURES) + "/models/" + arch + "_keys.txt");
  EXPECT_TRUE(in.good()) << "missing golden for " << arch;
  std::map<std::string, std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    auto space = line.find(' ');
    keys[line.substr(0, space)] = line.substr(space + 1);
  }
  return keys;
}

std::string shape_text(const at::Tensor& t) {
  std::string out;
  for (int64_t i = 0; i < t.dim(); ++i) out += (i ? "x" : "") + std::to_string(t.size(i));
  return out;
}

class ResNetKeys : public ::testing::TestWithParam<int> {};

TEST_P(ResNetKeys, MatchTorchvisionStateDict) {
  const int depth = GetParam();
  ResNet model(ResNetOptions().depth(depth).num_classes(1000));
  auto expected = torchvision_keys("resnet" + std::to_string(depth));
  std::map<std::string, std::string> ours;
  for (auto& [name, tensor] : module_tensors(*model)) ours[name] = shape_text(tensor);
  EXPECT_EQ(ours, expected);
}
INSTANTIATE_TEST_SUITE_P(Depths, ResNetKeys, ::testing::Values(18, 50));

TEST(SwinKeys, MatchTorchvisionSwinT) {
  Swin model(swin_tiny().num_classes(1000));
  std::map<std::string, std::string> ours;
  int64_t parameters = 0;
  for (auto& [name, tensor] : module_tensors(*model)) ours[name] = shape_text(tensor);
  for (const auto& p : model->parameters()) parameters += p.numel();
  EXPECT_EQ(ours, torchvision_keys("swin_t"));
  EXPECT_EQ(parameters, 28288354);  // torchvision's swin_t num_params
}

TEST(Swin, FeatureStridesAndChannels) {
  Swin model(swin_tiny());
  model->eval();
  torch::NoGradGuard no_grad;
  for (auto [h, w] : {std::pair<int64_t, int64_t>{64, 96}, {100, 60}}) {
    auto features = model->features(torch::randn({1, 3, h, w}));
    auto specs = model->feature_specs();
    ASSERT_EQ(features.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(specs[i].stride, int64_t{4} << i);
      EXPECT_EQ(specs[i].channels, int64_t{96} << i);
      EXPECT_EQ(features[i].size(1), specs[i].channels);
      // Patch merging pads odd sizes: ceil division per stage.
      int64_t fh = h / 4, fw = w / 4;
      for (size_t k = 0; k < i; ++k) fh = (fh + 1) / 2, fw = (fw + 1) / 2;
      EXPECT_EQ(features[i].size(2), fh);
      EXPECT_EQ(features[i].size(3), fw);
    }
  }
}

TEST(ResNet, FeatureStridesAndDilation) {
  for (int os : {32, 16, 8}) {
    ResNet model(ResNetOptions().depth(18).output_stride(os));
    model->eval();
    auto features = model->features(torch::randn({1, 3, 64, 64}));
    auto specs = model->feature_specs();
    ASSERT_EQ(features.size(), specs.size());
    for (size_t i = 0; i < features.size(); ++i) {
      EXPECT_EQ(features[i].size(1), specs[i].channels);
      EXPECT_EQ(features[i].size(2), 64 / specs[i].stride) << "output stride " << os << " level " << i;
    }
    EXPECT_EQ(specs.back().stride, os);
  }
}

TEST(Segmenter, ResUnetAndDeepLabGiveFullResolutionLogits) {
  for (const char* arch : {"resunet", "deeplabv3plus"}) {
    ModelSpec spec;
    spec.arch = arch;
    spec.output_stride = std::string(arch) == "resunet" ? 32 : 16;
    spec.num_classes = 5;
    auto model = build_segmenter(spec);
    auto logits = model->forward(torch::randn({2, 3, 72, 96}));
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 5, 72, 96})) << arch;
  }
}

TEST(DeepLabV2, ResNetSegmenterGivesFullResolutionLogits) {
  ModelSpec spec;
  spec.arch = "deeplabv2";
  spec.output_stride = 8;
  spec.num_classes = 6;
  auto restored = model_spec_from_json(model_spec_to_json(spec));
  EXPECT_EQ(restored.arch, "deeplabv2");
  auto model = build_segmenter(restored);
  model->eval();
  torch::NoGradGuard no_grad;
  auto logits = model->forward(torch::randn({2, 3, 72, 96}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 6, 72, 96}));
  std::set<std::string> names;
  for (auto& [name, _] : module_tensors(*model)) names.insert(name);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(names.count("decoder.conv2d_list." + std::to_string(i) + ".bias"));
  EXPECT_FALSE(names.count("decoder.conv2d_list.4.weight"));
}

TEST(DeepLabV2, HeadIsTheSumOfFourDilatedBranches) {
  torch::manual_seed(0);
  DeepLabV2 head(DeepLabV2Options({{8, 16}}, 3));
  ASSERT_EQ(head->conv2d_list->size(), 4u);
  auto x = torch::randn({2, 16, 30, 40});
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> rates{6, 12, 18, 24};
  auto expected = torch::zeros({2, 3, 30, 40});
  for (size_t i = 0; i < 4; ++i) {
    auto* conv = head->conv2d_list->ptr<torch::nn::Conv2dImpl>(i).get();
    EXPECT_EQ(conv->weight.sizes(), (std::vector<int64_t>{3, 16, 3, 3}));
    // Each branch alone: a plain dilated convolution, padding = dilation (same size).
    auto branch = torch::conv2d(x, conv->weight, conv->bias, 1, rates[i], rates[i]);
    EXPECT_EQ(branch.sizes(), expected.sizes());
    expected += branch;
  }
  auto summed = head->logits(x);
  EXPECT_TRUE(torch::allclose(summed, expected, 1e-5, 1e-5));
  // Zeroing one branch removes exactly its contribution.
  auto* last = head->conv2d_list->ptr<torch::nn::Conv2dImpl>(3).get();
  auto last_branch = torch::conv2d(x, last->weight, last->bias, 1, 24, 24);
  last->weight.zero_();
  last->bias.zero_();
  EXPECT_TRUE(torch::allclose(head->logits(x), expected - last_branch, 1e-5, 1e-5));
  // decode() reads the deepest feature and resizes bilinearly to the requested size.
  auto out = head->decode({torch::randn({2, 4, 60, 80}), x}, 240, 320);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 3, 240, 320}));
}

TEST(Segmenter, BackboneKeysKeepTorchvisionNamesUnderPrefix) {
  ModelSpec spec;
  spec.num_classes = 3;
  auto model = build_segmenter(spec);
  std::set<std::string> names;
  for (auto& [name, _] : module_tensors(*model)) names.insert(name);
  EXPECT_TRUE(names.count("backbone.layer4.1.bn2.running_var"));
  EXPECT_TRUE(names.count("backbone.layer2.0.downsample.0.weight"));
  EXPECT_TRUE(names.count("decoder.classifier.weight"));
}

TEST(Segmenter, UnknownArchitectureIsAUsageError) {
  ModelSpec spec;
  spec.num_classes = 3;
  spec.arch = "segformer";
  EXPECT_THROW(build_segmenter(spec), Error);
  spec.arch = "resunet";
  spec.backbone = "resnet19";
  EXPECT_THROW(build_segmenter(spec), Error);
}

}  // namespace
}  // namespace lesseg
