// `lesseg pseudo` end to end on real images: a valid COCO file, resuming, and the documented
// errors for bad inputs with nothing already written lost.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "lesseg/io/coco.h"
#include "smoke_util.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;
using smoke::run_cli;

const fs::path kFruits = fs::path(LESSEG_SHARED_DATA) / "fruits" / "images";

class PseudoCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::is_directory(kFruits)) GTEST_SKIP() << kFruits << " missing";
    dir_ = smoke::fresh_dir("pseudo");
    fs::create_directories(dir_ / "images" / "sub");
    fs::copy_file(kFruits / "0.jpg", dir_ / "images" / "a.jpg");
    fs::copy_file(kFruits / "1.jpg", dir_ / "images" / "sub" / "b.jpg");
  }
  // A ViT-Ti/8 at 64 px keeps each call to a second or two.
  smoke::CliResult pseudo(const std::string& extra) {
    return run_cli("pseudo " + (dir_ / "images").string() + " --out " + (dir_ / "out" / "masks.json").string() +
                   " --backbone vit_tiny8 --image-size 64 --threads 1 " + extra);
  }
  fs::path dir_;
};

TEST_F(PseudoCli, WritesCocoInstancesAndResumes) {
  auto first = pseudo("--overlays " + (dir_ / "overlays").string());
  ASSERT_EQ(first.code, 0) << first.output;
  auto data = coco::read(dir_ / "out" / "masks.json");
  ASSERT_EQ(data.images.size(), 2u);
  EXPECT_EQ(data.images[0].file_name, "a.jpg");
  EXPECT_EQ(data.images[1].file_name, "sub/b.jpg");
  cv::Mat a = cv::imread((dir_ / "images" / "a.jpg").string());
  EXPECT_EQ(data.images[0].width, a.cols);  // width / height the right way round
  EXPECT_EQ(data.images[0].height, a.rows);
  ASSERT_EQ(data.categories.size(), 1u);
  ASSERT_FALSE(data.annotations.empty());
  for (const auto& ann : data.annotations) {
    EXPECT_EQ(ann.mask.width, data.images[size_t(ann.image_id - 1)].width);
    EXPECT_GT(rle::area(ann.mask), 0u);
    EXPECT_GE(ann.score, 0.0);
    EXPECT_LE(ann.score, 1.0);
  }
  EXPECT_TRUE(fs::exists(dir_ / "overlays" / "sub" / "b.png"));
  EXPECT_FALSE(fs::exists(dir_ / "out" / "masks.json.partial.jsonl"));
  // A new image: only it is computed, the first two are kept as they were.
  fs::copy_file(kFruits / "2.jpg", dir_ / "images" / "c.jpg");
  auto second = pseudo("");
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("\"resumed\":2"), std::string::npos) << second.output;
  auto again = coco::read(dir_ / "out" / "masks.json");
  ASSERT_EQ(again.images.size(), 3u);
  EXPECT_EQ(rle::to_string(again.annotations[0].mask), rle::to_string(data.annotations[0].mask));
}

TEST_F(PseudoCli, MultiKWithSaliencyWritesMasks) {
  auto run = pseudo("--method multik+saliency --ks 2,3,4 --no-refine");
  ASSERT_EQ(run.code, 0) << run.output;
  auto data = coco::read(dir_ / "out" / "masks.json");
  EXPECT_EQ(data.images.size(), 2u);
  EXPECT_FALSE(data.annotations.empty());
  EXPECT_EQ(pseudo("--method nope").code, 2);
  EXPECT_EQ(pseudo("--method maskcut --saliency-weights x.pth").code, 2);
}

TEST_F(PseudoCli, EvalScoresPseudoMasksAgainstCocoGroundTruth) {
  // Two fruits images under their own names, scored against the whole trainval.json: the other
  // 16 images count as misses. The whole-image baseline needs no features.
  const fs::path images = dir_ / "named";
  fs::create_directories(images);
  fs::copy_file(kFruits / "0.jpg", images / "0.jpg");
  fs::copy_file(kFruits / "1.jpg", images / "1.jpg");
  const std::string out = (dir_ / "whole.json").string();
  auto run = run_cli("pseudo " + images.string() + " --out " + out + " --method whole-image --no-refine --threads 1");
  ASSERT_EQ(run.code, 0) << run.output;
  const std::string gt = (kFruits.parent_path() / "trainval.json").string();
  auto eval = run_cli("eval --instances " + out + " --gt " + gt);
  ASSERT_EQ(eval.code, 0) << eval.output;
  auto metrics = nlohmann::json::parse(eval.output);
  EXPECT_EQ(metrics.at("images"), 18);
  EXPECT_EQ(metrics.at("predictions"), 2);
  EXPECT_GE(metrics.at("mask").at("AP").get<double>(), 0.0);
  EXPECT_LT(metrics.at("mask").at("AR100").get<double>(), 0.05);  // one box-sized mask finds no fruit
  // Predictions for an image the ground truth does not have: bad input, named.
  ASSERT_EQ(pseudo("--method whole-image --no-refine").code, 0);  // a.jpg, sub/b.jpg
  auto foreign = run_cli("eval --instances " + (dir_ / "out" / "masks.json").string() + " --gt " + gt);
  EXPECT_EQ(foreign.code, 3) << foreign.output;
  EXPECT_NE(foreign.output.find("'a.jpg' is not in"), std::string::npos) << foreign.output;
  EXPECT_EQ(run_cli("eval --instances " + out).code, 2);  // --gt missing
}

TEST_F(PseudoCli, BadInputsNameTheFileAndKeepWhatWasWritten) {
  // Sorted order: a.jpg, then the corrupt file, so a.jpg is done before the failure.
  std::ofstream(dir_ / "images" / "corrupt.png") << "not an image";
  auto corrupt = pseudo("");
  EXPECT_EQ(corrupt.code, 3) << corrupt.output;
  EXPECT_NE(corrupt.output.find("corrupt.png"), std::string::npos) << corrupt.output;
  std::ifstream partial(dir_ / "out" / "masks.json.partial.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(partial, line));
  EXPECT_EQ(nlohmann::json::parse(line).at("file_name"), "a.jpg");
  // Fixed: the run resumes after a.jpg.
  fs::remove(dir_ / "images" / "corrupt.png");
  auto fixed = pseudo("");
  EXPECT_EQ(fixed.code, 0) << fixed.output;
  EXPECT_NE(fixed.output.find("\"resumed\":1"), std::string::npos) << fixed.output;

  cv::imwrite((dir_ / "images" / "tiny.png").string(), cv::Mat(4, 4, CV_8UC3, cv::Scalar(9, 9, 9)));
  auto tiny = pseudo("");
  EXPECT_EQ(tiny.code, 3) << tiny.output;
  EXPECT_NE(tiny.output.find("tiny.png"), std::string::npos);
  EXPECT_NE(tiny.output.find("smaller than one 8x8 patch"), std::string::npos) << tiny.output;
  fs::remove(dir_ / "images" / "tiny.png");

  const fs::path resnet = fs::path(LESSEG_SHARED_DATA) / "weights" / "resnet20-12fca82f.th";
  if (fs::exists(resnet)) {
    auto wrong = pseudo("--weights " + resnet.string());
    EXPECT_EQ(wrong.code, 4) << wrong.output;
    EXPECT_NE(wrong.output.find("resnet20-12fca82f.th"), std::string::npos) << wrong.output;
  }
  EXPECT_EQ(pseudo("--features x").code, 2);
  EXPECT_EQ(pseudo("--backbone resnet18").code, 2);
}

}  // namespace
}  // namespace lesseg
