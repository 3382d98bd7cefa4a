// test_lm_train.c — the training forward/backward of the language model (language/lm_train.c) against
// torch autograd in float64 (tests/ref/lm_train_ref.py) on tiny random checkpoints from make_lm.py:
// Llama with GQA (plain layout), Qwen2 with q/k/v biases and tied embeddings (new LLaVA layout) and
// Llama-3 rope scaling from BF16 weights (legacy layout). Per case: the loss (1e-5 relative), every
// parameter gradient (1e-4 relative to its max magnitude), the training logits and loss against the
// inference forward (t2_lm_forward), central finite differences for a few entries of each tensor
// kind, the SVF hook (dW = dYᵀ·X for every linear), and += accumulation over two backwards.
// Input embeddings (t2_lm_train_forward_embeds): random rows at a few positions; loss, every parameter
// gradient and d(input rows) (t2_lm_train_dembeds) against torch f64, the logits against t2_lm_forward
// with the same embeds / is_embed, and no embed_tokens gradient from the embedded positions.
// The head on target positions only (T2_LM_TRAIN_TARGET_LOGITS) against the same references, and the
// loss scale used by data-parallel training.
#include "testutil.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "language/lm.h"
#include "language/lm_train.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define B 2
#define T 7

// (B, T) batch: row 1 is padded at its end (targets -1), row 0 ignores its first two targets.
static const int32_t TOKENS[B * T] = {1, 17, 250, 3, 99, 42, 42, 5, 280, 64, 12, 0, 0, 0};
static const int32_t TARGETS[B * T] = {-1, -1, 3, 99, 42, 42, 7, 280, 64, 12, 299, -1, -1, -1};

static void csv(char *out, size_t cap, const int32_t *v, int n) {
    size_t k = 0;
    for (int i = 0; i < n && k < cap; i++) k += (size_t)snprintf(out + k, cap - k, "%s%d", i ? "," : "", v[i]);
}

// The loss (1e-5 relative) and every parameter gradient (1e-4 relative to its largest magnitude)
// against the reference file WANT; prints the worst tensor. LABEL tags the case in messages.
static void check_loss_and_grads(t2_lm_train *tr, t2_st *want, float loss, const char *name, const char *label) {
    const t2_st_tensor *wl = t2_st_get(want, "loss");
    float rl = wl ? ((const float *)wl->data)[0] : NAN;
    double lrel = fabs(loss - rl) / fabs(rl);
    printf("%s%s: loss %.7f, torch f64 %.7f, relative error %.3g\n", name, label, loss, rl, lrel);
    T2_CHECK(lrel <= 1e-5, "%s%s: loss relative error %.3g > 1e-5", name, label, lrel);
    int n = t2_lm_train_tensor_count(tr);
    double worst = 0;
    char worst_name[128] = "";
    for (int i = 0; i < n; i++) {
        char tn[128], key[160];
        float *p, *g;
        size_t numel;
        t2_lm_train_tensor(tr, i, tn, sizeof tn, &p, &g, &numel);
        snprintf(key, sizeof key, "grad.%s", tn);
        const t2_st_tensor *r = t2_st_get(want, key);
        T2_CHECK(r && (size_t)r->numel == numel, "%s%s: reference gradient %s missing or wrong size", name, label, key);
        if (!r) continue;
        const float *rg = r->data;
        double m = t2_test_max_abs(rg, numel), d = 0;
        for (size_t j = 0; j < numel; j++) if (fabs(g[j] - rg[j]) > d) d = fabs(g[j] - rg[j]);
        double rel = d / (m > 0 ? m : 1);
        T2_CHECK(rel <= 1e-4, "%s%s: gradient %s relative error %.3g (max |g| %.3g)", name, label, tn, rel, m);
        if (rel >= worst) { worst = rel; snprintf(worst_name, sizeof worst_name, "%s", tn); }
    }
    printf("%s%s: %d gradients vs torch f64, worst relative error %.3g (%s)\n", name, label, n, worst, worst_name);
}


// T2_LM_TRAIN_TARGET_LOGITS (the head on the target positions only): the same loss and every gradient
// against torch f64, the same per-position NLL as the full head (FULL, after its forward), one logits
// row per target; and the loss scale: backward with scale 0.25 adds exactly 0.25 of the gradient.
static void check_target_head(t2_lm_train *full, const t2_st *st, t2_st *want, const t2_lm_config *cfg, const char *name) {
    t2_lm_train *tr = t2_lm_train_new_ex(cfg, B, T, T2_LM_TRAIN_TARGET_LOGITS);
    T2_CHECK(tr && t2_lm_train_load(tr, st) == 0, "%s: target head: load: %s", name, t2_last_error());
    if (!tr) return;
    float loss = t2_lm_train_forward(tr, TOKENS, TARGETS, B, T);
    t2_lm_train_backward(tr);
    check_loss_and_grads(tr, want, loss, name, " (target head)");
    t2_lm_train_forward(full, TOKENS, TARGETS, B, T);
    const float *a = t2_lm_train_token_nll(full), *b = t2_lm_train_token_nll(tr);
    double d = 0;
    int nt = 0;
    for (int n = 0; n < B * T; n++) d = fmax(d, fabs(a[n] - b[n])), nt += TARGETS[n] >= 0;
    T2_CHECK(d <= 1e-5, "%s: target head: per-position NLL differs by %.3g", name, d);
    const float *lf = t2_lm_train_logits(full), *lt = t2_lm_train_logits(tr);
    double ld = 0;
    for (int n = 0, m = 0; n < B * T; n++)
        if (TARGETS[n] >= 0) {
            for (int v = 0; v < cfg->vocab_size; v++)
                ld = fmax(ld, fabs(lf[(size_t)n * cfg->vocab_size + v] - lt[(size_t)m * cfg->vocab_size + v]));
            m++;
        }
    T2_CHECK(ld <= 1e-5, "%s: target head: the %d target rows' logits differ by %.3g", name, nt, ld);

    size_t np;
    float *gb = t2_lm_train_grad_block(tr, &np);
    float *g1 = t2_malloc(sizeof(float) * np);
    memcpy(g1, gb, sizeof(float) * np);
    t2_lm_train_zero_grad(tr);
    t2_lm_train_set_loss_scale(tr, 0.25f);
    t2_lm_train_forward(tr, TOKENS, TARGETS, B, T);
    t2_lm_train_backward(tr);
    double sd = 0;
    for (size_t i = 0; i < np; i++) sd = fmax(sd, fabs(gb[i] - 0.25 * g1[i]));
    T2_CHECK(sd <= 1e-6 * t2_test_max_abs(g1, np), "%s: loss scale 0.25: gradient off by %.3g", name, sd);
    printf("%s: target head: NLL per position %.2g, %d logits rows %.2g from the full head; loss scale 0.25 %.2g\n",
           name, d, nt, ld, sd);
    free(g1);
    t2_lm_train_free(tr);
}

// Inference forward on each row: logits equal the training logits; the loss from them equals too.
static void check_inference(t2_lm_train *tr, const t2_st *st, const t2_lm_config *cfg, float loss, const char *name) {
    t2_lm *lm = t2_lm_new(st, cfg, NULL);
    T2_CHECK(lm != NULL, "%s: t2_lm_new: %s", name, t2_last_error());
    if (!lm) return;
    int V = cfg->vocab_size;
    float *lg = t2_malloc(sizeof(float) * B * T * V);
    for (int b = 0; b < B; b++) {
        t2_lm_state *s = t2_lm_state_new(lm, T, T);
        T2_CHECK(t2_lm_forward(lm, s, TOKENS + b * T, NULL, NULL, T, lg + (size_t)b * T * V, 1) == 0,
                 "inference forward: %s", t2_last_error());
        t2_lm_state_free(s);
    }
    char what[128];
    snprintf(what, sizeof what, "%s: training logits vs inference t2_lm_forward", name);
    t2_test_close(what, t2_lm_train_logits(tr), lg, (size_t)B * T * V, 1e-4);
    double sum = 0;
    int cnt = 0;
    for (int n = 0; n < B * T; n++) {
        if (TARGETS[n] < 0) continue;
        const float *r = lg + (size_t)n * V;
        double mx = -INFINITY, s = 0;
        for (int i = 0; i < V; i++) if (r[i] > mx) mx = r[i];
        for (int i = 0; i < V; i++) s += exp(r[i] - mx);
        sum += log(s) + mx - r[TARGETS[n]];
        cnt++;
    }
    double li = sum / cnt;
    printf("%s: loss %.7f, from inference logits %.7f\n", name, loss, li);
    T2_CHECK(fabs(li - loss) <= 1e-5 * fabs(li), "%s: loss differs from the inference forward's", name);
    free(lg);
    t2_lm_free(lm);
}

// Central differences (h = 1e-2, f32) at three entries of the first
// tensor of each kind; a wrong backward is off by far more than the 3% + small absolute slack.
static void check_fd(t2_lm_train *tr, const char *name) {
    int n = t2_lm_train_tensor_count(tr), checked = 0;
    double worst = 0;
    char worst_name[160] = "";
    for (int i = 0; i < n; i++) {
        char tn[128];
        float *p, *g;
        size_t numel;
        t2_lm_train_tensor(tr, i, tn, sizeof tn, &p, &g, &numel);
        // one layer per kind: skip layer 1+ of per-layer tensors
        if (!strncmp(tn, "layers.", 7) && strncmp(tn, "layers.0.", 9)) continue;
        double gmax = t2_test_max_abs(g, numel);
        // the largest-gradient entry, one in the middle, and entry 0 (row 0 of the embedding is token 0,
        // repeated in the padding: its gradient sums three positions)
        size_t idx[3] = {0, (numel * 7) / 13, 0};
        for (size_t j = 0; j < numel; j++) if (fabs(g[j]) == gmax) { idx[0] = j; break; }
        for (int e = 0; e < 3; e++) {
            size_t j = idx[e];
            float keep = p[j], h = 1e-2f;
            p[j] = keep + h;
            double lp = t2_lm_train_forward(tr, TOKENS, TARGETS, B, T);
            p[j] = keep - h;
            double lm = t2_lm_train_forward(tr, TOKENS, TARGETS, B, T);
            p[j] = keep;
            double fd = (lp - lm) / (2 * h), err = fabs(fd - g[j]) / (gmax + 1e-12);
            int ok = fabs(fd - g[j]) <= 0.03 * fabs(g[j]) + 2e-3 * gmax + 2e-5;
            T2_CHECK(ok, "%s: finite difference %s[%zu]: fd %.6g vs backward %.6g", name, tn, j, fd, g[j]);
            if (err > worst) { worst = err; snprintf(worst_name, sizeof worst_name, "%s[%zu]", tn, j); }
            checked++;
        }
    }
    printf("%s: %d finite-difference entries, worst |fd - g| / max|g| = %.3g at %s\n", name, checked, worst, worst_name);
}

// Embedded positions: row 0 at t = 1..3 (tokens 17, 250, 3), row 1 at t = 2, 3 (tokens 64, 12).
static const uint8_t IS_EMBED[B * T] = {0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0};

static void check_embeds(const t2_test_env *e, const char *dir, const char *name, t2_lm_train *tr,
                         const t2_st *st, const t2_lm_config *cfg) {
    int C = cfg->hidden_size, V = cfg->vocab_size, N = B * T;
    char path[1100], ref[1100], tok[256], tgt[256], msk[256];
    int32_t ie[B * T];
    // embeds: deterministic pseudo-random rows (LCG, uniform in [-0.5, 0.5)) everywhere; only the
    // flagged ones are read
    float *emb = t2_malloc(sizeof(float) * N * C);
    uint32_t st32 = 12345u;
    for (int i = 0; i < N * C; i++) {
        st32 = st32 * 1664525u + 1013904223u;
        emb[i] = (float)((st32 >> 8) * (1.0 / 16777216.0)) - 0.5f;
    }
    snprintf(path, sizeof path, "%s/embeds.f32", dir);
    snprintf(ref, sizeof ref, "%s/grads_embeds.safetensors", dir);
    FILE *f = fopen(path, "wb");
    T2_CHECK(f && fwrite(emb, sizeof(float), (size_t)N * C, f) == (size_t)N * C, "%s: write %s", name, path);
    if (f) fclose(f);
    for (int i = 0; i < N; i++) ie[i] = IS_EMBED[i];
    csv(tok, sizeof tok, TOKENS, N);
    csv(tgt, sizeof tgt, TARGETS, N);
    csv(msk, sizeof msk, ie, N);
    int rc = t2_test_python(e, "lm_train_ref.py", "'%s' --tokens=%s --targets=%s --B %d --T %d --out '%s' "
                            "--embeds '%s' --is-embed=%s", dir, tok, tgt, B, T, ref, path, msk);
    T2_CHECK(rc == 0, "lm_train_ref.py --embeds failed for %s", name);
    t2_st *want = rc ? NULL : t2_st_open(ref);
    T2_CHECK(rc || want, "open: %s", t2_last_error());
    if (!want) { free(emb); return; }

    t2_lm_train_zero_grad(tr);
    float loss = t2_lm_train_forward_embeds(tr, TOKENS, emb, IS_EMBED, TARGETS, B, T);
    t2_lm_train_backward(tr);
    check_loss_and_grads(tr, want, loss, name, "+embeds");

    // d(input rows): the embedded positions (what flows to the projector), and all positions
    const float *de = t2_lm_train_dembeds(tr);
    const t2_st_tensor *r = t2_st_get(want, "grad.embeds");
    T2_CHECK(de && r && r->numel == (int64_t)N * C, "%s+embeds: dembeds / reference grad.embeds missing", name);
    if (de && r && r->numel == (int64_t)N * C) {
        const float *rg = r->data;
        double m = 0, d = 0, ma = t2_test_max_abs(rg, (size_t)N * C), da = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < C; j++) {
                size_t k = (size_t)i * C + j;
                double diff = fabs(de[k] - rg[k]);
                if (diff > da) da = diff;
                if (!IS_EMBED[i]) continue;
                if (fabs(rg[k]) > m) m = fabs(rg[k]);
                if (diff > d) d = diff;
            }
        printf("%s+embeds: d(embeds) at the embedded positions vs torch f64, relative error %.3g (all rows %.3g)\n",
               name, d / m, da / ma);
        T2_CHECK(m > 0 && d / m <= 1e-4, "%s+embeds: d(embeds) relative error %.3g", name, d / m);
        T2_CHECK(da / ma <= 1e-4, "%s+embeds: d(input rows) relative error %.3g", name, da / ma);
    }

    // embed_tokens gets nothing from embedded positions: other (or invalid) token ids there change
    // nothing; untied, the rows of tokens 17 and 250 (used only at embedded positions) stay zero
    size_t np;
    float *gb = t2_lm_train_grad_block(tr, &np);
    float *g1 = t2_malloc(sizeof(float) * np);
    memcpy(g1, gb, sizeof(float) * np);
    int32_t other[B * T];
    memcpy(other, TOKENS, sizeof other);
    for (int i = 0; i < N; i++) if (IS_EMBED[i]) other[i] = (i % 2) ? 0 : -1;
    t2_lm_train_zero_grad(tr);
    float loss2 = t2_lm_train_forward_embeds(tr, other, emb, IS_EMBED, TARGETS, B, T);
    T2_CHECK(loss2 == loss, "%s+embeds: token ids at embedded positions changed the loss", name);
    t2_lm_train_backward(tr);
    T2_CHECK(!memcmp(g1, gb, sizeof(float) * np), "%s+embeds: token ids at embedded positions changed gradients", name);
    if (t2_lm_train_params(tr)->lm_head) {
        const float *ge = t2_lm_train_grads(tr)->embed;
        T2_CHECK(t2_test_max_abs(ge + (size_t)17 * C, C) == 0 && t2_test_max_abs(ge + (size_t)250 * C, C) == 0,
                 "%s+embeds: embed_tokens rows of embedded-only tokens got a gradient", name);
    }
    free(g1);

    // logits vs the inference forward with the same embeds / is_embed
    t2_lm *lm = t2_lm_new(st, cfg, NULL);
    T2_CHECK(lm != NULL, "%s: t2_lm_new: %s", name, t2_last_error());
    if (lm) {
        float *lg = t2_malloc(sizeof(float) * N * V);
        for (int b = 0; b < B; b++) {
            t2_lm_state *s = t2_lm_state_new(lm, T, T);
            T2_CHECK(t2_lm_forward(lm, s, TOKENS + b * T, emb + (size_t)b * T * C, IS_EMBED + b * T, T,
                                   lg + (size_t)b * T * V, 1) == 0, "inference forward: %s", t2_last_error());
            t2_lm_state_free(s);
        }
        char what[128];
        snprintf(what, sizeof what, "%s+embeds: training logits vs inference t2_lm_forward", name);
        t2_test_close(what, t2_lm_train_logits(tr), lg, (size_t)N * V, 1e-4);
        free(lg);
        t2_lm_free(lm);
    }
    t2_lm_train_zero_grad(tr);
    free(emb);
    t2_st_close(want);
}

static void check_case(const t2_test_env *e, const char *name, const char *args) {
    char dir[1024], ref[1100], tok[256], tgt[256];
    snprintf(dir, sizeof dir, "%s/%s", e->work, name);
    snprintf(ref, sizeof ref, "%s/grads.safetensors", dir);
    int rc = t2_test_python(e, "make_lm.py", "'%s' %s", dir, args);
    T2_CHECK(rc == 0, "make_lm.py failed for %s", name);
    csv(tok, sizeof tok, TOKENS, B * T);
    csv(tgt, sizeof tgt, TARGETS, B * T);
    if (!rc) rc = t2_test_python(e, "lm_train_ref.py", "'%s' --tokens=%s --targets=%s --B %d --T %d --out '%s'",
                                 dir, tok, tgt, B, T, ref);
    T2_CHECK(rc == 0, "lm_train_ref.py failed for %s", name);
    if (rc) return;
    t2_lm_config cfg;
    T2_CHECK(t2_lm_config_load(dir, &cfg) == 0, "config: %s", t2_last_error());
    t2_st *st = t2_st_open(dir), *want = t2_st_open(ref);
    T2_CHECK(st && want, "open: %s", t2_last_error());
    if (!st || !want) { t2_st_close(st); t2_st_close(want); return; }
    t2_lm_train *tr = t2_lm_train_new_ex(&cfg, B, T, T2_LM_TRAIN_SAVE_LINEAR);
    T2_CHECK(tr && t2_lm_train_load(tr, st) == 0, "%s: load: %s", name, t2_last_error());
    if (!tr) { t2_st_close(st); t2_st_close(want); return; }

    // loss and gradients vs torch f64
    float loss = t2_lm_train_forward(tr, TOKENS, TARGETS, B, T);
    t2_lm_train_backward(tr);
    check_loss_and_grads(tr, want, loss, name, "");

    // SVF hook: dW = dYᵀ·X (+ db = Σ dY) for every linear of every layer
    double hook_worst = 0;
    for (int l = 0; l < cfg.n_layers; l++)
        for (int w = T2_LIN_Q; w <= T2_LIN_DOWN; w++) {
            const float *X, *dY;
            int rows, in, out;
            T2_CHECK(t2_lm_train_linear_io(tr, l, (t2_lm_linear)w, &X, &dY, &rows, &in, &out) == 0, "hook: %s", t2_last_error());
            static const char *const nm[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                             "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
            char key[128];
            snprintf(key, sizeof key, "grad.layers.%d.%s.weight", l, nm[w]);
            const t2_st_tensor *r = t2_st_get(want, key);
            if (!r || r->numel != (int64_t)in * out) { T2_CHECK(0, "hook: %s shape", key); continue; }
            const float *rg = r->data;
            double m = t2_test_max_abs(rg, (size_t)r->numel), d = 0;
            for (int o = 0; o < out; o++)
                for (int k = 0; k < in; k++) {
                    double s = 0;
                    for (int t = 0; t < rows; t++) s += (double)dY[(size_t)t * out + o] * X[(size_t)t * in + k];
                    if (fabs(s - rg[(size_t)o * in + k]) > d) d = fabs(s - rg[(size_t)o * in + k]);
                }
            if (d / m > hook_worst) hook_worst = d / m;
        }
    printf("%s: SVF hook dYᵀ·X vs torch gradients, worst relative error %.3g\n", name, hook_worst);
    T2_CHECK(hook_worst <= 1e-4, "%s: SVF hook gradients off by %.3g", name, hook_worst);

    // accumulation: a second backward of the same batch doubles the gradient block; zero_grad clears
    size_t np;
    float *gb = t2_lm_train_grad_block(tr, &np);
    float *g1 = t2_malloc(sizeof(float) * np);
    memcpy(g1, gb, sizeof(float) * np);
    t2_lm_train_backward(tr);
    double ad = 0;
    for (size_t i = 0; i < np; i++) if (fabs(gb[i] - 2 * g1[i]) > ad) ad = fabs(gb[i] - 2 * g1[i]);
    T2_CHECK(ad <= 1e-6 * t2_test_max_abs(g1, np), "%s: two backwards are not 2x one (%.3g)", name, ad);
    t2_lm_train_zero_grad(tr);
    T2_CHECK(t2_test_max_abs(gb, np) == 0, "%s: zero_grad left non-zero gradients", name);
    memcpy(gb, g1, sizeof(float) * np);
    free(g1);

    check_target_head(tr, st, want, &cfg, name);
    check_inference(tr, st, &cfg, loss, name);
    check_fd(tr, name);
    check_embeds(e, dir, name, tr, st, &cfg);

    // errors: out-of-vocabulary token, oversize batch
    int32_t bad[B * T];
    memcpy(bad, TOKENS, sizeof bad);
    bad[3] = cfg.vocab_size;
    T2_CHECK(isnan(t2_lm_train_forward(tr, bad, TARGETS, B, T)) && strstr(t2_last_error(), "vocabulary"),
             "%s: bad token accepted (%s)", name, t2_last_error());
    T2_CHECK(isnan(t2_lm_train_forward(tr, TOKENS, TARGETS, B, T + 1)), "%s: oversize batch accepted", name);

    t2_lm_train_free(tr);
    t2_st_close(st);
    t2_st_close(want);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    check_case(&e, "llama-gqa", "--arch llama --seed 3 --hidden 32 --heads 4 --kv-heads 2 --intermediate 48");
    check_case(&e, "qwen2-tied", "--arch qwen2 --layout new --seed 3 --hidden 32 --heads 4 --kv-heads 2 --intermediate 48");
    check_case(&e, "llama3-bf16", "--arch llama3 --layout legacy --dtype BF16 --seed 5 --hidden 64 --heads 4 --kv-heads 1 --intermediate 48");
    return t2_test_done();
}
