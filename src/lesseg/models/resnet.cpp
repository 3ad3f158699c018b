#include "lesseg/models/resnet.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {
namespace nn = torch::nn;

namespace {

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride, int64_t dilation) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(dilation).dilation(dilation).bias(false));
}
nn::Conv2d conv1x1(int64_t in, int64_t out, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

// ref: torchvision/models/resnet.py BasicBlock (expansion 1). torchvision refuses dilation in basic
// blocks; lesseg allows it (both 3x3 convs dilated) so ResNet-18/34 can run at output stride 16 / 8.
struct BasicBlockImpl : nn::Module {
  static constexpr int64_t expansion = 1;
  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride, int64_t dilation, nn::Sequential downsample_)
      : conv1(register_module("conv1", conv3x3(in, planes, stride, dilation))),
        bn1(register_module("bn1", nn::BatchNorm2d(planes))),
        conv2(register_module("conv2", conv3x3(planes, planes, 1, dilation))),
        bn2(register_module("bn2", nn::BatchNorm2d(planes))),
        downsample(downsample_) {
    if (downsample) register_module("downsample", downsample);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto out = torch::relu(bn1(conv1(x)));
    out = bn2(conv2(out));
    return torch::relu(out + (downsample ? downsample->forward(x) : x));
  }
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Sequential downsample;
};
TORCH_MODULE(BasicBlock);

// ref: torchvision/models/resnet.py Bottleneck (v1.5: stride on the 3x3 conv, expansion 4)
struct BottleneckImpl : nn::Module {
  static constexpr int64_t expansion = 4;
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride, int64_t dilation, nn::Sequential downsample_)
      : conv1(register_module("conv1", conv1x1(in, planes))),
        bn1(register_module("bn1", nn::BatchNorm2d(planes))),
        conv2(register_module("conv2", conv3x3(planes, planes, stride, dilation))),
        bn2(register_module("bn2", nn::BatchNorm2d(planes))),
        conv3(register_module("conv3", conv1x1(planes, planes * expansion))),
        bn3(register_module("bn3", nn::BatchNorm2d(planes * expansion))),
        downsample(downsample_) {
    if (downsample) register_module("downsample", downsample);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto out = torch::relu(bn1(conv1(x)));
    out = torch::relu(bn2(conv2(out)));
    out = bn3(conv3(out));
    return torch::relu(out + (downsample ? downsample->forward(x) : x));
  }
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Conv2d conv3;
  nn::BatchNorm2d bn3;
  nn::Sequential downsample;
};
TORCH_MODULE(Bottleneck);

std::array<int, 4> blocks_for_depth(int depth) {
  switch (depth) {
    case 18: return {2, 2, 2, 2};
    case 34: return {3, 4, 6, 3};
    case 50: return {3, 4, 6, 3};
    case 101: return {3, 4, 23, 3};
    case 152: return {3, 8, 36, 3};
  }
  throw_usage("ResNet depth must be 18, 34, 50, 101 or 152, got " + std::to_string(depth));
}

}  // namespace

ResNetImpl::ResNetImpl(const ResNetOptions& options_) : options(options_) { reset(); }

void ResNetImpl::reset() {
  if (options.output_stride() != 32 && options.output_stride() != 16 && options.output_stride() != 8)
    throw_usage("ResNet output_stride must be 8, 16 or 32, got " + std::to_string(options.output_stride()));
  auto blocks = blocks_for_depth(options.depth());
  const bool bottleneck = options.depth() >= 50;
  const int64_t expansion = bottleneck ? 4 : 1;
  inplanes_ = 64;
  dilation_ = 1;
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
  bn1 = register_module("bn1", nn::BatchNorm2d(64));
  layer1 = register_module("layer1", make_layer(64, blocks[0], 1, false));
  layer2 = register_module("layer2", make_layer(128, blocks[1], 2, false));
  layer3 = register_module("layer3", make_layer(256, blocks[2], 2, options.output_stride() == 8));
  layer4 = register_module("layer4", make_layer(512, blocks[3], 2, options.output_stride() <= 16));
  if (options.num_classes() > 0) fc = register_module("fc", nn::Linear(512 * expansion, options.num_classes()));
  // ref: torchvision resnet init: kaiming normal (fan_out) for convs, BN weight 1 bias 0
  for (auto& module : modules(false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<nn::BatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
  const int64_t s3 = options.output_stride() == 8 ? 8 : 16;
  const int64_t s4 = options.output_stride();
  specs_ = {{2, 64}, {4, 64 * expansion}, {8, 128 * expansion}, {s3, 256 * expansion}, {s4, 512 * expansion}};
}

nn::Sequential ResNetImpl::make_layer(int64_t planes, int blocks, int64_t stride, bool dilate) {
  const bool bottleneck = options.depth() >= 50;
  const int64_t expansion = bottleneck ? 4 : 1;
  int64_t previous_dilation = dilation_;
  if (dilate) {
    dilation_ *= stride;
    stride = 1;
  }
  nn::Sequential downsample{nullptr};
  if (stride != 1 || inplanes_ != planes * expansion)
    downsample = nn::Sequential(conv1x1(inplanes_, planes * expansion, stride), nn::BatchNorm2d(planes * expansion));
  nn::Sequential layer;
  for (int i = 0; i < blocks; ++i) {
    int64_t block_stride = i == 0 ? stride : 1;
    int64_t block_dilation = i == 0 ? previous_dilation : dilation_;
    nn::Sequential block_downsample = i == 0 ? downsample : nn::Sequential(nullptr);
    if (bottleneck)
      layer->push_back(Bottleneck(inplanes_, planes, block_stride, block_dilation, block_downsample));
    else
      layer->push_back(BasicBlock(inplanes_, planes, block_stride, block_dilation, block_downsample));
    inplanes_ = planes * expansion;
  }
  return layer;
}

std::vector<torch::Tensor> ResNetImpl::features(const torch::Tensor& images) {
  auto stem = torch::relu(bn1(conv1(images)));
  auto c1 = layer1->forward(torch::max_pool2d(stem, 3, 2, 1));
  auto c2 = layer2->forward(c1);
  auto c3 = layer3->forward(c2);
  auto c4 = layer4->forward(c3);
  return {stem, c1, c2, c3, c4};
}

std::vector<FeatureSpec> ResNetImpl::feature_specs() const { return specs_; }

torch::Tensor ResNetImpl::forward(const torch::Tensor& images) {
  TORCH_CHECK(fc, "ResNet built without a classifier (num_classes = 0)");
  auto pooled = torch::adaptive_avg_pool2d(features(images).back(), {1, 1}).flatten(1);
  return fc(pooled);
}

}  // namespace lesseg
