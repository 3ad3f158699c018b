// One supervised training step of the quick config's model (configs/quick/supervised.yaml: ResUnet,
// torchvision-named ResNet-18 encoder, U-Net decoder, AdamW) against the same model and step in
// Python PyTorch (tools/bench/train_step.py + resunet.py, run by this program in the same run).
// The step is the trainer's: train mode, forward, cross-entropy with ignore index 255, loss.item(),
// zero_grad, backward, AdamW step; random images and labels (5% ignore), no data loading.
//   build/bench/bench_train [--threads N] [--classes 8] [--warmup 3] [--steps 10]
//                           [--config FILE] [--python /usr/bin/python3] [--no-python]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/threads.h"
#include "lesseg/engine/optim.h"
#include "lesseg/models/registry.h"
#include "reference.h"

namespace {

constexpr int64_t kIgnoreIndex = 255;

using lesseg::bench::join;
using lesseg::bench::state_shapes;

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, warmup = 3, steps = 10;
  int64_t classes = 8;
  std::string config_file = std::string(LESSEG_SOURCE_DIR) + "/configs/quick/supervised.yaml";
  std::string python = LESSEG_REFERENCE_PYTHON;
  bool with_python = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--threads" && has_value) threads = std::stoi(argv[++i]);
    else if (arg == "--classes" && has_value) classes = std::stoll(argv[++i]);
    else if (arg == "--warmup" && has_value) warmup = std::stoi(argv[++i]);
    else if (arg == "--steps" && has_value) steps = std::stoi(argv[++i]);
    else if (arg == "--config" && has_value) config_file = argv[++i];
    else if (arg == "--python" && has_value) python = argv[++i];
    else if (arg == "--no-python") with_python = false;
    else {
      std::fprintf(stderr, "unknown argument '%s' (see the comment at the top of bench_train.cpp)\n", arg.c_str());
      return 2;
    }
  }
  if (steps < 1 || warmup < 0 || classes < 2) {
    std::fprintf(stderr, "need --steps >= 1, --warmup >= 0, --classes >= 2\n");
    return 2;
  }
  threads = lesseg::configure_threads(threads);

  const auto config = lesseg::Config::load(config_file, {});
  const lesseg::ModelSpec spec = lesseg::model_spec_from(config, classes);
  const int64_t batch = config.get<int>("train.batch_size");
  const auto crop = config.get<std::vector<int>>("data.crop");
  lesseg::OptimizerOptions optim;
  optim.name = config.get<std::string>("train.optimizer");
  optim.lr = config.get<double>("train.lr");
  optim.momentum = config.get<double>("train.momentum");
  optim.weight_decay = config.get<double>("train.weight_decay");

  torch::manual_seed(0);
  lesseg::Segmenter model = lesseg::build_segmenter(spec);
  auto optimizer = lesseg::make_optimizer(model->parameters(), optim);
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  auto images = torch::randn({batch, 3, crop.at(0), crop.at(1)});
  auto labels = torch::randint(0, classes, {batch, crop.at(0), crop.at(1)}, torch::kLong);
  labels.masked_fill_(torch::rand({batch, crop.at(0), crop.at(1)}) < 0.05, kIgnoreIndex);

  namespace F = torch::nn::functional;
  auto step = [&] {
    model->train();
    auto loss = F::cross_entropy(model->forward(images), labels, F::CrossEntropyFuncOptions().ignore_index(kIgnoreIndex));
    loss.item<double>();
    optimizer->zero_grad();
    loss.backward();
    optimizer->step();
  };
  for (int i = 0; i < warmup; ++i) step();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double ours = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
  const double our_rss = lesseg::bench::peak_rss_mib();

  nlohmann::json reference;
  if (with_python) {
    const auto keys_file =
        std::filesystem::temp_directory_path() / ("lesseg_bench_train_keys_" + std::to_string(getpid()) + ".json");
    std::ofstream(keys_file) << state_shapes(*model).dump();
    char lr[32], wd[32];
    std::snprintf(lr, sizeof(lr), "%.17g", optim.lr);
    std::snprintf(wd, sizeof(wd), "%.17g", optim.weight_decay);
    reference = lesseg::bench::run_reference(
        python + " " + LESSEG_SOURCE_DIR + "/tools/bench/train_step.py --threads " + std::to_string(threads) +
        " --batch " + std::to_string(batch) + " --size " + std::to_string(crop.at(0)) + " " +
        std::to_string(crop.at(1)) + " --classes " + std::to_string(classes) + " --depth " +
        spec.backbone.substr(6) + " --channels " + join(spec.decoder_channels) + " --lr " + lr +
        " --weight-decay " + wd + " --ignore-index " + std::to_string(kIgnoreIndex) + " --warmup " +
        std::to_string(warmup) + " --steps " + std::to_string(steps) + " --keys " + keys_file.string());
    std::filesystem::remove(keys_file);
  }
  const bool known = reference.is_object();
  auto field = [&](const char* key) { return known ? reference.value(key, 0.0) : 0.0; };
  const double theirs = field("seconds_per_step");

  using lesseg::bench::cell;
  std::printf("\nTraining step, %s (%s, decoder [%s], %lld classes): batch %lld, %dx%d, %s lr %g, "
              "%d threads, %d warm-up + %d timed steps\n",
              spec.arch.c_str(), spec.backbone.c_str(), join(spec.decoder_channels).c_str(), (long long)classes,
              (long long)batch, crop.at(0), crop.at(1), optim.name.c_str(), optim.lr, threads, warmup, steps);
  std::printf("%-15s %10s %10s %12s %14s\n", "", "ms/step", "images/s", "parameters", "peak RSS MiB");
  std::printf("%-15s %10.1f %10.1f %12lld %14.0f\n", "lesseg", ours * 1e3, double(batch) / ours, (long long)params,
              our_rss);
  std::printf("%-15s %10s %10s %12s %14s\n", "PyTorch", cell(theirs > 0, theirs * 1e3, "%.1f").c_str(),
              cell(theirs > 0, double(batch) / theirs, "%.1f").c_str(),
              cell(known, field("params"), "%.0f").c_str(),
              cell(known, field("peak_rss_kb") / 1024.0, "%.0f").c_str());
  std::printf("%-15s %10s %10s\n", "lesseg/PyTorch", cell(theirs > 0, ours / theirs, "%.2f").c_str(),
              cell(theirs > 0, theirs / ours, "%.2f").c_str());
  if (known && reference.contains("keys")) {
    const auto& keys = reference["keys"];
    std::printf("state_dict vs lesseg: %d names and shapes match, %zu missing, %zu unexpected, %zu shape mismatches\n",
                keys.value("matched", 0), keys["missing"].size(), keys["unexpected"].size(),
                keys["shape_mismatch"].size());
    for (const char* kind : {"missing", "unexpected", "shape_mismatch"})
      for (const auto& key : keys[kind]) std::printf("  %s: %s\n", kind, key.get<std::string>().c_str());
    std::printf("reference: Python PyTorch %s, %d threads, %d timed steps\n",
                reference.value("torch", std::string("?")).c_str(), reference.value("threads", 0),
                reference.value("steps", 0));
  }
  return 0;
}
