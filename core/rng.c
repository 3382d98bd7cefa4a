// rng.c — xoshiro256** with splitmix64 seeding (reference: https://prng.di.unimi.it/, public
// domain code by Blackman and Vigna), plus the uniform, normal and bounded-integer draws built on
// it. Not for cryptography; not thread-safe per generator (give each thread its own t2_rng).
#include "core/rng.h"
#include <math.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void t2_rng_seed(t2_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);   // never all zero: splitmix64 is a bijection
}

uint64_t t2_rng_u64(t2_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float t2_rng_uniform(t2_rng *r) {
    return (float)(t2_rng_u64(r) >> 40) * (1.0f / 16777216.0f);   // 24 bits: exact in a float
}

float t2_rng_normal(t2_rng *r) {
    double u1 = ((double)(t2_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);   // (0, 1]
    double u2 = (double)(t2_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);           // [0, 1)
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t t2_rng_below(t2_rng *r, uint64_t n) {
    if (n == 0) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;   // reject the incomplete last block
    uint64_t x;
    do x = t2_rng_u64(r); while (x >= limit);
    return x % n;
}
