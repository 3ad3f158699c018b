#pragma once
// Helpers for tests that build tiny datasets on disk (images 8x6 unless stated otherwise).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>

#include "lesseg/core/error.h"

namespace lesseg::test {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "_" + info->name() : "lesseg";
    path_ = std::filesystem::temp_directory_path() /
            ("lesseg_" + name + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A deterministic colour image (BGR for cv::imwrite), so JPEG/PNG encoders have something real.
inline cv::Mat test_bgr(int width = 8, int height = 6) {
  cv::Mat bgr(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      bgr.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(30 * x), uchar(40 * y), uchar(100));
  return bgr;
}

// Writes any Mat with OpenCV (grey 8/16-bit PNG labels, colour images), creating folders.
inline void write_cv(const std::filesystem::path& path, const cv::Mat& m) {
  std::filesystem::create_directories(path.parent_path());
  ASSERT_TRUE(cv::imwrite(path.string(), m)) << path;
}

inline void write_image(const std::filesystem::path& path, int width = 8, int height = 6) {
  write_cv(path, test_bgr(width, height));
}

// An 8x6 label map filled with `fill`.
inline cv::Mat labels(uchar fill, int width = 8, int height = 6) {
  return cv::Mat(height, width, CV_8U, cv::Scalar(fill));
}

// Runs `fn`, expecting lesseg::Error; returns its message ("" and a test failure otherwise).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const lesseg::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected lesseg::Error";
  return "";
}

}  // namespace lesseg::test
