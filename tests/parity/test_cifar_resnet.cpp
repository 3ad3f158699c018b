// A real legacy-format checkpoint (CIFAR-10 ResNet-20, `module.` prefixes, saved from CUDA) imports,
// and lesseg's network classifies real 32x32 images exactly as the Python reference does.
#include "parity_util.h"

#include "lesseg/models/cifar_resnet.h"
#include "lesseg/models/weights.h"

namespace lesseg {
namespace {

TEST(CifarResNetParity, LegacyCheckpointClassifiesAsPython) {
  const auto file = std::filesystem::path(LESSEG_SHARED_DATA) / "weights" / "resnet20-12fca82f.th";
  if (!std::filesystem::exists(file)) GTEST_SKIP() << file << " is missing";
  CifarResNet model(CifarResNetOptions().depth(20));
  WeightReport report = load_weights(*model, file, {});
  EXPECT_EQ(report.prefix, "state_dict.module.");
  EXPECT_EQ(report.matched.size(), 97u);
  EXPECT_EQ(report.defaulted, 19u);  // the 2018 file predates BatchNorm's num_batches_tracked
  EXPECT_TRUE(report.unexpected.empty() && report.missing.empty() && report.mismatched.empty()) << report.summary();
  model->eval();
  auto io = parity::reference_io("cifar_resnet20");
  torch::NoGradGuard no_grad;
  auto logits = model->forward(io["input"]);
  parity::expect_close(logits, io["logits"], "ResNet-20 logits");
  EXPECT_TRUE(torch::equal(logits.argmax(1), io["classes"])) << logits.argmax(1) << " vs " << io["classes"];
}

}  // namespace
}  // namespace lesseg
