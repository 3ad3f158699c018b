// Two-domain runs: which images each domain gives (synthetic world and file datasets, name
// patterns, a held-out tail), class maps, and rare-class sampling against hand-computed numbers.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "lesseg/core/config.h"
#include "lesseg/data/domains.h"
#include "lesseg/data/open.h"
#include "lesseg/data/rare_class.h"
#include "seg_fixtures.h"

namespace lesseg {
namespace {

using test::error_of;
using test::TempDir;
using test::write_text;

std::set<std::string> ids(const SegDataset& d) {
  std::set<std::string> out;
  for (size_t i = 0; i < d.size(); ++i) out.insert(d.sample_id(i));
  return out;
}

Config synth_domains(std::vector<std::string> more = {}) {
  std::vector<std::string> settings = {"uda.source.format=synth", "uda.target.format=synth", "data.synth.size=32",
                                       "data.synth.num_train=12", "data.synth.num_val=5"};
  settings.insert(settings.end(), more.begin(), more.end());
  return Config::load("", settings);
}

TEST(Domains, SyntheticSourceAndTargetAreDifferentScenes) {
  TempDir dir;
  TrainSplits splits = open_train_splits(synth_domains({"data.holdout=2"}), dir.path(), true);
  EXPECT_EQ(splits.labeled->size(), 10u);
  EXPECT_EQ(splits.selection->size(), 2u);  // held out of the source: no target label chooses a checkpoint
  EXPECT_EQ(splits.unlabeled->size(), 12u);
  EXPECT_EQ(splits.reported->size(), 5u);
  // Source scenes 0..11; target adaptation scenes after the validation ones (17..28); reported 12..16.
  EXPECT_TRUE(ids(*splits.labeled).count("source_000000") || ids(*splits.selection).count("source_000000"));
  EXPECT_TRUE(ids(*splits.unlabeled).count("target_000017"));
  EXPECT_TRUE(ids(*splits.reported).count("target_000012"));
  EXPECT_TRUE(splits.unlabeled->get(0).mask.empty() || cv::countNonZero(splits.unlabeled->get(0).mask) == 0);
  // `lesseg eval RUN` and reports score the same images.
  EXPECT_EQ(ids(*open_dataset(synth_domains(), "val")), ids(*splits.reported));
  for (const char* list : {"adaptation.txt", "reported.txt", "holdout.txt"}) EXPECT_TRUE(std::filesystem::exists(dir / list)) << list;
}

TEST(Domains, OracleTrainsOnTheTargetAdaptationImagesWithLabels) {
  TempDir dir;
  TrainSplits splits = open_train_splits(synth_domains({"uda.oracle=true"}), dir.path(), false);
  EXPECT_EQ(splits.unlabeled, nullptr);
  EXPECT_TRUE(ids(*splits.labeled).count("target_000017"));
  EXPECT_GT(cv::countNonZero(splits.labeled->get(0).mask), 0);
}

TEST(Domains, NamePatternsAndAHeldOutTail) {
  TempDir dir;
  // Target: the 12 training scenes matching target_00002*, i.e. 20..28 (9 images); the last 3 by
  // name are reported and never adapted to. Source: every scene except source_00000*.
  TrainSplits splits = open_train_splits(
      synth_domains({"uda.target.match=target_00002*", "uda.target.eval_tail=3", "uda.source.exclude=source_00000*"}),
      dir.path(), false);
  EXPECT_EQ(ids(*splits.reported), (std::set<std::string>{"target_000026", "target_000027", "target_000028"}));
  EXPECT_EQ(splits.unlabeled->size(), 6u);
  EXPECT_EQ(ids(*splits.labeled), (std::set<std::string>{"source_000010", "source_000011"}));
  EXPECT_NE(error_of([&] { open_train_splits(synth_domains({"uda.target.match=nothing*"}), dir.path(), false); })
                .find("no image of the split matches"),
            std::string::npos);
  EXPECT_NE(error_of([&] { open_train_splits(synth_domains({"uda.target.eval_tail=9", "uda.target.match=target_00002*"}), dir.path(), false); })
                .find("leaves no adaptation image"),
            std::string::npos);
  EXPECT_NE(error_of([&] { open_train_splits(synth_domains({"data.labeled=4"}), dir.path(), false); }).find("do not apply"),
            std::string::npos);
}

TEST(Domains, ClassMapsByNameOrByFile) {
  ClassInfo source, target;
  source.names = {"void", "road", "car", "sky"};
  target.names = {"road", "sky", "car"};
  std::vector<uint8_t> by_name = class_map_table(source, target, "");
  EXPECT_EQ(by_name[0], 255);
  EXPECT_EQ(by_name[1], 0);
  EXPECT_EQ(by_name[2], 2);
  EXPECT_EQ(by_name[3], 1);
  EXPECT_EQ(by_name[200], 255);
  TempDir dir;
  write_text(dir / "map.yaml", "road: road\n3: 1\n");  // names or indices
  std::vector<uint8_t> by_file = class_map_table(source, target, (dir / "map.yaml").string());
  EXPECT_EQ(by_file[1], 0);
  EXPECT_EQ(by_file[3], 1);
  EXPECT_EQ(by_file[2], 255);  // left out of the map: ignored
  write_text(dir / "bad.yaml", "lorry: car\n");
  const std::string error = error_of([&] { class_map_table(source, target, (dir / "bad.yaml").string()); });
  EXPECT_NE(error.find("bad.yaml"), std::string::npos);
  EXPECT_NE(error.find("lorry"), std::string::npos);
  ClassInfo other;
  other.names = {"x", "y"};
  EXPECT_NE(error_of([&] { class_map_table(other, target, ""); }).find("share no name"), std::string::npos);
}

TEST(RareClassSampling, MatchesHandComputedProbabilities) {
  // Three images, classes 0..2: class 0 fills 90 of 100 labeled pixels, class 1 9, class 2 1.
  const std::vector<std::vector<int64_t>> counts = {{40, 9, 0}, {50, 0, 1}, {0, 0, 0}};
  RareClassSampling s = rare_class_sampling(counts, 3, 0.1, 1);
  // p_c = softmax((1 - f_c) / 0.1) with f = (0.9, 0.09, 0.01): logits 1, 9.1, 9.9.
  const double z = std::exp(1.0) + std::exp(9.1) + std::exp(9.9);
  EXPECT_NEAR(s.class_probability[0], std::exp(1.0) / z, 1e-12);
  EXPECT_NEAR(s.class_probability[1], std::exp(9.1) / z, 1e-12);
  EXPECT_NEAR(s.class_probability[2], std::exp(9.9) / z, 1e-12);
  // Image 0 shows classes 0 (shared with image 1) and 1 (alone); image 2 shows nothing.
  EXPECT_NEAR(s.image_weight[0], s.class_probability[0] / 2 + s.class_probability[1], 1e-12);
  EXPECT_NEAR(s.image_weight[1], s.class_probability[0] / 2 + s.class_probability[2], 1e-12);
  EXPECT_EQ(s.image_weight[2], 0.0);
  // min_pixels: an image with fewer pixels of a class does not show it; a class no image shows
  // gets probability 0.
  RareClassSampling strict = rare_class_sampling(counts, 3, 0.1, 5);
  EXPECT_EQ(strict.class_probability[2], 0.0);
  EXPECT_NEAR(strict.image_weight[1], strict.class_probability[0] / 2, 1e-12);
}

TEST(RareClassSampling, CountsPixelsOfEveryClassButIgnore) {
  const Config config = synth_domains();
  SegDatasetPtr dataset = open_dataset(config, "val");
  auto counts = class_pixel_counts(*dataset, 2);
  ASSERT_EQ(counts.size(), dataset->size());
  const cv::Mat mask = dataset->get(3).mask;
  for (int c = 0; c < dataset->classes().num_classes(); ++c)
    EXPECT_EQ(counts[3][c], cv::countNonZero(mask == c)) << "class " << c;
}

}  // namespace
}  // namespace lesseg
