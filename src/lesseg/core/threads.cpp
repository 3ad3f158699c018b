#include "lesseg/core/threads.h"

#include <sched.h>

#include <thread>

#include <ATen/Parallel.h>
#include <opencv2/core.hpp>

namespace lesseg {

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int configure_threads(int requested) {
  int threads = requested > 0 ? requested : usable_cores();
  at::set_num_threads(threads);
  // Loader workers call OpenCV from several threads already; nested OpenCV pools only contend.
  cv::setNumThreads(1);
  return at::get_num_threads();
}

}  // namespace lesseg
