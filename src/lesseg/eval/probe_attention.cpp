// DINO's CLS attention maps of a ViT: PNG export and foreground IoU of the thresholded maps.
#include <cmath>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "lesseg/data/loader.h"
#include "lesseg/data/open.h"
#include "lesseg/eval/probe.h"
#include "lesseg/eval/probe_internal.h"
#include "lesseg/io/image_io.h"
#include "lesseg/models/vit.h"

namespace lesseg {
namespace F = torch::nn::functional;
namespace fs = std::filesystem;
using torch::indexing::None;
using torch::indexing::Slice;

at::Tensor cls_attention(VitImpl& vit, const at::Tensor& image) {
  TORCH_CHECK(image.dim() == 4 && image.size(0) == 1, "cls_attention takes one image [1, 3, H, W]");
  VitOutput out = vit.forward_tokens(image, VitForwardOptions().last_attention(true));
  // ref: dino visualize_attention.py: attentions[0, :, 0, 1:] (the CLS row, patch columns)
  auto cls_row = out.attention.index({0, Slice(), 0, Slice(1, None)});
  return cls_row.reshape({cls_row.size(0), out.grid_h, out.grid_w});
}

at::Tensor attention_mass_mask(const at::Tensor& maps, double mass) {
  TORCH_CHECK(maps.dim() >= 2, "attention_mass_mask takes [..., h, w] maps");
  auto flat = maps.reshape({-1, maps.size(-2) * maps.size(-1)}).to(torch::kFloat);
  // ref: dino visualize_attention.py (threshold): sort ascending, normalize, keep cumsum > 1 - mass,
  // then undo the sort (argsort of the sort indices).
  auto [values, order] = flat.sort(1);
  values = values / values.sum({1}, true);
  auto keep_sorted = values.cumsum(1) > (1.0 - mass);
  return keep_sorted.gather(1, order.argsort(/*dim=*/int64_t(1), /*descending=*/false)).reshape(maps.sizes());
}

at::Tensor upsample_maps(const at::Tensor& maps, int64_t height, int64_t width) {
  return F::interpolate(maps.unsqueeze(0).to(torch::kFloat),
                        F::InterpolateFuncOptions().size(std::vector<int64_t>{height, width}).mode(torch::kNearest))[0];
}

double foreground_iou(const at::Tensor& mask, const at::Tensor& labels, int64_t ignore_index) {
  TORCH_CHECK(mask.sizes() == labels.sizes(), "foreground_iou: mask and labels differ in size");
  auto valid = labels != ignore_index;
  auto truth = (labels != 0).logical_and(valid);
  auto predicted = mask.to(torch::kBool).logical_and(valid);
  const double uni = predicted.logical_or(truth).sum().item<double>();
  if (uni == 0) return NAN;
  return predicted.logical_and(truth).sum().item<double>() / uni;
}

namespace {

cv::Mat to_rgb8(const at::Tensor& gray01) {  // [H, W] in [0, 1] -> CV_8UC3 grey
  auto bytes = (gray01 * 255.0).round().clamp(0, 255).to(torch::kUInt8).contiguous();
  cv::Mat gray(int(bytes.size(0)), int(bytes.size(1)), CV_8U, bytes.data_ptr<uint8_t>()), rgb;
  cv::cvtColor(gray, rgb, cv::COLOR_GRAY2RGB);
  return rgb;
}

cv::Mat heatmap(const at::Tensor& map) {  // min-max scaled, viridis
  auto scaled = (map - map.min()) / (map.max() - map.min()).clamp_min(1e-12);
  cv::Mat gray, bgr, rgb;
  cv::cvtColor(to_rgb8(scaled), gray, cv::COLOR_RGB2GRAY);
  cv::applyColorMap(gray, bgr, cv::COLORMAP_VIRIDIS);
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

void make_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_io(dir, "cannot create folder: " + ec.message());
}

std::string file_stem(const std::string& id) {
  std::string out = id;
  for (char& c : out)
    if (c == '/' || c == '\\') c = '_';
  return out;
}

// maps / masks: [heads + 1, H, W], the last row the head mean.
void write_attention_pngs(const fs::path& dir, const std::string& id, const cv::Mat& image, const at::Tensor& maps,
                          const at::Tensor& masks) {
  const std::string stem = file_stem(id);
  write_image_rgb(dir / (stem + "_image.png"), image);
  const int64_t heads = maps.size(0) - 1;
  for (int64_t h = 0; h <= heads; ++h) {
    const std::string name = stem + (h == heads ? std::string("_mean") : "_head" + std::to_string(h));
    write_image_rgb(dir / (name + ".png"), heatmap(maps[h]));
    write_image_rgb(dir / (name + "_mask.png"), to_rgb8(masks[h].to(torch::kFloat)));
  }
}

at::Tensor mask_tensor(cv::Mat mask) {
  if (!mask.isContinuous()) mask = mask.clone();
  return torch::from_blob(mask.data, {mask.rows, mask.cols}, torch::kUInt8).to(torch::kLong);
}

double nan_mean(const std::vector<double>& values) {
  double sum = 0;
  int count = 0;
  for (double v : values) {
    if (std::isnan(v)) continue;
    sum += v;
    ++count;
  }
  return count ? sum / count : NAN;
}

nlohmann::json number_or_null(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

}  // namespace

nlohmann::json attention_probe(VitImpl& vit, SegDatasetPtr dataset, const AttentionProbeOptions& options) {
  if (options.image_size % vit.options.patch_size() != 0)
    throw_usage("probe.image_size (" + std::to_string(options.image_size) + ") must be a multiple of the patch size " +
                std::to_string(vit.options.patch_size()));
  probe_detail::EvalModeGuard eval(vit);
  torch::NoGradGuard no_grad;
  const int side = static_cast<int>(options.image_size);
  const int64_t count = std::min<int64_t>(options.max_images, static_cast<int64_t>(dataset->size()));
  const int ignore = dataset->classes().ignore_index;
  std::vector<std::vector<double>> iou;  // [heads + 1][image]
  if (!options.out_dir.empty()) make_dirs(options.out_dir);
  for (int64_t i = 0; i < count; ++i) {
    SegSample sample = dataset->get(static_cast<size_t>(i));
    resize_sample(sample, side, side);
    auto image = image_to_tensor(sample.image, options.mean, options.std).unsqueeze(0).to(options.device);
    auto maps = cls_attention(vit, image).to(torch::kCPU, torch::kFloat);
    maps = torch::cat({maps, maps.mean({0}, true)});
    auto masks = upsample_maps(attention_mass_mask(maps, options.mass), side, side) > 0.5;
    auto up = upsample_maps(maps, side, side);
    if (!options.out_dir.empty()) write_attention_pngs(options.out_dir, sample.id, sample.image, up, masks);
    if (sample.mask.empty()) continue;  // unlabeled: nothing to score
    iou.resize(static_cast<size_t>(masks.size(0)));
    auto labels = mask_tensor(sample.mask);
    for (int64_t h = 0; h < masks.size(0); ++h) iou[size_t(h)].push_back(foreground_iou(masks[h], labels, ignore));
  }
  nlohmann::json out{{"images", count}, {"mass", options.mass}};
  if (iou.empty()) {
    out["attention_iou"] = nullptr;
    return out;
  }
  std::vector<double> per_head;
  for (size_t h = 0; h + 1 < iou.size(); ++h) per_head.push_back(nan_mean(iou[h]));
  size_t best = 0;
  for (size_t h = 1; h < per_head.size(); ++h)
    if (std::isnan(per_head[best]) || per_head[h] > per_head[best]) best = h;
  out["attention_iou"] = number_or_null(per_head[best]);
  out["best_head"] = best;
  out["iou_per_head"] = nlohmann::json::array();
  for (double v : per_head) out["iou_per_head"].push_back(number_or_null(v));
  out["iou_mean_map"] = number_or_null(nan_mean(iou.back()));
  out["scored_images"] = iou.back().size();
  return out;
}

nlohmann::json attention_probe(BackboneImpl& backbone, const Config& config, c10::Device device,
                               const fs::path& out_dir) {
  auto* vit = dynamic_cast<VitImpl*>(&backbone);
  if (!vit) throw_usage("the attention probe needs a ViT backbone (model.backbone vit_small16, vit_tiny16, ...)");
  AttentionProbeOptions options;
  options.image_size = probe_detail::positive<int64_t>(config, "probe.image_size");
  options.max_images = probe_detail::positive<int64_t>(config, "probe.attention_images");
  options.mass = config.get<double>("probe.attention_mass");
  if (!(options.mass > 0 && options.mass <= 1)) throw_usage("probe.attention_mass must be in (0, 1]");
  options.mean = config_triple(config, "data.mean");
  options.std = config_triple(config, "data.std");
  options.out_dir = out_dir;
  options.device = device;
  return attention_probe(*vit, open_dataset(config, "val"), options);
}

}  // namespace lesseg
