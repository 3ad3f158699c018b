#pragma once
// Feature probes on a frozen backbone (specs/ssl.md "Evaluating features"): a kNN and a linear
// classifier on a labelled classification set (probe.data), a linear segmentation head on dense
// features scored by mIoU, and DINO's last-block CLS attention maps with their foreground IoU.
// Accuracies are fractions in [0, 1] (DINO prints percentages). The backbone is put in eval mode
// and its training flag restored afterwards; no gradient reaches it.
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <nlohmann/json_fwd.hpp>

#include "lesseg/data/classification.h"
#include "lesseg/data/dataset.h"
#include "lesseg/data/transforms.h"
#include "lesseg/models/backbone.h"

namespace lesseg {

class Config;
class VitImpl;

// ---- classification probes ----

struct ProbeImageOptions {
  int64_t image_size = 64;  // images are resized to this square side
  int batch_size = 64;
  std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  // A ViT's image vector: "cls" (global_embedding) or "mean" (the mean of its normed patch tokens, the
  // global pooling MAE offers for probing); a CNN's is always its pooled deepest map.
  std::string pool = "cls";
  c10::Device device = c10::kCPU;
};

// One vector per image (options.pool) of every image, [N, D] float32 on the CPU.
at::Tensor extract_features(BackboneImpl& backbone, const std::vector<LabeledImage>& images,
                            const ProbeImageOptions& options);
at::Tensor labels_of(const std::vector<LabeledImage>& images);  // [N] int64

struct ProbeAccuracy {
  double top1 = 0;
  double top5 = NAN;  // only with >= 5 classes
};
// Share of rows of scores [M, C] whose label [M] is the argmax (top1) / among the 5 largest (top5);
// ties rank the lower class index first.
ProbeAccuracy top_k_accuracy(const at::Tensor& scores, const at::Tensor& labels);

struct KnnOptions {
  int64_t k = 20;            // neighbours (capped at the bank size)
  double temperature = 0.07;  // votes weigh exp(cosine similarity / temperature)
};
// ref: dino eval_knn.py knn_classifier. Features are L2-normalized here; returns the summed vote
// weight of each class [M, C] for every test row.
at::Tensor knn_votes(const at::Tensor& bank, const at::Tensor& bank_labels, const at::Tensor& queries,
                     int64_t num_classes, const KnnOptions& options);
ProbeAccuracy knn_classify(const at::Tensor& bank, const at::Tensor& bank_labels, const at::Tensor& queries,
                           const at::Tensor& query_labels, int64_t num_classes, const KnnOptions& options);

struct LinearProbeOptions {
  int64_t iters = 500;
  double lr = 0.1;  // SGD (momentum 0.9, no weight decay), cosine decay to 0 as in dino eval_linear.py
  int batch_size = 64;
  // z-score the features with the training rows' per-dimension mean / std first: random-init and
  // pretrained backbones differ in feature scale by orders of magnitude, and one lr must fit both.
  bool standardize = true;
  uint64_t seed = 0;
  c10::Device device = c10::kCPU;
};
struct LinearProbeResult {
  ProbeAccuracy train, test;
  double final_loss = 0;
};
// A BN-free linear layer (weights ~ N(0, 0.01), zero bias, as DINO's LinearClassifier) trained with
// cross-entropy on seeded minibatches of the training rows.
LinearProbeResult linear_probe(const at::Tensor& train_features, const at::Tensor& train_labels,
                               const at::Tensor& test_features, const at::Tensor& test_labels, int64_t num_classes,
                               const LinearProbeOptions& options);

// ---- segmentation probe ----

struct SegProbeOptions {
  int64_t iters = 300;
  double lr = 0.05;  // SGD momentum 0.9, cosine decay
  int batch_size = 8;
  AugmentOptions train_augment, eval_augment;  // batches need one size: crop (train) / resize (eval)
  std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  uint64_t seed = 0;
  int workers = 2;
  int64_t max_eval_images = 0;  // 0 = the whole split
  c10::Device device = c10::kCPU;
};
// A 1x1 conv on the channel-standardized (statistics of the first training batch) dense_features,
// logits upsampled bilinearly to the label size, cross-entropy with the ignore index; then the
// mIoU of backbone + head on `val` via evaluate_segmenter. Returns metrics_json plus "final_loss".
nlohmann::json seg_linear_probe(BackboneImpl& backbone, SegDatasetPtr train, SegDatasetPtr val,
                                const SegProbeOptions& options);

// ---- DINO attention maps ----

// ref: dino visualize_attention.py. The last block's CLS -> patch attention of one image
// [1, 3, H, W]: [heads, grid_h, grid_w].
at::Tensor cls_attention(VitImpl& vit, const at::Tensor& image);
// Per map (leading dims kept), the patches holding the top `mass` share of the attention:
// sorted ascending, normalized, cumulative sum > 1 - mass. Bool, same shape.
at::Tensor attention_mass_mask(const at::Tensor& maps, double mass = 0.6);
// Nearest upsampling of [C, h, w] maps to [C, height, width] (DINO: scale_factor = patch size).
at::Tensor upsample_maps(const at::Tensor& maps, int64_t height, int64_t width);
// IoU of a binary mask [H, W] with the foreground of labels [H, W] (label != 0 and != ignore);
// ignored pixels count for neither. NaN when both are empty.
double foreground_iou(const at::Tensor& mask, const at::Tensor& labels, int64_t ignore_index);

struct AttentionProbeOptions {
  int64_t image_size = 64;  // images (and masks, nearest) are resized to this square side
  int64_t max_images = 8;   // validation images scored
  double mass = 0.6;
  std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  std::filesystem::path out_dir;  // empty: no PNGs
  c10::Device device = c10::kCPU;
};
// Per image: the heatmap (min-max scaled, viridis) and binary mask of every head and of the head
// mean as PNGs `<id>_head<h>[_mask].png`, `<id>_mean[_mask].png`, plus `<id>_image.png`.
// Scores: "attention_iou" is the BEST HEAD's foreground IoU, the head chosen once for the whole
// set (highest mean IoU over the images), so the same rule ranks DINO and a random-init ViT;
// also "best_head", "iou_per_head" and "iou_mean_map" (the mask of the head-averaged map).
nlohmann::json attention_probe(VitImpl& vit, SegDatasetPtr dataset, const AttentionProbeOptions& options);

// ---- BatchNorm calibration (the random-init baseline with statistics of real activations) ----

// Resets every BatchNorm's running statistics and sets them to the cumulative average over
// `batches` batches from `next_images` (empty tensor: no more), forwarded in training mode without
// gradients. Returns the batches used; 0 when the backbone has no BatchNorm (nothing is run).
int64_t calibrate_batchnorm(BackboneImpl& backbone, const std::function<at::Tensor()>& next_images, int64_t batches);

// ---- from a config (the `lesseg probe` command; the pretraining task's periodic evaluation) ----

struct ProbeBackbone {
  std::shared_ptr<BackboneImpl> backbone;
  std::string weights;  // the file loaded; "" = random init (the baseline)
  size_t matched = 0, missing = 0, mismatched = 0;
  std::string summary;  // the weight report's one-line summary
};
// model.backbone, initialized under torch::manual_seed(seed), then model.weights (a lesseg backbone
// or segmenter safetensors, or an official .pth; key model.weights_key, model.allow_partial) loaded
// into it; moved to `device`.
ProbeBackbone build_probe_backbone(const Config& config, c10::Device device);

ProbeImageOptions probe_image_options(const Config& config, c10::Device device);
// probe.calibrate_bn batches: probe.data's training split when probe.data is set, else the data.*
// train split with its training augmentation. Returns the batches used.
int64_t calibrate_probe_backbone(BackboneImpl& backbone, const Config& config, c10::Device device);
// The backbone must already be on `device`. probe.data split by probe.train_fraction (seed: `seed`):
// {"knn_top1", "knn_top5" (>= 5 classes), "knn_k", "train_images", "test_images", "classes"}.
nlohmann::json knn_probe(BackboneImpl& backbone, const Config& config, c10::Device device);
// {"linear_top1", "linear_top5", "linear_train_top1", "final_loss", ...}
nlohmann::json linear_probe(BackboneImpl& backbone, const Config& config, c10::Device device);
// The config's train / val segmentation splits; metrics_json + "final_loss".
nlohmann::json seg_linear_probe(BackboneImpl& backbone, const Config& config, c10::Device device);
// The config's val split; the backbone must be a ViT (usage error otherwise).
nlohmann::json attention_probe(BackboneImpl& backbone, const Config& config, c10::Device device,
                               const std::filesystem::path& out_dir);

}  // namespace lesseg
