#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "lesseg/methods/predict.h"

namespace lesseg::cli {

void register_predict(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict", "Segment images: a class-index PNG and a colour overlay per image");
  struct Args {
    std::string weights, out, device = "cpu";
    std::vector<std::string> images;
    int threads = 0;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--weights", args->weights, "Segmenter weights (model.safetensors)")->required();
  cmd->add_option("--out", args->out, "Output folder")->required();
  cmd->add_option("images", args->images, "Image files")->required();
  cmd->add_option("--device", args->device, "cpu or cuda");
  cmd->add_option("--threads", args->threads, "Intra-op threads (0 = all usable cores)");
  cmd->callback([args] {
    apply_threads(args->threads);
    torch::Device device(args->device);
    SavedSegmenter saved = load_segmenter(args->weights, device);
    std::vector<std::filesystem::path> images(args->images.begin(), args->images.end());
    predict_files(saved, images, args->out, device);
    std::cout << "wrote " << images.size() << " predictions to " << args->out << "\n";
  });
}

}  // namespace lesseg::cli
