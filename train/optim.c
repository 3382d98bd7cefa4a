// optim.c — AdamW over a vlm_train's two parameter blocks (train.h): decay ranges from the tensors'
// groups, global-norm clipping across both blocks, and train-state checkpoints of the pair.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/util.h"
#include "train/train.h"

int t2_train_optim_init(t2_train_optim *o, t2_vlm_train *vt) {
    memset(o, 0, sizeof *o);
    t2_vlm_train_blocks b;
    t2_vlm_train_get_blocks(vt, &b);
    if (t2_adamw_init(&o->adam, b.n[0] + b.n[1])) return -1;
    int n = t2_vlm_train_tensor_count(vt);
    for (int k = 0; k < 2; k++) {
        o->ranges[k] = t2_malloc(sizeof(t2_param_range) * (size_t)(n + 1));
        o->scale[k] = t2_malloc(sizeof(float) * (size_t)(n + 1));
        o->until[k] = t2_malloc(sizeof(int64_t) * (size_t)(n + 1));
        o->wd[k] = t2_malloc(sizeof(float) * (size_t)(n + 1));
        for (int i = 0; i <= n; i++) o->scale[k][i] = 1.0f, o->until[k][i] = -1, o->wd[k][i] = -1.0f;
    }
    for (int i = 0; i < n; i++) {
        t2_vlm_train_tensor t;
        t2_vlm_train_tensor_info(vt, i, &t);
        o->ranges[t.block][o->nranges[t.block]++] = (t2_param_range){t.offset, t.numel, t.decay};
    }
    for (int k = 0; k < 2; k++)
        if (t2_param_ranges_check(o->ranges[k], o->nranges[k], b.n[k])) { t2_train_optim_free(o); return -1; }
    return 0;
}

void t2_train_optim_free(t2_train_optim *o) {
    t2_adamw_free(&o->adam);
    free(o->ranges[0]), free(o->ranges[1]), free(o->scale[0]), free(o->scale[1]), free(o->until[0]), free(o->until[1]);
    free(o->wd[0]), free(o->wd[1]);
    memset(o, 0, sizeof *o);
}

int t2_train_optim_group(t2_train_optim *o, t2_vlm_train *vt, const char *prefix, float scale, int64_t until, float wd) {
    int n = t2_vlm_train_tensor_count(vt), hit = 0, idx[2] = {0, 0};
    for (int i = 0; i < n; i++) {   // ranges were made in tensor order, per block
        t2_vlm_train_tensor t;
        t2_vlm_train_tensor_info(vt, i, &t);
        int r = idx[t.block]++;
        if (strncmp(t.name, prefix, strlen(prefix))) continue;
        o->scale[t.block][r] = scale, o->until[t.block][r] = until, hit++;
        if (wd >= 0) o->wd[t.block][r] = wd;
    }
    return hit;
}

float t2_train_optim_scale_at(const t2_train_optim *o, int k, int r, int64_t step) {
    return o->until[k][r] >= 0 && step >= o->until[k][r] ? 1.0f : o->scale[k][r];
}

int t2_train_optim_block_frozen(const t2_train_optim *o, int k) {
    if (!o->nranges[k]) return 0;
    for (int r = 0; r < o->nranges[k]; r++)
        if (t2_train_optim_scale_at(o, k, r, o->adam.step) != 0.0f) return 0;
    return 1;
}

float t2_train_optim_step(t2_train_optim *o, t2_vlm_train *vt, const t2_adamw_config *cfg, double lr, float clip) {
    t2_vlm_train_blocks b;
    t2_vlm_train_get_blocks(vt, &b);
    int64_t step = o->adam.step;
    double sq = 0;
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < o->nranges[k]; r++)
            if (t2_train_optim_scale_at(o, k, r, step) != 0.0f) {
                double n = t2_grad_norm(b.g[k] + o->ranges[k][r].offset, o->ranges[k][r].count);
                sq += n * n;
            }
    float norm = (float)sqrt(sq);
    if (clip > 0 && isfinite(norm)) {   // torch: clip_coef = max_norm / (total + 1e-6), applied when < 1
        float c = clip / (norm + 1e-6f);
        if (c < 1) {
            t2_grad_scale(b.g[0], b.n[0], c);
            if (b.n[1]) t2_grad_scale(b.g[1], b.n[1], c);
        }
    }
    // Each block is stepped through a view of the one state: m and v at the block's offset.
    size_t off = 0;
    for (int k = 0; k < 2; k++) {
        if (!b.n[k]) continue;
        int uniform = 1;
        for (int r = 0; r < o->nranges[k]; r++) uniform &= t2_train_optim_scale_at(o, k, r, step) == 1.0f && o->wd[k][r] < 0;
        if (uniform) {
            t2_adamw view = {b.n[k], step, o->adam.m + off, o->adam.v + off, NULL};
            t2_adamw_step(&view, cfg, lr, b.p[k], b.g[k], o->ranges[k], o->nranges[k]);
        } else {
            for (int r = 0; r < o->nranges[k]; r++) {   // tensor by tensor at its own rate
                float sc = t2_train_optim_scale_at(o, k, r, step);
                if (sc == 0.0f) continue;
                t2_adamw view = {b.n[k], step, o->adam.m + off, o->adam.v + off, NULL};
                t2_adamw_config c = *cfg;
                t2_param_range rg = o->ranges[k][r];
                if (o->wd[k][r] >= 0) c.weight_decay = o->wd[k][r], rg.decay = 1;
                t2_adamw_step(&view, &c, lr * sc, b.p[k], b.g[k], &rg, 1);
            }
        }
        off += b.n[k];
    }
    o->adam.step = step + 1;
    return norm;
}

int t2_train_optim_save(const t2_train_optim *o, t2_vlm_train *vt, const char *path, const t2_rng *rng,
                        const char *settings_json) {
    t2_vlm_train_blocks b;
    t2_vlm_train_get_blocks(vt, &b);
    float *all = b.p[0];
    if (b.n[1]) {   // one flat vector: language model, then vision side
        all = t2_malloc(sizeof(float) * (b.n[0] + b.n[1]));
        memcpy(all, b.p[0], sizeof(float) * b.n[0]);
        memcpy(all + b.n[0], b.p[1], sizeof(float) * b.n[1]);
    }
    int rc = t2_train_state_save(path, all, &o->adam, rng, settings_json);
    if (all != b.p[0]) free(all);
    return rc;
}

int t2_train_optim_load(t2_train_optim *o, t2_vlm_train *vt, const char *path, t2_rng *rng, char **settings_json) {
    t2_vlm_train_blocks b;
    t2_vlm_train_get_blocks(vt, &b);
    float *all = b.n[1] ? t2_malloc(sizeof(float) * (b.n[0] + b.n[1])) : b.p[0];
    int rc = t2_train_state_load(path, all, &o->adam, rng, settings_json);
    if (b.n[1]) {
        if (rc == 0) {
            memcpy(b.p[0], all, sizeof(float) * b.n[0]);
            memcpy(b.p[1], all + b.n[0], sizeof(float) * b.n[1]);
        }
        free(all);
    }
    return rc;
}
