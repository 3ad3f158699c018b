#pragma once
// Runs a saved segmenter on image files: a class-index PNG and a colour overlay PNG per image.
#include <filesystem>
#include <vector>

#include "lesseg/methods/saved_segmenter.h"

namespace lesseg {

// Class indices (CV_8U) at the image's own resolution.
cv::Mat predict_image(SavedSegmenter& segmenter, const cv::Mat& rgb, torch::Device device);
// Blends the class colours over the image (alpha 0.5).
cv::Mat overlay(const cv::Mat& rgb, const cv::Mat& labels, const Palette& palette);
// Writes <out>/<stem>.png (palette PNG of class indices) and <out>/<stem>_overlay.png per image.
void predict_files(SavedSegmenter& segmenter, const std::vector<std::filesystem::path>& images,
                   const std::filesystem::path& out_dir, torch::Device device);

}  // namespace lesseg
