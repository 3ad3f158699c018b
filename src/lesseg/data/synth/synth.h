#pragma once
// The built-in synthetic world: procedurally generated scenes, deterministic by seed.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "lesseg/data/classes.h"
#include "lesseg/data/dataset.h"

namespace lesseg::synth {

struct Options {
  std::string domain = "source";  // "source": flat rendered colours; "target": textures, noise, blur, lighting
  double shift = 1.0;             // strength of the target domain's shift, 0 = like source, 1 = full
  // Strength of the target's photometric part alone (lighting, colour cast, blur, noise), which
  // makes target scenes hard for any model; < 0: the same as `shift`. `shift` then sets the
  // appearance part (coarser, fainter class textures; background blobs wearing object textures),
  // which a model trained on the target learns and one trained on the source does not.
  double degrade = -1.0;
  int size = 128;                 // square image side in pixels
  int min_objects = 3;
  int max_objects = 7;
  uint64_t seed = 0;
};

struct Instance {
  int category = 0;  // 1..num_classes-1 (0 is background)
  cv::Mat mask;      // CV_8U 0/1, visible part only (after occlusion)
};

struct Scene {
  cv::Mat image;     // CV_8UC3 RGB
  cv::Mat semantic;  // CV_8U class index
  std::vector<Instance> instances;
};

struct Crop {
  cv::Mat image;  // CV_8UC3 RGB, one object centred
  int label = 0;  // object class 1..num_classes-1
};

ClassInfo classes();                                  // background + object classes
Scene render_scene(const Options& options, uint64_t index);
Crop render_crop(const Options& options, uint64_t index);

// Writes the generic folder layout: images/, masks/, splits/{train,val}.txt, classes.yaml,
// instances_{train,val}.json (COCO, compressed RLE), crops/{images/*.png, labels.txt}.
void write_dataset(const std::filesystem::path& out, const Options& options, int num_train, int num_val,
                   int num_crops);

// An in-memory dataset rendering scene (index_offset + i) on demand.
class SynthDataset : public SegDataset {
 public:
  SynthDataset(Options options, size_t count, uint64_t index_offset);
  size_t size() const override { return count_; }
  SegSample get(size_t index) const override;
  const ClassInfo& classes() const override { return classes_; }
  std::string sample_id(size_t index) const override;

 private:
  Options options_;
  size_t count_;
  uint64_t index_offset_;
  ClassInfo classes_;
};

}  // namespace lesseg::synth
