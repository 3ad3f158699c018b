// A DINO training checkpoint (student / teacher with DDP and `backbone.` prefixes, optimizer state,
// an argparse.Namespace) imports into ViT-S/16 by name; the same file saved "on cuda:0" loads on the
// CPU. The imported networks reproduce the reference's CLS outputs.
#include "parity_util.h"

#include "lesseg/core/error.h"
#include "lesseg/io/pth.h"
#include "lesseg/models/vit.h"

namespace lesseg {
namespace {

class DinoCheckpoint : public ::testing::TestWithParam<const char*> {};

TEST_P(DinoCheckpoint, TeacherAndStudentImportAndMatchPython) {
  const auto file = parity::case_dir("dino_checkpoint") / GetParam();
  auto io = parity::reference_io("dino_checkpoint");
  const NamedTensors tensors = read_weight_file(file);
  torch::NoGradGuard no_grad;
  for (const std::string key : {"teacher", "student"}) {
    Vit model(vit_small(16));
    WeightOptions options;
    options.key = key;
    WeightReport report = load_weights(*model, tensors, options, file);
    EXPECT_EQ(report.prefix, key == "teacher" ? "teacher.backbone." : "student.module.backbone.");
    EXPECT_EQ(report.matched.size(), 150u) << report.summary();
    EXPECT_TRUE(report.unexpected.empty()) << report.summary();
    model->eval();
    parity::expect_close(model->forward(io["input"]), io[key + "_cls"], key + " CLS output");
  }
  Vit model(vit_small(16));
  try {
    load_weights(*model, tensors, {}, file);
    FAIL() << "teacher and student fit equally: a key must be required";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
  }
}
INSTANTIATE_TEST_SUITE_P(SavedOnCpuAndCuda, DinoCheckpoint, ::testing::Values("checkpoint.pth", "checkpoint_cuda.pth"));

TEST(DinoCheckpointMetadata, ArgsNamespaceAndEpochAreReadAsData) {
  TensorFile file = load_pth(parity::case_dir("dino_checkpoint") / "checkpoint.pth");
  EXPECT_EQ(file.metadata.at("epoch"), "100");
  EXPECT_EQ(file.metadata.at("args.arch"), "vit_small");
  EXPECT_EQ(file.metadata.at("args.patch_size"), "16");
}

}  // namespace
}  // namespace lesseg
