// test_vlm_train.c — the whole LLaVA model trained as one (train/vlm_train.c + train/optim.c) against
// torch autograd in float64 (tests/ref/vlm_train_ref.py: tower → projector → image rows spliced into
// the language model → cross-entropy, one graph). Cases: LLaVA-1.5 (CLIP + Llama, 2 layers each side,
// the whole tower selected) and OneVision (SigLIP + Qwen2 with biases). A batch of three rows mixes two
// image rows and one padded text row. Checked: the loss (1e-5 relative), every parameter gradient
// (1e-4 relative to the tensor's largest entry; the worst tensor is printed), ten AdamW steps with
// clipping and warmup + cosine (losses and final parameters vs torch.optim.AdamW), gradient
// accumulation (two half batches = the whole when weighted), the export read back by the inference
// path (t2_vlm_load: the same image rows and logits as the training forward), seeded init.
#include "testutil.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "fusion/vlm.h"
#include "train/train.h"
#include "train/vlm_train.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define B 3

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
static float randn(void) {
    double u = ((rnd() >> 11) + 0.5) / 9007199254740992.0, v = ((rnd() >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

typedef struct {
    int T, R, S, nimg, V, image_id;
    int32_t tokens[B * 64], targets[B * 64];
    uint8_t is_image[B * 64];
    float *pixels;
} batch;

// Row 0: BOS, 2 text, image run, text, answer targets; row 1: text only, padded at the end; row 2: image first.
static void make_batch(batch *b, t2_vlm_train *vt, int V) {
    b->R = t2_vlm_train_image_tokens(vt), b->S = t2_vlm_train_image_size(vt), b->V = V;
    b->image_id = t2_vlm_train_image_token_id(vt);
    b->T = b->R + 8, b->nimg = 2;
    int T = b->T;
    for (int n = 0; n < B * T; n++) {
        b->tokens[n] = 1 + (int)(rnd() % (uint64_t)(V - 2));
        b->targets[n] = n % 3 == 0 ? -1 : (int)(rnd() % (uint64_t)(V - 1));
        b->is_image[n] = 0;
    }
    for (int k = 0; k < b->R; k++) {
        b->is_image[0 * T + 3 + k] = 1, b->tokens[0 * T + 3 + k] = b->image_id, b->targets[0 * T + 3 + k] = -1;
        b->is_image[2 * T + 0 + k] = 1, b->tokens[2 * T + 0 + k] = b->image_id, b->targets[2 * T + k] = -1;
    }
    for (int t = T - 3; t < T; t++) b->targets[1 * T + t] = -1, b->tokens[1 * T + t] = 0;   // padding
    size_t np = (size_t)b->nimg * 3 * b->S * b->S;
    b->pixels = t2_malloc(sizeof(float) * np);
    for (size_t i = 0; i < np; i++) b->pixels[i] = randn();
}

static int write_batch(const batch *b, const char *path) {
    t2_st_writer *w = t2_st_writer_new();
    int64_t d2[2] = {B, b->T}, d4[4] = {b->nimg, 3, b->S, b->S};
    int rc = t2_st_writer_add(w, "tokens", T2_DTYPE_I32, 2, d2, b->tokens) ||
             t2_st_writer_add(w, "targets", T2_DTYPE_I32, 2, d2, b->targets) ||
             t2_st_writer_add(w, "is_image", T2_DTYPE_U8, 2, d2, b->is_image) ||
             t2_st_writer_add(w, "pixels", T2_DTYPE_F32, 4, d4, b->pixels) || t2_st_writer_write(w, path);
    t2_st_writer_free(w);
    return rc;
}

static void check_grads(t2_vlm_train *vt, const t2_st *want, const char *name, double tol) {
    t2_vlm_train_blocks bl;
    t2_vlm_train_get_blocks(vt, &bl);
    int n = t2_vlm_train_tensor_count(vt), missing = 0;
    double worst = 0;
    char worst_name[200] = "";
    for (int i = 0; i < n; i++) {
        t2_vlm_train_tensor t;
        t2_vlm_train_tensor_info(vt, i, &t);
        char key[200];
        snprintf(key, sizeof key, "grad.%s", t.name);
        const t2_st_tensor *r = t2_st_find(want, key);
        if (!r || (size_t)r->numel != t.numel) { missing++; T2_CHECK(0, "%s: reference lacks %s", name, key); continue; }
        double e = t2_test_rel_err(bl.g[t.block] + t.offset, r->data, t.numel);
        if (strstr(t.name, "k_proj.bias")) {
            // Exactly zero in exact arithmetic (softmax is shift-invariant): torch f64 leaves ~1e-17,
            // f32 ~1e-9 — compare on the scale of the model's gradients instead of its own.
            double d = 0;
            for (size_t k = 0; k < t.numel; k++) d = fmax(d, fabs(bl.g[t.block][t.offset + k] - ((const float *)r->data)[k]));
            T2_CHECK(d <= 1e-6, "%s: gradient of %s should be ~0, differs by %.3g", name, t.name, d);
            continue;
        }
        if (e > worst) worst = e, snprintf(worst_name, sizeof worst_name, "%s", t.name);
        T2_CHECK(e <= tol, "%s: gradient of %s: relative error %.3g > %.0e", name, t.name, e, tol);
    }
    printf("%s: %d parameter gradients vs torch f64, worst relative error %.3g (%s)\n", name, n - missing, worst, worst_name);
}

static void check_case(const t2_test_env *e, const char *name, const char *args) {
    char dir[1024], bf[1100], ref[1100], ref10[1100], exp[1100];
    snprintf(dir, sizeof dir, "%s/vlm_train_%s", e->work, name);
    snprintf(bf, sizeof bf, "%s/batch.safetensors", dir);
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    snprintf(ref10, sizeof ref10, "%s/ref10.safetensors", dir);
    snprintf(exp, sizeof exp, "%s/export", dir);
    int rc = t2_test_python(e, "make_llava.py", "'%s' %s", dir, args);
    T2_CHECK(rc == 0, "make_llava.py failed for %s", name);
    if (rc) return;
    char cfgp[1100];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    cJSON *cfg = t2_json_load(cfgp);
    T2_CHECK(cfg != NULL, "config: %s", t2_last_error());
    t2_vlm_train *vt = cfg ? t2_vlm_train_new(cfg, B, 64, 2) : NULL;
    T2_CHECK(vt != NULL, "%s: new: %s", name, t2_last_error());
    if (!vt) { cJSON_Delete(cfg); return; }
    t2_st *st = t2_st_open(dir);
    T2_CHECK(st && t2_vlm_train_load(vt, st) == 0, "%s: load: %s", name, t2_last_error());
    int V = (int)t2_json_num(cJSON_GetObjectItem(cfg, "text_config"), "vocab_size", 0);
    batch b;
    make_batch(&b, vt, V);
    rc = write_batch(&b, bf);
    T2_CHECK(rc == 0, "cannot write the batch: %s", t2_last_error());
    rc = rc || t2_test_python(e, "vlm_train_ref.py", "'%s' --batch '%s' --out '%s'", dir, bf, ref) ||
         t2_test_python(e, "vlm_train_ref.py", "'%s' --batch '%s' --out '%s' --steps 10 --lr-max 3e-3 --lr-min 3e-4 "
                        "--warmup 3 --total 10 --wd 0.1 --clip 1.0", dir, bf, ref10);
    T2_CHECK(rc == 0, "vlm_train_ref.py failed for %s", name);
    t2_st *want = rc ? NULL : t2_st_open(ref), *want10 = rc ? NULL : t2_st_open(ref10);
    if (!want || !want10) goto done;

    // 1. loss and every gradient in one graph
    t2_vlm_train_zero_grad(vt);
    float loss = t2_vlm_train_forward(vt, b.tokens, b.targets, b.is_image, b.pixels, b.nimg, B, b.T);
    T2_CHECK(!isnan(loss), "%s: forward: %s", name, t2_last_error());
    t2_vlm_train_backward(vt);
    float wl = *(const float *)t2_st_get(want, "loss")->data;
    printf("%s: loss %.7f vs torch %.7f (B=%d, T=%d, %d image rows each)\n", name, loss, wl, B, b.T, b.R);
    T2_CHECK(fabs(loss - wl) <= 1e-5 * fabs(wl), "%s: loss %.7f vs %.7f", name, loss, wl);
    check_grads(vt, want, name, 1e-4);

    // 2. gradient accumulation: rows {0,1} and {2} as two micro-batches, each weighted by its target share
    {
        t2_vlm_train_blocks bl;
        t2_vlm_train_get_blocks(vt, &bl);
        size_t nall = bl.n[0] + bl.n[1];
        float *whole = t2_malloc(sizeof(float) * nall);
        memcpy(whole, bl.g[0], sizeof(float) * bl.n[0]);
        if (bl.n[1]) memcpy(whole + bl.n[0], bl.g[1], sizeof(float) * bl.n[1]);
        int cnt[2] = {0, 0};
        for (int n = 0; n < B * b.T; n++) if (b.targets[n] >= 0) cnt[n >= 2 * b.T]++;
        t2_vlm_train_zero_grad(vt);
        t2_vlm_train_forward(vt, b.tokens, b.targets, b.is_image, b.pixels, 1, 2, b.T);
        t2_vlm_train_backward(vt);
        float w0 = (float)cnt[0] / (cnt[0] + cnt[1]);
        t2_grad_scale(bl.g[0], bl.n[0], w0);
        if (bl.n[1]) t2_grad_scale(bl.g[1], bl.n[1], w0);
        // second micro-batch: scale the gradients so far by 1/w1 trick-free: accumulate into a copy
        float *part = t2_malloc(sizeof(float) * nall);
        memcpy(part, bl.g[0], sizeof(float) * bl.n[0]);
        if (bl.n[1]) memcpy(part + bl.n[0], bl.g[1], sizeof(float) * bl.n[1]);
        t2_vlm_train_zero_grad(vt);
        size_t px1 = (size_t)3 * b.S * b.S;
        t2_vlm_train_forward(vt, b.tokens + 2 * b.T, b.targets + 2 * b.T, b.is_image + 2 * b.T, b.pixels + px1, 1, 1, b.T);
        t2_vlm_train_backward(vt);
        float w1 = 1 - w0;
        for (size_t i = 0; i < bl.n[0]; i++) part[i] += w1 * bl.g[0][i];
        for (size_t i = 0; i < bl.n[1]; i++) part[bl.n[0] + i] += w1 * bl.g[1][i];
        double er = t2_test_rel_err(part, whole, nall);
        printf("%s: two micro-batches weighted by their targets vs the whole batch: relative error %.3g\n", name, er);
        T2_CHECK(er <= 1e-5, "%s: accumulated gradient differs (%.3g)", name, er);
        free(whole), free(part);
    }

    // 2b. the centred vision gradient (optim.center_vision_grad): with the batch's two images made the
    // same picture, both give the same rows through the same Jacobian, so the gradient minus its mean
    // over the images reaches the vision side as exactly nothing, while the language model's gradients
    // stay those of the plain backward. (Centring over the positions instead would not give zero.)
    if (b.nimg == 2) {
        size_t px = (size_t)3 * b.S * b.S;
        float *same = t2_malloc(sizeof(float) * 2 * px);
        memcpy(same, b.pixels, sizeof(float) * px), memcpy(same + px, b.pixels, sizeof(float) * px);
        t2_vlm_train_blocks bl;
        t2_vlm_train_get_blocks(vt, &bl);
        float *plain = t2_malloc(sizeof(float) * (bl.n[0] + bl.n[1]));
        t2_vlm_train_zero_grad(vt);
        t2_vlm_train_forward(vt, b.tokens, b.targets, b.is_image, same, 2, B, b.T);
        t2_vlm_train_backward(vt);
        memcpy(plain, bl.g[0], sizeof(float) * bl.n[0]), memcpy(plain + bl.n[0], bl.g[1], sizeof(float) * bl.n[1]);
        t2_vlm_train_set_vision_grad_center(vt, 1);
        t2_vlm_train_zero_grad(vt);
        t2_vlm_train_forward(vt, b.tokens, b.targets, b.is_image, same, 2, B, b.T);
        t2_vlm_train_backward(vt);
        t2_vlm_train_set_vision_grad_center(vt, 0);
        double vmax = 0, vplain = 0;
        for (size_t i = 0; i < bl.n[1]; i++) vmax = fmax(vmax, fabs(bl.g[1][i])), vplain = fmax(vplain, fabs(plain[bl.n[0] + i]));
        double lm_err = t2_test_rel_err(bl.g[0], plain, bl.n[0]);
        printf("%s: centred vision gradient on two equal images: max %.3g (plain %.3g); language model unchanged (%.3g)\n",
               name, vmax, vplain, lm_err);
        T2_CHECK(vplain > 0 && vmax <= 1e-6 * vplain, "%s: centred vision gradient %.3g, plain %.3g", name, vmax, vplain);
        T2_CHECK(lm_err == 0, "%s: centring changed the language model's gradients (%.3g)", name, lm_err);
        free(same), free(plain);
    }

    // 3. ten AdamW steps (clip 1.0, warmup 3 + cosine to 10, wd 0.1 on matrices) vs torch.optim.AdamW
    {
        t2_vlm_train_load(vt, st);   // back to the checkpoint's weights
        t2_train_optim o;
        T2_CHECK(t2_train_optim_init(&o, vt) == 0, "optim: %s", t2_last_error());
        t2_adamw_config ac = t2_adamw_defaults();
        ac.weight_decay = 0.1;
        const float *wl10 = t2_st_get(want10, "losses")->data;
        double worst = 0;
        for (int s = 0; s < 10; s++) {
            t2_vlm_train_zero_grad(vt);
            float l = t2_vlm_train_forward(vt, b.tokens, b.targets, b.is_image, b.pixels, b.nimg, B, b.T);
            t2_vlm_train_backward(vt);
            t2_train_optim_step(&o, vt, &ac, t2_lr_at(s, 3, 10, 3e-3, 3e-4), 1.0f);
            double r = fabs(l - wl10[s]) / fabs(wl10[s]);
            if (r > worst) worst = r;
            T2_CHECK(r <= 1e-4, "%s: AdamW step %d loss %.7f vs torch %.7f", name, s, l, wl10[s]);
        }
        printf("%s: ten AdamW steps: losses %.5f → %.5f (torch %.5f → %.5f), worst relative difference %.3g\n", name,
               wl10[0], wl10[9], wl10[0], wl10[9], worst);
        t2_vlm_train_blocks bl;
        t2_vlm_train_get_blocks(vt, &bl);
        int n = t2_vlm_train_tensor_count(vt);
        double pw = 0;
        for (int i = 0; i < n; i++) {
            t2_vlm_train_tensor t;
            t2_vlm_train_tensor_info(vt, i, &t);
            char key[200];
            snprintf(key, sizeof key, "param.%s", t.name);
            const t2_st_tensor *r = t2_st_find(want10, key);
            T2_CHECK(r && (size_t)r->numel == t.numel, "%s: reference lacks %s", name, key);
            if (!r) continue;
            double er = t2_test_rel_err(bl.p[t.block] + t.offset, r->data, t.numel);
            if (strstr(t.name, "k_proj.bias")) {
                // Its gradient is rounding noise (above), which Adam's normalisation turns into steps of up
                // to ±lr: bound the difference by twice the summed learning rates.
                double d = 0, lrsum = 0;
                for (int s2 = 0; s2 < 10; s2++) lrsum += t2_lr_at(s2, 3, 10, 3e-3, 3e-4);
                for (size_t k = 0; k < t.numel; k++) d = fmax(d, fabs(bl.p[t.block][t.offset + k] - ((const float *)r->data)[k]));
                T2_CHECK(d <= 2 * lrsum, "%s: %s moved %.3g from torch (bound %.3g)", name, t.name, d, 2 * lrsum);
                continue;
            }
            if (er > pw) pw = er;
            T2_CHECK(er <= 1e-4, "%s: parameter %s after ten steps: relative error %.3g", name, t.name, er);
        }
        printf("%s: parameters after ten steps vs torch: worst relative error %.3g\n", name, pw);
        t2_train_optim_free(&o);
    }

    // 4. export → the inference path reads it and computes the same image rows and logits
    {
        char path[1200], cmd[8192];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/config.json' '%s/preprocessor_config.json' '%s/'", exp, dir, dir, exp);
        T2_CHECK(system(cmd) == 0, "cannot prepare %s", exp);
        snprintf(path, sizeof path, "%s/model.safetensors", exp);
        T2_CHECK(t2_vlm_train_export(vt, path, T2_DTYPE_F32) == 0, "export: %s", t2_last_error());
        t2_vlm *m = t2_vlm_load(exp, 1, 0);
        T2_CHECK(m != NULL, "%s: the export does not load: %s", name, t2_last_error());
        if (m) {
            float loss2 = t2_vlm_train_forward(vt, b.tokens, b.targets, b.is_image, b.pixels, b.nimg, B, b.T);
            (void)loss2;
            int R = b.R, H = t2_vlm_lm_cfg(m)->hidden_size, Vv = t2_vlm_lm_cfg(m)->vocab_size;
            float *rows = t2_malloc(sizeof(float) * (size_t)2 * R * H);
            T2_CHECK(t2_vlm_encode_tiles(m, b.pixels, 2, rows) == 0, "encode: %s", t2_last_error());
            // row 2 of the batch: image first, then text — through the inference LM with the same rows
            t2_lm_state *s = t2_lm_state_new(t2_vlm_lm(m), 64, 64);
            float *emb = t2_calloc((size_t)b.T * H, sizeof(float)), *lg = t2_malloc(sizeof(float) * (size_t)b.T * Vv);
            for (int k = 0; k < R; k++) memcpy(emb + (size_t)k * H, rows + (size_t)(R + k) * H, sizeof(float) * H);
            rc = t2_lm_forward(t2_vlm_lm(m), s, b.tokens + 2 * b.T, emb, b.is_image + 2 * b.T, b.T, lg, 1);
            T2_CHECK(rc == 0, "inference forward: %s", t2_last_error());
            const float *tl = t2_lm_train_logits(t2_vlm_train_lm(vt)) + (size_t)2 * b.T * Vv;
            double er = t2_test_rel_err(lg, tl, (size_t)b.T * Vv);
            printf("%s: exported checkpoint through t2_vlm_load: logits vs the training forward, relative error %.3g\n", name, er);
            T2_CHECK(er <= 1e-4, "%s: exported logits differ (%.3g)", name, er);
            t2_lm_state_free(s);
            free(rows), free(emb), free(lg);
            t2_vlm_free(m);
        }
    }

    // 5. seeded init: same seed, same parameters; norms start at 1
    {
        t2_vlm_train_blocks bl;
        t2_vlm_train_get_blocks(vt, &bl);
        t2_vlm_train_init(vt, 7, 0.02f);
        float *a = t2_malloc(sizeof(float) * bl.n[0]);
        memcpy(a, bl.p[0], sizeof(float) * bl.n[0]);
        t2_vlm_train_init(vt, 7, 0.02f);
        T2_CHECK(!memcmp(a, bl.p[0], sizeof(float) * bl.n[0]), "%s: init is not deterministic", name);
        t2_vlm_train_init(vt, 8, 0.02f);
        T2_CHECK(memcmp(a, bl.p[0], sizeof(float) * bl.n[0]), "%s: init ignores the seed", name);
        float *nw = t2_lm_train_params(t2_vlm_train_lm(vt))->norm_final;
        T2_CHECK(nw[0] == 1.0f, "%s: a norm gain starts at %g", name, nw[0]);
        free(a);
    }
done:
    t2_st_close(want), t2_st_close(want10), t2_st_close(st);
    free(b.pixels);
    t2_vlm_train_free(vt);
    cJSON_Delete(cfg);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    check_case(&e, "llava15", "--kind llava15 --feature-layer -1");
    check_case(&e, "onevision", "--kind onevision");
    return t2_test_done();
}
