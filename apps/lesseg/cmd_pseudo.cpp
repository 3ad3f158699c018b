// `lesseg pseudo`: class-agnostic instance pseudo-masks of a folder of images (MaskCut on a
// frozen ViT's last-block features), written as COCO instances JSON.
#include <iostream>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "commands.h"
#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/eval/probe.h"
#include "lesseg/methods/pseudo/pseudo.h"
#include "lesseg/models/vit.h"
#include "lesseg/spectral/graph.h"

namespace lesseg::cli {
namespace {

struct PseudoArgs {
  std::string images, out, overlays, weights, key, backbone = "vit_small8", feature = "k", method = "maskcut";
  std::string saliency_weights, saliency_key, saliency_backbone, multik_affinity = "positive";
  std::string device = "cpu";
  std::vector<std::string> overrides;
  PseudoOptions options;
  bool no_refine = false, allow_partial = false;
  int threads = 0;
  int64_t seed = 0;
};

// A ViT from --backbone / --weights style arguments (random init, seeded, without weights).
ProbeBackbone vit_backbone(const std::string& backbone, const std::string& weights, const std::string& key,
                           const PseudoArgs& a, torch::Device device) {
  std::vector<std::string> overrides = a.overrides;
  overrides.push_back("model.backbone=" + backbone);
  overrides.push_back("seed=" + std::to_string(a.seed));
  if (!weights.empty()) overrides.push_back("model.weights=" + weights);
  if (!key.empty()) overrides.push_back("model.weights_key=" + key);
  if (a.allow_partial) overrides.push_back("model.allow_partial=true");
  ProbeBackbone built = build_probe_backbone(Config::load("", overrides), device);
  if (!dynamic_cast<VitImpl*>(built.backbone.get()))
    throw_usage("pseudo-masks need a ViT backbone (--backbone vit_small8, vit_base8, ...), not " + backbone);
  if (built.weights.empty())
    spdlog::warn("pseudo: no weights for {}, RANDOMLY initialized (a baseline, not a pretrained model)", backbone);
  else
    spdlog::info("pseudo: {}: {}", built.weights, built.summary);
  return built;
}

void run_pseudo(PseudoArgs& a) {
  const int threads = apply_threads(a.threads);
  torch::Device device(a.device);
  a.options.device = device;
  a.options.method = parse_pseudo_method(a.method);
  a.options.feature = parse_patch_feature(a.feature);
  a.options.refine = !a.no_refine;
  if (a.multik_affinity != "positive" && a.multik_affinity != "binary")
    throw_usage("--multik-affinity must be positive or binary");
  a.options.multik.affinity.kind =
      a.multik_affinity == "positive" ? spectral::AffinityKind::positive : spectral::AffinityKind::binary;
  a.options.multik.affinity.tau = a.options.maskcut.tau;
  if (a.options.image_size <= 0 || a.options.batch_size <= 0 || a.options.maskcut.max_masks <= 0)
    throw_usage("--image-size, --batch and --max-masks must be positive");
  for (int k : a.options.multik.ks)
    if (k < 2) throw_usage("--ks: every k must be at least 2");
  const auto files = list_image_files(a.images);  // bad input before any model work
  ProbeBackbone built = vit_backbone(a.backbone, a.weights, a.key, a, device);
  auto* vit = dynamic_cast<VitImpl*>(built.backbone.get());
  ProbeBackbone saliency;
  VitImpl* saliency_vit = nullptr;
  if (!a.saliency_weights.empty()) {
    if (a.options.method != PseudoMethod::multik_saliency)
      throw_usage("--saliency-weights is for --method multik+saliency");
    saliency = vit_backbone(a.saliency_backbone.empty() ? a.backbone : a.saliency_backbone, a.saliency_weights,
                            a.saliency_key, a, device);
    saliency_vit = dynamic_cast<VitImpl*>(saliency.backbone.get());
    if (saliency_vit->options.patch_size() != vit->options.patch_size())
      throw_usage("the saliency backbone's patch size must equal the backbone's (their grids must match)");
  }
  spdlog::info("pseudo: {} on {} images, {} on {}, {} thread(s)", a.method, files.size(), a.backbone, a.device,
               threads);
  PseudoSummary s = write_pseudo_masks(*vit, saliency_vit, a.images, files, a.out, a.overlays, a.options);
  nlohmann::json result{{"out", a.out},          {"images", s.images},   {"resumed", s.resumed},
                        {"masks", s.masks},      {"seconds", s.seconds}, {"method", a.method},
                        {"features", a.feature}, {"backbone", a.backbone}};
  std::cout << result.dump() << std::endl;
}

}  // namespace

void register_pseudo(CLI::App& app) {
  auto* cmd = app.add_subcommand("pseudo", "Unsupervised instance pseudo-masks (MaskCut) of a folder of images");
  auto a = std::make_shared<PseudoArgs>();
  cmd->add_option("images", a->images, "Folder of images (searched recursively)")->required();
  cmd->add_option("--out", a->out, "COCO instances JSON to write (resumes from OUT.partial.jsonl)")->required();
  cmd->add_option("--method", a->method, "maskcut (default), multik, multik+saliency; baselines: whole-image, attention");
  cmd->add_option("--weights", a->weights, "ViT weights: official DINO / MAE .pth or a lesseg backbone.safetensors");
  cmd->add_option("--key", a->key, "Sub-dict of a training checkpoint for --weights (teacher, student, model)");
  cmd->add_flag("--allow-partial", a->allow_partial, "Accept --weights that leave backbone tensors at their init");
  cmd->add_option("--backbone", a->backbone, "ViT name (default vit_small8)");
  cmd->add_option("--features", a->feature, "Last-block features: k (official), q, v or tokens");
  cmd->add_option("--image-size", a->options.image_size, "Network input side in pixels (default 480)");
  cmd->add_flag("--keep-aspect", a->options.keep_aspect,
                "Keep each image's aspect ratio within image-size^2 pixels (default: square, as official)");
  cmd->add_option("--tau", a->options.maskcut.tau, "Affinity threshold (default 0.15)");
  cmd->add_option("--max-masks", a->options.maskcut.max_masks, "Cuts per image N (default 3)");
  cmd->add_option("--max-ncut", a->options.maskcut.max_ncut,
                  "Adaptive stop: no further mask once a cut's NCut exceeds this (default 2 = fixed N)");
  cmd->add_flag("--split-components", a->options.maskcut.split_components,
                "Each disconnected piece of a cut becomes its own mask (official: the seed's piece only)");
  cmd->add_flag("--overlap-with-all", a->options.maskcut.overlap_with_all,
                "Reject a mask overlapping ANY earlier mask (official: the previous one only)");
  cmd->add_option("--ks", a->options.multik.ks, "multik: the cluster counts k (default 2 3 4 5 6)")->delimiter(',');
  cmd->add_option("--multik-affinity", a->multik_affinity,
                  "multik: positive (max(0, cos), Deep Spectral Methods; default) or binary (> tau)");
  cmd->add_option("--nms", a->options.multik.nms_iou, "multik: mask NMS IoU (default 0.5; 1 keeps every mask)");
  cmd->add_option("--saliency-weights", a->saliency_weights,
                  "multik+saliency: the ViT (DINO) whose k = 2 cut gives the salient side (default: --weights)");
  cmd->add_option("--saliency-backbone", a->saliency_backbone, "multik+saliency: its ViT name (default --backbone)");
  cmd->add_option("--saliency-key", a->saliency_key, "Sub-dict of a training checkpoint for --saliency-weights");
  cmd->add_flag("--no-refine", a->no_refine, "Skip the bilateral-solver refinement");
  cmd->add_option("--overlays", a->overlays, "Also write a mask overlay PNG per image to this folder");
  cmd->add_option("--batch", a->options.batch_size, "Images per feature-extraction batch (default 4)");
  cmd->add_option("--device", a->device, "cpu or cuda (default cpu)");
  cmd->add_option("--threads", a->threads, "Intra-op threads (0 = all usable cores)");
  cmd->add_option("--seed", a->seed, "Seed of a randomly initialized backbone (no --weights)");
  cmd->add_option("--set", a->overrides, "Override a config key, e.g. --set model.pos_embed=sincos (repeatable)");
  cmd->callback([a] {
    spdlog::set_default_logger(spdlog::stderr_color_mt("pseudo"));  // stdout is the JSON line only
    run_pseudo(*a);
  });
}

}  // namespace lesseg::cli
