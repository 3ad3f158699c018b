// Semi-supervised methods end to end on the synthetic world, at test sizes: a tiny run learns, a
// resumed run ends with the same weights, IGL-DT runs both stages from one command and chooses its
// weights on the held-out images.
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/threads.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/methods/semi/semi.h"
#include "lesseg/methods/supervised/supervised.h"
#include "smoke_util.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;

// 96 px scenes, 64 px crops, 20 labeled scenes, 20 held out, ResUnet-18 with a light decoder.
std::vector<std::string> tiny_semi(int iters, std::vector<std::string> more = {}) {
  std::vector<std::string> settings = {
      "data.synth.size=96",       "data.synth.num_train=200", "data.synth.num_val=40",
      "data.crop=[64, 64]",       "data.scale=[0.8, 1.2]",    "data.labeled=20",
      "data.holdout=20",          "model.decoder_channels=[128, 64, 32, 32, 16]",
      "train.optimizer=adamw",    "train.lr=0.002",           "train.batch_size=4",
      "semi.unlabeled_batch_size=4", "train.iters=" + std::to_string(iters), "train.log_every=10",
      "train.eval_every=0",       "train.checkpoint_every=0", "data.workers=2",
      "eval.max_images=20"};
  settings.insert(settings.end(), more.begin(), more.end());
  return settings;
}

std::map<std::string, at::Tensor> weights(const fs::path& file) {
  auto tensors = load_safetensors(file).tensors;
  return {tensors.begin(), tensors.end()};
}

TEST(SemiSupervised, UniMatchSmallRunLearns) {
  configure_threads(0);
  fs::path run = smoke::fresh_dir("unimatch_learns");
  TrainResult result = train_unimatch(Config::load("", tiny_semi(150)), run);
  const double miou = result.metrics["miou"].get<double>();
  // 8 classes: predicting background everywhere scores ~0.08, the untrained model ~0.01; this run
  // (20 labeled scenes, 150 steps of 4 + 4 images) measured 0.139.
  EXPECT_GE(miou, 0.12) << "the model did not learn";
  EXPECT_TRUE(fs::exists(run / "labeled.txt"));
  EXPECT_TRUE(fs::exists(run / "holdout.txt"));
}

// CPS with CutMix (boxes drawn per step), stopped after 2 of 4 iterations and resumed.
TEST(SemiSupervised, CpsResumedRunEndsWithTheSameWeights) {
  configure_threads(2);
  auto settings = tiny_semi(4, {"cps.cutmix=true", "train.checkpoint_every=2", "train.schedule=constant",
                                "eval.max_images=4", "cps.backbone_b=resnet18"});
  fs::path straight = smoke::fresh_dir("cps_straight"), resumed = smoke::fresh_dir("cps_resumed");
  train_cps(Config::load("", settings), straight);
  auto half = settings;
  half.push_back("train.iters=2");
  train_cps(Config::load("", half), resumed);
  train_cps(Config::load("", settings), resumed);
  for (const char* file : {"model.safetensors", "model_b.safetensors"}) {
    auto a = weights(straight / file), b = weights(resumed / file);
    ASSERT_EQ(a.size(), b.size());
    for (auto& [name, tensor] : a) EXPECT_TRUE(torch::equal(tensor, b.at(name))) << file << " " << name;
  }
}

// One command: stage 1 (SwinUnet + ResUnet CPS teachers) into RUN/stage1, stage 2 the student;
// weights chosen on the held-out scenes, then scored on the reported split.
TEST(SemiSupervised, IgldtRunsBothStagesAndSelectsOnHeldOutImages) {
  configure_threads(2);
  fs::path run = smoke::fresh_dir("igldt");
  auto settings = tiny_semi(4, {"model.arch=swinunet", "model.backbone=swin_tiny", "igldt.stage1_iters=2",
                                "train.eval_every=2", "train.select=best", "eval.max_images=4"});
  TrainResult result = train_igldt(Config::load("", settings), run);
  for (const char* file : {"stage1/model.safetensors", "stage1/model_b.safetensors", "model.safetensors", "results.json"})
    EXPECT_TRUE(fs::exists(run / file)) << file;
  ASSERT_TRUE(result.metrics.contains("selected"));
  EXPECT_TRUE(result.metrics["selected"].contains("iter"));
  EXPECT_TRUE(result.metrics.contains("miou"));
  // The student is a DeepLabV3+ with no projection heads in the deployed file.
  for (auto& [name, tensor] : weights(run / "model.safetensors"))
    EXPECT_EQ(name.find("projection"), std::string::npos) << name;
  // The ablation switches drop their terms from the log.
  fs::path ablated = smoke::fresh_dir("igldt_ablated");
  auto no_terms = settings;
  for (const char* s : {"igldt.global=false", "igldt.local=false", "igldt.discrepancy=false", "train.iters=2"})
    no_terms.push_back(s);
  no_terms.push_back("igldt.teachers=" + (run / "stage1").string());
  train_igldt(Config::load("", no_terms), ablated);
  std::ifstream metrics(ablated / "metrics.jsonl");
  std::string line;
  int steps = 0;
  while (std::getline(metrics, line)) {
    auto record = nlohmann::json::parse(line);
    if (!record.contains("loss_sup")) continue;
    ++steps;
    EXPECT_FALSE(record.contains("loss_global") || record.contains("loss_local") || record.contains("loss_discrepancy")) << line;
  }
  EXPECT_GT(steps, 0);
  // Without held-out images, choosing the best weights is refused (it would choose on the reported split).
  auto no_holdout = settings;
  no_holdout.push_back("data.holdout=0");
  EXPECT_THROW(train_supervised(Config::load("", no_holdout), smoke::fresh_dir("no_holdout")), Error);
}

}  // namespace
}  // namespace lesseg
