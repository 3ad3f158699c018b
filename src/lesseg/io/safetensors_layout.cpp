#include "lesseg/io/safetensors_layout.h"

#include <algorithm>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "lesseg/core/error.h"

namespace lesseg::safetensors {
namespace {

constexpr uint64_t kMaxHeader = 100'000'000;

const std::vector<std::pair<std::string, size_t>>& dtype_sizes() {
  static const std::vector<std::pair<std::string, size_t>> table = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  return table;
}

bool dtype_from_name(const std::string& name, size_t& element_size) {
  for (const auto& [n, size] : dtype_sizes())
    if (n == name) {
      element_size = size;
      return true;
    }
  return false;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int extra;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (c < 0x80) extra = 0;
    else if (c >= 0xC2 && c <= 0xDF) extra = 1;
    else if (c >= 0xE0 && c <= 0xEF) extra = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) extra = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return false;
    if (i + extra >= s.size() + (extra == 0)) return false;
    for (int k = 1; k <= extra; ++k) {
      const unsigned char b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += extra + 1;
  }
  return true;
}

Entry parse_entry(const std::string& name, const nlohmann::json& info, const std::filesystem::path& origin) {
  auto bad = [&](const std::string& reason) { throw_bad_weights(origin, "tensor '" + name + "': " + reason); };
  if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
    bad("entry needs dtype, shape and data_offsets");
  Entry e;
  e.name = name;
  if (!info["dtype"].is_string() || !dtype_from_name(info["dtype"].get<std::string>(), e.element_size))
    bad("unknown dtype " + (info["dtype"].is_structured() ? std::string("<") + info["dtype"].type_name() + ">"
                                                           : info["dtype"].dump()));  // dump() recurses
  e.dtype = info["dtype"].get<std::string>();
  const auto& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
    bad("data_offsets must be two non-negative integers");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.end < e.begin) bad("data_offsets end before begin");
  if (!info["shape"].is_array()) bad("shape must be a list");
  unsigned __int128 bytes = e.element_size;
  for (const auto& dim : info["shape"]) {
    if (!dim.is_number_unsigned()) bad("shape entries must be non-negative integers");
    uint64_t d = dim.get<uint64_t>();
    if (d > uint64_t(INT64_MAX)) bad("shape entry too large");
    bytes *= d;
    if (bytes > (unsigned __int128)UINT64_MAX) bad("shape x dtype size overflows");
    e.shape.push_back(static_cast<int64_t>(d));
  }
  if (bytes != e.end - e.begin)
    bad("shape x dtype size (" + std::to_string(uint64_t(bytes)) + " bytes) != data span (" +
        std::to_string(e.end - e.begin) + " bytes)");
  return e;
}

}  // namespace

const std::vector<std::string>& dtype_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& [name, size] : dtype_sizes()) n.push_back(name);
    return n;
  }();
  return names;
}

Layout parse_layout(const char* head, uint64_t size, const std::filesystem::path& origin) {
  if (size < 8) throw_bad_weights(origin, "file too small for a safetensors header (" + std::to_string(size) + " bytes)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(head[i])) << (8 * i);
  if (n > kMaxHeader) throw_bad_weights(origin, "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  if (n < 2 || 8 + n > size) throw_bad_weights(origin, "header length " + std::to_string(n) + " does not fit the file");
  std::string text(head + 8, n);
  if (text[0] != '{') throw_bad_weights(origin, "header does not start with '{'");
  if (!valid_utf8(text)) throw_bad_weights(origin, "header is not valid UTF-8");
  std::set<std::string> seen;
  std::string duplicate_name;
  auto parser = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second)
      duplicate_name = parsed.get<std::string>();
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, parser);
  } catch (const nlohmann::json::exception& e) {
    throw_bad_weights(origin, std::string("header is not valid JSON: ") + e.what());
  }
  if (!duplicate_name.empty()) throw_bad_weights(origin, "duplicate tensor name '" + duplicate_name + "'");
  if (!header.is_object()) throw_bad_weights(origin, "header is not a JSON object");
  Layout layout;
  layout.buffer_begin = 8 + n;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) throw_bad_weights(origin, "__metadata__ must be an object of strings");
      for (auto& [k, v] : info.items()) {
        if (!v.is_string()) throw_bad_weights(origin, "__metadata__ value of '" + k + "' is not a string");
        layout.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    layout.entries.push_back(parse_entry(name, info, origin));
  }
  const uint64_t buffer_size = size - layout.buffer_begin;
  std::vector<const Entry*> by_offset;
  for (const auto& e : layout.entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  for (const Entry* e : by_offset) {
    if (e->end > buffer_size) throw_bad_weights(origin, "tensor '" + e->name + "' data_offsets out of range of the file");
    if (e->begin < expected) throw_bad_weights(origin, "tensor '" + e->name + "' overlaps another tensor");
    if (e->begin > expected) throw_bad_weights(origin, "hole in the data buffer before tensor '" + e->name + "'");
    expected = e->end;
  }
  if (expected != buffer_size)
    throw_bad_weights(origin, "data buffer has " + std::to_string(buffer_size - expected) +
                                  " trailing bytes not covered by any tensor");
  return layout;
}

}  // namespace lesseg::safetensors
