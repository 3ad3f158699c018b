// CutLER (lesseg train --method cutler): a small SOLOv2 learns instances on the synthetic world, and
// bad instance files fail with clear errors (exit code 3) or are skipped as documented.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lesseg/core/config.h"
#include "lesseg/core/fs.h"
#include "lesseg/core/threads.h"
#include "lesseg/data/synth/synth.h"
#include "lesseg/methods/cutler/cutler.h"
#include "lesseg/methods/cutler/selftrain.h"
#include "lesseg/methods/instance_model.h"
#include "smoke_util.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;

// A 64 px world of 1 to 3 objects; its ground-truth instances stand in for pseudo-masks here (the
// question is whether the segmenter learns what it is given).
fs::path small_world(const std::string& name, int size) {
  fs::path dir = smoke::fresh_dir(name);
  synth::Options o;
  o.size = size;
  o.min_objects = 1;
  o.max_objects = 3;
  synth::write_dataset(dir, o, 160, 24, 0);
  return dir;
}

std::vector<std::string> cutler_run(const fs::path& world, int iters) {
  const std::string w = world.string();
  return {"method=cutler", "instances.train_json=" + w + "/instances_train.json", "instances.train_images=" + w + "/images",
          "instances.val_json=" + w + "/instances_val.json", "instances.val_images=" + w + "/images",
          "data.crop=[64, 64]", "data.scale=[0.9, 1.1]", "data.color_jitter=0.0",
          "solo.grids=[12, 10, 8, 6, 4]", "solo.scale_ranges=[[1, 16], [8, 32], [16, 64], [32, 128], [64, 256]]",
          "solo.fpn_channels=64", "solo.head_channels=64", "solo.stacked_convs=2", "solo.mask_hidden=32",
          "solo.mask_channels=32", "train.optimizer=adamw", "train.lr=0.001", "train.weight_decay=0.0001",
          "train.schedule=cosine", "train.batch_size=8", "train.iters=" + std::to_string(iters),
          "train.log_every=20", "train.eval_every=0", "train.checkpoint_every=0", "train.grad_clip=35",
          "cutler.copy_paste=0.5", "data.workers=2"};
}

TEST(CutlerTraining, SmallSolov2LearnsInstances) {
  configure_threads(0);
  const fs::path world = small_world("cutler_world", 64);
  auto untrained_settings = cutler_run(world, 1);
  untrained_settings.push_back("train.lr=1e-12");  // one step that changes nothing: the untrained model
  TrainResult untrained = train_cutler(Config::load("", untrained_settings), smoke::fresh_dir("cutler_untrained"));
  const fs::path trained_dir = smoke::fresh_dir("cutler_trained");
  TrainResult trained = train_cutler(Config::load("", cutler_run(world, 200)), trained_dir);
  const double before = untrained.metrics.at("mask_ap50").get<double>();
  const double after = trained.metrics.at("mask_ap50").get<double>();
  std::printf("  mask AP50: untrained %.3f, after 200 iterations %.3f (AP %.3f)\n", before, after,
              trained.metrics.at("mask_ap").get<double>());
  // Measured for this test: 0.00 untrained, 0.57 after 200 iterations (about 70 s on 2 idle cores).
  EXPECT_GE(after, 0.20) << "the segmenter did not learn";
  EXPECT_GE(after, before + 0.15);
  // Few labels on top: the whole saved model is the start (AP unchanged by a null step) and a seeded
  // quarter of the annotated images is used, listed in the run folder.
  auto few = cutler_run(world, 1);
  for (const char* s : {"train.lr=1e-12", "data.labeled_fraction=0.25", "cutler.drop_loss=false"}) few.push_back(s);
  few.push_back("model.weights=" + trained.weights.string());
  const fs::path few_dir = smoke::fresh_dir("cutler_few");
  TrainResult tuned = train_cutler(Config::load("", few), few_dir);
  EXPECT_NEAR(tuned.metrics.at("mask_ap50").get<double>(), after, 0.02);
  std::ifstream list(few_dir / "labeled.txt");
  std::string name;
  int listed = 0;
  while (std::getline(list, name)) listed += fs::exists(world / "images" / name);
  EXPECT_EQ(listed, 40);  // 25 % of 160 scenes
  // Self-training from the trained model (copied in as round 0, which resumes at its end): round 1
  // keeps the predictions scoring >= 0.5 x the highest (relative thresholds) and trains from round 0.
  const fs::path self_dir = smoke::fresh_dir("cutler_selftrain");
  fs::create_directories(self_dir);
  fs::copy(trained_dir, self_dir / "round0", fs::copy_options::recursive);
  auto self = cutler_run(world, 200);
  for (const char* s : {"selftrain.rounds=1", "selftrain.thresholds=[0.5]", "selftrain.threshold_mode=relative",
                        "selftrain.iters=2"})
    self.push_back(s);
  SelfTrainResult rounds = self_train(Config::load("", self), self_dir);
  ASSERT_EQ(rounds.rounds.size(), 2u);
  EXPECT_TRUE(fs::exists(self_dir / "round1" / "model.safetensors"));
  double lowest = 1, highest = 0;
  int kept = 0;
  for (const auto& a : coco::read(self_dir / "round1" / "pseudo_train.json").annotations) {
    if (a.score < 0) continue;  // an earlier (ground-truth) mask
    ++kept;
    lowest = std::min(lowest, a.score);
    highest = std::max(highest, a.score);
  }
  EXPECT_GT(kept, 0);
  EXPECT_GE(lowest, 0.5 * highest - 1e-9);
  // The saved model rebuilds from its file alone and predicts.
  SavedInstanceModel saved = load_instance_model(trained.weights, torch::kCPU);
  cv::Mat image(64, 80, CV_8UC3, cv::Scalar(40, 90, 160));
  SoloInstances instances = predict_instances(*saved.model, image, saved.input, saved.test, torch::kCPU);
  EXPECT_EQ(instances.masks.dim(), 3);
  if (instances.masks.size(0) > 0) {
    EXPECT_EQ(instances.masks.size(2), 80);
  }
}

TEST(CutlerTraining, BadInstanceFilesFailClearly) {
  const fs::path world = small_world("cutler_bad", 64), other = small_world("cutler_bad96", 96);
  const fs::path run = smoke::fresh_dir("cutler_bad_run");
  auto args = [&](const std::vector<std::string>& settings) {
    std::string line = "train " + std::string(LESSEG_SOURCE_DIR) + "/configs/quick/cutler.yaml --run-dir " + run.string();
    for (const auto& s : settings) line += " --set '" + s + "'";
    return line;
  };
  // Images whose size differs from the JSON's (96 px files under a 64 px annotation file).
  auto settings = cutler_run(world, 2);
  settings.push_back("instances.train_images=" + (other / "images").string());
  smoke::CliResult r = smoke::run_cli(args(settings));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("but " + (world / "instances_train.json").string()), std::string::npos) << r.output;

  // No annotation at all.
  auto json = nlohmann::json::parse(read_file(world / "instances_train.json"));
  json["annotations"] = nlohmann::json::array();
  write_file_atomic(world / "empty.json", json.dump());
  settings = cutler_run(world, 2);
  settings.push_back("instances.train_json=" + (world / "empty.json").string());
  r = smoke::run_cli(args(settings));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("no usable annotation"), std::string::npos) << r.output;

  // Degenerate (zero-area) and overlapping masks are skipped / trained on, not a crash.
  json = nlohmann::json::parse(read_file(world / "instances_train.json"));
  auto first = json["annotations"][0];
  auto copy = first;
  copy["id"] = 100000;  // an exact overlap
  auto empty = first;
  empty["id"] = 100001;
  empty["segmentation"] = {{"size", {64, 64}}, {"counts", {64 * 64}}};
  empty["area"] = 0;
  json["annotations"].push_back(copy);
  json["annotations"].push_back(empty);
  write_file_atomic(world / "degenerate.json", json.dump());
  settings = cutler_run(world, 2);
  settings.push_back("instances.train_json=" + (world / "degenerate.json").string());
  r = smoke::run_cli(args(settings));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("1 empty or crowd masks skipped"), std::string::npos) << r.output;

  // The saved instance model goes through the same eval and predict commands as every model.
  r = smoke::run_cli("eval " + run.string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("\"mask_ap50\""), std::string::npos) << r.output;
  r = smoke::run_cli("report " + run.string() + " --images 2");
  EXPECT_EQ(r.code, 0) << r.output;
  const std::string html = read_file(run / "report.html");
  EXPECT_NE(html.find("val mask AP50"), std::string::npos);
  EXPECT_NE(html.find("data-kind=\"prediction\""), std::string::npos);
  const fs::path few = world / "few", out = world / "predicted";
  fs::create_directories(few);
  fs::copy_file(world / "images" / "source_000000.png", few / "a.png");
  fs::copy_file(world / "images" / "source_000001.png", few / "b.png");
  r = smoke::run_cli("predict --weights " + (run / "model.safetensors").string() + " --out " + out.string() + " " +
                     few.string());
  EXPECT_EQ(r.code, 0) << r.output;
  auto predicted = nlohmann::json::parse(read_file(out / "instances.json"));
  EXPECT_EQ(predicted["images"].size(), 2u);
  EXPECT_EQ(predicted["images"][0]["file_name"], "a.png");
  EXPECT_TRUE(fs::exists(out / "b_instances.png"));
}

}  // namespace
}  // namespace lesseg
