#include <iostream>

#include "commands.h"
#include "lesseg/core/error.h"
#include "lesseg/data/synth/synth.h"

namespace lesseg::cli {

void register_synth(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "Write the built-in synthetic world as a dataset folder");
  struct Args {
    std::string out;
    synth::Options options;
    int train = 200, val = 50, crops = 200;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--out", args->out, "Output folder")->required();
  cmd->add_option("--domain", args->options.domain, "source (flat rendered colours) or target (textures, noise, blur, lighting)")
      ->check(CLI::IsMember({"source", "target"}));
  cmd->add_option("--shift", args->options.shift, "Strength of the target domain's shift (1 = the default target; larger is further)");
  cmd->add_option("--degrade", args->options.degrade,
                  "Strength of the target's photometric part alone (light, cast, blur, noise); < 0 = --shift");
  cmd->add_option("--size", args->options.size, "Image side in pixels");
  cmd->add_option("--seed", args->options.seed, "Random seed");
  cmd->add_option("--train", args->train, "Training scenes");
  cmd->add_option("--val", args->val, "Validation scenes");
  cmd->add_option("--crops", args->crops, "Single-object crops with class labels");
  cmd->callback([args] {
    if (args->options.size < 32) throw_usage("--size must be at least 32");
    synth::write_dataset(args->out, args->options, args->train, args->val, args->crops);
    std::cout << "wrote " << args->train << " train / " << args->val << " val scenes and " << args->crops
              << " crops to " << args->out << "\n";
  });
}

}  // namespace lesseg::cli
