// lesseg's COCO instance evaluation against a numpy implementation written from the COCO
// definitions (tools/parity/coco_eval.py) on random ground truth (crowds, stored areas, empty
// images) and random predictions with tied scores: every metric to 1e-6.
#include <nlohmann/json.hpp>

#include "lesseg/core/fs.h"
#include "lesseg/eval/instance_eval.h"
#include "parity_util.h"

namespace lesseg {
namespace {

TEST(InstanceEvalParity, MatchesTheNumpyReferenceOnRandomPredictions) {
  const auto dir = parity::case_dir("coco_eval");
  const auto expected = nlohmann::json::parse(read_file(dir / "expected.json"));
  const InstancePairs pairs = read_instance_pairs(dir / "gt.json", dir / "pred.json");
  ASSERT_EQ(pairs.ground_truth.size(), 14u);
  InstanceEvalOptions options;
  const InstanceMetrics mask = evaluate_instances(pairs.ground_truth, pairs.predictions, options);
  options.iou = InstanceIou::box;
  const InstanceMetrics box = evaluate_instances(pairs.ground_truth, pairs.predictions, options);
  int compared = 0;
  for (const auto& [kind, metrics] : {std::pair{"mask", &mask}, std::pair{"box", &box}}) {
    for (const auto& [name, value] : expected.at(kind).items()) {
      EXPECT_NEAR(metrics->values.at(name), value.get<double>(), 1e-6) << kind << " " << name;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 24);
  const auto mar = mean_average_recall_split(pairs.ground_truth, pairs.predictions);
  for (const auto& [name, value] : expected.at("mar").items())
    EXPECT_NEAR(mar.at(name), value.get<double>(), 1e-6) << "mAR " << name;
  std::printf("  mask AP %.6f (reference %.6f), box AP %.6f (reference %.6f)\n", mask.values.at("AP"),
              expected["mask"]["AP"].get<double>(), box.values.at("AP"), expected["box"]["AP"].get<double>());
}

}  // namespace
}  // namespace lesseg
