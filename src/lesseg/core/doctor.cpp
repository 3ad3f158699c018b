#include "lesseg/core/doctor.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <torch/torch.h>
#include <opencv2/core/version.hpp>

#include "lesseg/core/threads.h"
#include "lesseg/version.h"

namespace lesseg {

namespace {
// The BLAS actually loaded, read from the process's memory map (what the dynamic linker chose).
std::string loaded_blas() {
  std::ifstream maps("/proc/self/maps");
  std::string line, fallback;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    std::string name = std::filesystem::path(path).filename().string();
    if (name.find("openblas") != std::string::npos || name.find("mkl_rt") != std::string::npos ||
        name.find("blis") != std::string::npos)
      return path;
    if (name.rfind("libblas.so", 0) == 0 && fallback.empty()) fallback = path;
  }
  return fallback;
}
}  // namespace

DoctorReport run_doctor() {
  DoctorReport report;
  report.lesseg_version = LESSEG_VERSION;
  report.torch_version = TORCH_VERSION;
  report.opencv_version = CV_VERSION;
  report.blas_library = loaded_blas();
  std::error_code ec;
  std::string resolved = std::filesystem::canonical(report.blas_library, ec).string();
  if (!resolved.empty()) report.blas_library = resolved;
  report.reference_blas = report.blas_library.empty() ||
                          (report.blas_library.find("openblas") == std::string::npos &&
                           report.blas_library.find("mkl") == std::string::npos &&
                           report.blas_library.find("blis") == std::string::npos);
  report.threads = at::get_num_threads();
  report.usable_cores = usable_cores();
  report.cuda_available = torch::cuda::is_available();
  report.cuda_devices = report.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  return report;
}

std::string format_doctor(const DoctorReport& r) {
  std::ostringstream out;
  out << "lesseg   " << r.lesseg_version << "\n"
      << "LibTorch " << r.torch_version << "\n"
      << "OpenCV   " << r.opencv_version << "\n"
      << "BLAS     " << (r.blas_library.empty() ? "(none found)" : r.blas_library)
      << (r.reference_blas ? "  (reference BLAS)" : "  (OpenBLAS/optimized)") << "\n"
      << "threads  " << r.threads << " intra-op (usable cores: " << r.usable_cores << ")\n"
      << "CUDA     " << (r.cuda_available ? "yes, " + std::to_string(r.cuda_devices) + " device(s)" : "no")
      << "\n";
  if (r.reference_blas)
    out << "WARNING: the reference BLAS is loaded: matrix products run ~30x slower. Install "
           "libopenblas0-openmp (apt-get install libopenblas0-openmp).\n";
  return out.str();
}

}  // namespace lesseg
