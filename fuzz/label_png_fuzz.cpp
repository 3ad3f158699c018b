// Label PNGs (decode_label_raw, the body of read_label_raw): the header size check, then libpng with
// palette indices kept. libpng's errors must come back as lesseg::Error, never as a crash or longjmp
// leak. Only inputs with the PNG signature are tried: other formats go to OpenCV's decoders, which are
// not lesseg code. Chunk CRCs are recomputed before decoding, so that mutations reach the chunk
// contents instead of stopping at libpng's CRC check (libpng itself carries no coverage feedback).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <opencv2/core.hpp>
#include <zlib.h>

#include "fuzz_check.h"
#include "lesseg/core/error.h"
#include "lesseg/io/image_io.h"

namespace {

// Walks the chunks (length, type, data, CRC) and rewrites each complete chunk's CRC.
void fix_chunk_crcs(std::string& png) {
  size_t pos = 8;
  while (pos + 12 <= png.size()) {
    const auto* p = reinterpret_cast<const unsigned char*>(png.data() + pos);
    const uint64_t length = (uint64_t(p[0]) << 24) | (uint64_t(p[1]) << 16) | (uint64_t(p[2]) << 8) | p[3];
    if (length > png.size() - pos - 12) return;
    const uint32_t crc = uint32_t(crc32(0, p + 4, uInt(4 + length)));
    for (int i = 0; i < 4; ++i) png[pos + 8 + length + i] = char((crc >> (24 - 8 * i)) & 0xFF);
    pos += 12 + length;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char kSignature[] = "\x89PNG\r\n\x1a\n";
  if (size < 8 || std::memcmp(data, kSignature, 8) != 0) return 0;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  fix_chunk_crcs(bytes);
  cv::Mat raw;
  try {
    raw = lesseg::decode_label_raw(bytes, "fuzz.png");
  } catch (const lesseg::Error& e) {
    FUZZ_CHECK(e.code() == lesseg::ExitCode::bad_input);
    return 0;
  }
  FUZZ_CHECK(!raw.empty() && int64_t(raw.rows) * raw.cols <= lesseg::kMaxImagePixels);
  FUZZ_CHECK(raw.depth() == CV_8U || raw.depth() == CV_16U);
  FUZZ_CHECK(raw.channels() == 1 || raw.channels() == 3);
  return 0;
}
