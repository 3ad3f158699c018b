#include "lesseg/methods/pseudo/pseudo.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/data/classes.h"
#include "lesseg/data/formats/format_util.h"
#include "lesseg/data/loader.h"
#include "lesseg/engine/logging.h"
#include "lesseg/eval/probe.h"
#include "lesseg/io/coco.h"
#include "lesseg/io/image_io.h"
#include "lesseg/io/rle.h"
#include "lesseg/methods/predict.h"
#include "lesseg/models/vit.h"
#include "lesseg/spectral/clustering.h"

namespace lesseg {
namespace fs = std::filesystem;
using nlohmann::json;

PatchFeature parse_patch_feature(const std::string& name) {
  if (name == "k") return PatchFeature::keys;
  if (name == "q") return PatchFeature::queries;
  if (name == "v") return PatchFeature::values;
  if (name == "tokens") return PatchFeature::tokens;
  throw_usage("unknown feature '" + name + "' (expected k, q, v or tokens)");
}

PseudoMethod parse_pseudo_method(const std::string& name) {
  if (name == "maskcut") return PseudoMethod::maskcut;
  if (name == "multik") return PseudoMethod::multik;
  if (name == "multik+saliency") return PseudoMethod::multik_saliency;
  if (name == "whole-image") return PseudoMethod::whole_image;
  if (name == "attention") return PseudoMethod::cls_attention;
  throw_usage("unknown pseudo-mask method '" + name +
              "' (expected maskcut, multik, multik+saliency, or the baselines whole-image, attention)");
}

std::pair<int64_t, int64_t> pseudo_input_size(int64_t height, int64_t width, int64_t patch,
                                              const PseudoOptions& options, const fs::path& file) {
  if (height < patch || width < patch)
    throw_bad_input(file, "image is " + std::to_string(width) + "x" + std::to_string(height) +
                              " pixels, smaller than one " + std::to_string(patch) + "x" + std::to_string(patch) +
                              " patch");
  if (!options.keep_aspect) return {options.image_size, options.image_size};  // ref: maskcut.py fixed_size
  // The image's aspect ratio within a budget of image_size^2 pixels, sides rounded to patches.
  const double scale = double(options.image_size) / std::sqrt(double(height) * double(width));
  auto side = [&](int64_t pixels) { return std::max<int64_t>(1, std::llround(pixels * scale / double(patch))) * patch; };
  return {side(height), side(width)};
}

at::Tensor last_block_features(VitImpl& vit, const at::Tensor& images, PatchFeature which, int64_t* grid_h,
                               int64_t* grid_w) {
  torch::NoGradGuard no_grad;
  const bool tokens = which == PatchFeature::tokens;
  VitOutput out = vit.forward_tokens(images, VitForwardOptions().last_qkv(!tokens));
  *grid_h = out.grid_h;
  *grid_w = out.grid_w;
  if (tokens) return out.patch_tokens();
  // ref: maskcut.py: the qkv hook output reshaped to heads; q, k or v of all heads concatenated.
  const at::Tensor& t = which == PatchFeature::keys ? out.k : which == PatchFeature::queries ? out.q : out.v;
  auto all_heads = t.permute({0, 2, 1, 3}).reshape({t.size(0), t.size(2), -1});  // [B, 1+N, D]
  return all_heads.narrow(1, 1, all_heads.size(1) - 1);
}

std::vector<GridMask> grid_masks(const at::Tensor& features, const at::Tensor& aux, int64_t grid_h,
                                 int64_t grid_w, const PseudoOptions& options) {
  std::vector<GridMask> out;
  if (options.method == PseudoMethod::whole_image) return {{cv::Mat::ones(int(grid_h), int(grid_w), CV_8U), 1.0, 0}};
  if (options.method == PseudoMethod::cls_attention) {
    // ref: dino visualize_attention.py threshold; every connected piece (>= min_area) an instance,
    // scored by its share of the attention mass.
    auto map = aux.reshape({grid_h, grid_w}).to(torch::kCPU, torch::kFloat64).contiguous();
    auto keep = attention_mass_mask(map, options.attention_mass).to(torch::kUInt8).contiguous();
    cv::Mat fg(int(grid_h), int(grid_w), CV_8U, keep.data_ptr<uint8_t>());
    const double total = map.sum().item<double>();
    const auto min_pixels = int64_t(options.multik.min_area * double(grid_h * grid_w)) + 1;
    for (cv::Mat& piece : spectral::split_components(fg.clone(), min_pixels)) {
      auto inside = torch::from_blob(piece.data, {grid_h, grid_w}, torch::kUInt8).to(torch::kBool);
      out.push_back({piece, total > 0 ? map.masked_select(inside).sum().item<double>() / total : 0.0, 0});
    }
    return out;
  }
  if (options.method == PseudoMethod::maskcut) {
    for (CutMask& m : maskcut(features, grid_h, grid_w, options.maskcut).masks)
      out.push_back({std::move(m.mask), m.score, 2});
    return out;
  }
  out = multik_candidates(features, grid_h, grid_w, options.multik);
  if (options.method == PseudoMethod::multik_saliency) {
    // ref: Engstler et al.: a k = 2 cut on DINO features; the side touching fewer border patches.
    const cv::Mat salient = saliency_foreground(aux, grid_h, grid_w,
                                                {spectral::AffinityKind::binary, options.maskcut.tau, options.maskcut.eps});
    out = inside_foreground(std::move(out), salient, options.saliency_min_inside);
  }
  return mask_nms(std::move(out), options.multik.nms_iou);
}

std::vector<InstanceMask> masks_at_image_size(const std::vector<GridMask>& grid, const cv::Mat& input_rgb,
                                              int64_t original_height, int64_t original_width,
                                              const PseudoOptions& options) {
  std::vector<InstanceMask> out;
  for (const GridMask& m : grid) {
    cv::Mat coarse;
    cv::resize(m.mask, coarse, input_rgb.size(), 0, 0, cv::INTER_NEAREST);
    if (options.refine) {
      coarse = refine_mask(input_rgb, coarse, options.refine_options);
      if (coarse.empty()) continue;  // ref: maskcut.py drops a mask the refinement changed too much
    }
    cv::Mat soft, full;
    coarse.convertTo(soft, CV_32F);
    cv::resize(soft, soft, cv::Size(int(original_width), int(original_height)), 0, 0, cv::INTER_LINEAR);
    full = soft > 0.5f;
    full /= 255;
    if (cv::countNonZero(full) == 0) continue;
    out.push_back({full, m.score});
  }
  return out;
}

std::vector<fs::path> list_image_files(const fs::path& root) {
  formats::require_dir(root, "image");
  std::vector<fs::path> out;
  for (const fs::path& p : formats::list_files(root, true, formats::is_image_file))
    out.push_back(p.lexically_relative(root));  // not fs::relative: it would resolve symlinked files
  if (out.empty()) throw_bad_input(root, "no image files (png, jpg, ...) in this folder");
  return out;
}

namespace {

struct DoneImage {
  int64_t height = 0, width = 0;
  std::vector<std::pair<rle::Rle, double>> masks;  // with their scores
};

json done_line(const std::string& file_name, const DoneImage& done) {
  json masks = json::array();
  for (const auto& [mask, score] : done.masks) masks.push_back({{"counts", rle::to_string(mask)}, {"score", score}});
  return {{"file_name", file_name}, {"height", done.height}, {"width", done.width}, {"masks", masks}};
}

// Images finished by earlier runs: OUT itself, then OUT.partial.jsonl (a torn last line ignored).
std::map<std::string, DoneImage> read_done(const fs::path& out, const fs::path& partial) {
  std::map<std::string, DoneImage> done;
  if (fs::exists(out)) {
    coco::Dataset previous = coco::read(out);
    for (const coco::Image& image : previous.images) {
      DoneImage& d = done[image.file_name];
      d.height = image.height;
      d.width = image.width;
      auto it = previous.annotations_by_image.find(image.id);
      if (it == previous.annotations_by_image.end()) continue;
      for (size_t a : it->second)
        d.masks.emplace_back(previous.annotations[a].mask, std::max(0.0, previous.annotations[a].score));
    }
  }
  if (!fs::exists(partial)) return done;
  std::ifstream in(partial);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) continue;  // the line a crash cut short
    try {
      DoneImage d;
      d.height = j.at("height").get<int64_t>();
      d.width = j.at("width").get<int64_t>();
      for (const json& m : j.at("masks"))
        d.masks.emplace_back(rle::from_string(m.at("counts").get<std::string>(), d.height, d.width),
                             m.at("score").get<double>());
      done[j.at("file_name").get<std::string>()] = std::move(d);
    } catch (const std::exception& e) {
      throw_bad_input(partial, std::string("unreadable line (delete the file to start over): ") + e.what());
    }
  }
  return done;
}

void write_coco(const fs::path& out, const std::vector<fs::path>& files, const std::map<std::string, DoneImage>& done,
                int64_t* masks) {
  coco::Dataset dataset;
  dataset.categories.push_back({1, "fg"});  // ref: maskcut.py, one class-agnostic category
  for (const fs::path& file : files) {
    const DoneImage& d = done.at(file.generic_string());
    coco::Image image{int64_t(dataset.images.size()) + 1, file.generic_string(), d.height, d.width};
    dataset.images.push_back(image);
    for (const auto& [mask, score] : d.masks) {
      coco::Annotation a;
      a.id = int64_t(dataset.annotations.size()) + 1;
      a.image_id = image.id;
      a.category_id = 1;
      a.mask = mask;
      a.score = score;
      dataset.annotations.push_back(a);
    }
  }
  *masks = int64_t(dataset.annotations.size());
  coco::write(out, dataset);
}

void write_overlay(const fs::path& dir, const fs::path& file, const cv::Mat& rgb, const std::vector<InstanceMask>& masks) {
  cv::Mat labels = cv::Mat::zeros(rgb.size(), CV_8U);
  for (size_t i = 0; i < masks.size(); ++i) labels.setTo(int(i % 254) + 1, masks[i].mask);
  fs::path name = file;
  name.replace_extension(".png");
  std::error_code ec;
  fs::create_directories((dir / name).parent_path(), ec);
  if (ec) throw_io(dir, "cannot create folder: " + ec.message());
  write_image_rgb(dir / name, overlay(rgb, labels, voc_palette()));
}

struct Loaded {
  fs::path file;
  cv::Mat original, input;
};

}  // namespace

PseudoSummary write_pseudo_masks(VitImpl& vit, VitImpl* saliency_vit, const fs::path& root,
                                 const std::vector<fs::path>& files,
                                 const fs::path& out, const fs::path& overlay_dir, const PseudoOptions& options) {
  const fs::path partial = out.string() + ".partial.jsonl";
  std::map<std::string, DoneImage> done = read_done(out, partial);
  std::vector<fs::path> todo;
  for (const fs::path& f : files)
    if (!done.count(f.generic_string())) todo.push_back(f);
  PseudoSummary summary;
  summary.resumed = int64_t(files.size() - todo.size());
  if (summary.resumed) spdlog::info("pseudo: {} of {} images already done, resuming", summary.resumed, files.size());
  std::error_code ec;
  if (out.has_parent_path()) fs::create_directories(out.parent_path(), ec);
  if (ec) throw_io(out.parent_path(), "cannot create folder: " + ec.message());
  std::ofstream append(partial, std::ios::app);
  if (!todo.empty() && !append) throw_io(partial, "cannot open for appending");
  const bool was_training = vit.is_training();
  vit.eval();
  if (saliency_vit) saliency_vit->eval();
  const int64_t patch = vit.options.patch_size();
  const auto start = std::chrono::steady_clock::now();
  Progress progress(int64_t(todo.size()));
  for (size_t first = 0; first < todo.size();) {
    // A batch: consecutive images with the same network input size.
    std::vector<Loaded> batch;
    std::vector<at::Tensor> tensors;
    std::pair<int64_t, int64_t> size{0, 0};
    for (size_t i = first; i < todo.size() && int(batch.size()) < options.batch_size; ++i) {
      cv::Mat rgb;
      std::pair<int64_t, int64_t> in;
      try {
        rgb = read_image_rgb(root / todo[i]);
        in = pseudo_input_size(rgb.rows, rgb.cols, patch, options, root / todo[i]);
      } catch (const Error&) {
        if (batch.empty()) throw;
        break;  // finish (and save) the images before it; the next batch starts with it and fails
      }
      if (!batch.empty() && in != size) break;
      size = in;
      Loaded item{todo[i], rgb, cv::Mat()};
      cv::resize(rgb, item.input, cv::Size(int(in.second), int(in.first)), 0, 0, cv::INTER_LANCZOS4);
      tensors.push_back(image_to_tensor(item.input, options.mean, options.std));
      batch.push_back(std::move(item));
    }
    int64_t grid_h = size.first / patch, grid_w = size.second / patch;
    const auto inputs = torch::stack(tensors).to(options.device);
    at::Tensor feats, aux;
    if (options.method == PseudoMethod::cls_attention) {
      torch::NoGradGuard no_grad;
      VitOutput o = vit.forward_tokens(inputs, VitForwardOptions().last_attention(true));
      aux = o.attention.select(2, 0).narrow(2, 1, grid_h * grid_w).mean(1);  // [B, N], ref: attentions[:, :, 0, 1:]
    } else if (options.method != PseudoMethod::whole_image) {
      feats = last_block_features(vit, inputs, options.feature, &grid_h, &grid_w);
    }
    if (options.method == PseudoMethod::multik_saliency)
      aux = saliency_vit ? last_block_features(*saliency_vit, inputs, PatchFeature::keys, &grid_h, &grid_w)
                         : last_block_features(vit, inputs, PatchFeature::keys, &grid_h, &grid_w);
    for (size_t b = 0; b < batch.size(); ++b) {
      auto grid = grid_masks(feats.defined() ? feats[int64_t(b)] : at::Tensor(),
                             aux.defined() ? aux[int64_t(b)] : at::Tensor(), grid_h, grid_w, options);
      auto masks = masks_at_image_size(grid, batch[b].input, batch[b].original.rows, batch[b].original.cols, options);
      DoneImage d{batch[b].original.rows, batch[b].original.cols, {}};
      for (const InstanceMask& m : masks) d.masks.emplace_back(rle::encode(m.mask), m.score);
      if (!overlay_dir.empty()) write_overlay(overlay_dir, batch[b].file, batch[b].original, masks);
      append << done_line(batch[b].file.generic_string(), d).dump() << "\n" << std::flush;
      if (!append) throw_io(partial, "write failed");
      progress.update(int64_t(first + b + 1), batch[b].file.generic_string() + ": " + std::to_string(masks.size()) +
                                                  " masks");
      done[batch[b].file.generic_string()] = std::move(d);
    }
    first += batch.size();
  }
  progress.finish();
  if (was_training) vit.train();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_coco(out, files, done, &summary.masks);
  append.close();
  fs::remove(partial, ec);  // OUT holds everything now
  summary.images = int64_t(files.size());
  return summary;
}

}  // namespace lesseg
