// ViT, MAE decoder and SSL heads: DINO / MAE key names and shapes, parameter counts of the presets,
// the backbone feature map, MAE masking counts, and freezing the DINO head's last layer.
#include <cmath>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/models/heads.h"
#include "lesseg/models/mae_decoder.h"
#include "lesseg/models/registry.h"
#include "lesseg/models/vit.h"
#include "lesseg/models/zoo.h"

namespace lesseg {
namespace {

std::map<std::string, std::vector<int64_t>> shapes(const torch::nn::Module& module) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& [name, tensor] : module_tensors(module)) out[name] = tensor.sizes().vec();
  return out;
}

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

using Shape = std::vector<int64_t>;

TEST(VitModel, SmallPatch16HasDinoKeysAndShapes) {
  Vit model(vit_small(16));
  auto keys = shapes(*model);
  EXPECT_EQ(keys.size(), 4u + 12u * 12u + 2u);
  EXPECT_EQ(keys.at("cls_token"), (Shape{1, 1, 384}));
  EXPECT_EQ(keys.at("pos_embed"), (Shape{1, 197, 384}));
  EXPECT_EQ(keys.at("patch_embed.proj.weight"), (Shape{384, 3, 16, 16}));
  EXPECT_EQ(keys.at("patch_embed.proj.bias"), (Shape{384}));
  for (int i : {0, 11}) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    EXPECT_EQ(keys.at(b + "norm1.weight"), (Shape{384}));
    EXPECT_EQ(keys.at(b + "norm1.bias"), (Shape{384}));
    EXPECT_EQ(keys.at(b + "attn.qkv.weight"), (Shape{1152, 384}));
    EXPECT_EQ(keys.at(b + "attn.qkv.bias"), (Shape{1152}));
    EXPECT_EQ(keys.at(b + "attn.proj.weight"), (Shape{384, 384}));
    EXPECT_EQ(keys.at(b + "attn.proj.bias"), (Shape{384}));
    EXPECT_EQ(keys.at(b + "norm2.weight"), (Shape{384}));
    EXPECT_EQ(keys.at(b + "mlp.fc1.weight"), (Shape{1536, 384}));
    EXPECT_EQ(keys.at(b + "mlp.fc1.bias"), (Shape{1536}));
    EXPECT_EQ(keys.at(b + "mlp.fc2.weight"), (Shape{384, 1536}));
    EXPECT_EQ(keys.at(b + "mlp.fc2.bias"), (Shape{384}));
  }
  EXPECT_EQ(keys.count("blocks.12.norm1.weight"), 0u);
  EXPECT_EQ(keys.at("norm.weight"), (Shape{384}));
  EXPECT_EQ(keys.count("head.weight"), 0u);
  EXPECT_EQ(parameter_count(*model), 21665664);  // DINO's "21M" ViT-S/16 (21.7 M)
}

TEST(VitModel, PresetSizes) {
  EXPECT_EQ(parameter_count(*Vit(vit_tiny(16))), 5524416);    // DeiT-Ti 5.7 M with its 1000-class head
  EXPECT_EQ(parameter_count(*Vit(vit_small(8))), 21665664 - 197 * 384 + 785 * 384 - 384 * 3 * (256 - 64));
  EXPECT_EQ(parameter_count(*Vit(vit_base(16))), 85798656);   // ViT-B/16 86 M
  Vit classifier(vit_tiny(16).num_classes(10));
  auto keys = shapes(*classifier);
  EXPECT_EQ(keys.at("head.weight"), (Shape{10, 192}));
  EXPECT_EQ(keys.at("head.bias"), (Shape{10}));
  EXPECT_EQ(classifier->classify(torch::randn({2, 3, 32, 48})).sizes(), (Shape{2, 10}));
}

TEST(VitModel, ZooBuildsVitsWithTheFilesHead) {
  auto headless = build_named_model("vit_small16");
  EXPECT_EQ(shapes(*headless).count("head.weight"), 0u);
  auto classifier = build_named_model("vit_tiny8", {{"head.weight", torch::zeros({7, 192})}});
  EXPECT_EQ(shapes(*classifier).at("head.weight"), (Shape{7, 192}));
  EXPECT_EQ(shapes(*classifier).at("pos_embed"), (Shape{1, 785, 192}));
}

TEST(VitModel, SincosPositionEmbeddingIsAFixedBufferUnderTheSameKey) {
  Vit model(vit_tiny(16).pos_embed(PosEmbedKind::sincos));
  auto keys = shapes(*model);
  EXPECT_EQ(keys.at("pos_embed"), (Shape{1, 197, 192}));
  EXPECT_EQ(parameter_count(*model), 5524416 - 197 * 192);
  // zero CLS row; row 1 is position (0, 0): sin 0 = 0 then cos 0 = 1 in each half
  auto pos = model->pos_embed;
  EXPECT_EQ(pos[0][0].abs().max().item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(pos[0][1][0].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(pos[0][1][48].item<float>(), 1.0f);
  // another grid gets its own table, whose first rows match the trained grid's first row
  auto other = model->position_embedding(64, 96);
  EXPECT_EQ(other.sizes(), (Shape{1, 1 + 4 * 6, 192}));
  EXPECT_TRUE(torch::allclose(other[0].narrow(0, 1, 4), pos[0].narrow(0, 1, 4)));
}

TEST(VitModel, BackboneFeaturesArePatchTokensAtStridePatch) {
  ModelSpec spec;
  spec.backbone = "vit_small8";
  auto backbone = build_backbone(spec);
  ASSERT_EQ(backbone->feature_specs().size(), 1u);
  EXPECT_EQ(backbone->feature_specs()[0].stride, 8);
  EXPECT_EQ(backbone->feature_specs()[0].channels, 384);
  Vit model(vit_tiny(16));
  model->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 64, 96});
  auto features = model->features(x);
  ASSERT_EQ(features.size(), 1u);
  EXPECT_EQ(features[0].sizes(), (Shape{2, 192, 4, 6}));
  auto out = model->forward_tokens(x, VitForwardOptions().block_tokens(true).last_qkv(true).last_attention(true));
  EXPECT_EQ(out.tokens.sizes(), (Shape{2, 25, 192}));
  EXPECT_EQ(out.block_tokens.size(), 12u);
  EXPECT_EQ(out.k.sizes(), (Shape{2, 3, 25, 64}));
  EXPECT_EQ(out.attention.sizes(), (Shape{2, 3, 25, 25}));
  EXPECT_TRUE(torch::allclose(out.attention.sum(-1), torch::ones({2, 3, 25}), 1e-5, 1e-5));
  // the patch map is the patch tokens in row-major order
  EXPECT_TRUE(torch::equal(features[0][1].select(1, 2).select(1, 5), out.tokens[1][1 + 2 * 6 + 5]));
  for (const std::string bad : {"vit_small", "vit_huge14", "vit_smallx", "vit_small15"})
    EXPECT_THROW(build_backbone(ModelSpec{"resunet", bad}), Error) << bad;
}

TEST(VitModel, MaskingKeepsTheSameNumberOfPatchesPerSample) {
  Vit model(vit_tiny(16).pos_embed(PosEmbedKind::sincos));
  model->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({3, 3, 224, 224});
  for (double ratio : {0.75, 0.5, 0.6, 0.0}) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(7);
    auto encoded = model->forward_masked(x, ratio, generator);
    const int64_t keep = masking_keep_count(196, ratio);
    EXPECT_EQ(keep, static_cast<int64_t>(196 * (1.0 - ratio)));
    EXPECT_EQ(encoded.latent.sizes(), (Shape{3, 1 + keep, 192})) << ratio;
    EXPECT_EQ(encoded.mask.sizes(), (Shape{3, 196}));
    for (int64_t b = 0; b < 3; ++b) {
      EXPECT_EQ(encoded.mask[b].sum().item<double>(), static_cast<double>(196 - keep)) << ratio;
      EXPECT_TRUE(torch::equal(std::get<0>(encoded.ids_restore[b].sort()), torch::arange(196))) << "a permutation";
    }
    // the same generator seed gives the same mask
    auto again = model->forward_masked(x, ratio, at::make_generator<at::CPUGeneratorImpl>(7));
    EXPECT_TRUE(torch::equal(encoded.mask, again.mask));
  }
  EXPECT_EQ(masking_keep_count(196, 0.75), 49);
  // kept tokens are the ones with mask 0, in the order of increasing noise
  auto tokens = torch::arange(2 * 6 * 1, torch::kFloat32).reshape({2, 6, 1});
  auto noise = torch::tensor({0.9f, 0.1f, 0.5f, 0.3f, 0.7f, 0.2f, 0.0f, 0.8f, 0.4f, 0.6f, 0.95f, 0.05f}).reshape({2, 6});
  auto masked = random_masking(tokens, 0.5, noise);
  EXPECT_TRUE(torch::equal(masked.kept.flatten(), torch::tensor({1.f, 5.f, 3.f, 6.f, 11.f, 8.f})));
  EXPECT_TRUE(torch::equal(masked.mask, torch::tensor({1.f, 0.f, 1.f, 0.f, 1.f, 0.f, 0.f, 1.f, 0.f, 1.f, 1.f, 0.f})
                                            .reshape({2, 6})));
  EXPECT_THROW(random_masking(tokens, 1.0, noise), Error);
}

TEST(VitModel, DropPathOnlyInTraining) {
  Vit model(vit_tiny(16).depth(2).drop_path_rate(0.5));  // block 1 drops half the samples
  auto x = torch::randn({16, 3, 32, 32});
  torch::manual_seed(1);
  model->train();
  auto a = model->forward(x), b = model->forward(x);
  EXPECT_FALSE(torch::equal(a, b));
  model->eval();
  EXPECT_TRUE(torch::equal(model->forward(x), model->forward(x)));
}

TEST(MaeDecoderModel, KeysShapesAndPixelPredictions) {
  auto encoder_options = vit_small(16).pos_embed(PosEmbedKind::sincos);
  MaeDecoder decoder(mae_decoder_for(encoder_options));
  auto keys = shapes(*decoder);
  EXPECT_EQ(keys.at("mask_token"), (Shape{1, 1, 512}));
  EXPECT_EQ(keys.at("decoder_embed.weight"), (Shape{512, 384}));
  EXPECT_EQ(keys.at("decoder_pos_embed"), (Shape{1, 197, 512}));
  EXPECT_EQ(keys.at("decoder_blocks.7.attn.qkv.weight"), (Shape{1536, 512}));
  EXPECT_EQ(keys.count("decoder_blocks.8.norm1.weight"), 0u);
  EXPECT_EQ(keys.at("decoder_norm.weight"), (Shape{512}));
  EXPECT_EQ(keys.at("decoder_pred.weight"), (Shape{768, 512}));
  EXPECT_EQ(keys.at("decoder_pred.bias"), (Shape{768}));
  EXPECT_EQ(decoder->options.num_heads(), 16);

  Vit encoder(encoder_options.depth(1));
  MaeDecoder small(mae_decoder_for(encoder_options).depth(1));
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 64, 96});
  auto encoded = encoder->forward_masked(x, 0.75, at::make_generator<at::CPUGeneratorImpl>(3));
  auto pred = small->forward(encoded.latent, encoded.ids_restore, encoded.grid_h, encoded.grid_w);
  EXPECT_EQ(pred.sizes(), (Shape{2, 24, 768}));
  EXPECT_TRUE(torch::isfinite(mae_loss(x, pred, encoded.mask, 16)).item<bool>());
  EXPECT_TRUE(torch::equal(unpatchify(patchify(x, 16), 16, 4, 6), x));
  // a perfect prediction of the normalized pixels gives zero loss
  auto target = patchify(x, 16);
  target = (target - target.mean(-1, true)) / (target.var(-1, true, true) + 1e-6).sqrt();
  EXPECT_LT(mae_loss(x, target, encoded.mask, 16).item<double>(), 1e-10);
}

TEST(Heads, SimclrProjectionKeysAndShapes) {
  ProjectionHead head;  // R50: 2048 -> 2048 -> 128
  auto keys = shapes(*head);
  EXPECT_EQ(keys.at("mlp.0.weight"), (Shape{2048, 2048}));
  EXPECT_EQ(keys.count("mlp.0.bias"), 0u);
  EXPECT_EQ(keys.at("mlp.1.running_mean"), (Shape{2048}));
  EXPECT_EQ(keys.at("mlp.3.weight"), (Shape{128, 2048}));
  EXPECT_EQ(keys.at("mlp.3.bias"), (Shape{128}));
  ProjectionHead deep(ProjectionHeadOptions().in_dim(512).hidden_dim(256).out_dim(64).num_layers(3));
  EXPECT_EQ(shapes(*deep).at("mlp.6.weight"), (Shape{64, 256}));
  EXPECT_EQ(deep->forward(torch::randn({4, 512})).sizes(), (Shape{4, 64}));
}

TEST(Heads, DinoHeadKeysAndFrozenLastLayer) {
  DinoHead head(DinoHeadOptions().in_dim(384).out_dim(1000));
  auto keys = shapes(*head);
  EXPECT_EQ(keys.size(), 8u);
  EXPECT_EQ(keys.at("mlp.0.weight"), (Shape{2048, 384}));
  EXPECT_EQ(keys.at("mlp.2.weight"), (Shape{2048, 2048}));
  EXPECT_EQ(keys.at("mlp.4.weight"), (Shape{256, 2048}));
  EXPECT_EQ(keys.at("last_layer.weight_g"), (Shape{1000, 1}));
  EXPECT_EQ(keys.at("last_layer.weight_v"), (Shape{1000, 256}));
  EXPECT_EQ(DinoHeadOptions().out_dim(), 65536);
  // norm_last_layer: weight_g stays 1 and untrained, so rows of the weight have unit norm
  EXPECT_FALSE(head->last_layer->weight_g.requires_grad());
  EXPECT_TRUE(torch::allclose(head->last_layer->weight().norm(2, 1), torch::ones({1000}), 1e-5, 1e-5));
  auto last = head->last_layer_parameters();
  ASSERT_EQ(last.size(), 1u);
  EXPECT_TRUE(last[0].is_same(head->last_layer->weight_v));

  // first-epoch freezing: gradients of the last layer dropped, the MLP still learns
  auto before_v = head->last_layer->weight_v.detach().clone();
  auto before_mlp = head->mlp->parameters()[0].detach().clone();
  torch::optim::SGD sgd(head->parameters(), torch::optim::SGDOptions(0.1));
  sgd.zero_grad();
  head->forward(torch::randn({8, 384})).pow(2).sum().backward();
  EXPECT_TRUE(head->last_layer->weight_v.grad().defined());
  head->cancel_last_layer_gradients();
  EXPECT_FALSE(head->last_layer->weight_v.grad().defined());
  sgd.step();
  EXPECT_TRUE(torch::equal(head->last_layer->weight_v, before_v));
  EXPECT_FALSE(torch::equal(head->mlp->parameters()[0], before_mlp));

  DinoHead free_g(DinoHeadOptions().in_dim(64).out_dim(10).hidden_dim(32).bottleneck_dim(16).norm_last_layer(false));
  EXPECT_TRUE(free_g->last_layer->weight_g.requires_grad());
  EXPECT_EQ(free_g->last_layer_parameters().size(), 2u);
  EXPECT_EQ(free_g->forward(torch::randn({3, 64})).sizes(), (Shape{3, 10}));
}

}  // namespace
}  // namespace lesseg

namespace lesseg {
namespace {

// MAE's init: xavier-uniform on every Linear and on the patch conv seen as a [D, C*p*p] matrix
// (bound sqrt(6 / (fan_in + fan_out))), zero biases, cls_token normal(0.02).
TEST(Vit, MaeInitIsXavierUniform) {
  torch::manual_seed(0);
  Vit vit(vit_tiny(8).depth(2).pos_embed(PosEmbedKind::sincos));
  init_vit_mae(*vit);
  auto expect_xavier = [](const torch::Tensor& w, int64_t fan_in, int64_t fan_out, const std::string& what) {
    const double bound = std::sqrt(6.0 / double(fan_in + fan_out));
    EXPECT_LE(w.abs().max().item<double>(), bound + 1e-7) << what;
    EXPECT_NEAR(w.std().item<double>(), bound / std::sqrt(3.0), 0.05 * bound) << what;
  };
  expect_xavier(vit->patch_embed->proj->weight, 3 * 8 * 8, 192, "patch_embed");
  expect_xavier(vit->block_list()[0]->attn->qkv->weight, 192, 576, "qkv");
  expect_xavier(vit->block_list()[1]->mlp->fc2->weight, 768, 192, "fc2");
  EXPECT_EQ(vit->block_list()[0]->attn->qkv->bias.abs().max().item<double>(), 0.0);
  EXPECT_NEAR(vit->cls_token.std().item<double>(), 0.02, 0.01);
}

}  // namespace
}  // namespace lesseg
