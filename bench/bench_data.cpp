// The training data pipeline on the real CamVid training images: decode image + label (lesseg's
// CamVid reader: image_io, void -> 255, values checked), random scale, pad + random crop, horizontal
// flip, colour jitter (data/transforms), normalized float CHW tensor + int64 mask (image_to_tensor),
// against the same steps with PIL / torchvision in Python (tools/bench/data_pipeline.py, run by this
// program in the same run). Rows: one thread (lesseg) / one process (Python), then lesseg's Loader
// with N worker threads / torch DataLoader with N worker processes, batches of --batch.
// Skips with a message when the data is missing.
//   build/bench/bench_data [--root DIR] [--crop H W] [--images N (2 passes)] [--warmup 16] [--workers N]
//                          [--batch 8] [--python /usr/bin/python3] [--no-python] [--no-pil]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/threads.h"
#include "lesseg/data/loader.h"
#include "lesseg/data/open.h"
#include "lesseg/data/transforms.h"
#include "reference.h"

namespace {
namespace fs = std::filesystem;

// Reads every file under `dir` once so that neither side pays for a cold page cache.
void warm_page_cache(const fs::path& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream sink;
    sink << in.rdbuf();
  }
}

}  // namespace

int main(int argc, char** argv) {
  fs::path root = (fs::path(LESSEG_SOURCE_DIR) / ".." / "shared" / "data" / "camvid").lexically_normal();
  int crop_h = 360, crop_w = 480, images = 0, warmup = 16, workers = 0, batch = 8;
  std::string python = LESSEG_REFERENCE_PYTHON;
  bool with_python = true, no_pil = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--root" && has_value) root = argv[++i];
    else if (arg == "--crop" && i + 2 < argc) crop_h = std::stoi(argv[++i]), crop_w = std::stoi(argv[++i]);
    else if (arg == "--images" && has_value) images = std::stoi(argv[++i]);
    else if (arg == "--warmup" && has_value) warmup = std::stoi(argv[++i]);
    else if (arg == "--workers" && has_value) workers = std::stoi(argv[++i]);
    else if (arg == "--batch" && has_value) batch = std::stoi(argv[++i]);
    else if (arg == "--python" && has_value) python = argv[++i];
    else if (arg == "--no-python") with_python = false;
    else if (arg == "--no-pil") no_pil = true;
    else {
      std::fprintf(stderr, "unknown argument '%s' (see the comment at the top of bench_data.cpp)\n", arg.c_str());
      return 2;
    }
  }
  if (crop_h < 1 || crop_w < 1 || images < 0 || warmup < 0 || batch < 1) {
    std::fprintf(stderr, "need --crop >= 1, --images >= 0, --warmup >= 0, --batch >= 1\n");
    return 2;
  }
  std::error_code ec;
  if (!fs::is_directory(root / "train" / "images", ec) || !fs::is_directory(root / "train" / "labels", ec)) {
    std::printf("bench_data skipped: no CamVid training images at %s (train/images/*.jpg + train/labels/*.png)\n",
                (root / "train").string().c_str());
    return 0;
  }
  if (workers <= 0) workers = lesseg::usable_cores();
  // Per-sample work: no intra-op threads (torch DataLoader workers also run with one).
  lesseg::configure_threads(1);

  const auto dataset = lesseg::open_dataset_by_format("camvid", root.string(), "train");
  const int ignore = dataset->classes().ignore_index;
  const int count = images > 0 ? images : 2 * static_cast<int>(dataset->size());  // two passes
  lesseg::AugmentOptions augment;
  augment.crop_h = crop_h;
  augment.crop_w = crop_w;
  augment.scale_min = 0.75;
  augment.scale_max = 1.5;
  augment.flip = true;
  augment.color_jitter = 0.2;
  const lesseg::LoaderOptions defaults;  // ImageNet mean / std
  warm_page_cache(root / "train");

  // One thread: the body of Loader::build for one sample.
  std::mt19937_64 rng(0);
  auto one = [&](int i) {
    lesseg::SegSample sample = dataset->get(static_cast<size_t>(i) % dataset->size());
    lesseg::augment(sample, augment, ignore, rng);
    auto image = lesseg::image_to_tensor(sample.image, defaults.mean, defaults.std);
    auto mask =
        torch::from_blob(sample.mask.data, {sample.mask.rows, sample.mask.cols}, torch::kUInt8).to(torch::kLong);
    return image.size(0) + mask.size(0);
  };
  for (int i = 0; i < warmup; ++i) one(i);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) one(i);
  const double single = count / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double single_rss = lesseg::bench::peak_rss_mib();

  // The threaded Loader as training uses it (shuffled, repeating; prefetch 4 batches).
  lesseg::LoaderOptions options;
  options.batch_size = batch;
  options.workers = workers;
  options.prefetch = 4;
  options.augment = augment;
  const int warmup_batches = std::max(1, warmup / batch), batches = std::max(1, count / batch);
  double loaded = 0;
  {
    lesseg::Loader loader(dataset, options);
    lesseg::Batch out;
    for (int i = 0; i < warmup_batches; ++i) loader.next(out);
    start = std::chrono::steady_clock::now();
    for (int i = 0; i < batches; ++i) loader.next(out);
    loaded = double(batches) * batch / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double loaded_rss = lesseg::bench::peak_rss_mib();

  nlohmann::json reference;
  if (with_python)
    reference = lesseg::bench::run_reference(
        python + " " + LESSEG_SOURCE_DIR + "/tools/bench/data_pipeline.py --root " + root.string() + " --crop " +
        std::to_string(crop_h) + " " + std::to_string(crop_w) + " --scale 0.75 1.5 --jitter 0.2 --images " +
        std::to_string(count) + " --warmup " + std::to_string(warmup) + " --workers " + std::to_string(workers) +
        " --batch " + std::to_string(batch) + (no_pil ? " --no-pil" : ""));
  const bool known = reference.is_object();
  auto theirs = [&](const char* row, const char* key) {
    return known ? reference[row].value(key, 0.0) : 0.0;
  };

  using lesseg::bench::cell;
  std::printf("\nData pipeline, CamVid train (%zu pairs) at %s: decode image + label, scale 0.75-1.5, pad + crop "
              "%dx%d, flip, colour jitter 0.2, normalize; %d timed images after %d warm-up\n",
              dataset->size(), root.string().c_str(), crop_h, crop_w, count, warmup);
  std::printf("%-36s %10s %14s\n", "", "images/s", "peak RSS MiB");
  std::printf("%-36s %10.1f %14.0f\n", "lesseg, 1 thread", single, single_rss);
  std::printf("%-36s %10s %14s\n", "Python, 1 process",
              cell(known, theirs("single", "images_per_s"), "%.1f").c_str(),
              cell(known, theirs("single", "peak_rss_kb") / 1024.0, "%.0f").c_str());
  std::printf("%-36s %10s\n", "lesseg/Python",
              cell(known && theirs("single", "images_per_s") > 0, single / theirs("single", "images_per_s"), "%.2f")
                  .c_str());
  const std::string loader_row = "lesseg Loader, " + std::to_string(workers) + " worker threads";
  const std::string dataloader_row = "torch DataLoader, " + std::to_string(workers) + " worker processes";
  std::printf("%-36s %10.1f %14.0f\n", loader_row.c_str(), loaded, loaded_rss);
  std::printf("%-36s %10s %14s\n", dataloader_row.c_str(),
              cell(known, theirs("loader", "images_per_s"), "%.1f").c_str(),
              cell(known, theirs("loader", "peak_rss_kb") / 1024.0, "%.0f").c_str());
  std::printf("%-36s %10s\n", "lesseg/Python",
              cell(known && theirs("loader", "images_per_s") > 0, loaded / theirs("loader", "images_per_s"), "%.2f")
                  .c_str());
  if (known)
    std::printf("reference: %s (torchvision %s transforms), torch %s; DataLoader workers' largest peak RSS %.0f MiB "
                "(not in the row above)\n",
                reference.value("backend", std::string("?")).c_str(),
                reference.value("torchvision", std::string("?")).c_str(),
                reference.value("torch", std::string("?")).c_str(), theirs("loader", "workers_peak_rss_kb") / 1024.0);
  return 0;
}
