// SwinUnet against a Python reference (tools/parity/swinunet.py: torchvision's Swin pieces + the
// Swin-Unet decoder written from the reference repository's facts), at a reduced width.
#include "parity_util.h"

#include "lesseg/engine/checkpoint.h"
#include "lesseg/models/swinunet.h"

namespace lesseg {
namespace {

TEST(SwinUnetParity, LogitsMatchReference) {
  auto encoder = SwinOptions().embed_dim(24).depths({2, 2, 2, 2}).num_heads({1, 2, 4, 8}).window_size(4);
  auto model = swin_unet(SwinUnetOptions(5).encoder(encoder).decoder_depths({2, 2, 2, 1}));
  load_module_tensors(*model, parity::reference_weights("swinunet_small"), parity::case_dir("swinunet_small"));
  model->eval();
  auto io = parity::reference_io("swinunet_small");
  torch::NoGradGuard no_grad;
  for (std::string suffix : {"", "_padded"}) {
    auto logits = model->forward(io["input" + suffix]);
    std::cout << "swinunet_small logits" << suffix << " max relative error "
              << parity::relative_error(logits, io["logits" + suffix]) << "\n";
    parity::expect_close(logits, io["logits" + suffix], "logits" + suffix);
  }
}

}  // namespace
}  // namespace lesseg
