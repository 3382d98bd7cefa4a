// bench_kernels.c — how fast the kernels of kernels.h run on this machine; figures go to
// bench/kernels.md. Prints: the machine's plain read bandwidth (the decode limit), t2_matvec GB/s per
// weight dtype with 1 and 2 threads on Qwen2-0.5B shapes (and Llama-3.2-1B shapes, BF16), the
// pool's per-call overhead, and t2_matmul GFLOP/s (OpenBLAS sgemm) for the prefill shape
// 4864x512x896 (M x T x K).
// Weights are cycled through a 2 GiB buffer so they come from DRAM, as in a real decode step, not
// from the (large) L3. Every figure is the median of several repeats (the machine is shared).
// Not for: correctness (tests/test_kernels.c).
// Usage: bench_kernels [--quick] [--file PATH]   (T2_SIMD=generic|avx2 lowers the SIMD level)
//   --file PATH: only the page-placement check: BF16 matvec 2048x2048 over PATH's mmap (as a model's
//   weights are read) against the same bytes copied into fresh anonymous memory, and a histogram of
//   1-thread read GB/s per 2 MiB piece of the mmap.
#include "core/kernels.h"
#include "core/pool.h"
#include "core/util.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static size_t buf_bytes = (size_t)2 << 30;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---- plain read bandwidth: the best a matvec could do. Each 4 MiB task reads 4 interleaved
// streams with a software prefetch 1 KiB ahead (the access pattern of the matvec kernels, no math).
typedef struct {
    const float *p;
    size_t n_per_task;
    float sums[64];
} read_job;

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float sum_avx512(const float *p, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t q = n / 4;
    const float *p0 = p, *p1 = p + q, *p2 = p + 2 * q, *p3 = p + 3 * q;
    for (size_t i = 0; i + 16 <= q; i += 16) {
        _mm_prefetch((const char *)(p0 + i) + 1024, _MM_HINT_T0);
        _mm_prefetch((const char *)(p1 + i) + 1024, _MM_HINT_T0);
        _mm_prefetch((const char *)(p2 + i) + 1024, _MM_HINT_T0);
        _mm_prefetch((const char *)(p3 + i) + 1024, _MM_HINT_T0);
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p0 + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p1 + i));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p2 + i));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p3 + i));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
#endif
static float sum_any(const float *p, size_t n) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return sum_avx512(p, n);
#endif
    return t2_dot(p, p, (int)n);
}
static void read_task(void *ctx, int t, int thread) {
    read_job *j = ctx;
    j->sums[t & 63] += sum_any(j->p + (size_t)t * j->n_per_task, j->n_per_task);
}

static double read_gbs(t2_pool *pool, const float *buf, int reps) {
    size_t chunk = (size_t)1 << 20;   // floats per task (4 MiB)
    int ntasks = (int)(buf_bytes / 4 / chunk);
    read_job j = {buf, chunk, {0}};
    double v[16];
    for (int r = 0; r < reps; r++) {
        double t0 = t2_now();
        t2_pool_run(pool, ntasks, read_task, &j);
        v[r] = (double)ntasks * chunk * 4 / (t2_now() - t0) / 1e9;
    }
    return median(v, reps);
}

// ---- matvec: every copy of W(M,K) in the buffer once per repeat ----
static double matvec_gbs(t2_pool *pool, const void *buf, t2_dtype dt, int M, int K, const float *x,
                         float *y, int reps) {
    size_t bytes = (size_t)M * K * t2_dtype_size(dt);
    size_t copies = buf_bytes / bytes;
    if (copies < 1) copies = 1;
    double v[16];
    for (int r = 0; r < reps; r++) {
        double t0 = t2_now();
        for (size_t c = 0; c < copies; c++)
            t2_matvec(pool, y, (const char *)buf + c * bytes, dt, x, NULL, M, K);
        v[r] = (double)copies * bytes / (t2_now() - t0) / 1e9;
    }
    return median(v, reps);
}

// ---- pool hand-off cost: back-to-back calls of 2 tasks that each spin for WORK_US ----
static void spin_task(void *ctx, int t, int thread) {
    double us = *(const double *)ctx, t0 = t2_now();
    while ((t2_now() - t0) * 1e6 < us) {}
}

static double pool_call_us(t2_pool *pool, double work_us) {
    double v[7];
    int calls = 20000;
    for (int r = 0; r < 7; r++) {
        double t0 = t2_now();
        for (int i = 0; i < calls; i++) t2_pool_run(pool, 2, spin_task, &work_us);
        v[r] = (t2_now() - t0) / calls * 1e6;
    }
    return median(v, 7);
}

// Small in-cache matvecs as a tiny model's decode issues them: µs per call (below 128 KiB of
// weights t2_matvec stays on the caller).
static double small_matvec_us(t2_pool *pool, const void *W, int M, int K, const float *x, float *y) {
    double v[7];
    int calls = 2000;
    for (int r = 0; r < 7; r++) {
        double t0 = t2_now();
        for (int i = 0; i < calls; i++) t2_matvec(pool, y, W, T2_DTYPE_F32, x, NULL, M, K);
        v[r] = (t2_now() - t0) / calls * 1e6;
    }
    return median(v, 7);
}

// ---- matmul ----
static double matmul_gflops(t2_pool *pool, const void *W, t2_dtype dt, const float *X, float *Y,
                            float *scratch, int T, int M, int K, int reps) {
    double v[16];
    t2_matmul(pool, Y, X, W, dt, NULL, T, M, K, scratch);   // warm-up (OpenBLAS buffers, threads)
    for (int r = 0; r < reps; r++) {
        double t0 = t2_now();
        t2_matmul(pool, Y, X, W, dt, NULL, T, M, K, scratch);
        v[r] = 2.0 * T * M * K / (t2_now() - t0) / 1e9;
    }
    return median(v, reps);
}

// ---- page placement: the same weights read from a file's mmap (page cache) and from an anon copy.
// On the build VM the page cache of one model file read at 22-25 GB/s while an anon copy of it read
// at 28-32 with the same kernel: the speed of a 2 MiB piece depends on where it sits in (guest)
// physical memory, not on the matrix shape (bench/kernels.md).
static int file_check(t2_pool *pool, const char *path, const float *x, float *y, int reps) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) { perror(path); return 1; }
    size_t bytes = (size_t)st.st_size & ~(((size_t)2 << 20) - 1);
    const char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED || bytes == 0) { fprintf(stderr, "%s: cannot mmap (or under 2 MiB)\n", path); return 1; }
    size_t saved = buf_bytes;
    buf_bytes = bytes;
    volatile char sink = 0;
    for (size_t i = 0; i < bytes; i += 4096) sink += map[i];   // fault every page in first
    char *copy = t2_aligned_alloc(bytes);
    memcpy(copy, map, bytes);
    printf("%s: %.2f GB\n", path, bytes / 1e9);
    for (int r = 0; r < 3; r++)
        printf("  BF16 matvec 2048x2048, 2 threads: mmap %.1f GB/s, anon copy %.1f GB/s\n",
               matvec_gbs(pool, map, T2_DTYPE_BF16, 2048, 2048, x, y, reps),
               matvec_gbs(pool, copy, T2_DTYPE_BF16, 2048, 2048, x, y, reps));
    size_t piece = (size_t)2 << 20, n = bytes / piece;
    int hist[40] = {0};
    double *v = t2_aligned_alloc(n * 5 * sizeof(double));   // (n, 5): a pass over all pieces per repeat
    for (int r = 0; r < 5; r++)
        for (size_t c = 0; c < n; c++) {
            double t0 = t2_now();
            sink += (char)sum_any((const float *)(map + c * piece), piece / 4);
            v[c * 5 + r] = piece / (t2_now() - t0) / 1e9;
        }
    for (size_t c = 0; c < n; c++) {
        int b = (int)median(v + c * 5, 5);
        hist[b < 39 ? b : 39]++;
    }
    free(v);
    printf("  1-thread read GB/s per 2 MiB piece of the mmap (GB/s:pieces):");
    for (int b = 0; b < 40; b++)
        if (hist[b]) printf(" %d:%d", b, hist[b]);
    printf("\n");
    buf_bytes = saved;
    munmap((void *)map, (size_t)st.st_size);
    free(copy);
    return 0;
}

int main(int argc, char **argv) {
    t2_blas_init(argc, argv);
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const char *file = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--file") == 0) file = argv[i + 1];
    if (quick) buf_bytes = (size_t)1 << 30;
    int reps = quick ? 3 : 7;
    printf("t2 kernels bench: simd %s, %d cores, OpenBLAS core %s (%s)\n", t2_simd_name(), t2_ncores(),
           t2_blas_core(), t2_blas_note());

    // weights: every u16 is a normal half in [0.5, 1) (and a normal bf16/f32), so no value is special
    uint16_t *buf = t2_aligned_alloc(file ? 64 : buf_bytes);
    uint32_t s = 12345;
    for (size_t i = 0; i < (file ? 0 : buf_bytes / 2); i++) {
        s = s * 1664525u + 1013904223u;
        buf[i] = (uint16_t)(0x3800 | (s >> 22));
    }
    enum { KMAX = 8192 };
    float *x = t2_aligned_alloc(KMAX * sizeof(float));
    for (int k = 0; k < KMAX; k++) x[k] = (float)((k * 37) % 101) / 101.0f - 0.5f;
    float *y = t2_aligned_alloc((size_t)151936 * sizeof(float));

    t2_pool *pools[2] = {t2_pool_new(1), t2_pool_new(2)};
    if (file) {
        free(buf);
        int rc = file_check(pools[1], file, x, y, reps);
        t2_pool_free(pools[0]);
        t2_pool_free(pools[1]);
        free(x), free(y);
        return rc;
    }
    printf("\nplain read bandwidth (%.0f GiB buffer, 4 streams + prefetch per thread, GB/s): "
           "1 thread %.1f, 2 threads %.1f\n", buf_bytes / 1073741824.0,
           read_gbs(pools[0], (const float *)buf, reps), read_gbs(pools[1], (const float *)buf, reps));

    static const struct { int M, K; const char *what; } shapes[] = {
        {4864, 896, "mlp up/gate 4864x896"}, {151936, 896, "lm_head 151936x896"}};
    // Llama-3.2-1B shapes (BF16, 2 threads): q/o, k/v, gate/up, down, tied lm_head.
    static const struct { int M, K; const char *what; } lshapes[] = {
        {2048, 2048, "q/o 2048x2048"}, {512, 2048, "k/v 512x2048"}, {8192, 2048, "gate/up 8192x2048"},
        {2048, 8192, "down 2048x8192"}, {128256, 2048, "lm_head 128256x2048"}};
    static const t2_dtype dts[] = {T2_DTYPE_F32, T2_DTYPE_F16, T2_DTYPE_BF16};
    printf("\nmatvec GB/s of weights read (median of %d passes over a %.0f GiB set of copies)\n", reps,
           buf_bytes / 1073741824.0);
    printf("%-22s %-5s %10s %10s\n", "shape", "dtype", "1 thread", "2 threads");
    for (int si = 0; si < 2; si++)
        for (int d = 0; d < 3; d++) {
            double g1 = matvec_gbs(pools[0], buf, dts[d], shapes[si].M, shapes[si].K, x, y, reps);
            double g2 = matvec_gbs(pools[1], buf, dts[d], shapes[si].M, shapes[si].K, x, y, reps);
            printf("%-22s %-5s %10.1f %10.1f\n", shapes[si].what, t2_dtype_name(dts[d]), g1, g2);
        }
    for (int si = 0; si < 5; si++)
        printf("%-22s %-5s %10s %10.1f\n", lshapes[si].what, "BF16", "-",
               matvec_gbs(pools[1], buf, T2_DTYPE_BF16, lshapes[si].M, lshapes[si].K, x, y, reps));

    printf("\npool hand-off, 2 threads, 2 tasks per call: empty tasks %.2f us per call; "
           "1 us tasks %.2f us per call (1.00 = free)\n", pool_call_us(pools[1], 0), pool_call_us(pools[1], 1));
    static const int small[][2] = {{288, 288}, {768, 288}, {896, 896}};
    for (int i = 0; i < 3; i++)
        printf("small F32 matvec %dx%d (in cache): 1 thread %.2f us, 2 threads %.2f us per call\n",
               small[i][0], small[i][1], small_matvec_us(pools[0], buf, small[i][0], small[i][1], x, y),
               small_matvec_us(pools[1], buf, small[i][0], small[i][1], x, y));

    // prefill: Y(512, 4864) = X(512, 896) · W(4864, 896)ᵀ
    int T = 512, M = 4864, K = 896;
    float *X = t2_aligned_alloc((size_t)T * K * sizeof(float));
    for (size_t i = 0; i < (size_t)T * K; i++) X[i] = (float)(i % 97) / 97.0f - 0.5f;
    float *Y = t2_aligned_alloc((size_t)T * M * sizeof(float));
    float *scratch = t2_aligned_alloc(t2_matmul_scratch_floats(K) * sizeof(float));
    printf("\nmatmul %dx%dx%d (MxTxK) GFLOP/s, median of %d\n", M, T, K, reps);
    printf("%-5s %10s %10s\n", "dtype", "1 thread", "2 threads");
    for (int d = 0; d < 3; d++) {
        t2_blas_threads(1);
        double g1 = matmul_gflops(pools[0], buf, dts[d], X, Y, scratch, T, M, K, reps);
        t2_blas_threads(2);
        double g2 = matmul_gflops(pools[1], buf, dts[d], X, Y, scratch, T, M, K, reps);
        printf("%-5s %10.1f %10.1f\n", t2_dtype_name(dts[d]), g1, g2);
    }
    t2_pool_free(pools[0]);
    t2_pool_free(pools[1]);
    free(buf), free(x), free(y), free(X), free(Y), free(scratch);
    return 0;
}
