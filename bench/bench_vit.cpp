// ViT-S/16 forward latency at 224 px (batch 1 and 32) against the same model in Python PyTorch
// (tools/bench/vit_forward.py, run by this program in the same run), and as a fraction of the
// machine's measured float32 matmul throughput.
//   build/bench/bench_vit [--threads N] [--python /usr/bin/python3] [--no-python]
#include <cstdio>
#include <map>
#include <string>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/threads.h"
#include "lesseg/models/vit.h"
#include "reference.h"

namespace {

constexpr int64_t kSize = 224;
constexpr int64_t kMatmulN = 2048;

// Multiply-adds x 2 of one forward: patch embedding, per block qkv + proj + MLP (12 N D^2) and
// the two attention products (2 N^2 D).
double vit_flops(const lesseg::VitOptions& o, int64_t size, int64_t batch) {
  const double n = double(size / o.patch_size()) * double(size / o.patch_size()) + 1, d = double(o.embed_dim());
  const double patch = (n - 1) * d * 3.0 * double(o.patch_size() * o.patch_size());
  const double block = 4 * n * d * d + 2 * n * d * d * o.mlp_ratio() + 2 * n * n * d;
  return 2.0 * batch * (patch + double(o.depth()) * block);
}

void BM_Matmul(benchmark::State& state) {
  auto a = torch::randn({kMatmulN, kMatmulN}), b = torch::randn({kMatmulN, kMatmulN});
  for (auto _ : state) benchmark::DoNotOptimize(torch::mm(a, b));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * kMatmulN * kMatmulN * kMatmulN * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void BM_VitForward(benchmark::State& state) {
  torch::manual_seed(0);
  static lesseg::Vit model(lesseg::vit_small(16));
  model->eval();
  auto x = torch::randn({state.range(0), 3, kSize, kSize});
  torch::NoGradGuard no_grad;
  model->forward(x);  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(x));
}

// Keeps each benchmark's mean seconds per iteration (and the matmul rate) for the summary.
class Collector : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> seconds;
  double matmul_gflops = 0;
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      if (run.run_type != Run::RT_Iteration) continue;
      seconds[run.run_name.function_name + "/" + run.run_name.args] = run.GetAdjustedRealTime() / 1e3;  // in ms
      auto it = run.counters.find("GFLOP/s");
      if (it != run.counters.end()) matmul_gflops = it->second;
    }
  }
};

nlohmann::json run_python(const std::string& python, int threads) {
  return lesseg::bench::run_reference(python + " " + LESSEG_SOURCE_DIR + "/tools/bench/vit_forward.py --threads " +
                                      std::to_string(threads) + " --batches 1 32");
}

}  // namespace

BENCHMARK(BM_Matmul)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_VitForward)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_VitForward)->Arg(32)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

int main(int argc, char** argv) {
  int threads = 0;
  std::string python = LESSEG_REFERENCE_PYTHON;
  bool with_python = true;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (arg == "--python" && i + 1 < argc) python = argv[++i];
    else if (arg == "--no-python") with_python = false;
    else rest.push_back(argv[i]);
  }
  threads = lesseg::configure_threads(threads);
  int rest_count = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_count, rest.data());
  Collector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);
  nlohmann::json reference = with_python ? run_python(python, threads) : nullptr;

  std::printf("\nViT-S/16 forward, %lld px, %d threads; matmul %lldx%lld: %.1f GFLOP/s\n", (long long)kSize, threads,
              (long long)kMatmulN, (long long)kMatmulN, collector.matmul_gflops);
  std::printf("%6s %12s %12s %14s %10s %14s\n", "batch", "lesseg ms", "PyTorch ms", "lesseg/PyTorch", "GFLOP/s",
              "of matmul");
  for (int batch : {1, 32}) {
    const double ours = collector.seconds["BM_VitForward/" + std::to_string(batch)];
    const double gflops = vit_flops(lesseg::vit_small(16), kSize, batch) / ours * 1e-9;
    double theirs = 0;
    if (reference.is_object()) theirs = reference["batches"].value(std::to_string(batch), 0.0);
    using lesseg::bench::cell;
    std::printf("%6d %12.1f %12s %14s %10.1f %14s\n", batch, ours * 1e3, cell(theirs > 0, theirs * 1e3, "%.1f").c_str(),
                cell(theirs > 0, ours / theirs, "%.2f").c_str(), gflops,
                cell(collector.matmul_gflops > 0, 100.0 * gflops / collector.matmul_gflops, "%.0f%%").c_str());
  }
  if (reference.is_object()) std::printf("reference: Python PyTorch %s, %d threads\n",
                                         reference.value("torch", std::string("?")).c_str(), reference.value("threads", 0));
  return 0;
}
