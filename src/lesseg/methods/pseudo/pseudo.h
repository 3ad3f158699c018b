#pragma once
// `lesseg pseudo`: class-agnostic instance pseudo-masks of a folder of images from a frozen ViT's
// last-block patch features, written as COCO instances JSON (compressed RLE at each image's own
// size, one category "fg", a score per mask). Resumable: finished images are appended to
// OUT.partial.jsonl as they complete and skipped on the next run; OUT itself is written atomically.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <opencv2/core.hpp>

#include "lesseg/methods/pseudo/maskcut.h"
#include "lesseg/methods/pseudo/multik.h"
#include "lesseg/methods/pseudo/refine.h"

namespace lesseg {

class VitImpl;

enum class PatchFeature { keys, queries, values, tokens };
// "k" | "q" | "v" | "tokens"; a usage error otherwise.
PatchFeature parse_patch_feature(const std::string& name);

enum class PseudoMethod {
  maskcut,          // CutLER's MaskCut
  multik,           // every piece of k-way spectral clusterings, k in 2..6, then mask NMS
  multik_saliency,  // multik candidates inside the salient side of a k = 2 cut (DINO features)
  // Trivial baselines for pseudo-mask quality tables:
  whole_image,    // one mask covering the image
  cls_attention,  // connected pieces of the head-mean CLS attention's top 60 % mass (DINO's threshold)
};
// "maskcut" | "multik" | "multik+saliency" | "whole-image" | "attention"; a usage error otherwise.
PseudoMethod parse_pseudo_method(const std::string& name);

struct PseudoOptions {
  PseudoMethod method = PseudoMethod::maskcut;
  PatchFeature feature = PatchFeature::keys;  // official: keys of all heads, concatenated
  // Square input side (official 480), or with keep_aspect the side of the pixel budget
  // (height x width <= image_size^2, each side a multiple of the patch size).
  int64_t image_size = 480;
  bool keep_aspect = false;
  MaskCutOptions maskcut;
  MultiKOptions multik;
  double saliency_min_inside = 0.5;  // share of a candidate inside the salient side
  double attention_mass = 0.6;       // cls_attention: share of the attention mass kept
  bool refine = true;  // bilateral solver + hole filling + the IoU >= 0.5 rule
  RefineOptions refine_options;
  std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  int batch_size = 4;  // images per feature-extraction batch (same input size)
  c10::Device device = c10::kCPU;
};

// The network input {height, width} for an image of height x width. Throws bad_input naming
// `file` when the image is smaller than one patch.
std::pair<int64_t, int64_t> pseudo_input_size(int64_t height, int64_t width, int64_t patch,
                                              const PseudoOptions& options, const std::filesystem::path& file);

// The last block's patch features of images [B, 3, H, W]: [B, N, D] in row-major patch order
// (the CLS token dropped); q / k / v have all heads concatenated, tokens are the normed outputs.
at::Tensor last_block_features(VitImpl& vit, const at::Tensor& images, PatchFeature which, int64_t* grid_h,
                               int64_t* grid_w);

struct InstanceMask {
  cv::Mat mask;  // CV_8U 0/1 at the original image size
  double score = 0;
};

// The grid masks of one image by options.method. features [N, D]; aux: for multik+saliency the
// keys the saliency cut uses [N, D], for cls_attention the head-mean CLS attention [N].
std::vector<GridMask> grid_masks(const at::Tensor& features, const at::Tensor& aux, int64_t grid_h,
                                 int64_t grid_w, const PseudoOptions& options);

// Grid masks at the original image size: nearest upsampling to the network input,
// refinement on the resized image (when enabled; dropped masks are left out), then a bilinear
// resize to the original size thresholded at 0.5.
std::vector<InstanceMask> masks_at_image_size(const std::vector<GridMask>& grid, const cv::Mat& input_rgb,
                                              int64_t original_height, int64_t original_width,
                                              const PseudoOptions& options);

struct PseudoSummary {
  int64_t images = 0;   // images in the output
  int64_t resumed = 0;  // of which already done by an earlier run
  int64_t masks = 0;
  double seconds = 0;   // time of this run's new images
};

// Every image file under `root` (recursively, sorted), relative names as COCO file_name.
std::vector<std::filesystem::path> list_image_files(const std::filesystem::path& root);

// Runs options.method on `files` (paths relative to `root`) and writes `out`; overlay PNGs go to
// `overlay_dir` when it is not empty. `saliency_vit` gives the saliency cut's keys for
// multik+saliency (nullptr: `vit`'s keys).
PseudoSummary write_pseudo_masks(VitImpl& vit, VitImpl* saliency_vit, const std::filesystem::path& root,
                                 const std::vector<std::filesystem::path>& files, const std::filesystem::path& out,
                                 const std::filesystem::path& overlay_dir, const PseudoOptions& options);

}  // namespace lesseg
