// test_svf.c — SVF (svf/): the decomposition, experts, recomposition, the z-gradient and the adapter,
// on tiny random checkpoints from make_lm.py (Llama F32 plain layout; Qwen2 BF16 new LLaVA layout).
//   - SVD: U diag(S) Vᵀ = W (1e-5 relative), UᵀU = VᵀV = I, S descending; S against numpy's f64 SVD
//   - recomposition and dL/dz (official and scale) against torch f64 autograd (tests/ref/svf_ref.py),
//     dL/dz against central finite differences of a double-precision recompose + linear, the dW form
//     against the (X, dY) form, and the lm_train hook (t2_lm_train_linear_io) against its dW
//   - init: constant z gives W exactly (1e-5), the seeded official init W up to ~0.5% (the m noise)
//   - mixtures: one expert with α = 1 is that expert (bit-exact); two experts; per-matrix α
//   - expert save/load round trip; refused files: format, fingerprint, shape
//   - a stale decomposition (one weight byte flipped) refused; a flip outside the targets accepted
//   - the adapter: logits under an expert equal those of a checkpoint holding the recomposed W'
//     (bit-exact), clearing restores bit-identical base logits, the LRU cache hits and evicts
//   - resume: an interrupted decomposition (plus junk in its partial state) completes to the same
//     bytes as an uninterrupted one
//   - `t2 svf` CLI: decompose, up to date, bad targets, missing model, train "not yet"
#include "testutil.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "language/lm.h"
#include "language/lm_train.h"
#include "svf/svf.h"
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static t2_test_env E;

static float *base_f32(const t2_svf_matrix *m) {
    float *w = t2_malloc((size_t)m->rows * m->cols * sizeof *w);
    t2_to_f32(w, m->W, m->dt, (size_t)m->rows * m->cols);
    return w;
}

// ---------------------------------------------------------------------------------------------

static void check_svd(const t2_svf *s, const char *label) {
    double worst_rec = 0, worst_orth = 0;
    int desc = 1;
    for (int i = 0; i < t2_svf_count(s); i++) {
        const t2_svf_matrix *m = t2_svf_at(s, i);
        int k = m->k;
        float *w = base_f32(m), *r = t2_malloc((size_t)m->rows * m->cols * sizeof *r);
        for (int a = 0; a < m->rows; a++)
            for (int b = 0; b < m->cols; b++) {
                double acc = 0;
                for (int j = 0; j < k; j++) acc += (double)m->U[(size_t)a * k + j] * m->S[j] * m->V[(size_t)b * k + j];
                r[(size_t)a * m->cols + b] = (float)acc;
            }
        double rel = t2_test_rel_err(r, w, (size_t)m->rows * m->cols);
        if (rel > worst_rec) worst_rec = rel;
        const float *F[2] = {m->U, m->V};
        int nr[2] = {m->rows, m->cols};
        for (int f = 0; f < 2; f++)
            for (int p = 0; p < k; p++)
                for (int q = 0; q < k; q++) {
                    double acc = 0;
                    for (int a = 0; a < nr[f]; a++) acc += (double)F[f][(size_t)a * k + p] * F[f][(size_t)a * k + q];
                    double d = fabs(acc - (p == q));
                    if (d > worst_orth) worst_orth = d;
                }
        for (int j = 1; j < k; j++) if (m->S[j] > m->S[j - 1] || m->S[j] < 0) desc = 0;
        free(w), free(r);
    }
    printf("%s: %d matrices: U diag(S) Vᵀ vs W worst relative error %.3g; |UᵀU − I|, |VᵀV − I| worst %.3g\n",
           label, t2_svf_count(s), worst_rec, worst_orth);
    T2_CHECK(worst_rec <= 1e-5, "%s: SVD reconstruction error %.3g > 1e-5", label, worst_rec);
    T2_CHECK(worst_orth <= 1e-5, "%s: U/V orthonormality error %.3g > 1e-5", label, worst_orth);
    T2_CHECK(desc, "%s: singular values not descending / non-negative", label);
}

static int n_progress, n_resumed;
static void count_progress(void *ctx, const t2_svf_progress *p) {
    n_progress++;
    n_resumed += p->resumed;
}

static t2_svf *decompose_load(const char *dir, int targets, const char *out, t2_st **st_out) {
    t2_st *st = t2_st_open(dir);
    T2_CHECK(st != NULL, "open %s: %s", dir, t2_last_error());
    if (!st) return NULL;
    t2_svf_decompose_opts o = t2_svf_decompose_defaults();
    o.targets = targets, o.threads = 1, o.progress = count_progress;
    int up = -1;
    int rc = t2_svf_decompose(st, out, &o, &up);
    T2_CHECK(rc == 0 && up == 0, "decompose %s: rc %d: %s", dir, rc, t2_last_error());
    t2_svf *s = t2_svf_load(out, st, NULL);
    T2_CHECK(s != NULL, "load %s: %s", out, t2_last_error());
    *st_out = st;
    return s;
}

// ---------------------------------------------------------------------------------------------
// Against torch (svf_ref.py) and finite differences

typedef struct { const char *name; int layer, which, param, rows; } ref_case;

// L(z) = Σ dY ⊙ (X W'(z)ᵀ) in double, W' from the f32 U, S, V.
static double loss_f64(const t2_svf_matrix *m, const double *z, int param, const float *X, const float *dY, int R) {
    int k = m->k;
    double *sig = malloc(sizeof(double) * k), A = 0, Bs = 0;
    for (int i = 0; i < k; i++) {
        double mi = param == T2_SVF_PARAM_SCALE ? z[i] : 1 / (1 + exp(-z[i]));
        sig[i] = m->S[i] * mi;
        A += m->S[i], Bs += sig[i];
    }
    if (param == T2_SVF_PARAM_OFFICIAL) for (int i = 0; i < k; i++) sig[i] *= A / Bs;
    double *W = malloc(sizeof(double) * m->rows * m->cols);
    for (int a = 0; a < m->rows; a++)
        for (int b = 0; b < m->cols; b++) {
            double acc = 0;
            for (int j = 0; j < k; j++) acc += (double)m->U[(size_t)a * k + j] * sig[j] * m->V[(size_t)b * k + j];
            W[(size_t)a * m->cols + b] = acc;
        }
    double L = 0;
    for (int r = 0; r < R; r++)
        for (int a = 0; a < m->rows; a++) {
            double y = 0;
            for (int b = 0; b < m->cols; b++) y += (double)X[(size_t)r * m->cols + b] * W[(size_t)a * m->cols + b];
            L += y * dY[(size_t)r * m->rows + a];
        }
    free(sig), free(W);
    return L;
}

static void check_against_ref(const char *dir, const char *svf_path, const t2_svf *s) {
    const ref_case cases[] = {
        {"gate0_official", 0, T2_LIN_GATE, T2_SVF_PARAM_OFFICIAL, 5},
        {"down1_scale", 1, T2_LIN_DOWN, T2_SVF_PARAM_SCALE, 4},
        {"k0_official", 0, T2_LIN_K, T2_SVF_PARAM_OFFICIAL, 6},   // rows < cols
        {"o1_scale", 1, T2_LIN_O, T2_SVF_PARAM_SCALE, 3},
    };
    int nc = sizeof cases / sizeof cases[0];
    t2_rng r;
    t2_rng_seed(&r, 42);
    t2_st_writer *w = t2_st_writer_new();
    float *Z[8], *XS[8], *DY[8];
    char list[512] = "";
    for (int c = 0; c < nc; c++) {
        const t2_svf_matrix *m = t2_svf_at(s, t2_svf_find(s, cases[c].layer, cases[c].which));
        int R = cases[c].rows;
        Z[c] = t2_malloc(sizeof(float) * m->k);
        XS[c] = t2_malloc(sizeof(float) * R * m->cols);
        DY[c] = t2_malloc(sizeof(float) * R * m->rows);
        for (int j = 0; j < m->k; j++)
            Z[c][j] = cases[c].param == T2_SVF_PARAM_SCALE ? 1 + 0.3f * t2_rng_normal(&r) : 0.1f + 0.8f * t2_rng_normal(&r);
        for (int j = 0; j < R * m->cols; j++) XS[c][j] = t2_rng_normal(&r);
        for (int j = 0; j < R * m->rows; j++) DY[c][j] = t2_rng_normal(&r);
        char nm[128];
        int64_t sz[1] = {m->k}, sx[2] = {R, m->cols}, sy[2] = {R, m->rows};
        snprintf(nm, sizeof nm, "%s.z", cases[c].name); t2_st_writer_add(w, nm, T2_DTYPE_F32, 1, sz, Z[c]);
        snprintf(nm, sizeof nm, "%s.X", cases[c].name); t2_st_writer_add(w, nm, T2_DTYPE_F32, 2, sx, XS[c]);
        snprintf(nm, sizeof nm, "%s.dY", cases[c].name); t2_st_writer_add(w, nm, T2_DTYPE_F32, 2, sy, DY[c]);
        snprintf(nm, sizeof nm, "%s.matrix", cases[c].name); t2_st_writer_meta(w, nm, m->name);
        snprintf(nm, sizeof nm, "%s.param", cases[c].name); t2_st_writer_meta(w, nm, t2_svf_param_name(cases[c].param));
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", c ? "," : "", cases[c].name);
    }
    t2_st_writer_meta(w, "cases", list);
    char in[1024], out[1024];
    snprintf(in, sizeof in, "%s/svf_inputs.safetensors", E.work);
    snprintf(out, sizeof out, "%s/svf_ref.safetensors", E.work);
    T2_CHECK(t2_st_writer_write(w, in) == 0, "write inputs: %s", t2_last_error());
    t2_st_writer_free(w);
    int rc = t2_test_python(&E, "svf_ref.py", "'%s' '%s' '%s' '%s'", dir, svf_path, in, out);
    T2_CHECK(rc == 0, "svf_ref.py failed");
    t2_st *ref = rc ? NULL : t2_st_open(out);
    T2_CHECK(rc != 0 || ref, "open ref: %s", t2_last_error());
    for (int c = 0; c < nc && ref; c++) {
        int mi = t2_svf_find(s, cases[c].layer, cases[c].which);
        const t2_svf_matrix *m = t2_svf_at(s, mi);
        int R = cases[c].rows, k = m->k, p = cases[c].param;
        char nm[128];
        snprintf(nm, sizeof nm, "%s.S_np", cases[c].name);
        const t2_st_tensor *t = t2_st_get(ref, nm);
        double e_s = t ? t2_test_rel_err(m->S, t->data, (size_t)k) : 1;
        float *Wp = t2_malloc(sizeof(float) * m->rows * m->cols);
        t2_svf_recompose(s, mi, Z[c], p, Wp, NULL);
        snprintf(nm, sizeof nm, "%s.W", cases[c].name);
        t = t2_st_get(ref, nm);
        double e_w = t ? t2_test_rel_err(Wp, t->data, (size_t)m->rows * m->cols) : 1;
        float *dz = t2_calloc((size_t)k, sizeof(float)), *dz2 = t2_calloc((size_t)k, sizeof(float));
        t2_svf_grad_z(s, mi, Z[c], p, XS[c], DY[c], R, dz, NULL);
        snprintf(nm, sizeof nm, "%s.dz", cases[c].name);
        t = t2_st_get(ref, nm);
        double e_g = t ? t2_test_rel_err(dz, t->data, (size_t)k) : 1;
        // dW form: dW = dYᵀ X
        float *dW = t2_calloc((size_t)m->rows * m->cols, sizeof(float));
        t2_sgemm(1, 0, m->rows, m->cols, R, 1.0f, DY[c], m->rows, XS[c], m->cols, 0.0f, dW, m->cols);
        t2_svf_grad_z_dw(s, mi, Z[c], p, dW, dz2, NULL);
        double e_dw = t2_test_rel_err(dz2, dz, (size_t)k);
        // central finite differences in double on a few entries
        double *zd = malloc(sizeof(double) * k), e_fd = 0, h = 1e-4;
        for (int j = 0; j < k; j++) zd[j] = Z[c][j];
        for (int q = 0; q < 6; q++) {
            int j = (q * 37 + 3) % k;
            double z0 = zd[j];
            zd[j] = z0 + h;
            double lp = loss_f64(m, zd, p, XS[c], DY[c], R);
            zd[j] = z0 - h;
            double lm = loss_f64(m, zd, p, XS[c], DY[c], R);
            zd[j] = z0;
            double fd = (lp - lm) / (2 * h), d = fabs(fd - dz[j]) / t2_test_max_abs(dz, (size_t)k);
            if (d > e_fd) e_fd = d;
        }
        printf("%s (%d x %d, %s): S vs numpy f64 %.3g, W' vs torch %.3g, dz vs torch %.3g, dW form %.3g, "
               "finite differences %.3g (relative to max)\n", cases[c].name, m->rows, m->cols,
               t2_svf_param_name(p), e_s, e_w, e_g, e_dw, e_fd);
        T2_CHECK(e_s <= 1e-5, "%s: singular values vs numpy %.3g > 1e-5", cases[c].name, e_s);
        T2_CHECK(e_w <= 1e-5, "%s: recomposition vs torch %.3g > 1e-5", cases[c].name, e_w);
        T2_CHECK(e_g <= 1e-4, "%s: dz vs torch autograd %.3g > 1e-4", cases[c].name, e_g);
        T2_CHECK(e_dw <= 1e-4, "%s: dz from dW vs from (X, dY) %.3g > 1e-4", cases[c].name, e_dw);
        T2_CHECK(e_fd <= 1e-3, "%s: dz vs finite differences %.3g > 1e-3", cases[c].name, e_fd);
        free(Wp), free(dz), free(dz2), free(dW), free(zd);
    }
    t2_st_close(ref);
    for (int c = 0; c < nc; c++) free(Z[c]), free(XS[c]), free(DY[c]);
}

// The trainer's path: (X, dY) of t2_lm_train_linear_io gives the same dz as the full dW of the backward.
static void check_train_hook(const char *dir, const t2_st *st, const t2_svf *s) {
    t2_lm_config cfg;
    T2_CHECK(t2_lm_config_load(dir, &cfg) == 0, "config: %s", t2_last_error());
    const int Bn = 2, Tn = 6;
    int32_t tok[12] = {1, 5, 9, 33, 120, 7, 1, 250, 4, 4, 8, 19}, tgt[12] = {5, 9, 33, 120, 7, 2, 250, 4, 4, 8, 19, -1};
    t2_lm_train *tr = t2_lm_train_new_ex(&cfg, Bn, Tn, T2_LM_TRAIN_SAVE_LINEAR);
    T2_CHECK(tr && t2_lm_train_load(tr, st) == 0, "lm_train: %s", t2_last_error());
    if (!tr) return;
    t2_lm_train_forward(tr, tok, tgt, Bn, Tn);
    t2_lm_train_backward(tr);
    const t2_lm_params *g = t2_lm_train_grads(tr);
    double worst = 0;
    for (int which = T2_LIN_GATE; which <= T2_LIN_DOWN; which++) {
        int mi = t2_svf_find(s, 1, which);
        const t2_svf_matrix *m = t2_svf_at(s, mi);
        const float *X, *dY;
        int rows, in, out;
        T2_CHECK(t2_lm_train_linear_io(tr, 1, which, &X, &dY, &rows, &in, &out) == 0, "linear_io: %s", t2_last_error());
        size_t sz = (size_t)m->rows * m->cols;
        const float *dW = (which == T2_LIN_GATE ? g->wgate : which == T2_LIN_UP ? g->wup : g->wdown) + sz;
        float *z = t2_malloc(sizeof(float) * m->k), *a = t2_calloc((size_t)m->k, 4), *b = t2_calloc((size_t)m->k, 4);
        for (int j = 0; j < m->k; j++) z[j] = 0.1f + 0.05f * (float)((j * 7) % 5);
        t2_svf_grad_z(s, mi, z, T2_SVF_PARAM_OFFICIAL, X, dY, rows, a, NULL);
        t2_svf_grad_z_dw(s, mi, z, T2_SVF_PARAM_OFFICIAL, dW, b, NULL);
        double e = t2_test_rel_err(a, b, (size_t)m->k);
        if (e > worst) worst = e;
        free(z), free(a), free(b);
    }
    printf("lm_train hook: dz from (X, dY) vs from the backward's dW, layer 1 MLP: worst %.3g\n", worst);
    T2_CHECK(worst <= 1e-4, "lm_train hook dz mismatch %.3g", worst);
    t2_lm_train_free(tr);
}

// ---------------------------------------------------------------------------------------------

static void check_init_and_mix(const t2_svf *s) {
    int n = t2_svf_count(s);
    t2_expert *e = t2_expert_new(s, T2_SVF_PARAM_OFFICIAL, 7), *sc = t2_expert_new(s, T2_SVF_PARAM_SCALE, 7);
    double mean = 0, var = 0;
    for (size_t i = 0; i < e->n; i++) mean += e->z[i];
    mean /= e->n;
    for (size_t i = 0; i < e->n; i++) var += (e->z[i] - mean) * (e->z[i] - mean);
    double sd = sqrt(var / e->n);
    printf("official init: %zu numbers, mean %.5f, std %.5f\n", e->n, mean, sd);
    T2_CHECK(fabs(mean - 0.1) < 2e-3 && sd > 0.008 && sd < 0.012, "official init mean %.4f std %.4f", mean, sd);
    double e_const = 0, e_init = 0, e_scale = 0;
    t2_expert *cst = t2_expert_new(s, T2_SVF_PARAM_OFFICIAL, 1);
    for (size_t i = 0; i < cst->n; i++) cst->z[i] = 0.1f;
    for (int i = 0; i < n; i++) {
        const t2_svf_matrix *m = t2_svf_at(s, i);
        size_t sz = (size_t)m->rows * m->cols;
        float *w = base_f32(m), *r = t2_malloc(sz * sizeof *r);
        t2_svf_recompose(s, i, cst->z + m->offset, T2_SVF_PARAM_OFFICIAL, r, NULL);
        double d = t2_test_rel_err(r, w, sz); if (d > e_const) e_const = d;
        t2_svf_recompose(s, i, e->z + m->offset, T2_SVF_PARAM_OFFICIAL, r, NULL);
        d = t2_test_rel_err(r, w, sz); if (d > e_init) e_init = d;
        t2_svf_recompose(s, i, sc->z + m->offset, T2_SVF_PARAM_SCALE, r, NULL);
        d = t2_test_rel_err(r, w, sz); if (d > e_scale) e_scale = d;
        free(w), free(r);
    }
    printf("W' vs W: official constant z %.3g, official seeded init %.3g (the ±0.5%% spread of m), scale init %.3g\n",
           e_const, e_init, e_scale);
    T2_CHECK(e_const <= 1e-5, "official constant z: W' != W (%.3g)", e_const);
    T2_CHECK(e_scale <= 1e-5, "scale init: W' != W (%.3g)", e_scale);
    T2_CHECK(e_init <= 3e-2, "official init: W' far from W (%.3g)", e_init);

    // mixtures of raw z
    float one = 1;
    const t2_expert *l1[1] = {e};
    t2_expert *m1 = t2_expert_mix(l1, 1, &one, 0);
    T2_CHECK(m1 && !memcmp(m1->z, e->z, e->n * sizeof(float)), "mix of one expert with alpha 1 differs");
    const t2_svf_matrix *m0 = t2_svf_at(s, 0);
    size_t sz = (size_t)m0->rows * m0->cols;
    float *wa = t2_malloc(sz * 4), *wb = t2_malloc(sz * 4);
    t2_svf_recompose(s, 0, e->z, e->param, wa, NULL);
    t2_svf_recompose(s, 0, m1->z, m1->param, wb, NULL);
    T2_CHECK(!memcmp(wa, wb, sz * 4), "recompose(mix of one, alpha 1) != recompose(expert)");
    t2_expert *e2 = t2_expert_new(s, T2_SVF_PARAM_OFFICIAL, 8);
    const t2_expert *l2[2] = {e, e2};
    float al[2] = {0.3f, 0.7f};
    t2_expert *mx = t2_expert_mix(l2, 2, al, 0);
    double dm = 0;
    for (size_t i = 0; i < e->n; i++) dm = fmax(dm, fabs(mx->z[i] - (0.3f * e->z[i] + 0.7f * e2->z[i])));
    float *alm = t2_malloc(sizeof(float) * 2 * n);
    for (int i = 0; i < n; i++) alm[i] = (float)(i % 2), alm[n + i] = 1 - (float)(i % 2);
    t2_expert *mp = t2_expert_mix(l2, 2, alm, 1);
    double dp = 0;
    for (int i = 0; i < n; i++) {
        const t2_svf_matrix *m = t2_svf_at(s, i);
        const t2_expert *src = i % 2 ? e : e2;
        dp = fmax(dp, memcmp(mp->z + m->offset, src->z + m->offset, (size_t)m->k * 4) ? 1 : 0);
    }
    printf("mixtures: two experts max error %.3g; per-matrix alpha picks each matrix's expert: %s\n", dm, dp ? "no" : "yes");
    T2_CHECK(dm <= 1e-7 && dp == 0, "mixture arithmetic wrong (%.3g, %g)", dm, dp);
    const t2_expert *l3[2] = {e, sc};
    t2_expert *bad = t2_expert_mix(l3, 2, al, 0);
    T2_CHECK(!bad && strstr(t2_last_error(), "parameterisation"), "mixing official and scale accepted: %s", t2_last_error());
    free(wa), free(wb), free(alm);
    t2_expert_free(m1), t2_expert_free(e2), t2_expert_free(mx), t2_expert_free(mp), t2_expert_free(cst);
    t2_expert_free(e), t2_expert_free(sc);
}

static void check_expert_files(const t2_svf *s, const t2_svf *other) {
    char p[1024];
    snprintf(p, sizeof p, "%s/expert.safetensors", E.work);
    t2_expert *e = t2_expert_new(s, T2_SVF_PARAM_OFFICIAL, 3);
    t2_expert_describe(e, "math", "{\"lr\":0.002,\"batch\":256}", 0.75);
    T2_CHECK(t2_expert_save(e, p) == 0, "save: %s", t2_last_error());
    t2_expert *l = t2_expert_load(p, s);
    T2_CHECK(l != NULL, "load: %s", t2_last_error());
    if (l) {
        int same = l->n == e->n && !memcmp(l->z, e->z, e->n * 4) && l->param == e->param &&
                   !strcmp(l->task, "math") && !strcmp(l->settings, e->settings) && l->score == 0.75;
        printf("expert round trip (%zu numbers, task '%s', score %g): %s\n", l->n, l->task, l->score, same ? "identical" : "DIFFERS");
        T2_CHECK(same, "expert save/load round trip differs");
    }
    t2_expert_free(l);
    // an expert of other weights
    l = t2_expert_load(p, other);
    T2_CHECK(!l && strstr(t2_last_error(), "other base weights"), "expert of other weights accepted: %s", t2_last_error());
    printf("  refused on other weights: %s\n", t2_last_error());
    // hand-made bad files: wrong format, wrong fingerprint, wrong length
    for (int bad = 0; bad < 3; bad++) {
        t2_st_writer *w = t2_st_writer_new();
        char fp[17];
        snprintf(fp, sizeof fp, "%016llx", (unsigned long long)t2_svf_fingerprint_of(s));
        for (int i = 0; i < t2_svf_count(s); i++) {
            const t2_svf_matrix *m = t2_svf_at(s, i);
            int64_t shape[1] = {bad == 2 && i == 1 ? m->k - 1 : m->k};
            t2_st_writer_add(w, m->name, T2_DTYPE_F32, 1, shape, e->z + m->offset);
        }
        t2_st_writer_meta(w, "format", bad == 0 ? "t2-svf" : "t2-expert");
        t2_st_writer_meta(w, "version", "1");
        t2_st_writer_meta(w, "fingerprint", bad == 1 ? "0123456789abcdef" : fp);
        t2_st_writer_meta(w, "targets", t2_svf_targets_name(t2_svf_targets_of(s)));
        t2_st_writer_meta(w, "parameterisation", "official");
        char q[1100];
        snprintf(q, sizeof q, "%s/bad%d.safetensors", E.work, bad);
        t2_st_writer_write(w, q);
        t2_st_writer_free(w);
        l = t2_expert_load(q, s);
        const char *want[3] = {"t2-expert", "other base weights", "length"};
        T2_CHECK(!l && strstr(t2_last_error(), want[bad]), "bad expert %d accepted or unclear: %s", bad, t2_last_error());
        printf("  refused: %s\n", t2_last_error());
        t2_expert_free(l);
    }
    t2_expert_free(e);
}

// Flips one byte of tensor NAME in the file PATH (a single-file checkpoint).
static int flip_byte(const char *path, const char *name) {
    size_t len;
    char *buf = t2_read_file(path, &len);
    if (!buf) return -1;
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)(unsigned char)buf[i] << (8 * i);
    char *hdr = malloc(hl + 1);
    memcpy(hdr, buf + 8, hl);
    hdr[hl] = 0;
    cJSON *j = cJSON_Parse(hdr);
    cJSON *t = cJSON_GetObjectItem(j, name), *o = t ? cJSON_GetObjectItem(t, "data_offsets") : NULL;
    int rc = -1;
    if (o) {
        size_t at = 8 + hl + (size_t)cJSON_GetArrayItem(o, 0)->valuedouble + 5;
        buf[at] ^= 0x01;
        rc = t2_write_file_atomic(path, buf, len);
    }
    cJSON_Delete(j);
    free(hdr), free(buf);
    return rc;
}

static void check_stale(const char *dir) {
    char copy[1024], model[1100], svf[1100];
    snprintf(copy, sizeof copy, "%s/stale", E.work);
    T2_CHECK(t2_test_sh(NULL, "cp -r '%s' '%s'", dir, copy) == 0, "cp failed");
    snprintf(model, sizeof model, "%s/model.safetensors", copy);
    snprintf(svf, sizeof svf, "%s/svf-mlp.safetensors", copy);   // copied along (made by the CLI test)
    // a byte outside the targets (q_proj for an mlp cache): still valid
    T2_CHECK(flip_byte(model, "model.layers.0.self_attn.q_proj.weight") == 0, "flip q failed");
    t2_st *st = t2_st_open(copy);
    t2_svf *s = st ? t2_svf_load(svf, st, NULL) : NULL;
    T2_CHECK(s != NULL, "mlp cache refused after a q_proj change: %s", t2_last_error());
    t2_svf_free(s);
    t2_st_close(st);
    T2_CHECK(flip_byte(model, "model.layers.1.mlp.up_proj.weight") == 0, "flip up failed");
    st = t2_st_open(copy);
    s = st ? t2_svf_load(svf, st, NULL) : NULL;
    T2_CHECK(!s && strstr(t2_last_error(), "stale"), "stale cache accepted: %s", t2_last_error());
    printf("stale cache: %s\n", t2_last_error());
    t2_svf_free(s);
    t2_st_close(st);
    char *out = NULL;
    int rc = t2_test_sh(&out, "'%s' svf decompose --model '%s' 2>&1", E.t2, copy);
    T2_CHECK(rc == 0 && out && !strstr(out, "up to date"), "decompose over a stale cache: rc %d: %s", rc, out ? out : "");
    free(out);
}

// ---------------------------------------------------------------------------------------------
// The adapter on t2_lm

static void forward(t2_lm *lm, t2_lm_state *st, const int32_t *tok, int T, float *logits) {
    t2_lm_state_rewind(st, 0);
    T2_CHECK(t2_lm_forward(lm, st, tok, NULL, NULL, T, logits, 1) == 0, "forward: %s", t2_last_error());
}

// A copy of the checkpoint DIR with every matrix of S replaced by its recomposition under E (F32).
static int write_recomposed(const char *dir, const t2_st *st, const t2_svf *s, const t2_expert *e, const char *outdir) {
    t2_st_writer *w = t2_st_writer_new();
    for (int i = 0; i < t2_st_count(st); i++) {
        const t2_st_tensor *t = t2_st_at(st, i);
        int mi = -1;
        for (int j = 0; j < t2_svf_count(s) && mi < 0; j++) if (!strcmp(t2_svf_at(s, j)->name, t->name)) mi = j;
        if (mi < 0) { t2_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data); continue; }
        const t2_svf_matrix *m = t2_svf_at(s, mi);
        float *W = t2_malloc(sizeof(float) * m->rows * m->cols);
        t2_svf_recompose(s, mi, e->z + m->offset, e->param, W, NULL);
        t2_st_writer_add(w, t->name, T2_DTYPE_F32, 2, t->shape, W);
        free(W);
    }
    char p[1200];
    t2_mkdirs(outdir);
    snprintf(p, sizeof p, "%s/model.safetensors", outdir);
    int rc = t2_st_writer_write(w, p);
    t2_st_writer_free(w);
    return rc || t2_test_sh(NULL, "cp '%s/config.json' '%s/'", dir, outdir);
}

static void check_adapter(const char *dir, const t2_st *st, const t2_svf *s, const char *label, int exact_ref) {
    t2_lm_config cfg;
    T2_CHECK(t2_lm_config_load(dir, &cfg) == 0, "config: %s", t2_last_error());
    t2_lm *lm = t2_lm_new(st, &cfg, NULL);
    T2_CHECK(lm != NULL, "lm: %s", t2_last_error());
    if (!lm) return;
    const int T = 8;
    int32_t tok[8] = {1, 17, 250, 3, 99, 42, 7, 5};
    size_t nl = (size_t)T * cfg.vocab_size;
    float *l0 = t2_malloc(nl * 4), *l1 = t2_malloc(nl * 4), *lx = t2_malloc(nl * 4);
    t2_lm_state *ss = t2_lm_state_new(lm, T, T);
    forward(lm, ss, tok, T, l0);
    t2_svf_adapter *a = t2_svf_adapter_new(lm, s, 2);
    T2_CHECK(a != NULL, "adapter: %s", t2_last_error());
    if (!a) return;
    t2_expert *e1 = t2_expert_new(s, T2_SVF_PARAM_OFFICIAL, 11), *e2 = t2_expert_new(s, T2_SVF_PARAM_SCALE, 0),
              *e3 = t2_expert_new(s, T2_SVF_PARAM_OFFICIAL, 12);
    t2_rng r;
    t2_rng_seed(&r, 5);
    for (size_t i = 0; i < e1->n; i++) e1->z[i] += 1.0f * t2_rng_normal(&r), e2->z[i] += 0.2f * t2_rng_normal(&r);
    T2_CHECK(t2_svf_apply(a, e1) == 0, "apply: %s", t2_last_error());
    forward(lm, ss, tok, T, l1);
    double ch = 0;
    for (size_t i = 0; i < nl; i++) ch = fmax(ch, fabs(l1[i] - l0[i]));
    t2_svf_adapter_stats sa = t2_svf_adapter_stats_get(a);
    printf("%s: expert changes the logits by up to %.3g; recomposition of %d matrices %.2f ms (slot %.2f MB)\n",
           label, ch, t2_svf_count(s), sa.last_recompose_s * 1e3, sa.slot_bytes / 1e6);
    T2_CHECK(ch > 1e-3, "%s: applying an expert did not change the logits (%.3g)", label, ch);
    if (exact_ref) {   // the same as a checkpoint that holds W' itself
        char rd[1024];
        snprintf(rd, sizeof rd, "%s/recomposed", E.work);
        T2_CHECK(write_recomposed(dir, st, s, e1, rd) == 0, "write recomposed: %s", t2_last_error());
        t2_st *st2 = t2_st_open(rd);
        t2_lm *lm2 = st2 ? t2_lm_new(st2, &cfg, NULL) : NULL;
        T2_CHECK(lm2 != NULL, "recomposed model: %s", t2_last_error());
        if (lm2) {
            t2_lm_state *s2 = t2_lm_state_new(lm2, T, T);
            forward(lm2, s2, tok, T, lx);
            int same = !memcmp(lx, l1, nl * 4);
            printf("%s: logits under the expert vs a checkpoint holding W': %s (max diff %.3g)\n", label,
                   same ? "bit-identical" : "DIFFER", t2_test_rel_err(l1, lx, nl));
            T2_CHECK(same, "%s: adapter logits differ from the recomposed checkpoint's", label);
            t2_lm_state_free(s2);
            t2_lm_free(lm2);
        }
        t2_st_close(st2);
    }
    T2_CHECK(t2_svf_apply(a, NULL) == 0, "clear");
    forward(lm, ss, tok, T, lx);
    T2_CHECK(!memcmp(lx, l0, nl * 4), "%s: clearing the expert does not restore bit-identical logits", label);
    T2_CHECK(t2_svf_apply(a, e1) == 0, "reapply");
    forward(lm, ss, tok, T, lx);
    sa = t2_svf_adapter_stats_get(a);
    T2_CHECK(!memcmp(lx, l1, nl * 4) && sa.hits == 1 && sa.misses == 1, "%s: re-applying: hits %ld misses %ld", label, sa.hits, sa.misses);
    t2_svf_apply(a, e2);   // second slot
    t2_svf_apply(a, e1);   // hit
    t2_svf_apply(a, e3);   // evicts e2 (least recently used)
    t2_svf_apply(a, e1);   // hit
    t2_svf_apply(a, e2);   // miss again
    sa = t2_svf_adapter_stats_get(a);
    printf("%s: cache after 7 applies of 3 experts (2 slots): %ld hits, %ld misses\n", label, sa.hits, sa.misses);
    T2_CHECK(sa.hits == 3 && sa.misses == 4, "%s: LRU: hits %ld misses %ld (want 3, 4)", label, sa.hits, sa.misses);
    t2_svf_adapter_free(a);   // restores
    forward(lm, ss, tok, T, lx);
    T2_CHECK(!memcmp(lx, l0, nl * 4), "%s: freeing the adapter does not restore the base logits", label);
    t2_expert_free(e1), t2_expert_free(e2), t2_expert_free(e3);
    free(l0), free(l1), free(lx);
    t2_lm_state_free(ss);
    t2_lm_free(lm);
}

// ---------------------------------------------------------------------------------------------

static void check_resume(const char *dir) {
    char full[1024], res[1024], junk[1200], bogus[1200], part0[1200];
    snprintf(full, sizeof full, "%s/full.safetensors", E.work);
    snprintf(res, sizeof res, "%s/resumed.safetensors", E.work);
    t2_st *st = t2_st_open(dir);
    t2_svf_decompose_opts o = t2_svf_decompose_defaults();
    o.targets = T2_SVF_ALL, o.threads = 1, o.progress = count_progress;
    T2_CHECK(t2_svf_decompose(st, full, &o, NULL) == 0, "full: %s", t2_last_error());
    o.stop_after = 5;
    int rc = t2_svf_decompose(st, res, &o, NULL);
    T2_CHECK(rc == 1, "interrupted run returned %d: %s", rc, t2_last_error());
    // junk a killed run could leave, and a part from other weights at index 6
    snprintf(junk, sizeof junk, "%s.partial/00005.safetensors.tmp.999", res);
    snprintf(part0, sizeof part0, "%s.partial/00000.safetensors", res);
    snprintf(bogus, sizeof bogus, "%s.partial/00006.safetensors", res);
    t2_write_file_atomic(junk, "x", 1);
    t2_test_sh(NULL, "cp '%s' '%s'", part0, bogus);
    o.stop_after = 0;
    n_progress = n_resumed = 0;
    rc = t2_svf_decompose(st, res, &o, NULL);
    T2_CHECK(rc == 0, "resumed run: %d %s", rc, t2_last_error());
    printf("resume: %d matrices, %d taken from the interrupted run\n", n_progress, n_resumed);
    T2_CHECK(n_resumed == 5 && n_progress == 14, "resume: %d resumed of %d (want 5 of 14)", n_resumed, n_progress);
    char pd[1100];
    snprintf(pd, sizeof pd, "%s.partial", res);
    T2_CHECK(!t2_is_dir(pd), "partial state left behind");
    size_t la, lb;
    char *a = t2_read_file(full, &la), *b = t2_read_file(res, &lb);
    T2_CHECK(a && b && la == lb && !memcmp(a, b, la), "resumed decomposition differs from the uninterrupted one");
    printf("resume: the resumed file is %s the uninterrupted one (%zu bytes)\n", a && b && la == lb && !memcmp(a, b, la) ? "byte-identical to" : "DIFFERENT from", la);
    free(a), free(b);
    t2_st_close(st);
}

static void check_cli(const char *dir) {
    char *out = NULL;
    int rc = t2_test_sh(&out, "'%s' svf decompose --model '%s' --verbose 2>&1", E.t2, dir);
    printf("cli: %s", out ? out : "");
    T2_CHECK(rc == 0 && out && strstr(out, "6 matrices (mlp)"), "t2 svf decompose failed: rc %d", rc);
    free(out);
    rc = t2_test_sh(&out, "'%s' svf decompose --model '%s' 2>&1", E.t2, dir);
    T2_CHECK(rc == 0 && out && strstr(out, "up to date"), "second decompose not up to date: %s", out ? out : "");
    free(out);
    struct { const char *args, *want; } bad[] = {
        {"decompose --model '%s' --targets ffn", "unknown SVF targets 'ffn'"},
        {"decompose --model '%s'/nope", "no such directory"},
        {"decompose --targets mlp", "--model DIR is required"},
        {"train --model '%s'", "--train and --out are required"},
        {"frobnicate", "unknown subcommand"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[1200];
        snprintf(args, sizeof args, bad[i].args, dir);
        rc = t2_test_sh(&out, "'%s' svf %s 2>&1", E.t2, args);
        T2_CHECK(rc != 0 && out && strstr(out, bad[i].want), "t2 svf %s: rc %d, output: %s", args, rc, out ? out : "");
        printf("cli error (rc %d): %s", rc, out ? out : "\n");
        free(out);
    }
}

int main(int argc, char **argv) {
    E = t2_test_init(argc, argv);
    char llama[1024], qwen[1024], p_all[1100], p_q[1100];
    snprintf(llama, sizeof llama, "%s/llama", E.work);
    snprintf(qwen, sizeof qwen, "%s/qwen", E.work);
    T2_CHECK(t2_test_python(&E, "make_lm.py", "'%s' --arch llama", llama) == 0, "make_lm llama");
    T2_CHECK(t2_test_python(&E, "make_lm.py", "'%s' --arch qwen2 --layout new --dtype BF16 --seed 3", qwen) == 0, "make_lm qwen");
    snprintf(p_all, sizeof p_all, "%s/svf-all.safetensors", E.work);
    snprintf(p_q, sizeof p_q, "%s/qwen-svf-mlp.safetensors", E.work);

    check_cli(llama);   // first: leaves llama/svf-mlp.safetensors for check_stale
    t2_st *st_l = NULL, *st_q = NULL;
    t2_svf *s_all = decompose_load(llama, T2_SVF_ALL, p_all, &st_l);
    t2_svf *s_q = decompose_load(qwen, T2_SVF_MLP, p_q, &st_q);
    if (s_all && s_q) {
        T2_CHECK(t2_svf_count(s_all) == 14 && t2_svf_z_size(s_all) == 2 * (64 + 32 + 32 + 64 + 3 * 64), "plan: %d matrices, %zu z",
                 t2_svf_count(s_all), t2_svf_z_size(s_all));
        check_svd(s_all, "llama F32 all");
        check_svd(s_q, "qwen2 BF16 mlp");
        check_against_ref(llama, p_all, s_all);
        check_train_hook(llama, st_l, s_all);
        check_init_and_mix(s_all);
        check_expert_files(s_all, s_q);
        check_adapter(llama, st_l, s_all, "llama F32 all", 1);
        check_adapter(qwen, st_q, s_q, "qwen2 BF16 mlp", 0);
    }
    check_stale(llama);
    check_resume(llama);
    t2_svf_free(s_all), t2_svf_free(s_q);
    t2_st_close(st_l), t2_st_close(st_q);
    return t2_test_done();
}
