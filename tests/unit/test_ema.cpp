// The EMA teacher update: parameters move towards the student by (1 - momentum); buffers stay the
// teacher's own (DINO's momentum update); copy_weights starts a teacher as the student's copy.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/engine/ema.h"

namespace lesseg {
namespace {

TEST(Ema, MovesParametersAndLeavesBuffers) {
  torch::manual_seed(0);
  torch::nn::Sequential teacher(torch::nn::Linear(3, 2), torch::nn::BatchNorm1d(2));
  torch::nn::Sequential student(torch::nn::Linear(3, 2), torch::nn::BatchNorm1d(2));
  student->buffers()[0].fill_(5.0);  // running_mean
  teacher->buffers()[0].fill_(-1.0);
  auto t0 = teacher->parameters()[0].clone(), s0 = student->parameters()[0].clone();
  ema_update(*teacher, *student, 0.9);
  EXPECT_TRUE(torch::allclose(teacher->parameters()[0], 0.9 * t0 + 0.1 * s0));
  EXPECT_TRUE(torch::equal(teacher->buffers()[0], torch::full({2}, -1.0)));
  ema_update(*teacher, *student, 0.0);  // momentum 0: the parameters become the student's
  for (size_t i = 0; i < teacher->parameters().size(); ++i)
    EXPECT_TRUE(torch::equal(teacher->parameters()[i], student->parameters()[i]));
  EXPECT_TRUE(torch::equal(teacher->buffers()[0], torch::full({2}, -1.0)));
}

TEST(Ema, CopyWeightsCopiesParametersAndBuffers) {
  torch::manual_seed(0);
  torch::nn::Sequential teacher(torch::nn::Linear(3, 2), torch::nn::BatchNorm1d(2));
  torch::nn::Sequential student(torch::nn::Linear(3, 2), torch::nn::BatchNorm1d(2));
  student->buffers()[0].fill_(5.0);
  copy_weights(*teacher, *student);
  for (size_t i = 0; i < teacher->parameters().size(); ++i)
    EXPECT_TRUE(torch::equal(teacher->parameters()[i], student->parameters()[i]));
  for (size_t i = 0; i < teacher->buffers().size(); ++i)
    EXPECT_TRUE(torch::equal(teacher->buffers()[i], student->buffers()[i]));
}

TEST(Ema, RefusesModulesOfDifferentStructure) {
  torch::nn::Linear a(3, 2), b(3, 2);
  torch::nn::Sequential c(torch::nn::Linear(3, 2), torch::nn::Linear(2, 2));
  EXPECT_NO_THROW(ema_update(*a, *b, 0.5));
  EXPECT_THROW(ema_update(*a, *c, 0.5), Error);
}

}  // namespace
}  // namespace lesseg
