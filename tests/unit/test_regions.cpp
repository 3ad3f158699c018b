// SAMCLR regions: grouping / filtering rules, the three region sources, and the region view maker
// keeping every view of a sample inside one region's enlarged box.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/formats/formats.h"
#include "lesseg/data/ssl/regions.h"
#include "lesseg/data/synth/synth.h"
#include "seg_fixtures.h"

namespace lesseg {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

rle::Rle rect_rle(cv::Size image, std::vector<cv::Rect> rects) {
  cv::Mat m = cv::Mat::zeros(image, CV_8U);
  for (const cv::Rect& r : rects) m(r).setTo(1);
  return rle::encode(m);
}

json sam_record(const rle::Rle& r) {
  return {{"segmentation", {{"size", {r.height, r.width}}, {"counts", rle::to_string(r)}}},
          {"area", rle::area(r)},
          {"predicted_iou", 0.9},
          {"stability_score", 0.96}};
}

void write_sam_file(const fs::path& file, const std::vector<rle::Rle>& masks) {
  json records = json::array();
  for (const auto& m : masks) records.push_back(sam_record(m));
  test::write_text(file, records.dump());
}

// Pixel (x, y) holds (R, G, B) = (x, y, 0): a view's pixels say where in the image they came from.
cv::Mat coordinate_image(int size) {
  cv::Mat m(size, size, CV_8UC3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(uint8_t(x), uint8_t(y), 0);
  return m;
}

ViewSpec geometry_only(int size, std::array<double, 2> scale) {
  ViewSpec spec;
  spec.size = size;
  spec.scale = scale;
  spec.flip = 0.5;  // flips keep the coordinates
  spec.jitter_prob = spec.grayscale = spec.blur = spec.solarize = 0.0;
  return spec;
}

std::vector<ViewSpec> samclr_specs() {
  return {geometry_only(32, {0.5, 1.0}), geometry_only(32, {0.5, 1.0}), geometry_only(16, {0.05, 0.4}),
          geometry_only(16, {0.05, 0.4})};
}

// The smallest rectangle holding every source coordinate seen in a view.
cv::Rect source_extent(const cv::Mat& view) {
  double x0, x1, y0, y1;
  std::vector<cv::Mat> ch;
  cv::split(view, ch);
  cv::minMaxLoc(ch[0], &x0, &x1);
  cv::minMaxLoc(ch[1], &y0, &y1);
  return cv::Rect(cv::Point(int(x0), int(y0)), cv::Point(int(x1) + 1, int(y1) + 1));
}

bool all_pixels_from(const cv::Mat& view, const cv::Rect& box) {
  for (int y = 0; y < view.rows; ++y)
    for (int x = 0; x < view.cols; ++x) {
      const cv::Vec3b p = view.at<cv::Vec3b>(y, x);
      if (!box.contains(cv::Point(p[0], p[1]))) return false;
    }
  return true;
}

TEST(Regions, GroupingKeepsOneRegionPerObjectAboveMinArea) {
  const cv::Size image(100, 100);
  std::vector<rle::Rle> masks = {
      rect_rle(image, {{30, 0, 40, 25}}),                    // 0: N, half inside O: its own object
      rect_rle(image, {{0, 0, 25, 40}}),                     // 1: M, inside O: joins O
      rect_rle(image, {{75, 45, 20, 30}}),                   // 2: T, area 600 = min_area: dropped
      rect_rle(image, {{0, 0, 50, 40}}),                     // 3: O, area 2000
      rect_rle(image, {{0, 60, 30, 20}, {30, 60, 1, 1}}),    // 4: S, area 601: kept
      rect_rle(image, {{40, 82, 25, 18}}),                   // 5: U, area 450: dropped with its member
      rect_rle(image, {{42, 84, 10, 10}}),                   // 6: inside U
  };
  auto regions = group_regions(masks, RegionRules{});
  ASSERT_EQ(regions.size(), 3u);
  EXPECT_EQ(regions[0].source, 3u);
  EXPECT_EQ(regions[0].area, 2000);
  EXPECT_EQ(regions[0].box, cv::Rect(0, 0, 50, 40));
  EXPECT_EQ(regions[1].source, 0u);
  EXPECT_EQ(regions[1].box, cv::Rect(30, 0, 40, 25));
  EXPECT_EQ(regions[2].source, 4u);
  EXPECT_EQ(regions[2].area, 601);
  EXPECT_EQ(regions[2].box, cv::Rect(0, 60, 31, 20));
}

TEST(Regions, ContainmentMustExceedTheThreshold) {
  const cv::Size image(40, 40);
  // 90 of the small mask's 100 pixels lie inside the large one: exactly 0.9 is not "more than 0.9".
  std::vector<rle::Rle> masks = {rect_rle(image, {{0, 0, 20, 20}}), rect_rle(image, {{11, 0, 10, 10}})};
  EXPECT_EQ(group_regions(masks, RegionRules{0, 0.9}).size(), 2u);
  EXPECT_EQ(group_regions(masks, RegionRules{0, 0.89}).size(), 1u);
  masks.push_back(rect_rle(image, {}));  // empty masks are never regions, even with min_area 0
  EXPECT_EQ(group_regions(masks, RegionRules{0, 0.9}).size(), 2u);
}

TEST(Regions, LabelMasksSplitALabelMap) {
  cv::Mat labels(7, 5, CV_32S);
  cv::RNG rng(3);
  for (int y = 0; y < labels.rows; ++y)
    for (int x = 0; x < labels.cols; ++x) labels.at<int>(y, x) = std::vector<int>{0, 1, 3}[rng.uniform(0, 3)];
  labels.at<int>(0, 0) = 3;
  labels.at<int>(6, 4) = 1;
  auto masks = label_masks(labels);
  ASSERT_EQ(masks.size(), 3u);  // label 2 is absent
  const std::vector<int> ids{0, 1, 3};
  for (size_t k = 0; k < masks.size(); ++k) {
    cv::Mat expected = labels == ids[k];
    EXPECT_EQ(cv::countNonZero(rle::decode(masks[k]) != (expected / 255)), 0) << "label " << ids[k];
  }
}

TEST(Regions, EnlargedBoxIsCentredAndClipped) {
  EXPECT_EQ(enlarge_box({10, 10, 20, 10}, 1.0, {100, 100}), cv::Rect(0, 5, 40, 20));
  EXPECT_EQ(enlarge_box({30, 30, 20, 10}, 1.0, {100, 100}), cv::Rect(20, 25, 40, 20));
  EXPECT_EQ(enlarge_box({90, 0, 10, 10}, 1.0, {100, 100}), cv::Rect(85, 0, 15, 15));
  EXPECT_EQ(enlarge_box({30, 30, 20, 10}, 0.0, {100, 100}), cv::Rect(30, 30, 20, 10));
}

// The required SAMCLR property: both (all) views of a sample come from inside ONE region's enlarged
// box, and over seeds every region gets chosen.
TEST(Regions, SamclrViewsStayInsideOneEnlargedRegionBox) {
  test::TempDir dir;
  const cv::Size size(200, 200);
  const cv::Rect a(10, 10, 30, 30), b(150, 140, 30, 40);
  write_sam_file(dir / "scene.json", {rect_rle(size, {a}), rect_rle(size, {{12, 12, 20, 20}}),  // inside a
                                      rect_rle(size, {b}), rect_rle(size, {{100, 100, 10, 10}}),  // too small
                                      rect_rle(size, {{60, 90, 20, 30}})});                      // area 600
  const cv::Rect box_a = enlarge_box(a, 1.0, size), box_b = enlarge_box(b, 1.0, size);
  ASSERT_EQ(box_a, cv::Rect(0, 0, 55, 55));
  ASSERT_EQ(box_b, cv::Rect(135, 120, 60, 80));
  RegionViewMaker maker(std::make_shared<SamRegionSource>(dir.path(), RegionRules{}), samclr_specs(), 1.0);
  const SegSample sample{coordinate_image(200), cv::Mat(), "scene", {}};
  int chose_a = 0, chose_b = 0;
  cv::Rect seen_a, seen_b;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::mt19937_64 rng(seed);
    Views views = maker.make(sample, 0, rng);
    ASSERT_FALSE(views.fallback);
    ASSERT_EQ(views.images.size(), 4u);
    const cv::Rect box = all_pixels_from(views.images[0], box_a) ? box_a : box_b;
    (box == box_a ? chose_a : chose_b)++;
    for (const cv::Mat& view : views.images) {
      ASSERT_TRUE(all_pixels_from(view, box)) << "seed " << seed;
      (box == box_a ? seen_a : seen_b) |= source_extent(view);
    }
  }
  EXPECT_GT(chose_a, 60);
  EXPECT_GT(chose_b, 60);
  // Over seeds the crops reach every edge of the enlarged boxes, not just the tight region boxes
  // (within a pixel or two: downsampling blends the outermost rows and columns with their neighbours).
  for (const auto& [seen, box] : {std::pair{seen_a, box_a}, std::pair{seen_b, box_b}}) {
    EXPECT_EQ(seen & box, seen);
    EXPECT_LE(seen.x - box.x + seen.y - box.y, 2) << seen << " vs " << box;
    EXPECT_LE(box.br().x - seen.br().x + box.br().y - seen.br().y, 2) << seen << " vs " << box;
  }
}

TEST(Regions, NoUsableRegionFallsBackToWholeImageViews) {
  test::TempDir dir;
  const cv::Size size(64, 64);
  test::write_text(dir / "empty.json", "[]");
  write_sam_file(dir / "small.json", {rect_rle(size, {{0, 0, 20, 30}}), rect_rle(size, {{30, 30, 10, 10}})});
  write_sam_file(dir / "one.json", {rect_rle(size, {{0, 0, 40, 40}})});
  RegionViewMaker maker(std::make_shared<SamRegionSource>(dir.path(), RegionRules{}), samclr_specs(), 1.0);
  int fallbacks = 0;
  for (const char* id : {"empty", "small", "one", "small"}) {
    std::mt19937_64 rng(5);
    Views views = maker.make(SegSample{coordinate_image(64), cv::Mat(), id, {}}, 0, rng);
    ASSERT_EQ(views.images.size(), 4u);
    EXPECT_EQ(views.images[2].size(), cv::Size(16, 16));
    fallbacks += views.fallback ? 1 : 0;
  }
  EXPECT_EQ(fallbacks, 3);
}

TEST(Regions, RegionsAreCachedPerSampleAndBrokenFilesNameTheFile) {
  test::TempDir dir;
  const cv::Size size(64, 64);
  write_sam_file(dir / "a.json", {rect_rle(size, {{0, 0, 40, 40}})});
  RegionViewMaker maker(std::make_shared<SamRegionSource>(dir.path(), RegionRules{}), samclr_specs(), 1.0);
  std::mt19937_64 rng(1);
  const SegSample a{coordinate_image(64), cv::Mat(), "a", {}};
  EXPECT_FALSE(maker.make(a, 0, rng).fallback);
  fs::remove(dir / "a.json");
  EXPECT_FALSE(maker.make(a, 0, rng).fallback);  // from the cache
  try {
    maker.make(SegSample{coordinate_image(64), cv::Mat(), "b", {}}, 1, rng);
    ADD_FAILURE() << "missing SAM file accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_input);
    EXPECT_NE(std::string(e.what()).find((dir / "b.json").string()), std::string::npos) << e.what();
  }
  test::write_text(dir / "c.json", "[{\"segmentation\": {\"size\": [32, 32], \"counts\": [1024]}}]");
  try {
    maker.make(SegSample{coordinate_image(64), cv::Mat(), "c", {}}, 2, rng);
    ADD_FAILURE() << "wrong-size SAM mask accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_input);
    EXPECT_NE(std::string(e.what()).find("c.json"), std::string::npos) << e.what();
  }
}

TEST(Regions, MakeIsThreadSafe) {
  auto maker = std::make_shared<RegionViewMaker>(
      std::make_shared<ProposerRegionSource>(ProposerOptions{}, RegionRules{}), samclr_specs(), 1.0);
  synth::SynthDataset data(synth::Options{}, 8, 0);
  std::vector<std::thread> threads;
  std::atomic<int> made{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < 16; ++i) {
        std::mt19937_64 rng(uint64_t(t) * 100 + i);
        if (maker->make(data.get(i % 8), i % 8, rng).images.size() == 4) ++made;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(made.load(), 64);
}

TEST(Regions, ProposerFindsSeveralRegionsInASyntheticScene) {
  const synth::Scene scene = synth::render_scene(synth::Options{}, 0);
  auto masks = propose_masks(scene.image, ProposerOptions{});
  auto regions = group_regions(masks, RegionRules{});
  EXPECT_GE(regions.size(), 3u) << masks.size() << " segments";
  for (const Region& r : regions) {
    EXPECT_EQ(r.box & cv::Rect(0, 0, scene.image.cols, scene.image.rows), r.box);
    EXPECT_GT(r.area, 600);
  }
  // Segments partition the image.
  int64_t total = 0;
  for (const auto& m : masks) total += int64_t(rle::area(m));
  EXPECT_EQ(total, int64_t(scene.image.total()));
}

TEST(Regions, GroundTruthSourceOnASynthFolder) {
  test::TempDir dir;
  synth::write_dataset(dir.path(), synth::Options{}, 4, 1, 0);
  SegDatasetPtr data = open_folder(dir.path(), "train");
  ASSERT_EQ(data->size(), 4u);
  const coco::Dataset coco = coco::read(dir / "instances_train.json");
  GtRegionSource source(dir / "instances_train.json", RegionRules{0, 0.9});
  size_t total = 0;
  for (size_t i = 0; i < data->size(); ++i) {
    SegSample s = data->get(i);
    auto regions = source.regions(s, i);
    EXPECT_GE(regions.size(), 1u) << s.id;
    // Every region is one of the image's instance masks (synth scenes have no crowd annotations).
    const auto image = std::find_if(coco.images.begin(), coco.images.end(),
                                    [&](const coco::Image& im) { return im.file_name == s.id + ".png"; });
    ASSERT_NE(image, coco.images.end());
    const auto& anns = coco.annotations_by_image.at(image->id);
    for (const Region& r : regions) {
      ASSERT_LT(r.source, anns.size());
      const rle::Rle& mask = coco.annotations[anns[r.source]].mask;
      const auto b = rle::bbox(mask);
      EXPECT_EQ(r.box, cv::Rect(int(b[0]), int(b[1]), int(b[2]), int(b[3])));
      EXPECT_EQ(r.area, int64_t(rle::area(mask)));
    }
    total += regions.size();
  }
  EXPECT_GE(total, 4u);
  try {
    source.regions(SegSample{cv::Mat(128, 128, CV_8UC3), cv::Mat(), "not_there", {}}, 0);
    ADD_FAILURE() << "unknown image accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_input);
    EXPECT_NE(std::string(e.what()).find("instances_train.json"), std::string::npos) << e.what();
  }
}

TEST(Regions, ViewMakerFromConfig) {
  Config config;
  config.set("method", "simclr");
  auto maker = view_maker_from(config);
  EXPECT_NE(dynamic_cast<const ImageViewMaker*>(maker.get()), nullptr);
  EXPECT_EQ(maker->num_views(), 2u);
  config.set("method", "samclr");
  config.set("views.local_count", "6");
  maker = view_maker_from(config);
  EXPECT_NE(dynamic_cast<const RegionViewMaker*>(maker.get()), nullptr);
  EXPECT_EQ(maker->num_views(), 8u);
}

TEST(Regions, ViewMakerFromGroundTruthConfig) {
  test::TempDir dir;
  synth::write_dataset(dir.path(), synth::Options{}, 2, 1, 0);
  Config config;
  config.set("method", "samclr");
  config.set("views.global_size", "32");
  config.set("samclr.regions", "gt");
  config.set("samclr.gt_instances", (dir / "instances_train.json").string());
  config.set("samclr.min_area", "100");
  auto maker = view_maker_from(config);
  SegDatasetPtr data = open_folder(dir.path(), "train");
  std::mt19937_64 rng(0);
  Views views = maker->make(data->get(0), 0, rng);
  ASSERT_EQ(views.images.size(), 2u);
  EXPECT_EQ(views.images[0].size(), cv::Size(32, 32));
  EXPECT_FALSE(views.fallback);
}

void expect_error(std::vector<std::pair<std::string, std::string>> settings, ExitCode code, const std::string& text) {
  Config config;
  config.set("method", "samclr");
  for (const auto& [key, value] : settings) config.set(key, value);
  try {
    view_maker_from(config);
    ADD_FAILURE() << text << " accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(Regions, BadSamclrConfigNamesTheKey) {
  expect_error({{"method", "supervised"}}, ExitCode::usage, "method");
  expect_error({{"samclr.regions", "slic"}}, ExitCode::usage, "samclr.regions");
  expect_error({{"samclr.regions", "sam"}}, ExitCode::usage, "samclr.sam_dir");
  expect_error({{"samclr.regions", "gt"}}, ExitCode::usage, "samclr.gt_instances");
  expect_error({{"samclr.contain", "1.5"}}, ExitCode::usage, "samclr.contain");
  expect_error({{"samclr.min_area", "-1"}}, ExitCode::usage, "samclr.min_area");
  expect_error({{"samclr.box_scale", "-0.5"}}, ExitCode::usage, "samclr.box_scale");
  expect_error({{"samclr.proposer_k", "0"}}, ExitCode::usage, "samclr.proposer_k");
  expect_error({{"samclr.regions", "sam"}, {"samclr.sam_dir", "/nonexistent/sam"}}, ExitCode::bad_input,
               "/nonexistent/sam");
  expect_error({{"samclr.regions", "gt"}, {"samclr.gt_instances", "/nonexistent/gt.json"}}, ExitCode::bad_input,
               "/nonexistent/gt.json");
}

}  // namespace
}  // namespace lesseg
