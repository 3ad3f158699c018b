#pragma once
// SIGINT / SIGTERM as a request to stop at the next safe point (the trainer finishes the step,
// saves a checkpoint and exits 130 / 143). A second signal of the same kind acts immediately.
namespace lesseg {

class StopSignals {
 public:
  StopSignals();   // installs the handlers
  ~StopSignals();  // restores the previous ones
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // The signal received (SIGINT or SIGTERM), or 0.
  static int received();
};

}  // namespace lesseg
