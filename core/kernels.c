// kernels.c — the numeric hot spots of kernels.h: matrix-vector products for decode (our own SIMD,
// rows split over the pool), matrix-matrix products for prefill (OpenBLAS sgemm; F16/BF16 weights
// widened panel by panel first), a dot product, and the naive twins the tests hold them against.
// Not for: OpenBLAS core detection (blas.c), norms/softmax/rope, or anything that allocates: every
// buffer here belongs to the caller.
//
// SIMD: each kernel exists three times — AVX-512 (F/BW/VL), AVX2+FMA+F16C, portable C — compiled
// with per-function target attributes so the file builds without -march; the level is chosen once
// at run time (__builtin_cpu_supports) and may be lowered with T2_SIMD=generic|avx2 or
// t2_simd_force(). Weights are widened in registers: F16 with vcvtph2ps, BF16 by shifting the 16
// bits into the top half of an f32. Decode is memory-bound: the matvec kernels read every weight
// byte once, 4 rows at a time from 4 sequential streams with a software prefetch (SPAN_AVX512), and
// reach ~90% of the machine's read bandwidth for all three dtypes (bench/kernels.md).
#include "core/kernels.h"
#include "core/error.h"
#include "core/util.h"
#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define T2_X86 1
#include <immintrin.h>
#endif

enum { LV_GENERIC, LV_AVX2, LV_AVX512, LV_COUNT };
static const char *const lv_names[LV_COUNT] = {"generic", "avx2", "avx512"};

// A span kernel: y[r] = W[r,:]·x (+ bias[r]) for r in [r0, r1).
typedef void (*span_fn)(float *y, const void *W, const float *x, const float *bias, int r0, int r1,
                        int K);
// A widening kernel: dst(n) = src(n) as f32.
typedef void (*widen_fn)(float *dst, const uint16_t *src, size_t n);
typedef float (*dot_fn)(const float *x, const float *y, int n);

// ---------------------------------------------------------------------------------------------------
// Portable C
// ---------------------------------------------------------------------------------------------------

static float dot_generic(const float *x, const float *y, int n) {
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += x[i] * y[i];
        a1 += x[i + 1] * y[i + 1];
        a2 += x[i + 2] * y[i + 2];
        a3 += x[i + 3] * y[i + 3];
    }
    for (; i < n; i++) a0 += x[i] * y[i];
    return (a0 + a1) + (a2 + a3);
}

static void widen_f16_generic(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = t2_f16_to_f32(src[i]);
}
static void widen_bf16_generic(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = t2_bf16_to_f32(src[i]);
}

static void span_f32_generic(float *y, const void *W, const float *x, const float *bias, int r0,
                             int r1, int K) {
    const float *w = W;
    for (int r = r0; r < r1; r++) y[r] = dot_generic(w + (size_t)r * K, x, K) + (bias ? bias[r] : 0.0f);
}

// 16-bit rows: widen a block at a time into a stack buffer, then dot.
static void span_u16_generic(float *y, const uint16_t *w, const float *x, const float *bias, int r0,
                             int r1, int K, widen_fn widen) {
    float buf[256];
    for (int r = r0; r < r1; r++) {
        const uint16_t *row = w + (size_t)r * K;
        float acc = 0;
        for (int k = 0; k < K; k += 256) {
            int n = K - k < 256 ? K - k : 256;
            widen(buf, row + k, (size_t)n);
            acc += dot_generic(buf, x + k, n);
        }
        y[r] = acc + (bias ? bias[r] : 0.0f);
    }
}
static void span_f16_generic(float *y, const void *W, const float *x, const float *bias, int r0,
                             int r1, int K) {
    span_u16_generic(y, W, x, bias, r0, r1, K, widen_f16_generic);
}
static void span_bf16_generic(float *y, const void *W, const float *x, const float *bias, int r0,
                              int r1, int K) {
    span_u16_generic(y, W, x, bias, r0, r1, K, widen_bf16_generic);
}

#ifdef T2_X86
// ---------------------------------------------------------------------------------------------------
// AVX2 + FMA + F16C (8 lanes). Tails (K % 8) go through a zero-padded 8-element copy.
// ---------------------------------------------------------------------------------------------------
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))

// How far ahead of each weight stream the span kernels prefetch (measured: 1 KiB, bench/kernels.md).
#ifndef PF_BYTES
#define PF_BYTES 1024
#endif
static inline void prefetch4(const void *a, const void *b, const void *c, const void *d) {
    _mm_prefetch((const char *)((uintptr_t)a + PF_BYTES), _MM_HINT_T0);   // never faults
    _mm_prefetch((const char *)((uintptr_t)b + PF_BYTES), _MM_HINT_T0);
    _mm_prefetch((const char *)((uintptr_t)c + PF_BYTES), _MM_HINT_T0);
    _mm_prefetch((const char *)((uintptr_t)d + PF_BYTES), _MM_HINT_T0);
}

AVX2_FN static inline __m256 ld8_f32(const float *p) { return _mm256_loadu_ps(p); }
AVX2_FN static inline __m256 ld8_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
AVX2_FN static inline __m256 ld8_bf16(const uint16_t *p) {
    __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}
AVX2_FN static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_FN static float dot_avx2(const float *x, const float *y, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float s = hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += x[i] * y[i];
    return s;
}

AVX2_FN static void widen_f16_avx2(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, ld8_f16(src + i));
    for (; i < n; i++) dst[i] = t2_f16_to_f32(src[i]);
}
AVX2_FN static void widen_bf16_avx2(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, ld8_bf16(src + i));
    for (; i < n; i++) dst[i] = t2_bf16_to_f32(src[i]);
}

// SPAN_AVX2(name, element type, 8-lane load): the row walk of SPAN_AVX512 (see there), 8 lanes.
#define SPAN_AVX2(NAME, T, LD)                                                                       \
    AVX2_FN static void NAME(float *y, const void *W, const float *x, const float *bias, int r0,     \
                             int r1, int K) {                                                        \
        const T *w = W;                                                                              \
        const int kv = K & ~7, kt = K - kv;                                                          \
        float xt[8] = {0};                                                                           \
        memcpy(xt, x + kv, (size_t)kt * sizeof(float));                                              \
        const __m256 xtv = _mm256_loadu_ps(xt);                                                      \
        const int S = (r1 - r0) / 4;                                                                 \
        const size_t step = (size_t)S * K;                                                           \
        for (int j = 0; j < S; j++) {                                                                \
            const int r = r0 + j;                                                                    \
            const T *w0 = w + (size_t)r * K, *w1 = w0 + step, *w2 = w1 + step, *w3 = w2 + step;      \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                              \
            __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                               \
            int k = 0;                                                                               \
            for (; k + 16 <= K; k += 16) {                                                           \
                prefetch4(w0 + k, w1 + k, w2 + k, w3 + k);                                           \
                __m256 xv = _mm256_loadu_ps(x + k), xw = _mm256_loadu_ps(x + k + 8);                 \
                a0 = _mm256_fmadd_ps(LD(w0 + k), xv, a0);                                            \
                a1 = _mm256_fmadd_ps(LD(w1 + k), xv, a1);                                            \
                a2 = _mm256_fmadd_ps(LD(w2 + k), xv, a2);                                            \
                a3 = _mm256_fmadd_ps(LD(w3 + k), xv, a3);                                            \
                b0 = _mm256_fmadd_ps(LD(w0 + k + 8), xw, b0);                                        \
                b1 = _mm256_fmadd_ps(LD(w1 + k + 8), xw, b1);                                        \
                b2 = _mm256_fmadd_ps(LD(w2 + k + 8), xw, b2);                                        \
                b3 = _mm256_fmadd_ps(LD(w3 + k + 8), xw, b3);                                        \
            }                                                                                        \
            if (k < kv) {                                                                            \
                __m256 xv = _mm256_loadu_ps(x + k);                                                  \
                a0 = _mm256_fmadd_ps(LD(w0 + k), xv, a0);                                            \
                a1 = _mm256_fmadd_ps(LD(w1 + k), xv, a1);                                            \
                a2 = _mm256_fmadd_ps(LD(w2 + k), xv, a2);                                            \
                a3 = _mm256_fmadd_ps(LD(w3 + k), xv, a3);                                            \
            }                                                                                        \
            if (kt) {                                                                                \
                T t[8] = {0};                                                                        \
                memcpy(t, w0 + kv, (size_t)kt * sizeof(T));                                          \
                b0 = _mm256_fmadd_ps(LD(t), xtv, b0);                                                \
                memcpy(t, w1 + kv, (size_t)kt * sizeof(T));                                          \
                b1 = _mm256_fmadd_ps(LD(t), xtv, b1);                                                \
                memcpy(t, w2 + kv, (size_t)kt * sizeof(T));                                          \
                b2 = _mm256_fmadd_ps(LD(t), xtv, b2);                                                \
                memcpy(t, w3 + kv, (size_t)kt * sizeof(T));                                          \
                b3 = _mm256_fmadd_ps(LD(t), xtv, b3);                                                \
            }                                                                                        \
            y[r] = hsum8(_mm256_add_ps(a0, b0)) + (bias ? bias[r] : 0.0f);                           \
            y[r + S] = hsum8(_mm256_add_ps(a1, b1)) + (bias ? bias[r + S] : 0.0f);                   \
            y[r + 2 * S] = hsum8(_mm256_add_ps(a2, b2)) + (bias ? bias[r + 2 * S] : 0.0f);           \
            y[r + 3 * S] = hsum8(_mm256_add_ps(a3, b3)) + (bias ? bias[r + 3 * S] : 0.0f);           \
        }                                                                                            \
        for (int r = r0 + 4 * S; r < r1; r++) {                                                      \
            const T *w0 = w + (size_t)r * K;                                                         \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                               \
            int k = 0;                                                                               \
            for (; k + 16 <= kv; k += 16) {                                                          \
                a0 = _mm256_fmadd_ps(LD(w0 + k), _mm256_loadu_ps(x + k), a0);                       \
                a1 = _mm256_fmadd_ps(LD(w0 + k + 8), _mm256_loadu_ps(x + k + 8), a1);                \
            }                                                                                        \
            for (; k < kv; k += 8) a0 = _mm256_fmadd_ps(LD(w0 + k), _mm256_loadu_ps(x + k), a0);    \
            if (kt) {                                                                                \
                T t[8] = {0};                                                                        \
                memcpy(t, w0 + kv, (size_t)kt * sizeof(T));                                          \
                a1 = _mm256_fmadd_ps(LD(t), xtv, a1);                                                \
            }                                                                                        \
            y[r] = hsum8(_mm256_add_ps(a0, a1)) + (bias ? bias[r] : 0.0f);                           \
        }                                                                                            \
    }

SPAN_AVX2(span_f32_avx2, float, ld8_f32)
SPAN_AVX2(span_f16_avx2, uint16_t, ld8_f16)
SPAN_AVX2(span_bf16_avx2, uint16_t, ld8_bf16)

// ---------------------------------------------------------------------------------------------------
// AVX-512 F/BW/VL (16 lanes). Tails (K % 16) use masked loads, which never touch memory past K.
// ---------------------------------------------------------------------------------------------------
#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

AVX512_FN static inline __m512 ld16_f32(const float *p) { return _mm512_loadu_ps(p); }
AVX512_FN static inline __m512 ld16_f16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
AVX512_FN static inline __m512 ld16_bf16(const uint16_t *p) {
    __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}
AVX512_FN static inline __m512 ldm16_f32(__mmask16 m, const float *p) { return _mm512_maskz_loadu_ps(m, p); }
AVX512_FN static inline __m512 ldm16_f16(__mmask16 m, const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
AVX512_FN static inline __m512 ldm16_bf16(__mmask16 m, const uint16_t *p) {
    __m512i u = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}

AVX512_FN static float dot_avx512(const float *x, const float *y, int n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

AVX512_FN static void widen_f16_avx512(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, ld16_f16(src + i));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, ldm16_f16(m, src + i));
    }
}
AVX512_FN static void widen_bf16_avx512(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, ld16_bf16(src + i));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, ldm16_bf16(m, src + i));
    }
}

// SPAN_AVX512(name, element type, 16-lane load, masked load). The span's rows are walked as four
// interleaved streams — rows j, j+S, j+2S, j+3S for j = 0..S-1, S = rows/4 — so each x load feeds
// 4 FMAs and each stream reads consecutive memory straight across row ends, which the hardware
// prefetchers follow well (4 adjacent rows at a time start 3 fresh streams per group and run F16
// at ~60% of the bandwidth); a software prefetch PF_BYTES ahead on each stream does the rest.
#define SPAN_AVX512(NAME, T, LD, LDM)                                                                \
    AVX512_FN static void NAME(float *y, const void *W, const float *x, const float *bias, int r0,   \
                               int r1, int K) {                                                      \
        const T *w = W;                                                                              \
        const int kv = K & ~15;                                                                      \
        const __mmask16 m = (__mmask16)((1u << (K & 15)) - 1);                                       \
        const __m512 xtv = _mm512_maskz_loadu_ps(m, x + kv);                                         \
        const int S = (r1 - r0) / 4;                                                                 \
        const size_t step = (size_t)S * K;                                                           \
        for (int j = 0; j < S; j++) {                                                                \
            const int r = r0 + j;                                                                    \
            const T *w0 = w + (size_t)r * K, *w1 = w0 + step, *w2 = w1 + step, *w3 = w2 + step;      \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                              \
            __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                               \
            int k = 0;                                                                               \
            for (; k + 32 <= K; k += 32) {                                                           \
                prefetch4(w0 + k, w1 + k, w2 + k, w3 + k);                                           \
                if (sizeof(T) == 4) prefetch4(w0 + k + 16, w1 + k + 16, w2 + k + 16, w3 + k + 16);   \
                __m512 xv = _mm512_loadu_ps(x + k), xw = _mm512_loadu_ps(x + k + 16);                \
                a0 = _mm512_fmadd_ps(LD(w0 + k), xv, a0);                                            \
                a1 = _mm512_fmadd_ps(LD(w1 + k), xv, a1);                                            \
                a2 = _mm512_fmadd_ps(LD(w2 + k), xv, a2);                                            \
                a3 = _mm512_fmadd_ps(LD(w3 + k), xv, a3);                                            \
                b0 = _mm512_fmadd_ps(LD(w0 + k + 16), xw, b0);                                       \
                b1 = _mm512_fmadd_ps(LD(w1 + k + 16), xw, b1);                                       \
                b2 = _mm512_fmadd_ps(LD(w2 + k + 16), xw, b2);                                       \
                b3 = _mm512_fmadd_ps(LD(w3 + k + 16), xw, b3);                                       \
            }                                                                                        \
            if (k < kv) {                                                                            \
                __m512 xv = _mm512_loadu_ps(x + k);                                                  \
                a0 = _mm512_fmadd_ps(LD(w0 + k), xv, a0);                                            \
                a1 = _mm512_fmadd_ps(LD(w1 + k), xv, a1);                                            \
                a2 = _mm512_fmadd_ps(LD(w2 + k), xv, a2);                                            \
                a3 = _mm512_fmadd_ps(LD(w3 + k), xv, a3);                                            \
            }                                                                                        \
            if (m) {                                                                                 \
                b0 = _mm512_fmadd_ps(LDM(m, w0 + kv), xtv, b0);                                      \
                b1 = _mm512_fmadd_ps(LDM(m, w1 + kv), xtv, b1);                                      \
                b2 = _mm512_fmadd_ps(LDM(m, w2 + kv), xtv, b2);                                      \
                b3 = _mm512_fmadd_ps(LDM(m, w3 + kv), xtv, b3);                                      \
            }                                                                                        \
            y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0)) + (bias ? bias[r] : 0.0f);            \
            y[r + S] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1)) + (bias ? bias[r + S] : 0.0f);    \
            y[r + 2 * S] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2)) +                             \
                           (bias ? bias[r + 2 * S] : 0.0f);                                          \
            y[r + 3 * S] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3)) +                             \
                           (bias ? bias[r + 3 * S] : 0.0f);                                          \
        }                                                                                            \
        for (int r = r0 + 4 * S; r < r1; r++) {                                                      \
            const T *w0 = w + (size_t)r * K;                                                         \
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();                               \
            int k = 0;                                                                               \
            for (; k + 32 <= kv; k += 32) {                                                          \
                a0 = _mm512_fmadd_ps(LD(w0 + k), _mm512_loadu_ps(x + k), a0);                       \
                a1 = _mm512_fmadd_ps(LD(w0 + k + 16), _mm512_loadu_ps(x + k + 16), a1);              \
            }                                                                                        \
            for (; k < kv; k += 16) a0 = _mm512_fmadd_ps(LD(w0 + k), _mm512_loadu_ps(x + k), a0);   \
            if (m) a1 = _mm512_fmadd_ps(LDM(m, w0 + kv), xtv, a1);                                   \
            y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) + (bias ? bias[r] : 0.0f);            \
        }                                                                                            \
    }

SPAN_AVX512(span_f32_avx512, float, ld16_f32, ldm16_f32)
SPAN_AVX512(span_f16_avx512, uint16_t, ld16_f16, ldm16_f16)
SPAN_AVX512(span_bf16_avx512, uint16_t, ld16_bf16, ldm16_bf16)
#endif // T2_X86

// ---------------------------------------------------------------------------------------------------
// Dispatch: one table per level, the level chosen once (or forced by tests).
// ---------------------------------------------------------------------------------------------------

typedef struct {
    span_fn span[3];        // by F32, F16, BF16
    widen_fn widen[3];      // F16, BF16 (index 0 unused)
    dot_fn dot;
} kernel_table;

static const kernel_table tables[LV_COUNT] = {
    [LV_GENERIC] = {{span_f32_generic, span_f16_generic, span_bf16_generic},
                    {NULL, widen_f16_generic, widen_bf16_generic}, dot_generic},
#ifdef T2_X86
    [LV_AVX2] = {{span_f32_avx2, span_f16_avx2, span_bf16_avx2},
                 {NULL, widen_f16_avx2, widen_bf16_avx2}, dot_avx2},
    [LV_AVX512] = {{span_f32_avx512, span_f16_avx512, span_bf16_avx512},
                   {NULL, widen_f16_avx512, widen_bf16_avx512}, dot_avx512},
#endif
};

static atomic_int simd_level = -1;

// The best level this CPU (and its OS, which __builtin_cpu_supports checks via XGETBV) runs.
static int cpu_level(void) {
#ifdef T2_X86
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return LV_AVX512;
    if (avx2) return LV_AVX2;
#endif
    return LV_GENERIC;
}

static int level_parse(const char *s) {
    for (int i = 0; i < LV_COUNT; i++)
        if (strcmp(s, lv_names[i]) == 0) return i;
    return -1;
}

static int auto_level(void) {
    int lv = cpu_level();
    const char *env = getenv("T2_SIMD");
    if (env && *env) {
        int want = level_parse(env);
        if (want >= 0 && want < lv) lv = want;   // only ever lower
    }
    return lv;
}

static inline const kernel_table *ktab(void) {
    int lv = atomic_load_explicit(&simd_level, memory_order_relaxed);
    if (lv < 0) {
        lv = auto_level();
        atomic_store(&simd_level, lv);
    }
    return &tables[lv];
}

const char *t2_simd_name(void) {
    ktab();
    return lv_names[atomic_load(&simd_level)];
}

int t2_simd_force(const char *level) {
    if (!level) {
        atomic_store(&simd_level, auto_level());
        return 0;
    }
    int lv = level_parse(level);
    if (lv < 0 || lv > cpu_level()) return -1;
    atomic_store(&simd_level, lv);
    return 0;
}

static int dt_index(t2_dtype dt) {
    switch (dt) {
    case T2_DTYPE_F32: return 0;
    case T2_DTYPE_F16: return 1;
    case T2_DTYPE_BF16: return 2;
    default: T2_ASSERT(!"kernels: weights must be F32, F16 or BF16"); return 0;
    }
}

// ---------------------------------------------------------------------------------------------------
// Matrix-vector
// ---------------------------------------------------------------------------------------------------

typedef struct {
    span_fn fn;
    float *y;
    const void *W;
    const float *x, *bias;
    int M, K, rows;
    int nvec;   // vectors: y(nvec, M) = x(nvec, K) · Wᵀ, a task's rows re-read from cache per vector
} matvec_job;

static void matvec_task(void *ctx, int t, int thread) {
    const matvec_job *j = ctx;
    int r0 = t * j->rows, r1 = r0 + j->rows < j->M ? r0 + j->rows : j->M;
    for (int v = 0; v < j->nvec; v++)
        j->fn(j->y + (size_t)v * j->M, j->W, j->x + (size_t)v * j->K, j->bias, r0, r1, j->K);
}

// Below this many weight bytes a matvec runs on the caller alone: a pool hand-off costs ~1 µs, and a
// 128 KiB matvec takes ~1 µs from L2 (bench/kernels.md).
#define MATVEC_SERIAL_BYTES (128 * 1024)
#ifndef MATVEC_TASK_MIN
#define MATVEC_TASK_MIN (32 * 1024)
#endif
#ifndef MATVEC_TASK_MAX
#define MATVEC_TASK_MAX (512 * 1024)
#endif
#ifndef MATVEC_TASKS_PER_THREAD
#define MATVEC_TASKS_PER_THREAD 8
#endif

// NVEC vectors at once: Y(nvec, M) = X(nvec, K) · W(M,K)ᵀ. Each task's rows (≤ MATVEC_TASK_MAX bytes,
// so they stay in L2) are streamed from memory once and re-read from cache for the other vectors:
// batched decode costs about one weight read, not nvec.
static void matvecs(t2_pool *p, float *y, const void *W, t2_dtype dt, const float *x, const float *bias,
                    int M, int K, int nvec) {
    if (M <= 0) return;
    if (K <= 0) {
        for (int v = 0; v < nvec; v++)
            for (int r = 0; r < M; r++) y[(size_t)v * M + r] = bias ? bias[r] : 0.0f;
        return;
    }
    span_fn fn = ktab()->span[dt_index(dt)];
    int nth = t2_pool_size(p);
    size_t bytes = (size_t)M * (size_t)K * t2_dtype_size(dt);
    if (nth == 1 || bytes < MATVEC_SERIAL_BYTES || M < 8) {
        for (int v = 0; v < nvec; v++) fn(y + (size_t)v * M, W, x + (size_t)v * K, bias, 0, M, K);
        return;
    }
    // MATVEC_TASKS_PER_THREAD (8) tasks per thread for balance on a noisy machine; each task reads
    // at least MATVEC_TASK_MIN bytes (a claim moves a cache line between cores) and at most MATVEC_TASK_MAX
    // (long streams keep the prefetchers ramped up); rows a multiple of 4.
    size_t row_bytes = (size_t)K * t2_dtype_size(dt);
    size_t per = (size_t)MATVEC_TASKS_PER_THREAD * (size_t)nth;
    size_t rows = ((size_t)M + per - 1) / per;
    size_t lo = (MATVEC_TASK_MIN + row_bytes - 1) / row_bytes, hi = MATVEC_TASK_MAX / row_bytes;
    if (rows > hi) rows = hi;
    if (rows < lo) rows = lo;
    rows = (rows + 3) & ~(size_t)3;
    if (rows > (size_t)M) rows = (size_t)M;
    matvec_job j = {fn, y, W, x, bias, M, K, (int)rows, nvec};
    t2_pool_run(p, (int)(((size_t)M + rows - 1) / rows), matvec_task, &j);
}

void t2_matvec(t2_pool *p, float *y, const void *W, t2_dtype dt, const float *x, const float *bias,
               int M, int K) {
    matvecs(p, y, W, dt, x, bias, M, K, 1);
}

void t2_matvec_naive(float *y, const void *W, t2_dtype dt, const float *x, const float *bias, int M,
                     int K) {
    for (int r = 0; r < M; r++) {
        double acc = bias ? bias[r] : 0.0;
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)r * K + k;
            float w = dt == T2_DTYPE_F32 ? ((const float *)W)[i]
                    : dt == T2_DTYPE_F16 ? t2_f16_to_f32(((const uint16_t *)W)[i])
                                         : t2_bf16_to_f32(((const uint16_t *)W)[i]);
            acc += (double)w * x[k];
        }
        y[r] = (float)acc;
    }
}

float t2_dot(const float *x, const float *y, int n) {
    if (n <= 0) return 0.0f;
    return ktab()->dot(x, y, n);
}

// ---------------------------------------------------------------------------------------------------
// Matrix-matrix
// ---------------------------------------------------------------------------------------------------

// Panel height for F16/BF16 weights: wide enough that OpenBLAS's per-call packing of X stays a few
// percent of the work (it repacks X(T,K) once per panel), small enough to stay in the L3. Measured
// on 4864x512x896, 2 threads: 256 rows 188 GFLOP/s, 512 rows 210, 1024 rows 224 (F32: 245).
static int panel_rows(int K) {
    int r = (int)((4u << 20) / (unsigned)(K > 0 ? K : 1));
    r &= ~15;
    if (r > 1024) r = 1024;
    if (r < 256) r = 256;
    return r;
}

size_t t2_matmul_scratch_floats(int K) { return (size_t)panel_rows(K) * (size_t)(K > 0 ? K : 1); }

typedef struct {
    widen_fn widen;
    float *dst;             // (rows, K)
    const uint16_t *src;    // (rows, K)
    int rows, K, per_task;
} widen_job;

static void widen_task(void *ctx, int t, int thread) {
    const widen_job *j = ctx;
    int r0 = t * j->per_task, r1 = r0 + j->per_task < j->rows ? r0 + j->per_task : j->rows;
    size_t off = (size_t)r0 * j->K;
    j->widen(j->dst + off, j->src + off, (size_t)(r1 - r0) * j->K);
}

// Products with at most this many rows of X go through the matvec kernels (see matvecs).
#define MATMUL_MATVEC_MAX_T 8

void t2_matmul(t2_pool *p, float *Y, const float *X, const void *W, t2_dtype dt, const float *bias,
               int T, int M, int K, float *scratch) {
    if (T <= 0 || M <= 0) return;
    if (T <= MATMUL_MATVEC_MAX_T) {   // a few rows (batched decode): weights read once, no widening
        matvecs(p, Y, W, dt, X, bias, M, K, T);
        return;
    }
    // Y starts as the bias rows (beta = 1 then adds the product) or is overwritten (beta = 0).
    float beta = 0.0f;
    if (bias) {
        for (int t = 0; t < T; t++) memcpy(Y + (size_t)t * M, bias, (size_t)M * sizeof(float));
        beta = 1.0f;
    }
    if (K <= 0) {
        if (!bias) memset(Y, 0, (size_t)T * M * sizeof(float));
        return;
    }
    if (dt == T2_DTYPE_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, M, K, 1.0f, X, K, W, K, beta, Y, M);
        return;
    }
    T2_ASSERT(scratch != NULL);
    widen_fn widen = ktab()->widen[dt_index(dt)];
    int P = panel_rows(K);
    for (int m0 = 0; m0 < M; m0 += P) {
        int rows = M - m0 < P ? M - m0 : P;
        widen_job j = {widen, scratch, (const uint16_t *)W + (size_t)m0 * K, rows, K, 16};
        t2_pool_run(p, (rows + 15) / 16, widen_task, &j);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, rows, K, 1.0f, X, K, scratch, K, beta,
                    Y + m0, M);
    }
}

void t2_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void t2_linear_forward(float *Y, const float *X, const float *W, const float *b, int N, int M, int K) {
    t2_sgemm(0, 1, N, M, K, 1.0f, X, K, W, K, 0.0f, Y, M);
    if (b)
        for (int n = 0; n < N; n++)
            for (int m = 0; m < M; m++) Y[(size_t)n * M + m] += b[m];
}

void t2_linear_backward(float *dX, float *dW, float *db, const float *dY, const float *X, const float *W,
                        int N, int M, int K) {
    if (dX) t2_sgemm(0, 0, N, K, M, 1.0f, dY, M, W, K, 1.0f, dX, K);
    t2_sgemm(1, 0, M, K, N, 1.0f, dY, M, X, K, 1.0f, dW, K);
    if (db)
        for (int n = 0; n < N; n++)
            for (int m = 0; m < M; m++) db[m] += dY[(size_t)n * M + m];
}

void t2_matmul_naive(float *Y, const float *X, const void *W, t2_dtype dt, const float *bias, int T,
                     int M, int K) {
    for (int t = 0; t < T; t++) t2_matvec_naive(Y + (size_t)t * M, W, dt, X + (size_t)t * K, bias, M, K);
}

// out(N, C) = x / rms(x) * w; rinv(N) = 1/sqrt(mean(x²) + eps)
void t2_rmsnorm_forward(float *out, float *rinv, const float *x, const float *w, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)xr[i] * xr[i];
        float r = (float)(1.0 / sqrt(ss / C + eps));
        rinv[n] = r;
        for (int i = 0; i < C; i++) out[(size_t)n * C + i] = xr[i] * r * w[i];
    }
}

// dx(N, C) += r·(dy⊙w) − r³/C · x · Σ(dy⊙w⊙x); dw(C) += Σ_n dy⊙x·r
void t2_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                             const float *rinv, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *dyr = dy + (size_t)n * C;
        float *dxr = dx + (size_t)n * C;
        float r = rinv[n];
        double dot = 0;
        for (int i = 0; i < C; i++) dot += (double)dyr[i] * w[i] * xr[i];
        float k = (float)(dot * r * r * r / C);
        for (int i = 0; i < C; i++) {
            dxr[i] += r * dyr[i] * w[i] - k * xr[i];
            dw[i] += dyr[i] * xr[i] * r;
        }
    }
}
