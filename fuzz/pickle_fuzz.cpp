// The restricted unpickler (pickle::unpickle) on a stream of consecutive pickles, as the legacy .pth
// reader reads them, and scalar_text on every value it builds. Bad input must end in lesseg::Error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "lesseg/core/error.h"
#include "lesseg/io/pickle.h"

namespace pickle = lesseg::pickle;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  size_t offset = 0;
  for (int k = 0; k < 8 && offset < size; ++k) {
    pickle::Pickle p;
    try {
      p = pickle::unpickle(bytes, offset, "fuzz.pth");
    } catch (const lesseg::Error& e) {
      FUZZ_CHECK(e.code() == lesseg::ExitCode::bad_weights);
      return 0;
    }
    FUZZ_CHECK(p.root != nullptr && p.end > offset && p.end <= size);
    for (const pickle::Value& v : p.arena) {
      std::string text;
      pickle::scalar_text(v, text);
      if (v.kind == pickle::Kind::tensor) {
        FUZZ_CHECK(v.tensor.storage && v.tensor.storage->kind == pickle::Kind::storage);
        FUZZ_CHECK(v.tensor.sizes.size() == v.tensor.strides.size() && v.tensor.storage_offset >= 0);
      }
    }
    offset = p.end;
  }
  return 0;
}
