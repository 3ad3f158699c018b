#pragma once
// Deterministic seeding: every random decision derives from (seed, stream ids) by mixing, so
// results do not depend on thread scheduling or on how many samples were drawn before.
#include <cstdint>
#include <initializer_list>

namespace lesseg {

uint64_t mix_seed(std::initializer_list<uint64_t> parts);

}  // namespace lesseg
