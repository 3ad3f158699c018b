// ViT with DINO key names against tools/parity/dino_vit.py (random weights, loaded by name):
// final tokens, every block's tokens, last-block q/k/v and attention (the CLS maps), the
// interpolated position embedding on other grids, and the backbone feature map.
#include "parity_util.h"

#include "lesseg/engine/checkpoint.h"
#include "lesseg/models/heads.h"
#include "lesseg/models/mae_decoder.h"
#include "lesseg/models/vit.h"

namespace lesseg {
namespace {

// expect_close, and the measured error on stdout so the first divergence is easy to find.
void check(const at::Tensor& ours, const at::Tensor& reference, const std::string& what) {
  parity::expect_close(ours, reference, what);
  if (ours.sizes() == reference.sizes())
    std::printf("  %-36s max rel err %.2e\n", what.c_str(), parity::relative_error(ours, reference));
}

void expect_vit_matches(VitImpl& model, std::map<std::string, at::Tensor>& io, const std::string& prefix,
                        const std::string& name) {
  const auto what = name + " " + (prefix.empty() ? "square" : "rect");
  const auto& x = io[prefix + "input"];
  check(model.position_embedding(x.size(2), x.size(3)), io[prefix + "pos"], what + " pos_embed");
  auto out = model.forward_tokens(x, VitForwardOptions().block_tokens(true).last_qkv(true).last_attention(true));
  check(out.tokens, io[prefix + "tokens"], what + " tokens");
  ASSERT_EQ(static_cast<int64_t>(out.block_tokens.size()), io[prefix + "blocks"].size(0));
  double worst = 0.0;
  for (size_t i = 0; i < out.block_tokens.size(); ++i) {
    const auto& reference = io[prefix + "blocks"][static_cast<int64_t>(i)];
    parity::expect_close(out.block_tokens[i], reference, what + " block " + std::to_string(i));
    worst = std::max(worst, parity::relative_error(out.block_tokens[i], reference));
  }
  std::printf("  %-36s max rel err %.2e\n", (what + " all blocks").c_str(), worst);
  check(out.q, io[prefix + "q"], what + " q");
  check(out.k, io[prefix + "k"], what + " k");
  check(out.v, io[prefix + "v"], what + " v");
  check(out.attention, io[prefix + "attn"], what + " attention");
  check(out.attention.select(2, 0).narrow(2, 1, out.grid_h * out.grid_w), io[prefix + "cls_attn"],
                       what + " CLS attention");
  check(model.forward(x), io[prefix + "tokens"].select(1, 0), what + " forward (CLS)");
  auto features = model.features(x);
  ASSERT_EQ(features.size(), 1u);
  check(features[0], io[prefix + "features"], what + " features");
}

class VitParity : public ::testing::TestWithParam<int> {};

TEST_P(VitParity, TokensAttentionAndInterpolationMatchReference) {
  const int patch = GetParam();
  const std::string name = "vit_small" + std::to_string(patch);
  Vit model(vit_small(patch));
  load_module_tensors(*model, parity::reference_weights(name), parity::case_dir(name));
  model->eval();
  auto io = parity::reference_io(name);
  torch::NoGradGuard no_grad;
  expect_vit_matches(*model, io, "", name);       // trained grid: pos_embed used as is
  expect_vit_matches(*model, io, "rect_", name);  // other grid: DINO's bicubic interpolation
}
INSTANTIATE_TEST_SUITE_P(Patches, VitParity, ::testing::Values(16, 8));

// One MAE checkpoint holds encoder and decoder keys; each module takes its own, strictly.
std::pair<std::vector<std::pair<std::string, at::Tensor>>, std::vector<std::pair<std::string, at::Tensor>>>
split_mae(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::vector<std::pair<std::string, at::Tensor>> encoder, decoder;
  for (const auto& entry : tensors) {
    const bool dec = entry.first.rfind("decoder_", 0) == 0 || entry.first == "mask_token";
    (dec ? decoder : encoder).push_back(entry);
  }
  return {encoder, decoder};
}

TEST(MaeParity, MaskedEncodingDecoderAndLossMatchReference) {
  const std::string name = "mae_vit_tiny16";
  auto encoder_options = vit_tiny(16).pos_embed(PosEmbedKind::sincos);
  Vit encoder(encoder_options);
  MaeDecoder decoder(mae_decoder_for(encoder_options).depth(2));  // width 512, 16 heads; 2 of 8 blocks
  auto io = parity::reference_io(name);
  // the fixed sin-cos tables lesseg computes itself (before loading) equal MAE's
  check(encoder->pos_embed, io["pos_embed"], name + " sincos pos_embed");
  check(decoder->decoder_pos_embed, io["decoder_pos_embed"], name + " sincos decoder_pos_embed");
  auto [encoder_weights, decoder_weights] = split_mae(parity::reference_weights(name));
  load_module_tensors(*encoder, encoder_weights, parity::case_dir(name));
  load_module_tensors(*decoder, decoder_weights, parity::case_dir(name));
  encoder->eval();
  decoder->eval();
  torch::NoGradGuard no_grad;
  auto encoded = encoder->forward_masked(io["input"], 0.75, io["noise"]);
  EXPECT_TRUE(torch::equal(encoded.ids_restore, io["ids_restore"])) << "ids_restore";
  EXPECT_TRUE(torch::equal(encoded.mask, io["mask"])) << "mask";
  check(encoded.latent, io["latent"], name + " latent");
  auto pred = decoder->forward(encoded.latent, encoded.ids_restore, encoded.grid_h, encoded.grid_w);
  check(pred, io["pred"], name + " decoder prediction");
  check(patchify(io["input"], 16), io["patches"], name + " patchify");
  EXPECT_TRUE(torch::equal(unpatchify(io["patches"], 16, 14, 14), io["input"])) << "unpatchify";
  check(mae_loss(io["input"], pred, encoded.mask, 16).reshape({1}), io["loss"], name + " loss (norm_pix)");
  check(mae_loss(io["input"], pred, encoded.mask, 16, false).reshape({1}), io["loss_raw"], name + " loss (raw)");
  // another grid: the sin-cos table of that grid
  check(encoder->position_embedding(96, 128), io["rect_pos"], name + " rect sincos pos_embed");
  check(encoder->forward_tokens(io["rect_input"]).tokens, io["rect_tokens"], name + " rect tokens");
}

TEST(HeadParity, DinoHeadMatchesReference) {
  DinoHead head(DinoHeadOptions().in_dim(384).out_dim(4096));
  load_module_tensors(*head, parity::reference_weights("dino_head"), parity::case_dir("dino_head"));
  head->eval();
  auto io = parity::reference_io("dino_head");
  torch::NoGradGuard no_grad;
  check(head->forward(io["input"]), io["output"], "dino_head output");
}

TEST(HeadParity, SimclrProjectionMatchesReference) {
  ProjectionHead head(ProjectionHeadOptions().in_dim(2048).hidden_dim(2048).out_dim(128));
  load_module_tensors(*head, parity::reference_weights("simclr_head"), parity::case_dir("simclr_head"));
  auto io = parity::reference_io("simclr_head");
  torch::NoGradGuard no_grad;
  head->eval();
  check(head->forward(io["input"]), io["output_eval"], "simclr_head eval output");
  head->train();
  check(head->forward(io["input"]), io["output_train"], "simclr_head train output (batch stats)");
}

}  // namespace
}  // namespace lesseg
