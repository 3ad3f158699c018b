// Class-agnostic COCO instance evaluation on hand-worked cases (the random-input comparison with
// the numpy reference is in tests/parity/test_instance_eval.cpp).
#include <cmath>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "lesseg/eval/instance_eval.h"

namespace lesseg {
namespace {

EvalInstance box_instance(cv::Rect r, double score = 1, bool crowd = false, int64_t category = 1) {
  cv::Mat m = cv::Mat::zeros(100, 100, CV_8U);
  m(r).setTo(1);
  EvalInstance e;
  e.mask = rle::encode(m);
  e.box = rle::bbox(e.mask);
  e.area = double(rle::area(e.mask));
  e.score = score;
  e.crowd = crowd;
  e.category = category;
  return e;
}

TEST(InstanceEval, PerfectPredictionScoresOne) {
  auto gt = box_instance({10, 10, 40, 40});  // 1600 px: a medium object
  auto m = evaluate_instances({{gt}}, {{gt}});
  EXPECT_DOUBLE_EQ(m.values["AP"], 1.0);
  EXPECT_DOUBLE_EQ(m.values["APm"], 1.0);
  EXPECT_DOUBLE_EQ(m.values["APs"], -1.0);  // no small ground truth: not countable
  EXPECT_DOUBLE_EQ(m.values["AR1"], 1.0);
}

TEST(InstanceEval, IouBetweenThresholdsCountsAtTheLowerOnes) {
  // 40x40 ground truth, prediction shifted by 10 px in x: IoU = 1200 / 2000 = 0.6 -> matched
  // at 0.50, 0.55 and 0.60 (IoU >= threshold), i.e. 3 of 10 thresholds.
  auto m = evaluate_instances({{box_instance({10, 10, 40, 40})}}, {{box_instance({20, 10, 40, 40})}});
  EXPECT_NEAR(m.values["AP"], 0.3, 1e-12);
  EXPECT_DOUBLE_EQ(m.values["AP50"], 1.0);
  EXPECT_DOUBLE_EQ(m.values["AP75"], 0.0);
  EXPECT_NEAR(m.values["AR100"], 0.3, 1e-12);
}

TEST(InstanceEval, AHigherScoredFalsePositiveHalvesPrecision) {
  auto gt = box_instance({10, 10, 40, 40});
  auto miss = box_instance({60, 60, 30, 30}, 0.9);
  auto hit = box_instance({10, 10, 40, 40}, 0.5);
  // Ranked [miss, hit]: precision at recall 1 is 1/2, the envelope gives 1/2 at every recall.
  auto m = evaluate_instances({{gt}}, {{miss, hit}});
  EXPECT_NEAR(m.values["AP50"], 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(m.values["AR1"], 0.0);  // the top-1 detection is the miss
  EXPECT_DOUBLE_EQ(m.values["AR10"], 1.0);
  // Ranked the other way round: AP 1.
  hit.score = 0.95;
  EXPECT_DOUBLE_EQ(evaluate_instances({{gt}}, {{miss, hit}}).values["AP50"], 1.0);
}

TEST(InstanceEval, CrowdRegionsAbsorbDetectionsWithoutPenalty) {
  auto gt = box_instance({10, 10, 30, 30});
  auto crowd = box_instance({50, 50, 50, 50}, 1, true);
  auto hit = box_instance({10, 10, 30, 30}, 0.8);
  auto inside_crowd_1 = box_instance({55, 55, 10, 10}, 0.9);  // IoU with a crowd = inter / area(det) = 1
  auto inside_crowd_2 = box_instance({70, 70, 10, 10}, 0.95);
  auto m = evaluate_instances({{gt, crowd}}, {{hit, inside_crowd_1, inside_crowd_2}});
  EXPECT_DOUBLE_EQ(m.values["AP"], 1.0);  // a crowd may absorb several detections
  // Without the crowd flag they are false positives ranked first.
  crowd.crowd = false;
  EXPECT_LT(evaluate_instances({{gt, crowd}}, {{hit, inside_crowd_1, inside_crowd_2}}).values["AP50"], 0.6);
}

TEST(InstanceEval, AreaRangesUseTheStoredGroundTruthArea) {
  auto gt = box_instance({10, 10, 40, 40});
  gt.area = 500;  // stored area says "small" although the mask has 1600 px
  auto m = evaluate_instances({{gt}}, {{gt}});
  EXPECT_DOUBLE_EQ(m.values["APs"], 1.0);
  EXPECT_DOUBLE_EQ(m.values["APm"], -1.0);
}

TEST(InstanceEval, MeanAverageRecallSplitsMultiInstanceImages) {
  // Image 0: two instances of category 1, one found. Image 1: one instance, found.
  auto a = box_instance({0, 0, 20, 20}), b = box_instance({50, 50, 20, 20});
  auto c = box_instance({10, 10, 30, 30}, 1, false, 2);
  auto mar = mean_average_recall_split({{a, b}, {c}}, {{a}, {c}});
  EXPECT_DOUBLE_EQ(mar["multi_instance"], 0.5);
  EXPECT_DOUBLE_EQ(mar["single"], 1.0);
  EXPECT_NEAR(mar["all"], 2.0 / 3.0, 1e-12);
}

}  // namespace
}  // namespace lesseg
