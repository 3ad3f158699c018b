// End to end: a small supervised run must learn; the CLI trains, evaluates, predicts and reports
// bad input with its documented exit codes.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/core/threads.h"
#include "lesseg/data/synth/synth.h"
#include "lesseg/methods/supervised/supervised.h"
#include "smoke_util.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;

using smoke::CliResult;
using smoke::fresh_dir;
using smoke::run_cli;
using smoke::small_run;

TEST(SupervisedTraining, SmallRunLearnsWellAboveChance) {
  configure_threads(0);
  fs::path run = fresh_dir("learns");
  Config config = Config::load("", small_run(400));
  TrainResult result = train_supervised(config, run);
  const double miou = result.metrics["miou"].get<double>();
  // 8 classes: always predicting background scores ~0.08 and uniform guessing ~0.06; this run
  // measured 0.36 after 300 iterations.
  EXPECT_GE(miou, 0.30) << "the model did not learn";
  EXPECT_TRUE(fs::exists(result.weights));
}

TEST(SupervisedTraining, ResumedRunEndsWithTheSameWeights) {
  configure_threads(2);
  auto settings = small_run(8);
  settings.push_back("train.checkpoint_every=4");
  // A constant schedule: the first half below stops early by asking for fewer iterations, which
  // would otherwise change a poly schedule.
  settings.push_back("train.schedule=constant");
  settings.push_back("eval.max_images=4");
  fs::path straight = fresh_dir("straight"), resumed = fresh_dir("resumed");
  train_supervised(Config::load("", settings), straight);
  auto first_half = settings;
  first_half.push_back("train.iters=4");
  train_supervised(Config::load("", first_half), resumed);  // stops at 4 with a checkpoint
  train_supervised(Config::load("", settings), resumed);    // resumes 4 -> 8
  auto a = load_safetensors(straight / "model.safetensors").tensors;
  auto b = load_safetensors(resumed / "model.safetensors").tensors;
  ASSERT_EQ(a.size(), b.size());
  std::map<std::string, at::Tensor> by_name(b.begin(), b.end());
  for (auto& [name, tensor] : a) EXPECT_TRUE(torch::equal(tensor, by_name.at(name))) << name;
  // A resume with a different learning rate is refused, listing the difference.
  auto changed = settings;
  changed.push_back("train.lr=0.5");
  try {
    train_supervised(Config::load("", changed), resumed);
    FAIL() << "resumed with a different config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.lr"), std::string::npos) << e.what();
  }
}

TEST(Cli, TrainEvalPredictRoundTrip) {
  fs::path run = fresh_dir("cli_run"), preds = fresh_dir("cli_preds"), data = fresh_dir("cli_data");
  std::string sets;
  for (const auto& s : small_run(12)) sets += " --set '" + s + "'";
  CliResult train = run_cli("train " + std::string(LESSEG_SOURCE_DIR) + "/configs/quick/supervised.yaml --run-dir " +
                            run.string() + sets + " --set eval.max_images=8");
  ASSERT_EQ(train.code, 0) << train.output;
  EXPECT_NE(train.output.find("validation mIoU:"), std::string::npos);
  for (const char* file : {"config.yaml", "metrics.jsonl", "model.safetensors", "checkpoints/latest"})
    EXPECT_TRUE(fs::exists(run / file)) << file;
  // metrics.jsonl: step records with "iter", and an evaluation with "split" and "miou".
  std::ifstream log(run / "metrics.jsonl");
  std::string line;
  bool saw_step = false, saw_eval = false;
  while (std::getline(log, line)) {
    auto record = nlohmann::json::parse(line);
    EXPECT_TRUE(record.contains("iter"));
    saw_step |= record.contains("loss");
    saw_eval |= record.contains("split") && record.contains("miou");
  }
  EXPECT_TRUE(saw_step && saw_eval);

  CliResult synth = run_cli("synth --out " + data.string() + " --train 2 --val 1 --crops 0 --size 64");
  ASSERT_EQ(synth.code, 0) << synth.output;
  std::vector<fs::path> images;
  for (auto& e : fs::directory_iterator(data / "images")) images.push_back(e.path());
  std::string list;
  for (auto& p : images) list += " " + p.string();
  CliResult predict = run_cli("predict --weights " + (run / "model.safetensors").string() + " --out " + preds.string() + list);
  ASSERT_EQ(predict.code, 0) << predict.output;
  for (auto& p : images) {
    EXPECT_TRUE(fs::exists(preds / (p.stem().string() + ".png")));
    EXPECT_TRUE(fs::exists(preds / (p.stem().string() + "_overlay.png")));
  }
  CliResult eval = run_cli("eval " + run.string());
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_NE(eval.output.find("\"miou\""), std::string::npos);
  CliResult eval_folder = run_cli("eval --weights " + (run / "model.safetensors").string() + " --format folder --root " +
                                  data.string() + " --split val");
  EXPECT_EQ(eval_folder.code, 0) << eval_folder.output;
}

TEST(Cli, UnknownConfigKeyExitsTwoAndWritesNothing) {
  fs::path run = fresh_dir("cli_bad_key");
  CliResult r = run_cli("train " + std::string(LESSEG_SOURCE_DIR) + "/configs/quick/supervised.yaml --run-dir " +
                        run.string() + " --set train.iterations=5");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("train.iterations"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(run));
  // --method picks the method over the config's; an unknown one is named with the known ones.
  CliResult method = run_cli("train " + std::string(LESSEG_SOURCE_DIR) + "/configs/quick/supervised.yaml --run-dir " +
                             run.string() + " --method no_such_method");
  EXPECT_EQ(method.code, 2) << method.output;
  EXPECT_NE(method.output.find("unknown method 'no_such_method'"), std::string::npos) << method.output;
  EXPECT_NE(method.output.find("igldt"), std::string::npos) << method.output;
}

TEST(Cli, CorruptImageExitsThreeNamingTheFile) {
  fs::path data = fresh_dir("cli_corrupt"), run = fresh_dir("cli_corrupt_run");
  ASSERT_EQ(run_cli("synth --out " + data.string() + " --train 8 --val 2 --crops 0 --size 64").code, 0);
  // A validation image: evaluation reads every one of them.
  std::ifstream val_list(data / "splits" / "val.txt");
  std::string stem;
  ASSERT_TRUE(std::getline(val_list, stem));
  fs::path victim = data / "images" / (stem + ".png");
  ASSERT_TRUE(fs::exists(victim));
  std::ofstream(victim, std::ios::trunc) << "not an image";
  CliResult r = run_cli("train " + std::string(LESSEG_SOURCE_DIR) + "/configs/quick/supervised.yaml --run-dir " +
                        run.string() + " --set data.format=folder --set data.root=" + data.string() +
                        " --set train.iters=2 --set train.batch_size=2 --set data.crop=[64,64]");
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find(victim.filename().string()), std::string::npos) << r.output;
}

TEST(Cli, DoctorReportsBlasAndThreads) {
  CliResult r = run_cli("doctor --threads 2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("threads  2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("openblas"), std::string::npos) << "expected OpenBLAS to be loaded:\n" << r.output;
}

TEST(Cli, HelpForEverySubcommand) {
  for (const char* cmd : {"train", "eval", "predict", "synth", "doctor", "report", "import", "info", "launch"}) {
    CliResult r = run_cli(std::string(cmd) + " --help");
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << cmd;
  }
  CliResult nothing = run_cli("train --resume " + fresh_dir("no_run").string());
  EXPECT_EQ(nothing.code, 2) << nothing.output;
  EXPECT_NE(nothing.output.find("nothing to resume"), std::string::npos) << nothing.output;
}

// `lesseg info` and `lesseg import` on a real legacy checkpoint; a malicious file is refused by name.
TEST(Cli, ImportAndInfoReadCheckpointsWithoutRunningThem) {
  const fs::path weights = fs::path(LESSEG_SHARED_DATA) / "weights" / "resnet20-12fca82f.th";
  if (!fs::exists(weights)) GTEST_SKIP() << weights << " is missing";
  fs::path out = fresh_dir("cli_import") / "resnet20.safetensors";
  CliResult info = run_cli("info " + weights.string());
  ASSERT_EQ(info.code, 0) << info.output;
  EXPECT_NE(info.output.find("state_dict.module.layer3.2.bn2.running_var"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("97 tensors"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("best_prec1 = 91.78"), std::string::npos) << info.output;
  CliResult import = run_cli("import " + weights.string() + " --arch cifar_resnet20 --out " + out.string());
  ASSERT_EQ(import.code, 0) << import.output;
  EXPECT_NE(import.output.find("97 matched, 0 missing, 0 unexpected, 0 shape-mismatched"), std::string::npos) << import.output;
  CliResult reread = run_cli("info " + out.string());
  EXPECT_NE(reread.output.find("lesseg.arch = cifar_resnet20"), std::string::npos) << reread.output;
  // The wrong architecture is refused with the report; --allow-partial does not rescue zero matches.
  CliResult wrong = run_cli("import " + weights.string() + " --arch resnet18 --out " + out.string() + ".bad");
  EXPECT_EQ(wrong.code, 4) << wrong.output;
  EXPECT_NE(wrong.output.find("shape mismatch: conv1.weight"), std::string::npos) << wrong.output;
  EXPECT_FALSE(fs::exists(out.string() + ".bad"));
  const fs::path marker = "/tmp/lesseg_pth_marker_system";
  fs::remove(marker);
  CliResult evil = run_cli("info " + std::string(LESSEG_FIXTURES) + "/pth/evil_system.pth");
  EXPECT_EQ(evil.code, 4) << evil.output;
  EXPECT_NE(evil.output.find("refusing global 'posix.system'"), std::string::npos) << evil.output;
  EXPECT_FALSE(fs::exists(marker)) << "the payload ran";
}

}  // namespace
}  // namespace lesseg
