#include "lesseg/engine/checkpoint.h"

#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/core/sha256.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {
std::string checkpoint_stem(int64_t iter) {
  char name[32];
  std::snprintf(name, sizeof(name), "ckpt_%08lld", static_cast<long long>(iter));
  return name;
}

std::vector<fs::path> checkpoint_jsons(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto& p = entry.path();
    if (p.extension() == ".json" && p.filename().string().rfind("ckpt_", 0) == 0) out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

void remove_leftovers(const fs::path& dir) {
  remove_stale_temp_files(dir);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const fs::path& p = entry.path();
    if (p.extension() == ".safetensors" && p.filename().string().rfind("ckpt_", 0) == 0 &&
        !fs::exists(fs::path(p).replace_extension(".json"), ec))
      fs::remove(p, ec);  // a tensor file whose manifest was never written or already retired
  }
}

fs::path save_checkpoint(const fs::path& dir, int64_t iter, const Checkpoint& checkpoint, int keep) {
  fs::create_directories(dir);
  remove_leftovers(dir);
  const std::string stem = checkpoint_stem(iter);
  const std::string bytes = safetensors_bytes(checkpoint.tensors, {});
  write_file_atomic(dir / (stem + ".safetensors"), bytes);
  nlohmann::json state = checkpoint.state;
  state["tensors"] = stem + ".safetensors";
  state["tensors_sha256"] = sha256_hex(bytes);
  write_file_atomic(dir / (stem + ".json"), state.dump(2));
  write_file_atomic(dir / "latest", stem + ".json\n");
  // Retention runs only after `latest` names the new checkpoint. The manifest goes first, so a kill
  // in between leaves an orphan tensor file (removed by the next save), never a manifest without data.
  auto all = checkpoint_jsons(dir);
  for (size_t i = 0; keep > 0 && i + keep < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i], ec);
    fs::remove(fs::path(all[i]).replace_extension(".safetensors"), ec);
  }
  return dir / (stem + ".json");
}

Checkpoint load_checkpoint(const fs::path& json_file) {
  Checkpoint checkpoint;
  checkpoint.manifest = json_file;
  try {
    checkpoint.state = nlohmann::json::parse(read_file(json_file));
  } catch (const nlohmann::json::exception& e) {
    throw_bad_weights(json_file, std::string("checkpoint manifest is not valid JSON: ") + e.what());
  }
  const auto& state = checkpoint.state;
  if (!state.is_object() || !state.contains("tensors") || !state["tensors"].is_string())
    throw_bad_weights(json_file, "checkpoint manifest names no tensor file");
  if (!state.contains("tensors_sha256") || !state["tensors_sha256"].is_string())
    throw_bad_weights(json_file, "checkpoint manifest has no SHA-256 of its tensor file");
  const fs::path tensors = json_file.parent_path() / state["tensors"].get<std::string>();
  std::error_code ec;
  if (!fs::is_regular_file(tensors, ec)) throw_bad_weights(tensors, "checkpoint tensor file is missing");
  // The hash is checked before the file is parsed: a truncated or bit-flipped file never reaches the parser.
  const std::string expected = state["tensors_sha256"].get<std::string>(), actual = sha256_file_hex(tensors);
  if (actual != expected)
    throw_bad_weights(tensors, "SHA-256 mismatch (the file is truncated or corrupted): manifest " + expected.substr(0, 16) +
                                   "..., file " + actual.substr(0, 16) + "...");
  checkpoint.tensors = load_safetensors(tensors).tensors;
  return checkpoint;
}

bool has_checkpoint(const fs::path& dir) { return !checkpoint_jsons(dir).empty(); }

std::optional<Checkpoint> load_latest_checkpoint(const fs::path& dir) {
  std::error_code ec;
  auto all = checkpoint_jsons(dir);
  if (!fs::is_regular_file(dir / "latest", ec) && all.empty()) return std::nullopt;
  // Try `latest` first, then every other manifest from the newest down.
  std::vector<fs::path> candidates;
  if (fs::is_regular_file(dir / "latest", ec)) {
    std::string name = read_file(dir / "latest");
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    candidates.push_back(dir / name);
  }
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if (candidates.empty() || *it != candidates.front()) candidates.push_back(*it);
  std::string failures;
  for (const auto& manifest : candidates) {
    try {
      Checkpoint checkpoint = load_checkpoint(manifest);
      if (!failures.empty()) spdlog::warn("skipped unusable checkpoints, resuming from {}:{}", manifest.string(), failures);
      checkpoint.skipped = failures;
      return checkpoint;
    } catch (const Error& e) {
      if (e.code() != ExitCode::bad_weights && e.code() != ExitCode::bad_input) throw;
      failures += "\n  " + std::string(e.what());
    }
  }
  throw_bad_weights(dir, "no usable checkpoint (delete the folder or use another --run-dir to start over):" + failures);
}

std::vector<std::pair<std::string, at::Tensor>> module_tensors(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : module.named_parameters(true)) out.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(true)) out.emplace_back(item.key(), item.value());
  return out;
}

void load_module_tensors(torch::nn::Module& module, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                         const fs::path& origin, bool allow_partial) {
  std::map<std::string, at::Tensor> given(tensors.begin(), tensors.end());
  std::vector<std::string> missing, mismatched;
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : module_tensors(module)) {
    auto it = given.find(name);
    if (it == given.end()) {
      missing.push_back(name);
      continue;
    }
    used.insert(name);
    if (it->second.sizes() != target.sizes()) {
      std::ostringstream why;
      why << name << " (file " << it->second.sizes() << ", model " << target.sizes() << ")";
      mismatched.push_back(why.str());
      continue;
    }
    target.copy_(it->second.to(target.device(), target.scalar_type()));
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, _] : given)
    if (!used.count(name)) unexpected.push_back(name);
  if (allow_partial || (missing.empty() && unexpected.empty() && mismatched.empty())) return;
  std::ostringstream report;
  report << "weights do not match the model: " << missing.size() << " missing, " << unexpected.size()
         << " unexpected, " << mismatched.size() << " shape-mismatched keys";
  auto list = [&](const char* title, const std::vector<std::string>& keys) {
    for (size_t i = 0; i < keys.size() && i < 10; ++i) report << "\n  " << title << ": " << keys[i];
    if (keys.size() > 10) report << "\n  ... " << keys.size() - 10 << " more " << title;
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("shape mismatch", mismatched);
  throw_bad_weights(origin, report.str());
}

}  // namespace lesseg
