// MaskCut speed and agreement against the official algorithm (tools/maskcut/official.py: dense
// float64 scipy.linalg.eigh(D - A, D) and the official post-processing) on the same ViT features,
// dumped once: per-image time ratio and the share of masks with IoU >= 0.99. Then the whole
// pseudo-mask pipeline (ViT features at 480 px + MaskCut + refinement) in images/s at 1 and 2 threads.
//
//   build/bench/bench_maskcut [--fruits 18] [--horses 20] [--synth 20] [--weights W] [--out DIR]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/fs.h"
#include "lesseg/data/formats/format_util.h"
#include "lesseg/data/loader.h"
#include "lesseg/data/synth/synth.h"
#include "lesseg/eval/probe.h"
#include "lesseg/io/image_io.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/methods/pseudo/pseudo.h"
#include "lesseg/models/vit.h"
#include "reference.h"

namespace fs = std::filesystem;
using namespace lesseg;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<cv::Mat> folder_images(const fs::path& dir, int count) {
  std::vector<cv::Mat> out;
  if (!fs::is_directory(dir)) return out;
  for (const fs::path& p : formats::list_files(dir, false, formats::is_image_file)) {
    if (int(out.size()) >= count) break;
    out.push_back(read_image_rgb(p));
  }
  return out;
}

at::Tensor input_tensor(const cv::Mat& rgb, int64_t side, const PseudoOptions& options, cv::Mat* resized) {
  cv::resize(rgb, *resized, cv::Size(int(side), int(side)), 0, 0, cv::INTER_LANCZOS4);
  return image_to_tensor(*resized, options.mean, options.std).unsqueeze(0);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("MaskCut against the official algorithm");
  int fruits = 18, horses = 20, synth_count = 20, pipeline_images = 6, threads = 2;
  int64_t side = 480;
  std::string weights, backbone = "vit_small8", out_dir = "runs/bench_maskcut";
  app.add_option("--fruits", fruits);
  app.add_option("--horses", horses);
  app.add_option("--synth", synth_count);
  app.add_option("--pipeline-images", pipeline_images);
  app.add_option("--threads", threads, "threads of both sides in the comparison");
  app.add_option("--size", side, "input side (480: a 60x60 grid with patch 8)");
  app.add_option("--weights", weights, "ViT weights (default: random init, seed 0)");
  app.add_option("--backbone", backbone);
  app.add_option("--out", out_dir);
  std::string reuse;
  app.add_option("--features", reuse, "features.safetensors of an earlier run on the same images (skips extraction)");
  CLI11_PARSE(app, argc, argv);
  const fs::path data = fs::path(LESSEG_SOURCE_DIR) / ".." / "shared" / "data";

  std::vector<std::pair<std::string, cv::Mat>> images;
  for (cv::Mat& m : folder_images(data / "fruits" / "images", fruits)) images.emplace_back("fruits", m);
  for (cv::Mat& m : folder_images(data / "horses" / "images", horses)) images.emplace_back("horses", m);
  synth::Options world;
  world.domain = "target";
  world.size = 256;
  for (int i = 0; i < synth_count; ++i) images.emplace_back("synth", synth::render_scene(world, uint64_t(i)).image);

  std::vector<std::string> overrides{"model.backbone=" + backbone, "seed=0"};
  if (!weights.empty()) overrides.push_back("model.weights=" + weights);
  auto built = build_probe_backbone(Config::load("", overrides), torch::kCPU);
  auto* vit = dynamic_cast<VitImpl*>(built.backbone.get());
  if (!vit) {
    std::cerr << "needs a ViT backbone\n";
    return 2;
  }
  vit->eval();
  PseudoOptions options;
  at::set_num_threads(threads);

  // 1. Features once, dumped for the official side.
  std::vector<std::pair<std::string, at::Tensor>> dump;
  std::vector<at::Tensor> features;
  int64_t grid_h = 0, grid_w = 0;
  auto start = std::chrono::steady_clock::now();
  std::map<std::string, at::Tensor> earlier;
  if (!reuse.empty())
    for (auto& [name, t] : load_safetensors(reuse).tensors) earlier[name] = t;
  for (size_t i = 0; i < images.size(); ++i) {
    cv::Mat resized;
    at::Tensor f;
    if (earlier.count("features_" + std::to_string(i))) {
      f = earlier.at("features_" + std::to_string(i));
      grid_h = earlier.at("grid_" + std::to_string(i))[0].item<int64_t>();
      grid_w = earlier.at("grid_" + std::to_string(i))[1].item<int64_t>();
    } else {
      f = last_block_features(*vit, input_tensor(images[i].second, side, options, &resized), PatchFeature::keys,
                              &grid_h, &grid_w)[0].contiguous();
    }
    features.push_back(f);
    dump.emplace_back("features_" + std::to_string(i), f);
    dump.emplace_back("grid_" + std::to_string(i), torch::tensor({grid_h, grid_w}, torch::kInt64));
  }
  const double feature_seconds = seconds_since(start);
  fs::create_directories(out_dir);
  const fs::path feature_file = fs::path(out_dir) / "features.safetensors";
  const fs::path official_file = fs::path(out_dir) / "official_masks.safetensors";
  save_safetensors(feature_file, dump);
  std::fprintf(stderr, "%zu images, %lldx%lld grid, features in %.1f s; running the official algorithm...\n",
               images.size(), (long long)grid_h, (long long)grid_w, feature_seconds);

  // 2. lesseg on the features, its masks dumped slot by slot (a discarded cut stays empty).
  double ours_total = 0;
  int64_t products = 0;  // Lanczos products with W: what the eigen-solves cost, independent of the machine
  std::vector<std::pair<std::string, at::Tensor>> ours_dump;
  std::vector<at::Tensor> ours;
  for (size_t i = 0; i < features.size(); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    MaskCutResult cut = maskcut(features[i], grid_h, grid_w, options.maskcut);
    ours_total += seconds_since(t0);
    products += cut.matrix_products;
    auto slots = torch::zeros({options.maskcut.max_masks, grid_h, grid_w}, torch::kUInt8);
    for (auto& m : cut.masks)
      slots[m.cut].copy_(torch::from_blob(m.mask.data, {grid_h, grid_w}, torch::kUInt8));
    ours.push_back(slots);
    ours_dump.emplace_back("masks_" + std::to_string(i), slots);
  }
  const fs::path ours_file = fs::path(out_dir) / "lesseg_masks.safetensors";
  save_safetensors(ours_file, ours_dump);
  std::fprintf(stderr, "lesseg: %.3f s / image; running the official algorithm...\n", ours_total / images.size());

  // 3. The official algorithm (Python, dense SciPy eigh), same features and threads; it also
  // checks each lesseg mask against both eigenvector signs (official.py follow()).
  auto official = bench::run_reference(std::string(LESSEG_REFERENCE_PYTHON) + " " + LESSEG_SOURCE_DIR +
                                       "/tools/maskcut/official.py " + feature_file.string() + " " +
                                       official_file.string() + " --threads " + std::to_string(threads) +
                                       " --ours " + ours_file.string());
  if (official.is_null()) return 1;
  auto loaded = load_safetensors(official_file).tensors;
  std::map<std::string, at::Tensor> reference(loaded.begin(), loaded.end());
  double official_total = 0;
  int masks = 0, agree = 0, valid = 0;
  std::map<std::string, std::array<int, 3>> by_source;  // same as SciPy's sign, valid for a sign, masks
  for (size_t i = 0; i < features.size(); ++i) {
    official_total += reference.at("seconds_" + std::to_string(i))[0].item<double>();
    auto ref = reference.at("masks_" + std::to_string(i));
    auto ok = reference.at("valid_" + std::to_string(i));
    for (int64_t c = 0; c < ref.size(0); ++c) {
      auto r = ref[c].contiguous();
      auto o = ours[i][c].contiguous();
      cv::Mat expected(int(grid_h), int(grid_w), CV_8U, r.data_ptr<uint8_t>());
      cv::Mat got(int(grid_h), int(grid_w), CV_8U, o.data_ptr<uint8_t>());
      const bool both_empty = cv::countNonZero(expected) == 0 && cv::countNonZero(got) == 0;
      const bool same = both_empty || mask_iou(expected, got) >= 0.99;
      ++masks;
      agree += same;
      valid += ok[c].item<int>();
      auto& counts = by_source[images[i].first];
      counts[0] += same;
      counts[1] += ok[c].item<int>();
      counts[2] += 1;
    }
  }

  // 4. The whole pipeline per image (resize, ViT features, MaskCut, refinement) at 1 and 2 threads.
  nlohmann::json pipeline;
  for (int t : {1, 2}) {
    at::set_num_threads(t);
    const int n = std::min<int>(pipeline_images, int(images.size()));
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      cv::Mat resized;
      auto f = last_block_features(*vit, input_tensor(images[size_t(i)].second, side, options, &resized),
                                   PatchFeature::keys, &grid_h, &grid_w)[0];
      masks_at_image_size(grid_masks(f, at::Tensor(), grid_h, grid_w, options), resized, images[size_t(i)].second.rows, images[size_t(i)].second.cols, options);
    }
    pipeline["images_per_second_" + std::to_string(t) + "_threads"] = n / seconds_since(t0);
  }

  const double n = double(features.size());
  nlohmann::json result{{"images", features.size()},
                        {"grid", {grid_h, grid_w}},
                        {"backbone", backbone},
                        {"weights", weights.empty() ? "random init" : weights},
                        {"threads", threads},
                        {"official_seconds_per_image", official_total / n},
                        {"lesseg_seconds_per_image", ours_total / n},
                        {"speedup", official_total / ours_total},
                        {"lesseg_matrix_products_per_image", double(products) / n},
                        {"masks_compared", masks},
                        {"masks_iou_ge_0_99", double(agree) / masks},
                        {"masks_valid_for_a_sign", double(valid) / masks},
                        {"pipeline", pipeline}};
  for (auto& [source, counts] : by_source) {
    result["agreement_" + source] = double(counts[0]) / counts[2];
    result["valid_for_a_sign_" + source] = double(counts[1]) / counts[2];
  }
  std::printf("MaskCut, %d images (%s), %lldx%lld grid, N = 3, %d threads\n", int(n), backbone.c_str(),
              (long long)grid_h, (long long)grid_w, threads);
  std::printf("  official (dense SciPy eigh)  %8.3f s / image\n", official_total / n);
  std::printf("  lesseg (Spectra Lanczos)     %8.3f s / image   speed-up x%.1f  (%.0f products with W / image)\n",
              ours_total / n, official_total / ours_total, double(products) / n);
  std::printf("  masks with IoU >= 0.99 to the official ones (SciPy's eigenvector sign): %d / %d (%.1f %%)\n", agree,
              masks, 100.0 * agree / masks);
  std::printf("  masks the official algorithm gives for one of the two eigenvector signs: %d / %d (%.1f %%)\n",
              valid, masks, 100.0 * valid / masks);
  std::printf("  pipeline (ViT features + MaskCut + refinement): %.2f images/s at 1 thread, %.2f at 2\n",
              pipeline["images_per_second_1_threads"].get<double>(), pipeline["images_per_second_2_threads"].get<double>());
  write_file_atomic(fs::path(out_dir) / "results.json", result.dump(2) + "\n");
  std::cout << result.dump() << std::endl;
  return 0;
}
