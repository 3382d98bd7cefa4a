// test_optim.c — core/optim.c against torch (tests/ref/optim_ref.py): ten AdamW steps over two
// parameter groups with warmup+cosine rates and global-norm clipping (parameters after every step
// within 1e-6 relative), the schedule against the Python formula, the clip norm against
// clip_grad_norm_; then train-state checkpoints: a bit-identical round trip, a resume at step 5
// that ends bit-identical to ten uninterrupted steps, and clear errors for corrupt, foreign,
// wrong-version, wrong-size and wrong-dtype files. Not a test of any model's gradients.
#include "testutil.h"
#include "core/error.h"
#include "core/optim.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const t2_param_range RANGES[] = {{0, 600, 1}, {600, 100, 0}, {700, 300, 1}};
#define NRANGES 3

static const t2_st_tensor *need(const t2_st *st, const char *name) {
    const t2_st_tensor *t = t2_st_get(st, name);
    if (!t) { fprintf(stderr, "FATAL: %s\n", t2_last_error()); exit(1); }
    return t;
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

// ---- AdamW, schedule and clipping against torch -------------------------------------------------

static void test_against_torch(const t2_test_env *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/optim_ref.safetensors", e->work);
    t2_st *st = t2_st_open(path);
    T2_CHECK(st != NULL, "open reference: %s", t2_last_error());
    if (!st) return;
    int n = atoi(t2_st_metadata(st, "n")), steps = atoi(t2_st_metadata(st, "steps"));
    int warmup = atoi(t2_st_metadata(st, "warmup")), total = atoi(t2_st_metadata(st, "total"));
    double lr_max = strtod(t2_st_metadata(st, "lr_max"), NULL);
    double lr_min = strtod(t2_st_metadata(st, "lr_min"), NULL);
    double wd = strtod(t2_st_metadata(st, "wd"), NULL);
    float max_norm = strtof(t2_st_metadata(st, "max_norm"), NULL);
    const float *p0 = need(st, "p0")->data, *grads = need(st, "grads")->data;
    const float *ref = need(st, "params")->data, *ref_norm = need(st, "clip_norm")->data;
    const double *ref_lr = need(st, "lr")->data;
    T2_CHECK(n == 1000 && steps == 10, "reference sizes n %d steps %d", n, steps);

    // Schedule table: rows (step, warmup, total, lr_max, lr_min, lr).
    const t2_st_tensor *sch = need(st, "sched");
    const double *rows = sch->data;
    double worst = 0;
    for (int64_t i = 0; i < sch->shape[0]; i++) {
        const double *r = rows + 6 * i;
        double lr = t2_lr_at((int64_t)r[0], (int64_t)r[1], (int64_t)r[2], r[3], r[4]);
        double rel = fabs(lr - r[5]) / fmax(fabs(r[5]), 1e-12);
        if (r[5] == 0) rel = fabs(lr);
        if (rel > worst) worst = rel;
    }
    printf("lr schedule: %lld values, max rel diff %.3g\n", (long long)sch->shape[0], worst);
    T2_CHECK(worst < 1e-6, "lr schedule off by %.3g relative", worst);
    t2_lr_schedule cs = {T2_LR_CONSTANT, 4, 100, 1e-3, 0};
    T2_CHECK(fabs(t2_lr_schedule_at(&cs, 0) - 2.5e-4) < 1e-15 && t2_lr_schedule_at(&cs, 4) == 1e-3 &&
             t2_lr_schedule_at(&cs, 1000) == 1e-3, "constant schedule");
    t2_lr_schedule cos_s = {T2_LR_COSINE, warmup, total, lr_max, lr_min};
    T2_CHECK(t2_lr_schedule_at(&cos_s, 5) == t2_lr_at(5, warmup, total, lr_max, lr_min), "cosine kind");

    // Ten steps.
    t2_adamw_config cfg = t2_adamw_defaults();
    cfg.weight_decay = wd;
    t2_adamw o;
    T2_CHECK(t2_adamw_init(&o, (size_t)n) == 0, "init");
    float *p = malloc((size_t)n * sizeof *p), *g = malloc((size_t)n * sizeof *g);
    memcpy(p, p0, (size_t)n * sizeof *p);
    double worst_rel = 0, worst_norm = 0, worst_lr = 0;
    int clipped = 0;
    for (int s = 0; s < steps; s++) {
        memcpy(g, grads + (size_t)s * n, (size_t)n * sizeof *g);
        float norm = t2_clip_grad_norm(g, (size_t)n, max_norm);
        if (norm > max_norm) clipped++;
        double rn = fabs(norm - ref_norm[s]) / ref_norm[s];
        if (rn > worst_norm) worst_norm = rn;
        double lr = t2_lr_at(s, warmup, total, lr_max, lr_min);
        double rl = fabs(lr - ref_lr[s]) / ref_lr[s];
        if (rl > worst_lr) worst_lr = rl;
        t2_adamw_step(&o, &cfg, lr, p, g, RANGES, NRANGES);
        const float *r = ref + (size_t)s * n;
        double w = 0, wa = 0;
        int at = 0;
        for (int i = 0; i < n; i++) {
            double d = fabs((double)p[i] - r[i]) / fmax(fabs(r[i]), 1e-3);
            if (!(d <= w)) { w = d; at = i; }
            if (fabs((double)p[i] - r[i]) > wa) wa = fabs((double)p[i] - r[i]);
        }
        printf("step %d: lr %.6g norm %.6g (torch %.6g) params max rel diff %.3g at %d (p %.9g torch %.9g), max abs %.3g\n",
               s + 1, lr, norm, ref_norm[s], w, at, p[at], r[at], wa);
        if (!(w <= worst_rel)) worst_rel = w;
    }
    T2_CHECK(o.step == steps, "step counter %lld", (long long)o.step);
    T2_CHECK(clipped > 0 && clipped < steps, "the sequence should both clip and not clip (%d)", clipped);
    T2_CHECK(worst_norm < 1e-6, "clip norm vs torch: max rel diff %.3g", worst_norm);
    T2_CHECK(worst_lr < 1e-6, "step lr vs python: max rel diff %.3g", worst_lr);
    T2_CHECK(worst_rel < 1e-6, "AdamW params vs torch: max rel diff %.3g (tol 1e-6)", worst_rel);
    printf("AdamW vs torch: 10 steps, max rel diff %.3g; clip norm rel diff %.3g\n", worst_rel, worst_norm);

    // Clip edge cases: a norm below max leaves g alone; above scales to max/(norm+1e-6).
    float small[3] = {0.3f, 0.4f, 0.0f};
    float nrm = t2_clip_grad_norm(small, 3, 1.0f);
    T2_CHECK(fabsf(nrm - 0.5f) < 1e-7f && small[0] == 0.3f && small[1] == 0.4f, "no-clip case");
    float big[2] = {3.0f, 4.0f};
    nrm = t2_clip_grad_norm(big, 2, 1.0f);
    T2_CHECK(nrm == 5.0f && fabsf(t2_grad_norm(big, 2) - 1.0f) < 1e-6f, "clip to 1: %g", t2_grad_norm(big, 2));
    // Accumulation: mean of k micro-batches.
    float acc[2];
    t2_grad_zero(acc, 2);
    for (int k = 0; k < 4; k++) { acc[0] += (float)k; acc[1] += 2.0f; }
    t2_grad_accum_finish(acc, 2, 4);
    T2_CHECK(acc[0] == 1.5f && acc[1] == 2.0f, "accumulation mean %g %g", acc[0], acc[1]);
    // Range checks.
    t2_param_range bad1[] = {{0, 10, 1}, {5, 10, 0}};
    T2_CHECK(t2_param_ranges_check(bad1, 2, 100) != 0 && contains(t2_last_error(), "overlap"),
             "overlap error: %s", t2_last_error());
    t2_param_range bad2[] = {{95, 10, 1}};
    T2_CHECK(t2_param_ranges_check(bad2, 1, 100) != 0 && contains(t2_last_error(), "outside"),
             "outside error: %s", t2_last_error());

    t2_adamw_free(&o);
    free(p);
    free(g);
    t2_st_close(st);
}

// ---- checkpoints ----------------------------------------------------------------------------------

#define CN 257

// One training step whose gradient comes from the RNG, so a resume must restore the RNG too.
static void rng_step(t2_adamw *o, const t2_adamw_config *cfg, float *p, t2_rng *rng) {
    static const t2_param_range r[] = {{0, 200, 1}, {200, 57, 0}};
    float g[CN];
    for (int i = 0; i < CN; i++) g[i] = 0.5f * p[i] + t2_rng_normal(rng);
    t2_clip_grad_norm(g, CN, 1.0f);
    t2_adamw_step(o, cfg, t2_lr_at(o->step, 2, 10, 1e-2, 1e-3), p, g, r, 2);
}

static void test_checkpoints(const t2_test_env *e) {
    t2_adamw_config cfg = t2_adamw_defaults();
    cfg.weight_decay = 0.1;
    const char *settings = "{\"lr_max\": 0.01, \"name\": \"t\\\"est\", \"steps\": 10}";
    char path[4096], bad[4096];
    snprintf(path, sizeof path, "%s/state5.safetensors", e->work);

    // Ten uninterrupted steps.
    t2_rng rng;
    t2_rng_seed(&rng, 42);
    float p_full[CN], p[CN], p2[CN];
    for (int i = 0; i < CN; i++) p_full[i] = t2_rng_normal(&rng);
    memcpy(p, p_full, sizeof p);
    t2_rng rng_b = rng;
    t2_adamw a, b, c;
    t2_adamw_init(&a, CN);
    t2_adamw_init(&b, CN);
    t2_adamw_init(&c, CN);
    for (int s = 0; s < 10; s++) rng_step(&a, &cfg, p_full, &rng);

    // Five steps, save, load into fresh state, five more.
    for (int s = 0; s < 5; s++) rng_step(&b, &cfg, p, &rng_b);
    T2_CHECK(t2_train_state_save(path, p, &b, &rng_b, settings) == 0, "save: %s", t2_last_error());
    t2_rng rng_c;
    t2_rng_seed(&rng_c, 999);
    char *got_settings = NULL;
    int rc = t2_train_state_load(path, p2, &c, &rng_c, &got_settings);
    T2_CHECK(rc == 0, "load: %s", t2_last_error());
    if (rc != 0) return;
    T2_CHECK(memcmp(p, p2, sizeof p) == 0, "round trip: params differ");
    T2_CHECK(memcmp(b.m, c.m, CN * sizeof *b.m) == 0 && memcmp(b.v, c.v, CN * sizeof *b.v) == 0,
             "round trip: moments differ");
    T2_CHECK(c.step == 5 && memcmp(&rng_b, &rng_c, sizeof rng_c) == 0, "round trip: step %lld / rng",
             (long long)c.step);
    T2_CHECK(got_settings && strcmp(got_settings, settings) == 0, "settings round trip: %s",
             got_settings ? got_settings : "(null)");
    free(got_settings);
    for (int s = 0; s < 5; s++) rng_step(&c, &cfg, p2, &rng_c);
    T2_CHECK(memcmp(p_full, p2, sizeof p2) == 0 && memcmp(a.m, c.m, CN * sizeof *a.m) == 0 &&
             memcmp(a.v, c.v, CN * sizeof *a.v) == 0 && a.step == c.step,
             "resume at 5 + 5 steps is not bit-identical to 10 steps");
    printf("checkpoint: round trip and resume bit-identical\n");

    // Error cases: each must fail, name the file, say what is wrong, and leave the state untouched.
    float keep[CN];
    memcpy(keep, p2, sizeof keep);
    int64_t keep_step = c.step;

    // 1. missing file
    snprintf(bad, sizeof bad, "%s/missing.safetensors", e->work);
    T2_CHECK(t2_train_state_load(bad, p2, &c, NULL, NULL) != 0 && contains(t2_last_error(), bad),
             "missing file: %s", t2_last_error());
    printf("missing file -> %s\n", t2_last_error());
    // 2. corrupt: garbage bytes; and a truncated copy of a good file
    snprintf(bad, sizeof bad, "%s/garbage.safetensors", e->work);
    FILE *f = fopen(bad, "wb");
    fputs("this is not a safetensors file at all, just text", f);
    fclose(f);
    T2_CHECK(t2_train_state_load(bad, p2, &c, NULL, NULL) != 0 && contains(t2_last_error(), bad),
             "garbage: %s", t2_last_error());
    printf("garbage -> %s\n", t2_last_error());
    snprintf(bad, sizeof bad, "%s/truncated.safetensors", e->work);
    T2_CHECK(t2_test_sh(NULL, "head -c 1500 '%s' > '%s'", path, bad) == 0, "truncate");
    T2_CHECK(t2_train_state_load(bad, p2, &c, NULL, NULL) != 0 && contains(t2_last_error(), bad),
             "truncated: %s", t2_last_error());
    printf("truncated -> %s\n", t2_last_error());
    // 3. wrong format, missing format, wrong version, wrong dtype (written with the writer)
    int64_t n = CN, one = 1, four = 4, zero8[4] = {0};
    float zeros[CN] = {0};
    uint16_t half[CN] = {0};
    const char *fmts[] = {"t2-svf-expert", NULL, T2_TRAIN_STATE_FORMAT, T2_TRAIN_STATE_FORMAT};
    const char *vers[] = {"1", "1", "2", "1"};
    const char *expect[] = {"t2-svf-expert", "missing", "version 2", "dtype F16"};
    for (int k = 0; k < 4; k++) {
        snprintf(bad, sizeof bad, "%s/bad%d.safetensors", e->work, k);
        t2_st_writer *w = t2_st_writer_new();
        if (fmts[k]) t2_st_writer_meta(w, "format", fmts[k]);
        t2_st_writer_meta(w, "version", vers[k]);
        if (k == 3) t2_st_writer_add(w, "params", T2_DTYPE_F16, 1, &n, half);
        else t2_st_writer_add(w, "params", T2_DTYPE_F32, 1, &n, zeros);
        t2_st_writer_add(w, "adam.m", T2_DTYPE_F32, 1, &n, zeros);
        t2_st_writer_add(w, "adam.v", T2_DTYPE_F32, 1, &n, zeros);
        t2_st_writer_add(w, "adam.step", T2_DTYPE_I64, 1, &one, zero8);
        t2_st_writer_add(w, "rng", T2_DTYPE_I64, 1, &four, zero8);
        T2_CHECK(t2_st_writer_write(w, bad) == 0, "write %s: %s", bad, t2_last_error());
        t2_st_writer_free(w);
        rc = t2_train_state_load(bad, p2, &c, NULL, NULL);
        T2_CHECK(rc != 0 && contains(t2_last_error(), bad) && contains(t2_last_error(), expect[k]),
                 "case %d: want an error naming the file and '%s', got: %s", k, expect[k], t2_last_error());
        printf("bad%d -> %s\n", k, t2_last_error());
    }
    // 4. wrong size: the good file loaded into a state for another parameter count
    t2_adamw d;
    t2_adamw_init(&d, CN + 1);
    float pd[CN + 1];
    rc = t2_train_state_load(path, pd, &d, NULL, NULL);
    T2_CHECK(rc != 0 && contains(t2_last_error(), path) && contains(t2_last_error(), "'params'") &&
             contains(t2_last_error(), "258"), "wrong size: %s", t2_last_error());
    printf("wrong size -> %s\n", t2_last_error());
    t2_adamw_free(&d);
    // 5. bad settings JSON is refused at save time, and no file appears
    snprintf(bad, sizeof bad, "%s/badsettings.safetensors", e->work);
    T2_CHECK(t2_train_state_save(bad, p2, &c, NULL, "{not json") != 0 && contains(t2_last_error(), "JSON"),
             "bad settings: %s", t2_last_error());
    f = fopen(bad, "rb");
    T2_CHECK(f == NULL, "a file was written despite bad settings");
    if (f) fclose(f);

    T2_CHECK(memcmp(keep, p2, sizeof keep) == 0 && c.step == keep_step, "a failed load changed the state");
    t2_adamw_free(&a);
    t2_adamw_free(&b);
    t2_adamw_free(&c);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    int rc = t2_test_python(&e, "optim_ref.py", "'%s'", e.work);
    T2_CHECK(rc == 0, "optim_ref.py failed (exit %d)", rc);
    if (rc == 0) test_against_torch(&e);
    test_checkpoints(&e);
    return t2_test_done();
}
