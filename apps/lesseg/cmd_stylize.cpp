// `lesseg stylize`: source images re-rendered in the look of target images by a stylizer that needs
// no training (FDA, AdaIN statistics), written as PNGs, with a source / stylized / target grid.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "lesseg/core/error.h"
#include "lesseg/io/image_io.h"
#include "lesseg/methods/pseudo/pseudo.h"
#include "lesseg/methods/uda/stylizers.h"

namespace lesseg::cli {
namespace {
namespace fs = std::filesystem;

cv::Mat at_height(const cv::Mat& rgb, int height) {
  cv::Mat out;
  const int width = std::max(1, static_cast<int>(std::lround(double(rgb.cols) * height / rgb.rows)));
  cv::resize(rgb, out, cv::Size(width, height), 0, 0, cv::INTER_AREA);
  return out;
}

// Whether `path` (existing or not, relative or not) is `folder` or lies under it.
bool inside(const fs::path& path, const fs::path& folder) {
  const fs::path full = fs::weakly_canonical(fs::absolute(path)), base = fs::canonical(folder);
  return std::mismatch(base.begin(), base.end(), full.begin(), full.end()).first == base.end();
}

// Each source image gets OUT/<relative name>.png: two sources with one stem (a.jpg, a.png), or one
// named like the grid, would overwrite each other.
void check_output_names(const std::vector<fs::path>& sources, const fs::path& out) {
  std::map<fs::path, fs::path> written{{out / "stylize_grid.png", "the grid"}};
  for (const fs::path& name : sources) {
    fs::path file = out / name;
    file.replace_extension(".png");
    auto [it, fresh] = written.emplace(file, name);
    if (!fresh) throw_usage("--source: " + name.string() + " and " + it->second.string() + " would both be written to " + file.string());
  }
}

fs::path existing_folder(const std::string& path, const char* option) {
  if (!fs::is_directory(path)) throw_usage(std::string(option) + " " + path + ": not a folder");
  return fs::path(path);
}

}  // namespace

void register_stylize(CLI::App& app) {
  auto* cmd = app.add_subcommand("stylize", "Write source images stylized toward target images (fda | adain) and a "
                                            "source / stylized / target grid (stylize_grid.png)");
  struct Args {
    std::string source, target, out;
    FastStylizerOptions options;
    int64_t limit = 0;
    int grid_rows = 6, threads = 0;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--source", args->source, "Folder of source images (searched recursively)")->required();
  cmd->add_option("--target", args->target, "Folder of target images: source image i takes the style of target i mod count")->required();
  cmd->add_option("--out", args->out, "Output folder (PNG per source image, same relative names)")->required();
  cmd->add_option("--stylizer", args->options.name, "fda (Fourier amplitude swap) or adain (channel statistics)")
      ->check(CLI::IsMember({"fda", "adain"}));
  cmd->add_option("--beta", args->options.fda_beta, "FDA: the swapped low-frequency square's half side / min(H, W) (0.01-0.09)");
  cmd->add_option("--strength", args->options.adain_strength, "AdaIN: blend of the moved statistics, 0..1");
  cmd->add_option("--limit", args->limit, "At most this many source images (0 = all)");
  cmd->add_option("--grid-rows", args->grid_rows, "Rows of the grid image");
  cmd->add_option("--threads", args->threads, "Intra-op threads (0 = all usable cores)");
  cmd->callback([args] {
    apply_threads(args->threads);
    const fs::path source = existing_folder(args->source, "--source"), target = existing_folder(args->target, "--target");
    const fs::path out(args->out);
    for (const auto& [folder, option] : {std::pair{source, "--source"}, std::pair{target, "--target"}})
      if (inside(out, folder))
        throw_usage("--out " + args->out + " is inside the " + option + " folder: its images could be overwritten or read back");
    if (args->grid_rows < 1) throw_usage("--grid-rows must be at least 1");
    auto stylizer = make_fast_stylizer(args->options);
    std::vector<fs::path> sources = list_image_files(source);  // none: an error naming the folder
    const std::vector<fs::path> targets = list_image_files(target);
    if (args->limit > 0 && static_cast<int64_t>(sources.size()) > args->limit) sources.resize(args->limit);
    check_output_names(sources, out);
    std::vector<cv::Mat> rows;
    for (size_t i = 0; i < sources.size(); ++i) {
      const cv::Mat s = read_image_rgb(source / sources[i]), t = read_image_rgb(target / targets[i % targets.size()]);
      const cv::Mat styled = stylize_image(*stylizer, s, t);
      fs::path written = out / sources[i];
      written.replace_extension(".png");
      fs::create_directories(written.parent_path());
      write_image_rgb(written, styled);
      if (static_cast<int>(rows.size()) < args->grid_rows) {
        cv::Mat row;
        cv::hconcat(std::vector<cv::Mat>{at_height(s, 160), at_height(styled, 160), at_height(t, 160)}, row);
        rows.push_back(row);
      }
    }
    int width = 0;
    for (const cv::Mat& row : rows) width = std::max(width, row.cols);
    for (cv::Mat& row : rows)  // rows of different widths padded on the right
      if (row.cols < width) cv::copyMakeBorder(row, row, 0, 0, 0, width - row.cols, cv::BORDER_CONSTANT, cv::Scalar(255, 255, 255));
    cv::Mat grid;
    cv::vconcat(rows, grid);
    write_image_rgb(out / "stylize_grid.png", grid);
    std::cout << "stylized " << sources.size() << " images (" << stylizer->name() << ") into " << out.string()
              << "; rows of source | stylized | target: " << (out / "stylize_grid.png").string() << "\n";
  });
}

}  // namespace lesseg::cli
