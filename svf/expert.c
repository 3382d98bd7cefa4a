// expert.c — what SVF does with a decomposition: the parameterisations σ'(z) (official sigmoid mask
// with the sum-preserving rescale, or the paper's plain scaling), recomposition W' = U diag(σ') Vᵀ,
// the exact z-gradient for the trainer, z-vector experts as files and their mixtures, and the adapter
// that swaps recomposed matrices into a t2_lm with an LRU cache. Not here: the SVD cache (svf.c), the
// REINFORCE loop, dispatch. Maths and formats: docs/svf.md.
#include "svf/svf.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/rng.h"
#include "core/util.h"
#include "language/lm_train.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// σ'(z) and its backward

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

void t2_svf_sigma(const t2_svf_matrix *m, const float *z, int param, float *sigma) {
    int k = m->k;
    if (param == T2_SVF_PARAM_SCALE) {
        for (int i = 0; i < k; i++) sigma[i] = m->S[i] * z[i];
        return;
    }
    // official: σ' = S ⊙ m · c, m = sigmoid(z), c = ΣS / Σ(S ⊙ m)
    double A = 0, B = 0;
    for (int i = 0; i < k; i++) {
        A += m->S[i];
        B += m->S[i] * sigmoid(z[i]);
    }
    double c = B > 0 ? A / B : 0;
    for (int i = 0; i < k; i++) sigma[i] = (float)(m->S[i] * sigmoid(z[i]) * c);
}

// Official: σ'_i = S_i m_i c with c = A/B, A = ΣS, B = Σ_j S_j m_j, so ∂c/∂m_j = −c S_j / B and
//   dL/dm_j = c S_j g_j − (c S_j / B) Σ_i g_i S_i m_i,   dL/dz_j = dL/dm_j · m_j (1 − m_j).
// Scale: σ'_i = S_i z_i, dL/dz_i = S_i g_i.
void t2_svf_sigma_backward(const t2_svf_matrix *m, const float *z, int param, const float *g, float *dz) {
    int k = m->k;
    if (param == T2_SVF_PARAM_SCALE) {
        for (int i = 0; i < k; i++) dz[i] += m->S[i] * g[i];
        return;
    }
    double A = 0, B = 0, gsm = 0;
    for (int i = 0; i < k; i++) {
        double mi = sigmoid(z[i]);
        A += m->S[i];
        B += m->S[i] * mi;
        gsm += (double)g[i] * m->S[i] * mi;
    }
    if (!(B > 0)) return;
    double c = A / B;
    for (int j = 0; j < k; j++) {
        double mj = sigmoid(z[j]);
        double dm = c * m->S[j] * g[j] - c * m->S[j] / B * gsm;
        dz[j] += (float)(dm * mj * (1 - mj));
    }
}

void t2_svf_recompose(const t2_svf *s, int i, const float *z, int param, float *W, float *scratch) {
    const t2_svf_matrix *m = t2_svf_at(s, i);
    int k = m->k, R = m->rows, C = m->cols;
    float *own = scratch ? NULL : t2_malloc(((size_t)k * k + k) * sizeof(float));
    float *sc = scratch ? scratch : own;
    float *sigma = own ? own + (size_t)k * k : t2_malloc((size_t)k * sizeof(float));
    t2_svf_sigma(m, z, param, sigma);
    // Scale the square factor (k, k) — V when rows >= cols, else U — and multiply by the other.
    const float *F = R >= C ? m->V : m->U;
    for (int r = 0; r < k; r++)
        for (int j = 0; j < k; j++) sc[(size_t)r * k + j] = F[(size_t)r * k + j] * sigma[j];
    if (R >= C) t2_sgemm(0, 1, R, C, k, 1.0f, m->U, k, sc, k, 0.0f, W, C);   // U · (V diag σ')ᵀ
    else t2_sgemm(0, 1, R, C, k, 1.0f, sc, k, m->V, k, 0.0f, W, C);         // (U diag σ') · Vᵀ
    if (own) free(own);
    else free(sigma);
}

void t2_svf_grad_z(const t2_svf *s, int i, const float *z, int param, const float *X, const float *dY,
                   int rows, float *dz, float *scratch) {
    const t2_svf_matrix *m = t2_svf_at(s, i);
    int k = m->k;
    float *own = scratch ? NULL : t2_malloc((2 * (size_t)rows * k + k) * sizeof(float));
    float *P = scratch ? scratch : own, *Q = P + (size_t)rows * k;
    float *g = own ? own + 2 * (size_t)rows * k : t2_malloc((size_t)k * sizeof(float));
    t2_sgemm(0, 0, rows, k, m->rows, 1.0f, dY, m->rows, m->U, k, 0.0f, P, k);   // dY U: (rows, k)
    t2_sgemm(0, 0, rows, k, m->cols, 1.0f, X, m->cols, m->V, k, 0.0f, Q, k);    // X V:  (rows, k)
    for (int j = 0; j < k; j++) {
        double acc = 0;
        for (int r = 0; r < rows; r++) acc += (double)P[(size_t)r * k + j] * Q[(size_t)r * k + j];
        g[j] = (float)acc;
    }
    t2_svf_sigma_backward(m, z, param, g, dz);
    if (own) free(own);
    else free(g);
}

void t2_svf_grad_z_dw(const t2_svf *s, int i, const float *z, int param, const float *dW, float *dz,
                      float *scratch) {
    const t2_svf_matrix *m = t2_svf_at(s, i);
    int k = m->k;
    float *own = scratch ? NULL : t2_malloc(((size_t)m->rows * k + k) * sizeof(float));
    float *T = scratch ? scratch : own;
    float *g = own ? own + (size_t)m->rows * k : t2_malloc((size_t)k * sizeof(float));
    t2_sgemm(0, 0, m->rows, k, m->cols, 1.0f, dW, m->cols, m->V, k, 0.0f, T, k);   // dW V: (rows, k)
    for (int j = 0; j < k; j++) {
        double acc = 0;
        for (int a = 0; a < m->rows; a++) acc += (double)m->U[(size_t)a * k + j] * T[(size_t)a * k + j];
        g[j] = (float)acc;
    }
    t2_svf_sigma_backward(m, z, param, g, dz);
    if (own) free(own);
    else free(g);
}

// ---------------------------------------------------------------------------------------------
// Experts

static t2_expert *expert_alloc(const t2_svf *s, int param) {
    t2_expert *e = t2_calloc(1, sizeof *e);
    e->svf = s;
    e->param = param;
    e->n = t2_svf_z_size(s);
    e->z = t2_malloc(e->n * sizeof(float));
    e->task = t2_strdup("");
    e->settings = t2_strdup("{}");
    e->score = NAN;
    return e;
}

t2_expert *t2_expert_new(const t2_svf *s, int param, uint64_t seed) {
    t2_expert *e = expert_alloc(s, param);
    t2_rng r;
    t2_rng_seed(&r, seed);
    for (size_t i = 0; i < e->n; i++)
        e->z[i] = param == T2_SVF_PARAM_SCALE ? 1.0f : 0.1f + 0.01f * t2_rng_normal(&r);
    return e;
}

void t2_expert_free(t2_expert *e) {
    if (!e) return;
    free(e->z);
    free(e->task);
    free(e->settings);
    free(e);
}

void t2_expert_describe(t2_expert *e, const char *task, const char *settings_json, double score) {
    if (task) { free(e->task); e->task = t2_strdup(task); }
    if (settings_json) { free(e->settings); e->settings = t2_strdup(settings_json); }
    e->score = score;
}

int t2_expert_save(const t2_expert *e, const char *path) {
    const t2_svf *s = e->svf;
    t2_st_writer *w = t2_st_writer_new();
    char buf[64];
    for (int i = 0; i < t2_svf_count(s); i++) {
        const t2_svf_matrix *m = t2_svf_at(s, i);
        int64_t shape[1] = {m->k};
        t2_st_writer_add(w, m->name, T2_DTYPE_F32, 1, shape, e->z + m->offset);
    }
    t2_st_writer_meta(w, "format", "t2-expert");
    t2_st_writer_meta(w, "version", T2_EXPERT_VERSION);
    snprintf(buf, sizeof buf, "%016" PRIx64, t2_svf_fingerprint_of(s));
    t2_st_writer_meta(w, "fingerprint", buf);
    t2_st_writer_meta(w, "targets", t2_svf_targets_name(t2_svf_targets_of(s)));
    t2_st_writer_meta(w, "parameterisation", t2_svf_param_name(e->param));
    t2_st_writer_meta(w, "task", e->task ? e->task : "");
    t2_st_writer_meta(w, "settings", e->settings ? e->settings : "{}");
    if (isnan(e->score)) buf[0] = 0;
    else snprintf(buf, sizeof buf, "%.17g", e->score);
    t2_st_writer_meta(w, "score", buf);
    int rc = t2_st_writer_write(w, path);
    t2_st_writer_free(w);
    return rc;
}

// "layers.N.<...>.weight": NAME without its layout prefix (NULL if it has no "layers.").
static const char *canonical(const char *name) { return strstr(name, "layers."); }

t2_expert *t2_expert_load(const char *path, const t2_svf *s) {
    t2_st *st = t2_st_open(path);
    if (!st) return NULL;
    t2_expert *e = NULL;
    const char *f = t2_st_metadata(st, "format"), *v = t2_st_metadata(st, "version"),
               *h = t2_st_metadata(st, "fingerprint"), *tg = t2_st_metadata(st, "targets"),
               *pa = t2_st_metadata(st, "parameterisation");
    char want[17];
    snprintf(want, sizeof want, "%016" PRIx64, t2_svf_fingerprint_of(s));
    int param;
    if (!f || strcmp(f, "t2-expert")) { t2_fail("%s: not an SVF expert (metadata format '%s', expected 't2-expert')", path, f ? f : "(none)"); goto fail; }
    if (!v || strcmp(v, T2_EXPERT_VERSION)) { t2_fail("%s: expert version '%s'; this t2 reads version " T2_EXPERT_VERSION, path, v ? v : "(none)"); goto fail; }
    if (!h || strcmp(h, want)) { t2_fail("%s: the expert was trained on other base weights (fingerprint %s, this model's is %s)", path, h ? h : "(none)", want); goto fail; }
    if (!tg || strcmp(tg, t2_svf_targets_name(t2_svf_targets_of(s)))) {
        t2_fail("%s: the expert adapts '%s' matrices but the decomposition holds '%s'", path, tg ? tg : "(none)", t2_svf_targets_name(t2_svf_targets_of(s)));
        goto fail;
    }
    if ((param = t2_svf_param_parse(pa)) < 0) { t2_error_prefix("%s: ", path); goto fail; }
    int n = t2_svf_count(s), nt = t2_st_count(st);
    if (nt != n) { t2_fail("%s: %d tensors; the decomposition has %d matrices", path, nt, n); goto fail; }
    e = expert_alloc(s, param);
    for (int i = 0; i < n; i++) {
        const t2_svf_matrix *m = t2_svf_at(s, i);
        const char *want_c = canonical(m->name);
        const t2_st_tensor *t = NULL;
        for (int j = 0; j < nt && !t; j++) {
            const t2_st_tensor *x = t2_st_at(st, j);
            const char *c = canonical(x->name);
            if (c && !strcmp(c, want_c)) t = x;
        }
        if (!t) { t2_fail("%s: no z vector for %s", path, m->name); goto fail; }
        if (t->dtype != T2_DTYPE_F32 || t->ndim != 1 || t->shape[0] != m->k) {
            t2_fail("%s: z vector '%s' must be 1-D F32 of length %d (the rank), is %s with %d dims of %" PRId64,
                    path, t->name, m->k, t2_dtype_name(t->dtype), t->ndim, t->numel);
            goto fail;
        }
        memcpy(e->z + m->offset, t->data, (size_t)m->k * sizeof(float));
    }
    const char *task = t2_st_metadata(st, "task"), *set = t2_st_metadata(st, "settings"), *sc = t2_st_metadata(st, "score");
    t2_expert_describe(e, task ? task : "", set ? set : "{}", sc && *sc ? strtod(sc, NULL) : NAN);
    t2_st_close(st);
    return e;
fail:
    t2_expert_free(e);
    t2_st_close(st);
    return NULL;
}

t2_expert *t2_expert_mix(const t2_expert *const *ex, int K, const float *alpha, int per_matrix) {
    if (K < 1) return t2_fail_null("mix: no experts");
    const t2_svf *s = ex[0]->svf;
    for (int k = 1; k < K; k++) {
        if (ex[k]->svf != s || ex[k]->n != ex[0]->n) return t2_fail_null("mix: expert %d belongs to another decomposition", k);
        if (ex[k]->param != ex[0]->param)
            return t2_fail_null("mix: expert %d is '%s', expert 0 '%s'; mix experts of one parameterisation", k,
                                t2_svf_param_name(ex[k]->param), t2_svf_param_name(ex[0]->param));
    }
    t2_expert *e = expert_alloc(s, ex[0]->param);
    int n = t2_svf_count(s);
    for (int i = 0; i < n; i++) {
        const t2_svf_matrix *m = t2_svf_at(s, i);
        for (int j = 0; j < m->k; j++) {
            size_t o = m->offset + (size_t)j;
            float acc = 0;
            for (int k = 0; k < K; k++) acc += (per_matrix ? alpha[(size_t)k * n + i] : alpha[k]) * ex[k]->z[o];
            if (!isfinite(acc)) {
                t2_expert_free(e);
                return t2_fail_null("mix: the mixed z of matrix %d is not finite: an α is too large", i);
            }
            e->z[o] = acc;
        }
    }
    t2_expert_describe(e, "mix", NULL, NAN);
    return e;
}

// ---------------------------------------------------------------------------------------------
// Adapter

typedef struct {
    int used, param;
    uint64_t key;           // FNV-1a of the z bytes
    long last_use;
    float *z;               // (zsize) exact copy: a hit compares all of it
    unsigned char *block;   // every recomposed matrix in its base dtype, at moff[i]
} slot;

struct t2_svf_adapter {
    t2_lm *lm;
    const t2_svf *s;
    int nslots, active;     // active slot, -1 = base weights
    long clock;
    slot *slots;
    const void **orig;      // (n) the model's own bindings
    t2_dtype *dt;           // (n)
    size_t *moff;           // (n) byte offset of matrix i in a slot
    size_t slot_bytes;
    float *wbuf;            // (max rows·cols) f32 recomposition of a non-F32 matrix
    float *scratch;         // (max k·k)
    t2_svf_adapter_stats st;
};

static uint64_t z_key(const float *z, size_t n, int param) {
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)param;
    const unsigned char *b = (const unsigned char *)z;
    for (size_t i = 0; i < n * sizeof(float); i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}

t2_svf_adapter *t2_svf_adapter_new(t2_lm *lm, const t2_svf *s, int slots) {
    const t2_lm_config *c = t2_lm_cfg(lm);
    int C = c->hidden_size, I = c->intermediate_size, HD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;
    const int shape[7][2] = {{HD, C}, {KVD, C}, {KVD, C}, {C, HD}, {I, C}, {I, C}, {C, I}};
    int n = t2_svf_count(s);
    size_t maxw = 0, maxk = 0;
    for (int i = 0; i < n; i++) {
        const t2_svf_matrix *m = t2_svf_at(s, i);
        if (m->layer >= c->n_layers || m->rows != shape[m->which][0] || m->cols != shape[m->which][1])
            return t2_fail_null("SVF adapter: matrix %s (%d, %d) does not fit the model (%d layers, expected (%d, %d))",
                                m->name, m->rows, m->cols, c->n_layers, shape[m->which][0], shape[m->which][1]);
        if ((size_t)m->rows * m->cols > maxw) maxw = (size_t)m->rows * m->cols;
        if ((size_t)m->k * m->k > maxk) maxk = (size_t)m->k * m->k;
    }
    t2_svf_adapter *a = t2_calloc(1, sizeof *a);
    a->lm = lm, a->s = s, a->nslots = slots < 1 ? 1 : slots, a->active = -1;
    a->slots = t2_calloc((size_t)a->nslots, sizeof *a->slots);
    a->orig = t2_calloc((size_t)n, sizeof *a->orig);
    a->dt = t2_calloc((size_t)n, sizeof *a->dt);
    a->moff = t2_calloc((size_t)n, sizeof *a->moff);
    for (int i = 0; i < n; i++) {
        const t2_svf_matrix *m = t2_svf_at(s, i);
        // Read the model's binding: swap in a placeholder and put the original straight back.
        static const float placeholder = 0;
        T2_ASSERT(t2_lm_set_matrix(lm, m->layer, m->which, &placeholder, T2_DTYPE_F32, &a->orig[i], &a->dt[i]) == 0);
        T2_ASSERT(t2_lm_set_matrix(lm, m->layer, m->which, a->orig[i], a->dt[i], NULL, NULL) == 0);
        a->moff[i] = a->slot_bytes;
        a->slot_bytes += ((size_t)m->rows * m->cols * t2_dtype_size(a->dt[i]) + 63) & ~(size_t)63;
    }
    a->wbuf = t2_malloc(maxw * sizeof(float));
    a->scratch = t2_malloc(maxk * sizeof(float));
    a->st.slot_bytes = a->slot_bytes;
    return a;
}

static void bind_base(t2_svf_adapter *a) {
    for (int i = 0; i < t2_svf_count(a->s); i++) {
        const t2_svf_matrix *m = t2_svf_at(a->s, i);
        T2_ASSERT(t2_lm_set_matrix(a->lm, m->layer, m->which, a->orig[i], a->dt[i], NULL, NULL) == 0);
    }
    a->active = -1;
}

void t2_svf_adapter_free(t2_svf_adapter *a) {
    if (!a) return;
    bind_base(a);
    for (int i = 0; i < a->nslots; i++) { free(a->slots[i].z); free(a->slots[i].block); }
    free(a->slots), free(a->orig), free(a->dt), free(a->moff), free(a->wbuf), free(a->scratch);
    free(a);
}

int t2_svf_apply(t2_svf_adapter *a, const t2_expert *e) {
    if (!e) { bind_base(a); return 0; }
    if (e->svf != a->s || e->n != t2_svf_z_size(a->s))
        return t2_fail("SVF apply: the expert belongs to another decomposition than the adapter's");
    uint64_t key = z_key(e->z, e->n, e->param);
    int hit = -1, victim = -1;
    for (int i = 0; i < a->nslots; i++) {
        slot *sl = &a->slots[i];
        if (sl->used && sl->key == key && sl->param == e->param && !memcmp(sl->z, e->z, e->n * sizeof(float))) hit = i;
    }
    for (int i = 0; i < a->nslots && victim < 0; i++) if (!a->slots[i].used) victim = i;   // a free slot,
    if (victim < 0) {                                                                     // else the LRU one
        victim = 0;
        for (int i = 1; i < a->nslots; i++) if (a->slots[i].last_use < a->slots[victim].last_use) victim = i;
    }
    int use = hit;
    if (hit >= 0) {
        a->st.hits++;
    } else {
        use = victim;
        slot *sl = &a->slots[use];
        if (!sl->block) { sl->block = t2_aligned_alloc(a->slot_bytes); sl->z = t2_malloc(e->n * sizeof(float)); }
        if (a->active == use) bind_base(a);   // its buffers are about to be rewritten
        double t0 = t2_now();
        for (int i = 0; i < t2_svf_count(a->s); i++) {
            const t2_svf_matrix *m = t2_svf_at(a->s, i);
            void *dst = sl->block + a->moff[i];
            if (a->dt[i] == T2_DTYPE_F32) {
                t2_svf_recompose(a->s, i, e->z + m->offset, e->param, dst, a->scratch);
            } else {
                t2_svf_recompose(a->s, i, e->z + m->offset, e->param, a->wbuf, a->scratch);
                t2_from_f32(dst, a->wbuf, a->dt[i], (size_t)m->rows * m->cols);
            }
        }
        a->st.last_recompose_s = t2_now() - t0;
        a->st.total_recompose_s += a->st.last_recompose_s;
        a->st.misses++;
        memcpy(sl->z, e->z, e->n * sizeof(float));
        sl->used = 1, sl->key = key, sl->param = e->param;
    }
    slot *sl = &a->slots[use];
    sl->last_use = ++a->clock;
    if (a->active != use) {
        for (int i = 0; i < t2_svf_count(a->s); i++) {
            const t2_svf_matrix *m = t2_svf_at(a->s, i);
            T2_ASSERT(t2_lm_set_matrix(a->lm, m->layer, m->which, sl->block + a->moff[i], a->dt[i], NULL, NULL) == 0);
        }
        a->active = use;
    }
    return 0;
}

t2_svf_adapter_stats t2_svf_adapter_stats_get(const t2_svf_adapter *a) { return a->st; }
