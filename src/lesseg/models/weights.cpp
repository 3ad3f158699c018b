#include "lesseg/models/weights.h"

#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/io/pth.h"
#include "lesseg/io/safetensors.h"

namespace lesseg {
namespace fs = std::filesystem;
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// The shortest prefix of `name` (at least `scope`, cut after a '.') whose remainder is a model name.
std::optional<std::string> model_prefix(const std::string& name, const std::string& scope,
                                        const std::set<std::string>& model_names) {
  for (size_t cut = scope.size();;) {
    if (model_names.count(name.substr(cut))) return name.substr(0, cut);
    const size_t dot = name.find('.', cut);
    if (dot == std::string::npos) return std::nullopt;
    cut = dot + 1;
  }
}

// Every such prefix among the file's names under `scope`, with how many names it explains.
std::map<std::string, size_t> prefix_votes(const std::set<std::string>& model_names, const NamedTensors& file,
                                           const std::string& scope) {
  std::map<std::string, size_t> votes;
  for (const auto& [name, _] : file)
    if (starts_with(name, scope))
      if (auto prefix = model_prefix(name, scope, model_names)) ++votes[*prefix];
  return votes;
}

// The prefix explaining the most names; two different sub-dicts explaining as many is ambiguous.
std::string choose_prefix(const std::map<std::string, size_t>& votes, const fs::path& origin) {
  std::string best;
  size_t best_count = 0;
  std::vector<std::string> tied;
  for (const auto& [prefix, count] : votes) {
    if (count > best_count) best = prefix, best_count = count, tied = {prefix};
    else if (count == best_count) tied.push_back(prefix);
  }
  if (tied.size() > 1) {
    std::string names;
    for (const auto& p : tied) names += (names.empty() ? "'" : ", '") + p + "'";
    throw Error(ExitCode::usage, origin.string() + ": several state dicts fit the model equally well (" + names +
                                     "); choose one with --key (e.g. --key teacher)");
  }
  return best;
}

std::string shape_text(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

}  // namespace

std::string WeightReport::summary(size_t list_at_most) const {
  std::ostringstream out;
  out << matched.size() << " matched, " << missing.size() << " missing, " << unexpected.size() << " unexpected, "
      << mismatched.size() << " shape-mismatched";
  if (!prefix.empty()) out << " (stripped prefix '" << prefix << "')";
  if (ignored) out << "; " << ignored << " tensors outside it ignored";
  if (defaulted) out << "; " << defaulted << " BatchNorm step counters absent (kept at 0)";
  auto list = [&](const char* title, const std::vector<std::string>& keys) {
    for (size_t i = 0; i < keys.size() && i < list_at_most; ++i) out << "\n  " << title << ": " << keys[i];
    if (keys.size() > list_at_most) out << "\n  ... " << keys.size() - list_at_most << " more " << title;
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("shape mismatch", mismatched);
  return out.str();
}

NamedTensors read_weight_file(const fs::path& path) {
  if (looks_like_pth(path)) return load_pth(path).tensors;
  return load_safetensors(path).tensors;
}

std::map<std::string, std::string> weight_file_metadata(const fs::path& path) {
  if (looks_like_pth(path)) return {};
  return load_safetensors(path).metadata;
}

WeightReport match_weights(const NamedTensors& model, const NamedTensors& file, const WeightOptions& options,
                           const fs::path& origin, NamedTensors* renamed) {
  std::map<std::string, at::Tensor> model_by_name(model.begin(), model.end());
  std::set<std::string> model_names;
  for (const auto& [name, _] : model) model_names.insert(name);
  const std::string scope = options.key.empty() ? "" : options.key + ".";
  if (!scope.empty()) {
    bool any = false;
    for (const auto& [name, _] : file) any = any || starts_with(name, scope);
    if (!any) throw_bad_weights(origin, "no tensors under --key '" + options.key + "'");
  }
  WeightReport report;
  report.prefix = choose_prefix(prefix_votes(model_names, file, scope), origin);
  if (report.prefix.empty()) report.prefix = scope;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : file) {
    if (!starts_with(name, report.prefix)) {
      ++report.ignored;
      continue;
    }
    const std::string local = name.substr(report.prefix.size());
    auto it = model_by_name.find(local);
    if (it == model_by_name.end()) {
      report.unexpected.push_back(local);
      continue;
    }
    seen.insert(local);
    if (it->second.sizes() != tensor.sizes()) {
      report.mismatched.push_back(local + " (file " + shape_text(tensor) + ", model " + shape_text(it->second) + ")");
      continue;
    }
    report.matched.push_back(local);
    if (renamed) renamed->emplace_back(local, tensor);
  }
  // Like PyTorch, BatchNorm's step counter may be absent (files from before 2018); it keeps its init.
  const std::string counter = "num_batches_tracked";
  for (const auto& [name, _] : model) {
    if (seen.count(name)) continue;
    const bool is_counter = name.size() >= counter.size() && name.compare(name.size() - counter.size(), counter.size(), counter) == 0;
    if (is_counter) ++report.defaulted;
    else report.missing.push_back(name);
  }
  return report;
}

WeightReport load_weights(torch::nn::Module& module, const NamedTensors& file, const WeightOptions& options,
                          const fs::path& origin) {
  NamedTensors renamed;
  WeightReport report = match_weights(module_tensors(module), file, options, origin, &renamed);
  if (!report.complete() && !options.allow_partial)
    throw_bad_weights(origin, "weights do not fit the model (use --allow-partial to accept): " + report.summary());
  if (report.matched.empty()) throw_bad_weights(origin, "no tensor matches the model: " + report.summary());
  load_module_tensors(module, renamed, origin, /*allow_partial=*/true);
  return report;
}

WeightReport load_weights(torch::nn::Module& module, const fs::path& path, const WeightOptions& options) {
  return load_weights(module, read_weight_file(path), options, path);
}

WeightReport load_weights_best_fit(const std::vector<torch::nn::Module*>& targets, const fs::path& path,
                                   const WeightOptions& options) {
  NamedTensors file = read_weight_file(path);
  torch::nn::Module* best = targets.at(0);
  size_t best_matched = 0;
  for (auto* target : targets) {
    const size_t matched = match_weights(module_tensors(*target), file, options, path).matched.size();
    if (matched > best_matched) best = target, best_matched = matched;
  }
  return load_weights(*best, file, options, path);
}

WeightOptions weight_options_from(const Config& config) {
  WeightOptions options;
  options.key = config.get<std::string>("model.weights_key");
  options.allow_partial = config.get<bool>("model.allow_partial");
  return options;
}

void load_config_weights(const Config& config, const std::vector<torch::nn::Module*>& targets) {
  const std::string file = config.get<std::string>("model.weights");
  if (file.empty()) return;
  WeightReport report = load_weights_best_fit(targets, file, weight_options_from(config));
  spdlog::info("weights {}: {}", file, report.summary());
}

}  // namespace lesseg
