// rng.h — the one random number generator of t2: xoshiro256** (Blackman & Vigna 2018), seeded
// through splitmix64, so a run is reproducible from a single 64-bit seed on every platform. Small,
// fast and good enough for sampling, dropout-free training noise and data generation; it is not a
// cryptographic generator.
#ifndef T2_RNG_H
#define T2_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } t2_rng;

// Contract: set the state from SEED (any value, 0 included; splitmix64 expands it).
void t2_rng_seed(t2_rng *r, uint64_t seed);
// Contract: next 64 uniformly random bits.
uint64_t t2_rng_u64(t2_rng *r);
// Contract: uniform float in [0, 1) with 24 random bits (never 1.0).
float t2_rng_uniform(t2_rng *r);
// Contract: standard normal N(0, 1) (Box–Muller in double precision, one draw per call).
float t2_rng_normal(t2_rng *r);
// Contract: uniform integer in [0, n) without modulo bias; 0 when n == 0.
uint64_t t2_rng_below(t2_rng *r, uint64_t n);

#endif
