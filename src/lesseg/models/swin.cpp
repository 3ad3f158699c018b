#include "lesseg/models/swin.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {
namespace nn = torch::nn;
using torch::indexing::None;
using torch::indexing::Slice;

namespace {

// ref: torchvision SwinTransformer.__init__: Linear weights trunc_normal(std 0.02) (truncated at
// +-2 absolute, i.e. practically untruncated), biases 0; LayerNorm weight 1, bias 0.
void init_linear(nn::Linear& linear) {
  torch::NoGradGuard no_grad;
  linear->weight.normal_(0.0, 0.02).clamp_(-2.0, 2.0);
  if (linear->bias.defined()) linear->bias.zero_();
}

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-5)); }

// features.0: Conv2d(3, C, patch, stride patch) as "0", (Permute as "1", no parameters), LayerNorm as "2".
struct PatchEmbedImpl : nn::Module {
  PatchEmbedImpl(int64_t dim, int64_t patch)
      : proj(register_module("0", nn::Conv2d(nn::Conv2dOptions(3, dim, patch).stride(patch)))),
        norm(register_module("2", layer_norm(dim))) {}
  torch::Tensor forward(const torch::Tensor& images) { return norm(proj(images).permute({0, 2, 3, 1})); }
  nn::Conv2d proj;
  nn::LayerNorm norm;
};
TORCH_MODULE(PatchEmbed);

// Region ids of the shifted-window attention mask along one axis of the padded map: torchvision
// assigns the slices [0, -window), [-window, -shift), [-shift, end); with shift 0 the last slice
// covers the whole axis, so every position gets the same id.
torch::Tensor mask_regions(int64_t length, int64_t window, int64_t shift, const torch::TensorOptions& options) {
  auto positions = torch::arange(length, options.dtype(torch::kLong));
  if (shift == 0) return torch::zeros({length}, options.dtype(torch::kLong));
  return (positions >= length - window).to(torch::kLong) + (positions >= length - shift).to(torch::kLong);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
ShiftedWindowAttentionImpl::ShiftedWindowAttentionImpl(int64_t dim, int64_t num_heads, int64_t window_size,
                                                       int64_t shift_size)
    : num_heads_(num_heads), window_size_(window_size), shift_size_(shift_size) {
  if (dim % num_heads != 0)
    throw_usage("Swin: width " + std::to_string(dim) + " is not divisible by " + std::to_string(num_heads) +
                " heads");
  qkv = register_module("qkv", nn::Linear(dim, dim * 3));
  proj = register_module("proj", nn::Linear(dim, dim));
  const int64_t side = 2 * window_size - 1;
  relative_position_bias_table = register_parameter("relative_position_bias_table",
                                                    torch::zeros({side * side, num_heads}));
  {
    torch::NoGradGuard no_grad;
    relative_position_bias_table.normal_(0.0, 0.02).clamp_(-2.0, 2.0);
  }
  // ref: torchvision define_relative_position_index: for tokens i, j of a window (row-major),
  // index = (h_i - h_j + W - 1) * (2W - 1) + (w_i - w_j + W - 1).
  const int64_t n = window_size * window_size;
  std::vector<int64_t> index;
  index.reserve(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      index.push_back((i / window_size - j / window_size + window_size - 1) * side +
                      (i % window_size - j % window_size + window_size - 1));
  relative_position_index = register_buffer("relative_position_index", torch::tensor(index, torch::kLong));
}

// ref: torchvision/models/swin_transformer.py shifted_window_attention (v1: no logit scale)
torch::Tensor ShiftedWindowAttentionImpl::forward(const torch::Tensor& input) {
  const int64_t batch = input.size(0), height = input.size(1), width = input.size(2), channels = input.size(3);
  const int64_t ws = window_size_;
  const int64_t pad_right = (ws - width % ws) % ws, pad_bottom = (ws - height % ws) % ws;
  auto x = torch::constant_pad_nd(input, {0, 0, 0, pad_right, 0, pad_bottom});
  const int64_t padded_h = x.size(1), padded_w = x.size(2);
  // No shift along an axis the window already covers.
  const int64_t shift_h = ws >= padded_h ? 0 : shift_size_;
  const int64_t shift_w = ws >= padded_w ? 0 : shift_size_;
  const bool shifted = shift_h + shift_w > 0;
  if (shifted) x = torch::roll(x, {-shift_h, -shift_w}, {1, 2});

  const int64_t rows = padded_h / ws, cols = padded_w / ws, windows = rows * cols, tokens = ws * ws;
  x = x.view({batch, rows, ws, cols, ws, channels})
          .permute({0, 1, 3, 2, 4, 5})
          .reshape({batch * windows, tokens, channels});

  const int64_t head_dim = channels / num_heads_;
  auto qkv_out = qkv(x).reshape({x.size(0), tokens, 3, num_heads_, head_dim}).permute({2, 0, 3, 1, 4});
  auto q = qkv_out[0] * std::pow(static_cast<double>(head_dim), -0.5);
  auto k = qkv_out[1], v = qkv_out[2];
  auto attn = torch::matmul(q, k.transpose(-2, -1));
  auto bias = relative_position_bias_table.index_select(0, relative_position_index)
                  .view({tokens, tokens, num_heads_})
                  .permute({2, 0, 1})
                  .unsqueeze(0);
  attn = attn + bias;

  if (shifted) {
    // ref: torchvision: tokens from different regions of the rolled map get -100 before the softmax.
    auto region_h = mask_regions(padded_h, ws, shift_h, x.options());
    auto region_w = mask_regions(padded_w, ws, shift_w, x.options());
    auto ids = (region_h.unsqueeze(1) * 3 + region_w.unsqueeze(0))
                   .view({rows, ws, cols, ws})
                   .permute({0, 2, 1, 3})
                   .reshape({windows, tokens});
    auto differs = ids.unsqueeze(1) != ids.unsqueeze(2);  // [windows, tokens, tokens]
    auto mask = torch::zeros(differs.sizes(), x.options()).masked_fill(differs, -100.0);
    attn = attn.view({batch, windows, num_heads_, tokens, tokens}) + mask.unsqueeze(1).unsqueeze(0);
    attn = attn.view({-1, num_heads_, tokens, tokens});
  }
  attn = torch::softmax(attn, -1);
  x = torch::matmul(attn, v).transpose(1, 2).reshape({x.size(0), tokens, channels});
  x = proj(x);

  x = x.view({batch, rows, cols, ws, ws, channels})
          .permute({0, 1, 3, 2, 4, 5})
          .reshape({batch, padded_h, padded_w, channels});
  if (shifted) x = torch::roll(x, {shift_h, shift_w}, {1, 2});
  return x.index({Slice(), Slice(None, height), Slice(None, width), Slice()}).contiguous();
}

// ---------------------------------------------------------------------------------------------
// ref: torchvision SwinTransformerBlock (v1, pre-norm); stochastic depth is identity in eval.
SwinBlockImpl::SwinBlockImpl(int64_t dim, int64_t num_heads, int64_t window_size, int64_t shift_size,
                             double mlp_ratio) {
  norm1 = register_module("norm1", layer_norm(dim));
  attn = register_module("attn", ShiftedWindowAttention(dim, num_heads, window_size, shift_size));
  norm2 = register_module("norm2", layer_norm(dim));
  const auto hidden = static_cast<int64_t>(static_cast<double>(dim) * mlp_ratio);
  nn::Linear fc1(dim, hidden), fc2(hidden, dim);
  init_linear(fc1);
  init_linear(fc2);
  mlp = register_module("mlp", nn::Sequential(fc1, nn::GELU(), nn::Dropout(0.0), fc2, nn::Dropout(0.0)));
  init_linear(attn->qkv);
  init_linear(attn->proj);
}

torch::Tensor SwinBlockImpl::forward(const torch::Tensor& x) {
  auto y = x + attn(norm1(x));
  return y + mlp->forward(norm2(y));
}

nn::ModuleList make_swin_blocks(int64_t dim, int64_t depth, int64_t num_heads, int64_t window_size,
                                double mlp_ratio) {
  nn::ModuleList blocks;
  for (int64_t j = 0; j < depth; ++j)
    blocks->push_back(SwinBlock(dim, num_heads, window_size, j % 2 == 0 ? 0 : window_size / 2, mlp_ratio));
  return blocks;
}

torch::Tensor run_swin_blocks(const nn::ModuleListImpl& blocks, torch::Tensor x) {
  for (size_t j = 0; j < blocks.size(); ++j) x = blocks.ptr<SwinBlockImpl>(j)->forward(x);
  return x;
}

// ---------------------------------------------------------------------------------------------
PatchMergingImpl::PatchMergingImpl(int64_t dim) {
  reduction = register_module("reduction", nn::Linear(nn::LinearOptions(4 * dim, 2 * dim).bias(false)));
  norm = register_module("norm", layer_norm(4 * dim));
  init_linear(reduction);
}

// ref: torchvision _patch_merging_pad + PatchMerging (v1: norm before the reduction);
// concat order x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2].
torch::Tensor PatchMergingImpl::forward(const torch::Tensor& input) {
  auto x = torch::constant_pad_nd(input, {0, 0, 0, input.size(2) % 2, 0, input.size(1) % 2});
  auto even = Slice(0, None, 2), odd = Slice(1, None, 2);
  x = torch::cat({x.index({Slice(), even, even}), x.index({Slice(), odd, even}), x.index({Slice(), even, odd}),
                  x.index({Slice(), odd, odd})},
                 -1);
  return reduction(norm(x));
}

// ---------------------------------------------------------------------------------------------
SwinImpl::SwinImpl(const SwinOptions& options_) : options(options_) { reset(); }

void SwinImpl::reset() {
  const auto& depths = options.depths();
  if (depths.empty() || depths.size() != options.num_heads().size())
    throw_usage("Swin: depths and num_heads need one entry per stage (got " + std::to_string(depths.size()) +
                " and " + std::to_string(options.num_heads().size()) + ")");
  if (options.window_size() < 1 || options.patch_size() < 1 || options.embed_dim() < 1)
    throw_usage("Swin: embed_dim, window_size and patch_size must be positive");
  stages_ = register_module("features", nn::ModuleList());
  stages_->push_back(PatchEmbed(options.embed_dim(), options.patch_size()));
  int64_t dim = options.embed_dim();
  for (size_t s = 0; s < depths.size(); ++s) {
    stages_->push_back(make_swin_blocks(dim, depths[s], options.num_heads()[s], options.window_size(),
                                        options.mlp_ratio()));
    if (s + 1 < depths.size()) {
      stages_->push_back(PatchMerging(dim));
      dim *= 2;
    }
  }
  norm = register_module("norm", layer_norm(dim));
  if (options.num_classes() > 0) {
    head = register_module("head", nn::Linear(dim, options.num_classes()));
    init_linear(head);
  }
}

torch::Tensor SwinImpl::embed(const torch::Tensor& images) {
  return stages_->ptr<PatchEmbedImpl>(0)->forward(images);
}

torch::Tensor SwinImpl::run_stage(size_t stage, const torch::Tensor& x) {
  return run_swin_blocks(*stages_->ptr<nn::ModuleListImpl>(2 * stage + 1), x);
}

torch::Tensor SwinImpl::merge(size_t stage, const torch::Tensor& x) {
  return stages_->ptr<PatchMergingImpl>(2 * stage + 2)->forward(x);
}

std::vector<torch::Tensor> SwinImpl::features(const torch::Tensor& images) {
  std::vector<torch::Tensor> out;
  auto x = embed(images);
  for (size_t s = 0; s < num_stages(); ++s) {
    if (s > 0) x = merge(s - 1, x);
    x = run_stage(s, x);
    out.push_back(x.permute({0, 3, 1, 2}).contiguous());
  }
  return out;
}

std::vector<FeatureSpec> SwinImpl::feature_specs() const {
  std::vector<FeatureSpec> specs;
  int64_t stride = options.patch_size(), channels = options.embed_dim();
  for (size_t s = 0; s < num_stages(); ++s, stride *= 2, channels *= 2) specs.push_back({stride, channels});
  return specs;
}

torch::Tensor SwinImpl::forward(const torch::Tensor& images) {
  TORCH_CHECK(head, "Swin built without a classifier (num_classes = 0)");
  auto x = embed(images);
  for (size_t s = 0; s < num_stages(); ++s) {
    if (s > 0) x = merge(s - 1, x);
    x = run_stage(s, x);
  }
  return head(norm(x).mean({1, 2}));
}

}  // namespace lesseg
