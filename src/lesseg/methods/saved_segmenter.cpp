#include "lesseg/methods/saved_segmenter.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/io/safetensors.h"

namespace lesseg {

void save_segmenter(const std::filesystem::path& path, const SavedSegmenter& s) {
  nlohmann::json classes = {{"names", s.classes.names}, {"ignore_index", s.classes.ignore_index}};
  for (const auto& c : s.classes.colors) classes["colors"].push_back({c[0], c[1], c[2]});
  nlohmann::json input = {{"mean", s.mean}, {"std", s.std}, {"resize", {s.resize_h, s.resize_w}}};
  std::map<std::string, std::string> metadata = {{"lesseg.kind", "segmenter"},
                                                 {"lesseg.model", model_spec_to_json(s.spec).dump()},
                                                 {"lesseg.classes", classes.dump()},
                                                 {"lesseg.input", input.dump()}};
  save_safetensors(path, module_tensors(*s.model), metadata);
}

SavedSegmenter load_segmenter(const std::filesystem::path& path, torch::Device device) {
  TensorFile file = load_safetensors(path);
  if (!file.metadata.count("lesseg.model") || !file.metadata.count("lesseg.classes"))
    throw_bad_weights(path, "not a lesseg segmenter (metadata lesseg.model / lesseg.classes missing)");
  SavedSegmenter s;
  try {
    s.spec = model_spec_from_json(nlohmann::json::parse(file.metadata["lesseg.model"]));
    auto classes = nlohmann::json::parse(file.metadata["lesseg.classes"]);
    s.classes.names = classes.at("names").get<std::vector<std::string>>();
    s.classes.ignore_index = classes.at("ignore_index").get<int>();
    for (const auto& c : classes.at("colors")) s.classes.colors.push_back({c[0].get<uint8_t>(), c[1].get<uint8_t>(), c[2].get<uint8_t>()});
    if (file.metadata.count("lesseg.input")) {
      auto input = nlohmann::json::parse(file.metadata["lesseg.input"]);
      s.mean = input.at("mean").get<std::array<double, 3>>();
      s.std = input.at("std").get<std::array<double, 3>>();
      s.resize_h = input.at("resize").at(0).get<int>();
      s.resize_w = input.at("resize").at(1).get<int>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw_bad_weights(path, std::string("invalid lesseg metadata: ") + e.what());
  }
  s.model = build_segmenter(s.spec);
  load_module_tensors(*s.model, file.tensors, path);
  s.model->to(device);
  s.model->eval();
  return s;
}

}  // namespace lesseg
