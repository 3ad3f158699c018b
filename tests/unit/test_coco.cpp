// COCO instances JSON: reader / writer on a tiny fixture and the shared fruits set, semantic and
// instance masks, open_coco, and bad input that must name the file and the annotation.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "lesseg/core/error.h"
#include "lesseg/data/formats/formats.h"
#include "lesseg/io/coco.h"
#include "lesseg/io/image_io.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kTiny = fs::path(LESSEG_FIXTURES) / "coco" / "tiny.json";
const fs::path kFruits = fs::path(LESSEG_SHARED_DATA) / "fruits";

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("lesseg_coco_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

cv::Mat rows_u8(int h, int w, std::vector<int> values) {
  cv::Mat m(h, w, CV_8U);
  for (int i = 0; i < h * w; ++i) m.at<uint8_t>(i / w, i % w) = uint8_t(values[size_t(i)]);
  return m;
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a != b) == 0;
}

const lesseg::coco::Annotation& by_id(const lesseg::coco::Dataset& d, int64_t id) {
  for (const auto& a : d.annotations)
    if (a.id == id) return a;
  throw std::runtime_error("no annotation " + std::to_string(id));
}

TEST(CocoRead, TinyFixture) {
  auto d = lesseg::coco::read(kTiny);
  ASSERT_EQ(d.images.size(), 2u);
  ASSERT_EQ(d.categories.size(), 2u);
  ASSERT_EQ(d.annotations.size(), 5u);
  EXPECT_EQ(d.images[1].file_name, "sub/b.png");
  EXPECT_EQ(d.categories[1].name, "dog");
  EXPECT_EQ(d.annotations_by_image.at(1), (std::vector<size_t>{0, 1, 3}));
  EXPECT_EQ(d.annotations_by_image.at(2), (std::vector<size_t>{2, 4}));
  // polygon, uncompressed, compressed, crowd, polygon without "area"
  EXPECT_EQ(lesseg::rle::area(by_id(d, 10).mask), 6u);
  EXPECT_EQ(by_id(d, 11).mask.counts, (std::vector<uint32_t>{16, 2, 12}));
  EXPECT_EQ(by_id(d, 12).mask.counts, (std::vector<uint32_t>{5, 3, 8}));
  EXPECT_TRUE(by_id(d, 13).iscrowd);
  EXPECT_FALSE(by_id(d, 12).iscrowd);
  EXPECT_DOUBLE_EQ(by_id(d, 10).area, 6.0);
  EXPECT_DOUBLE_EQ(by_id(d, 15).area, 0.0);
  EXPECT_EQ(lesseg::rle::area(by_id(d, 15).mask), 3u);
}

TEST(CocoMasks, SemanticAndInstance) {
  auto d = lesseg::coco::read(kTiny);
  // cat (id 3) -> 1, dog (id 7) -> 2, crowd -> 255, later annotations over earlier ones.
  cv::Mat want1 = rows_u8(5, 6, {255, 0, 0, 0, 0, 0,  //
                                 255, 1, 1, 2, 0, 0,  //
                                 0, 1, 1, 2, 0, 0,    //
                                 0, 0, 0, 0, 0, 0,    //
                                 0, 0, 0, 0, 0, 0});
  cv::Mat want2 = rows_u8(4, 4, {0, 0, 0, 0,  //
                                 0, 2, 2, 0,  //
                                 0, 1, 2, 0,  //
                                 0, 1, 0, 0});
  EXPECT_TRUE(same(lesseg::coco::semantic_mask(d, d.images[0]), want1));
  EXPECT_TRUE(same(lesseg::coco::semantic_mask(d, d.images[1]), want2));
  cv::Mat inst1 = lesseg::coco::instance_mask(d, d.images[0]);
  ASSERT_EQ(inst1.type(), CV_16U);
  cv::Mat want_inst1 = rows_u8(5, 6, {3, 0, 0, 0, 0, 0,  //
                                      3, 1, 1, 2, 0, 0,  //
                                      0, 1, 1, 2, 0, 0,  //
                                      0, 0, 0, 0, 0, 0,  //
                                      0, 0, 0, 0, 0, 0});
  want_inst1.convertTo(want_inst1, CV_16U);
  EXPECT_TRUE(same(inst1, want_inst1));
  EXPECT_EQ(lesseg::coco::semantic_mask(d, d.images[0], 99).at<uint8_t>(0, 0), 99);
}

TEST(CocoWrite, RoundTripUsesCompressedRle) {
  TempDir tmp;
  auto d = lesseg::coco::read(kTiny);
  fs::path out = tmp.path() / "out.json";
  lesseg::coco::write(out, d);
  json j = json::parse(std::ifstream(out));
  for (const json& a : j["annotations"]) EXPECT_TRUE(a["segmentation"]["counts"].is_string());
  EXPECT_EQ(j["annotations"][0]["bbox"], json({1.0, 1.0, 3.0, 2.0}));
  EXPECT_EQ(j["annotations"][4]["area"], 3.0);  // absent area -> mask area
  auto back = lesseg::coco::read(out);
  ASSERT_EQ(back.annotations.size(), d.annotations.size());
  for (size_t i = 0; i < d.annotations.size(); ++i) {
    EXPECT_EQ(back.annotations[i].id, d.annotations[i].id);
    EXPECT_EQ(back.annotations[i].mask.counts, d.annotations[i].mask.counts);
    EXPECT_EQ(back.annotations[i].iscrowd, d.annotations[i].iscrowd);
  }
  EXPECT_EQ(back.categories[1].name, "dog");
  EXPECT_EQ(back.images[1].file_name, "sub/b.png");
}

TEST(CocoOpen, TinyFixtureWithImages) {
  TempDir tmp;
  fs::copy_file(kTiny, tmp.path() / "ann.json");
  cv::Mat img(5, 6, CV_8UC3, cv::Scalar(10, 20, 30));
  lesseg::write_image_rgb(tmp.path() / "images" / "a.png", img);  // images/<file_name>
  fs::create_directories(tmp.path() / "sub");
  lesseg::write_image_rgb(tmp.path() / "sub" / "b.png", cv::Mat(4, 4, CV_8UC3, cv::Scalar(1, 2, 3)));  // <file_name>
  auto ds = lesseg::open_coco(tmp.path(), "ann.json");
  ASSERT_EQ(ds->size(), 2u);
  EXPECT_EQ(ds->classes().names, (std::vector<std::string>{"background", "cat", "dog"}));
  EXPECT_EQ(ds->classes().colors.size(), 3u);
  auto s0 = ds->get(0);
  EXPECT_EQ(s0.id, "a");
  EXPECT_EQ(s0.image.size(), cv::Size(6, 5));
  EXPECT_EQ(s0.mask.at<uint8_t>(1, 3), 2);
  EXPECT_EQ(s0.mask.at<uint8_t>(0, 0), 255);
  auto s1 = ds->get(1);
  EXPECT_EQ(s1.id, "b");
  EXPECT_EQ(s1.mask.at<uint8_t>(2, 1), 1);
  fs::remove(tmp.path() / "sub" / "b.png");
  try {
    ds->get(1);
    FAIL() << "missing image accepted";
  } catch (const lesseg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("b.png"), std::string::npos) << e.what();
  }
}

TEST(CocoRead, FruitsSharedData) {
  if (!fs::exists(kFruits / "trainval.json")) GTEST_SKIP() << "shared data missing: " << kFruits;
  auto d = lesseg::coco::read(kFruits / "trainval.json");
  EXPECT_EQ(d.images.size(), 18u);
  EXPECT_EQ(d.annotations.size(), 165u);
  ASSERT_EQ(d.categories.size(), 3u);
  // Every area and bbox equals the Python port of cocoapi (tools/coco_rle_reference.py).
  json golden = json::parse(std::ifstream(fs::path(LESSEG_FIXTURES) / "coco" / "rle_golden.json"))["fruits"];
  ASSERT_EQ(golden.size(), 165u);
  for (const json& g : golden) {
    const auto& a = by_id(d, g["id"].get<int64_t>());
    EXPECT_EQ(lesseg::rle::area(a.mask), g["area"].get<uint64_t>()) << "annotation " << a.id;
    auto box = lesseg::rle::bbox(a.mask);
    EXPECT_EQ(std::vector<double>(box.begin(), box.end()), g["bbox"].get<std::vector<double>>());
    EXPECT_NEAR(double(lesseg::rle::area(a.mask)), a.area, 0.01 * a.area);  // vs polygon (shoelace) area
  }
}

TEST(CocoOpen, FruitsSharedData) {
  if (!fs::exists(kFruits / "trainval.json")) GTEST_SKIP() << "shared data missing: " << kFruits;
  auto ds = lesseg::open_coco(kFruits, "trainval.json");
  ASSERT_EQ(ds->size(), 18u);
  EXPECT_EQ(ds->classes().names, (std::vector<std::string>{"background", "date", "fig", "hazelnut"}));
  auto s = ds->get(0);
  EXPECT_EQ(s.image.size(), s.mask.size());
  EXPECT_EQ(s.image.type(), CV_8UC3);
  double lo = 0, hi = 0;
  cv::minMaxLoc(s.mask, &lo, &hi);
  EXPECT_GE(hi, 1);
  EXPECT_LE(hi, 3);
}

// Each bad file must produce Error(bad_input) whose message names the file (and the annotation).
void expect_bad(const std::string& name, const std::string& text, const std::string& detail) {
  TempDir tmp;
  fs::path file = tmp.path() / name;
  write_text(file, text);
  try {
    lesseg::coco::read(file);
    FAIL() << name << " accepted";
  } catch (const lesseg::Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(e.code(), lesseg::ExitCode::bad_input);
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find(detail), std::string::npos) << msg;
  }
}

std::string with_annotation(const std::string& ann) {
  return R"({"images":[{"id":1,"file_name":"a.png","height":4,"width":4}],"categories":[{"id":1,"name":"x"}],)"
         R"("annotations":[)" +
         ann + "]}";
}

TEST(CocoBadInput, MalformedJson) { expect_bad("broken.json", R"({"images": [)", "malformed JSON"); }

TEST(CocoBadInput, UnknownImageId) {
  expect_bad("unknown_image.json",
             with_annotation(R"({"id":5,"image_id":9,"category_id":1,"segmentation":[[0,0,2,0,2,2]]})"),
             "annotation id 5: unknown image id 9");
}

TEST(CocoBadInput, OddPolygon) {
  expect_bad("odd.json", with_annotation(R"({"id":6,"image_id":1,"category_id":1,"segmentation":[[0,0,2,0,2]]})"),
             "annotation id 6: polygon has an odd coordinate count");
}

TEST(CocoBadInput, CountsNotSumming) {
  expect_bad("sum.json",
             with_annotation(R"({"id":7,"image_id":1,"category_id":1,"segmentation":{"size":[4,4],"counts":[3,4]}})"),
             "annotation id 7: RLE counts sum to 7");
  expect_bad("sum_string.json",
             with_annotation(R"({"id":8,"image_id":1,"category_id":1,"segmentation":{"size":[4,4],"counts":"05"}})"),
             "annotation id 8");
}

TEST(CocoBadInput, BadRleString) {
  expect_bad("rle_chars.json",
             with_annotation(R"({"id":9,"image_id":1,"category_id":1,"segmentation":{"size":[4,4],"counts":"5~"}})"),
             "annotation id 9: invalid character");
}

TEST(CocoBadInput, SizeMismatch) {
  expect_bad("size.json",
             with_annotation(R"({"id":4,"image_id":1,"category_id":1,"segmentation":{"size":[2,8],"counts":[16]}})"),
             "annotation id 4: RLE size 2x8 differs");
}

// Seen while writing fuzz/coco_fuzz.cpp, confirmed by its UBSan: height * width overflowed int64 (and
// wrapped to 0, so the image was accepted).
TEST(CocoBadInput, HugeImageSizeIsRefusedWithoutOverflow) {
  expect_bad("huge.json", R"({"images":[{"id":1,"file_name":"a","height":4611686018427387904,"width":4}]})",
             "exceeds 268435456 pixels");
  expect_bad("huge2.json", R"({"images":[{"id":1,"file_name":"a","height":9999999999,"width":9999999999}]})",
             "exceeds 268435456 pixels");
}

// A deeply nested value once overflowed the stack while being printed into the message.
TEST(CocoBadInput, DeeplyNestedValueIsNamedByType) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  expect_bad("deep.json", with_annotation(R"({"id":1,"image_id":1,"category_id":1,"segmentation":[[)" + deep + "]]}"),
             "polygon coordinate is not a number: <array>");
  expect_bad("deep_id.json", with_annotation(R"({"id":)" + deep + R"(,"image_id":1,"category_id":1,"segmentation":[]})"),
             "must be an integer, got <array>");
}

TEST(CocoBadInput, StructuralErrors) {
  expect_bad("no_images.json", R"({"annotations":[]})", "images");
  expect_bad("dup.json", R"({"images":[{"id":1,"file_name":"a","height":1,"width":1},{"id":1,"file_name":"b","height":1,"width":1}]})",
             "duplicate image id 1");
  expect_bad("cat.json", with_annotation(R"({"id":3,"image_id":1,"category_id":2,"segmentation":[]})"),
             "annotation id 3: unknown category id 2");
  expect_bad("segm.json", with_annotation(R"({"id":2,"image_id":1,"category_id":1,"segmentation":"x"})"),
             "annotation id 2");
  expect_bad("noid.json", with_annotation(R"({"image_id":1,"category_id":1,"segmentation":[]})"),
             "annotation #0: missing field 'id'");
}

}  // namespace
