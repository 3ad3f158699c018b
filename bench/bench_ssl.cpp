// One self-supervised training step, lesseg against the same step in Python PyTorch
// (tools/bench/ssl_step.py, run by this program in the same run), on random crops (no data loading):
// - DINO, ViT-S/16 ("vit_small16") + DinoHead: the EMA teacher on the 2 global crops (no grad), the
//   student on 2 global + M local crops (equal sizes forwarded together), DinoLoss, loss.item(),
//   zero_grad, backward, global-norm gradient clip 3.0, optionally cancel the last layer's gradients
//   (DINO's first epoch), AdamW (biases and 1-D tensors not decayed), ema_update.
// - SimCLR, ResNet-18 + ProjectionHead (2048 -> 128, BN): both views together through backbone + head,
//   multi_view_nt_xent (tau 0.07), loss.item(), zero_grad, backward, SGD momentum 0.9 wd 5e-4.
// Each model runs in its own child process (fork) so that its peak RSS is its own.
// images/s counts images (the batch), not crops or views.
//   build/bench/bench_ssl [--threads N] [--warmup 2] [--steps 5] [--models dino,simclr]
//                         [--dino-batch 8] [--local-crops 2] [--out-dim 65536] [--cancel-last-layer]
//                         [--simclr-batch 32] [--simclr-size 128] [--python /usr/bin/python3] [--no-python]
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/threads.h"
#include "lesseg/engine/ema.h"
#include "lesseg/engine/optim.h"
#include "lesseg/methods/ssl/losses.h"
#include "lesseg/models/embedding.h"
#include "lesseg/models/heads.h"
#include "lesseg/models/registry.h"
#include "reference.h"

namespace {

struct Options {
  int threads = 0, warmup = 2, steps = 5;
  std::string models = "dino,simclr";
  int64_t dino_batch = 8, local_crops = 2, out_dim = 65536, simclr_batch = 32, simclr_size = 128;
  bool cancel_last_layer = false;
  std::string python = LESSEG_REFERENCE_PYTHON;
  bool with_python = true;
};

// Fixed step settings (DINO: main_dino.py defaults; SimCLR: SAMCLR's tau and SGD).
constexpr int64_t kGlobalSize = 224, kLocalSize = 96;
constexpr double kDinoLr = 5e-4, kDinoWd = 0.04, kClip = 3.0, kTeacherTemp = 0.04, kEmaBase = 0.996;
constexpr double kSimclrLr = 0.15, kSimclrWd = 5e-4, kTau = 0.07;

std::shared_ptr<lesseg::BackboneImpl> make_backbone(const std::string& name) {
  lesseg::ModelSpec spec;
  spec.backbone = name;
  return lesseg::build_backbone(spec);
}

// backbone -> head, composed as methods/ssl/dino.cpp and simclr.cpp compose them.
template <typename Head, typename HeadOptions>
struct SslNetImpl : torch::nn::Module {
  SslNetImpl(const std::string& name, HeadOptions options)
      : backbone(register_module("backbone", make_backbone(name))),
        head(register_module("head", Head(options.in_dim(lesseg::embedding_dim(*backbone))))) {}
  torch::Tensor forward(const torch::Tensor& x) { return head->forward(lesseg::global_embedding(*backbone, x)); }
  std::shared_ptr<lesseg::BackboneImpl> backbone;
  Head head;
};
using DinoNet = SslNetImpl<lesseg::DinoHead, lesseg::DinoHeadOptions>;
using SimclrNet = SslNetImpl<lesseg::ProjectionHead, lesseg::ProjectionHeadOptions>;

// Runs of equal-size crops forwarded together, outputs split back per crop (SslTask::per_view).
template <typename Net>
std::vector<torch::Tensor> per_size(Net& net, const std::vector<torch::Tensor>& crops) {
  std::vector<torch::Tensor> out;
  for (size_t start = 0, end = 0; start < crops.size(); start = end) {
    for (end = start + 1; end < crops.size() && crops[end].sizes() == crops[start].sizes();) ++end;
    auto group = torch::cat(std::vector<torch::Tensor>(crops.begin() + start, crops.begin() + end));
    for (auto& y : net.forward(group).chunk(int64_t(end - start))) out.push_back(y);
  }
  return out;
}

// ref: dino utils.get_params_groups (SslTask::no_weight_decay_parameters): biases and 1-D tensors.
std::vector<torch::Tensor> no_decay(const torch::nn::Module& module) {
  std::vector<torch::Tensor> out;
  for (const auto& item : module.named_parameters()) {
    const std::string& name = item.key();
    const bool bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (bias || item.value().dim() <= 1) out.push_back(item.value());
  }
  return out;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

std::vector<torch::Tensor> random_crops(int64_t count, int64_t batch, int64_t size) {
  std::vector<torch::Tensor> crops;
  for (int64_t i = 0; i < count; ++i) crops.push_back(torch::randn({batch, 3, size, size}));
  return crops;
}

// Mean seconds of `steps` calls of step(i) after `warmup` untimed ones.
double seconds_per_step(const std::function<void(int64_t)>& step, int warmup, int steps) {
  for (int i = 0; i < warmup; ++i) step(i);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step(warmup + i);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
}

nlohmann::json measure_dino(const Options& o) {
  auto head = lesseg::DinoHeadOptions().out_dim(o.out_dim);
  auto student = std::make_shared<DinoNet>("vit_small16", head);
  auto teacher = std::make_shared<DinoNet>("vit_small16", head);
  lesseg::ema_update(*teacher, *student, 0.0);  // the teacher starts as a copy of the student
  for (auto& p : teacher->parameters()) p.set_requires_grad(false);
  lesseg::DinoLoss loss_fn(o.out_dim, 0.1, 0.9);
  lesseg::OptimizerOptions optim{"adamw", kDinoLr, 0.9, kDinoWd};
  auto optimizer = lesseg::make_optimizer(student->parameters(), optim, no_decay(*student));
  auto crops = random_crops(2, o.dino_batch, kGlobalSize);
  const auto locals = random_crops(o.local_crops, o.dino_batch, kLocalSize);
  crops.insert(crops.end(), locals.begin(), locals.end());
  const std::vector<torch::Tensor> globals(crops.begin(), crops.begin() + 2);
  const int64_t total = o.warmup + o.steps;
  auto step = [&](int64_t iter) {
    student->train();
    teacher->train();
    std::vector<torch::Tensor> teacher_out;
    {
      torch::NoGradGuard no_grad;
      teacher_out = per_size(*teacher, globals);
    }
    auto loss = loss_fn->forward(per_size(*student, crops), teacher_out, kTeacherTemp);
    loss.item<double>();
    optimizer->zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(student->parameters(), kClip);
    if (o.cancel_last_layer) student->head->cancel_last_layer_gradients();
    optimizer->step();
    lesseg::ema_update(*teacher, *student, lesseg::ema_momentum(kEmaBase, iter, total));
  };
  return {{"seconds_per_step", seconds_per_step(step, o.warmup, o.steps)}, {"params", count_parameters(*student)}};
}

nlohmann::json measure_simclr(const Options& o) {
  SimclrNet model("resnet18", lesseg::ProjectionHeadOptions().hidden_dim(2048).out_dim(128));
  lesseg::OptimizerOptions optim{"sgd", kSimclrLr, 0.9, kSimclrWd};
  auto optimizer = lesseg::make_optimizer(model.parameters(), optim, no_decay(model));
  const auto views = random_crops(2, o.simclr_batch, o.simclr_size);
  auto step = [&](int64_t) {
    model.train();
    auto loss = lesseg::multi_view_nt_xent(per_size(model, views), 2, kTau);
    loss.item<double>();
    optimizer->zero_grad();
    loss.backward();
    optimizer->step();
  };
  return {{"seconds_per_step", seconds_per_step(step, o.warmup, o.steps)}, {"params", count_parameters(model)}};
}

// Runs `measure` in a child process (this process never touches LibTorch's thread pools) and
// returns its JSON plus the child's peak RSS; null when the child failed.
nlohmann::json in_child(const std::function<nlohmann::json()>& measure) {
  int fds[2];
  if (pipe(fds) != 0) return nullptr;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    int code = 0;
    std::string out;
    try {
      nlohmann::json result = measure();
      result["peak_rss_mib"] = lesseg::bench::peak_rss_mib();
      out = result.dump();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lesseg side failed: %s\n", e.what());
      code = 1;
    }
    const bool written = write(fds[1], out.data(), out.size()) == ssize_t(out.size());
    close(fds[1]);
    _exit(written ? code : 1);
  }
  close(fds[1]);
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof(buffer))) > 0;) out.append(buffer, size_t(n));
  close(fds[0]);
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || out.empty()) return nullptr;
  return nlohmann::json::parse(out);
}

std::string python_command(const Options& o, const std::string& model, int threads) {
  const bool dino = model == "dino";
  char numbers[256];
  std::snprintf(numbers, sizeof(numbers), " --lr %.17g --weight-decay %.17g --clip %.17g --teacher-temp %.17g "
                "--momentum %.17g --temperature %.17g", dino ? kDinoLr : kSimclrLr, dino ? kDinoWd : kSimclrWd,
                kClip, kTeacherTemp, kEmaBase, kTau);
  std::string command = o.python + " " + LESSEG_SOURCE_DIR + "/tools/bench/ssl_step.py --model " + model +
                        " --threads " + std::to_string(threads) + " --warmup " + std::to_string(o.warmup) +
                        " --steps " + std::to_string(o.steps) + numbers;
  if (!dino)
    return command + " --batch " + std::to_string(o.simclr_batch) + " --global-size " + std::to_string(o.simclr_size);
  return command + " --batch " + std::to_string(o.dino_batch) + " --global-size " + std::to_string(kGlobalSize) +
         " --local-size " + std::to_string(kLocalSize) + " --local-crops " + std::to_string(o.local_crops) +
         " --out-dim " + std::to_string(o.out_dim) + (o.cancel_last_layer ? " --cancel-last-layer" : "");
}

std::string describe(const Options& o, const std::string& model) {
  char text[320];
  if (model == "dino")
    std::snprintf(text, sizeof(text),
                  "DINO ViT-S/16 + head (out_dim %lld), batch %lld images = 2x%lld px + %lldx%lld px crops each, "
                  "AdamW, clip %.1f%s", (long long)o.out_dim, (long long)o.dino_batch, (long long)kGlobalSize,
                  (long long)o.local_crops, (long long)kLocalSize, kClip,
                  o.cancel_last_layer ? ", last layer cancelled" : "");
  else
    std::snprintf(text, sizeof(text), "SimCLR ResNet-18 + projection head (2048 -> 128, BN), batch %lld images = 2 "
                  "views of %lld px each, NT-Xent tau %.2f, SGD momentum 0.9 wd %g", (long long)o.simclr_batch,
                  (long long)o.simclr_size, kTau, kSimclrWd);
  return text;
}

void print_table(const Options& o, const std::string& model, const nlohmann::json& ours, const nlohmann::json& theirs,
                 int threads) {
  using lesseg::bench::cell;
  const int64_t batch = model == "dino" ? o.dino_batch : o.simclr_batch;
  auto field = [](const nlohmann::json& j, const char* key) { return j.is_object() ? j.value(key, 0.0) : 0.0; };
  const double a = field(ours, "seconds_per_step"), b = field(theirs, "seconds_per_step");
  std::printf("\n%s\n%d threads, %d warm-up + %d timed steps; images/s counts images (the batch), not crops\n",
              describe(o, model).c_str(), threads, o.warmup, o.steps);
  std::printf("%-15s %10s %10s %12s %14s\n", "", "ms/step", "images/s", "parameters", "peak RSS MiB");
  std::printf("%-15s %10s %10s %12s %14s\n", "lesseg", cell(a > 0, a * 1e3, "%.0f").c_str(),
              cell(a > 0, double(batch) / a, "%.2f").c_str(), cell(a > 0, field(ours, "params"), "%.0f").c_str(),
              cell(a > 0, field(ours, "peak_rss_mib"), "%.0f").c_str());
  std::printf("%-15s %10s %10s %12s %14s\n", "PyTorch", cell(b > 0, b * 1e3, "%.0f").c_str(),
              cell(b > 0, double(batch) / b, "%.2f").c_str(), cell(b > 0, field(theirs, "params"), "%.0f").c_str(),
              cell(b > 0, field(theirs, "peak_rss_kb") / 1024.0, "%.0f").c_str());
  std::printf("%-15s %10s %10s\n", "lesseg/PyTorch", cell(a > 0 && b > 0, a / b, "%.2f").c_str(),
              cell(a > 0 && b > 0, b / a, "%.2f").c_str());
  if (theirs.is_object())
    std::printf("reference: Python PyTorch %s, %d threads\n", theirs.value("torch", std::string("?")).c_str(),
                theirs.value("threads", 0));
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--threads" && has_value) o.threads = std::stoi(argv[++i]);
    else if (arg == "--warmup" && has_value) o.warmup = std::stoi(argv[++i]);
    else if (arg == "--steps" && has_value) o.steps = std::stoi(argv[++i]);
    else if (arg == "--models" && has_value) o.models = argv[++i];
    else if (arg == "--dino-batch" && has_value) o.dino_batch = std::stoll(argv[++i]);
    else if (arg == "--local-crops" && has_value) o.local_crops = std::stoll(argv[++i]);
    else if (arg == "--out-dim" && has_value) o.out_dim = std::stoll(argv[++i]);
    else if (arg == "--cancel-last-layer") o.cancel_last_layer = true;
    else if (arg == "--simclr-batch" && has_value) o.simclr_batch = std::stoll(argv[++i]);
    else if (arg == "--simclr-size" && has_value) o.simclr_size = std::stoll(argv[++i]);
    else if (arg == "--python" && has_value) o.python = argv[++i];
    else if (arg == "--no-python") o.with_python = false;
    else {
      std::fprintf(stderr, "unknown argument '%s' (see the comment at the top of bench_ssl.cpp)\n", arg.c_str());
      return false;
    }
  }
  if (o.steps >= 1 && o.warmup >= 0 && o.dino_batch >= 1 && o.local_crops >= 0 && o.out_dim >= 1 &&
      o.simclr_batch >= 2 && o.simclr_size >= 32)
    return true;
  std::fprintf(stderr, "need --steps >= 1, --warmup >= 0, batches >= 1 (SimCLR >= 2), --simclr-size >= 32\n");
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  const int threads = o.threads > 0 ? o.threads : lesseg::usable_cores();  // set in each child
  for (const std::string model : {"dino", "simclr"}) {
    if (o.models.find(model) == std::string::npos) continue;
    auto measure = [&] {
      const int used = lesseg::configure_threads(threads);
      torch::manual_seed(0);
      nlohmann::json result = model == "dino" ? measure_dino(o) : measure_simclr(o);
      result["threads"] = used;
      return result;
    };
    const nlohmann::json ours = in_child(measure);
    const nlohmann::json theirs =
        o.with_python ? lesseg::bench::run_reference(python_command(o, model, threads)) : nlohmann::json();
    print_table(o, model, ours, theirs, ours.is_object() ? ours.value("threads", threads) : threads);
  }
  return 0;
}
