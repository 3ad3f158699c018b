// SOLOv2 training step and inference of the quick CutLER config's model (configs/quick/cutler.yaml:
// the light SOLOv2 on ResNet-18 + FPN, class-agnostic) against the same model and steps in Python
// PyTorch + torchvision (tools/bench/solov2_step.py + solov2.py, run by this program in the same run).
// - Training: the trainer's step of methods/cutler without copy-paste (data augmentation): train mode
//   (BatchNorm frozen with train.freeze_bn), forward, solo_losses (focal + Dice, DropLoss when
//   cutler.drop_loss), total = category + mask, loss.item(), zero_grad, backward, gradient clip
//   (train.grad_clip), optimizer step (train.optimizer, every parameter decayed); random images and
//   1-3 random rectangles / ellipses per image from an integer generator both sides share (the same
//   masks bit for bit, so both sides assign the same positive cells), no data loading.
// - Inference: eval mode, no grad, batch 1 per image (predict_instances on an image whose sides are
//   multiples of 32): forward + solo_instances (point NMS, maskness, Matrix NMS, masks upsampled to
//   the input). First the category bias is set to the logit of --prior (default 0.5) on both sides so
//   that an untrained model has candidates and the whole post-processing runs (0.01, the initial
//   prior: nothing passes solo.score_thr and only the forward is timed).
//   An untrained model's masks are mostly empty at solo.mask_thr 0.5 (and dropped before Matrix NMS):
//   --mask-thr 0 keeps every candidate's mask so that Matrix NMS and the upsampling are timed too.
//   build/bench/bench_solov2 [--threads N] [--batch B] [--size H W] [--warmup 3] [--steps 10] [--prior 0.5]
//                            [--mask-thr T]
//                            [--config FILE] [--python /usr/bin/python3] [--no-python]
// --batch and --size default to the config's train.batch_size and data.crop.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
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
#include "lesseg/engine/trainer.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/methods/instance_model.h"
#include "lesseg/models/registry.h"
#include "lesseg/models/solov2.h"
#include "lesseg/models/solov2_ops.h"
#include "lesseg/nn/functional.h"
#include "reference.h"

namespace {

constexpr uint64_t kMaskSeed = 0;

using lesseg::bench::join;
using lesseg::bench::state_shapes;

// Knuth's MMIX linear congruential generator; next() returns the state's top 31 bits
// (solov2.py Lcg: the same numbers in Python).
struct Lcg {
  uint64_t state;
  uint64_t next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  }
  int64_t uniform(int64_t low, int64_t high) { return low + static_cast<int64_t>(next() % uint64_t(high - low + 1)); }
};

// Per image [N, H, W] uint8 masks, N 1..3: boxes with sides in [min(H, W) / 12, min(H, W) / 2],
// filled (a rectangle) or holding their inscribed ellipse (solov2.py random_instances, bit for bit).
std::vector<at::Tensor> random_instances(int64_t batch, int64_t height, int64_t width, uint64_t seed) {
  Lcg rng{seed};
  const int64_t side = std::min(height, width);
  const int64_t low = std::max<int64_t>(4, side / 12), high = std::max<int64_t>(4, side / 2);
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t n = rng.uniform(1, 3);
    auto masks = torch::zeros({n, height, width}, torch::kUInt8);
    auto m = masks.accessor<uint8_t, 3>();
    for (int64_t k = 0; k < n; ++k) {  // one draw per statement: the order is the Python side's
      const int64_t h = rng.uniform(low, high);
      const int64_t w = rng.uniform(low, high);
      const int64_t y0 = rng.uniform(0, height - h);
      const int64_t x0 = rng.uniform(0, width - w);
      const bool ellipse = rng.next() % 2 != 0;
      for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
          const int64_t dy = 2 * y + 1 - h, dx = 2 * x + 1 - w;
          if (!ellipse || dy * dy * (w * w) + dx * dx * (h * h) <= h * h * w * w) m[k][y0 + y][x0 + x] = 1;
        }
      }
    }
    out.push_back(masks);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, warmup = 3, steps = 10;
  int64_t batch = 0, height = 0, width = 0;  // 0: the config's train.batch_size / data.crop
  double prior = 0.5, mask_thr = -1;
  std::string config_file = std::string(LESSEG_SOURCE_DIR) + "/configs/quick/cutler.yaml";
  std::string python = LESSEG_REFERENCE_PYTHON;
  bool with_python = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--threads" && has_value) threads = std::stoi(argv[++i]);
    else if (arg == "--batch" && has_value) batch = std::stoll(argv[++i]);
    else if (arg == "--size" && i + 2 < argc) height = std::stoll(argv[++i]), width = std::stoll(argv[++i]);
    else if (arg == "--warmup" && has_value) warmup = std::stoi(argv[++i]);
    else if (arg == "--steps" && has_value) steps = std::stoi(argv[++i]);
    else if (arg == "--prior" && has_value) prior = std::stod(argv[++i]);
    else if (arg == "--mask-thr" && has_value) mask_thr = std::stod(argv[++i]);
    else if (arg == "--config" && has_value) config_file = argv[++i];
    else if (arg == "--python" && has_value) python = argv[++i];
    else if (arg == "--no-python") with_python = false;
    else {
      std::fprintf(stderr, "unknown argument '%s' (see the comment at the top of bench_solov2.cpp)\n", arg.c_str());
      return 2;
    }
  }
  if (steps < 1 || warmup < 0 || batch < 0 || height < 0 || width < 0 || height % 32 != 0 || width % 32 != 0 ||
      !(prior >= 0 && prior < 1)) {
    std::fprintf(stderr, "need --steps >= 1, --warmup >= 0, --batch >= 1, --size H W multiples of 32, "
                         "0 <= --prior < 1 (0: the bias as trained)\n");
    return 2;
  }
  threads = lesseg::configure_threads(threads);

  const auto config = lesseg::Config::load(config_file, {});
  const lesseg::ModelSpec spec = lesseg::model_spec_from(config, 0);
  const lesseg::Solov2Options solo = lesseg::solov2_options_from(config);
  const lesseg::SoloLossOptions loss_options = lesseg::solo_loss_options_from(config);
  lesseg::SoloTestOptions test = lesseg::solo_test_options_from(config);
  if (mask_thr >= 0) test.mask_thr = mask_thr;
  lesseg::TrainerOptions trainer = lesseg::trainer_options_from(config, {});
  const bool freeze_bn = config.get<bool>("train.freeze_bn");
  if (batch == 0) batch = config.get<int>("train.batch_size");
  if (height == 0) {
    const auto crop = config.get<std::vector<int>>("data.crop");
    height = crop.at(0);
    width = crop.at(1);
  }
  if (batch < 1 || height < 32 || width < 32 || height % 32 != 0 || width % 32 != 0) {
    std::fprintf(stderr, "SOLOv2 needs a batch >= 1 and sides that are multiples of 32, got batch %lld, %lldx%lld\n",
                 (long long)batch, (long long)height, (long long)width);
    return 2;
  }
  if (trainer.lr_scaling_linear) trainer.optimizer.lr *= static_cast<double>(batch) / 256.0;  // as Trainer::run
  const auto& optim = trainer.optimizer;

  torch::manual_seed(0);
  lesseg::Solov2 model(lesseg::build_backbone(spec), solo);
  auto optimizer = lesseg::make_optimizer(model->parameters(), optim);
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  // The initial weights, for the reference to start from the same point (the same images and masks
  // then give the same positives, DropLoss share and detections on both sides).
  const auto init_file = std::filesystem::temp_directory_path() /
                         ("lesseg_bench_solov2_init_" + std::to_string(getpid()) + ".safetensors");
  {
    std::vector<std::pair<std::string, at::Tensor>> state;
    for (const auto& item : model->named_parameters()) state.emplace_back(item.key(), item.value());
    for (const auto& item : model->named_buffers()) state.emplace_back(item.key(), item.value());
    lesseg::save_safetensors(init_file, state);
  }
  torch::manual_seed(1);
  const auto images = torch::randn({batch, 3, height, width});
  const std::vector<at::Tensor> gt_masks = random_instances(batch, height, width, kMaskSeed);

  // Training, as Trainer::run + CutlerTask::train_step.
  lesseg::SoloLosses last;
  auto train_step = [&] {
    model->train();
    if (freeze_bn) lesseg::freeze_batchnorm(*model);
    std::vector<at::Tensor> labels;
    for (const auto& masks : gt_masks) labels.push_back(torch::zeros({masks.size(0)}, torch::kLong));
    lesseg::SoloOutput out = model->forward(images);
    last = lesseg::solo_losses(out, gt_masks, labels, loss_options);
    auto total = last.category + last.mask;
    total.item<double>();
    optimizer->zero_grad();
    total.backward();
    if (trainer.grad_clip > 0) lesseg::clip_gradients(model->parameters(), trainer.grad_clip, trainer.grad_clip_per_parameter);
    optimizer->step();
  };
  for (int i = 0; i < warmup; ++i) train_step();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) train_step();
  const double our_train = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
  const double our_rss_train = lesseg::bench::peak_rss_mib();

  // Inference, each image alone; the category prior set first (see the top).
  model->eval();
  if (prior > 0) {
    torch::NoGradGuard no_grad;
    model->named_parameters()["category_pred.bias"].fill_(std::log(prior / (1 - prior)));
  }
  int64_t detections = 0, inferred = 0;
  auto infer_pass = [&](bool record) {
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < batch; ++i) {
      lesseg::SoloOutput out = model->forward(images.slice(0, i, i + 1));
      lesseg::SoloInstances found = lesseg::solo_instances(out, 0, height, width, height, width, test);
      if (!record) continue;
      detections += found.scores.size(0);
      ++inferred;
    }
  };
  for (int i = 0; i < warmup; ++i) infer_pass(false);
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) infer_pass(true);
  const double our_infer =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / (double(steps) * batch);
  const double our_rss = lesseg::bench::peak_rss_mib();
  const double our_detections = inferred > 0 ? double(detections) / double(inferred) : 0.0;
  double our_candidates = 0;  // cells above score_thr after point NMS, counted in one untimed pass
  {
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < batch; ++i) {
      lesseg::SoloOutput out = model->forward(images.slice(0, i, i + 1));
      for (const auto& category : out.category)
        our_candidates += double(lesseg::point_nms(torch::sigmoid(category[0])).gt(test.score_thr).sum().item<int64_t>());
    }
    our_candidates /= double(batch);
  }

  nlohmann::json reference;
  if (with_python) {
    std::vector<std::vector<double>> ranges;
    for (const auto& r : loss_options.targets.scale_ranges) ranges.push_back({r[0], r[1]});
    nlohmann::json request = {
        {"threads", threads},
        {"batch", batch},
        {"size", {height, width}},
        {"warmup", warmup},
        {"steps", steps},
        {"seed", 0},
        {"init", init_file.string()},
        {"prior", prior},
        {"backbone", spec.backbone},
        {"output_stride", spec.output_stride},
        {"solo",
         {{"grids", solo.num_grids()},
          {"fpn_channels", solo.fpn_channels()},
          {"head_channels", solo.head_channels()},
          {"stacked_convs", solo.stacked_convs()},
          {"mask_hidden", solo.mask_hidden()},
          {"mask_channels", solo.mask_channels()},
          {"num_classes", solo.num_classes()},
          {"norm_groups", solo.norm_groups()}}},
        {"loss",
         {{"scale_ranges", ranges},
          {"sigma", loss_options.targets.sigma},
          {"focal_alpha", loss_options.focal_alpha},
          {"focal_gamma", loss_options.focal_gamma},
          {"dice_weight", loss_options.dice_weight},
          {"drop_loss", loss_options.drop_loss},
          {"drop_iou", loss_options.drop_iou}}},
        {"test",
         {{"score_thr", test.score_thr},
          {"mask_thr", test.mask_thr},
          {"nms_kernel", test.nms.kernel},
          {"nms_sigma", test.nms.sigma},
          {"update_thr", test.nms.filter_thr},
          {"nms_pre", test.nms.nms_pre},
          {"max_per_image", test.nms.max_num}}},
        {"optimizer",
         {{"name", optim.name},
          {"lr", optim.lr},
          {"betas", {optim.beta1, optim.beta2}},
          {"momentum", optim.momentum},
          {"weight_decay", optim.weight_decay},
          {"grad_clip", trainer.grad_clip},
          {"grad_clip_mode", trainer.grad_clip_per_parameter ? "per_parameter" : "global"},
          {"freeze_bn", freeze_bn}}},
        {"params", params},
        {"state_shapes", state_shapes(*model)}};
    const auto spec_file =
        std::filesystem::temp_directory_path() / ("lesseg_bench_solov2_spec_" + std::to_string(getpid()) + ".json");
    std::ofstream(spec_file) << request.dump();
    reference = lesseg::bench::run_reference(python + " " + LESSEG_SOURCE_DIR + "/tools/bench/solov2_step.py --spec " +
                                             spec_file.string());
    std::filesystem::remove(spec_file);
  }
  const bool known = reference.is_object();
  auto field = [&](const char* key) { return known && reference[key].is_number() ? reference[key].get<double>() : 0.0; };
  const double their_train = field("train_seconds_per_step"), their_infer = field("infer_seconds_per_image");

  using lesseg::bench::cell;
  std::printf("\nSOLOv2, %s + FPN %lld (P2-P6), heads %lld x %lld convs, mask branch %lld -> E = %lld, grids [%s], "
              "%lld class, %d threads\n",
              spec.backbone.c_str(), (long long)solo.fpn_channels(), (long long)solo.head_channels(),
              (long long)solo.stacked_convs(), (long long)solo.mask_hidden(), (long long)solo.mask_channels(),
              join(solo.num_grids()).c_str(), (long long)solo.num_classes(), threads);
  std::printf("training: batch %lld at %lldx%lld, %s lr %g wd %g, clip %g, DropLoss %s, freeze_bn %s; inference: "
              "%lld images one at a time, category prior %g (score_thr %g, mask_thr %g, nms_pre %lld, max %lld); "
              "%d warm-up + %d timed steps / passes\n\n",
              (long long)batch, (long long)height, (long long)width, optim.name.c_str(), optim.lr, optim.weight_decay,
              trainer.grad_clip, loss_options.drop_loss ? "on" : "off", freeze_bn ? "on" : "off", (long long)batch,
              prior, test.score_thr, test.mask_thr, (long long)test.nms.nms_pre, (long long)test.nms.max_num, warmup, steps);
  std::printf("| %-14s | %13s | %14s | %14s | %14s | %16s | %10s | %12s |\n", "", "train ms/step", "train images/s",
              "infer ms/image", "infer images/s", "detections/image", "parameters", "peak RSS MiB");
  std::printf("|%s|%s:|%s:|%s:|%s:|%s:|%s:|%s:|\n", std::string(16, '-').c_str(), std::string(14, '-').c_str(),
              std::string(15, '-').c_str(), std::string(15, '-').c_str(), std::string(15, '-').c_str(),
              std::string(17, '-').c_str(), std::string(11, '-').c_str(), std::string(13, '-').c_str());
  std::printf("| %-14s | %13.1f | %14.2f | %14.2f | %14.2f | %16.1f | %10lld | %12.0f |\n", "lesseg", our_train * 1e3,
              double(batch) / our_train, our_infer * 1e3, 1.0 / our_infer, our_detections, (long long)params, our_rss);
  std::printf("| %-14s | %13s | %14s | %14s | %14s | %16s | %10s | %12s |\n", "PyTorch",
              cell(their_train > 0, their_train * 1e3, "%.1f").c_str(),
              cell(their_train > 0, double(batch) / their_train, "%.2f").c_str(),
              cell(their_infer > 0, their_infer * 1e3, "%.2f").c_str(),
              cell(their_infer > 0, 1.0 / their_infer, "%.2f").c_str(),
              cell(known, field("detections_per_image"), "%.1f").c_str(), cell(known, field("params"), "%.0f").c_str(),
              cell(known, field("peak_rss_kb") / 1024.0, "%.0f").c_str());
  std::printf("| %-14s | %13s | %14s | %14s | %14s | %16s | %10s | %12s |\n", "lesseg/PyTorch",
              cell(their_train > 0, our_train / their_train, "%.2f").c_str(),
              cell(their_train > 0, their_train / our_train, "%.2f").c_str(),
              cell(their_infer > 0, our_infer / their_infer, "%.2f").c_str(),
              cell(their_infer > 0, their_infer / our_infer, "%.2f").c_str(), "", "", "");
  std::printf("\npeak RSS after training: lesseg %.0f MiB, PyTorch %s MiB (the table's: at the end, both stages)\n",
              our_rss_train, cell(known, field("peak_rss_train_kb") / 1024.0, "%.0f").c_str());
  std::printf("targets (the same masks on both sides): %lld positive cells per step in lesseg, %s in PyTorch; "
              "DropLoss dropped %.1f %% of the cells in lesseg, %s %% in PyTorch\n",
              (long long)last.positives, cell(known, field("positives"), "%.0f").c_str(),
              last.cells > 0 ? 100.0 * double(last.dropped) / double(last.cells) : 0.0,
              cell(known, 100.0 * field("dropped_share"), "%.1f").c_str());
  std::printf("inference: %.1f candidate cells per image (score > %g after point NMS) in lesseg, %s in PyTorch\n",
              our_candidates, test.score_thr, cell(known, field("candidates_per_image"), "%.1f").c_str());
  if (known && reference.contains("keys") && reference["keys"].is_object()) {
    const auto& keys = reference["keys"];
    std::printf("state_dict vs lesseg (torchvision FPN names mapped to lesseg's): %d names and shapes match, %zu missing, "
                "%zu unexpected, %zu shape mismatches; multiset of shapes and parameter count %s\n",
                keys.value("matched", 0), keys["missing"].size(), keys["unexpected"].size(),
                keys["shape_mismatch"].size(),
                reference["shapes_match"].is_boolean() && reference["shapes_match"].get<bool>() ? "match" : "DIFFER");
    for (const char* kind : {"missing", "unexpected", "shape_mismatch"})
      for (const auto& key : keys[kind]) std::printf("  %s: %s\n", kind, key.get<std::string>().c_str());
  }
  if (known)
    std::printf("reference: Python PyTorch %s, torchvision %s, %d threads, %d timed steps\n",
                reference.value("torch", std::string("?")).c_str(),
                reference.value("torchvision", std::string("?")).c_str(), reference.value("threads", 0),
                reference.value("steps", 0));
  std::filesystem::remove(init_file);
  return 0;
}
