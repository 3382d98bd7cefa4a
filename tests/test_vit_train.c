// test_vit_train.c — the training forward/backward of the vision side (vision/vit_train.c: tower +
// feature selection + projector) against torch autograd in float64 (tests/ref/vit_train_ref.py) on tiny
// random checkpoints from make_llava.py: LLaVA-1.5 CLIP (layer -2, strategy default, quick_gelu, legacy
// names), OneVision SigLIP (layer -1, strategy full, gelu_tanh, new names) and CLIP with a layer list
// -3,-1 (concatenated), erf gelu and F16 weights. Per case: the output (1e-5 relative), every parameter
// gradient (1e-4 relative to its max magnitude), the training forward against the inference path
// (t2_vit_features and t2_vlm_encode_tiles), central differences at a few entries, += accumulation.
#include "testutil.h"
#include "core/error.h"
#include "core/pool.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "fusion/vlm.h"
#include "vision/vit.h"
#include "vision/vit_train.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NIMG 2

static int write_f32(const char *path, const float *a, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(a, sizeof(float), n, f);
    return fclose(f) || w != n ? -1 : 0;
}

// The scalar whose gradient a backward computes: Σ y⊙W in double, y = the projector's output OUT
// (N = its size) or, with FEATURES, the tower's selected features (a forward without the projector).
typedef struct { const float *px, *w; float *out; size_t n; int features; } fd_loss;

static double loss_of(t2_vit_train *tr, const fd_loss *L) {
    if (t2_vit_train_forward(tr, L->px, NIMG, L->features ? NULL : L->out)) return NAN;
    const float *y = L->features ? t2_vit_train_features(tr) : L->out;
    double s = 0;
    for (size_t i = 0; i < L->n; i++) s += (double)y[i] * L->w[i];
    return s;
}

// Central differences (h = 1e-2, f32) of L at the largest-gradient entry and one in the middle of
// the first tensor of each kind (layer 0 only). With L->features the projector's gradients must be
// exactly zero (the tower's backward from the features leaves them alone).
static void check_fd(t2_vit_train *tr, const fd_loss *L, const char *name) {
    int nt = t2_vit_train_tensor_count(tr), checked = 0;
    double worst = 0;
    char worst_name[160] = "";
    const char *what = L->features ? "backward_features" : "backward";
    for (int i = 0; i < nt; i++) {
        char tn[128];
        float *p, *g;
        size_t numel;
        t2_vit_train_tensor(tr, i, tn, sizeof tn, &p, &g, &numel);
        if (L->features && !strncmp(tn, "multi_modal_projector.", 22)) {
            T2_CHECK(t2_test_max_abs(g, numel) == 0, "%s: backward_features touched %s", name, tn);
            continue;
        }
        if (!strncmp(tn, "encoder.layers.", 15) && strncmp(tn, "encoder.layers.0.", 17)) continue;
        if (strstr(tn, "k_proj.bias")) continue;   // exactly zero (softmax shift invariance): fd is pure noise
        double gmax = t2_test_max_abs(g, numel);
        size_t idx[2] = {0, (numel * 7) / 13};
        for (size_t j = 0; j < numel; j++) if (fabs(g[j]) == gmax) { idx[0] = j; break; }
        for (int e = 0; e < 2; e++) {
            size_t j = idx[e];
            float keep = p[j], h = 1e-2f;
            p[j] = keep + h;
            double lp = loss_of(tr, L);
            p[j] = keep - h;
            double lm = loss_of(tr, L);
            p[j] = keep;
            double fd = (lp - lm) / (2 * h), err = fabs(fd - g[j]) / (gmax + 1e-12);
            int ok = fabs(fd - g[j]) <= 0.03 * fabs(g[j]) + 3e-3 * gmax + 1e-4;
            T2_CHECK(ok, "%s: %s: finite difference %s[%zu]: fd %.6g vs backward %.6g", name, what, tn, j, fd, g[j]);
            if (err > worst) { worst = err; snprintf(worst_name, sizeof worst_name, "%s[%zu]", tn, j); }
            checked++;
        }
    }
    printf("%s: %s: %d finite-difference entries, worst |fd - g| / max|g| = %.3g at %s\n", name, what, checked, worst,
           worst_name);
}

// t2_vit_train_backward_features: it accumulates (+=), and its gradients of Σ features⊙D pass check_fd.
static void check_fd_features(t2_vit_train *tr, const float *px, const char *name) {
    size_t nf = (size_t)NIMG * t2_vit_train_tokens(tr) * t2_vit_train_feat_dim(tr), np;
    float *d = t2_malloc(sizeof(float) * nf);
    for (size_t i = 0; i < nf; i++) d[i] = t2_test_randn();
    float *gb = t2_vit_train_grad_block(tr, &np);
    t2_vit_train_zero_grad(tr);
    T2_CHECK(t2_vit_train_forward(tr, px, NIMG, NULL) == 0, "%s: forward without projector: %s", name, t2_last_error());
    t2_vit_train_backward_features(tr, d);
    float *g1 = t2_malloc(sizeof(float) * np);
    memcpy(g1, gb, sizeof(float) * np);
    t2_vit_train_backward_features(tr, d);
    double ad = 0;
    for (size_t i = 0; i < np; i++) if (fabs(gb[i] - 2 * g1[i]) > ad) ad = fabs(gb[i] - 2 * g1[i]);
    T2_CHECK(ad <= 1e-6 * t2_test_max_abs(g1, np), "%s: backward_features does not accumulate (%.3g)", name, ad);
    memcpy(gb, g1, sizeof(float) * np);
    fd_loss L = {px, d, NULL, nf, 1};
    check_fd(tr, &L, name);
    free(g1), free(d);
}

static void check_case(const t2_test_env *e, const char *name, const char *args) {
    char dir[1024], ref[1100], pxf[1100], dof[1100];
    snprintf(dir, sizeof dir, "%s/%s", e->work, name);
    snprintf(ref, sizeof ref, "%s/grads.safetensors", dir);
    snprintf(pxf, sizeof pxf, "%s/pixels.f32", dir);
    snprintf(dof, sizeof dof, "%s/dout.f32", dir);
    int rc = t2_test_python(e, "make_llava.py", "'%s' %s", dir, args);
    T2_CHECK(rc == 0, "make_llava.py failed for %s", name);
    if (rc) return;
    t2_vit_train_config cfg;
    T2_CHECK(t2_vit_train_config_load(dir, &cfg) == 0, "config: %s", t2_last_error());
    const t2_vit_config *vc = &cfg.vit;
    size_t npx = (size_t)NIMG * vc->n_channels * vc->image_size * vc->image_size;
    t2_vit_train *tr = t2_vit_train_new(&cfg, NIMG);
    T2_CHECK(tr != NULL, "%s: new: %s", name, t2_last_error());
    if (!tr) return;
    int tok = t2_vit_train_tokens(tr), F = t2_vit_train_feat_dim(tr), H = cfg.text_hidden;
    size_t nout = (size_t)NIMG * tok * H;
    float *px = t2_malloc(sizeof(float) * npx), *dout = t2_malloc(sizeof(float) * nout);
    float *out = t2_malloc(sizeof(float) * nout), *out2 = t2_malloc(sizeof(float) * nout);
    for (size_t i = 0; i < npx; i++) px[i] = t2_test_randn();
    for (size_t i = 0; i < nout; i++) dout[i] = t2_test_randn();
    rc = write_f32(pxf, px, npx) || write_f32(dof, dout, nout);
    T2_CHECK(rc == 0, "%s: cannot write inputs", name);
    if (!rc) rc = t2_test_python(e, "vit_train_ref.py", "'%s' --pixels '%s' --dout '%s' --out '%s'", dir, pxf, dof, ref);
    T2_CHECK(rc == 0, "vit_train_ref.py failed for %s", name);
    t2_st *st = rc ? NULL : t2_st_open(dir), *want = rc ? NULL : t2_st_open(ref);
    T2_CHECK(st && want, "%s: open: %s", name, t2_last_error());
    if (!st || !want) goto done;
    T2_CHECK(t2_vit_train_load(tr, st) == 0, "%s: load: %s", name, t2_last_error());

    // output and gradients vs torch f64
    T2_CHECK(t2_vit_train_forward(tr, px, NIMG, out) == 0, "%s: forward: %s", name, t2_last_error());
    t2_vit_train_backward(tr, dout);
    const t2_st_tensor *wo = t2_st_get(want, "out");
    T2_CHECK(wo && (size_t)wo->numel == nout, "%s: reference out missing or wrong size", name);
    if (wo) {
        double r = t2_test_rel_err(out, wo->data, nout);
        printf("%s: out (%d, %d, %d) vs torch f64: relative error %.3g\n", name, NIMG, tok, H, r);
        T2_CHECK(r <= 1e-5, "%s: out relative error %.3g > 1e-5", name, r);
    }
    int nt = t2_vit_train_tensor_count(tr);
    double worst = 0, gmax_all = 0;
    for (int i = 0; i < nt; i++) {
        char tn[128], key[160];
        size_t numel;
        t2_vit_train_tensor(tr, i, tn, sizeof tn, NULL, NULL, &numel);
        snprintf(key, sizeof key, "grad.%s", tn);
        const t2_st_tensor *r = t2_st_get(want, key);
        if (r && (size_t)r->numel == numel && t2_test_max_abs(r->data, numel) > gmax_all) gmax_all = t2_test_max_abs(r->data, numel);
    }
    char worst_name[128] = "";
    double zero_worst = 0;
    int n_zero = 0;
    for (int i = 0; i < nt; i++) {
        char tn[128], key[160];
        float *p, *g;
        size_t numel;
        t2_vit_train_tensor(tr, i, tn, sizeof tn, &p, &g, &numel);
        snprintf(key, sizeof key, "grad.%s", tn);
        const t2_st_tensor *r = t2_st_get(want, key);
        T2_CHECK(r && (size_t)r->numel == numel, "%s: reference gradient %s missing or wrong size", name, key);
        if (!r) continue;
        double m = t2_test_max_abs(r->data, numel), rel = t2_test_rel_err(g, r->data, numel);
        if (m <= 1e-9 * gmax_all) {   // mathematically zero (k_proj.bias: softmax is shift invariant per query;
                                      // layers past the selected one): f32 rounding only, against the largest gradient
            double z = t2_test_max_abs(g, numel) / gmax_all;
            T2_CHECK(z <= 1e-6, "%s: gradient %s should be zero: max |g| %.3g of the largest gradient", name, tn, z);
            if (z > zero_worst) zero_worst = z;
            n_zero++;
            continue;
        }
        T2_CHECK(rel <= 1e-4, "%s: gradient %s relative error %.3g (max |g| %.3g)", name, tn, rel, m);
        if (rel >= worst) { worst = rel; snprintf(worst_name, sizeof worst_name, "%s", tn); }
    }
    printf("%s: %d gradients vs torch f64, worst relative error %.3g (%s); %d exactly-zero ones, worst |g| %.3g "
           "of the largest gradient\n", name, nt - n_zero, worst, worst_name, n_zero, zero_worst);

    // accumulation: a second backward doubles the gradient block; zero_grad clears
    size_t np;
    float *gb = t2_vit_train_grad_block(tr, &np);
    float *g1 = t2_malloc(sizeof(float) * np);
    memcpy(g1, gb, sizeof(float) * np);
    t2_vit_train_backward(tr, dout);
    double ad = 0;
    for (size_t i = 0; i < np; i++) if (fabs(gb[i] - 2 * g1[i]) > ad) ad = fabs(gb[i] - 2 * g1[i]);
    T2_CHECK(ad <= 1e-6 * t2_test_max_abs(g1, np), "%s: two backwards are not 2x one (%.3g)", name, ad);
    t2_vit_train_zero_grad(tr);
    T2_CHECK(t2_test_max_abs(gb, np) == 0, "%s: zero_grad left non-zero gradients", name);
    memcpy(gb, g1, sizeof(float) * np);
    free(g1);

    // the inference path on the same pixels: tower features, then features + projector
    t2_pool *pool = t2_pool_new(2);
    t2_vit *vit = t2_vit_new(st, vc, pool, NIMG);
    T2_CHECK(vit != NULL, "%s: t2_vit_new: %s", name, t2_last_error());
    if (vit) {
        float *feat = t2_malloc(sizeof(float) * NIMG * tok * F);
        T2_CHECK(t2_vit_features(vit, px, NIMG, feat) == 0, "%s: t2_vit_features: %s", name, t2_last_error());
        double r = t2_test_rel_err(t2_vit_train_features(tr), feat, (size_t)NIMG * tok * F);
        printf("%s: training features vs t2_vit_features: relative error %.3g\n", name, r);
        T2_CHECK(r <= 1e-5, "%s: training features differ from inference (%.3g)", name, r);
        free(feat);
        t2_vit_free(vit);
    }
    t2_pool_free(pool);
    t2_vlm *m = t2_vlm_load(dir, 2, 0);
    T2_CHECK(m != NULL, "%s: t2_vlm_load: %s", name, t2_last_error());
    if (m) {
        T2_CHECK(t2_vlm_tile_tokens(m) == tok, "%s: token count %d vs %d", name, t2_vlm_tile_tokens(m), tok);
        T2_CHECK(t2_vlm_encode_tiles(m, px, NIMG, out2) == 0, "%s: encode_tiles: %s", name, t2_last_error());
        double r = t2_test_rel_err(out, out2, nout);
        printf("%s: training out vs inference t2_vlm_encode_tiles: relative error %.3g\n", name, r);
        T2_CHECK(r <= 1e-5, "%s: training forward differs from inference (%.3g)", name, r);
        t2_vlm_free(m);
    }

    fd_loss L = {px, dout, out2, nout, 0};
    check_fd(tr, &L, name);
    check_fd_features(tr, px, name);
    T2_CHECK(t2_vit_train_forward(tr, px, NIMG + 1, out) == -1, "%s: oversize batch accepted", name);

done:
    t2_st_close(st);
    t2_st_close(want);
    t2_vit_train_free(tr);
    free(px);
    free(dout);
    free(out);
    free(out2);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    check_case(&e, "llava15-clip", "--kind llava15 --seed 3");
    check_case(&e, "onevision-siglip", "--kind onevision --seed 4");
    check_case(&e, "clip-list-gelu-f16", "--kind llava15 --seed 5 --layout new --dtype F16 --feature-layer=-3,-1 --hidden-act gelu");
    return t2_test_done();
}
