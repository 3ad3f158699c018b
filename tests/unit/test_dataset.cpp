// FileSegDataset checks, label mappers, subsets, labeled fractions, split lists and classes.yaml.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "lesseg/data/classes.h"
#include "lesseg/data/dataset.h"
#include "seg_fixtures.h"

namespace fs = std::filesystem;
using lesseg::test::error_of;
using lesseg::test::TempDir;
using lesseg::test::write_text;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

lesseg::ClassInfo three_classes() {
  lesseg::ClassInfo info;
  info.names = {"a", "b", "c"};
  info.colors = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
  return info;
}

// A dataset of `n` empty samples whose id is their index.
class CountingDataset : public lesseg::SegDataset {
 public:
  explicit CountingDataset(size_t n) : n_(n) { classes_ = three_classes(); }
  size_t size() const override { return n_; }
  lesseg::SegSample get(size_t index) const override { return {cv::Mat(), cv::Mat(), std::to_string(index), {}}; }
  const lesseg::ClassInfo& classes() const override { return classes_; }

 private:
  size_t n_;
  lesseg::ClassInfo classes_;
};

std::vector<std::string> ids_of(const lesseg::SegDataset& d) {
  std::vector<std::string> ids;
  for (size_t i = 0; i < d.size(); ++i) ids.push_back(d.get(i).id);
  return ids;
}

// One image + grey mask pair in `dir`, mask filled with `fill` and of the given size.
lesseg::SegItem write_pair(const TempDir& dir, uchar fill, int mask_w = 8, int mask_h = 6) {
  lesseg::test::write_image(dir / "img.png");
  lesseg::test::write_cv(dir / "mask.png", lesseg::test::labels(fill, mask_w, mask_h));
  return {dir / "img.png", dir / "mask.png"};
}

lesseg::FileSegDataset one_item(const lesseg::SegItem& item) {
  return lesseg::FileSegDataset({item}, three_classes(), lesseg::identity_mapper());
}

}  // namespace

TEST(DatasetFile, ReadsImageAndMask) {
  TempDir dir;
  auto ds = one_item(write_pair(dir, 2));
  lesseg::SegSample s = ds.get(0);
  EXPECT_EQ(s.id, "img");
  EXPECT_EQ(s.image.type(), CV_8UC3);
  ASSERT_EQ(s.mask.type(), CV_8UC1);
  EXPECT_EQ(s.mask.at<uint8_t>(5, 7), 2);
}

TEST(DatasetFile, UnlabeledItemHasEmptyMask) {
  TempDir dir;
  lesseg::test::write_image(dir / "img.png");
  auto ds = one_item({dir / "img.png", {}});
  EXPECT_TRUE(ds.get(0).mask.empty());
  EXPECT_FALSE(ds.get(0).image.empty());
}

TEST(DatasetFile, MissingMaskIsNamed) {
  TempDir dir;
  lesseg::test::write_image(dir / "img.png");
  auto ds = one_item({dir / "img.png", dir / "gone.png"});
  std::string msg = error_of([&] { ds.get(0); });
  EXPECT_TRUE(contains(msg, (dir / "gone.png").string()) && contains(msg, "does not exist")) << msg;
}

TEST(DatasetFile, MaskSizeMustMatchImage) {
  TempDir dir;
  auto ds = one_item(write_pair(dir, 0, 7, 6));
  std::string msg = error_of([&] { ds.get(0); });
  EXPECT_TRUE(contains(msg, "mask.png") && contains(msg, "7x6") && contains(msg, "8x6")) << msg;
}

TEST(DatasetFile, OutOfRangeClassNamesFileValueAndPixel) {
  TempDir dir;
  lesseg::test::write_image(dir / "img.png");
  cv::Mat m = lesseg::test::labels(1);
  m.at<uint8_t>(2, 5) = 9;  // row y=2, column x=5
  lesseg::test::write_cv(dir / "mask.png", m);
  auto ds = one_item({dir / "img.png", dir / "mask.png"});
  std::string msg = error_of([&] { ds.get(0); });
  EXPECT_TRUE(contains(msg, (dir / "mask.png").string())) << msg;
  EXPECT_TRUE(contains(msg, "value 9")) << msg;
  EXPECT_TRUE(contains(msg, "(x=5, y=2)")) << msg;
}

TEST(DatasetFile, IgnoreIndexIsAccepted) {
  TempDir dir;
  auto ds = one_item(write_pair(dir, 255));
  EXPECT_EQ(ds.get(0).mask.at<uint8_t>(0, 0), 255);
}

TEST(DatasetFile, MissingImageIsNamed) {
  TempDir dir;
  auto ds = one_item({dir / "nope.jpg", {}});
  EXPECT_TRUE(contains(error_of([&] { ds.get(0); }), "nope.jpg"));
}

TEST(DatasetMapper, IdentityRejectsColourLabels) {
  cv::Mat rgb(6, 8, CV_8UC3, cv::Scalar(1, 2, 3));
  std::string msg = error_of([&] { lesseg::identity_mapper()(rgb, "colour_label.png"); });
  EXPECT_TRUE(contains(msg, "colour_label.png") && contains(msg, "3 channels")) << msg;
}

TEST(DatasetMapper, IdentityNarrowsSmallSixteenBitValues) {
  cv::Mat raw(2, 2, CV_16U, cv::Scalar(4));
  cv::Mat out = lesseg::identity_mapper()(raw, "x.png");
  ASSERT_EQ(out.type(), CV_8UC1);
  EXPECT_EQ(out.at<uint8_t>(1, 1), 4);
  raw.at<uint16_t>(1, 0) = 300;
  std::string msg = error_of([&] { lesseg::identity_mapper()(raw, "x.png"); });
  EXPECT_TRUE(contains(msg, "300") && contains(msg, "(x=0, y=1)")) << msg;
}

TEST(DatasetMapper, LutMapsAndDefaultsTo255) {
  auto map = lesseg::lut_mapper({9, 8, 7});
  cv::Mat raw = (cv::Mat_<uint8_t>(1, 4) << 0, 1, 2, 3);
  cv::Mat out = map(raw, "x.png");
  EXPECT_EQ(out.at<uint8_t>(0, 0), 9);
  EXPECT_EQ(out.at<uint8_t>(0, 2), 7);
  EXPECT_EQ(out.at<uint8_t>(0, 3), 255);
  cv::Mat raw16 = (cv::Mat_<uint16_t>(1, 2) << 1, 4000);
  cv::Mat out16 = map(raw16, "x.png");
  EXPECT_EQ(out16.at<uint8_t>(0, 0), 8);
  EXPECT_EQ(out16.at<uint8_t>(0, 1), 255);
}

TEST(DatasetMapper, ValidateRejectsMultiChannelMask) {
  cv::Mat image(6, 8, CV_8UC3), mask(6, 8, CV_8UC3, cv::Scalar(0));
  std::string msg = error_of([&] { lesseg::validate_mask(mask, image, three_classes(), "m.png"); });
  EXPECT_TRUE(contains(msg, "m.png") && contains(msg, "3 channel")) << msg;
}

TEST(DatasetSubset, MapsIndices) {
  auto base = std::make_shared<CountingDataset>(5);
  lesseg::SubsetDataset sub(base, {4, 1});
  EXPECT_EQ(ids_of(sub), (std::vector<std::string>{"4", "1"}));
  EXPECT_EQ(sub.classes().num_classes(), 3);
}

TEST(DatasetFraction, SeededSortedAndSized) {
  auto base = std::make_shared<CountingDataset>(10);
  auto a = lesseg::labeled_fraction(base, 0.25, 7);
  auto b = lesseg::labeled_fraction(base, 0.25, 7);
  ASSERT_EQ(a->size(), 3u);  // round(2.5) = 3
  EXPECT_EQ(ids_of(*a), ids_of(*b));
  auto ids = ids_of(*a);
  EXPECT_TRUE(
      std::is_sorted(ids.begin(), ids.end(), [](auto& x, auto& y) { return std::stoi(x) < std::stoi(y); }));
  bool some_seed_differs = false;
  for (uint64_t seed = 0; seed < 5; ++seed)
    some_seed_differs |= ids_of(*lesseg::labeled_fraction(base, 0.25, seed)) != ids;
  EXPECT_TRUE(some_seed_differs);
  EXPECT_EQ(lesseg::labeled_fraction(base, 0.001, 1)->size(), 1u);
  EXPECT_EQ(lesseg::labeled_fraction(base, 1.0, 1)->size(), 10u);
}

TEST(DatasetFraction, RejectsBadFraction) {
  auto base = std::make_shared<CountingDataset>(10);
  EXPECT_THROW(lesseg::labeled_fraction(base, 0.0, 1), lesseg::Error);
  EXPECT_THROW(lesseg::labeled_fraction(base, 1.5, 1), lesseg::Error);
}

TEST(DatasetSplit, ReadsPairsAndSinglePaths) {
  TempDir dir;
  write_text(dir / "list.txt", "img/a.jpg lbl/a.png\n\n  img/b.jpg  \r\n# comment\n");
  auto items = lesseg::read_split_list(dir / "list.txt", dir.path());
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].image, dir / "img/a.jpg");
  EXPECT_EQ(items[0].mask, dir / "lbl/a.png");
  EXPECT_EQ(items[1].image, dir / "img/b.jpg");
  EXPECT_TRUE(items[1].mask.empty());
}

TEST(DatasetSplit, MissingListAndBadLine) {
  TempDir dir;
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_split_list(dir / "nope.txt", dir.path()); }), "nope.txt"));
  write_text(dir / "bad.txt", "a b c\n");
  std::string msg = error_of([&] { lesseg::read_split_list(dir / "bad.txt", dir.path()); });
  EXPECT_TRUE(contains(msg, "bad.txt") && contains(msg, "line 1")) << msg;
}

TEST(Classes, YamlRoundTrip) {
  TempDir dir;
  lesseg::ClassInfo info = three_classes();
  info.names[1] = "two words: b";
  info.ignore_index = 200;
  lesseg::save_classes_yaml(dir / "classes.yaml", info);
  lesseg::ClassInfo back = lesseg::load_classes_yaml(dir / "classes.yaml");
  EXPECT_EQ(back.names, info.names);
  EXPECT_EQ(back.colors, info.colors);
  EXPECT_EQ(back.ignore_index, 200);
}

TEST(Classes, ColoursDefaultWhenAbsent) {
  TempDir dir;
  write_text(dir / "classes.yaml", "names: [bg, horse]\n");
  lesseg::ClassInfo info = lesseg::load_classes_yaml(dir / "classes.yaml");
  ASSERT_EQ(info.colors.size(), 2u);
  EXPECT_EQ(info.colors[1], lesseg::default_class_color(1));
  EXPECT_EQ(info.ignore_index, 255);
}

TEST(Classes, BadYamlIsReported) {
  TempDir dir;
  write_text(dir / "a.yaml", "names: [x, y]\ncolors: [[1, 2, 3]]\n");
  EXPECT_TRUE(contains(error_of([&] { lesseg::load_classes_yaml(dir / "a.yaml"); }), "colors"));
  write_text(dir / "b.yaml", "names: [x]\nignore: 3\n");
  EXPECT_TRUE(contains(error_of([&] { lesseg::load_classes_yaml(dir / "b.yaml"); }), "unknown key 'ignore'"));
  write_text(dir / "c.yaml", "names: [x, y\n");
  EXPECT_TRUE(contains(error_of([&] { lesseg::load_classes_yaml(dir / "c.yaml"); }), "c.yaml"));
  write_text(dir / "d.yaml", "names: [x, y]\nignore_index: 1\n");
  EXPECT_TRUE(contains(error_of([&] { lesseg::load_classes_yaml(dir / "d.yaml"); }), "collides"));
  EXPECT_TRUE(contains(error_of([&] { lesseg::load_classes_yaml(dir / "none.yaml"); }), "does not exist"));
}

TEST(Classes, VocPaletteIsTheStandardMap) {
  const lesseg::Palette p = lesseg::voc_palette();
  ASSERT_EQ(p.size(), 256u);
  using C = std::array<uint8_t, 3>;
  EXPECT_EQ(p[0], (C{0, 0, 0}));
  EXPECT_EQ(p[1], (C{128, 0, 0}));        // aeroplane
  EXPECT_EQ(p[15], (C{192, 128, 128}));   // person
  EXPECT_EQ(p[20], (C{0, 64, 128}));      // tvmonitor
  EXPECT_EQ(p[255], (C{224, 224, 192}));  // boundary
}
