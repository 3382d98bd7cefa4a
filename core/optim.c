// optim.c — AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Alg. 2, in
// torch.optim.AdamW's exact arithmetic), warmup + cosine learning rates, global-norm clipping,
// gradient-accumulation helpers and train-state checkpoints through core/safetensors. Not here:
// gradients (the models' backward passes), data order, or any knowledge of layers — the caller
// hands over a flat parameter block and the ranges that say which parts get weight decay.
#include "core/optim.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/util.h"
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// AdamW

t2_adamw_config t2_adamw_defaults(void) {
    t2_adamw_config c = {0.9, 0.999, 1e-8, 0.01};
    return c;
}

int t2_adamw_init(t2_adamw *o, size_t n) {
    memset(o, 0, sizeof *o);
    o->mem = calloc(2 * (n ? n : 1), sizeof *o->mem);
    if (!o->mem) return t2_fail("adamw: out of memory for the state of %zu parameters", n);
    o->n = n;
    o->m = o->mem;        // (n)
    o->v = o->mem + n;    // (n)
    return 0;
}

void t2_adamw_free(t2_adamw *o) {
    if (!o) return;
    free(o->mem);
    memset(o, 0, sizeof *o);
}

int t2_param_ranges_check(const t2_param_range *ranges, int nranges, size_t n) {
    for (int i = 0; i < nranges; i++) {
        const t2_param_range *r = &ranges[i];
        if (r->offset > n || r->count > n - r->offset)
            return t2_fail("parameter range %d [%zu, %zu) lies outside the %zu parameters", i,
                           r->offset, r->offset + r->count, n);
        for (int j = 0; j < i; j++) {
            const t2_param_range *q = &ranges[j];
            if (r->offset < q->offset + q->count && q->offset < r->offset + r->count &&
                r->count && q->count)
                return t2_fail("parameter ranges %d [%zu, %zu) and %d [%zu, %zu) overlap", j,
                               q->offset, q->offset + q->count, i, r->offset, r->offset + r->count);
        }
    }
    return 0;
}

// torch computes the scalar coefficients in Python doubles and applies them to float tensors, so
// each coefficient is formed in double and rounded to float once, and every element op is a float
// op in torch's order: p *= (1 - lr·wd); m = m·β1 + g·(1-β1);
// v = v·β2 + (1-β2)·g·g; denom = sqrt(v) / sqrt(bc2) + eps; p += -step_size·m / denom (ATen's
// addcmul/addcdiv evaluate left to right).
void t2_adamw_step(t2_adamw *o, const t2_adamw_config *cfg, double lr, float *p, const float *g,
                   const t2_param_range *ranges, int nranges) {
    T2_ASSERT(t2_param_ranges_check(ranges, nranges, o->n) == 0);
    o->step++;
    double b1 = cfg->beta1, b2 = cfg->beta2;
    double bc1 = 1.0 - pow(b1, (double)o->step);
    double bc2 = 1.0 - pow(b2, (double)o->step);
    float decay = (float)(1.0 - lr * cfg->weight_decay);
    float beta1 = (float)b1, beta2 = (float)b2;
    float one_b1 = (float)(1.0 - b1), one_b2 = (float)(1.0 - b2);
    float bc2_sqrt = (float)sqrt(bc2);
    float neg_step = (float)(-(lr / bc1));
    float eps = (float)cfg->eps;
    for (int r = 0; r < nranges; r++) {
        float *pp = p + ranges[r].offset;
        const float *gg = g + ranges[r].offset;
        float *m = o->m + ranges[r].offset, *v = o->v + ranges[r].offset;
        size_t cnt = ranges[r].count;
        int wd = ranges[r].decay && cfg->weight_decay != 0.0;
        for (size_t i = 0; i < cnt; i++) {
            float x = pp[i];
            if (wd) x = x * decay;
            float gi = gg[i];
            float mi = fmaf(gi, one_b1, m[i] * beta1);   // ATen add(alpha): one fused multiply-add
            float vi = v[i] * beta2 + one_b2 * gi * gi;
            float denom = sqrtf(vi) / bc2_sqrt + eps;
            x = x + neg_step * mi / denom;
            m[i] = mi;
            v[i] = vi;
            pp[i] = x;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Learning rate

double t2_lr_at(int64_t step, int64_t warmup, int64_t total, double lr_max, double lr_min) {
    if (step < warmup) return lr_max * (double)(step + 1) / (double)warmup;
    if (step >= total) return lr_min;
    double ratio = (double)(step - warmup) / (double)(total - warmup);
    return lr_min + 0.5 * (1.0 + cos(M_PI * ratio)) * (lr_max - lr_min);
}

double t2_lr_schedule_at(const t2_lr_schedule *s, int64_t step) {
    if (s->kind == T2_LR_CONSTANT) {
        if (step < s->warmup) return s->lr_max * (double)(step + 1) / (double)s->warmup;
        return s->lr_max;
    }
    return t2_lr_at(step, s->warmup, s->total, s->lr_max, s->lr_min);
}

// ---------------------------------------------------------------------------------------------
// Gradients

float t2_grad_norm(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
    return (float)sqrt(s);
}

float t2_clip_grad_norm(float *g, size_t n, float max_norm) {
    float norm = t2_grad_norm(g, n);
    if (!isfinite(norm)) return norm;
    float coef = max_norm / (norm + 1e-6f);   // torch: total_norm + 1e-6 in the grads' dtype
    if (coef < 1.0f) t2_grad_scale(g, n, coef);
    return norm;
}

void t2_grad_zero(float *g, size_t n) { memset(g, 0, n * sizeof *g); }

void t2_grad_scale(float *g, size_t n, float s) {
    for (size_t i = 0; i < n; i++) g[i] *= s;
}

void t2_grad_accum_finish(float *g, size_t n, int k) {
    T2_ASSERT(k >= 1);
    if (k > 1) t2_grad_scale(g, n, (float)(1.0 / k));
}

// ---------------------------------------------------------------------------------------------
// Train-state checkpoints

int t2_train_state_save(const char *path, const float *params, const t2_adamw *o, const t2_rng *rng,
                        const char *settings_json) {
    const char *settings = settings_json ? settings_json : "{}";
    cJSON *check = cJSON_Parse(settings);
    if (!check) return t2_fail("%s: train-state settings are not valid JSON", path);
    cJSON_Delete(check);

    int64_t n = (int64_t)o->n, one = 1, four = 4;
    int64_t step = o->step;
    int64_t rs[4] = {0, 0, 0, 0};
    if (rng) memcpy(rs, rng->s, sizeof rs);   // uint64 bits stored as I64 (safetensors has no U64)
    char nbuf[32];
    snprintf(nbuf, sizeof nbuf, "%" PRId64, n);

    t2_st_writer *w = t2_st_writer_new();
    if (!w) return t2_fail("%s: out of memory", path);
    int rc = 0;
    rc |= t2_st_writer_meta(w, "format", T2_TRAIN_STATE_FORMAT);
    rc |= t2_st_writer_meta(w, "version", T2_TRAIN_STATE_VERSION);
    rc |= t2_st_writer_meta(w, "n_params", nbuf);
    rc |= t2_st_writer_meta(w, "settings", settings);
    rc |= t2_st_writer_add(w, "params", T2_DTYPE_F32, 1, &n, params);
    rc |= t2_st_writer_add(w, "adam.m", T2_DTYPE_F32, 1, &n, o->m);
    rc |= t2_st_writer_add(w, "adam.v", T2_DTYPE_F32, 1, &n, o->v);
    rc |= t2_st_writer_add(w, "adam.step", T2_DTYPE_I64, 1, &one, &step);
    rc |= t2_st_writer_add(w, "rng", T2_DTYPE_I64, 1, &four, rs);
    if (rc != 0) {
        t2_error_prefix("%s: ", path);
        t2_st_writer_free(w);
        return -1;
    }
    rc = t2_st_writer_write(w, path);
    t2_st_writer_free(w);
    if (rc != 0) t2_error_prefix("saving train state: ");
    return rc;
}

// The tensor NAME of DTYPE with COUNT elements, or NULL + an error naming PATH and NAME.
static const t2_st_tensor *get_vec(const t2_st *st, const char *path, const char *name,
                                   t2_dtype dtype, int64_t count) {
    const t2_st_tensor *t = t2_st_get_shape(st, name, 1, &count);
    if (!t) {
        t2_error_prefix("train state ");   // the message already names PATH
        return NULL;
    }
    if (t->dtype != dtype)
        return t2_fail_null("train state %s: tensor '%s' has dtype %s, expected %s", path, name,
                            t2_dtype_name(t->dtype), t2_dtype_name(dtype));
    return t;
}

int t2_train_state_load(const char *path, float *params, t2_adamw *o, t2_rng *rng, char **settings_json) {
    t2_st *st = t2_st_open(path);
    if (!st) {
        t2_error_prefix("train state: ");
        return -1;
    }
    int rc = -1;
    const char *fmt = t2_st_metadata(st, "format");
    const char *ver = t2_st_metadata(st, "version");
    const char *settings = t2_st_metadata(st, "settings");
    int64_t n = (int64_t)o->n;
    const t2_st_tensor *tp, *tm, *tv, *ts, *tr;
    if (!fmt || strcmp(fmt, T2_TRAIN_STATE_FORMAT) != 0) {
        t2_fail("train state %s: __metadata__ format is %s%s%s, expected \"%s\" (not a t2 train-state file)",
                path, fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "", T2_TRAIN_STATE_FORMAT);
        goto done;
    }
    if (!ver || strcmp(ver, T2_TRAIN_STATE_VERSION) != 0) {
        t2_fail("train state %s: version %s is not supported (this build reads version %s)", path,
                ver ? ver : "(missing)", T2_TRAIN_STATE_VERSION);
        goto done;
    }
    if (!(tp = get_vec(st, path, "params", T2_DTYPE_F32, n)) ||
        !(tm = get_vec(st, path, "adam.m", T2_DTYPE_F32, n)) ||
        !(tv = get_vec(st, path, "adam.v", T2_DTYPE_F32, n)) ||
        !(ts = get_vec(st, path, "adam.step", T2_DTYPE_I64, 1)) ||
        !(tr = get_vec(st, path, "rng", T2_DTYPE_I64, 4)))
        goto done;
    int64_t step;
    memcpy(&step, ts->data, sizeof step);
    if (step < 0) {
        t2_fail("train state %s: tensor 'adam.step' is negative (%" PRId64 ")", path, step);
        goto done;
    }
    char *copy = NULL;
    if (settings_json) {
        copy = t2_strdup(settings ? settings : "{}");
        if (!copy) {
            t2_fail("train state %s: out of memory", path);
            goto done;
        }
    }
    // Everything checked: only now touch the caller's memory.
    memcpy(params, tp->data, (size_t)n * sizeof *params);
    memcpy(o->m, tm->data, (size_t)n * sizeof *o->m);
    memcpy(o->v, tv->data, (size_t)n * sizeof *o->v);
    o->step = step;
    if (rng) memcpy(rng->s, tr->data, sizeof rng->s);
    if (settings_json) *settings_json = copy;
    rc = 0;
done:
    t2_st_close(st);
    return rc;
}
