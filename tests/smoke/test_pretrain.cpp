// Self-supervised pretraining end to end: each method's loss decreases on a tiny run, SAMCLR runs
// on every region source, the backbone file loads back, and the CLI works.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/data/synth/synth.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/methods/ssl/pretrain.h"
#include "lesseg/models/registry.h"
#include "lesseg/models/weights.h"
#include "smoke_util.h"

namespace lesseg {
namespace {

std::filesystem::path config_file(const std::string& method) {
  return std::filesystem::path(LESSEG_SOURCE_DIR) / "configs/quick" / (method + ".yaml");
}

// The quick config shrunk: 48 images of 64 px seen many times, so that the loss must fall.
std::vector<std::string> tiny(int iters, std::vector<std::string> extra = {}) {
  std::vector<std::string> o = {"data.synth.size=64",  "data.synth.num_train=48", "views.global_size=48",
                                "views.local_size=24", "train.batch_size=16",     "train.iters=" + std::to_string(iters),
                                "train.log_every=2",   "train.checkpoint_every=0", "train.warmup_iters=5",
                                "data.workers=2"};
  o.insert(o.end(), extra.begin(), extra.end());
  return o;
}

// NT-Xent on 16 images, each seen every step: identifying them must get easier (on more images the
// loss stays near chance, log(2N - 1), for longer than a test can wait).
std::vector<std::string> contrastive() {
  return {"data.synth.num_train=16", "ssl.head_hidden=256", "ssl.temperature=0.5", "views.global_scale=[0.5, 1.0]"};
}

std::vector<double> logged_losses(const std::filesystem::path& run_dir) {
  std::vector<double> losses;
  std::ifstream in(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto record = nlohmann::json::parse(line);
    if (record.contains("loss")) losses.push_back(record["loss"].get<double>());
  }
  return losses;
}

double mean(const std::vector<double>& v, size_t from, size_t to) {
  double sum = 0;
  for (size_t i = from; i < to; ++i) sum += v[i];
  return sum / double(to - from);
}

// The mean of the last quarter of the logged losses is below the first quarter's by `margin`
// (relative): single steps are noisy, since every step draws new views.
void expect_loss_falls(const std::filesystem::path& run_dir, double margin) {
  auto losses = logged_losses(run_dir);
  ASSERT_GE(losses.size(), 8u);
  const size_t quarter = losses.size() / 4;
  const double first = mean(losses, 0, quarter), last = mean(losses, losses.size() - quarter, losses.size());
  std::string curve;
  for (double l : losses) curve += " " + std::to_string(l);
  EXPECT_LT(last, first * (1.0 - margin)) << "losses:" << curve;
}

PretrainResult run(const std::string& method, const std::string& name, std::vector<std::string> overrides) {
  Config config = Config::load(config_file(method), overrides);
  return pretrain(config, smoke::fresh_dir(name));
}

// The last evaluation record of a run (collapse diagnostics are logged with it).
nlohmann::json last_evaluation(const std::filesystem::path& run_dir) {
  nlohmann::json last;
  std::ifstream in(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto record = nlohmann::json::parse(line);
    if (record.value("split", "") == "val") last = record;
  }
  return last;
}

TEST(Pretrain, SimclrLossFalls) {
  auto result = run("simclr", "simclr", tiny(80, contrastive()));
  expect_loss_falls(result.backbone.parent_path(), 0.05);
  // not collapsed: normalized projections spread over the sphere (about 1 / sqrt(128) = 0.088)
  EXPECT_GT(last_evaluation(result.backbone.parent_path()).at("feature_std").get<double>(), 0.02);
}

// With the teacher and its centre held fixed (momentum 1), the DINO loss is a cross-entropy to fixed
// targets, which the student (every crop through backbone + head) must fit. Whether the full
// dynamics (EMA teacher, moving centre) escape collapse at a given budget is measured by
// tools/ssl/compare.py, not asserted here.
TEST(Pretrain, DinoStudentFitsTheTeacher) {
  auto result = run("dino", "dino", tiny(60, {"ssl.dino_out_dim=1024", "ssl.head_hidden=256", "ssl.freeze_last_layer_iters=5",
                                              "views.local_count=2", "ssl.momentum=1.0", "ssl.center_momentum=1.0",
                                              "train.lr=0.0005", "train.lr_scaling=none"}));
  expect_loss_falls(result.backbone.parent_path(), 0.05);
  // the collapse diagnostics are logged with the evaluation (their values: tests/parity SslDiagnostics)
  auto diagnostics = last_evaluation(result.backbone.parent_path());
  for (const char* key : {"teacher_entropy", "teacher_batch_entropy", "kl_teacher_student"})
    EXPECT_TRUE(diagnostics.contains(key) && std::isfinite(diagnostics[key].get<double>())) << key << ": " << diagnostics;
}

TEST(Pretrain, MaeLossFalls) {
  auto result = run("mae", "mae", tiny(60));
  expect_loss_falls(result.backbone.parent_path(), 0.05);
}

TEST(Pretrain, SamclrProposerLossFallsAndBackboneLoads) {
  auto extra = contrastive();
  extra.push_back("samclr.min_area=60");
  auto result = run("samclr", "samclr", tiny(80, extra));
  expect_loss_falls(result.backbone.parent_path(), 0.05);
  // the saved backbone names itself and loads into a fresh backbone by name
  auto file = load_safetensors(result.backbone);
  EXPECT_EQ(file.metadata.at(kBackboneMetadataKey), "resnet18");
  ModelSpec spec;
  spec.backbone = "resnet18";
  auto backbone = build_backbone(spec);
  WeightReport report = load_weights(*backbone, result.backbone, {});
  EXPECT_TRUE(report.missing.empty());
}

// `pretrain --weights` continues from a saved backbone: with a vanishing learning rate the result
// equals the weights it started from, not a fresh initialization.
TEST(Pretrain, ContinuesFromWeights) {
  auto first = run("mae", "mae_first", tiny(4));
  auto second = run("mae", "mae_second", tiny(2, {"model.weights=" + first.backbone.string(), "train.lr=1e-12"}));
  EXPECT_EQ(load_safetensors(first.backbone).metadata.at(kPosEmbedMetadataKey), "sincos");
  auto a = load_safetensors(first.backbone), b = load_safetensors(second.backbone);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].first, b.tensors[i].first);
    EXPECT_TRUE(torch::allclose(a.tensors[i].second, b.tensors[i].second, 1e-5, 1e-6)) << a.tensors[i].first;
  }
}

}  // namespace
}  // namespace lesseg
