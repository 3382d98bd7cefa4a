// sampler.c — picks the next token from a row of logits. It is not a beam search and keeps no
// per-sequence state besides its random generator.
//
// The chain, in llama.cpp's default order (common/sampling: penalties → top-k → top-p → min-p →
// temperature → dist):
//   1. repetition penalty (CTRL, Keskar et al. 2019, as llama.cpp applies it): each *distinct*
//      token among the last repeat_last_n of HISTORY gets logit/penalty if logit > 0, else
//      logit*penalty; repeat_last_n 0 = off, < 0 = the whole history. Applied to LOGITS in place.
//   2. temperature <= 0: greedy — argmax, ties to the lowest id. The filters below are skipped.
//   3. top-k (k > 0): keep the k best, by partial selection (a k-heap, O(V log k)).
//   4. top-p (< 1): sort the survivors, keep the smallest prefix whose softmax mass is >= top_p
//      (always at least one token).
//   5. min-p (> 0): drop tokens with p < min_p * p_max, i.e. logit < max + log(min_p).
//   6. temperature: divide the survivors' logits by T, softmax, draw with the seeded generator.
// Filters 4–5 see the distribution at temperature 1 (as in llama.cpp); only the final draw is
// tempered. Ties are broken by token id everywhere, so a seed fixes the output sequence.
// NaN logits count as -inf and +inf as the largest float; a row that is all -inf/NaN yields 0.
// Memory: one block allocated in t2_sampler_new (candidates + penalty marks for the vocabulary);
// t2_sampler_sample allocates nothing.
#include "language/sampler.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/util.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct { float x; int32_t id; } cand;   // a candidate token: its (working) logit and id

struct t2_sampler {
    int vocab;
    t2_sampler_params p;
    t2_rng rng;
    cand *cand;        // (vocab) survivors of the filters
    uint32_t *mark;    // (vocab) mark[t] == stamp: t was already penalised in this call
    uint32_t stamp;
};

t2_sampler_params t2_sampler_defaults(void) {
    t2_sampler_params p = {
        .temperature = 0.0f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
        .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0,
    };
    return p;
}

t2_sampler *t2_sampler_new(int vocab, t2_sampler_params p) {
    if (vocab <= 0) return t2_fail_null("sampler: vocabulary size must be positive (got %d)", vocab);
    if (isnan(p.temperature) || isnan(p.top_p) || isnan(p.min_p) || isnan(p.repeat_penalty))
        return t2_fail_null("sampler: NaN parameter (temperature %g, top_p %g, min_p %g, repeat_penalty %g)",
                            p.temperature, p.top_p, p.min_p, p.repeat_penalty);
    if (!(p.repeat_penalty > 0))
        return t2_fail_null("sampler: repeat_penalty must be > 0 (1 = off), got %g", p.repeat_penalty);
    size_t head = (sizeof(t2_sampler) + 63) & ~(size_t)63;
    char *block = t2_calloc(1, head + (size_t)vocab * (sizeof(cand) + sizeof(uint32_t)));
    t2_sampler *s = (t2_sampler *)block;
    s->vocab = vocab;
    s->p = p;
    s->cand = (cand *)(block + head);
    s->mark = (uint32_t *)(block + head + (size_t)vocab * sizeof(cand));
    t2_rng_seed(&s->rng, p.seed);
    return s;
}

void t2_sampler_free(t2_sampler *s) { free(s); }

// Logit as the filters see it: NaN → -inf, +inf → FLT_MAX (keeps softmax arithmetic finite).
static float clean(float x) {
    if (isnan(x)) return -INFINITY;
    return x == INFINITY ? FLT_MAX : x;
}

static void apply_penalty(t2_sampler *s, float *logits, const int32_t *history, int n) {
    float pen = s->p.repeat_penalty;
    int last_n = s->p.repeat_last_n;
    if (pen == 1.0f || last_n == 0 || !history || n <= 0) return;
    if (++s->stamp == 0) {   // wrapped after 2^32 calls: forget old marks
        memset(s->mark, 0, (size_t)s->vocab * sizeof *s->mark);
        s->stamp = 1;
    }
    int start = (last_n < 0 || last_n >= n) ? 0 : n - last_n;
    for (int i = start; i < n; i++) {
        int32_t t = history[i];
        if (t < 0 || t >= s->vocab || s->mark[t] == s->stamp) continue;
        s->mark[t] = s->stamp;
        logits[t] = logits[t] > 0 ? logits[t] / pen : logits[t] * pen;
    }
}

// a ranks above b: larger logit, then smaller id.
static int better(const cand *a, const cand *b) { return a->x > b->x || (a->x == b->x && a->id < b->id); }

static int by_rank(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

// Restore the heap property below I in H(k), whose root holds the worst kept candidate.
static void sift_down(cand *h, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && better(&h[w], &h[l])) w = l;
        if (r < k && better(&h[w], &h[r])) w = r;
        if (w == i) return;
        cand t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

// Keep the K best of C(m) in C[0..k), unordered.
static void select_top_k(cand *c, int m, int k) {
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    for (int j = k; j < m; j++)
        if (better(&c[j], &c[0])) { c[0] = c[j]; sift_down(c, k, 0); }
}

// Smallest prefix of the sorted C(m) with softmax mass >= top_p; returns its length (>= 1).
static int cut_top_p(cand *c, int m, float top_p) {
    qsort(c, (size_t)m, sizeof *c, by_rank);
    if (top_p <= 0) return 1;
    double sum = 0;
    for (int i = 0; i < m; i++) sum += exp((double)c[i].x - c[0].x);
    double cum = 0;
    for (int i = 0; i < m; i++) {
        cum += exp((double)c[i].x - c[0].x) / sum;
        if (cum >= top_p) return i + 1;
    }
    return m;
}

// Drop candidates with p < min_p * p_max; keeps the order of the rest.
static int cut_min_p(cand *c, int m, float min_p) {
    float mx = -INFINITY;
    for (int i = 0; i < m; i++) mx = c[i].x > mx ? c[i].x : mx;
    double floor_x = (double)mx + log(min_p < 1 ? (double)min_p : 1.0);
    int kept = 0;
    for (int i = 0; i < m; i++)
        if ((double)c[i].x >= floor_x) c[kept++] = c[i];
    return kept;
}

int t2_sampler_sample(t2_sampler *s, float *logits, const int32_t *history, int n) {
    T2_ASSERT(s && logits);
    const t2_sampler_params *p = &s->p;
    const int V = s->vocab;
    apply_penalty(s, logits, history, n);

    if (!(p->temperature > 0)) {   // greedy
        int best = 0;
        float bx = clean(logits[0]);
        for (int i = 1; i < V; i++) {
            float x = clean(logits[i]);
            if (x > bx) { bx = x; best = i; }
        }
        return best;
    }

    cand *c = s->cand;
    int m = 0;
    for (int i = 0; i < V; i++) {
        float x = clean(logits[i]);
        if (x > -INFINITY) c[m++] = (cand){x, i};
    }
    if (m == 0) return 0;
    if (p->top_k > 0 && p->top_k < m) { select_top_k(c, m, p->top_k); m = p->top_k; }
    if (p->top_p < 1.0f && m > 1) m = cut_top_p(c, m, p->top_p);
    if (p->min_p > 0.0f && m > 1) m = cut_min_p(c, m, p->min_p);

    // Tempered softmax over the survivors, then one uniform draw walked along the cumulative mass.
    float mx = -INFINITY;
    for (int i = 0; i < m; i++) mx = c[i].x > mx ? c[i].x : mx;
    double inv_t = 1.0 / p->temperature, sum = 0;
    for (int i = 0; i < m; i++) {
        c[i].x = (float)exp(((double)c[i].x - mx) * inv_t);
        sum += c[i].x;
    }
    double u = (double)t2_rng_uniform(&s->rng) * sum, acc = 0;
    for (int i = 0; i < m; i++) {
        acc += c[i].x;
        if (u < acc) return c[i].id;
    }
    return c[m - 1].id;   // u landed on the rounding slack at the very end
}
