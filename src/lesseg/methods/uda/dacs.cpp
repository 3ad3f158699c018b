#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/domains.h"
#include "lesseg/methods/uda/dacs_task.h"
#include "lesseg/methods/uda/uda.h"

namespace lesseg {

void require_two_domains(const Config& config, const std::string& method) {
  if (!is_two_domain(config))
    throw_usage(method + " adapts a labeled source to an unlabeled target: set uda.source.format (and uda.target.*)");
  if (config.get<bool>("uda.oracle")) throw_usage("uda.oracle trains on target labels: use it with --method supervised");
}

TrainResult train_adaptation(const Config& config, const std::filesystem::path& run_dir, const std::string& method,
                             const MakeDacsTask& make_task) {
  require_two_domains(config, method);
  SegmentationRun run = open_segmentation_run(config, run_dir);
  const ModelSpec spec = model_spec_from(config, run.num_classes());
  SavedSegmenter student = new_segmenter(config, spec, run, true);
  SavedSegmenter teacher = new_segmenter(config, spec, run, false);
  std::unique_ptr<DacsTask> task = make_task(config, run, student.model, teacher.model);
  TrainerOptions options = trainer_options_from(config, run_dir);
  options.distributed = run.dist;
  Trainer trainer(*task, options);
  return finish_segmentation_run(trainer, config, run, {{"model", "model.safetensors", &student}}, task->skipped_images());
}

TrainResult train_dacs(const Config& config, const std::filesystem::path& run_dir) {
  return train_adaptation(config, run_dir, "dacs", [](const Config& c, const SegmentationRun& r, Segmenter s, Segmenter t) {
    return std::make_unique<DacsTask>(c, r, std::move(s), std::move(t));
  });
}

}  // namespace lesseg
