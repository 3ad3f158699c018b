#pragma once
// Run configuration: YAML files merged over lesseg's defaults, plus `--set a.b=c` overrides.
// The defaults double as the schema: a key that is not in them, or a value whose type differs
// from the default's, is a usage error naming the key path.
#include <filesystem>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace lesseg {

class Config {
 public:
  // Defaults only.
  Config();
  // Copies are deep: yaml-cpp nodes otherwise share one tree.
  Config(const Config& other);
  Config& operator=(const Config& other);
  // Defaults <- file (if not empty) <- overrides ("a.b=c", value parsed as YAML). A file's
  // top-level `_base_: path` (relative to that file) is loaded first and the file merged over it.
  static Config load(const std::filesystem::path& file, const std::vector<std::string>& overrides);
  // Rebuilds from a resolved YAML text (as written to a run folder), validated the same way.
  static Config from_yaml_text(const std::string& text, const std::string& origin);

  template <typename T>
  T get(const std::string& key_path) const;
  bool has(const std::string& key_path) const;
  void set(const std::string& key_path, const std::string& yaml_value);

  std::string dump() const;  // resolved YAML
  // "key.path: mine -> other" for every leaf that differs.
  std::vector<std::string> differences(const Config& other) const;
  const YAML::Node& root() const { return root_; }

 private:
  YAML::Node lookup(const std::string& key_path) const;
  YAML::Node root_;
};

// `text` as a YAML string scalar, for Config::set (a path or name that could read as YAML syntax).
std::string yaml_quoted(const std::string& text);

// The built-in defaults (also the schema), as YAML text.
const char* default_config_yaml();

}  // namespace lesseg
