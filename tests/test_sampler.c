// test_sampler.c — language/sampler.c and core/rng.c. The sampler's draws are held against a naive
// twin written here (full sort, double precision, the same documented chain) with a chi-square
// bound over 200k draws; greedy against a plain argmax; the repetition penalty against values
// worked out by hand; plus seeding, edge cases (vocab 1, -inf/NaN/+inf rows) and the generator's
// own moments.
#include "testutil.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/util.h"
#include "language/sampler.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DRAWS 200000

static t2_sampler_params params(float temp, int top_k, float top_p, float min_p, uint64_t seed) {
    t2_sampler_params p = t2_sampler_defaults();
    p.temperature = temp; p.top_k = top_k; p.top_p = top_p; p.min_p = min_p; p.seed = seed;
    p.repeat_penalty = 1.0f;
    return p;
}

// ---- the naive twin ------------------------------------------------------------------------------

static const double *g_x;
static int by_logit(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (g_x[i] != g_x[j]) return g_x[i] > g_x[j] ? -1 : 1;
    return i - j;
}

// OUT(V): the probability of each token after top-k → top-p → min-p → temperature (no penalty).
static void ref_probs(const float *logits, int V, t2_sampler_params p, double *out) {
    double *x = malloc((size_t)V * sizeof *x);
    int *order = malloc((size_t)V * sizeof *order);
    for (int i = 0; i < V; i++) {
        x[i] = isnan(logits[i]) ? -INFINITY : logits[i];
        order[i] = i;
        out[i] = 0;
    }
    g_x = x;
    qsort(order, (size_t)V, sizeof *order, by_logit);
    int m = 0;
    while (m < V && x[order[m]] > -INFINITY) m++;
    if (p.top_k > 0 && p.top_k < m) m = p.top_k;
    if (p.top_p < 1 && m > 1) {
        double z = 0, cum = 0;
        for (int i = 0; i < m; i++) z += exp(x[order[i]] - x[order[0]]);
        int keep = m;
        for (int i = 0; i < m; i++) {
            cum += exp(x[order[i]] - x[order[0]]) / z;
            if (cum >= p.top_p) { keep = i + 1; break; }
        }
        m = keep;
    }
    int kept[4096], nk = 0;
    for (int i = 0; i < m; i++)
        if (p.min_p <= 0 || exp(x[order[i]] - x[order[0]]) >= p.min_p) kept[nk++] = order[i];
    double z = 0;
    for (int i = 0; i < nk; i++) z += exp((x[kept[i]] - x[kept[0]]) / p.temperature);
    for (int i = 0; i < nk; i++) out[kept[i]] = exp((x[kept[i]] - x[kept[0]]) / p.temperature) / z;
    free(x);
    free(order);
}

// Draw DRAWS tokens and compare the histogram with EXPECT(V): no draw outside the support, and a
// chi-square (bins with expected count < 5 pooled) within df + 6·sqrt(2·df) + 5.
static void check_distribution(const char *name, const float *logits, int V, t2_sampler_params p,
                               const double *expect) {
    t2_sampler *s = t2_sampler_new(V, p);
    T2_CHECK(s != NULL, "%s: sampler_new: %s", name, t2_last_error());
    if (!s) return;
    long *count = calloc((size_t)V, sizeof *count);
    float *row = malloc((size_t)V * sizeof *row);
    int outside = 0;
    for (int d = 0; d < DRAWS; d++) {
        memcpy(row, logits, (size_t)V * sizeof *row);
        int t = t2_sampler_sample(s, row, NULL, 0);
        if (t < 0 || t >= V || expect[t] == 0) outside++;
        else count[t]++;
    }
    double chi2 = 0, pool_e = 0, pool_o = 0;
    int bins = 0;
    for (int i = 0; i < V; i++) {
        double e = expect[i] * DRAWS;
        if (expect[i] == 0) continue;
        if (e < 5) { pool_e += e; pool_o += (double)count[i]; continue; }
        chi2 += (count[i] - e) * (count[i] - e) / e;
        bins++;
    }
    if (pool_e > 0) { chi2 += (pool_o - pool_e) * (pool_o - pool_e) / pool_e; bins++; }
    int df = bins > 1 ? bins - 1 : 1;
    double bound = df + 6 * sqrt(2.0 * df) + 5;
    printf("%s %s: chi2 %.1f (df %d, bound %.1f), %d draws outside the support\n",
           chi2 <= bound && outside == 0 ? "ok  " : "FAIL", name, chi2, df, bound, outside);
    T2_CHECK(outside == 0, "%s: %d draws outside the expected support", name, outside);
    T2_CHECK(chi2 <= bound, "%s: chi-square %.1f above %.1f", name, chi2, bound);
    free(count);
    free(row);
    t2_sampler_free(s);
}

static void random_logits(t2_rng *r, float *x, int V, float scale) {
    for (int i = 0; i < V; i++) x[i] = scale * t2_rng_normal(r);
}

// ---- tests ---------------------------------------------------------------------------------------

static void test_rng(void) {
    t2_rng a, b;
    t2_rng_seed(&a, 42);
    t2_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= t2_rng_u64(&a) == t2_rng_u64(&b);
    T2_CHECK(same, "same seed must give the same stream");
    t2_rng_seed(&b, 43);
    int differ = 0;
    for (int i = 0; i < 100; i++) differ += t2_rng_u64(&a) != t2_rng_u64(&b);
    T2_CHECK(differ > 90, "different seeds must give different streams (%d/100 differ)", differ);

    const int N = 1000000;
    double su = 0, sn = 0, sn2 = 0;
    float umin = 1, umax = 0;
    long below[7] = {0};
    t2_rng_seed(&a, 0);
    for (int i = 0; i < N; i++) {
        float u = t2_rng_uniform(&a), g = t2_rng_normal(&a);
        su += u; sn += g; sn2 += (double)g * g;
        umin = u < umin ? u : umin; umax = u > umax ? u : umax;
        below[t2_rng_below(&a, 7)]++;
    }
    T2_CHECK(umin >= 0.0f && umax < 1.0f, "uniform outside [0,1): [%g, %g]", umin, umax);
    T2_CHECK(fabs(su / N - 0.5) < 0.002, "uniform mean %g", su / N);
    T2_CHECK(fabs(sn / N) < 0.005, "normal mean %g", sn / N);
    T2_CHECK(fabs(sn2 / N - 1.0) < 0.01, "normal variance %g", sn2 / N);
    for (int k = 0; k < 7; k++)
        T2_CHECK(fabs(below[k] / (double)N - 1.0 / 7) < 0.003, "t2_rng_below(7) frequency of %d: %g", k,
                 below[k] / (double)N);
    T2_CHECK(t2_rng_below(&a, 0) == 0 && t2_rng_below(&a, 1) == 0, "below(0|1) = 0");
    printf("ok   rng: uniform mean %.4f, normal mean %.4f var %.4f\n", su / N, sn / N, sn2 / N);
}

static void test_greedy(void) {
    enum { V = 1000 };
    t2_rng r;
    t2_rng_seed(&r, 7);
    float x[V];
    t2_sampler *s = t2_sampler_new(V, t2_sampler_defaults());
    int bad = 0;
    for (int row = 0; row < 200; row++) {
        random_logits(&r, x, V, 3.0f);
        int want = 0;
        for (int i = 1; i < V; i++) if (x[i] > x[want]) want = i;
        bad += t2_sampler_sample(s, x, NULL, 0) != want;
    }
    T2_CHECK(bad == 0, "greedy differs from argmax on %d/200 rows", bad);
    for (int i = 0; i < V; i++) x[i] = 0;
    x[500] = x[17] = x[900] = 2.5f;
    T2_CHECK(t2_sampler_sample(s, x, NULL, 0) == 17, "greedy tie must go to the lowest id");
    t2_sampler_free(s);

    // top-k = 1 at any temperature is greedy.
    t2_sampler *k1 = t2_sampler_new(V, params(1.5f, 1, 1.0f, 0.0f, 3));
    bad = 0;
    for (int row = 0; row < 200; row++) {
        random_logits(&r, x, V, 1.0f);
        if (row % 10 == 0) x[3] = x[4] = 50.0f;   // a tie at the top now and then
        int want = 0;
        for (int i = 1; i < V; i++) if (x[i] > x[want]) want = i;
        bad += t2_sampler_sample(k1, x, NULL, 0) != want;
    }
    T2_CHECK(bad == 0, "top_k=1 differs from greedy on %d/200 rows", bad);
    t2_sampler_free(k1);
    printf("ok   greedy and top_k=1 equal argmax\n");
}

static void test_seeding(void) {
    enum { V = 300, T = 2000 };
    t2_rng r;
    t2_rng_seed(&r, 11);
    float *rows = malloc((size_t)T * V * sizeof *rows), x[V];
    for (int t = 0; t < T; t++) random_logits(&r, rows + (size_t)t * V, V, 2.0f);
    int seq[3][T];
    uint64_t seeds[3] = {1234, 1234, 1235};
    for (int k = 0; k < 3; k++) {
        t2_sampler *s = t2_sampler_new(V, params(0.9f, 40, 0.95f, 0.02f, seeds[k]));
        for (int t = 0; t < T; t++) {
            memcpy(x, rows + (size_t)t * V, sizeof x);
            seq[k][t] = t2_sampler_sample(s, x, NULL, 0);
        }
        t2_sampler_free(s);
    }
    int same = 0, diff = 0;
    for (int t = 0; t < T; t++) { same += seq[0][t] == seq[1][t]; diff += seq[0][t] != seq[2][t]; }
    T2_CHECK(same == T, "same seed: %d/%d draws equal", same, T);
    T2_CHECK(diff > T / 10, "different seed: only %d/%d draws differ", diff, T);
    printf("ok   seeding: same seed identical, other seed differs on %d/%d\n", diff, T);
    free(rows);
}

static void test_distributions(void) {
    enum { V = 24 };
    t2_rng r;
    t2_rng_seed(&r, 5);
    float x[V];
    random_logits(&r, x, V, 1.5f);
    double expect[V];
    struct { const char *name; t2_sampler_params p; } cfg[] = {
        {"softmax T=1",        params(1.0f, 0, 1.0f, 0.0f, 1)},
        {"softmax T=0.7",      params(0.7f, 0, 1.0f, 0.0f, 2)},
        {"top_k=5",            params(1.0f, 5, 1.0f, 0.0f, 3)},
        {"top_p=0.6",          params(1.0f, 0, 0.6f, 0.0f, 4)},
        {"min_p=0.2",          params(1.0f, 0, 1.0f, 0.2f, 5)},
        {"k10 p0.8 m0.05 T1.3", params(1.3f, 10, 0.8f, 0.05f, 6)},
    };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        ref_probs(x, V, cfg[i].p, expect);
        check_distribution(cfg[i].name, x, V, cfg[i].p, expect);
    }
    // Without filters the expectation is the plain softmax: check the twin agrees with it too.
    ref_probs(x, V, cfg[0].p, expect);
    double z = 0, worst = 0;
    for (int i = 0; i < V; i++) z += exp(x[i]);
    for (int i = 0; i < V; i++) worst = fmax(worst, fabs(expect[i] - exp(x[i]) / z));
    T2_CHECK(worst < 1e-12, "naive twin's softmax off by %g", worst);
}

static void test_filters_by_hand(void) {
    // top-p tiny → the top token only.
    enum { V = 50 };
    t2_rng r;
    t2_rng_seed(&r, 9);
    float x[V], row[V];
    random_logits(&r, x, V, 1.0f);
    int top = 0;
    for (int i = 1; i < V; i++) if (x[i] > x[top]) top = i;
    t2_sampler *s = t2_sampler_new(V, params(1.0f, 0, 1e-6f, 0.0f, 1));
    int bad = 0;
    for (int d = 0; d < 5000; d++) { memcpy(row, x, sizeof x); bad += t2_sampler_sample(s, row, NULL, 0) != top; }
    T2_CHECK(bad == 0, "top_p=1e-6 drew a non-top token %d times", bad);
    t2_sampler_free(s);

    // min-p: p = (.5 .3 .1 .06 .04), min_p .15 → threshold .075 → exactly {0, 1, 2}.
    float mp[5] = {logf(0.5f), logf(0.3f), logf(0.1f), logf(0.06f), logf(0.04f)};
    long seen[5] = {0};
    s = t2_sampler_new(5, params(1.0f, 0, 1.0f, 0.15f, 2));
    for (int d = 0; d < 20000; d++) {
        float m5[5];
        memcpy(m5, mp, sizeof m5);
        seen[t2_sampler_sample(s, m5, NULL, 0)]++;
    }
    T2_CHECK(seen[0] && seen[1] && seen[2] && !seen[3] && !seen[4],
             "min_p kept the wrong tokens: %ld %ld %ld %ld %ld", seen[0], seen[1], seen[2], seen[3], seen[4]);
    // renormalised over {0,1,2}: .5/.9 = .556
    T2_CHECK(fabs(seen[0] / 20000.0 - 0.5 / 0.9) < 0.02, "min_p: token 0 frequency %g", seen[0] / 20000.0);
    t2_sampler_free(s);
    printf("ok   top_p tiny → top token; min_p keeps {0,1,2}\n");
}

static void test_repetition_penalty(void) {
    t2_sampler_params p = t2_sampler_defaults();
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 64;
    t2_sampler *s = t2_sampler_new(4, p);
    float x[4] = {2.0f, 1.8f, -0.5f, -0.6f};
    int32_t hist[] = {0, 0, 3};   // token 0 twice: penalised once (distinct tokens)
    int t = t2_sampler_sample(s, x, hist, 3);
    T2_CHECK(x[0] == 2.0f / 1.5f, "positive logit divided once: %.9g", x[0]);
    T2_CHECK(x[1] == 1.8f && x[2] == -0.5f, "unseen tokens untouched");
    T2_CHECK(x[3] == -0.6f * 1.5f, "negative logit multiplied: %.9g", x[3]);
    T2_CHECK(t == 1, "penalty must move the argmax from 0 to 1 (got %d)", t);

    // Window: only the last 3 tokens count, so token 0 (4 back) is not penalised.
    t2_sampler_free(s);
    p.repeat_last_n = 3;
    s = t2_sampler_new(4, p);
    float y[4] = {2.0f, 1.8f, 1.0f, 0.0f};
    int32_t h2[] = {0, 2, 2, 2, 7, -1};   // out-of-range ids are ignored
    t = t2_sampler_sample(s, y, h2, 4);
    T2_CHECK(y[0] == 2.0f && y[2] == 1.0f / 1.5f && t == 0, "window of 3: y0 %.9g y2 %.9g t %d", y[0], y[2], t);
    float y2[4] = {2.0f, 1.8f, 1.0f, 0.0f};
    t = t2_sampler_sample(s, y2, h2, 6);
    T2_CHECK(y2[0] == 2.0f && y2[2] == 1.0f / 1.5f && y2[3] == 0.0f, "ids 7 and -1 ignored");
    t2_sampler_free(s);

    // repeat_last_n < 0: the whole history; 0: off.
    p.repeat_last_n = -1;
    s = t2_sampler_new(4, p);
    float z[4] = {2.0f, 1.8f, 1.0f, 0.0f};
    int32_t h3[] = {0, 1, 1, 1, 1, 1, 1, 1};
    t = t2_sampler_sample(s, z, h3, 8);
    T2_CHECK(z[0] == 2.0f / 1.5f && z[1] == 1.8f / 1.5f && t == 0, "whole history: %.9g %.9g", z[0], z[1]);
    t2_sampler_free(s);
    p.repeat_last_n = 0;
    s = t2_sampler_new(4, p);
    float w[4] = {2.0f, 1.8f, 1.0f, 0.0f};
    t2_sampler_sample(s, w, h3, 8);
    T2_CHECK(w[0] == 2.0f && w[1] == 1.8f, "repeat_last_n 0 = off");
    t2_sampler_free(s);
    printf("ok   repetition penalty matches the hand computation\n");
}

static void test_edges(void) {
    // vocab 1
    for (int greedy = 0; greedy < 2; greedy++) {
        t2_sampler *s = t2_sampler_new(1, params(greedy ? 0.0f : 1.0f, 40, 0.9f, 0.1f, 1));
        int ok = 1;
        for (int i = 0; i < 100; i++) { float x = (float)i - 50; ok &= t2_sampler_sample(s, &x, NULL, 0) == 0; }
        T2_CHECK(ok, "vocab 1 must always give 0 (greedy %d)", greedy);
        t2_sampler_free(s);
    }
    // all -inf except one, NaNs never drawn, +inf wins, all -inf/NaN gives 0
    enum { V = 64 };
    float x[V];
    t2_sampler_params cfgs[] = {params(0, 0, 1, 0, 1), params(1, 0, 1, 0, 2), params(1, 5, 0.9f, 0.1f, 3),
                                params(2.0f, 0, 0.5f, 0.0f, 4)};
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        t2_sampler *s = t2_sampler_new(V, cfgs[c]);
        int bad = 0;
        for (int d = 0; d < 2000; d++) {
            for (int i = 0; i < V; i++) x[i] = -INFINITY;
            x[37] = -3.0f;
            bad += t2_sampler_sample(s, x, NULL, 0) != 37;
            for (int i = 0; i < V; i++) x[i] = (i % 3 == 0) ? NAN : (float)(i % 5) * 0.1f;
            int t = t2_sampler_sample(s, x, NULL, 0);
            bad += t < 0 || t >= V || t % 3 == 0;
            for (int i = 0; i < V; i++) x[i] = (float)i;
            x[11] = INFINITY;
            bad += t2_sampler_sample(s, x, NULL, 0) != 11;
            for (int i = 0; i < V; i++) x[i] = (i % 2) ? NAN : -INFINITY;
            bad += t2_sampler_sample(s, x, NULL, 0) != 0;
        }
        T2_CHECK(bad == 0, "edge rows: %d bad draws (config %zu)", bad, c);
        t2_sampler_free(s);
    }
    // construction errors
    t2_error_clear();
    T2_CHECK(t2_sampler_new(0, t2_sampler_defaults()) == NULL && strstr(t2_last_error(), "vocabulary"),
             "vocab 0 must fail: %s", t2_last_error());
    t2_sampler_params bad = t2_sampler_defaults();
    bad.repeat_penalty = 0;
    T2_CHECK(t2_sampler_new(10, bad) == NULL, "repeat_penalty 0 must fail");
    bad = t2_sampler_defaults();
    bad.top_p = NAN;
    T2_CHECK(t2_sampler_new(10, bad) == NULL, "NaN top_p must fail");
    t2_sampler_params d = t2_sampler_defaults();
    T2_CHECK(d.temperature == 0 && d.repeat_penalty == 1 && d.seed == 0 && d.top_k == 40 && d.top_p == 0.95f &&
             d.min_p == 0.05f && d.repeat_last_n == 64, "defaults");
    printf("ok   edge cases\n");
}

int main(int argc, char **argv) {
    t2_test_init(argc, argv);
    test_rng();
    test_greedy();
    test_seeding();
    test_distributions();
    test_filters_by_hand();
    test_repetition_penalty();
    test_edges();
    return t2_test_done();
}
