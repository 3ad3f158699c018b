#include "lesseg/io/image_io.h"

#include <png.h>

#include <csetjmp>
#include <cstring>
#include <string>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {

bool has_png_signature(const std::string& bytes) {
  return bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0;
}

void check_declared_size(const fs::path& path, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0) throw_bad_input(path, "image has zero width or height");
  if (width > kMaxImagePixels / height)  // width * height would overflow for sides near 2^32
    throw_bad_input(path, std::to_string(width) + " x " + std::to_string(height) +
                              " exceeds limit " + std::to_string(kMaxImagePixels) + " pixels");
}

struct PngReadState {
  const std::string* bytes;
  size_t offset;
  char error[256];
};

void png_read_from_string(png_structp png, png_bytep out, png_size_t count) {
  auto* state = static_cast<PngReadState*>(png_get_io_ptr(png));
  if (state->offset + count > state->bytes->size()) png_error(png, "file is truncated");
  std::memcpy(out, state->bytes->data() + state->offset, count);
  state->offset += count;
}

void png_on_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngReadState*>(png_get_error_ptr(png));
  std::snprintf(state->error, sizeof(state->error), "%s", message);
  longjmp(png_jmpbuf(png), 1);
}

void png_on_warning(png_structp, png_const_charp) {}

// Decodes a PNG keeping palette indices; 16-bit samples are kept (byte-swapped to host order).
cv::Mat decode_png_raw(const fs::path& path, const std::string& bytes) {
  PngReadState state{&bytes, 0, {0}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) throw Error(ExitCode::internal, "libpng: out of memory");
  cv::Mat out;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw_bad_input(path, std::string("corrupt PNG: ") + state.error);
  }
  png_set_read_fn(png, &state, png_read_from_string);
  png_read_info(png, info);
  png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  int bit_depth = png_get_bit_depth(png, info), color_type = png_get_color_type(png, info);
  if (int64_t(width) * int64_t(height) > kMaxImagePixels) {
    png_destroy_read_struct(&png, &info, nullptr);
    check_declared_size(path, width, height);
  }
  if (bit_depth < 8) png_set_packing(png);  // 1/2/4-bit indices or grey levels -> one byte each
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  if (bit_depth == 16) png_set_swap(png);
  png_set_interlace_handling(png);  // Adam7 files: png_read_image then de-interlaces into full rows
  png_read_update_info(png, info);
  int channels = png_get_channels(png, info);
  int depth = bit_depth == 16 ? CV_16U : CV_8U;
  out.create(int(height), int(width), CV_MAKETYPE(depth, channels));
  rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = out.ptr<png_byte>(int(y));
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  if (bit_depth < 8 && color_type == PNG_COLOR_TYPE_GRAY) {
    // expand_gray scales 1/2/4-bit grey to 0..255; undo it so values stay class indices.
    out /= (255 / ((1 << bit_depth) - 1));
  }
  return out;
}

bool has_jpeg_signature(const std::string& bytes) {
  return bytes.size() >= 4 && uint8_t(bytes[0]) == 0xFF && uint8_t(bytes[1]) == 0xD8;
}

struct JpegHeader {
  int width = -1, height = -1;      // from the first start-of-frame, -1 if none
  size_t scan = std::string::npos;      // offset of the first scan's entropy-coded data
};

// Walks JPEG marker segments up to the first start-of-scan.
JpegHeader parse_jpeg_header(const std::string& bytes) {
  auto be16 = [&](size_t o) { return (size_t(uint8_t(bytes[o])) << 8) | uint8_t(bytes[o + 1]); };
  JpegHeader h;
  size_t o = 2;
  while (o + 4 <= bytes.size()) {
    const uint8_t marker = uint8_t(bytes[o + 1]);
    if (uint8_t(bytes[o]) != 0xFF || marker == 0xFF) { ++o; continue; }  // stray or fill byte
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { o += 2; continue; }  // no length field
    if (marker == 0xD9) break;  // end of image before any scan
    const size_t len = be16(o + 2);
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof && h.width < 0 && o + 9 <= bytes.size()) {
      h.height = int(be16(o + 5));
      h.width = int(be16(o + 7));
    }
    if (marker == 0xDA) {
      h.scan = o + 2 + len;
      break;
    }
    o += 2 + len;
  }
  return h;
}

// libjpeg only warns on a cut-off file and OpenCV then returns a partly grey image, so a
// truncated JPEG must be caught here. Entropy-coded data never holds FF D9 (0xFF is stuffed as
// FF 00), so an end-of-image marker after the first scan means the stream reached its end.
void check_jpeg_complete(const fs::path& path, const std::string& bytes, const JpegHeader& h) {
  if (h.scan == std::string::npos || h.scan > bytes.size())
    throw_bad_input(path, "corrupt or truncated JPEG: no image data (start-of-scan marker missing)");
  if (bytes.find("\xFF\xD9", h.scan) == std::string::npos)
    throw_bad_input(path, "truncated JPEG: no end-of-image marker after the image data");
}

// Reads width/height from the header of common formats before any pixel is decoded.
void check_header(const fs::path& path, const std::string& bytes) {
  if (has_png_signature(bytes) && bytes.size() >= 24) {
    auto be32 = [&](size_t o) {
      return (uint32_t(uint8_t(bytes[o])) << 24) | (uint32_t(uint8_t(bytes[o + 1])) << 16) |
             (uint32_t(uint8_t(bytes[o + 2])) << 8) | uint32_t(uint8_t(bytes[o + 3]));
    };
    check_declared_size(path, be32(16), be32(20));
    return;
  }
  if (has_jpeg_signature(bytes)) {
    const JpegHeader h = parse_jpeg_header(bytes);
    if (h.width >= 0) check_declared_size(path, h.width, h.height);
    check_jpeg_complete(path, bytes, h);
  }
}

std::string read_checked(const fs::path& path) {
  require_readable_file(path);
  std::string bytes = read_file(path);
  check_header(path, bytes);
  return bytes;
}

}  // namespace

cv::Mat read_image_rgb(const fs::path& path) {
  std::string bytes = read_checked(path);
  cv::Mat buffer(1, int(bytes.size()), CV_8U, bytes.data());
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(buffer, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    throw_bad_input(path, std::string("cannot decode image: ") + e.what());
  }
  if (bgr.empty()) throw_bad_input(path, "not a decodable image (corrupt, truncated or unknown format)");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

cv::Mat read_label_raw(const fs::path& path) {
  require_readable_file(path);
  return decode_label_raw(read_file(path), path);
}

cv::Mat decode_label_raw(const std::string& bytes, const fs::path& path) {
  if (bytes.empty()) throw_bad_input(path, "file is empty (0 bytes)");
  check_header(path, bytes);
  if (has_png_signature(bytes)) {
    cv::Mat raw = decode_png_raw(path, bytes);
    return raw;  // PNG stores RGB order already
  }
  cv::Mat buffer(1, int(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
  cv::Mat raw;
  try {
    raw = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw_bad_input(path, std::string("cannot decode label image: ") + e.what());
  }
  if (raw.empty()) throw_bad_input(path, "not a decodable label image (corrupt, truncated or unknown format)");
  // Same result as the PNG path: RGB order, alpha dropped.
  if (raw.channels() == 3) cv::cvtColor(raw, raw, cv::COLOR_BGR2RGB);
  if (raw.channels() == 4) cv::cvtColor(raw, raw, cv::COLOR_BGRA2RGB);
  return raw;
}

namespace {
void png_write_to_string(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  out->append(reinterpret_cast<const char*>(data), length);
}
void png_flush_noop(png_structp) {}
}  // namespace

void write_label_png(const fs::path& path, const cv::Mat& labels, const Palette& palette) {
  CV_Assert(labels.type() == CV_8U);
  std::string encoded;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) throw Error(ExitCode::internal, "libpng: out of memory");
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw_io(path, "PNG encoding failed");
  }
  png_set_write_fn(png, &encoded, png_write_to_string, png_flush_noop);
  png_set_IHDR(png, info, labels.cols, labels.rows, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  std::vector<png_color> colors(256, png_color{0, 0, 0});
  for (size_t i = 0; i < palette.size() && i < 256; ++i)
    colors[i] = png_color{palette[i][0], palette[i][1], palette[i][2]};
  png_set_PLTE(png, info, colors.data(), 256);
  png_write_info(png, info);
  for (int y = 0; y < labels.rows; ++y) png_write_row(png, labels.ptr<png_byte>(y));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  write_file_atomic(path, encoded);
}

void write_image_rgb(const fs::path& path, const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uchar> encoded;
  std::string ext = path.extension().string();
  if (ext.empty()) ext = ".png";
  if (!cv::imencode(ext, bgr, encoded)) throw_io(path, "cannot encode image as " + ext);
  write_file_atomic(path, std::string(encoded.begin(), encoded.end()));
}

}  // namespace lesseg
