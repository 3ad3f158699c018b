#pragma once
// Shared by the benchmarks: run the Python reference (tools/bench/*.py) in the same run and read the
// one JSON line it prints last; peak RSS; table cells that say n/a when a side did not run.
#include <sys/resource.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

namespace lesseg::bench {

// Runs `command` (stdout captured, stderr passed through) and parses the last line that starts with
// '{'; null (with the output on stderr) when it did not run or printed no JSON.
inline nlohmann::json run_reference(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return nullptr;
  std::string out = "\n";
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe.get())) out.append(buffer, n);
  try {
    return nlohmann::json::parse(out.substr(out.rfind("\n{") + 1));
  } catch (...) {
    std::cerr << "reference did not run: " << command << "\n" << out << "\n";
    return nullptr;
  }
}

// Peak resident set size of this process so far (getrusage ru_maxrss), in MiB.
inline double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // kilobytes on Linux
}

// `value` printed with `format`, or "n/a" when not known.
inline std::string cell(bool known, double value, const char* format) {
  char buffer[32] = "n/a";
  if (known) std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

// "1 2 3": a list of sizes for a table header or a reference's command line.
inline std::string join(const std::vector<int64_t>& values) {
  std::string out;
  for (int64_t v : values) out += (out.empty() ? "" : " ") + std::to_string(v);
  return out;
}

// Every state_dict entry (parameters and buffers) as {name: shape}, for a reference to check that it
// built the same model.
inline nlohmann::json state_shapes(const torch::nn::Module& model) {
  nlohmann::json shapes = nlohmann::json::object();
  for (const auto& item : model.named_parameters()) shapes[item.key()] = item.value().sizes().vec();
  for (const auto& item : model.named_buffers()) shapes[item.key()] = item.value().sizes().vec();
  return shapes;
}

}  // namespace lesseg::bench
