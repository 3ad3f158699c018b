#include "lesseg/models/registry.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/models/deeplabv2.h"
#include "lesseg/models/deeplabv3plus.h"
#include "lesseg/models/resnet.h"
#include "lesseg/models/resunet.h"
#include "lesseg/models/swinunet.h"
#include "lesseg/models/vit.h"
#include "lesseg/models/weights.h"

namespace lesseg {

SegmenterImpl::SegmenterImpl(std::shared_ptr<BackboneImpl> backbone, std::shared_ptr<DecoderImpl> decoder)
    : backbone_(register_module("backbone", std::move(backbone))),
      decoder_(register_module("decoder", std::move(decoder))) {}

torch::Tensor SegmenterImpl::forward(const torch::Tensor& images) {
  return decode(encode(images), images.size(2), images.size(3));
}

std::vector<torch::Tensor> SegmenterImpl::encode(const torch::Tensor& images) { return backbone_->features(images); }

torch::Tensor SegmenterImpl::decode(const std::vector<torch::Tensor>& features, int64_t height, int64_t width) {
  return decoder_->decode(features, height, width);
}

namespace {
std::vector<int64_t> to_int64(const std::vector<int>& values) { return {values.begin(), values.end()}; }

PosEmbedKind vit_pos_embed_kind(const std::string& name) {
  if (name == "learned") return PosEmbedKind::learned;
  if (name == "sincos") return PosEmbedKind::sincos;
  throw_usage("unknown ViT position embedding '" + name + "' (known: auto, learned, sincos)");
}

// The position-embedding kind a lesseg file records: a backbone file's lesseg.pos_embed, or the
// model spec of a saved segmenter; "" when the file does not say (.pth, official weights).
std::string pos_embed_of_weights(const std::string& path) {
  const auto metadata = weight_file_metadata(path);
  std::string kind;
  if (auto named = metadata.find(kPosEmbedMetadataKey); named != metadata.end()) {
    kind = named->second;
  } else if (auto model = metadata.find("lesseg.model"); model != metadata.end()) {
    auto spec = nlohmann::json::parse(model->second, nullptr, /*allow_exceptions=*/false);
    if (spec.is_object() && spec.contains("pos_embed") && spec["pos_embed"].is_string()) kind = spec["pos_embed"];
  }
  if (!kind.empty() && kind != "learned" && kind != "sincos")
    throw_bad_weights(path, "unknown position embedding '" + kind + "' in the metadata (known: learned, sincos)");
  return kind;
}

SwinOptions swin_options(const std::string& name) {
  if (name == "swin_tiny") return swin_tiny();
  throw_usage("unknown Swin backbone '" + name + "' (known: swin_tiny)");
}
}  // namespace

ModelSpec model_spec_from(const Config& config, int64_t num_classes) {
  ModelSpec spec;
  spec.arch = config.get<std::string>("model.arch");
  spec.backbone = config.get<std::string>("model.backbone");
  spec.output_stride = config.get<int>("model.output_stride");
  spec.decoder_channels = to_int64(config.get<std::vector<int>>("model.decoder_channels"));
  spec.aspp_rates = to_int64(config.get<std::vector<int>>("model.aspp_rates"));
  spec.num_classes = num_classes;
  spec.pos_embed = config.get<std::string>("model.pos_embed");
  if (spec.pos_embed == "auto") {
    const std::string weights = config.get<std::string>("model.weights");
    spec.pos_embed = weights.empty() ? "" : pos_embed_of_weights(weights);
    if (spec.pos_embed.empty()) spec.pos_embed = config.get<std::string>("method") == "mae" ? "sincos" : "learned";
  }
  if (spec.pos_embed != "learned" && spec.pos_embed != "sincos")
    throw_usage("model.pos_embed must be auto, learned or sincos, got '" + spec.pos_embed + "'");
  spec.drop_path = config.get<double>("model.drop_path");
  if (spec.drop_path < 0.0 || spec.drop_path >= 1.0) throw_usage("model.drop_path must be in [0, 1)");
  return spec;
}

nlohmann::json model_spec_to_json(const ModelSpec& spec) {
  return {{"arch", spec.arch},
          {"backbone", spec.backbone},
          {"output_stride", spec.output_stride},
          {"decoder_channels", spec.decoder_channels},
          {"aspp_rates", spec.aspp_rates},
          {"num_classes", spec.num_classes},
          {"pos_embed", spec.pos_embed}};
}

ModelSpec model_spec_from_json(const nlohmann::json& json) {
  ModelSpec spec;
  spec.arch = json.at("arch").get<std::string>();
  spec.backbone = json.at("backbone").get<std::string>();
  spec.output_stride = json.at("output_stride").get<int>();
  spec.decoder_channels = json.at("decoder_channels").get<std::vector<int64_t>>();
  spec.aspp_rates = json.at("aspp_rates").get<std::vector<int64_t>>();
  spec.num_classes = json.at("num_classes").get<int64_t>();
  spec.pos_embed = json.value("pos_embed", std::string("learned"));  // files from before the key: learned
  return spec;
}

std::shared_ptr<BackboneImpl> build_backbone(const ModelSpec& spec) {
  const std::string& name = spec.backbone;
  if (name.rfind("resnet", 0) == 0) {
    int depth = 0;
    size_t parsed = 0;
    try {
      depth = std::stoi(name.substr(6), &parsed);
    } catch (const std::exception&) {
    }
    if (parsed == 0 || parsed != name.size() - 6) throw_usage("unknown backbone '" + name + "'");
    return std::make_shared<ResNetImpl>(ResNetOptions().depth(depth).output_stride(spec.output_stride));
  }
  if (name.rfind("swin_", 0) == 0) return std::make_shared<SwinImpl>(swin_options(name));
  // vit_{tiny,small,base}{patch}, e.g. vit_small16, vit_small8 (one feature map at stride = patch)
  for (const auto& [prefix, preset] : {std::pair{std::string("vit_tiny"), &vit_tiny},
                                       std::pair{std::string("vit_small"), &vit_small},
                                       std::pair{std::string("vit_base"), &vit_base}}) {
    if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 3) break;
    VitOptions options = preset(std::stoll(digits));
    options.pos_embed(vit_pos_embed_kind(spec.pos_embed)).drop_path_rate(spec.drop_path);
    return std::make_shared<VitImpl>(options);
  }
  throw_usage("unknown backbone '" + name +
              "' (known: resnet18, resnet34, resnet50, resnet101, resnet152, swin_tiny, vit_{tiny,small,base}{8,16})");
}

Segmenter build_segmenter(const ModelSpec& spec) {
  if (spec.num_classes <= 0) throw_usage("a segmenter needs at least one class");
  if (spec.arch == "swinunet") {
    if (spec.backbone.rfind("swin_", 0) != 0)
      throw_usage("model.arch swinunet needs a Swin backbone (swin_tiny), got '" + spec.backbone + "'");
    return swin_unet(SwinUnetOptions(spec.num_classes).encoder(swin_options(spec.backbone)));
  }
  auto backbone = build_backbone(spec);
  std::shared_ptr<DecoderImpl> decoder;
  if (spec.arch == "resunet") {
    decoder = std::make_shared<UNetDecoderImpl>(
        UNetDecoderOptions(backbone->feature_specs(), spec.num_classes).channels(spec.decoder_channels));
  } else if (spec.arch == "deeplabv3plus") {
    decoder = std::make_shared<DeepLabV3PlusImpl>(
        DeepLabV3PlusOptions(backbone->feature_specs(), spec.num_classes).rates(spec.aspp_rates));
  } else if (spec.arch == "deeplabv2") {
    decoder = std::make_shared<DeepLabV2Impl>(DeepLabV2Options(backbone->feature_specs(), spec.num_classes));
  } else {
    throw_usage("unknown model.arch '" + spec.arch + "' (known: resunet, deeplabv3plus, deeplabv2, swinunet)");
  }
  return Segmenter(backbone, decoder);
}

}  // namespace lesseg
