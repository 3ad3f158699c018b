// torchvision swin_t loaded by name: same logits and stage outputs, at 224x224 and at 160x192
// (stage maps that are not window multiples: padding, and no shift where one window covers the map).
#include "parity_util.h"

#include "lesseg/engine/checkpoint.h"
#include "lesseg/models/swin.h"

namespace lesseg {
namespace {

TEST(SwinParity, LogitsAndStagesMatchTorchvision) {
  Swin model(swin_tiny().num_classes(1000));
  load_module_tensors(*model, parity::reference_weights("swin_t"), parity::case_dir("swin_t"));  // strict
  model->eval();
  auto io = parity::reference_io("swin_t");
  torch::NoGradGuard no_grad;
  for (std::string suffix : {"", "_small"}) {
    const auto& input = io["input" + suffix];
    auto logits = model->forward(input);
    std::cout << "swin_t" << suffix << " logits max relative error "
              << parity::relative_error(logits, io["logits" + suffix]) << "\n";
    parity::expect_close(logits, io["logits" + suffix], "logits" + suffix);
    auto stages = model->features(input);
    ASSERT_EQ(stages.size(), 4u);
    for (int level = 1; level <= 4; ++level) {
      const std::string key = "stage" + std::to_string(level) + suffix;
      std::cout << "swin_t " << key << " max relative error "
                << parity::relative_error(stages[level - 1], io[key]) << "\n";
      parity::expect_close(stages[level - 1], io[key], key);
    }
  }
}

}  // namespace
}  // namespace lesseg
