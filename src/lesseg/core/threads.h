#pragma once
// Intra-op threading. LibTorch starts with one thread on some machines; lesseg sets it explicitly.

namespace lesseg {

int usable_cores();                // CPUs this process may run on (sched_getaffinity)
int configure_threads(int requested);  // 0 = usable_cores(); returns the count in use

}  // namespace lesseg
