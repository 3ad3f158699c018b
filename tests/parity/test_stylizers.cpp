// FDA against a numpy reference of the paper's amplitude swap (tools/parity/fda.py): the same output,
// the source's phase kept, the low-frequency square's amplitude taken from the target.
#include "parity_util.h"

#include "lesseg/methods/uda/stylizers.h"

namespace lesseg {
namespace {

TEST(FdaParity, MatchesNumpyAndKeepsTheSourcePhase) {
  auto io = parity::reference_io("fda");
  for (const std::string name : {"even", "odd"}) {
    const at::Tensor source = io.at(name + ".source"), target = io.at(name + ".target");
    const double beta = io.at(name + ".beta").item<double>();
    const at::Tensor out = fda_transfer(source, target, beta);
    parity::expect_close(out, io.at(name + ".output"), "fda " + name, 1e-9);
    // Phase: the unit phasors of the output's spectrum equal the source's (where the amplitude is not ~0).
    const at::Tensor s = torch::fft::fft2(source), o = torch::fft::fft2(out);
    const at::Tensor valid = s.abs() > 1e-6;
    const at::Tensor phase_gap = (o / o.abs() - s / s.abs()).abs().masked_select(valid);
    EXPECT_LT(phase_gap.max().item<double>(), 1e-8) << name;
    // Amplitude: the centre square is the target's, the rest the source's.
    const int64_t h = source.size(2), w = source.size(3), half = static_cast<int64_t>(std::min(h, w) * beta);
    auto centred = [](const at::Tensor& x) { return torch::fft::fftshift(torch::fft::fft2(x).abs(), std::vector<int64_t>{-2, -1}); };
    const at::Tensor a_out = centred(out), a_src = centred(source), a_trg = centred(target);
    auto box = [&](const at::Tensor& a) {
      return a.slice(2, h / 2 - half, h / 2 + half + 1).slice(3, w / 2 - half, w / 2 + half + 1);
    };
    EXPECT_TRUE(torch::allclose(box(a_out), box(a_trg), 1e-9, 1e-9)) << name;
    at::Tensor outside = torch::ones_like(a_src, torch::kBool);
    box(outside).fill_(false);
    EXPECT_TRUE(torch::allclose(a_out.masked_select(outside), a_src.masked_select(outside), 1e-9, 1e-9)) << name;
  }
}

TEST(FdaParity, ZeroBetaSwapsOnlyTheMeanColour) {
  torch::manual_seed(0);
  const at::Tensor source = torch::rand({1, 3, 16, 20}, torch::kFloat64), target = torch::rand({1, 3, 16, 20}, torch::kFloat64);
  const at::Tensor out = fda_transfer(source, target, 0.0);
  EXPECT_TRUE(torch::allclose(out.mean({2, 3}), target.mean({2, 3}), 1e-9, 1e-9));
  EXPECT_TRUE(torch::allclose(out - out.mean({2, 3}, true), source - source.mean({2, 3}, true), 1e-9, 1e-9));
}

}  // namespace
}  // namespace lesseg
