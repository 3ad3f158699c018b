#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/data/open.h"
#include "lesseg/eval/evaluate.h"
#include "lesseg/eval/instance_eval.h"
#include "lesseg/data/instances.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/methods/instance_model.h"
#include "lesseg/methods/saved_segmenter.h"

namespace lesseg::cli {

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a run folder or --weights on a dataset (mIoU, mAcc, per-class IoU), or instance predictions against COCO ground truth (--instances, --gt: mask / box AP, AR, mAR)");
  struct Args {
    std::string run_dir, weights, format, root, split = "val", device = "cpu", instances, ground_truth;
    std::vector<std::string> overrides;
    int threads = 0, batch_size = 1;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("run_dir", args->run_dir, "A run folder (uses its config.yaml and model.safetensors)");
  cmd->add_option("--set", args->overrides, "Override a key of the run's config, e.g. --set data.synth.val_domain=target");
  cmd->add_option("--weights", args->weights, "A segmenter weight file (model.safetensors)");
  cmd->add_option("--format", args->format, "Dataset format with --weights (folder, camvid, cityscapes, ...)");
  cmd->add_option("--root", args->root, "Dataset root with --weights");
  cmd->add_option("--split", args->split, "Split with --weights (default val)");
  cmd->add_option("--device", args->device, "cpu or cuda");
  cmd->add_option("--batch-size", args->batch_size, "Images per forward pass");
  cmd->add_option("--threads", args->threads, "Intra-op threads (0 = all usable cores)");
  cmd->add_option("--instances", args->instances,
                  "Instance predictions to score (COCO JSON as lesseg pseudo writes, or a COCO results list)");
  cmd->add_option("--gt", args->ground_truth, "COCO instances JSON with the ground truth for --instances");
  cmd->callback([args] {
    if (!args->instances.empty() || !args->ground_truth.empty()) {
      // Class-agnostic COCO mask and box AP / AR, and the instance-ness probe's mAR split.
      if (args->instances.empty() || args->ground_truth.empty()) throw_usage("--instances and --gt go together");
      const InstancePairs pairs = read_instance_pairs(args->ground_truth, args->instances);
      InstanceEvalOptions options;
      const InstanceMetrics mask = evaluate_instances(pairs.ground_truth, pairs.predictions, options);
      options.iou = InstanceIou::box;
      const InstanceMetrics box = evaluate_instances(pairs.ground_truth, pairs.predictions, options);
      std::cout << instance_metrics_json(mask, box, mean_average_recall_split(pairs.ground_truth, pairs.predictions))
                       .dump(2)
                << "\n";
      return;
    }
    apply_threads(args->threads);
    torch::Device device(args->device);
    EvalOptions options;
    options.device = device;
    options.batch_size = args->batch_size;
    SegDatasetPtr dataset;
    std::filesystem::path weights = args->weights;
    if (!args->run_dir.empty()) {
      std::filesystem::path run(args->run_dir);
      Config config = Config::from_yaml_text(read_file(run / "config.yaml"), (run / "config.yaml").string());
      for (const std::string& item : args->overrides) {
        auto eq = item.find('=');
        if (eq == std::string::npos) throw_usage("--set '" + item + "': expected key.path=value");
        config.set(item.substr(0, eq), item.substr(eq + 1));
      }
      if (weights.empty()) weights = run / "model.safetensors";
      if (config.get<std::string>("method") == "cutler") {  // an instance run: AP on instances.val_json
        const std::string json = config.get<std::string>("instances.val_json");
        if (json.empty()) throw_usage("this run has no instances.val_json to score on (--set instances.val_json=FILE)");
        std::string images = config.get<std::string>("instances.val_images");
        if (images.empty()) images = std::filesystem::path(json).parent_path().string();
        InstanceDataset truth(json, images, /*drop_empty_images=*/false);
        SavedInstanceModel saved = load_instance_model(weights, device);
        std::cout << evaluate_instance_model(saved, truth, device).dump(2) << "\n";
        return;
      }
      dataset = open_dataset(config, "val");
      options.max_images = config.get<int64_t>("eval.max_images");  // as the run scored it (--set eval.max_images=0: all)
      options.scored_classes = scored_classes_from(config, dataset->classes());
    } else {
      if (weights.empty() || args->format.empty()) throw_usage("eval needs a run folder, or --weights with --format and --root");
      dataset = open_dataset_by_format(args->format, args->root, args->split);
    }
    SavedSegmenter saved = load_segmenter(weights, device);
    options.mean = saved.mean;
    options.std = saved.std;
    options.augment.resize_h = saved.resize_h;
    options.augment.resize_w = saved.resize_w;
    auto metrics = metrics_json(evaluate_segmenter(saved.model, dataset, options).compute(), dataset->classes(),
                                options.scored_classes);
    std::cout << metrics.dump(2) << "\n";
  });
}

}  // namespace lesseg::cli
