#include "lesseg/core/config.h"

#include <algorithm>
#include <map>
#include <optional>
#include <sstream>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"

namespace lesseg {
namespace {

std::vector<std::string> split_path(const std::string& key_path) {
  std::vector<std::string> parts;
  std::stringstream stream(key_path);
  std::string part;
  while (std::getline(stream, part, '.')) {
    if (part.empty()) throw_usage("config: empty component in key path '" + key_path + "'");
    parts.push_back(part);
  }
  return parts;
}

enum class Kind { null, boolean, integer, real, string, sequence, map };

Kind scalar_kind(const YAML::Node& node) {
  if (node.IsNull()) return Kind::null;
  if (node.IsSequence()) return Kind::sequence;
  if (node.IsMap()) return Kind::map;
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return Kind::string;  // explicitly quoted
  bool b;
  int64_t i;
  double d;
  if (YAML::convert<bool>::decode(node, b) && text != "0" && text != "1") return Kind::boolean;
  if (YAML::convert<int64_t>::decode(node, i)) return Kind::integer;
  if (YAML::convert<double>::decode(node, d)) return Kind::real;
  return Kind::string;
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::null: return "null";
    case Kind::boolean: return "a boolean";
    case Kind::integer: return "an integer";
    case Kind::real: return "a number";
    case Kind::string: return "a string";
    case Kind::sequence: return "a list";
    case Kind::map: return "a mapping";
  }
  return "?";
}

bool compatible(Kind expected, Kind given) {
  if (expected == Kind::null || expected == given) return true;
  if (expected == Kind::real && given == Kind::integer) return true;
  // A null default accepts anything; a string default accepts plain words that look like numbers.
  if (expected == Kind::string && (given == Kind::integer || given == Kind::real || given == Kind::boolean))
    return true;
  return false;
}

// Merges `user` into `base`, checking keys and types against `schema` (the defaults: a value set
// earlier, e.g. `lr: 1` in a file, must not narrow what a later --set may give).
void merge_checked(YAML::Node base, const YAML::Node& user, const std::string& prefix, const std::string& origin,
                   const YAML::Node& schema) {
  if (!user.IsMap()) throw_usage(origin + ": expected a mapping at '" + (prefix.empty() ? "<root>" : prefix) + "'");
  for (const auto& entry : user) {
    const std::string key = entry.first.as<std::string>();
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    const YAML::Node expected_node = schema.IsMap() ? schema[key] : YAML::Node();
    if (!base.IsMap() || !expected_node.IsDefined()) throw_usage(origin + ": unknown config key '" + path + "'");
    YAML::Node target = base[key];
    Kind expected = scalar_kind(expected_node), given = scalar_kind(entry.second);
    if (expected == Kind::map) {
      merge_checked(target, entry.second, path, origin, expected_node);
      continue;
    }
    if (!compatible(expected, given))
      throw_usage(origin + ": config key '" + path + "' must be " + kind_name(expected) + ", got " +
                  kind_name(given) + " ('" + YAML::Dump(entry.second) + "')");
    base[key] = YAML::Clone(entry.second);
  }
}

YAML::Node parse_yaml(const std::string& text, const std::string& origin) {
  try {
    YAML::Node node = YAML::Load(text);
    return node.IsNull() ? YAML::Node(YAML::NodeType::Map) : node;
  } catch (const YAML::Exception& e) {
    throw_usage(origin + ": invalid YAML: " + e.what());
  }
}

// Child over base, unchecked (each file is checked on its own): maps merge key by key, anything
// else replaces.
void merge_over(YAML::Node base, const YAML::Node& child) {
  for (const auto& entry : child) {
    const std::string key = entry.first.as<std::string>();
    YAML::Node target = base[key];
    if (target.IsMap() && entry.second.IsMap())
      merge_over(target, entry.second);
    else
      base[key] = YAML::Clone(entry.second);
  }
}

using Path = std::filesystem::path;

// Canonical paths, so that "a.yaml" and "./a.yaml" are one file.
void refuse_cycle(const Path& file, const std::vector<Path>& chain) {
  const Path id = std::filesystem::weakly_canonical(file);
  auto same = [&](const Path& earlier) { return std::filesystem::weakly_canonical(earlier) == id; };
  if (std::none_of(chain.begin(), chain.end(), same)) return;
  std::string text;
  for (const Path& earlier : chain) text += earlier.string() + " -> ";
  throw_usage("config inheritance cycle: " + text + file.string());
}

// Removes `_base_` from `tree` and returns the file it names, resolved against `file`'s folder.
std::optional<Path> take_base(YAML::Node tree, const Path& file) {
  const YAML::Node& view = tree;  // a non-const operator[] would insert the key
  if (!tree.IsMap() || !view["_base_"].IsDefined()) return std::nullopt;
  const YAML::Node value = view["_base_"];
  if (scalar_kind(value) != Kind::string || value.Scalar().empty())
    throw_usage(file.string() + ": _base_ must be a file name (a string), got '" + YAML::Dump(value) + "'");
  tree.remove("_base_");
  const Path base = (file.parent_path() / value.Scalar()).lexically_normal();
  if (!std::filesystem::is_regular_file(base))
    throw_usage(file.string() + ": _base_ '" + value.Scalar() + "' not found (" + base.string() + ")");
  return base;
}

// `file` merged over its `_base_` chain; `chain` holds the files that named this one.
YAML::Node load_with_bases(const Path& file, std::vector<Path>& chain) {
  refuse_cycle(file, chain);
  YAML::Node tree = parse_yaml(read_file(file), file.string());
  const std::optional<Path> base = take_base(tree, file);
  // Checked per file so an error names the file that has the bad key.
  merge_checked(YAML::Load(default_config_yaml()), tree, "", file.string(), YAML::Load(default_config_yaml()));
  if (!base) return tree;
  chain.push_back(file);
  YAML::Node merged = load_with_bases(*base, chain);
  merge_over(merged, tree);
  return merged;
}

}  // namespace

Config::Config() : root_(YAML::Load(default_config_yaml())) {}

Config Config::load(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  Config config;
  if (!file.empty()) {
    if (!std::filesystem::is_regular_file(file)) throw_usage(file.string() + ": config file not found");
    std::vector<Path> chain;
    merge_checked(config.root_, load_with_bases(file, chain), "", file.string(), YAML::Load(default_config_yaml()));
  }
  for (const std::string& item : overrides) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) throw_usage("--set '" + item + "': expected key.path=value");
    config.set(item.substr(0, eq), item.substr(eq + 1));
  }
  return config;
}

Config Config::from_yaml_text(const std::string& text, const std::string& origin) {
  Config config;
  merge_checked(config.root_, parse_yaml(text, origin), "", origin, YAML::Load(default_config_yaml()));
  return config;
}

void Config::set(const std::string& key_path, const std::string& yaml_value) {
  auto parts = split_path(key_path);
  YAML::Node leaf = parse_yaml("v: " + (yaml_value.empty() ? std::string("''") : yaml_value), "--set " + key_path)["v"];
  // Build {a: {b: value}} bottom-up and merge it so the same checks apply.
  YAML::Node user = leaf;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    YAML::Node parent(YAML::NodeType::Map);
    parent[*it] = user;
    user.reset(parent);
  }
  merge_checked(root_, user, "", "--set " + key_path, YAML::Load(default_config_yaml()));
}

// Walks with const nodes: a non-const operator[] would insert missing keys into root_.
YAML::Node Config::lookup(const std::string& key_path) const {
  YAML::Node node;
  node.reset(root_);
  for (const std::string& part : split_path(key_path)) {
    const YAML::Node& current = node;
    if (!current.IsMap() || !current[part].IsDefined())
      throw Error(ExitCode::internal, "config key '" + key_path + "' is not defined in the defaults");
    node.reset(current[part]);
  }
  return node;
}

bool Config::has(const std::string& key_path) const {
  YAML::Node node;
  node.reset(root_);
  for (const std::string& part : split_path(key_path)) {
    const YAML::Node& current = node;
    if (!current.IsMap() || !current[part].IsDefined()) return false;
    node.reset(current[part]);
  }
  return !node.IsNull();
}

Config::Config(const Config& other) : root_(YAML::Clone(other.root_)) {}

Config& Config::operator=(const Config& other) {
  root_ = YAML::Clone(other.root_);
  return *this;
}

namespace {
void flatten(const YAML::Node& node, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& entry : node)
      flatten(entry.second, prefix.empty() ? entry.first.as<std::string>() : prefix + "." + entry.first.as<std::string>(), out);
    return;
  }
  YAML::Emitter text;
  text << YAML::Flow << node;
  out[prefix] = text.c_str();
}
}  // namespace

std::vector<std::string> Config::differences(const Config& other) const {
  std::map<std::string, std::string> mine, theirs;
  flatten(root_, "", mine);
  flatten(other.root_, "", theirs);
  std::vector<std::string> out;
  for (const auto& [key, value] : mine) {
    auto it = theirs.find(key);
    std::string other_value = it == theirs.end() ? "<absent>" : it->second;
    if (other_value != value) out.push_back(key + ": " + value + " -> " + other_value);
  }
  for (const auto& [key, value] : theirs)
    if (!mine.count(key)) out.push_back(key + ": <absent> -> " + value);
  return out;
}

template <typename T>
T Config::get(const std::string& key_path) const {
  YAML::Node node = lookup(key_path);
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw_usage("config key '" + key_path + "' has an invalid value '" + YAML::Dump(node) + "'");
  }
}

template bool Config::get<bool>(const std::string&) const;
template int Config::get<int>(const std::string&) const;
template int64_t Config::get<int64_t>(const std::string&) const;
template double Config::get<double>(const std::string&) const;
template std::string Config::get<std::string>(const std::string&) const;
template std::vector<double> Config::get<std::vector<double>>(const std::string&) const;
template std::vector<int> Config::get<std::vector<int>>(const std::string&) const;
template std::vector<int64_t> Config::get<std::vector<int64_t>>(const std::string&) const;
template std::vector<std::string> Config::get<std::vector<std::string>>(const std::string&) const;
template std::vector<std::vector<double>> Config::get<std::vector<std::vector<double>>>(const std::string&) const;

std::string yaml_quoted(const std::string& text) {
  YAML::Emitter out;
  out << YAML::DoubleQuoted << text;
  return out.c_str();
}

std::string Config::dump() const {
  YAML::Emitter out;
  out << root_;
  return std::string(out.c_str()) + "\n";
}

}  // namespace lesseg
