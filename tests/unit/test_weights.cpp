// Loading by name: finding the state dict in a checkpoint, prefixes, and the matched / missing /
// unexpected / shape-mismatched report that refuses partial loads.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/models/resnet.h"
#include "lesseg/models/weights.h"
#include "lesseg/models/zoo.h"

namespace lesseg {
namespace {

NamedTensors with_prefix(const NamedTensors& tensors, const std::string& prefix) {
  NamedTensors out;
  for (const auto& [name, t] : tensors) out.emplace_back(prefix + name, t.clone());
  return out;
}

NamedTensors source_weights() {
  torch::manual_seed(3);
  return module_tensors(*ResNet(ResNetOptions().depth(18)));
}

bool same_weights(torch::nn::Module& model, const NamedTensors& expected) {
  std::map<std::string, at::Tensor> ours;
  for (auto& [name, t] : module_tensors(model)) ours[name] = t;
  for (const auto& [name, t] : expected)
    if (!ours.count(name) || !torch::equal(ours[name], t)) return false;
  return true;
}

TEST(Weights, StripsTrainingWrapperPrefixesAndIgnoresOtherParts) {
  NamedTensors file = with_prefix(source_weights(), "teacher.backbone.");
  file.emplace_back("teacher.head.last_layer.weight_v", torch::ones({4, 2}));
  file.emplace_back("optimizer.state.0.exp_avg", torch::ones({3}));
  ResNet model(ResNetOptions().depth(18));
  WeightReport report = load_weights(*model, file, {}, "dino.pth");
  EXPECT_EQ(report.prefix, "teacher.backbone.");
  EXPECT_EQ(report.matched.size(), source_weights().size());
  EXPECT_EQ(report.ignored, 2u);
  EXPECT_TRUE(report.complete());
  EXPECT_TRUE(same_weights(*model, source_weights()));
}

TEST(Weights, TwoEquallyFittingSubDictsNeedAKey) {
  NamedTensors file = with_prefix(source_weights(), "student.module.backbone.");
  for (auto& named : with_prefix(source_weights(), "teacher.backbone.")) file.push_back(named);
  ResNet model(ResNetOptions().depth(18));
  try {
    load_weights(*model, file, {}, "dino.pth");
    FAIL() << "ambiguous file accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_NE(std::string(e.what()).find("--key"), std::string::npos) << e.what();
  }
  WeightOptions options;
  options.key = "student";
  EXPECT_EQ(load_weights(*model, file, options, "dino.pth").prefix, "student.module.backbone.");
  options.key = "nothing";
  EXPECT_THROW(load_weights(*model, file, options, "dino.pth"), Error);
}

TEST(Weights, PartialLoadsAreRefusedUnlessAllowed) {
  NamedTensors file = source_weights();
  file.erase(file.begin());                                    // conv1.weight missing
  file.back().second = torch::zeros({7});                      // a shape mismatch
  file.emplace_back("extra.weight", torch::zeros({2}));        // unexpected
  ResNet model(ResNetOptions().depth(18));
  const auto before = module_tensors(*model)[1].second.clone();
  try {
    load_weights(*model, file, {}, "partial.pth");
    FAIL() << "partial load accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.code(), ExitCode::bad_weights);
    for (const char* needle : {"partial.pth", "1 missing", "1 unexpected", "1 shape-mismatched", "conv1.weight", "extra.weight", "--allow-partial"})
      EXPECT_NE(message.find(needle), std::string::npos) << needle << " not in: " << message;
  }
  EXPECT_TRUE(torch::equal(module_tensors(*model)[1].second, before)) << "a refused load changed the model";
  WeightOptions options;
  options.allow_partial = true;
  WeightReport report = load_weights(*model, file, options, "partial.pth");
  EXPECT_EQ(report.missing, std::vector<std::string>{"conv1.weight"});
  EXPECT_EQ(report.mismatched.size(), 1u);
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"extra.weight"});
  EXPECT_TRUE(torch::equal(module_tensors(*model)[1].second, source_weights()[1].second));
}

TEST(Weights, ZooBuildsClassifiersSizedByTheFile) {
  NamedTensors file = with_prefix(module_tensors(*ResNet(ResNetOptions().depth(18).num_classes(37))), "module.");
  auto model = build_named_model("resnet18", file);
  EXPECT_TRUE(load_weights(*model, file, {}, "r18.pth").complete());
  EXPECT_THROW(build_named_model("resnet7"), Error);
}

}  // namespace
}  // namespace lesseg
