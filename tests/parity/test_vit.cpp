// ViT with DINO key names against tools/parity/dino_vit.py (random weights, loaded by name):
// final tokens, every block's tokens, last-block q/k/v and attention (the CLS maps), the
// interpolated position embedding on other grids, and the backbone feature map.
#include "parity_util.h"

#include "lesseg/engine/checkpoint.h"
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

}  // namespace
}  // namespace lesseg
