// `lesseg import` (a .pth / safetensors file -> lesseg safetensors for a named architecture) and
// `lesseg info` (the tensors in a weight file).
#include <iomanip>
#include <iostream>
#include <sstream>

#include <torch/torch.h>

#include "commands.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/io/pth.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/models/zoo.h"

namespace lesseg::cli {
namespace {

std::string dims(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

void print_info(const std::filesystem::path& path) {
  const bool pth = looks_like_pth(path);
  TensorFile file = pth ? load_pth(path) : load_safetensors(path);
  int64_t elements = 0, bytes = 0;
  size_t width = 4;
  for (const auto& [name, t] : file.tensors) width = std::max(width, name.size());
  std::cout << path.string() << " (" << (pth ? "PyTorch pickle, read without executing it" : "safetensors") << ")\n";
  for (const auto& [name, t] : file.tensors) {
    std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << name << "  " << std::setw(9)
              << c10::toString(t.scalar_type()) << dims(t) << "\n";
    elements += t.numel();
    bytes += t.numel() * static_cast<int64_t>(t.element_size());
  }
  std::cout << file.tensors.size() << " tensors, " << elements << " elements, " << bytes << " bytes\n";
  for (const auto& [key, value] : file.metadata) std::cout << "  " << key << " = " << value << "\n";
}

}  // namespace

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "List the tensors (name, dtype, shape) of a .pth or .safetensors file");
  auto file = std::make_shared<std::string>();
  cmd->add_option("file", *file, "Weight file")->required();
  cmd->callback([file] { print_info(*file); });
}

void register_import(CLI::App& app) {
  auto* cmd = app.add_subcommand("import", "Convert a .pth / .safetensors file into lesseg safetensors for an architecture");
  struct Args {
    std::string file, arch, out;
    WeightOptions weights;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("file", args->file, "PyTorch checkpoint (.pth/.pt/.th, zip or legacy) or safetensors")->required();
  cmd->add_option("--arch", args->arch, "Architecture (resnet50, vit_small16, swin_tiny, cifar_resnet20, ...)")->required();
  cmd->add_option("--key", args->weights.key, "Sub-dict of the checkpoint to take: teacher, student, model, ...");
  cmd->add_flag("--allow-partial", args->weights.allow_partial, "Accept missing or shape-mismatched keys");
  cmd->add_option("--out", args->out, "Output .safetensors")->required();
  cmd->callback([args] {
    NamedTensors file = read_weight_file(args->file);
    auto model = build_named_model(args->arch, file);
    WeightReport report = load_weights(*model, file, args->weights, args->file);
    std::cout << args->file << " -> " << args->arch << ": " << report.summary() << "\n";
    save_safetensors(args->out, module_tensors(*model),
                     {{"lesseg.arch", args->arch}, {"lesseg.source", std::filesystem::path(args->file).filename().string()}});
    std::cout << "wrote " << args->out << "\n";
  });
}

}  // namespace lesseg::cli
