// Adaptation methods end to end on the synthetic world's domain shift, at test sizes: a DACS run
// learns to segment the target, and a resumed run ends with the same weights (student, teacher).
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/threads.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/methods/uda/uda.h"
#include "lesseg/report/report.h"
#include "lesseg/report/report_html.h"
#include "smoke_util.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;

// 96 px scenes (source 200 labeled, target 200 unlabeled, 40 target scenes scored), 64 px crops.
std::vector<std::string> tiny_uda(int iters, std::vector<std::string> more = {}) {
  std::vector<std::string> settings = {
      "uda.source.format=synth", "uda.target.format=synth", "data.synth.size=96", "data.synth.num_train=200",
      "data.synth.num_val=40", "data.crop=[64, 64]", "data.scale=[0.8, 1.2]",
      "model.decoder_channels=[128, 64, 32, 32, 16]", "train.optimizer=adamw", "train.lr=0.002",
      "train.batch_size=4", "train.iters=" + std::to_string(iters), "train.log_every=10", "train.eval_every=0",
      "train.checkpoint_every=0", "data.workers=2", "eval.max_images=20"};
  settings.insert(settings.end(), more.begin(), more.end());
  return settings;
}

std::map<std::string, at::Tensor> weights(const fs::path& file) {
  auto tensors = load_safetensors(file).tensors;
  return {tensors.begin(), tensors.end()};
}

// Trains `settings` (4 steps, checkpoint every 2) straight, and in another folder stopped after 2
// steps and resumed: the saved models must be equal. Returns the straight run's folder.
fs::path expect_exact_resume(TrainResult (*train)(const Config&, const fs::path&), const std::vector<std::string>& settings,
                             const std::string& tag) {
  fs::path straight = smoke::fresh_dir(tag + "_straight"), resumed = smoke::fresh_dir(tag + "_resumed");
  train(Config::load("", settings), straight);
  auto half = settings;
  half.push_back("train.iters=2");
  train(Config::load("", half), resumed);
  train(Config::load("", settings), resumed);
  auto a = weights(straight / "model.safetensors"), b = weights(resumed / "model.safetensors");
  EXPECT_EQ(a.size(), b.size());
  for (auto& [name, tensor] : a) EXPECT_TRUE(b.count(name) && torch::equal(tensor, b.at(name))) << name;
  return straight;
}

TEST(Adaptation, DacsSmallRunLearnsTheTarget) {
  configure_threads(0);
  fs::path run = smoke::fresh_dir("dacs_learns");
  TrainResult result = train_dacs(Config::load("", tiny_uda(100)), run);
  const double miou = result.metrics["miou"].get<double>();
  // 8 classes on target scenes: background everywhere scores ~0.08, the untrained model ~0.01;
  // this run measured 0.14.
  EXPECT_GE(miou, 0.10) << "the model did not learn";
  EXPECT_TRUE(fs::exists(run / "adaptation.txt"));
}

TEST(Adaptation, DacsResumedRunEndsWithTheSameWeights) {
  configure_threads(2);
  auto settings = tiny_uda(4, {"train.checkpoint_every=2", "train.schedule=constant", "eval.max_images=4"});
  expect_exact_resume(train_dacs, settings, "dacs");
}

// CSA with FDA stylization, the contrast from step 1: stopped after 2 of 4 steps and resumed ends
// with the same weights (heads, teacher and prototypes are in the checkpoint); switching the parts
// off drops their terms.
TEST(Adaptation, CsaResumesExactlyAndItsSwitchesDropTheirTerms) {
  configure_threads(2);
  auto settings = tiny_uda(4, {"train.checkpoint_every=2", "train.schedule=constant", "eval.max_images=4",
                               "csa.contrast_start=0.25", "csa.cam_start=0.25", "csa.projection_dim=64", "csa.pixels=256",
                               "method=csa"});
  fs::path straight = expect_exact_resume(train_csa, settings, "csa");
  std::ifstream log(straight / "metrics.jsonl");
  std::string line, last;
  while (std::getline(log, line))
    if (line.find("loss_contrast_target") != std::string::npos) last = line;
  EXPECT_FALSE(last.empty()) << "no contrast term logged";
  // The report shows the stylizer at work: source, stylized source, target.
  ReportOptions report;
  report.images = 2;
  const ReportData data = gather_report_data(straight, report);
  ASSERT_EQ(data.stylized.size(), 2u);
  EXPECT_EQ(data.stylized[0].stylized.size(), data.stylized[0].source.size());
  EXPECT_GT(cv::norm(data.stylized[0].stylized, data.stylized[0].source, cv::NORM_L1), 0.0);
  EXPECT_NE(render_report_html(data).find("id=\"stylized\""), std::string::npos);

  fs::path ablated = smoke::fresh_dir("csa_ablated");
  auto off = settings;
  for (const char* s : {"csa.contrast=false", "csa.cam=false", "csa.stylizer=none", "dacs.mix=false", "train.iters=2"})
    off.push_back(s);
  train_csa(Config::load("", off), ablated);
  std::ifstream ablated_log(ablated / "metrics.jsonl");
  while (std::getline(ablated_log, line)) {
    EXPECT_EQ(line.find("contrast"), std::string::npos) << line;
    EXPECT_EQ(line.find("cam_"), std::string::npos) << line;
    EXPECT_EQ(line.find("loss_mix"), std::string::npos) << line;
  }
}

// CSA with a trained CUT stylizer (tiny): stage 1 (1 step) trains generator and discriminator with
// their own optimizers, stage 2 freezes them; a run stopped after 2 steps and resumed ends with the
// same segmenter. Milestones scale with train.iters: stage 1 is round(0.3 x 2) = round(0.3 x 4) = 1
// step in both the stopped and the full run.
TEST(Adaptation, CsaWithCutResumesExactlyAcrossTheStages) {
  configure_threads(2);
  auto settings = tiny_uda(4, {"train.checkpoint_every=2", "train.schedule=constant", "eval.max_images=4",
                               "csa.stylizer=cut", "csa.cut_ngf=8", "csa.cut_blocks=5", "csa.cut_patches=32",
                               "csa.stage1=0.3", "csa.contrast_start=0.0", "train.log_every=1", "csa.projection_dim=32", "csa.pixels=128"});
  fs::path straight = expect_exact_resume(train_csa, settings, "csa_cut");
  std::ifstream log(straight / "metrics.jsonl");
  std::string line;
  int stage1 = 0, stage2 = 0;
  while (std::getline(log, line)) {
    auto record = nlohmann::json::parse(line);
    if (!record.contains("loss")) continue;
    (record.contains("loss_cut/nce") && record.contains("loss_disc/gan") ? stage1 : stage2)++;
  }
  EXPECT_EQ(stage1, 1);
  EXPECT_EQ(stage2, 3);
}

TEST(Adaptation, DacsNeedsTwoDomains) {
  auto result = smoke::run_cli(std::string("train ") + LESSEG_SOURCE_DIR + "/configs/quick/supervised.yaml --method dacs " +
                               "--set train.iters=1 --run-dir " + smoke::fresh_dir("dacs_one_domain").string());
  EXPECT_EQ(result.code, 2) << result.output;
  EXPECT_NE(result.output.find("uda.source.format"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace lesseg
