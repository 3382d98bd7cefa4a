// test_kernels.c — holds the optimised kernels (kernels.h) against their naive twins, and tests the
// thread pool (pool.h) and the OpenBLAS core check (blas.c).
// Covers: every SIMD level this CPU runs (forced one by one), F32/F16/BF16 weights, odd shapes,
// bias on/off, pool sizes 1/2/3 and NULL; every half-precision value through the scalar and the SIMD
// widening paths; the scalar f16 conversions against numpy (tests/ref/kernels_f16.py).
// Not for: speed (bench/bench_kernels.c), or the layers built on these kernels.
#include "testutil.h"
#include "core/kernels.h"
#include "core/pool.h"
#include "core/util.h"
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) {   // uniform in [-1, 1)
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1 << 23))) - 1.0f;
}

// W(M,K) of random values in DT (rounded there), returned with an f32 copy of its max |value|.
static void *rand_weights(t2_dtype dt, int M, int K, float *wmax) {
    size_t n = (size_t)M * K;
    float *f = t2_malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = frand();
    void *w = t2_malloc((n ? n : 1) * t2_dtype_size(dt));
    t2_from_f32(w, f, dt, n);
    t2_to_f32(f, w, dt, n);
    *wmax = 0;
    for (size_t i = 0; i < n; i++) *wmax = fmaxf(*wmax, fabsf(f[i]));
    free(f);
    return w;
}

static uint32_t rand_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

static const t2_dtype dts[3] = {T2_DTYPE_F32, T2_DTYPE_F16, T2_DTYPE_BF16};
static const char *const levels[3] = {"generic", "avx2", "avx512"};

// ------------------------------------------------------------------------------------------------
// Pool
// ------------------------------------------------------------------------------------------------

typedef struct {
    atomic_int *count;
    int nthreads;
    atomic_int bad_thread;
} count_ctx;

static void count_task(void *ctx, int t, int thread) {
    count_ctx *c = ctx;
    if (thread < 0 || thread >= c->nthreads) atomic_store(&c->bad_thread, 1);
    volatile float s = 0;   // a little uneven work
    for (int i = 0; i < (t * 7919) % 200; i++) s += (float)i;
    atomic_fetch_add(&c->count[t], 1);
}

// Runs N-task jobs REPS times (n varying when n < 0) and checks every task ran exactly once.
static void pool_check(t2_pool *p, const char *what, int n, int reps, int gap_us) {
    int maxn = n < 0 ? 1000 : n;
    atomic_int *count = t2_calloc((size_t)maxn + 1, sizeof *count);
    count_ctx c = {count, t2_pool_size(p), 0};
    int wrong = 0;
    for (int r = 0; r < reps; r++) {
        int nt = n < 0 ? (r * 37) % (maxn + 1) : n;
        for (int i = 0; i <= maxn; i++) atomic_store(&count[i], 0);
        t2_pool_run(p, nt, count_task, &c);
        for (int i = 0; i <= maxn; i++)
            if (atomic_load(&count[i]) != (i < nt)) wrong++;
        if (gap_us) usleep((useconds_t)gap_us);
    }
    T2_CHECK(wrong == 0, "%s: %d tasks ran other than exactly once", what, wrong);
    T2_CHECK(atomic_load(&c.bad_thread) == 0, "%s: thread index out of range", what);
    free(count);
}

static void test_pool(void) {
    T2_CHECK(t2_ncores() >= 1, "ncores %d", t2_ncores());
    T2_CHECK(t2_pool_size(NULL) == 1, "NULL pool size");
    pool_check(NULL, "NULL pool", -1, 50, 0);
    for (int n = 1; n <= 4; n++) {
        t2_pool *p = t2_pool_new(n);
        T2_CHECK(t2_pool_size(p) == n, "pool size %d != %d", t2_pool_size(p), n);
        char what[64];
        snprintf(what, sizeof what, "pool %d: varying tasks", n);
        pool_check(p, what, -1, 3000, 0);
        snprintf(what, sizeof what, "pool %d: 0 tasks", n);
        pool_check(p, what, 0, 100, 0);
        snprintf(what, sizeof what, "pool %d: fewer tasks than threads", n);
        pool_check(p, what, n > 1 ? n - 1 : 1, 2000, 0);
        snprintf(what, sizeof what, "pool %d: gaps past the spin (sleep/wake)", n);
        pool_check(p, what, 64, 100, 300);
        t2_pool_free(p);
    }
    // workers that never spin: every call goes through the condition variable
    setenv("T2_POOL_SPIN_US", "0", 1);
    t2_pool *p = t2_pool_new(3);
    pool_check(p, "pool 3, no spinning", -1, 2000, 0);
    pool_check(p, "pool 3, no spinning, gaps", 7, 50, 100);
    t2_pool_free(p);
    unsetenv("T2_POOL_SPIN_US");
    t2_pool *q = t2_pool_new(0);
    T2_CHECK(t2_pool_size(q) == t2_ncores(), "pool 0 = cores");
    t2_pool_free(q);
    t2_pool_free(NULL);
}

// ------------------------------------------------------------------------------------------------
// Matvec / matmul / dot against the naive twins
// ------------------------------------------------------------------------------------------------

static const int shapes[][2] = {{1, 1},   {1, 17},  {3, 1},   {5, 16},  {7, 15},    {16, 16},
                                {17, 17}, {33, 31}, {64, 100}, {4, 33}, {1000, 777}, {129, 4099},
                                {300, 64}, {8, 1},   {67, 1000}, {257, 260}};

static double tol_for(int K, float wmax, float xmax, float bmax) {
    return 1e-5 * sqrt((double)K) * wmax * xmax + 1e-6 * bmax + 1e-7;
}

// Worst diff / tol over a group of cases, reported once per group.
static double worst_ratio;

static void matvec_case(t2_pool *p, const char *lv, t2_dtype dt, int M, int K, int with_bias) {
    float wmax, xmax = 0, bmax = 0;
    void *W = rand_weights(dt, M, K, &wmax);
    float *x = t2_malloc((size_t)(K ? K : 1) * sizeof(float));
    float *b = t2_malloc((size_t)M * sizeof(float));
    float *y = t2_malloc(((size_t)M + 1) * sizeof(float)), *ref = t2_malloc((size_t)M * sizeof(float));
    for (int k = 0; k < K; k++) xmax = fmaxf(xmax, fabsf(x[k] = frand()));
    for (int m = 0; m < M; m++) bmax = fmaxf(bmax, fabsf(b[m] = 3 * frand()));
    y[M] = 12345.0f;   // guard: nothing past M is written
    const float *bias = with_bias ? b : NULL;
    t2_matvec(p, y, W, dt, x, bias, M, K);
    t2_matvec_naive(ref, W, dt, x, bias, M, K);
    double tol = tol_for(K, wmax, xmax, with_bias ? bmax : 0), worst = 0;
    for (int m = 0; m < M; m++) {
        double d = fabs((double)y[m] - ref[m]);
        if (!(d <= worst)) worst = d;
    }
    T2_CHECK(worst <= tol && y[M] == 12345.0f, "matvec %s %s M=%d K=%d bias=%d pool=%d: diff %.3g tol %.3g",
             lv, t2_dtype_name(dt), M, K, with_bias, t2_pool_size(p), worst, tol);
    if (worst / tol > worst_ratio || isnan(worst)) worst_ratio = isnan(worst) ? INFINITY : worst / tol;
    free(W), free(x), free(b), free(y), free(ref);
}

static void matmul_case(t2_pool *p, const char *lv, t2_dtype dt, int T, int M, int K, int with_bias) {
    float wmax, xmax = 0, bmax = 0;
    void *W = rand_weights(dt, M, K, &wmax);
    size_t nx = (size_t)T * K, ny = (size_t)T * M;
    float *X = t2_malloc((nx ? nx : 1) * sizeof(float));
    float *b = t2_malloc((size_t)M * sizeof(float));
    float *Y = t2_malloc(ny * sizeof(float)), *ref = t2_malloc(ny * sizeof(float));
    float *scratch = t2_malloc(t2_matmul_scratch_floats(K) * sizeof(float));
    for (size_t i = 0; i < nx; i++) xmax = fmaxf(xmax, fabsf(X[i] = frand()));
    for (int m = 0; m < M; m++) bmax = fmaxf(bmax, fabsf(b[m] = 3 * frand()));
    for (size_t i = 0; i < ny; i++) Y[i] = NAN;   // everything must be written
    const float *bias = with_bias ? b : NULL;
    t2_matmul(p, Y, X, W, dt, bias, T, M, K, scratch);
    t2_matmul_naive(ref, X, W, dt, bias, T, M, K);
    double tol = tol_for(K, wmax, xmax, with_bias ? bmax : 0), worst = 0;
    for (size_t i = 0; i < ny; i++) {
        double d = fabs((double)Y[i] - ref[i]);
        if (!(d <= worst)) worst = d;
    }
    T2_CHECK(worst <= tol, "matmul %s %s T=%d M=%d K=%d bias=%d pool=%d: diff %.3g tol %.3g", lv,
             t2_dtype_name(dt), T, M, K, with_bias, t2_pool_size(p), worst, tol);
    if (worst / tol > worst_ratio || isnan(worst)) worst_ratio = isnan(worst) ? INFINITY : worst / tol;
    free(W), free(X), free(b), free(Y), free(ref), free(scratch);
}

static void test_products(void) {
    t2_pool *pools[3] = {NULL, t2_pool_new(1), t2_pool_new(2)};
    t2_pool *p3 = t2_pool_new(3);
    for (int l = 0; l < 3; l++) {
        if (t2_simd_force(levels[l]) != 0) {
            printf("skip %s: this CPU lacks it\n", levels[l]);
            continue;
        }
        T2_CHECK(strcmp(t2_simd_name(), levels[l]) == 0, "forced %s, got %s", levels[l], t2_simd_name());
        for (int d = 0; d < 3; d++) {
            worst_ratio = 0;
            int cases = 0;
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (int bias = 0; bias < 2; bias++)
                    for (int pi = 0; pi < 3; pi++, cases++)
                        matvec_case(pools[pi], levels[l], dts[d], shapes[s][0], shapes[s][1], bias);
            matvec_case(p3, levels[l], dts[d], 4864, 896, 1);   // a real decode shape, 3 threads
            matvec_case(pools[2], levels[l], dts[d], 4864, 896, 0);
            printf("ok   matvec %-7s %-4s: %d cases, worst diff/tol %.3f\n", levels[l],
                   t2_dtype_name(dts[d]), cases + 2, worst_ratio);

            worst_ratio = 0;
            cases = 0;
            static const int mshapes[][2] = {{1, 1}, {7, 5}, {37, 17}, {1100, 17}, {300, 777}, {2100, 64}};
            static const int Ts[] = {1, 3, 64};
            for (size_t s = 0; s < sizeof mshapes / sizeof mshapes[0]; s++)
                for (int ti = 0; ti < 3; ti++)
                    for (int bias = 0; bias < 2; bias++, cases++)
                        matmul_case(pools[(s + bias) % 2 ? 2 : 0], levels[l], dts[d], Ts[ti], mshapes[s][0],
                                    mshapes[s][1], bias);
            printf("ok   matmul %-7s %-4s: %d cases, worst diff/tol %.3f\n", levels[l],
                   t2_dtype_name(dts[d]), cases, worst_ratio);
        }
        // dot
        static const int ns[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1000, 4099};
        float *a = t2_malloc(4099 * sizeof(float)), *b = t2_malloc(4099 * sizeof(float));
        for (int i = 0; i < 4099; i++) a[i] = frand(), b[i] = frand();
        double worst = 0;
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            double ref = 0;
            for (int k = 0; k < ns[i]; k++) ref += (double)a[k] * b[k];
            // the n elements sit at the end of the buffers, so an overread would hit ASan's guard
            float got = t2_dot(a + 4099 - ns[i], b + 4099 - ns[i], ns[i]);
            double ref2 = 0;
            for (int k = 4099 - ns[i]; k < 4099; k++) ref2 += (double)a[k] * b[k];
            (void)ref;
            double d = fabs(got - ref2) / tol_for(ns[i], 1, 1, 0);
            if (!(d <= worst)) worst = d;
        }
        T2_CHECK(worst <= 1, "dot %s: worst diff/tol %.3f", levels[l], worst);
        printf("ok   dot    %-7s: worst diff/tol %.3f\n", levels[l], worst);
        free(a), free(b);
    }
    T2_CHECK(t2_simd_force("avx1024") == -1, "unknown level accepted");
    T2_CHECK(t2_simd_force(NULL) == 0, "back to auto");
    printf("simd level (auto): %s\n", t2_simd_name());
    for (int i = 0; i < 3; i++) t2_pool_free(pools[i]);
    t2_pool_free(p3);
}

// ------------------------------------------------------------------------------------------------
// Half precision: every value through the scalar conversions and through each SIMD widening path
// ------------------------------------------------------------------------------------------------

static int same_float(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

static void test_halves(const t2_test_env *e) {
    int bad_f16 = 0, bad_bf16 = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = t2_f16_to_f32((uint16_t)h);
        uint16_t back = t2_f32_to_f16(f);
        if (isnan(f) ? !(((back >> 10) & 31) == 31 && (back & 0x3ff)) : back != h) bad_f16++;
        float g = t2_bf16_to_f32((uint16_t)h);
        uint16_t backb = t2_f32_to_bf16(g);
        if (isnan(g) ? !isnan(t2_bf16_to_f32(backb)) : backb != h) bad_bf16++;
    }
    T2_CHECK(bad_f16 == 0, "%d halves do not survive f16 -> f32 -> f16", bad_f16);
    T2_CHECK(bad_bf16 == 0, "%d bfloat16s do not survive bf16 -> f32 -> bf16", bad_bf16);

    // numpy holds the scalar f16 conversions (both directions) to account
    char path[4096];
    float *all = t2_malloc(65536 * sizeof(float));
    for (uint32_t h = 0; h < 65536; h++) all[h] = t2_f16_to_f32((uint16_t)h);
    enum { NPROBE = 200000 };
    float *probe = t2_malloc(NPROBE * sizeof(float));
    uint16_t *probe16 = t2_malloc(NPROBE * sizeof(uint16_t));
    for (int i = 0; i < NPROBE; i++) {
        uint32_t u = rand_u32();
        if (i % 4 == 0)   // inside the f16 range, including its subnormals
            u = (u & 0x80000000u) | (0x33000000u + u % (0x47800000u - 0x33000000u));
        else if (i % 4 == 1) {   // exactly halfway between two adjacent finite halves: ties to even
            uint16_t h = (uint16_t)((u & 0x8000u) | (u >> 16) % 0x7bffu);
            float mid = (t2_f16_to_f32(h) + t2_f16_to_f32((uint16_t)(h + 1))) / 2;   // exact in f32
            memcpy(&u, &mid, 4);
        }
        memcpy(&probe[i], &u, 4);
        probe16[i] = t2_f32_to_f16(probe[i]);
    }
    snprintf(path, sizeof path, "%s/f16_all.f32", e->work);
    t2_write_file_atomic(path, all, 65536 * sizeof(float));
    snprintf(path, sizeof path, "%s/probe.f32", e->work);
    t2_write_file_atomic(path, probe, NPROBE * sizeof(float));
    snprintf(path, sizeof path, "%s/probe.f16", e->work);
    t2_write_file_atomic(path, probe16, NPROBE * sizeof(uint16_t));
    fflush(stdout);
    int rc = t2_test_python(e, "kernels_f16.py", "'%s'", e->work);
    T2_CHECK(rc == 0, "tests/ref/kernels_f16.py disagrees with the scalar f16 conversions (rc %d)", rc);

    // SIMD widening: matvec with K=1, x=1 gives y = w; matmul with K=1, X=1 gives Y(t,:) = w
    uint16_t *w = t2_malloc(65536 * sizeof(uint16_t));
    for (uint32_t h = 0; h < 65536; h++) w[h] = (uint16_t)h;
    float one[3] = {1, 1, 1};
    float *y = t2_malloc(3 * 65536 * sizeof(float));
    float *scratch = t2_malloc(t2_matmul_scratch_floats(1) * sizeof(float));
    t2_pool *p = t2_pool_new(2);
    for (int l = 0; l < 3; l++) {
        if (t2_simd_force(levels[l]) != 0) continue;
        for (int d = 1; d < 3; d++) {
            t2_dtype dt = dts[d];
            int bad = 0;
            t2_matvec(p, y, w, dt, one, NULL, 65536, 1);
            for (uint32_t h = 0; h < 65536; h++) {
                float ref = dt == T2_DTYPE_F16 ? t2_f16_to_f32((uint16_t)h) : t2_bf16_to_f32((uint16_t)h);
                bad += !same_float(y[h], ref);
            }
            t2_matmul(p, y, one, w, dt, NULL, 3, 65536, 1, scratch);
            for (int t = 0; t < 3; t++)
                for (uint32_t h = 0; h < 65536; h++) {
                    float ref = dt == T2_DTYPE_F16 ? t2_f16_to_f32((uint16_t)h) : t2_bf16_to_f32((uint16_t)h);
                    bad += !same_float(y[(size_t)t * 65536 + h], ref);
                }
            T2_CHECK(bad == 0, "%s %s widening: %d of 4x65536 values differ from the scalar path", levels[l],
                     t2_dtype_name(dt), bad);
            if (!bad) printf("ok   widen  %-7s %-4s: all 65536 values, matvec + matmul\n", levels[l], t2_dtype_name(dt));
        }
    }
    t2_simd_force(NULL);
    t2_pool_free(p);
    free(all), free(probe), free(probe16), free(w), free(y), free(scratch);
}

// ------------------------------------------------------------------------------------------------
// OpenBLAS core check
// ------------------------------------------------------------------------------------------------

static void test_blas(void) {
    T2_CHECK(t2_blas_core_fix("Prescott", 1, 1) && !strcmp(t2_blas_core_fix("Prescott", 1, 1), "SkylakeX"), "Prescott on AVX-512");
    T2_CHECK(t2_blas_core_fix("Haswell", 1, 1) && !strcmp(t2_blas_core_fix("Haswell", 1, 1), "SkylakeX"), "Haswell on AVX-512");
    T2_CHECK(t2_blas_core_fix("SkylakeX", 1, 1) == NULL, "SkylakeX on AVX-512");
    T2_CHECK(t2_blas_core_fix("cooperlake", 1, 1) == NULL, "Cooperlake on AVX-512 (case)");
    T2_CHECK(t2_blas_core_fix("SapphireRapids", 1, 1) == NULL, "SapphireRapids on AVX-512");
    T2_CHECK(t2_blas_core_fix("Nehalem", 0, 1) && !strcmp(t2_blas_core_fix("Nehalem", 0, 1), "Haswell"), "Nehalem on AVX2");
    T2_CHECK(t2_blas_core_fix("Sandybridge", 0, 1) && !strcmp(t2_blas_core_fix("Sandybridge", 0, 1), "Haswell"), "Sandybridge on AVX2");
    T2_CHECK(t2_blas_core_fix("Haswell", 0, 1) == NULL, "Haswell on AVX2");
    T2_CHECK(t2_blas_core_fix("Zen", 0, 1) == NULL, "Zen on AVX2");
    T2_CHECK(t2_blas_core_fix("Prescott", 0, 0) == NULL, "Prescott on SSE only");
    T2_CHECK(t2_blas_core_fix(NULL, 1, 1) == NULL, "no name");

    // The real thing, in child copies of this program (see main): what they detect and report.
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    T2_CHECK(n > 0, "readlink /proc/self/exe");
    if (n <= 0) return;
    self[n] = 0;
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
    char *out = NULL;
    fflush(stdout);
    int rc = t2_test_sh(&out, "env -u OPENBLAS_CORETYPE -u T2_BLAS_REEXEC -u T2_BLAS_TEST_CORENAME "
                              "T2_KTEST_BLAS_CHILD=1 '%s' a b c d 2>&1", self);
    printf("blas (as found):         %s", out);
    T2_CHECK(rc == 0 && strstr(out, "fix=none"), "plain run ends on a weak core: %s", out);
    free(out);
    rc = t2_test_sh(&out, "env -u T2_BLAS_REEXEC OPENBLAS_CORETYPE=Prescott T2_KTEST_BLAS_CHILD=1 '%s' a b c d 2>&1",
                    self);
    printf("blas (user: Prescott):   %s", out);
    T2_CHECK(rc == 0 && strstr(out, "core=Prescott note=set by OPENBLAS_CORETYPE"), "user's choice not kept: %s", out);
    if (avx512) T2_CHECK(strstr(out, "SkylakeX would suit") != NULL, "no advice: %s", out);
    free(out);
    rc = t2_test_sh(&out, "env -u OPENBLAS_CORETYPE -u T2_BLAS_REEXEC T2_BLAS_TEST_CORENAME=Prescott "
                          "T2_KTEST_BLAS_CHILD=1 '%s' a b c d 2>&1", self);
    printf("blas (pretend Prescott): %s", out);
    if (avx512)
        T2_CHECK(rc == 0 && strstr(out, "core=SkylakeX note=re-exec from Prescott") && strstr(out, "args=5"),
                 "no re-exec as SkylakeX: %s", out);
    else if (avx2)
        T2_CHECK(rc == 0 && strstr(out, "core=Haswell note=re-exec from Prescott"), "no re-exec as Haswell: %s", out);
    free(out);
}

int main(int argc, char **argv) {
    if (getenv("T2_KTEST_BLAS_CHILD")) {   // child of test_blas: what would t2 see?
        t2_blas_init(argc, argv);
        int avx512 = 0, avx2 = 0;
        __builtin_cpu_init();
        avx512 = __builtin_cpu_supports("avx512f");
        avx2 = __builtin_cpu_supports("avx2");
        const char *fix = t2_blas_core_fix(t2_blas_core(), avx512, avx2);
        printf("core=%s note=%s fix=%s args=%d reexec_env=%s\n", t2_blas_core(), t2_blas_note(),
               fix ? fix : "none", argc, getenv("T2_BLAS_REEXEC") ? "left" : "cleared");
        return 0;
    }
    t2_test_env e = t2_test_init(argc, argv);
    printf("simd %s, %d cores, OpenBLAS core %s\n", t2_simd_name(), t2_ncores(), t2_blas_core());
    test_pool();
    test_products();
    test_halves(&e);
    test_blas();
    return t2_test_done();
}
