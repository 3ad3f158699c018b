#pragma once
// Facts about the runtime that decide speed and correctness: versions, BLAS, threads, devices.
#include <string>

namespace lesseg {

struct DoctorReport {
  std::string lesseg_version, torch_version, opencv_version;
  std::string blas_library;  // path of the BLAS shared object mapped into the process
  bool reference_blas = false;
  int threads = 0, usable_cores = 0;
  bool cuda_available = false;
  int cuda_devices = 0;
};

DoctorReport run_doctor();
std::string format_doctor(const DoctorReport& report);

}  // namespace lesseg
