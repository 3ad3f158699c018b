#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/methods/instance_model.h"
#include "lesseg/methods/predict.h"
#include "lesseg/methods/pseudo/pseudo.h"

namespace lesseg::cli {

namespace {

bool is_instance_model(const std::string& weights) {
  return load_safetensors(weights).metadata["lesseg.kind"] == "instance_segmenter";
}

// One folder: every image under it, named relative to it; else the files as given.
void image_list(const std::vector<std::string>& args, std::filesystem::path& root,
                std::vector<std::filesystem::path>& files) {
  if (args.size() == 1 && std::filesystem::is_directory(args[0])) {
    root = args[0];
    files = list_image_files(root);
    return;
  }
  files.assign(args.begin(), args.end());
}

}  // namespace

void register_predict(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "predict",
      "Run a trained model on images. Semantic segmenters: a class-index PNG and a colour overlay per image; "
      "instance segmenters (cutler): OUT/instances.json (COCO, scored masks) and an overlay per image");
  struct Args {
    std::string weights, out, device = "cpu";
    std::vector<std::string> images;
    int threads = 0, max_size = 0;
    bool no_overlays = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--weights", args->weights, "Model weights (model.safetensors)")->required();
  cmd->add_option("--out", args->out, "Output folder")->required();
  cmd->add_option("images", args->images, "Image files, or one folder (instance models: file names relative to it)")
      ->required();
  cmd->add_option("--device", args->device, "cpu or cuda");
  cmd->add_option("--threads", args->threads, "Intra-op threads (0 = all usable cores)");
  cmd->add_flag("--no-overlays", args->no_overlays, "Instance models: write only instances.json");
  cmd->add_option("--max-size", args->max_size,
                  "Instance models: cap the longer image side at this many pixels (default: the model's "
                  "solo.test_max_size), e.g. to match the object sizes it was trained on")
      ->check(CLI::Range(32, 100000));
  cmd->callback([args] {
    apply_threads(args->threads);
    torch::Device device(args->device);
    std::filesystem::path root;
    std::vector<std::filesystem::path> images;
    image_list(args->images, root, images);
    if (is_instance_model(args->weights)) {
      SavedInstanceModel saved = load_instance_model(args->weights, device);
      if (args->max_size > 0) saved.input.max_size = args->max_size;
      const std::filesystem::path out = args->out;
      coco::Dataset predictions =
          predict_instance_files(saved, root, images, device, args->no_overlays ? std::filesystem::path() : out);
      coco::write(out / "instances.json", predictions);
      std::cout << "wrote " << predictions.annotations.size() << " instances of " << images.size() << " images to "
                << (out / "instances.json").string() << "\n";
      return;
    }
    SavedSegmenter saved = load_segmenter(args->weights, device);
    for (auto& image : images) image = root / image;
    predict_files(saved, images, args->out, device);
    std::cout << "wrote " << images.size() << " predictions to " << args->out << "\n";
  });
}

}  // namespace lesseg::cli
