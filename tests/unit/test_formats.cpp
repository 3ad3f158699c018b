// One tiny fixture per dataset layout (built in a temp dir in its exact on-disk form), checking the
// mapped class index at chosen pixels; CamVid also on the real files in ../shared/data/camvid.
#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "lesseg/data/classes.h"
#include "lesseg/data/formats/formats.h"
#include "lesseg/io/image_io.h"
#include "seg_fixtures.h"

namespace fs = std::filesystem;
using lesseg::test::error_of;
using lesseg::test::labels;
using lesseg::test::TempDir;
using lesseg::test::write_cv;
using lesseg::test::write_image;
using lesseg::test::write_text;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

uint8_t at(const cv::Mat& mask, int x, int y) { return mask.at<uint8_t>(y, x); }

// Mask with listed (x, y, value) pixels over a background value.
cv::Mat mask_with(uchar fill, std::initializer_list<std::array<int, 3>> pixels) {
  cv::Mat m = labels(fill);
  for (const auto& p : pixels) m.at<uint8_t>(p[1], p[0]) = uint8_t(p[2]);
  return m;
}

lesseg::Palette cityscapes_palette() { return lesseg::cityscapes_classes().colors; }

}  // namespace

// ---------------------------------------------------------------- Cityscapes
TEST(FormatCityscapes, LabelIdsMapToTrainIds) {
  TempDir dir;
  const fs::path img = dir / "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png";
  write_image(img);
  write_cv(dir / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png",
           mask_with(7, {{{1, 0, 26}}, {{2, 0, 0}}, {{3, 0, 33}}, {{4, 0, 6}}, {{5, 0, 24}}, {{0, 5, 23}}}));
  // A second city that only has ready train ids.
  write_image(dir / "leftImg8bit/train/bochum/bochum_000000_000313_leftImg8bit.png");
  write_cv(dir / "gtFine/train/bochum/bochum_000000_000313_gtFine_labelTrainIds.png",
           mask_with(18, {{{2, 3, 255}}}));
  auto ds = lesseg::open_cityscapes(dir.path(), "train");
  ASSERT_EQ(ds->size(), 2u);
  EXPECT_EQ(ds->classes().num_classes(), 19);
  EXPECT_EQ(ds->classes().colors[0], (std::array<uint8_t, 3>{128, 64, 128}));
  EXPECT_EQ(ds->classes().names[13], "car");
  cv::Mat m = ds->get(0).mask;  // aachen sorts first
  EXPECT_EQ(at(m, 0, 0), 0);    // 7 road
  EXPECT_EQ(at(m, 1, 0), 13);   // 26 car
  EXPECT_EQ(at(m, 2, 0), 255);  // 0 unlabeled
  EXPECT_EQ(at(m, 3, 0), 18);   // 33 bicycle
  EXPECT_EQ(at(m, 4, 0), 255);  // 6 ground: not evaluated
  EXPECT_EQ(at(m, 5, 0), 11);   // 24 person
  EXPECT_EQ(at(m, 0, 5), 10);   // 23 sky
  cv::Mat t = ds->get(1).mask;
  EXPECT_EQ(at(t, 0, 0), 18);
  EXPECT_EQ(at(t, 2, 3), 255);
}

TEST(FormatCityscapes, MissingLabelIsNamed) {
  TempDir dir;
  write_image(dir / "leftImg8bit/val/lindau/lindau_000000_000019_leftImg8bit.png");
  auto ds = lesseg::open_cityscapes(dir.path(), "val");
  std::string msg = error_of([&] { ds->get(0); });
  EXPECT_TRUE(contains(msg, "lindau_000000_000019_gtFine_labelIds.png") && contains(msg, "does not exist"))
      << msg;
}

TEST(FormatCityscapes, EmptySplitNamesFolder) {
  TempDir dir;
  fs::create_directories(dir / "leftImg8bit/test/berlin");
  std::string msg = error_of([&] { lesseg::open_cityscapes(dir.path(), "test"); });
  EXPECT_TRUE(contains(msg, "leftImg8bit/test") && contains(msg, "no images")) << msg;
  EXPECT_TRUE(contains(error_of([&] { lesseg::open_cityscapes(dir.path(), "train"); }), "leftImg8bit/train"));
}

TEST(FormatCityscapes, InstanceIds) {
  TempDir dir;
  cv::Mat ids = (cv::Mat_<uint16_t>(1, 5) << 26001, 24000, 7, 0, 33012);
  write_cv(dir / "x_gtFine_instanceIds.png", ids);  // 16-bit on disk, as in the dataset
  auto [train, instance] =
      lesseg::cityscapes_instances(lesseg::read_label_raw(dir / "x_gtFine_instanceIds.png"));
  ASSERT_EQ(train.type(), CV_8UC1);
  ASSERT_EQ(instance.type(), CV_32SC1);
  EXPECT_EQ(at(train, 0, 0), 13);  // car
  EXPECT_EQ(at(train, 1, 0), 11);  // person
  EXPECT_EQ(at(train, 2, 0), 0);   // road, no instance
  EXPECT_EQ(at(train, 3, 0), 255);
  EXPECT_EQ(at(train, 4, 0), 18);
  EXPECT_EQ(instance.at<int32_t>(0, 0), 1);
  EXPECT_EQ(instance.at<int32_t>(0, 1), 0);
  EXPECT_EQ(instance.at<int32_t>(0, 2), -1);
  EXPECT_EQ(instance.at<int32_t>(0, 4), 12);
}

// ---------------------------------------------------------------- GTA5
TEST(FormatGta5, PaletteLabelsAreCityscapesLabelIds) {
  TempDir dir;
  for (const char* name : {"00001", "00002"}) {
    write_image(dir / "images" / (std::string(name) + ".png"));
    // GTA5 labels are palette PNGs whose indices are Cityscapes labelIds.
    lesseg::write_label_png(dir / "labels" / (std::string(name) + ".png"),
                            mask_with(7, {{{6, 4, 26}}, {{7, 5, 1}}}), cityscapes_palette());
  }
  auto all = lesseg::open_gta5(dir.path(), "all");
  ASSERT_EQ(all->size(), 2u);
  cv::Mat m = all->get(1).mask;
  EXPECT_EQ(at(m, 0, 0), 0);
  EXPECT_EQ(at(m, 6, 4), 13);
  EXPECT_EQ(at(m, 7, 5), 255);
  write_text(dir / "val.txt", "00002\n");
  auto val = lesseg::open_gta5(dir.path(), "val");
  ASSERT_EQ(val->size(), 1u);
  EXPECT_EQ(val->get(0).id, "00002");
  EXPECT_TRUE(contains(error_of([&] { lesseg::open_gta5(dir.path(), "train"); }), "train.txt"));
}

TEST(FormatGta5, MaskSizeMismatchIsNamed) {
  TempDir dir;
  write_image(dir / "images/00001.png");
  write_cv(dir / "labels/00001.png", labels(7, 8, 5));
  auto ds = lesseg::open_gta5(dir.path(), "");
  std::string msg = error_of([&] { ds->get(0); });
  EXPECT_TRUE(contains(msg, "labels/00001.png") && contains(msg, "8x5")) << msg;
}

// ---------------------------------------------------------------- SYNTHIA
TEST(FormatSynthia, SixteenBitLastChannelMaps) {
  TempDir dir;
  write_image(dir / "RGB/0000000.png");
  // OpenCV order B, G, R: class id in the last channel (R), an instance id in G, as SYNTHIA stores.
  cv::Mat gt(6, 8, CV_16UC3, cv::Scalar(0, 0, 3));
  gt.at<cv::Vec3w>(0, 1) = {0, 4000, 21};  // wall
  gt.at<cv::Vec3w>(0, 2) = {0, 12, 1};     // sky
  gt.at<cv::Vec3w>(0, 3) = {0, 0, 0};      // void
  gt.at<cv::Vec3w>(0, 4) = {0, 0, 13};     // not a Cityscapes class
  gt.at<cv::Vec3w>(0, 5) = {0, 0, 11};     // bicycle
  gt.at<cv::Vec3w>(0, 6) = {0, 0, 6};      // vegetation
  write_cv(dir / "GT/LABELS/0000000.png", gt);
  auto ds = lesseg::open_synthia(dir.path(), "all");
  ASSERT_EQ(ds->size(), 1u);
  cv::Mat m = ds->get(0).mask;
  EXPECT_EQ(at(m, 0, 0), 0);  // 3 road
  EXPECT_EQ(at(m, 1, 0), 3);
  EXPECT_EQ(at(m, 2, 0), 10);
  EXPECT_EQ(at(m, 3, 0), 255);
  EXPECT_EQ(at(m, 4, 0), 255);
  EXPECT_EQ(at(m, 5, 0), 18);
  EXPECT_EQ(at(m, 6, 0), 8);
  EXPECT_EQ(lesseg::synthia_eval_classes(16).size(), 16u);
  EXPECT_EQ(lesseg::synthia_eval_classes(13).size(), 13u);
}

TEST(FormatSynthia, SingleChannelLabelIsRejected) {
  TempDir dir;
  write_image(dir / "RGB/0000001.png");
  write_cv(dir / "GT/LABELS/0000001.png", labels(3));
  auto ds = lesseg::open_synthia(dir.path(), "");
  std::string msg = error_of([&] { ds->get(0); });
  EXPECT_TRUE(contains(msg, "0000001.png") && contains(msg, "1 channel")) << msg;
}

// ---------------------------------------------------------------- ADE20K
TEST(FormatAde20k, ReduceZeroLabel) {
  TempDir dir;
  const fs::path base = dir / "ADEChallengeData2016";
  write_image(base / "images/training/ADE_train_00000001.jpg");
  write_cv(base / "annotations/training/ADE_train_00000001.png",
           mask_with(1, {{{0, 0, 0}}, {{1, 1, 150}}, {{2, 2, 13}}}));
  auto ds = lesseg::open_ade20k(dir.path(), "training");
  ASSERT_EQ(ds->size(), 1u);
  EXPECT_EQ(ds->classes().num_classes(), 150);
  cv::Mat m = ds->get(0).mask;
  EXPECT_EQ(at(m, 0, 0), 255);
  EXPECT_EQ(at(m, 1, 1), 149);
  EXPECT_EQ(at(m, 2, 2), 12);
  EXPECT_EQ(at(m, 7, 5), 0);
  EXPECT_EQ(lesseg::open_ade20k(base, "train")->size(), 1u);  // root may be the inner folder; alias
}

TEST(FormatAde20k, ValueAbove150IsReported) {
  TempDir dir;
  const fs::path base = dir / "ADEChallengeData2016";
  write_image(base / "images/validation/ADE_val_00000001.jpg");
  write_cv(base / "annotations/validation/ADE_val_00000001.png", mask_with(1, {{{3, 4, 151}}}));
  auto ds = lesseg::open_ade20k(dir.path(), "val");
  std::string msg = error_of([&] { ds->get(0); });
  EXPECT_TRUE(contains(msg, "ADE_val_00000001.png") && contains(msg, "(x=3, y=4)")) << msg;
}

// ---------------------------------------------------------------- PASCAL VOC
TEST(FormatVoc, PaletteIndicesAndAugPreference) {
  TempDir dir;
  const fs::path base = dir / "VOCdevkit/VOC2012";
  write_image(base / "JPEGImages/2007_000032.jpg");
  write_image(base / "JPEGImages/2007_000033.jpg");
  const cv::Mat plain = mask_with(0, {{{1, 1, 1}}, {{2, 2, 15}}, {{3, 3, 255}}, {{4, 4, 20}}});
  lesseg::write_label_png(base / "SegmentationClass/2007_000032.png", plain, lesseg::voc_palette());
  lesseg::write_label_png(base / "SegmentationClass/2007_000033.png", labels(5), lesseg::voc_palette());
  // SBD's augmented masks are grey PNGs; they win over SegmentationClass when present.
  write_cv(base / "SegmentationClassAug/2007_000033.png", mask_with(0, {{{0, 0, 12}}}));
  write_text(base / "ImageSets/Segmentation/train.txt", "2007_000032\n2007_000033\n");
  auto ds = lesseg::open_voc(dir.path(), "train");
  ASSERT_EQ(ds->size(), 2u);
  EXPECT_EQ(ds->classes().num_classes(), 21);
  EXPECT_EQ(ds->classes().names[15], "person");
  EXPECT_EQ(ds->classes().colors[15], (std::array<uint8_t, 3>{192, 128, 128}));
  cv::Mat m = ds->get(0).mask;
  EXPECT_EQ(at(m, 0, 0), 0);
  EXPECT_EQ(at(m, 1, 1), 1);
  EXPECT_EQ(at(m, 2, 2), 15);
  EXPECT_EQ(at(m, 3, 3), 255);
  EXPECT_EQ(at(m, 4, 4), 20);
  // OpenCV would have read colours (3 channels), or a luminance that is not the class index.
  cv::Mat cv_grey = cv::imread((base / "SegmentationClass/2007_000032.png").string(), cv::IMREAD_GRAYSCALE);
  EXPECT_NE(cv_grey.at<uint8_t>(2, 2), 15);
  EXPECT_EQ(
      cv::imread((base / "SegmentationClass/2007_000032.png").string(), cv::IMREAD_UNCHANGED).channels(), 3);
  cv::Mat aug = ds->get(1).mask;
  EXPECT_EQ(at(aug, 0, 0), 12);
  EXPECT_EQ(at(aug, 1, 0), 0);
}

TEST(FormatVoc, MissingSplitListIsNamed) {
  TempDir dir;
  write_image(dir / "VOC2012/JPEGImages/a.jpg");
  std::string msg = error_of([&] { lesseg::open_voc(dir.path(), "val"); });
  EXPECT_TRUE(contains(msg, "ImageSets/Segmentation/val.txt")) << msg;
  EXPECT_TRUE(contains(error_of([&] { lesseg::open_voc(dir / "elsewhere", "val"); }), "JPEGImages"));
}

// ---------------------------------------------------------------- CamVid
TEST(FormatCamvid, SegNetLayout) {
  TempDir dir;
  write_image(dir / "train/0001TP_006690.png");
  write_cv(dir / "trainannot/0001TP_006690.png", mask_with(3, {{{0, 0, 0}}, {{1, 0, 11}}, {{2, 0, 10}}}));
  // SegNet's own list points at /SegNet/...; the folders must win over it.
  write_text(dir / "train.txt",
             "/SegNet/CamVid/train/0001TP_006690.png /SegNet/CamVid/trainannot/0001TP_006690.png\n");
  auto ds = lesseg::open_camvid(dir.path(), "train");
  ASSERT_EQ(ds->size(), 1u);
  EXPECT_EQ(ds->classes().num_classes(), 11);
  EXPECT_EQ(ds->classes().colors[4], (std::array<uint8_t, 3>{60, 40, 222}));
  cv::Mat m = ds->get(0).mask;
  EXPECT_EQ(at(m, 0, 0), 0);
  EXPECT_EQ(at(m, 1, 0), 255);
  EXPECT_EQ(at(m, 2, 0), 10);
  EXPECT_EQ(at(m, 5, 5), 3);
}

TEST(FormatCamvid, ImagesLabelsLayoutWithAndWithoutList) {
  TempDir dir;
  for (const char* stem : {"a", "b"}) {
    write_image(dir / "val/images" / (std::string(stem) + ".jpg"));
    write_cv(dir / "val/labels" / (std::string(stem) + ".png"), mask_with(8, {{{7, 5, 11}}}));
  }
  auto folders = lesseg::open_camvid(dir.path(), "val");
  ASSERT_EQ(folders->size(), 2u);
  EXPECT_EQ(at(folders->get(0).mask, 7, 5), 255);
  EXPECT_EQ(at(folders->get(0).mask, 0, 0), 8);
  write_text(dir / "val.txt", "val/images/b.jpg val/labels/b.png\n");
  auto listed = lesseg::open_camvid(dir.path(), "val");
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->get(0).id, "b");
}

TEST(FormatCamvid, StrayLabelValueIsReported) {
  TempDir dir;
  write_image(dir / "test/x.png");
  write_cv(dir / "testannot/x.png", mask_with(0, {{{6, 1, 12}}}));
  std::string msg = error_of([&] { lesseg::open_camvid(dir.path(), "test")->get(0); });
  EXPECT_TRUE(contains(msg, "testannot/x.png") && contains(msg, "value 12") && contains(msg, "(x=6, y=1)"))
      << msg;
}

TEST(FormatCamvid, RealSharedData) {
  const fs::path root = fs::path(LESSEG_SHARED_DATA) / "camvid";
  if (!fs::exists(root / "train.txt"))
    GTEST_SKIP() << "no CamVid copy at " << root << " (../shared/data/camvid)";
  auto train = lesseg::open_camvid(root, "train");
  auto val = lesseg::open_camvid(root, "val");
  EXPECT_EQ(train->size(), 367u);
  ASSERT_EQ(val->size(), 101u);
  EXPECT_EQ(train->classes().num_classes(), 11);
  EXPECT_EQ(train->classes().names[0], "Sky");
  // Raw void (11) pixels come back as 255, everything else keeps its class index.
  auto* file_ds = dynamic_cast<const lesseg::FileSegDataset*>(train.get());
  ASSERT_NE(file_ds, nullptr);
  cv::Mat raw = lesseg::read_label_raw(file_ds->item(0).mask);
  lesseg::SegSample s = train->get(0);
  EXPECT_EQ(s.image.cols, 480);
  EXPECT_EQ(s.image.rows, 360);
  ASSERT_EQ(s.mask.size(), raw.size());
  EXPECT_GT(cv::countNonZero(raw == 11), 0);
  EXPECT_EQ(cv::countNonZero((raw == 11) != (s.mask == 255)), 0);
  EXPECT_EQ(cv::countNonZero((raw != 11) & (raw != s.mask)), 0);
  for (const auto& ds : {train, val}) {  // every sample decodes and validates; all 11 classes occur
    std::set<int> seen;
    for (size_t i = 0; i < ds->size(); ++i) {
      cv::Mat m = ds->get(i).mask;
      for (int c = 0; c < 11; ++c)
        if (cv::countNonZero(m == c) > 0) seen.insert(c);
    }
    EXPECT_EQ(seen.size(), 11u);
  }
}

// ---------------------------------------------------------------- generic folder
namespace {
void make_folder_fixture(const TempDir& dir) {
  write_text(dir / "classes.yaml", "names: [background, horse, rider]\nignore_index: 255\n");
  write_image(dir / "images/a.png");
  write_image(dir / "images/b.jpg");
  write_image(dir / "images/sub/c.png");
  write_cv(dir / "masks/a.png", mask_with(0, {{{1, 2, 1}}}));
  write_cv(dir / "masks/b.png", mask_with(2, {{{0, 0, 255}}}));
  write_cv(dir / "masks/sub/c.png", mask_with(1, {}));
}
}  // namespace

TEST(FormatFolder, AllImagesPairedByStem) {
  TempDir dir;
  make_folder_fixture(dir);
  write_image(dir / "images/d.png");  // no mask: unlabeled
  auto ds = lesseg::open_folder(dir.path(), "");
  ASSERT_EQ(ds->size(), 4u);
  EXPECT_EQ(ds->classes().names[2], "rider");
  EXPECT_EQ(at(ds->get(0).mask, 1, 2), 1);  // a
  EXPECT_EQ(at(ds->get(1).mask, 0, 0), 255);
  EXPECT_EQ(at(ds->get(1).mask, 3, 3), 2);  // b.jpg with b.png
  EXPECT_TRUE(ds->get(2).mask.empty());     // d
  EXPECT_EQ(ds->get(3).id, "c");
  EXPECT_EQ(at(ds->get(3).mask, 4, 4), 1);  // sub/c
}

TEST(FormatFolder, SplitFiles) {
  TempDir dir;
  make_folder_fixture(dir);
  write_text(dir / "splits/labeled.txt", "a\nsub/c\n");
  write_text(dir / "splits/unlabeled.txt", "images/b.jpg\n");
  write_text(dir / "splits/val.txt", "images/a.png masks/a.png\n");
  auto labeled = lesseg::open_folder(dir.path(), "labeled");
  ASSERT_EQ(labeled->size(), 2u);
  EXPECT_EQ(at(labeled->get(1).mask, 0, 0), 1);
  auto unlabeled = lesseg::open_folder(dir.path(), "unlabeled");
  ASSERT_EQ(unlabeled->size(), 1u);
  EXPECT_TRUE(unlabeled->get(0).mask.empty());  // b has a mask, but an unlabeled split hides it
  EXPECT_EQ(at(lesseg::open_folder(dir.path(), "val")->get(0).mask, 1, 2), 1);
  EXPECT_TRUE(contains(error_of([&] { lesseg::open_folder(dir.path(), "test"); }), "splits/test.txt"));
  write_text(dir / "splits/bad.txt", "zebra\n");
  EXPECT_TRUE(contains(error_of([&] { lesseg::open_folder(dir.path(), "bad"); }), "'zebra'"));
}

TEST(FormatFolder, RequiresClassesYaml) {
  TempDir dir;
  write_image(dir / "images/a.png");
  std::string msg = error_of([&] { lesseg::open_folder(dir.path(), ""); });
  EXPECT_TRUE(contains(msg, "classes.yaml") && contains(msg, "does not exist")) << msg;
}

TEST(FormatFolder, EmptyImagesFolderIsNamed) {
  TempDir dir;
  write_text(dir / "classes.yaml", "names: [bg, fg]\n");
  fs::create_directories(dir / "images");
  write_text(dir / "images/readme.txt", "no images here");
  std::string msg = error_of([&] { lesseg::open_folder(dir.path(), ""); });
  EXPECT_TRUE(contains(msg, (dir / "images").string()) && contains(msg, "no images")) << msg;
}

TEST(FormatFolder, OutOfRangeMaskValue) {
  TempDir dir;
  make_folder_fixture(dir);
  write_cv(dir / "masks/a.png", mask_with(0, {{{7, 3, 3}}}));  // 3 classes: 3 is out of range
  std::string msg = error_of([&] { lesseg::open_folder(dir.path(), "")->get(0); });
  EXPECT_TRUE(contains(msg, "masks/a.png") && contains(msg, "value 3") && contains(msg, "(x=7, y=3)")) << msg;
}
