// Image and label IO: colour order, palette indices, bit depths, and every kind of broken file.
#include <gtest/gtest.h>
#include <png.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csetjmp>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "lesseg/data/classes.h"
#include "lesseg/io/image_io.h"
#include "seg_fixtures.h"

namespace fs = std::filesystem;
using lesseg::test::error_of;
using lesseg::test::TempDir;
using lesseg::test::write_text;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// PNG chunk CRC (ISO 3309 / zlib polynomial), so a crafted header is a valid chunk.
uint32_t png_crc(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
}

// Signature + IHDR declaring width x height, 8-bit grey; no pixel data follows.
std::string png_header(uint32_t width, uint32_t height) {
  std::string ihdr = "IHDR" + be32(width) + be32(height) + std::string("\x08\x00\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + be32(png_crc(ihdr));
}

// libpng part of write_grey_png; only plain locals live across setjmp.
bool png_write_grey_rows(FILE* f, int width, int height, int bit_depth, bool interlaced, png_bytep* rows) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, png_uint_32(width), png_uint_32(height), bit_depth, PNG_COLOR_TYPE_GRAY,
               interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  if (bit_depth < 8) png_set_packing(png);
  png_write_image(png, rows);  // handles the Adam7 passes itself
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

// Writes one byte per pixel with libpng at `bit_depth` (1..8) grey, optionally Adam7-interlaced.
void write_grey_png(const fs::path& path, const cv::Mat& values, int bit_depth, bool interlaced) {
  std::vector<png_bytep> rows(size_t(values.rows));
  for (int y = 0; y < values.rows; ++y) rows[size_t(y)] = const_cast<png_bytep>(values.ptr<png_byte>(y));
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const bool ok = png_write_grey_rows(f, values.cols, values.rows, bit_depth, interlaced, rows.data());
  std::fclose(f);
  ASSERT_TRUE(ok) << "libpng could not write " << path;
}

cv::Mat index_pattern(int modulo) {
  cv::Mat m(6, 8, CV_8U);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x) m.at<uint8_t>(y, x) = uint8_t((x + 3 * y) % modulo);
  return m;
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a.reshape(1) != b.reshape(1)) == 0;
}

}  // namespace

TEST(ImageIo, ImageComesBackAsRgb) {
  TempDir dir;
  cv::Mat bgr(6, 8, CV_8UC3, cv::Scalar(255, 0, 0));  // pure blue in OpenCV's BGR
  lesseg::test::write_cv(dir / "blue.png", bgr);
  cv::Mat rgb = lesseg::read_image_rgb(dir / "blue.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(2, 3), cv::Vec3b(0, 0, 255));
}

TEST(ImageIo, GreyImageIsExpandedToThreeChannels) {
  TempDir dir;
  lesseg::test::write_cv(dir / "grey.png", cv::Mat(6, 8, CV_8U, cv::Scalar(77)));
  cv::Mat rgb = lesseg::read_image_rgb(dir / "grey.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(77, 77, 77));
}

TEST(ImageIo, WriteImageRgbRoundTrips) {
  TempDir dir;
  cv::Mat rgb(6, 8, CV_8UC3, cv::Scalar(10, 20, 30));
  lesseg::write_image_rgb(dir / "x.png", rgb);
  EXPECT_TRUE(same(lesseg::read_image_rgb(dir / "x.png"), rgb));
}

TEST(ImageIo, PalettePngGivesIndicesNotColours) {
  TempDir dir;
  cv::Mat idx = index_pattern(21);
  idx.at<uint8_t>(0, 0) = 255;  // VOC's boundary value
  lesseg::write_label_png(dir / "voc.png", idx, lesseg::voc_palette());
  cv::Mat raw = lesseg::read_label_raw(dir / "voc.png");
  ASSERT_EQ(raw.type(), CV_8UC1);
  EXPECT_TRUE(same(raw, idx));
  EXPECT_EQ(raw.at<uint8_t>(0, 0), 255);
  // What plain OpenCV makes of the same file: colours, or their luminance; never the indices.
  cv::Mat cv_unchanged = cv::imread((dir / "voc.png").string(), cv::IMREAD_UNCHANGED);
  EXPECT_EQ(cv_unchanged.channels(), 3);
  cv::Mat cv_grey = cv::imread((dir / "voc.png").string(), cv::IMREAD_GRAYSCALE);
  EXPECT_FALSE(same(cv_grey, idx));
}

TEST(ImageIo, SixteenBitGreyKeepsValues) {
  TempDir dir;
  cv::Mat ids(6, 8, CV_16U, cv::Scalar(26001));
  ids.at<uint16_t>(1, 2) = 7;
  lesseg::test::write_cv(dir / "inst.png", ids);
  cv::Mat raw = lesseg::read_label_raw(dir / "inst.png");
  ASSERT_EQ(raw.type(), CV_16UC1);
  EXPECT_EQ(raw.at<uint16_t>(0, 0), 26001);
  EXPECT_EQ(raw.at<uint16_t>(1, 2), 7);
}

// SYNTHIA's "last channel" is stated for cv2 (BGR): this pins down that it is channel 0 here.
TEST(ImageIo, SixteenBitColourIsRgbOrder) {
  TempDir dir;
  cv::Mat bgr(6, 8, CV_16UC3, cv::Scalar(1000, 2000, 3));  // OpenCV channels B, G, R(=last)
  lesseg::test::write_cv(dir / "gt.png", bgr);
  cv::Mat raw = lesseg::read_label_raw(dir / "gt.png");
  ASSERT_EQ(raw.type(), CV_16UC3);
  EXPECT_EQ(raw.at<cv::Vec3w>(0, 0), (cv::Vec3w(3, 2000, 1000)));
  cv::Mat cv_raw = cv::imread((dir / "gt.png").string(), cv::IMREAD_UNCHANGED);
  EXPECT_EQ(cv_raw.at<cv::Vec3w>(0, 0)[2], raw.at<cv::Vec3w>(0, 0)[0]);
}

TEST(ImageIo, LowBitDepthGreyGivesIndices) {
  TempDir dir;
  for (int depth : {1, 2, 4}) {
    cv::Mat idx = index_pattern(1 << depth);
    const fs::path file = dir / ("d" + std::to_string(depth) + ".png");
    write_grey_png(file, idx, depth, false);
    EXPECT_TRUE(same(lesseg::read_label_raw(file), idx)) << "bit depth " << depth;
  }
}

TEST(ImageIo, InterlacedPngDecodes) {
  TempDir dir;
  cv::Mat idx = index_pattern(19);
  write_grey_png(dir / "adam7.png", idx, 8, true);
  EXPECT_TRUE(same(lesseg::read_label_raw(dir / "adam7.png"), idx));
}

TEST(ImageIo, MissingFile) {
  TempDir dir;
  std::string msg = error_of([&] { lesseg::read_image_rgb(dir / "nope.jpg"); });
  EXPECT_TRUE(contains(msg, "nope.jpg")) << msg;
  EXPECT_TRUE(contains(msg, "does not exist")) << msg;
}

TEST(ImageIo, ZeroByteFile) {
  TempDir dir;
  write_text(dir / "empty.png", "");
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_image_rgb(dir / "empty.png"); }), "empty"));
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_label_raw(dir / "empty.png"); }), "empty"));
}

TEST(ImageIo, TextFileNamedPng) {
  TempDir dir;
  write_text(dir / "notes.png", "this is not an image\n");
  std::string msg = error_of([&] { lesseg::read_image_rgb(dir / "notes.png"); });
  EXPECT_TRUE(contains(msg, "notes.png") && contains(msg, "not a decodable image")) << msg;
  msg = error_of([&] { lesseg::read_label_raw(dir / "notes.png"); });
  EXPECT_TRUE(contains(msg, "notes.png") && contains(msg, "not a decodable")) << msg;
}

TEST(ImageIo, DirectoryNamedPng) {
  TempDir dir;
  fs::create_directories(dir / "folder.png");
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_image_rgb(dir / "folder.png"); }), "is a directory"));
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_label_raw(dir / "folder.png"); }), "is a directory"));
}

TEST(ImageIo, DanglingSymlink) {
  TempDir dir;
  fs::create_symlink(dir / "gone.png", dir / "link.png");
  std::string msg = error_of([&] { lesseg::read_label_raw(dir / "link.png"); });
  EXPECT_TRUE(contains(msg, "link.png") && contains(msg, "dangling")) << msg;
}

TEST(ImageIo, UnreadablePermissions) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root, which reads any file whatever its permissions";
  TempDir dir;
  lesseg::test::write_image(dir / "locked.png");
  fs::permissions(dir / "locked.png", fs::perms::none);
  std::string msg = error_of([&] { lesseg::read_image_rgb(dir / "locked.png"); });
  EXPECT_TRUE(contains(msg, "locked.png") && contains(msg, "cannot")) << msg;
}

TEST(ImageIo, TruncatedPng) {
  TempDir dir;
  lesseg::write_label_png(dir / "full.png", index_pattern(21), lesseg::voc_palette());
  std::string bytes = lesseg::test::read_bytes(dir / "full.png");
  write_text(dir / "cut.png", bytes.substr(0, bytes.size() / 2));
  std::string msg = error_of([&] { lesseg::read_label_raw(dir / "cut.png"); });
  EXPECT_TRUE(contains(msg, "cut.png") && contains(msg, "corrupt PNG")) << msg;
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_image_rgb(dir / "cut.png"); }), "cut.png"));
}

TEST(ImageIo, CorruptPngData) {
  TempDir dir;
  lesseg::write_label_png(dir / "full.png", index_pattern(21), lesseg::voc_palette());
  std::string bytes = lesseg::test::read_bytes(dir / "full.png");
  const size_t idat = bytes.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  for (size_t i = idat + 4; i < idat + 12; ++i) bytes[i] = char(~bytes[i]);  // CRC no longer matches
  write_text(dir / "bad.png", bytes);
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_label_raw(dir / "bad.png"); }), "corrupt PNG"));
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_image_rgb(dir / "bad.png"); }), "bad.png"));
}

TEST(ImageIo, TruncatedJpeg) {
  TempDir dir;
  lesseg::test::write_image(dir / "full.jpg", 64, 48);
  std::string bytes = lesseg::test::read_bytes(dir / "full.jpg");
  write_text(dir / "cut.jpg", bytes.substr(0, bytes.size() * 2 / 3));
  std::string msg = error_of([&] { lesseg::read_image_rgb(dir / "cut.jpg"); });
  EXPECT_TRUE(contains(msg, "cut.jpg") && contains(msg, "truncated")) << msg;
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_label_raw(dir / "cut.jpg"); }), "truncated"));
}

TEST(ImageIo, ProgressiveJpegWithTrailingBytesDecodes) {
  TempDir dir;
  std::vector<uchar> encoded;
  ASSERT_TRUE(
      cv::imencode(".jpg", lesseg::test::test_bgr(64, 48), encoded, {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  write_text(dir / "p.jpg", std::string(encoded.begin(), encoded.end()) + "trailing junk");
  EXPECT_EQ(lesseg::read_image_rgb(dir / "p.jpg").size(), cv::Size(64, 48));
}

TEST(ImageIo, CorruptJpegHeader) {
  TempDir dir;
  lesseg::test::write_image(dir / "full.jpg", 64, 48);
  std::string bytes = lesseg::test::read_bytes(dir / "full.jpg");
  for (size_t i = 2; i < 40; ++i) bytes[i] = char(0x5A);  // keep SOI, destroy the segments after it
  write_text(dir / "bad.jpg", bytes);
  std::string msg = error_of([&] { lesseg::read_image_rgb(dir / "bad.jpg"); });
  EXPECT_TRUE(contains(msg, "bad.jpg") && contains(msg, "corrupt")) << msg;
}

TEST(ImageIo, HugeDeclaredPngIsRefusedBeforeDecoding) {
  TempDir dir;
  write_text(dir / "huge.png", png_header(100000, 100000));
  std::string msg = error_of([&] { lesseg::read_label_raw(dir / "huge.png"); });
  EXPECT_TRUE(contains(msg, "huge.png") && contains(msg, "exceeds limit")) << msg;
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_image_rgb(dir / "huge.png"); }), "exceeds limit"));
}

// Found by fuzz/label_png_fuzz.cpp: 3654932953 x 3654932953 overflowed int64 in the size check.
TEST(ImageIo, PngSidesNear2To32AreRefusedWithoutOverflow) {
  TempDir dir;
  write_text(dir / "wide.png", png_header(0xD9D9D9D9u, 0xD9D9D9D9u));
  std::string msg = error_of([&] { lesseg::read_label_raw(dir / "wide.png"); });
  EXPECT_TRUE(contains(msg, "wide.png") && contains(msg, "exceeds limit")) << msg;
  write_text(dir / "tall.png", png_header(1, 0xFFFFFFFFu));
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_image_rgb(dir / "tall.png"); }), "exceeds limit"));
}

TEST(ImageIo, HugeDeclaredJpegIsRefusedBeforeDecoding) {
  TempDir dir;
  lesseg::test::write_image(dir / "small.jpg");
  std::string bytes = lesseg::test::read_bytes(dir / "small.jpg");
  const size_t sof = bytes.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  bytes.replace(sof + 5, 4, "\xFF\xFF\xFF\xFF");  // height, width = 65535
  write_text(dir / "huge.jpg", bytes);
  EXPECT_TRUE(contains(error_of([&] { lesseg::read_image_rgb(dir / "huge.jpg"); }), "exceeds limit"));
}

namespace {

// A real decompression bomb: a valid 17000 x 17000 grey PNG of zeros (289 M pixels, beyond
// kMaxImagePixels) that compresses to a few hundred KB. Written row by row, never held in memory.
bool write_png_bomb(const std::filesystem::path& path, int side) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  std::vector<png_byte> row(static_cast<size_t>(side), 0);
  bool ok = false;
  if (!setjmp(png_jmpbuf(png))) {
    png_init_io(png, f);
    png_set_IHDR(png, info, side, side, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 1);
    png_write_info(png, info);
    for (int y = 0; y < side; ++y) png_write_row(png, row.data());
    png_write_end(png, nullptr);
    ok = true;
  }
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
  return ok;
}

long peak_rss_kb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace

TEST(ImageIo, DecompressionBombIsRefusedWithBoundedMemory) {
  TempDir dir;
  ASSERT_TRUE(write_png_bomb(dir / "bomb.png", 17000));
  const auto file_kb = std::filesystem::file_size(dir / "bomb.png") / 1024;
  const long before = peak_rss_kb();
  int tried = 0;
  for (int i = 0; i < 5; ++i, tried += 2) {
    EXPECT_TRUE(contains(error_of([&] { lesseg::read_label_raw(dir / "bomb.png"); }), "exceeds limit"));
    EXPECT_TRUE(contains(error_of([&] { lesseg::read_image_rgb(dir / "bomb.png"); }), "exceeds limit"));
  }
  const long grown_mb = (peak_rss_kb() - before) / 1024;
  std::printf("  %d reads of a %lu KB PNG declaring 17000 x 17000 (289 MB decoded): peak RSS grew %ld MB\n", tried,
              static_cast<unsigned long>(file_kb), grown_mb);
  EXPECT_LT(grown_mb, 32);  // decoding it would need 289 MB (grey) or 867 MB (RGB)
}
