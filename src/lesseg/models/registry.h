#pragma once
// Builds segmentation models by name. The spec travels with saved weights (safetensors metadata)
// so `lesseg predict --weights FILE` can rebuild the exact model.
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "lesseg/models/backbone.h"

namespace lesseg {

class Config;

struct ModelSpec {
  std::string arch = "resunet";      // resunet | deeplabv3plus | deeplabv2 | swinunet (backbone swin_tiny)
  std::string backbone = "resnet18";  // resnet18 | resnet50 | resnet101 | swin_tiny | vit_small16 | vit_small8 | ...
  int output_stride = 32;
  std::vector<int64_t> decoder_channels{256, 128, 64, 64, 32};
  std::vector<int64_t> aspp_rates{6, 12, 18};
  int64_t num_classes = 0;
  std::string pos_embed = "learned";  // ViT position embedding: learned (DINO, timm) | sincos (MAE)
  double drop_path = 0.0;             // ViT stochastic depth at the last block (training only)
};

// ViT metadata key of a lesseg weight file: the position-embedding kind the weights were trained with.
inline constexpr const char* kPosEmbedMetadataKey = "lesseg.pos_embed";

// model.pos_embed "auto" resolves to the kind named in model.weights' metadata, else sincos for MAE
// pretraining, else learned: a backbone is rebuilt with the kind it was trained with.
ModelSpec model_spec_from(const Config& config, int64_t num_classes);
nlohmann::json model_spec_to_json(const ModelSpec& spec);
ModelSpec model_spec_from_json(const nlohmann::json& json);

std::shared_ptr<BackboneImpl> build_backbone(const ModelSpec& spec);
Segmenter build_segmenter(const ModelSpec& spec);

}  // namespace lesseg
