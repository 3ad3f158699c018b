#include "lesseg/data/classes.h"

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {

std::array<uint8_t, 3> parse_color(const fs::path& path, const YAML::Node& node, size_t index) {
  const std::string where = "colors[" + std::to_string(index) + "]";
  if (!node.IsSequence() || node.size() != 3) throw_bad_input(path, where + " must be [r, g, b]");
  std::array<uint8_t, 3> rgb{};
  for (size_t c = 0; c < 3; ++c) {
    int v = node[c].as<int>();
    if (v < 0 || v > 255) throw_bad_input(path, where + " has " + std::to_string(v) + ", outside 0..255");
    rgb[c] = static_cast<uint8_t>(v);
  }
  return rgb;
}

std::vector<std::string> parse_names(const fs::path& path, const YAML::Node& node) {
  if (!node || !node.IsSequence() || node.size() == 0)
    throw_bad_input(path, "'names' must be a non-empty list of class names");
  std::vector<std::string> names;
  for (const auto& n : node) names.push_back(n.as<std::string>());
  return names;
}

// Masks are CV_8U, so classes and the ignore index must share 0..255 without overlapping.
void check_classes(const fs::path& path, const ClassInfo& info) {
  if (info.ignore_index < 0 || info.ignore_index > 255)
    throw_bad_input(path, "ignore_index " + std::to_string(info.ignore_index) + " is outside 0..255");
  if (info.ignore_index < info.num_classes())
    throw_bad_input(path, "ignore_index " + std::to_string(info.ignore_index) +
                              " collides with a class index (" + std::to_string(info.num_classes()) +
                              " classes)");
}

ClassInfo parse_classes(const fs::path& path, const YAML::Node& root) {
  if (!root.IsMap()) throw_bad_input(path, "expected a mapping with 'names'");
  static const std::set<std::string> known{"names", "colors", "ignore_index"};
  for (const auto& kv : root) {
    const auto key = kv.first.as<std::string>();
    if (!known.count(key))
      throw_bad_input(path, "unknown key '" + key + "' (known: names, colors, ignore_index)");
  }
  ClassInfo info;
  info.names = parse_names(path, root["names"]);
  if (const auto colors = root["colors"]) {
    if (!colors.IsSequence() || colors.size() != info.names.size())
      throw_bad_input(
          path, "'colors' must list one [r, g, b] per name (" + std::to_string(info.names.size()) + ")");
    for (size_t i = 0; i < colors.size(); ++i) info.colors.push_back(parse_color(path, colors[i], i));
  } else {
    for (int i = 0; i < info.num_classes(); ++i) info.colors.push_back(default_class_color(i));
  }
  if (const auto ignore = root["ignore_index"]) info.ignore_index = ignore.as<int>();
  check_classes(path, info);
  return info;
}

}  // namespace

ClassInfo load_classes_yaml(const fs::path& path) {
  require_readable_file(path);
  try {
    return parse_classes(path, YAML::Load(read_file(path)));
  } catch (const YAML::Exception& e) {
    throw_bad_input(path, std::string("invalid classes YAML: ") + e.what());
  }
}

void save_classes_yaml(const fs::path& path, const ClassInfo& classes) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "names" << YAML::Value << YAML::BeginSeq;
  for (const auto& name : classes.names) out << YAML::DoubleQuoted << name;
  out << YAML::EndSeq << YAML::Key << "colors" << YAML::Value << YAML::BeginSeq;
  for (int i = 0; i < classes.num_classes(); ++i) {
    const auto c = size_t(i) < classes.colors.size() ? classes.colors[i] : default_class_color(i);
    out << YAML::Flow << YAML::BeginSeq << int(c[0]) << int(c[1]) << int(c[2]) << YAML::EndSeq;
  }
  out << YAML::EndSeq << YAML::Key << "ignore_index" << YAML::Value << classes.ignore_index << YAML::EndMap;
  write_file_atomic(path, std::string(out.c_str()) + "\n");
}

std::array<uint8_t, 3> default_class_color(int i) {
  // The VOC bit-interleave scheme: stable, and neighbouring indices get very different colours.
  int id = ((i % 256) + 256) % 256;
  int r = 0, g = 0, b = 0;
  // Bits 0, 1, 2 of each 3-bit group of the index fill R, G, B from the most significant bit down.
  for (int bit = 7; id > 0; --bit, id >>= 3) {
    r |= (id & 1) << bit;
    g |= ((id >> 1) & 1) << bit;
    b |= ((id >> 2) & 1) << bit;
  }
  return {uint8_t(r), uint8_t(g), uint8_t(b)};
}

Palette voc_palette() {
  Palette palette(256);
  for (int i = 0; i < 256; ++i) palette[i] = default_class_color(i);
  return palette;
}

}  // namespace lesseg
