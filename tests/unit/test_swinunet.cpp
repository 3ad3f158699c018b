// SwinUnet: output shapes, torchvision swin_t names in the encoder, and a tiny configuration that learns.
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/engine/checkpoint.h"
#include "lesseg/models/registry.h"
#include "lesseg/models/swinunet.h"

namespace lesseg {
namespace {

// Same architecture at a small size: embed 16, window 4, shallow stages.
SwinUnetOptions tiny_swin_unet(int64_t classes) {
  return SwinUnetOptions(classes)
      .encoder(SwinOptions().embed_dim(16).depths({2, 2, 2, 2}).num_heads({1, 2, 4, 8}).window_size(4))
      .decoder_depths({2, 2, 2, 1});
}

TEST(SwinUnet, LogitsAtInputResolution) {
  torch::manual_seed(0);
  auto model = swin_unet(tiny_swin_unet(3));
  model->eval();
  torch::NoGradGuard no_grad;
  // Multiples of 32, and sizes the encoder must pad (and the decoder crop).
  for (auto [h, w] : {std::pair<int64_t, int64_t>{64, 96}, {32, 32}, {72, 100}}) {
    auto logits = model->forward(torch::randn({2, 3, h, w}));
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 3, h, w})) << h << "x" << w;
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  }
}

TEST(SwinUnet, RegistryBuildsSwinTinySwinUnet) {
  ModelSpec spec;
  spec.arch = "swinunet";
  spec.backbone = "swin_tiny";
  spec.num_classes = 4;
  auto restored = model_spec_from_json(model_spec_to_json(spec));
  EXPECT_EQ(restored.arch, "swinunet");
  EXPECT_EQ(restored.backbone, "swin_tiny");
  auto model = build_segmenter(restored);
  model->eval();
  torch::NoGradGuard no_grad;
  auto logits = model->forward(torch::randn({1, 3, 96, 128}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 4, 96, 128}));
  std::set<std::string> names;
  for (auto& [name, _] : module_tensors(*model)) names.insert(name);
  for (const char* name : {"backbone.features.0.0.weight", "backbone.features.7.1.attn.relative_position_index",
                           "backbone.norm.weight", "decoder.layers_up.0.upsample.expand.weight",
                           "decoder.layers_up.3.blocks.1.mlp.3.weight", "decoder.concat_back_dim.1.weight",
                           "decoder.norm_up.bias", "decoder.up.expand.weight", "decoder.output.weight"})
    EXPECT_TRUE(names.count(name)) << name;
  EXPECT_FALSE(names.count("decoder.layers_up.3.upsample.expand.weight"));
  spec.backbone = "resnet18";
  EXPECT_THROW(build_segmenter(spec), std::exception);
}

TEST(SwinUnet, TorchvisionSwinTWeightsLoadIntoTheEncoderByName) {
  // Every swin_t tensor but the classifier, with torchvision's names and shapes (golden from
  // tools/make_goldens.py), loads strictly into the encoder.
  std::ifstream in(std::string(LESSEG_FIXTURES) + "/models/swin_t_keys.txt");
  ASSERT_TRUE(in.good());
  torch::manual_seed(1);
  std::vector<std::pair<std::string, at::Tensor>> weights;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name, shape_text;
    fields >> name >> shape_text;
    if (name.rfind("head.", 0) == 0) continue;
    std::vector<int64_t> shape;
    std::istringstream dims(shape_text);
    for (std::string d; std::getline(dims, d, 'x');) shape.push_back(std::stoll(d));
    const bool index = name.find("relative_position_index") != std::string::npos;
    weights.emplace_back(name, index ? torch::randint(0, 169, shape, torch::kLong) : torch::randn(shape));
  }
  ASSERT_GT(weights.size(), 150u);
  auto model = swin_unet(SwinUnetOptions(2));
  load_module_tensors(model->backbone(), weights, "swin_t_keys.txt");  // strict: throws on any mismatch
  std::map<std::string, at::Tensor> loaded;
  for (auto& [name, tensor] : module_tensors(model->backbone())) loaded[name] = tensor;
  for (auto& [name, tensor] : weights) EXPECT_TRUE(torch::equal(loaded.at(name), tensor)) << name;
}

TEST(SwinUnet, TinyConfigurationOverfitsSyntheticImages) {
  torch::manual_seed(0);
  const int64_t size = 64, classes = 3;
  // Two images: a bright square (class 1) and a dark disc (class 2) on noise (class 0).
  auto images = torch::randn({2, 3, size, size}) * 0.3;
  auto labels = torch::zeros({2, size, size}, torch::kLong);
  auto ys = torch::arange(size).view({-1, 1}).expand({size, size});
  auto xs = torch::arange(size).view({1, -1}).expand({size, size});
  for (int64_t i = 0; i < 2; ++i) {
    auto square = (ys >= 8 + 16 * i) & (ys < 32 + 16 * i) & (xs >= 10) & (xs < 40);
    auto disc = ((ys - 44 + 20 * i).pow(2) + (xs - 46).pow(2)) < 100;
    images[i].masked_fill_(square.unsqueeze(0).expand({3, size, size}), 1.5);
    images[i].masked_fill_(disc.unsqueeze(0).expand({3, size, size}), -1.5);
    labels[i].masked_fill_(square, 1);
    labels[i].masked_fill_(disc, 2);
  }
  auto model = swin_unet(tiny_swin_unet(classes));
  model->train();
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0.0));
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    auto loss = torch::nn::functional::cross_entropy(model->forward(images), labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  std::cout << "SwinUnet tiny: loss " << first << " -> " << last << "\n";
  EXPECT_LT(last, 0.25 * first);
}

}  // namespace
}  // namespace lesseg
