#pragma once
// Image and label-map IO. Images decode with OpenCV; label PNGs decode with libpng so that palette
// PNGs yield their palette INDICES (OpenCV would expand them to colours).
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace lesseg {

// Largest accepted width*height of a decoded image or label (checked before decoding).
constexpr int64_t kMaxImagePixels = int64_t(1) << 28;

// Reads an image as CV_8UC3 RGB. Grey images are expanded. Throws bad_input naming the file.
cv::Mat read_image_rgb(const std::filesystem::path& path);

// Reads a label map without interpreting it: palette PNGs give indices (CV_8U), grey PNGs give
// CV_8U / CV_16U, colour PNGs CV_8UC3 / CV_16UC3 in RGB order. Non-PNG files go through OpenCV.
cv::Mat read_label_raw(const std::filesystem::path& path);
// The same from the file's bytes; `origin` names the file in errors.
cv::Mat decode_label_raw(const std::string& bytes, const std::filesystem::path& origin);

using Palette = std::vector<std::array<uint8_t, 3>>;

// Writes a CV_8U index map as a palette PNG (colours from `palette`, the rest black), atomically.
void write_label_png(const std::filesystem::path& path, const cv::Mat& labels, const Palette& palette);
// Writes a CV_8UC3 RGB image as PNG (or JPEG by extension), atomically.
void write_image_rgb(const std::filesystem::path& path, const cv::Mat& rgb);

}  // namespace lesseg
