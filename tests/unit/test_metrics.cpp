// Confusion-matrix metrics against numpy (goldens from tools/make_goldens.py).
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/eval/confusion.h"
#include "lesseg/eval/evaluate.h"

namespace lesseg {
namespace {

TEST(Metrics, MatchNumpyReferenceOnRandomData) {
  std::ifstream in(std::string(LESSEG_FIXTURES) + "/metrics/miou_golden.json");
  ASSERT_TRUE(in.good());
  auto cases = nlohmann::json::parse(in);
  ASSERT_EQ(cases.size(), 3u);
  for (const auto& c : cases) {
    ConfusionMatrix cm(c["num_classes"].get<int64_t>(), c["ignore_index"].get<int64_t>());
    auto pred = torch::tensor(c["pred"].get<std::vector<int64_t>>());
    auto target = torch::tensor(c["target"].get<std::vector<int64_t>>());
    // Feed in two chunks: accumulation must equal one pass.
    const int64_t half = pred.size(0) / 2;
    cm.process(pred.slice(0, 0, half), target.slice(0, 0, half));
    cm.process(pred.slice(0, half), target.slice(0, half));
    SegMetrics m = cm.compute();
    EXPECT_NEAR(m.miou, c["miou"].get<double>(), 1e-12);
    EXPECT_NEAR(m.macc, c["macc"].get<double>(), 1e-12);
    EXPECT_NEAR(m.pixel_acc, c["pixel_acc"].get<double>(), 1e-12);
    ASSERT_EQ(m.iou.size(), c["iou"].size());
    for (size_t k = 0; k < m.iou.size(); ++k) {
      if (c["iou"][k].is_null()) {
        EXPECT_TRUE(std::isnan(m.iou[k])) << "class " << k;
      } else {
        EXPECT_NEAR(m.iou[k], c["iou"][k].get<double>(), 1e-12) << "class " << k;
      }
    }
  }
}

TEST(Metrics, PerfectPredictionScoresOneAndIgnoreIsSkipped) {
  ConfusionMatrix cm(3, 255);
  auto target = torch::tensor({0, 1, 2, 255, 255}, torch::kLong);
  auto pred = torch::tensor({0, 1, 2, 1, 0}, torch::kLong);
  cm.process(pred, target);
  EXPECT_DOUBLE_EQ(cm.compute().miou, 1.0);
  EXPECT_EQ(cm.matrix().sum().item<int64_t>(), 3);
}

}  // namespace
}  // namespace lesseg

// eval.classes: mIoU and mAcc over the named classes only (SYNTHIA -> Cityscapes scores 16 of 19).
TEST(Metrics, ScoredClassesAverageASubset) {
  lesseg::SegMetrics m;
  m.miou = 0.5;
  m.iou = {0.9, 0.1, std::nan(""), 0.5};
  m.accuracy = {1.0, 0.2, std::nan(""), 0.6};
  lesseg::ClassInfo classes;
  classes.names = {"road", "terrain", "train", "car"};
  const auto all = lesseg::metrics_json(m, classes);
  EXPECT_DOUBLE_EQ(all["miou"].get<double>(), 0.5);
  EXPECT_FALSE(all.contains("scored_classes"));
  const auto some = lesseg::metrics_json(m, classes, {0, 2, 3});  // a NaN class (absent) is skipped
  EXPECT_DOUBLE_EQ(some["miou"].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(some["macc"].get<double>(), 0.8);
  EXPECT_EQ(some["scored_classes"], nlohmann::json({"road", "train", "car"}));
  EXPECT_EQ(some["iou"].size(), 4u);  // every class's IoU is still listed
  const auto config = lesseg::Config::load("", {"eval.classes=[car, road]"});
  EXPECT_EQ(lesseg::scored_classes_from(config, classes), (std::vector<int>{3, 0}));
  try {
    lesseg::scored_classes_from(lesseg::Config::load("", {"eval.classes=[lorry]"}), classes);
    ADD_FAILURE() << "an unknown class was accepted";
  } catch (const lesseg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lorry"), std::string::npos);
  }
}
