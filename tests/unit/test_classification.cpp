// The classification-set reader for feature probes: labels.txt and ImageFolder layouts, the
// seeded stratified split, and bad input naming the file and line.
#include <gtest/gtest.h>

#include <set>

#include "lesseg/data/classification.h"
#include "lesseg/data/synth/synth.h"
#include "seg_fixtures.h"

namespace lesseg {
namespace {
using test::error_of;
using test::TempDir;
using test::write_image;
using test::write_text;

TEST(Classification, ReadsLabelsTxtRelativeToItsFolder) {
  TempDir dir;
  write_image(dir / "images/a.png");
  write_image(dir / "images/b c.png");  // paths may hold spaces: the label is the last field
  write_text(dir / "labels.txt", "# comment\nimages/a.png 3\n\nimages/b c.png 1\r\n");
  ClassificationSet set = read_classification_set(dir.path());
  ASSERT_EQ(set.items.size(), 2u);
  EXPECT_EQ(set.items[0].image, dir / "images/a.png");
  EXPECT_EQ(set.items[0].label, 3);
  EXPECT_EQ(set.items[1].image, dir / "images/b c.png");
  EXPECT_EQ(set.items[1].label, 1);
  EXPECT_EQ(set.num_classes(), 4);  // 0 .. max label
}

TEST(Classification, ReadsSynthCrops) {
  TempDir dir;
  synth::Options options;
  options.size = 48;
  synth::write_dataset(dir.path(), options, 0, 0, 6);
  ClassificationSet set = read_classification_set(dir / "crops");
  ASSERT_EQ(set.items.size(), 6u);
  for (const auto& item : set.items) {
    EXPECT_GE(item.label, 1);  // object classes; 0 is background
    EXPECT_LT(item.label, set.num_classes());
  }
}

TEST(Classification, ReadsImageFolderWithSortedClassNames) {
  TempDir dir;
  write_image(dir / "dog/1.png");
  write_image(dir / "cat/x/2.jpg");  // nested, as torchvision's ImageFolder walks
  write_image(dir / "cat/3.png");
  write_text(dir / "cat/notes.txt", "not an image");
  ClassificationSet set = read_classification_set(dir.path());
  EXPECT_EQ(set.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(set.items.size(), 3u);
  EXPECT_EQ(set.items[0].label, 0);
  EXPECT_EQ(set.items[1].label, 0);
  EXPECT_EQ(set.items[2].label, 1);
  EXPECT_EQ(set.items[2].image, dir / "dog/1.png");
}

TEST(Classification, BadLinesNameTheFileAndLine) {
  TempDir dir;
  write_image(dir / "a.png");
  const std::string file = (dir / "labels.txt").string();
  for (const auto& [text, reason] : std::vector<std::pair<std::string, std::string>>{
           {"a.png 0\na.png\n", "line 2: expected"},
           {"a.png cat\n", "line 1: label 'cat' is not an integer"},
           {"a.png 1.5\n", "line 1: label '1.5'"},
           {"a.png -1\n", "line 1: label '-1'"},
           {"a.png 99999999999\n", "line 1: label '99999999999'"},
           {"a.png 0\nmissing.png 1\n", "line 2: image"}}) {
    write_text(dir / "labels.txt", text);
    std::string message = error_of([&] { read_classification_set(dir.path()); });
    EXPECT_NE(message.find(file), std::string::npos) << message;
    EXPECT_NE(message.find(reason), std::string::npos) << message;
  }
  try {
    read_classification_set(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_input);
  }
}

TEST(Classification, EmptyOrMissingSetsAreBadInput) {
  TempDir dir;
  EXPECT_NE(error_of([&] { read_classification_set(dir / "nope"); }).find("nope"), std::string::npos);
  EXPECT_NE(error_of([&] { read_classification_set(dir.path()); }).find("neither labels.txt"), std::string::npos);
  std::filesystem::create_directories(dir / "empty_class");
  EXPECT_NE(error_of([&] { read_classification_set(dir.path()); }).find("empty_class"), std::string::npos);
  write_text(dir / "labels.txt", "# only a comment\n");
  EXPECT_NE(error_of([&] { read_classification_set(dir.path()); }).find("lists no images"), std::string::npos);
}

ClassificationSet fake_set(int per_class, int classes) {
  ClassificationSet set;
  for (int c = 0; c < classes; ++c) set.class_names.push_back(std::to_string(c));
  for (int i = 0; i < per_class * classes; ++i) set.items.push_back({std::to_string(i) + ".png", i % classes});
  return set;
}

TEST(Classification, SplitIsSeededStratifiedAndDisjoint) {
  ClassificationSet set = fake_set(10, 3);
  auto a = split_classification_set(set, 0.3, 7);
  auto b = split_classification_set(set, 0.3, 7);
  auto c = split_classification_set(set, 0.3, 8);
  ASSERT_EQ(a.train.items.size(), 9u);  // 3 per class
  ASSERT_EQ(a.test.items.size(), 21u);
  std::set<std::string> seen;
  std::vector<int> per_class(3, 0);
  for (const auto& item : a.train.items) {
    seen.insert(item.image.string());
    ++per_class[size_t(item.label)];
  }
  for (const auto& item : a.test.items) seen.insert(item.image.string());
  EXPECT_EQ(seen.size(), 30u);
  EXPECT_EQ(per_class, (std::vector<int>{3, 3, 3}));
  for (size_t i = 0; i < a.train.items.size(); ++i) EXPECT_EQ(a.train.items[i].image, b.train.items[i].image);
  bool differs = false;
  for (size_t i = 0; i < a.train.items.size(); ++i) differs |= a.train.items[i].image != c.train.items[i].image;
  EXPECT_TRUE(differs);
  EXPECT_EQ(a.train.class_names, set.class_names);
}

TEST(Classification, SplitKeepsOneTestImagePerClassAndRejectsBadFractions) {
  auto split = split_classification_set(fake_set(2, 2), 0.9, 0);
  EXPECT_EQ(split.train.items.size(), 2u);
  EXPECT_EQ(split.test.items.size(), 2u);
  for (double bad : {0.0, 1.0, -0.5, 2.0}) {
    try {
      split_classification_set(fake_set(2, 2), bad, 0);
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::usage);
    }
  }
}

}  // namespace
}  // namespace lesseg
