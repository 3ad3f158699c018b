// SAM mask files: the automatic mask generator's list and SA-1B's object both read; every bad input is
// an Error(bad_input) naming the file (reliability item 13).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "lesseg/core/error.h"
#include "lesseg/io/sam_masks.h"
#include "seg_fixtures.h"

namespace lesseg {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kH = 12, kW = 16;

cv::Mat box_mask(cv::Rect box) {
  cv::Mat m = cv::Mat::zeros(kH, kW, CV_8U);
  m(box).setTo(1);
  return m;
}

json rle_json(const cv::Mat& mask, bool compressed) {
  rle::Rle r = rle::encode(mask);
  json counts = compressed ? json(rle::to_string(r)) : json(r.counts);
  return {{"size", {kH, kW}}, {"counts", counts}};
}

// One record as SAM's automatic mask generator writes it.
json amg_record(cv::Rect box, bool compressed = true) {
  return {{"segmentation", rle_json(box_mask(box), compressed)},
          {"area", box.area()},
          {"bbox", {box.x, box.y, box.width, box.height}},
          {"predicted_iou", 0.93},
          {"point_coords", {{box.x + 1.5, box.y + 1.0}}},
          {"stability_score", 0.97},
          {"crop_box", {0, 0, kW, kH}}};
}

json amg_file() { return json::array({amg_record({1, 2, 5, 4}), amg_record({8, 0, 8, 12}, false)}); }

TEST(SamMasks, ReadsTheAutomaticMaskGeneratorList) {
  test::TempDir dir;
  test::write_text(dir / "a.json", amg_file().dump());
  auto masks = sam::read_masks(dir / "a.json", kH, kW);
  ASSERT_EQ(masks.size(), 2u);
  EXPECT_DOUBLE_EQ(masks[0].area, 20);
  EXPECT_EQ(masks[0].bbox, (std::array<double, 4>{1, 2, 5, 4}));
  EXPECT_DOUBLE_EQ(masks[0].predicted_iou, 0.93);
  EXPECT_DOUBLE_EQ(masks[0].stability_score, 0.97);
  EXPECT_EQ(cv::norm(rle::decode(masks[0].rle), box_mask({1, 2, 5, 4}), cv::NORM_INF), 0.0);
  EXPECT_EQ(cv::norm(rle::decode(masks[1].rle), box_mask({8, 0, 8, 12}), cv::NORM_INF), 0.0);
}

TEST(SamMasks, ReadsSa1bAndComputesMissingFields) {
  json record = {{"segmentation", rle_json(box_mask({3, 3, 4, 6}), true)}, {"id", 7}};
  json file = {{"image", {{"image_id", 1}, {"width", kW}, {"height", kH}, {"file_name", "sa_1.jpg"}}},
               {"annotations", {record}}};
  auto masks = sam::parse_masks(file.dump(), "sa_1.json", kH, kW);
  ASSERT_EQ(masks.size(), 1u);
  EXPECT_DOUBLE_EQ(masks[0].area, 24);
  EXPECT_EQ(masks[0].bbox, (std::array<double, 4>{3, 3, 4, 6}));
  EXPECT_TRUE(sam::parse_masks("[]", "empty.json", kH, kW).empty());
}

// Every case must be bad_input, name the file, and mention `reason`.
void expect_bad(const std::string& text, const std::string& reason) {
  const std::string name = "img_0042.json";
  try {
    sam::parse_masks(text, name, kH, kW);
    ADD_FAILURE() << "accepted: " << text.substr(0, 200);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_input);
    const std::string msg = e.what();
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << "expected '" << reason << "' in: " << msg;
  }
}

json with(json record, const std::string& key, json value) {
  record[key] = std::move(value);
  return json::array({record});
}

TEST(SamMasks, BadFilesNameTheFileAndTheReason) {
  const json good = amg_record({1, 2, 5, 4});
  json no_seg = good;
  no_seg.erase("segmentation");
  expect_bad("[{\"segmentation\": ", "not valid JSON");
  expect_bad("[{\"area\": NaN}]", "not valid JSON");
  expect_bad("42", "top level");
  expect_bad("{\"masks\": []}", "top level");
  expect_bad("[3]", "mask #0");
  expect_bad(json::array({no_seg}).dump(), "missing 'segmentation'");
  expect_bad(with(good, "segmentation", json::array({{1, 2, 3, 4, 5, 6}})).dump(), "COCO RLE");
  expect_bad(with(good, "segmentation", {{"size", {kH, kW}}, {"counts", "\x01\x02"}}).dump(), "RLE");
  expect_bad(with(good, "segmentation", {{"size", {kH, kW}}, {"counts", "0a"}}).dump(), "RLE");
  expect_bad(with(good, "segmentation", {{"size", {kH, kW}}, {"counts", {5, 7}}}).dump(), "sum");
  expect_bad(with(good, "segmentation", {{"size", {kH, kW}}, {"counts", {-5, 197}}}).dump(), "counts");
  expect_bad(with(good, "segmentation", {{"size", {kH, kW}}, {"counts", 3}}).dump(), "counts");
  json transposed = {{"size", {kW, kH}}, {"counts", rle_json(box_mask({0, 0, 2, 2}), true)["counts"]}};
  expect_bad(with(good, "segmentation", transposed).dump(), "differs from the image size");
  expect_bad(with(good, "area", -1).dump(), "'area'");
  expect_bad(with(good, "area", "big").dump(), "'area'");
  expect_bad(with(good, "bbox", {1, 2, -5, 4}).dump(), "'bbox'");
  expect_bad(with(good, "bbox", {1, 2, 5}).dump(), "'bbox'");
  expect_bad(with(good, "predicted_iou", -0.5).dump(), "'predicted_iou'");
  expect_bad(with(good, "stability_score", -1e-3).dump(), "'stability_score'");
  expect_bad("[{\"stability_score\": 1e999}]", "not valid JSON");  // overflow: no infinities get in
  expect_bad(with(good, "point_coords", {{1.0, -2.0}}).dump(), "'point_coords'");
  expect_bad(with(good, "crop_box", {0, 0, 16}).dump(), "'crop_box'");
  expect_bad(json({{"image", {{"width", kW + 1}, {"height", kH}}}, {"annotations", json::array()}}).dump(),
             "image.width");
  expect_bad(json({{"image", {{"width", kW}}}, {"annotations", 5}}).dump(), "'annotations'");
}

TEST(SamMasks, UnreadableFilesNameTheFile) {
  test::TempDir dir;
  auto expect_bad_file = [](const fs::path& file) {
    try {
      sam::read_masks(file, kH, kW);
      ADD_FAILURE() << file << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::bad_input);
      EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    }
  };
  expect_bad_file(dir / "missing.json");
  test::write_text(dir / "empty.json", "");
  expect_bad_file(dir / "empty.json");
  fs::create_directories(dir / "folder.json");
  expect_bad_file(dir / "folder.json");
  fs::create_symlink(dir / "nowhere.json", dir / "dangling.json");
  expect_bad_file(dir / "dangling.json");
  if (::geteuid() != 0) {  // root reads anything
    test::write_text(dir / "locked.json", "[]");
    ::chmod((dir / "locked.json").c_str(), 0);
    expect_bad_file(dir / "locked.json");
  }
}

}  // namespace
}  // namespace lesseg
