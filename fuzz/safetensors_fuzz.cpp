// The safetensors header and offsets (safetensors::parse_layout, the torch-free half of
// parse_safetensors / load_safetensors). Every span it accepts is read, so ASan sees a bad bound.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "lesseg/core/error.h"
#include "lesseg/io/safetensors_layout.h"

namespace st = lesseg::safetensors;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* bytes = reinterpret_cast<const char*>(data);
  st::Layout layout;
  try {
    layout = st::parse_layout(bytes, size, "fuzz.safetensors");
  } catch (const lesseg::Error& e) {
    FUZZ_CHECK(e.code() == lesseg::ExitCode::bad_weights);
    return 0;
  }
  FUZZ_CHECK(layout.buffer_begin <= size);
  const uint64_t buffer_size = size - layout.buffer_begin;
  uint64_t covered = 0;
  for (const auto& e : layout.entries) {
    FUZZ_CHECK(e.begin <= e.end && e.end <= buffer_size);
    uint64_t bytes_needed = e.element_size;
    for (int64_t d : e.shape) bytes_needed *= uint64_t(d);  // parse_layout ruled out overflow
    FUZZ_CHECK(bytes_needed == e.end - e.begin);
    const std::string copy(bytes + layout.buffer_begin + e.begin, e.end - e.begin);  // as copy_tensor reads
    covered += copy.size();
  }
  FUZZ_CHECK(covered == buffer_size);
  return 0;
}
