#include "lesseg/models/zoo.h"

#include <functional>
#include <map>

#include "lesseg/core/error.h"
#include "lesseg/models/cifar_resnet.h"
#include "lesseg/models/resnet.h"
#include "lesseg/models/swin.h"
#include "lesseg/models/vit.h"

namespace lesseg {
namespace {

// Rows of the first file tensor named `<anything>.<head>` or `<head>` (the classifier's weight).
int64_t head_rows(const NamedTensors& file, const std::string& head) {
  for (const auto& [name, tensor] : file) {
    const bool suffix = name.size() >= head.size() && name.compare(name.size() - head.size(), head.size(), head) == 0 &&
                        (name.size() == head.size() || name[name.size() - head.size() - 1] == '.');
    if (suffix && tensor.dim() == 2) return tensor.size(0);
  }
  return 0;
}

using Builder = std::function<std::shared_ptr<torch::nn::Module>(const NamedTensors&)>;

const std::map<std::string, Builder>& builders() {
  static const std::map<std::string, Builder> table = [] {
    std::map<std::string, Builder> t;
    for (int depth : {18, 34, 50, 101, 152})
      t["resnet" + std::to_string(depth)] = [depth](const NamedTensors& file) {
        return ResNet(ResNetOptions().depth(depth).num_classes(head_rows(file, "fc.weight"))).ptr();
      };
    for (int depth : {20, 32, 44, 56, 110})
      t["cifar_resnet" + std::to_string(depth)] = [depth](const NamedTensors& file) {
        const int64_t classes = head_rows(file, "linear.weight");
        return CifarResNet(CifarResNetOptions().depth(depth).num_classes(classes ? classes : 10)).ptr();
      };
    // DINO / timm / MAE ViTs (learned pos_embed: an MAE file's sin-cos table loads as its values)
    for (const auto& [size, preset] : {std::pair{std::string("tiny"), &vit_tiny},
                                       std::pair{std::string("small"), &vit_small},
                                       std::pair{std::string("base"), &vit_base}})
      for (int patch : {8, 16})
        t["vit_" + size + std::to_string(patch)] = [preset, patch](const NamedTensors& file) {
          return Vit(preset(patch).num_classes(head_rows(file, "head.weight"))).ptr();
        };
    t["swin_tiny"] = [](const NamedTensors& file) {
      return std::make_shared<SwinImpl>(swin_tiny().num_classes(head_rows(file, "head.weight")));
    };
    return t;
  }();
  return table;
}

}  // namespace

std::vector<std::string> model_zoo_names() {
  std::vector<std::string> names;
  for (const auto& [name, _] : builders()) names.push_back(name);
  return names;
}

std::shared_ptr<torch::nn::Module> build_named_model(const std::string& arch, const NamedTensors& file) {
  auto it = builders().find(arch);
  if (it == builders().end()) {
    std::string known;
    for (const auto& name : model_zoo_names()) known += (known.empty() ? "" : ", ") + name;
    throw_usage("unknown --arch '" + arch + "' (known: " + known + ")");
  }
  return it->second(file);
}

}  // namespace lesseg
