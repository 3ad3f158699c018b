// Test helper for the crash tests: writes checkpoints into DIR in a loop, each holding one tensor
// filled with its iteration number, so a test can kill it at random moments and check what is left.
//   checkpoint_writer DIR [--count N] [--mb M] [--fsize-limit BYTES]
// --fsize-limit sets RLIMIT_FSIZE (a disk that fills up): writes then fail with EFBIG.
#include <sys/resource.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/engine/checkpoint.h"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::filesystem::path dir = argv[1];
  int64_t count = -1, megabytes = 8;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--count") count = std::atoll(argv[i + 1]);
    if (flag == "--mb") megabytes = std::atoll(argv[i + 1]);
    if (flag == "--fsize-limit") {
      struct rlimit limit {};
      limit.rlim_cur = limit.rlim_max = std::strtoull(argv[i + 1], nullptr, 10);
      setrlimit(RLIMIT_FSIZE, &limit);
      std::signal(SIGXFSZ, SIG_IGN);  // write() returns EFBIG instead of killing the process
    }
  }
  try {
    auto latest = lesseg::load_latest_checkpoint(dir);
    int64_t iter = latest ? latest->state["iter"].get<int64_t>() + 1 : 1;
    for (int64_t written = 0; count < 0 || written < count; ++written, ++iter) {
      lesseg::Checkpoint checkpoint;
      checkpoint.tensors = {{"w", torch::full({megabytes * 262144}, static_cast<float>(iter))}};
      checkpoint.state = {{"iter", iter}};
      lesseg::save_checkpoint(dir, iter, checkpoint, 2);
      std::cout << "saved " << iter << std::endl;
    }
  } catch (const lesseg::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return static_cast<int>(e.code());
  }
  return 0;
}
