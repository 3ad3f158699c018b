#include "lesseg/models/cifar_resnet.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {
namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

// ref: He et al. 2016 (CIFAR-10 experiments), identity shortcut "option A": when the shape changes,
// take every other pixel and zero-pad the new channels equally on both sides.
struct CifarBlockImpl : nn::Module {
  CifarBlockImpl(int64_t in, int64_t planes, int64_t stride)
      : conv1(register_module("conv1", conv3x3(in, planes, stride))),
        bn1(register_module("bn1", nn::BatchNorm2d(planes))),
        conv2(register_module("conv2", conv3x3(planes, planes, 1))),
        bn2(register_module("bn2", nn::BatchNorm2d(planes))),
        subsample(stride != 1 || in != planes),
        pad((planes - in) / 2) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto out = bn2(conv2(torch::relu(bn1(conv1(x)))));
    torch::Tensor shortcut = x;
    if (subsample) {
      using torch::indexing::Slice;
      shortcut = F::pad(x.index({Slice(), Slice(), Slice(0, torch::indexing::None, 2), Slice(0, torch::indexing::None, 2)}),
                        F::PadFuncOptions({0, 0, 0, 0, pad, pad}));
    }
    return torch::relu(out + shortcut);
  }
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  bool subsample;
  int64_t pad;
};
TORCH_MODULE(CifarBlock);

nn::Sequential make_stage(int64_t in, int64_t planes, int blocks, int64_t stride) {
  nn::Sequential stage;
  for (int i = 0; i < blocks; ++i) stage->push_back(CifarBlock(i == 0 ? in : planes, planes, i == 0 ? stride : 1));
  return stage;
}

}  // namespace

CifarResNetImpl::CifarResNetImpl(const CifarResNetOptions& options) {
  if (options.depth() < 8 || (options.depth() - 2) % 6 != 0)
    throw_usage("CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110), got " + std::to_string(options.depth()));
  const int blocks = (options.depth() - 2) / 6;
  conv1 = register_module("conv1", conv3x3(3, 16, 1));
  bn1 = register_module("bn1", nn::BatchNorm2d(16));
  layer1 = register_module("layer1", make_stage(16, 16, blocks, 1));
  layer2 = register_module("layer2", make_stage(16, 32, blocks, 2));
  layer3 = register_module("layer3", make_stage(32, 64, blocks, 2));
  linear = register_module("linear", nn::Linear(64, options.num_classes()));
  for (auto& module : modules(/*include_self=*/false))
    if (auto* conv = module->as<nn::Conv2d>()) nn::init::kaiming_normal_(conv->weight);
}

torch::Tensor CifarResNetImpl::forward(const torch::Tensor& images) {
  auto x = torch::relu(bn1(conv1(images)));
  x = layer3->forward(layer2->forward(layer1->forward(x)));
  return linear(x.mean({2, 3}));
}

}  // namespace lesseg
