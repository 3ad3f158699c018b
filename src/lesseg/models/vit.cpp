#include "lesseg/models/vit.h"

#include <cmath>

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {
namespace nn = torch::nn;

namespace {

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)); }

// ref: timm / dino trunc_normal_(std=.02) (truncation at +-2 absolute, i.e. 100 std: a plain normal)
void trunc_normal_(torch::Tensor& t, double std) {
  torch::NoGradGuard no_grad;
  t.normal_(0.0, std).clamp_(-2.0, 2.0);
}

// ref: dino/utils.py drop_path: zero whole samples' residual branches with probability p.
torch::Tensor stochastic_depth(const torch::Tensor& x, double p, bool training) {
  if (p <= 0.0 || !training) return x;
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  auto keep = (torch::rand(shape, x.options()) + (1.0 - p)).floor_();
  return x / (1.0 - p) * keep;
}

}  // namespace

// ---- building blocks ----

VitAttentionImpl::VitAttentionImpl(int64_t dim, int64_t num_heads_) : num_heads(num_heads_) {
  if (num_heads <= 0 || dim % num_heads != 0)
    throw_usage("ViT width " + std::to_string(dim) + " is not divisible by " + std::to_string(num_heads) + " heads");
  qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, 3 * dim).bias(true)));
  proj = register_module("proj", nn::Linear(dim, dim));
}

torch::Tensor VitAttentionImpl::forward(const torch::Tensor& x, AttentionTrace* trace) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), head_dim = C / num_heads;
  // ref: dino Attention.forward: qkv -> [3, B, heads, T, head_dim]; softmax(q k^T * scale) v
  auto qkv_ = qkv(x).reshape({B, T, 3, num_heads, head_dim}).permute({2, 0, 3, 1, 4});
  auto q = qkv_[0], k = qkv_[1], v = qkv_[2];
  auto attn = (torch::matmul(q, k.transpose(-2, -1)) * std::pow(static_cast<double>(head_dim), -0.5)).softmax(-1);
  if (trace) *trace = {q, k, v, attn};
  auto out = torch::matmul(attn, v).transpose(1, 2).reshape({B, T, C});
  return proj(out);
}

VitMlpImpl::VitMlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", nn::Linear(dim, hidden));
  fc2 = register_module("fc2", nn::Linear(hidden, dim));
}

torch::Tensor VitMlpImpl::forward(const torch::Tensor& x) { return fc2(torch::gelu(fc1(x))); }

VitBlockImpl::VitBlockImpl(int64_t dim, int64_t num_heads, double mlp_ratio, double drop_path_)
    : drop_path(drop_path_) {
  norm1 = register_module("norm1", layer_norm(dim));
  attn = register_module("attn", VitAttention(dim, num_heads));
  norm2 = register_module("norm2", layer_norm(dim));
  mlp = register_module("mlp", VitMlp(dim, static_cast<int64_t>(static_cast<double>(dim) * mlp_ratio)));
}

torch::Tensor VitBlockImpl::forward(const torch::Tensor& x, AttentionTrace* trace) {
  auto y = x + stochastic_depth(attn->forward(norm1(x), trace), drop_path, is_training());
  return y + stochastic_depth(mlp(norm2(y)), drop_path, is_training());
}

PatchEmbedImpl::PatchEmbedImpl(int64_t in_chans, int64_t dim, int64_t patch) {
  proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(in_chans, dim, patch).stride(patch)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images) { return proj(images); }

torch::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid_h, int64_t grid_w, bool cls_token) {
  if (dim % 4 != 0) throw_usage("a 2-D sin-cos position embedding needs a width divisible by 4, got " + std::to_string(dim));
  // ref: MAE util/pos_embed.py (numpy float64, then .float()); meshgrid(w, h) puts the column
  // coordinate first, so the first half of the channels encodes the column.
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const int64_t quarter = dim / 4;
  auto omega = 1.0 / torch::pow(10000.0, torch::arange(quarter, f64) / static_cast<double>(quarter));
  auto rows = torch::arange(grid_h, f64).unsqueeze(1).expand({grid_h, grid_w}).reshape(-1);
  auto cols = torch::arange(grid_w, f64).unsqueeze(0).expand({grid_h, grid_w}).reshape(-1);
  auto encode = [&](const torch::Tensor& pos) {
    auto out = torch::outer(pos, omega);
    return torch::cat({out.sin(), out.cos()}, 1);
  };
  auto emb = torch::cat({encode(cols), encode(rows)}, 1);
  if (cls_token) emb = torch::cat({torch::zeros({1, dim}, f64), emb}, 0);
  return emb.to(torch::kFloat32).unsqueeze(0);
}

// ---- outputs ----

torch::Tensor VitOutput::cls() const { return tokens.select(1, 0); }
torch::Tensor VitOutput::patch_tokens() const { return tokens.narrow(1, 1, tokens.size(1) - 1); }
torch::Tensor VitOutput::patch_map() const {
  auto patches = patch_tokens();
  return patches.transpose(1, 2).reshape({patches.size(0), patches.size(2), grid_h, grid_w});
}

int64_t masking_keep_count(int64_t num_patches, double mask_ratio) {
  // ref: MAE random_masking: len_keep = int(L * (1 - mask_ratio))
  return static_cast<int64_t>(static_cast<double>(num_patches) * (1.0 - mask_ratio));
}

RandomMasking random_masking(const torch::Tensor& x, double mask_ratio, const torch::Tensor& noise) {
  const int64_t B = x.size(0), L = x.size(1), D = x.size(2);
  if (mask_ratio < 0.0 || mask_ratio >= 1.0) throw_usage("mask ratio must be in [0, 1), got " + std::to_string(mask_ratio));
  TORCH_CHECK(noise.dim() == 2 && noise.size(0) == B && noise.size(1) == L, "masking noise must be [B, N] = [", B,
              ", ", L, "], got ", noise.sizes());
  const int64_t keep = masking_keep_count(L, mask_ratio);
  auto ids_shuffle = torch::argsort(noise.to(x.device()), int64_t{1}, false);  // ascending: smallest noise kept
  auto ids_restore = torch::argsort(ids_shuffle, int64_t{1}, false);
  auto ids_keep = ids_shuffle.narrow(1, 0, keep);
  auto kept = torch::gather(x, 1, ids_keep.unsqueeze(-1).expand({B, keep, D}));
  auto mask = torch::ones({B, L}, x.options());
  mask.narrow(1, 0, keep).zero_();
  mask = torch::gather(mask, 1, ids_restore);
  return {kept, mask, ids_restore};
}

// ---- the transformer ----

VitImpl::VitImpl(const VitOptions& options_) : options(options_) { reset(); }

void VitImpl::reset() {
  const auto& o = options;
  if (o.patch_size() <= 0 || o.img_size() % o.patch_size() != 0)
    throw_usage("ViT img_size " + std::to_string(o.img_size()) + " must be a multiple of the patch size " +
                std::to_string(o.patch_size()));
  const int64_t D = o.embed_dim(), N = grid_size() * grid_size();
  patch_embed = register_module("patch_embed", PatchEmbed(o.in_chans(), D, o.patch_size()));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, D}));
  if (o.pos_embed() == PosEmbedKind::learned) {
    pos_embed = register_parameter("pos_embed", torch::zeros({1, N + 1, D}));
  } else {
    // ref: MAE keeps it as a frozen parameter; a buffer here (same state-dict key, not trained)
    pos_embed = register_buffer("pos_embed", sincos_pos_embed_2d(D, grid_size(), grid_size(), true));
  }
  blocks = register_module("blocks", nn::ModuleList());
  block_list_.clear();
  for (int64_t i = 0; i < o.depth(); ++i) {
    double rate = o.depth() > 1 ? o.drop_path_rate() * static_cast<double>(i) / static_cast<double>(o.depth() - 1) : 0.0;
    block_list_.emplace_back(D, o.num_heads(), o.mlp_ratio(), rate);
    blocks->push_back(block_list_.back());
  }
  norm = register_module("norm", layer_norm(D));
  if (o.num_classes() > 0) head = register_module("head", nn::Linear(D, o.num_classes()));

  // ref: dino VisionTransformer init: trunc_normal(.02) for pos_embed, cls_token and Linear
  // weights, zero Linear biases, LayerNorm 1 / 0; the patch conv keeps PyTorch's default.
  torch::NoGradGuard no_grad;
  if (o.pos_embed() == PosEmbedKind::learned) trunc_normal_(pos_embed, 0.02);
  trunc_normal_(cls_token, 0.02);
  for (auto& module : modules(false)) {
    if (auto* linear = module->as<nn::Linear>()) {
      trunc_normal_(linear->weight, 0.02);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* ln = module->as<nn::LayerNorm>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
  }
}

torch::Tensor VitImpl::position_embedding(int64_t height, int64_t width) {
  const int64_t p = options.patch_size(), gh = height / p, gw = width / p;
  if (options.pos_embed() == PosEmbedKind::sincos) {
    if (gh == grid_size() && gw == grid_size()) return pos_embed;
    return sincos_pos_embed_2d(options.embed_dim(), gh, gw, true).to(pos_embed.device(), pos_embed.scalar_type());
  }
  // ref: dino vision_transformer.py interpolate_pos_encoding: no change when the patch count and
  // the (square) input match; otherwise bicubic (align_corners False) with scale_factor
  // (h0 + 0.1) / sqrt(N), (w0 + 0.1) / sqrt(N) -- the scale itself reaches the kernel, so the
  // sampling positions differ slightly from a plain resize to (h0, w0).
  const int64_t N = pos_embed.size(1) - 1;
  if (gh * gw == N && height == width) return pos_embed;
  const int64_t D = pos_embed.size(2);
  const double side = std::sqrt(static_cast<double>(N));
  const auto side_int = static_cast<int64_t>(side);
  auto grid = pos_embed.narrow(1, 1, N).reshape({1, side_int, side_int, D}).permute({0, 3, 1, 2});
  std::vector<double> scales{(static_cast<double>(gh) + 0.1) / side, (static_cast<double>(gw) + 0.1) / side};
  auto resized = at::upsample_bicubic2d(grid, c10::nullopt, false, scales);
  TORCH_CHECK(resized.size(2) == gh && resized.size(3) == gw, "position embedding resized to ", resized.sizes(),
              ", expected a ", gh, "x", gw, " grid");
  resized = resized.permute({0, 2, 3, 1}).reshape({1, gh * gw, D});
  return torch::cat({pos_embed.narrow(1, 0, 1), resized}, 1);
}

std::pair<torch::Tensor, torch::Tensor> VitImpl::embed(const torch::Tensor& images, int64_t* grid_h, int64_t* grid_w) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == options.in_chans(), "ViT expects [B, ", options.in_chans(),
              ", H, W] images, got ", images.sizes());
  auto patches = patch_embed(images);  // [B, D, gh, gw]
  *grid_h = patches.size(2);
  *grid_w = patches.size(3);
  TORCH_CHECK(*grid_h > 0 && *grid_w > 0, "image ", images.sizes(), " is smaller than one ", options.patch_size(),
              " px patch");
  auto pos = position_embedding(images.size(2), images.size(3));
  auto tokens = patches.flatten(2).transpose(1, 2) + pos.narrow(1, 1, pos.size(1) - 1);
  auto cls = (cls_token + pos.narrow(1, 0, 1)).expand({images.size(0), 1, options.embed_dim()});
  return {tokens, cls};
}

VitOutput VitImpl::forward_tokens(const torch::Tensor& images, const VitForwardOptions& what) {
  VitOutput out;
  auto [patches, cls] = embed(images, &out.grid_h, &out.grid_w);
  auto x = torch::cat({cls, patches}, 1);
  for (size_t i = 0; i < block_list_.size(); ++i) {
    const bool last = i + 1 == block_list_.size();
    AttentionTrace trace;
    x = block_list_[i]->forward(x, last && (what.last_qkv() || what.last_attention()) ? &trace : nullptr);
    if (what.block_tokens()) out.block_tokens.push_back(x);
    if (last && what.last_qkv()) {
      out.q = trace.q;
      out.k = trace.k;
      out.v = trace.v;
    }
    if (last && what.last_attention()) out.attention = trace.attention;
  }
  out.tokens = norm(x);
  return out;
}

torch::Tensor VitImpl::forward(const torch::Tensor& images) { return forward_tokens(images).cls(); }

torch::Tensor VitImpl::classify(const torch::Tensor& images) {
  TORCH_CHECK(head, "ViT built without a classifier (num_classes = 0)");
  return head(forward(images));
}

MaskedEncoding VitImpl::forward_masked(const torch::Tensor& images, double mask_ratio, const torch::Tensor& noise) {
  MaskedEncoding out;
  auto [patches, cls] = embed(images, &out.grid_h, &out.grid_w);
  // ref: MAE forward_encoder: position embedding first, then masking, then CLS (+ its embedding)
  auto masked = random_masking(patches, mask_ratio, noise);
  auto x = torch::cat({cls, masked.kept}, 1);
  for (auto& block : block_list_) x = block->forward(x);
  out.latent = norm(x);
  out.mask = masked.mask;
  out.ids_restore = masked.ids_restore;
  return out;
}

MaskedEncoding VitImpl::forward_masked(const torch::Tensor& images, double mask_ratio,
                                       std::optional<at::Generator> generator) {
  const int64_t p = options.patch_size();
  const int64_t n = (images.size(2) / p) * (images.size(3) / p);
  auto device = generator ? generator->device() : images.device();
  auto noise = torch::rand({images.size(0), n}, generator ? c10::optional<at::Generator>(*generator) : c10::nullopt,
                           torch::TensorOptions().dtype(torch::kFloat32).device(device));
  return forward_masked(images, mask_ratio, noise);
}

void init_vit_mae(VitImpl& vit) {
  torch::NoGradGuard no_grad;
  auto& patch = vit.patch_embed->proj->weight;
  auto flat = patch.view({patch.size(0), -1});  // ref: MAE treats the patch conv as a Linear layer
  nn::init::xavier_uniform_(flat);
  vit.cls_token.normal_(0.0, 0.02);
  init_mae_linear_and_norm(vit);
}

void init_mae_linear_and_norm(torch::nn::Module& root) {
  torch::NoGradGuard no_grad;
  for (auto& module : root.modules(false)) {
    if (auto* linear = module->as<nn::Linear>()) {
      nn::init::xavier_uniform_(linear->weight);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* ln = module->as<nn::LayerNorm>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
  }
}

std::vector<torch::Tensor> VitImpl::features(const torch::Tensor& images) {
  return {forward_tokens(images).patch_map()};
}

std::vector<FeatureSpec> VitImpl::feature_specs() const { return {{options.patch_size(), options.embed_dim()}}; }

}  // namespace lesseg
