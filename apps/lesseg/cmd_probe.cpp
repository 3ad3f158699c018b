// `lesseg probe`: evaluate a frozen backbone's features (kNN, linear, seg-linear, DINO attention).
// stdout carries exactly one JSON line (the result); progress and the weight report go to stderr.
#include <iostream>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "commands.h"
#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/eval/probe.h"

namespace lesseg::cli {
namespace {

struct ProbeArgs {
  std::string config, weights, key, backbone, attention_dir, out;
  std::vector<std::string> overrides;
  bool knn = false, linear = false, seg_linear = false, allow_partial = false;
  int threads = 0;
};

std::string chosen_mode(const ProbeArgs& a) {
  std::vector<std::string> modes;
  if (a.knn) modes.push_back("knn");
  if (a.linear) modes.push_back("linear");
  if (a.seg_linear) modes.push_back("seg_linear");
  if (!a.attention_dir.empty()) modes.push_back("attention");
  if (modes.size() != 1) throw_usage("probe needs exactly one of --knn, --linear, --seg-linear, --attention OUT_DIR");
  return modes[0];
}

Config probe_config(const ProbeArgs& a) {
  auto overrides = a.overrides;
  if (!a.backbone.empty()) overrides.push_back("model.backbone=" + a.backbone);
  if (!a.weights.empty()) overrides.push_back("model.weights=" + a.weights);
  if (!a.key.empty()) overrides.push_back("model.weights_key=" + a.key);
  if (a.allow_partial) overrides.push_back("model.allow_partial=true");
  return Config::load(a.config, overrides);
}

nlohmann::json run_probe(const ProbeArgs& a) {
  const std::string mode = chosen_mode(a);
  Config config = probe_config(a);
  apply_threads(a.threads > 0 ? a.threads : config.get<int>("threads"));
  torch::Device device(config.get<std::string>("device"));
  ProbeBackbone probe = build_probe_backbone(config, device);
  if (!probe.weights.empty()) std::cerr << probe.weights << ": " << probe.summary << "\n";
  const int64_t calibrated = calibrate_probe_backbone(*probe.backbone, config, device);
  nlohmann::json result = mode == "knn"      ? knn_probe(*probe.backbone, config, device)
                          : mode == "linear" ? linear_probe(*probe.backbone, config, device)
                          : mode == "seg_linear"
                              ? seg_linear_probe(*probe.backbone, config, device)
                              : attention_probe(*probe.backbone, config, device, a.attention_dir);
  result["probe"] = mode;
  result["backbone"] = config.get<std::string>("model.backbone");
  result["weights"] = probe.weights.empty() ? nlohmann::json(nullptr) : nlohmann::json(probe.weights);
  if (!probe.weights.empty()) result["weights_matched"] = probe.matched;
  result["bn_calibrated_batches"] = calibrated;
  return result;
}

}  // namespace

void register_probe(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "probe", "Evaluate frozen backbone features: kNN, linear, seg-linear probe or DINO attention");
  auto args = std::make_shared<ProbeArgs>();
  cmd->add_option("config", args->config,
                  "YAML config file (probe.*, model.backbone, data.* for --seg-linear / --attention)")
      ->required();
  cmd->add_flag("--knn", args->knn, "kNN classifier on probe.data (DINO protocol)");
  cmd->add_flag("--linear", args->linear, "Linear classifier on probe.data");
  cmd->add_flag("--seg-linear", args->seg_linear, "1x1 conv on dense features: train split, mIoU on the val split");
  cmd->add_option("--attention", args->attention_dir,
                  "Write ViT CLS attention maps (val split) to OUT_DIR and score them");
  cmd->add_option("--weights", args->weights,
                  "Backbone weights (.pth or .safetensors; a segmenter's backbone); none = random init");
  cmd->add_option("--key", args->key, "Sub-dict of a training checkpoint for --weights (teacher, student, model)");
  cmd->add_flag("--allow-partial", args->allow_partial, "Accept --weights that leave backbone tensors at their init");
  cmd->add_option("--backbone", args->backbone, "Backbone name (overrides model.backbone)");
  cmd->add_option("--set", args->overrides, "Override a config key: --set probe.knn_k=10 (repeatable)");
  cmd->add_option("--out", args->out, "Also write the JSON result to this file");
  cmd->add_option("--threads", args->threads, "Intra-op threads (0 = the config's threads)");
  cmd->callback([args] {
    spdlog::set_default_logger(spdlog::stderr_color_mt("probe"));  // stdout is the JSON line only
    const std::string line = run_probe(*args).dump();
    if (!args->out.empty()) write_file_atomic(args->out, line + "\n");
    std::cout << line << std::endl;
  });
}

}  // namespace lesseg::cli
