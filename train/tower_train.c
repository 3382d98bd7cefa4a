// tower_train.c — the vision tower's own pretraining on the world (tower_train.h): labels from the
// world's glyph boxes, two linear heads on the selected features, the tower's exact backward
// (vision/vit_train.h), AdamW over [tower | heads] as one block, checkpoints that resume the same
// curve (the data is a function of seed, step and slot), export of the whole model with the new tower.
#include "train/tower_train.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/optim.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "train/vlm_train.h"
#include "vision/image.h"
#include "vision/preprocess.h"
#include <cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int t2_tower_char_class(char ch) {
    unsigned char c = (unsigned char)ch;
    if (c >= 'a' && c <= 'z') return 1 + (c - 'a');
    if (c >= 'A' && c <= 'Z') return 1 + (c - 'A');
    if (c >= '0' && c <= '9') return 27 + (c - '0');
    return c > ' ' ? 37 : T2_TOWER_NONE;
}

int t2_tower_patch_labels(const t2_world_item *it, int size, int grid, uint8_t *labels) {
    memset(labels, T2_TOWER_NONE, (size_t)grid * grid * 2);
    if (grid < 1 || size < grid) return 0;
    int P = size / grid, n = 0;
    for (int i = 0; i < it->n_glyphs; i++) {
        const t2_world_glyph *g = &it->glyphs[i];
        int cls = t2_tower_char_class(g->ch);
        if (cls == T2_TOWER_NONE) continue;
        int cx = (g->x0 + g->x1) / 2, cy = (g->y0 + g->y1) / 2;
        int col = cx / P, row = cy / P;
        if (col < 0 || row < 0 || col >= grid || row >= grid) continue;
        int half = (cx - col * P) * 2 >= P;
        uint8_t *slot = &labels[((size_t)row * grid + col) * 2 + half];
        if (*slot == T2_TOWER_NONE) *slot = (uint8_t)cls, n++;
    }
    return n;
}

t2_tower_train_opts t2_tower_train_defaults(void) {
    t2_tower_train_opts o = {0};
    o.steps = 4000, o.batch = 16, o.lr = 1e-3, o.lr_min = 1e-5, o.warmup = 100, o.weight_decay = 0.05;
    o.clip = 1.0, o.recon_weight = 1.0, o.char_weight = 10, o.families = "textvqa:4,caption:2,scene:1", o.diff_lo = 0;
    o.diff_hi = 1, o.seed = 1, o.every = 500, o.log_every = 50, o.n_valid = 64;
    return o;
}

// ---------------------------------------------------------------------------------------------

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

#define MAX_FAM 8
#define POOL 4   // the pixel head predicts each patch pooled to POOL × POOL

typedef struct {
    const t2_tower_train_opts *o;
    char ckpt[4200], model_out[4200], log_path[4200], valid_path[4200];
    cJSON *cfg;
    t2_vlm_train *vt;
    t2_vit_train *vit;
    t2_preproc pre;
    int fam[MAX_FAM], nfam;
    double fw[MAX_FAM], fw_total;
    int S, P, grid, tok, tok_off, F, B, NR;   // NR = 3·POOL² pixel-head outputs per patch
    int D;                                    // the heads' input width: F (features) or the projector's H (rows)
    double rms_eps;                           // the language model's rms_norm_eps (rows)
    size_t n_vit, n_all, off_wc, off_bc, off_wr, off_br;
    float *P_all, *G_all;                     // [tower block | Wc (2·38, F) | bc | Wr (NR, F) | br]
    t2_param_range *ranges;
    int nranges;
    t2_adamw adam;
    // per step
    float *pixels;                            // (B, 3, S, S)
    uint8_t *labels;                          // (B, grid², 2)
    float *target;                            // (B, grid², NR)
    uint8_t *rgb;
    float *logits, *recon, *dlogits, *drecon, *dfeat;   // dfeat: d(the heads' input)
    float *out, *normed, *rinv, *dout;        // rows: projector output, RMS-normalised, 1/rms per row, d(out)
    float *ones, *dones;                      // rows: the norm's unit gain (and its unused gradient)
    char *log, *valid;                        // the CSV texts, rewritten atomically at each checkpoint
    size_t log_n, valid_n;
} tower_run;

static void append(char **buf, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char **buf, size_t *n, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k >= sizeof line) k = (int)sizeof line - 1;
    *buf = t2_realloc(*buf, *n + (size_t)k + 1);
    memcpy(*buf + *n, line, (size_t)k + 1);
    *n += (size_t)k;
}

static int parse_families(tower_run *r, const char *spec) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (r->nfam == MAX_FAM) return t2_fail("--families: at most %d families", MAX_FAM);
        char *colon = strchr(t, ':');
        double w = 1;
        if (colon) {
            *colon = 0;
            char *end;
            w = strtod(colon + 1, &end);
            if (*end || !(w > 0 && w < 1e6)) return t2_fail("--families: weight '%s' of '%s' is not a positive number", colon + 1, t);
        }
        int f = t2_world_family_parse(t);
        if (f < 0) return t2_fail("--families: unknown world family '%s'", t);
        if (!t2_world_family_has_images(f)) return t2_fail("--families: '%s' has no images", t);
        if (t2_world_family_held_out(f)) return t2_fail("--families: '%s' is held out (never trained on)", t);
        r->fam[r->nfam] = f, r->fw[r->nfam] = w, r->fw_total += w, r->nfam++;
    }
    return r->nfam ? 0 : t2_fail("--families: empty");
}

static char *settings_text(const tower_run *r) {
    const t2_tower_train_opts *o = r->o;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", o->model_dir);
    cJSON_AddNumberToObject(j, "steps", (double)o->steps);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "lr_min", o->lr_min);
    cJSON_AddNumberToObject(j, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "clip", o->clip);
    cJSON_AddNumberToObject(j, "recon_weight", o->recon_weight);
    cJSON_AddNumberToObject(j, "char_weight", o->char_weight);
    cJSON_AddStringToObject(j, "on", o->on_rows ? "rows" : "features");
    cJSON_AddBoolToObject(j, "probe", o->probe);
    cJSON_AddStringToObject(j, "families", o->families);
    cJSON_AddNumberToObject(j, "difficulty_lo", o->diff_lo);
    cJSON_AddNumberToObject(j, "difficulty_hi", o->diff_hi);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

static int setup(tower_run *r) {
    const t2_tower_train_opts *o = r->o;
    if (!o->model_dir || !o->out_dir) return t2_fail("--model and --out are required");
    if (o->steps < 1 || o->batch < 1 || o->batch > 4096 || !(o->lr > 0) || !(o->lr_min >= 0) || o->warmup < 0 ||
        !(o->weight_decay >= 0) || !(o->recon_weight >= 0) || !(o->char_weight > 0) || o->every < 1 || o->log_every < 1 || o->n_valid < 0)
        return t2_fail("bad settings: steps, batch, lr, every and log_every must be positive; lr_min, warmup, "
                       "weight decay, recon weight and n_valid not negative");
    if (!(o->diff_lo >= 0 && o->diff_hi <= 1 && o->diff_lo <= o->diff_hi))
        return t2_fail("--difficulty: LO..HI inside 0..1");
    if (parse_families(r, o->families)) return -1;
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", o->model_dir);
    if (!(r->cfg = t2_json_load(p))) return -1;
    if (!cJSON_GetObjectItem(r->cfg, "vision_config"))
        return t2_fail("%s: not a LLaVA config (no vision_config): there is no tower to train", p);
    r->B = o->batch;
    if (!(r->vt = t2_vlm_train_new(r->cfg, 1, 8, r->B))) return t2_error_prefix("%s: ", p), -1;
    r->vit = t2_vlm_train_vit(r->vt);
    if (t2_preproc_load(&r->pre, o->model_dir)) return -1;
    snprintf(p, sizeof p, "%s/model.safetensors", o->model_dir);
    t2_st *st = t2_st_open(p);
    if (!st) return -1;
    int rc = t2_vlm_train_load(r->vt, st);
    t2_st_close(st);
    if (rc) return -1;

    const t2_vit_config *vc = &t2_vit_train_cfg(r->vit)->vit;
    r->S = vc->image_size, r->P = vc->patch_size, r->grid = vc->grid;
    r->tok = t2_vit_train_tokens(r->vit), r->F = t2_vit_train_feat_dim(r->vit);
    r->tok_off = r->tok - r->grid * r->grid;
    if (r->tok_off != 0 && r->tok_off != 1)
        return t2_fail("the tower gives %d tokens per image for a %dx%d patch grid", r->tok, r->grid, r->grid);
    if (o->projector_from_heads && (o->on_rows || t2_vit_train_cfg(r->vit)->text_hidden < 2 * T2_TOWER_CLASSES + 2 * 3 * POOL * POOL))
        return t2_fail("--projector heads needs --on features and a projector at least %d wide (it is %d)",
                       2 * T2_TOWER_CLASSES + 2 * 3 * POOL * POOL, t2_vit_train_cfg(r->vit)->text_hidden);
    if (r->P % POOL) return t2_fail("patch size %d is not a multiple of %d (the pixel head pools %dx%d)", r->P, POOL, POOL, POOL);
    r->NR = 3 * POOL * POOL;

    // one block: the tower's parameters (the projector's sit in it untouched: no range covers them), then the heads
    float *vb = t2_vit_train_param_block(r->vit, &r->n_vit);
    int NC2 = 2 * T2_TOWER_CLASSES;
    r->D = o->on_rows ? t2_vit_train_cfg(r->vit)->text_hidden : r->F;
    const cJSON *tc = cJSON_GetObjectItem(r->cfg, "text_config");
    r->rms_eps = t2_json_num(tc, "rms_norm_eps", 1e-6);
    r->off_wc = r->n_vit, r->off_bc = r->off_wc + (size_t)NC2 * r->D;
    r->off_wr = r->off_bc + (size_t)NC2, r->off_br = r->off_wr + (size_t)r->NR * r->D;
    r->n_all = r->off_br + (size_t)r->NR;
    r->P_all = t2_calloc(r->n_all, sizeof(float));
    r->G_all = t2_calloc(r->n_all, sizeof(float));
    memcpy(r->P_all, vb, r->n_vit * sizeof(float));
    t2_rng ir;
    t2_rng_seed(&ir, o->seed ^ 0x68656164ULL);
    for (size_t i = r->off_wc; i < r->off_bc; i++) r->P_all[i] = 0.02f * t2_rng_normal(&ir);
    for (size_t i = r->off_wr; i < r->off_br; i++) r->P_all[i] = 0.02f * t2_rng_normal(&ir);
    int nt = t2_vit_train_tensor_count(r->vit);
    r->ranges = t2_malloc(sizeof(t2_param_range) * (size_t)(nt + 4));
    for (int i = 0; i < nt; i++) {
        char name[256];
        float *param, *grad;
        size_t numel;
        int64_t dims[4];
        t2_vit_train_tensor(r->vit, i, name, sizeof name, &param, &grad, &numel);
        if (!strncmp(name, "multi_modal_projector.", 22) || o->probe) continue;
        int nd = t2_vit_train_tensor_shape(r->vit, i, dims);
        r->ranges[r->nranges++] = (t2_param_range){(size_t)(param - vb), numel, nd >= 2};
    }
    r->ranges[r->nranges++] = (t2_param_range){r->off_wc, (size_t)NC2 * r->D, 1};
    r->ranges[r->nranges++] = (t2_param_range){r->off_bc, (size_t)NC2, 0};
    r->ranges[r->nranges++] = (t2_param_range){r->off_wr, (size_t)r->NR * r->D, 1};
    r->ranges[r->nranges++] = (t2_param_range){r->off_br, (size_t)r->NR, 0};
    if (t2_param_ranges_check(r->ranges, r->nranges, r->n_all)) return -1;
    if (t2_adamw_init(&r->adam, r->n_all)) return -1;

    size_t G2 = (size_t)r->grid * r->grid;
    r->pixels = t2_malloc(sizeof(float) * (size_t)r->B * 3 * r->S * r->S);
    r->labels = t2_malloc((size_t)r->B * G2 * 2);
    r->target = t2_malloc(sizeof(float) * (size_t)r->B * G2 * r->NR);
    r->rgb = t2_malloc((size_t)r->S * r->S * 3);
    size_t rows = (size_t)r->B * r->tok;
    r->logits = t2_malloc(sizeof(float) * rows * NC2);
    r->dlogits = t2_malloc(sizeof(float) * rows * NC2);
    r->recon = t2_malloc(sizeof(float) * rows * r->NR);
    r->drecon = t2_malloc(sizeof(float) * rows * r->NR);
    r->dfeat = t2_malloc(sizeof(float) * rows * r->D);
    if (o->on_rows) {
        r->out = t2_malloc(sizeof(float) * rows * r->D);
        r->normed = t2_malloc(sizeof(float) * rows * r->D);
        r->rinv = t2_malloc(sizeof(float) * rows);
        r->dout = t2_malloc(sizeof(float) * rows * r->D);
        r->ones = t2_malloc(sizeof(float) * r->D), r->dones = t2_calloc((size_t)r->D, sizeof(float));
        for (int i = 0; i < r->D; i++) r->ones[i] = 1;
    }

    if (t2_mkdirs(o->out_dir)) return -1;
    snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoint.safetensors", o->out_dir);
    snprintf(r->model_out, sizeof r->model_out, "%s/model", o->out_dir);
    snprintf(r->log_path, sizeof r->log_path, "%s/log.csv", o->out_dir);
    snprintf(r->valid_path, sizeof r->valid_path, "%s/valid.csv", o->out_dir);
    if (o->threads > 0) t2_blas_threads(o->threads);
    return 0;
}

static void run_free(tower_run *r) {
    cJSON_Delete(r->cfg);
    t2_vlm_train_free(r->vt);
    free(r->P_all), free(r->G_all), free(r->ranges), t2_adamw_free(&r->adam);
    free(r->pixels), free(r->labels), free(r->target), free(r->rgb);
    free(r->logits), free(r->dlogits), free(r->recon), free(r->drecon), free(r->dfeat);
    free(r->out), free(r->normed), free(r->rinv), free(r->dout), free(r->ones), free(r->dones);
    free(r->log), free(r->valid);
}

// One image: world item → normalised pixels, labels and the pooled-pixel targets of slot K.
static int load_item(tower_run *r, int family, int split, uint64_t index, float diff, int k) {
    t2_world_item it;
    t2_world_opts wo = t2_world_defaults();
    wo.image_size = r->S, wo.difficulty = diff;
    if (t2_world_make(family, split, index, &wo, &it, r->rgb)) return -1;
    t2_image im = {r->S, r->S, r->rgb};
    t2_pixels px;
    if (t2_preprocess(&r->pre, &im, &px)) return t2_error_prefix("%s: ", it.id), -1;
    int ok = px.n_tiles == 1 && px.h == r->S && px.w == r->S;
    if (ok) memcpy(r->pixels + (size_t)k * 3 * r->S * r->S, px.data, sizeof(float) * 3 * (size_t)r->S * r->S);
    t2_pixels_free(&px);
    if (!ok) return t2_fail("%s: the processor does not give one %dx%d tile for a %dx%d image", it.id, r->S, r->S, r->S, r->S);
    size_t G2 = (size_t)r->grid * r->grid;
    t2_tower_patch_labels(&it, r->S, r->grid, r->labels + (size_t)k * G2 * 2);
    const float *pl = r->pixels + (size_t)k * 3 * r->S * r->S;
    int q = r->P / POOL;
    for (int row = 0; row < r->grid; row++)
        for (int col = 0; col < r->grid; col++) {
            float *t = r->target + ((size_t)k * G2 + (size_t)row * r->grid + col) * r->NR;
            for (int ch = 0; ch < 3; ch++)
                for (int a = 0; a < POOL; a++)
                    for (int b = 0; b < POOL; b++) {
                        double s = 0;
                        for (int y = 0; y < q; y++)
                            for (int x = 0; x < q; x++)
                                s += pl[((size_t)ch * r->S + row * r->P + a * q + y) * r->S + col * r->P + b * q + x];
                        t[(ch * POOL + a) * POOL + b] = (float)(s / (q * q));
                    }
        }
    return 0;
}

// What the heads say of a batch: losses; labelled slots and those predicted right.
typedef struct { double ce, mse; long slots, right, none_slots, none_right, items_all_right; } head_stats;

// The forward of N images up to the heads' input: the features, or the projected rows RMS-normalised
// as the language model's first norm sees them (without its gain). Returns that input or NULL + error.
static const float *encode(tower_run *r, int n) {
    if (t2_vit_train_forward(r->vit, r->pixels, n, r->o->on_rows ? r->out : NULL)) return NULL;
    if (!r->o->on_rows) return t2_vit_train_features(r->vit);
    t2_rmsnorm_forward(r->normed, r->rinv, r->out, r->ones, n * r->tok, r->D, (float)r->rms_eps);
    return r->normed;
}

// The tower's gradients from r->dfeat = d(loss)/d(the heads' input) of the last encode of N images.
static void backprop(tower_run *r, int n) {
    if (!r->o->on_rows) { t2_vit_train_backward_features(r->vit, r->dfeat); return; }
    size_t nr = (size_t)n * r->tok * r->D;
    memset(r->dout, 0, nr * sizeof(float));
    memset(r->dones, 0, sizeof(float) * (size_t)r->D);
    t2_rmsnorm_backward(r->dout, r->dones, r->dfeat, r->out, r->ones, r->rinv, n * r->tok, r->D);
    t2_vit_train_backward(r->vit, r->dout);   // the projector's gradients are computed but never applied
}

// The heads on FEAT, the heads' input of the last encode of N images: losses into HS (and, when GRAD,
// d(FEAT) into r->dfeat and the heads' gradients into G_all).
static void heads(tower_run *r, const float *feat, int n, int grad, head_stats *hs) {
    int NC = T2_TOWER_CLASSES, NC2 = 2 * NC, rows = n * r->tok, G2 = r->grid * r->grid;
    t2_linear_forward(r->logits, feat, r->P_all + r->off_wc, r->P_all + r->off_bc, rows, NC2, r->D);
    t2_linear_forward(r->recon, feat, r->P_all + r->off_wr, r->P_all + r->off_br, rows, r->NR, r->D);
    double ce = 0, mse = 0, wsum = 0, cw = r->o->char_weight;
    for (size_t i = 0; i < (size_t)n * G2 * 2; i++) wsum += r->labels[i] == T2_TOWER_NONE ? 1 : cw;
    double ce_scale = 1.0 / wsum, mse_scale = r->o->recon_weight / ((double)n * G2 * r->NR);
    if (grad) memset(r->dlogits, 0, sizeof(float) * (size_t)rows * NC2), memset(r->drecon, 0, sizeof(float) * (size_t)rows * r->NR);
    for (int img = 0; img < n; img++) {
        int all_right = 1, any = 0;
        for (int pt = 0; pt < G2; pt++) {
            size_t row = (size_t)img * r->tok + r->tok_off + pt;
            for (int h = 0; h < 2; h++) {
                const float *z = r->logits + row * NC2 + h * NC;
                int y = r->labels[((size_t)img * G2 + pt) * 2 + h], best = 0;
                float mx = z[0];
                for (int c = 1; c < NC; c++) if (z[c] > mx) mx = z[c], best = c;
                double sum = 0;
                for (int c = 0; c < NC; c++) sum += exp((double)(z[c] - mx));
                double w = y == T2_TOWER_NONE ? 1 : cw;
                ce += w * (log(sum) - (double)(z[y] - mx));
                if (y != T2_TOWER_NONE) { hs->slots++, any = 1; if (best == y) hs->right++; else all_right = 0; }
                else { hs->none_slots++; if (best == y) hs->none_right++; }
                if (grad) {
                    float *d = r->dlogits + row * NC2 + h * NC;
                    for (int c = 0; c < NC; c++) d[c] = (float)(exp((double)(z[c] - mx)) / sum * ce_scale * w);
                    d[y] -= (float)(ce_scale * w);
                }
            }
            const float *pr = r->recon + row * r->NR, *t = r->target + ((size_t)img * G2 + pt) * r->NR;
            for (int j = 0; j < r->NR; j++) {
                double e = (double)pr[j] - t[j];
                mse += e * e;
                if (grad) r->drecon[row * r->NR + j] = (float)(2 * e * mse_scale);
            }
        }
        if (any && all_right) hs->items_all_right++;
    }
    hs->ce += ce * ce_scale;
    hs->mse += mse / ((double)n * G2 * r->NR);
    if (!grad) return;
    memset(r->dfeat, 0, sizeof(float) * (size_t)rows * r->D);
    t2_linear_backward(r->dfeat, r->G_all + r->off_wc, r->G_all + r->off_bc, r->dlogits, feat, r->P_all + r->off_wc, rows, NC2, r->D);
    t2_linear_backward(r->dfeat, r->G_all + r->off_wr, r->G_all + r->off_br, r->drecon, feat, r->P_all + r->off_wr, rows, r->NR, r->D);
}

static void sync_to_vit(tower_run *r) { memcpy(t2_vit_train_param_block(r->vit, NULL), r->P_all, r->n_vit * sizeof(float)); }

static int validate(tower_run *r, long step, head_stats *out) {
    memset(out, 0, sizeof *out);
    sync_to_vit(r);
    for (int i = 0; i < r->o->n_valid; i += r->B) {
        int n = r->o->n_valid - i < r->B ? r->o->n_valid - i : r->B;
        for (int k = 0; k < n; k++)
            if (load_item(r, T2_WORLD_TEXTVQA, T2_WORLD_SPLIT_VALID, (uint64_t)(i + k), (float)r->o->diff_hi, k)) return -1;
        const float *x = encode(r, n);
        if (!x) return -1;
        heads(r, x, n, 0, out);
    }
    append(&r->valid, &r->valid_n, "%ld,%.5f,%ld,%ld,%.4f,%.4f,%.4f\n", step, out->ce / ((r->o->n_valid + r->B - 1) / r->B),
           out->slots, out->right, out->slots ? (double)out->right / out->slots : 0,
           out->none_slots ? (double)out->none_right / out->none_slots : 0,
           r->o->n_valid ? (double)out->items_all_right / r->o->n_valid : 0);
    return 0;
}

// --projector heads: the exported projector computes the heads. linear_1 = [char head (2·38 rows, the
// "none" classes' two rows zero);
// pixel head; −pixel head (GELU keeps the positive part of each); the input model's remaining rows],
// linear_2 = identity, so every image row the language model receives holds its patch's character
// logits and pooled pixels on fixed axes. Only the copy in the tower's block is changed (P_all keeps the
// input model's projector, which is what resuming needs).
static void heads_to_projector(tower_run *r) {
    t2_vit_params *p = t2_vit_train_params(r->vit);
    int H = t2_vit_train_cfg(r->vit)->text_hidden, F = r->F, NC2 = 2 * T2_TOWER_CLASSES;
    const float *wc = r->P_all + r->off_wc, *bc = r->P_all + r->off_bc, *wr = r->P_all + r->off_wr, *br = r->P_all + r->off_br;
    for (int i = 0; i < NC2; i++) {   // the two "none" rows stay zero: nearly every patch is empty, and a
                                      // shared large "none" axis would drown the characters under the LM's RMSNorm
        int none = i % T2_TOWER_CLASSES == T2_TOWER_NONE;
        for (int j = 0; j < F; j++) p->p1_w[(size_t)i * F + j] = none ? 0 : wc[(size_t)i * F + j];
        if (p->p1_b) p->p1_b[i] = none ? 0 : bc[i];
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < r->NR; i++) {
            int row = NC2 + k * r->NR + i;
            float sg = k ? -1.0f : 1.0f;
            for (int j = 0; j < F; j++) p->p1_w[(size_t)row * F + j] = sg * wr[(size_t)i * F + j];
            if (p->p1_b) p->p1_b[row] = sg * br[i];
        }
    memset(p->p2_w, 0, sizeof(float) * (size_t)H * H);
    for (int i = 0; i < H; i++) p->p2_w[(size_t)i * H + i] = 1;
    if (p->p2_b) memset(p->p2_b, 0, sizeof(float) * H);
}

static int save(tower_run *r, long step) {
    char *settings = settings_text(r);
    int rc = t2_train_state_save(r->ckpt, r->P_all, &r->adam, NULL, settings);
    free(settings);
    if (rc) return -1;
    if (t2_write_file_atomic(r->log_path, r->log, r->log_n) || t2_write_file_atomic(r->valid_path, r->valid, r->valid_n))
        return -1;
    if (t2_mkdirs(r->model_out)) return -1;
    sync_to_vit(r);
    if (r->o->projector_from_heads) heads_to_projector(r);
    char p[4300], q[4300];
    snprintf(p, sizeof p, "%s/model.safetensors", r->model_out);
    if (t2_vlm_train_export(r->vt, p, T2_DTYPE_F16)) return -1;
    static const char *files[] = {"config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
                                  "special_tokens_map.json", "generation_config.json", "chat_template.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", r->o->model_dir, files[i]);
        snprintf(q, sizeof q, "%s/%s", r->model_out, files[i]);
        struct stat sb;
        if (stat(p, &sb) == 0 && t2_copy_file_atomic(p, q)) return -1;
    }
    if (!r->o->quiet) fprintf(stderr, "tower train: checkpoint at step %ld → %s, model → %s\n", step, r->ckpt, r->model_out);
    return 0;
}

// Keep the lines of a CSV text whose first field (the step) is <= STEP; the header always.
static void keep_until(char **buf, size_t *n, long step) {
    size_t w = 0;
    char *s = *buf;
    for (size_t i = 0; i < *n;) {
        char *nl = memchr(s + i, '\n', *n - i);
        size_t len = nl ? (size_t)(nl - (s + i)) + 1 : *n - i;
        char *end;
        long st = strtol(s + i, &end, 10);
        if (end == s + i || st <= step) memmove(s + w, s + i, len), w += len;
        i += len;
    }
    *n = w;
    if (*buf) (*buf)[w] = 0;
}

static int load_csv(const char *path, char **buf, size_t *n, long step) {
    if (!t2_file_exists(path)) return 0;
    free(*buf);
    if (!(*buf = t2_read_file(path, n))) return -1;
    keep_until(buf, n, step);
    return 0;
}

int t2_tower_train_run(const t2_tower_train_opts *o) {
    tower_run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    g_stop = 0;
    int rc = -1;
    if (setup(&r)) goto done;
    long step = 0;
    if (o->resume) {
        if (!t2_file_exists(r.ckpt)) { t2_fail("--resume: no checkpoint at %s", r.ckpt); goto done; }
        char *saved = NULL, *now = settings_text(&r);
        if (t2_train_state_load(r.ckpt, r.P_all, &r.adam, NULL, &saved)) { free(now); goto done; }
        int same = saved && !strcmp(saved, now);
        if (!same) t2_fail("--resume: %s was made with other settings: %s (now: %s)", r.ckpt, saved ? saved : "?", now);
        free(saved), free(now);
        if (!same) goto done;
        step = (long)r.adam.step;
        if (load_csv(r.log_path, &r.log, &r.log_n, step) || load_csv(r.valid_path, &r.valid, &r.valid_n, step)) goto done;
        if (!o->quiet) fprintf(stderr, "tower train: resuming %s at step %ld\n", r.ckpt, step);
    } else if (t2_file_exists(r.ckpt)) {
        t2_fail("%s exists: pass --resume to continue that run, or choose another --out", r.ckpt);
        goto done;
    }
    if (!r.log_n) append(&r.log, &r.log_n, "step,loss,char_loss,pixel_mse,char_acc,lr,grad_norm,images_per_s\n");
    if (!r.valid_n) append(&r.valid, &r.valid_n, "step,char_loss,slots,right,char_acc,none_acc,items_all_right\n");
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int), sigaction(SIGTERM, &sa, &old_term);

    long stop_at = o->max_steps > 0 && step + o->max_steps < o->steps ? step + o->max_steps : o->steps;
    head_stats win = {0};
    double t_win = t2_now(), loss_win = 0;
    long n_win = 0;
    while (step < stop_at && !g_stop) {
        for (int k = 0; k < r.B; k++) {
            t2_rng dr;
            t2_rng_seed(&dr, o->seed * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)step << 16) ^ (uint64_t)k);
            double u = t2_rng_uniform(&dr) * r.fw_total;
            int fi = 0;
            while (fi < r.nfam - 1 && u >= r.fw[fi]) u -= r.fw[fi++];
            float diff = (float)(o->diff_lo + (o->diff_hi - o->diff_lo) * t2_rng_uniform(&dr));
            if (load_item(&r, r.fam[fi], T2_WORLD_SPLIT_TRAIN, t2_rng_u64(&dr) >> 1, diff, k)) goto restore;
        }
        sync_to_vit(&r);
        t2_vit_train_zero_grad(r.vit);
        memset(r.G_all, 0, r.n_all * sizeof(float));
        const float *x = encode(&r, r.B);
        if (!x) goto restore;
        head_stats hs = {0};
        heads(&r, x, r.B, 1, &hs);
        if (!o->probe) {   // a probe trains the heads only: the tower's backward would be thrown away
            backprop(&r, r.B);
            memcpy(r.G_all, t2_vit_train_grad_block(r.vit, NULL), r.n_vit * sizeof(float));
        }
        double loss = hs.ce + o->recon_weight * hs.mse;
        if (!isfinite(loss)) { t2_fail("step %ld: the loss is %g", step, loss); goto restore; }
        // clip over the trained ranges only (the projector's gradients are not trained and not counted)
        double ss = 0;
        for (int i = 0; i < r.nranges; i++)
            for (size_t j = 0; j < r.ranges[i].count; j++) { double g = r.G_all[r.ranges[i].offset + j]; ss += g * g; }
        float gn = (float)sqrt(ss);
        if (o->clip > 0 && gn > o->clip) {
            float s = (float)(o->clip / (gn + 1e-6));
            for (int i = 0; i < r.nranges; i++)
                for (size_t j = 0; j < r.ranges[i].count; j++) r.G_all[r.ranges[i].offset + j] *= s;
        }
        double lr = t2_lr_at(step, o->warmup, o->steps, o->lr, o->lr_min);
        t2_adamw_config ac = t2_adamw_defaults();
        ac.weight_decay = o->weight_decay;
        t2_adamw_step(&r.adam, &ac, lr, r.P_all, r.G_all, r.ranges, r.nranges);
        step++;
        win.ce += hs.ce, win.mse += hs.mse, win.slots += hs.slots, win.right += hs.right, loss_win += loss, n_win++;
        if (step % o->log_every == 0) {   // (a window cut by a stop is logged over its steps after the resume)
            double dt = t2_now() - t_win;
            append(&r.log, &r.log_n, "%ld,%.5f,%.5f,%.5f,%.4f,%.3g,%.4f,%.1f\n", step, loss_win / n_win, win.ce / n_win,
                   win.mse / n_win, win.slots ? (double)win.right / win.slots : 0, lr, gn, n_win * r.B / (dt > 0 ? dt : 1e-9));
            if (!o->quiet)
                fprintf(stderr, "tower train: step %ld/%ld  loss %.4f (chars %.4f, pixels %.4f)  char acc %.1f%%  %.1f img/s\n",
                        step, o->steps, loss_win / n_win, win.ce / n_win, win.mse / n_win,
                        win.slots ? 100.0 * win.right / win.slots : 0, n_win * r.B / (dt > 0 ? dt : 1e-9));
            memset(&win, 0, sizeof win), loss_win = 0, n_win = 0, t_win = t2_now();
        }
        if (step % o->every == 0 || step == o->steps) {
            head_stats v;
            if (o->n_valid && validate(&r, step, &v)) goto restore;
            if (o->n_valid && !o->quiet)
                fprintf(stderr, "tower train: valid (textvqa, %d images) step %ld: chars %ld/%ld = %.1f%%, none %.1f%%, "
                        "every glyph right on %.1f%% of the images\n", o->n_valid, step, v.right, v.slots,
                        v.slots ? 100.0 * v.right / v.slots : 0, v.none_slots ? 100.0 * v.none_right / v.none_slots : 0,
                        100.0 * v.items_all_right / o->n_valid);
            if (save(&r, step)) goto restore;
        }
    }
    if (step % o->every != 0 && step != o->steps && save(&r, step)) goto restore;
    if (g_stop && !o->quiet) fprintf(stderr, "tower train: stopped at step %ld (checkpointed; --resume continues)\n", step);
    rc = 0;
restore:
    sigaction(SIGINT, &old_int, NULL), sigaction(SIGTERM, &old_term, NULL);
done:
    run_free(&r);
    return rc;
}
