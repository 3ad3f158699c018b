// Loader and sampler: deterministic for a seed whatever the worker count, resumable, shardable.
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/data/loader.h"
#include "lesseg/data/semi_views.h"
#include "lesseg/data/formats/formats.h"
#include "lesseg/data/synth/synth.h"
#include "seg_fixtures.h"

namespace lesseg {
namespace {

SegDatasetPtr tiny_world(size_t n = 10) {
  synth::Options options;
  options.size = 48;
  return std::make_shared<synth::SynthDataset>(options, n, 0);
}

LoaderOptions augmenting(int workers) {
  LoaderOptions o;
  o.batch_size = 3;
  o.workers = workers;
  o.seed = 11;
  o.augment.crop_h = o.augment.crop_w = 40;
  o.augment.scale_min = 0.8;
  o.augment.scale_max = 1.3;
  o.augment.flip = true;
  o.augment.color_jitter = 0.3;
  return o;
}

std::vector<Batch> take(Loader& loader, int n) {
  std::vector<Batch> out(n);
  for (auto& b : out) EXPECT_TRUE(loader.next(b));
  return out;
}

TEST(Loader, SameSeedSameBatchesWhateverTheWorkerCount) {
  Loader one(tiny_world(), augmenting(1)), three(tiny_world(), augmenting(3));
  auto a = take(one, 7), b = take(three, 7);  // crosses epoch boundaries (3 batches per epoch)
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].images, b[i].images)) << "batch " << i;
    EXPECT_TRUE(torch::equal(a[i].masks, b[i].masks)) << "batch " << i;
    EXPECT_EQ(a[i].ids, b[i].ids);
  }
  EXPECT_EQ(a[0].images.sizes(), (std::vector<int64_t>{3, 3, 40, 40}));
  EXPECT_EQ(a[0].masks.sizes(), (std::vector<int64_t>{3, 40, 40}));
}

TEST(Loader, ResumesFromItsStateWithTheSameBatches) {
  Loader full(tiny_world(), augmenting(2));
  auto all = take(full, 6);
  Loader first(tiny_world(), augmenting(2));
  take(first, 4);
  Loader resumed(tiny_world(), augmenting(2), first.state());
  auto rest = take(resumed, 2);
  EXPECT_TRUE(torch::equal(rest[0].images, all[4].images));
  EXPECT_TRUE(torch::equal(rest[1].masks, all[5].masks));
}

TEST(Loader, EvaluationPassVisitsEveryImageOnceInOrder) {
  LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = false;
  o.drop_last = false;
  o.repeat = false;
  Loader loader(tiny_world(10), o);
  Batch b;
  std::vector<std::string> ids;
  while (loader.next(b))
    for (auto& id : b.ids) ids.push_back(id);
  ASSERT_EQ(ids.size(), 10u);
  EXPECT_EQ(ids.front(), "source_000000");
  EXPECT_EQ(ids.back(), "source_000009");
}

TEST(Sampler, RanksGetDisjointEqualShardsCoveringTheEpoch) {
  ShardedSampler r0(11, true, 5, 0, 2), r1(11, true, 5, 1, 2);
  auto a = r0.epoch_indices(3), b = r1.epoch_indices(3);
  EXPECT_EQ(a.size(), b.size());
  std::set<size_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 11u);
  EXPECT_NE(r0.epoch_indices(3), r0.epoch_indices(4));  // reshuffled per epoch
  EXPECT_EQ(r0.epoch_indices(3), ShardedSampler(11, true, 5, 0, 2).epoch_indices(3));
}

TEST(Loader, NormalizationUsesMeanAndStd) {
  cv::Mat grey(2, 2, CV_8UC3, cv::Scalar(255, 0, 128));
  auto t = image_to_tensor(grey, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5});
  EXPECT_NEAR(t[0][0][0].item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(t[1][0][0].item<float>(), -1.0f, 1e-6);
}

}  // namespace
}  // namespace lesseg

namespace lesseg {
namespace {

// Six 8x6 images with masks in the folder format; image 2 is a truncated PNG.
SegDatasetPtr folder_with_a_bad_image(const test::TempDir& dir) {
  test::write_text(dir / "classes.yaml", "names: [background, thing]\n");
  for (int i = 0; i < 6; ++i) {
    const std::string stem = "img" + std::to_string(i);
    test::write_image(dir / ("images/" + stem + ".png"));
    test::write_cv(dir / ("masks/" + stem + ".png"), test::labels(1));
  }
  std::string bytes = test::read_bytes(dir / "images/img2.png");
  test::write_text(dir / "images/img2.png", bytes.substr(0, bytes.size() / 2));
  return open_folder(dir.path(), "");
}

TEST(Loader, BadImageStopsTheRunNamingTheFile) {
  test::TempDir dir;
  LoaderOptions options;
  options.batch_size = 6;
  options.shuffle = false;
  Loader loader(folder_with_a_bad_image(dir), options);
  Batch batch;
  const std::string message = test::error_of([&] { loader.next(batch); });
  EXPECT_NE(message.find("img2.png"), std::string::npos) << message;
}

TEST(Loader, SkipBadImagesSkipsAndCounts) {
  test::TempDir dir;
  LoaderOptions options;
  options.batch_size = 6;
  options.shuffle = false;
  options.skip_bad_images = true;
  Loader loader(folder_with_a_bad_image(dir), options);
  Batch batch;
  for (int epoch = 0; epoch < 2; ++epoch) {
    ASSERT_TRUE(loader.next(batch));
    EXPECT_EQ(batch.images.size(0), 6);
    EXPECT_EQ(std::count(batch.ids.begin(), batch.ids.end(), "img3"), 2);  // img2's place went to img3
  }
  EXPECT_EQ(loader.skipped(), 2);  // once per epoch
}

// Semi-supervised data: the labeled and unlabeled parts partition the training set (the labeled
// part is labeled_fraction's), the unlabeled part withholds every label (0 on real pixels, ignore
// on crop padding), and the strong views are copies of the weak crop with photometric changes only.
TEST(Loader, SemiSupervisedSplitAndStrongViews) {
  auto world = tiny_world(10);
  LabeledSplit split = split_labeled(world, 0.3, 4);
  ASSERT_EQ(split.labeled->size(), 3u);
  ASSERT_TRUE(split.unlabeled);
  ASSERT_EQ(split.unlabeled->size(), 7u);
  auto same = std::static_pointer_cast<const SubsetDataset>(labeled_fraction(world, 0.3, 4));
  EXPECT_EQ(same->indices(), split.labeled->indices());
  std::set<std::string> ids;
  for (size_t i = 0; i < split.labeled->size(); ++i) ids.insert(split.labeled->get(i).id);
  for (size_t i = 0; i < split.unlabeled->size(); ++i) ids.insert(split.unlabeled->get(i).id);
  EXPECT_EQ(ids.size(), 10u);  // every image in exactly one part
  EXPECT_FALSE(split_labeled(world, 1.0, 4).unlabeled);

  LoaderOptions o = augmenting(2);
  o.augment.color_jitter = 0;                // the weak view: geometry only
  o.augment.crop_h = o.augment.crop_w = 64;  // larger than the 48 px scenes: always padded
  o.augment.scale_max = 1.0;
  o.strong_views = 2;
  o.strong_spec = strong_view_spec(64);
  Loader a(split.unlabeled, o), b(split.unlabeled, o);
  auto x = take(a, 2), y = take(b, 2);
  ASSERT_EQ(x[0].strong.size(), 2u);
  EXPECT_EQ(x[0].strong[0].sizes(), x[0].images.sizes());
  EXPECT_TRUE(torch::equal(x[1].strong[1], y[1].strong[1]));  // reproducible for a seed
  EXPECT_FALSE(torch::equal(x[0].strong[0], x[0].strong[1]));
  EXPECT_TRUE(torch::equal(std::get<0>(at::_unique(x[0].masks)), torch::tensor({0, 255}, torch::kLong)));
  // With no photometric step the strong view is the weak crop itself, pixel for pixel.
  o.strong_spec.jitter_prob = o.strong_spec.grayscale = o.strong_spec.blur = 0;
  Loader plain(split.unlabeled, o);
  auto z = take(plain, 1);
  EXPECT_TRUE(torch::equal(z[0].strong[0], z[0].images));
  EXPECT_TRUE(torch::equal(z[0].images, x[0].images));  // the strong views do not change the weak one
}

}  // namespace
}  // namespace lesseg
