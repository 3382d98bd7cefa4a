// train.c — `t2 train --config RECIPE.json` (train.h; the recipe's fields are in docs/training.md):
// micro-batches of mixed image / text samples (data.h) through the whole model (vlm_train.h),
// gradient accumulation, AdamW with warmup + cosine and clipping (optim.c), a CSV log and a PNG curve,
// checkpoints every N steps and on SIGINT / SIGTERM (atomic; --resume continues the same curve), the
// model exported as an HF LLaVA checkpoint, and validation of that export with the eval harness.
#include "train/train.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/error.h"
#include "core/kernels.h"
#include "core/pool.h"
#include "core/util.h"
#include "eval/bench.h"
#include "eval/chart.h"
#include "eval/run.h"
#include "fusion/vlm.h"
#include "language/chat.h"
#include "language/tokenizer.h"
#include "train/data.h"
#include "world/world.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

typedef struct {
    long steps, warmup;
    int batch, accum;
    double lr, lr_min, clip;
    int center_vision_grad;
    t2_adamw_config adam;
} optim_cfg;

// Data parallelism: each worker thread owns a replica of the model (its own activations and gradient
// block, parameters copied from replica 0 after every update) and trains it on its share of the
// batch with single-threaded BLAS; the replicas' gradients are summed into replica 0, which the
// optimizer updates. The batch's rows are sorted by length and cut into chunks of similar length, so
// that little is padded; the chunks are dealt to the replicas in snake order (K = 2: replica 0 takes
// chunks 0 and 3, replica 1 chunks 1 and 2) so that each gets a similar amount of work; deterministic
// for a given K.
#define MAX_REPLICAS 64
#define CHUNKS_PER_REPLICA 2

typedef struct {
    t2_vlm_train *vt;
    int32_t *tok, *tgt;   // (rows, max_len) of the chunk being trained
    uint8_t *isimg;
    float *pix;           // (rows, 3, S, S)
    char err[512];        // a failed forward's message (the worker's thread-local error does not reach the loop)
} replica;

typedef struct {
    // paths
    char base[2048], out[2048], ckpt[2300], model_dir[2300], log_csv[2300], fam_csv[2300], curve[2300], valid_csv[2300];
    cJSON *recipe, *model_cfg, *pre_cfg;
    const char *tok_dir, *init;
    t2_dtype export_dtype;
    uint64_t seed;
    int threads, max_len, ckpt_every, log_every, valid_every, valid_n, quiet;
    double eval_prompt_share;  // data.eval_prompt_share
    double valid_difficulty;   // the world difficulty of the validation items (default 1: the test sets')
    double diff_start, diff_end;
    long diff_ramp;
    optim_cfg oc;
    char **valid_fams;
    int n_valid;
    // state
    t2_tokenizer *tok;
    t2_preproc pre;
    int has_pre;
    t2_vlm_train *vt;          // replica 0: the one the optimizer updates, checkpoints and exports
    replica rep[MAX_REPLICAS];
    int nrep, chunk_rows, data_parallel;
    t2_pool *pool;             // nrep threads when nrep > 1
    t2_train_data *data;
    t2_train_optim opt;
    t2_rng rng;
    // the curve so far
    double *cx, *cy;
    int cn, ccap;
} run;

// ---------------------------------------------------------------------------------------------
// The recipe

static const char *path_in(const run *r, const char *p, char *buf, size_t cap) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation"
    if (!p) return NULL;
    if (p[0] == '/') snprintf(buf, cap, "%s", p);
    else snprintf(buf, cap, "%s/%s", r->base, p);
    return buf;
#pragma GCC diagnostic pop
}

static int parse_recipe(run *r, const t2_train_opts *o) {
    if (!(r->recipe = t2_json_load(o->config_path))) return -1;
    const char *slash = strrchr(o->config_path, '/');
    if (slash) snprintf(r->base, sizeof r->base, "%.*s", (int)(slash - o->config_path), o->config_path);
    else snprintf(r->base, sizeof r->base, ".");
    const cJSON *R = r->recipe, *M = cJSON_GetObjectItem(R, "model"), *D = cJSON_GetObjectItem(R, "data"),
                *O = cJSON_GetObjectItem(R, "optim"), *C = cJSON_GetObjectItem(R, "checkpoint"),
                *V = cJSON_GetObjectItem(R, "valid");
    const char *cfgname = o->config_path;
    if (!cJSON_IsObject(M)) return t2_fail("%s: \"model\" (an object) is missing", cfgname);
    if (!cJSON_IsObject(D)) return t2_fail("%s: \"data\" (an object) is missing", cfgname);
    if (!cJSON_IsObject(O)) return t2_fail("%s: \"optim\" (an object) is missing", cfgname);
    const char *out = o->out_dir ? o->out_dir : t2_json_str(R, "out", NULL);
    if (!out) return t2_fail("%s: \"out\" (the run directory) is missing and --out not given", cfgname);
    snprintf(r->out, sizeof r->out, "%s", out);
    snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoint.safetensors", r->out);
    snprintf(r->model_dir, sizeof r->model_dir, "%s/model", r->out);
    snprintf(r->log_csv, sizeof r->log_csv, "%s/log.csv", r->out);
    snprintf(r->fam_csv, sizeof r->fam_csv, "%s/family_loss.csv", r->out);
    snprintf(r->curve, sizeof r->curve, "%s/loss.png", r->out);
    snprintf(r->valid_csv, sizeof r->valid_csv, "%s/valid.csv", r->out);
    // every number of the recipe: a number, an integer where counted, in range (NUM fails naming the field)
    double v;
#define NUM(obj, where, key, def, lo, hi, integer) \
    if (t2_json_num_in(obj, where, key, def, lo, hi, integer, &v)) { t2_error_prefix("%s: ", cfgname); return -1; }
    NUM(R, "", "seed", 1, 0, 9007199254740992.0, 1) r->seed = (uint64_t)v;
    NUM(R, "", "threads", 0, 0, 1024, 1) r->threads = o->threads > 0 ? o->threads : (int)v;
    const cJSON *dp = cJSON_GetObjectItem(R, "data_parallel");
    if (dp && !cJSON_IsBool(dp)) return t2_fail("%s: data_parallel must be true or false", cfgname);
    r->data_parallel = !dp || cJSON_IsTrue(dp);
    r->quiet = o->quiet;

    // model
    char buf[2048];
    r->init = t2_json_str(M, "init", "random");
    int from_dir = strcmp(r->init, "random") != 0;
    static char initbuf[2048];
    if (from_dir) r->init = path_in(r, r->init, initbuf, sizeof initbuf);
    const cJSON *cfg = cJSON_GetObjectItem(M, "config");
    const char *cfgfile = t2_json_str(M, "config_file", NULL);
    if (cJSON_IsObject(cfg)) r->model_cfg = cJSON_Duplicate(cfg, 1);
    else if (cfgfile) r->model_cfg = t2_json_load(path_in(r, cfgfile, buf, sizeof buf));
    else if (from_dir) r->model_cfg = t2_json_load((snprintf(buf, sizeof buf, "%s/config.json", r->init), buf));
    else return t2_fail("%s: model.config (a config.json object) or model.config_file is missing", cfgname);
    if (!r->model_cfg) return -1;
    static char tokbuf[2048];
    r->tok_dir = path_in(r, t2_json_str(M, "tokenizer", from_dir ? r->init : NULL), tokbuf, sizeof tokbuf);
    if (!r->tok_dir) return t2_fail("%s: model.tokenizer (a directory with tokenizer.json) is missing", cfgname);
    const cJSON *pp = cJSON_GetObjectItem(M, "preprocessor");
    if (cJSON_IsObject(pp)) r->pre_cfg = cJSON_Duplicate(pp, 1);
    else if (from_dir) {
        snprintf(buf, sizeof buf, "%s/preprocessor_config.json", r->init);
        struct stat sb;
        if (stat(buf, &sb) == 0 && !(r->pre_cfg = t2_json_load(buf))) return -1;
    }
    const char *dt = t2_json_str(M, "export_dtype", "F16");
    if (!strcmp(dt, "F32")) r->export_dtype = T2_DTYPE_F32;
    else if (!strcmp(dt, "F16")) r->export_dtype = T2_DTYPE_F16;
    else if (!strcmp(dt, "BF16")) r->export_dtype = T2_DTYPE_BF16;
    else return t2_fail("%s: model.export_dtype '%s': F32, F16 or BF16", cfgname, dt);

    // data
    NUM(D, "data", "max_len", 128, 4, 8192, 1) r->max_len = (int)v;
    const cJSON *df = cJSON_GetObjectItem(D, "difficulty");
    NUM(df, "data.difficulty", "start", 1, 0, 1, 0) r->diff_start = v;
    NUM(df, "data.difficulty", "end", 1, 0, 1, 0) r->diff_end = v;
    NUM(df, "data.difficulty", "ramp_steps", 0, 0, 1e12, 1) r->diff_ramp = (long)v;
    NUM(D, "data", "eval_prompt_share", 0.5, 0, 1, 0) r->eval_prompt_share = v;

    // optim
    optim_cfg *c = &r->oc;
    if (!cJSON_GetObjectItem(O, "steps")) return t2_fail("%s: optim.steps is missing", cfgname);
    NUM(O, "optim", "steps", 0, 1, 1e12, 1) c->steps = (long)v;
    NUM(O, "optim", "batch", 8, 1, 4096, 1) c->batch = (int)v;
    NUM(O, "optim", "accum", 1, 1, 4096, 1) c->accum = (int)v;
    NUM(O, "optim", "lr", 1e-3, 1e-12, 1e3, 0) c->lr = v;
    NUM(O, "optim", "lr_min", c->lr * 0.1, 0, 1e3, 0) c->lr_min = v;
    NUM(O, "optim", "warmup", 0, 0, 1e12, 1) c->warmup = (long)v;
    NUM(O, "optim", "clip", 1.0, 0, 1e9, 0) c->clip = v;   // 0: no clipping
    const cJSON *cvg = cJSON_GetObjectItem(O, "center_vision_grad");
    if (cvg && !cJSON_IsBool(cvg)) return t2_fail("%s: optim.center_vision_grad must be true or false", cfgname);
    c->center_vision_grad = cJSON_IsTrue(cvg);
    c->adam = t2_adamw_defaults();
    NUM(O, "optim", "weight_decay", 0.01, 0, 1e3, 0) c->adam.weight_decay = v;
    NUM(O, "optim", "beta1", 0.9, 0, 0.9999999, 0) c->adam.beta1 = v;   // 1 would divide by 1 - β^t = 0
    NUM(O, "optim", "beta2", 0.999, 0, 0.9999999, 0) c->adam.beta2 = v;
    NUM(O, "optim", "eps", 1e-8, 1e-30, 1, 0) c->adam.eps = v;
    if (c->warmup >= c->steps) return t2_fail("%s: optim.warmup must be in [0, steps)", cfgname);

    NUM(C, "checkpoint", "every", 200, 1, 1e9, 1) r->ckpt_every = (int)v;
    NUM(R, "", "log_every", 10, 1, 1e9, 1) r->log_every = (int)v;
    NUM(V, "valid", "every", 0, 0, 1e9, 1) r->valid_every = (int)v;
    NUM(V, "valid", "n", 100, 1, 1e6, 1) r->valid_n = (int)v;
    NUM(V, "valid", "difficulty", 1, 0, 1, 0) r->valid_difficulty = v;
    const cJSON *vf = cJSON_GetObjectItem(V, "families"), *f;
    if (vf && !cJSON_IsArray(vf)) return t2_fail("%s: valid.families must be an array of world family names", cfgname);
    r->valid_fams = t2_calloc((size_t)cJSON_GetArraySize(vf) + 1, sizeof(char *));
    cJSON_ArrayForEach(f, vf) {
        if (!cJSON_IsString(f) || t2_world_family_parse(f->valuestring) < 0)
            return t2_fail("%s: valid.families: unknown world family %s", cfgname, cJSON_IsString(f) ? f->valuestring : "(not a string)");
        r->valid_fams[r->n_valid++] = f->valuestring;
    }
    return 0;
#undef NUM
}

// The settings a resumed run must share with its checkpoint: everything that shapes the curve
// (model, data, seed, optimiser) except optim.steps, which may be raised to train longer.
static char *settings_text(const run *r) {
    cJSON *s = cJSON_CreateObject();
    const char *keys[] = {"model", "data", "optim"};
    for (int i = 0; i < 3; i++) {
        cJSON *v = cJSON_Duplicate(cJSON_GetObjectItem(r->recipe, keys[i]), 1);
        if (i == 2) cJSON_DeleteItemFromObject(v, "steps");
        cJSON_AddItemToObject(s, keys[i], v);
    }
    cJSON_AddNumberToObject(s, "seed", (double)r->seed);
    char *t = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return t;
}

// ---------------------------------------------------------------------------------------------
// Files: export, log, curve

static int write_json(const char *path, const cJSON *j) {
    char *t = cJSON_Print(j);
    size_t n = strlen(t);
    char *b = t2_malloc(n + 2);
    memcpy(b, t, n), b[n] = '\n';
    int rc = t2_write_file_atomic(path, b, n + 1);
    free(b), free(t);
    return rc;
}

static int export_model(run *r) {
    char p[2600], q[2600];
    if (t2_mkdirs(r->model_dir)) return -1;
    snprintf(p, sizeof p, "%s/model.safetensors", r->model_dir);
    if (t2_vlm_train_export(r->vt, p, r->export_dtype)) return -1;
    cJSON *cfg = cJSON_Duplicate(r->model_cfg, 1);
    const char *tdn = r->export_dtype == T2_DTYPE_F32 ? "float32" : r->export_dtype == T2_DTYPE_F16 ? "float16" : "bfloat16";
    cJSON_DeleteItemFromObject(cfg, "torch_dtype");
    cJSON_AddStringToObject(cfg, "torch_dtype", tdn);
    snprintf(p, sizeof p, "%s/config.json", r->model_dir);
    int rc = write_json(p, cfg);
    cJSON_Delete(cfg);
    if (rc == 0 && r->pre_cfg) {
        snprintf(p, sizeof p, "%s/preprocessor_config.json", r->model_dir);
        rc = write_json(p, r->pre_cfg);
    }
    const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"};
    for (int i = 0; i < 4 && rc == 0; i++) {
        snprintf(p, sizeof p, "%s/%s", r->tok_dir, files[i]);
        snprintf(q, sizeof q, "%s/%s", r->model_dir, files[i]);
        struct stat sb;
        if (stat(p, &sb) == 0) rc = t2_copy_file_atomic(p, q);
        else if (i < 2 && i == 0) rc = t2_fail("%s: missing", p);
    }
    return rc;
}

static void curve_add(run *r, double x, double y) {
    if (r->cn == r->ccap) {
        r->ccap = r->ccap ? 2 * r->ccap : 1024;
        r->cx = t2_realloc(r->cx, sizeof(double) * r->ccap);
        r->cy = t2_realloc(r->cy, sizeof(double) * r->ccap);
    }
    r->cx[r->cn] = x, r->cy[r->cn++] = y;
}

static int write_curve(run *r) {
    if (r->cn == 0) return 0;
    // the per-step loss and its moving average over 50 steps
    double *ma = t2_malloc(sizeof(double) * r->cn), acc = 0;
    for (int i = 0; i < r->cn; i++) {
        acc += r->cy[i];
        if (i >= 50) acc -= r->cy[i - 50];
        ma[i] = acc / (i + 1 < 50 ? i + 1 : 50);
    }
    const char *names[2] = {"loss", "mean of 50"};
    const double *xs[2] = {r->cx, r->cx}, *ys[2] = {r->cy, ma};
    int n[2] = {r->cn, r->cn};
    int rc = t2_chart_lines(r->curve, "training loss (cross-entropy over answer tokens)", "step", names, 2, xs, ys, n, 1);
    free(ma);
    return rc;
}

// Keep a CSV's rows up to STEP (its header too; a resumed run rewrites what came after its
// checkpoint); for log.csv (CURVE) reload the loss curve from the kept rows.
static int trim_csv(run *r, const char *path, long step, int curve) {
    size_t n;
    char *b = t2_read_file(path, &n);
    if (!b) return 0;   // no file yet
    size_t keep = 0;
    char *line = b;
    while (line < b + n) {
        char *nl = memchr(line, '\n', (size_t)(b + n - line));
        if (!nl) break;
        long s;
        double loss;
        if (sscanf(line, "%ld,%lf", &s, &loss) == 2) {
            if (s > step) break;
            if (curve) curve_add(r, (double)s, loss);
        } else if (sscanf(line, "%ld,", &s) == 1 && s > step) break;
        keep = (size_t)(nl + 1 - b);
        line = nl + 1;
    }
    int rc = t2_write_file_atomic(path, b, keep);
    free(b);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Validation: the exported model through the eval harness on each family's validation split

// The collapse probe (docs/t2-tiny.md), per image family of the validation: the image rows of the
// family's first two different images through the exported model — mean row norm, beside the token
// embeddings' — the mean cosine between the two images' rows at the same position, and the mean
// cosine between an image's rows and its first row. Rows that stop depending on the image (either
// cosine → 1) mean the vision side has learnt to silence it. One line per family to stderr (appended
// to LINE) and to RUN/rows.csv.
static void rows_probe(run *r, t2_vlm *m, long step, const char *family, const t2_eval_set *set, char *line, size_t cap) {
    const char *path[2] = {NULL, NULL};
    for (int i = 0, k = 0; i < set->n && k < 2; i++)
        if (set->items[i].image && (k == 0 || strcmp(set->items[i].image, path[0]))) path[k++] = set->items[i].image;
    if (!path[1] || !t2_vlm_lm_cfg(m)) return;
    t2_image im[2];
    float *rows[2] = {NULL, NULL};
    int n[2] = {0, 0}, ok = 0;
    for (int k = 0; k < 2; k++) {
        if (t2_image_load(path[k], &im[k], 1 << 24)) { while (k--) t2_image_free(&im[k]); return; }
    }
    ok = t2_vlm_encode_image(m, &im[0], &rows[0], &n[0]) == 0 && t2_vlm_encode_image(m, &im[1], &rows[1], &n[1]) == 0 &&
         n[0] == n[1] && n[0] > 0;
    if (ok) {
        int H = t2_vlm_lm_cfg(m)->hidden_size, V = t2_vlm_lm_cfg(m)->vocab_size;
        double norm = 0, cos = 0, within = 0, emb = 0;
        for (int t = 0; t < n[0]; t++) {
            double d = 0, a = 0, b = 0, w = 0, z = 0;
            for (int h = 0; h < H; h++) {
                double x = rows[0][(size_t)t * H + h], y = rows[1][(size_t)t * H + h], x0 = rows[0][h];
                d += x * y, a += x * x, b += y * y, w += x * x0, z += x0 * x0;
            }
            norm += sqrt(a), cos += a > 0 && b > 0 ? d / sqrt(a * b) : 0, within += a > 0 && z > 0 ? w / sqrt(a * z) : 0;
        }
        float *e = t2_malloc(sizeof(float) * (size_t)H);
        int ne = V < 256 ? V : 256;
        for (int id = 0; id < ne; id++) {
            t2_lm_embed(t2_vlm_lm(m), id, e);
            double a = 0;
            for (int h = 0; h < H; h++) a += (double)e[h] * e[h];
            emb += sqrt(a);
        }
        free(e);
        norm /= n[0], cos /= n[0], within /= n[0], emb /= ne;
        size_t used = strlen(line);
        snprintf(line + used, cap - used,
                 "image rows step %ld, %s: norm %.4g (token embeddings %.4g), cosine between two images %.4f, within an image %.4f\n",
                 step, family, norm, emb, cos, within);
        char path_csv[2400];
        snprintf(path_csv, sizeof path_csv, "%s/rows.csv", r->out);
        struct stat sb;
        int fresh = stat(path_csv, &sb) != 0;
        FILE *f = fopen(path_csv, "a");
        if (f) {
            if (fresh) fprintf(f, "step,family,row_norm,embedding_norm,cosine_between_images,cosine_within_image\n");
            fprintf(f, "%ld,%s,%.6g,%.6g,%.6f,%.6f\n", step, family, norm, emb, cos, within);
            fclose(f);
        }
    }
    free(rows[0]), free(rows[1]);
    t2_image_free(&im[0]), t2_image_free(&im[1]);
}

static int validate(run *r, long step) {
    if (r->n_valid == 0) return 0;
    char dir[2600], file[2700], od[2700];
    if (r->valid_difficulty == 1.0) snprintf(dir, sizeof dir, "%s/valid-data", r->out);
    else snprintf(dir, sizeof dir, "%s/valid-data-d%.3g", r->out, r->valid_difficulty);   // its own cache per difficulty
    t2_world_opts wo = t2_world_defaults();
    if (t2_vlm_train_image_size(r->vt) > 0) wo.image_size = t2_vlm_train_image_size(r->vt);
    wo.difficulty = (float)r->valid_difficulty;
    for (int i = 0; i < r->n_valid; i++) {
        snprintf(file, sizeof file, "%s/%s-valid.jsonl", dir, r->valid_fams[i]);
        struct stat sb;
        if (stat(file, &sb) != 0 && t2_world_write(dir, t2_world_family_parse(r->valid_fams[i]), T2_WORLD_SPLIT_VALID, r->valid_n, &wo))
            return -1;
    }
    t2_vlm *m = t2_vlm_load(r->model_dir, r->threads, 1);
    if (!m) return -1;
    FILE *f = fopen(r->valid_csv, "a");
    if (!f) { t2_vlm_free(m); return t2_fail("%s: %s", r->valid_csv, strerror(errno)); }
    int rc = 0;
    char probe[1024] = "";
    if (!r->quiet) fprintf(stderr, "valid step %ld:", step);
    for (int i = 0; i < r->n_valid && rc == 0; i++) {
        t2_eval_set set;
        snprintf(file, sizeof file, "%s/%s-valid.jsonl", dir, r->valid_fams[i]);
        if ((rc = t2_eval_load(T2_BENCH_JSONL, file, NULL, dir, 0, &set))) break;
        t2_eval_opts eo = {0};
        snprintf(od, sizeof od, "%s/valid/step-%06ld/%s", r->out, step, r->valid_fams[i]);
        eo.out_dir = od;
        eo.model_name = "t2 train";
        eo.no_table = 1;   // the scores go to the log line below and valid.csv
        t2_eval_summary sum;
        rc = t2_eval_run(m, &set, &eo, &sum);
        if (rc == 0 && t2_vlm_has_vision(m)) rows_probe(r, m, step, r->valid_fams[i], &set, probe, sizeof probe);
        if (rc == 0) {
            fprintf(f, "%ld,%s,%.2f,%d\n", step, r->valid_fams[i], sum.score, sum.n);
            if (!r->quiet) fprintf(stderr, " %s %.1f", r->valid_fams[i], sum.score);
        }
        t2_eval_set_free(&set);
    }
    if (!r->quiet) fprintf(stderr, "\n%s", probe);
    fclose(f);
    t2_vlm_free(m);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// The loop

// Replica 0's parameters into every other replica.
static void sync_replicas(run *r) {
    t2_vlm_train_blocks b0, bj;
    t2_vlm_train_get_blocks(r->vt, &b0);
    for (int j = 1; j < r->nrep; j++) {
        t2_vlm_train_get_blocks(r->rep[j].vt, &bj);
        for (int k = 0; k < 2; k++)
            if (b0.n[k]) memcpy(bj.p[k], b0.p[k], sizeof(float) * b0.n[k]);
    }
}

static int setup(run *r, const t2_train_opts *o) {
    if (t2_mkdirs(r->out)) return -1;
    if (!(r->tok = t2_tok_load(r->tok_dir))) return -1;
    const cJSON *M = cJSON_GetObjectItem(r->recipe, "model");
    const char *chatname = t2_json_str(M, "chat_template", NULL);
    t2_chat_kind chat;
    if (chatname) {
        int k = t2_chat_parse_name(chatname);
        if (k < 0) return t2_fail("%s: model.chat_template '%s' is not a known format", o->config_path, chatname);
        chat = (t2_chat_kind)k;
    } else chat = t2_chat_detect(t2_tok_chat_template(r->tok), T2_CHAT_NONE);
    int B = r->oc.batch, threads = r->threads > 0 ? r->threads : t2_ncores();
    // Replicas: one per thread when data-parallel (not with center_vision_grad, whose mean runs over
    // the whole batch's images); otherwise one replica over the whole batch, BLAS threaded.
    r->nrep = r->data_parallel && !r->oc.center_vision_grad ? threads : 1;
    if (r->nrep > B) r->nrep = B;
    if (r->nrep > MAX_REPLICAS) r->nrep = MAX_REPLICAS;
    int chunks = r->nrep > 1 ? r->nrep * CHUNKS_PER_REPLICA : 1;   // one replica: the whole batch at once
    if (chunks > B) chunks = B;
    r->chunk_rows = (B + chunks - 1) / chunks;
    int S0 = 0;
    for (int j = 0; j < r->nrep; j++) {
        replica *p = &r->rep[j];
        if (!(p->vt = t2_vlm_train_new_ex(r->model_cfg, r->chunk_rows, r->max_len, r->chunk_rows,
                                             T2_LM_TRAIN_TARGET_LOGITS))) return -1;
        S0 = t2_vlm_train_image_size(p->vt);
        size_t n = (size_t)r->chunk_rows * r->max_len;
        p->tok = t2_malloc(sizeof(int32_t) * n), p->tgt = t2_malloc(sizeof(int32_t) * n), p->isimg = t2_malloc(n);
        p->pix = t2_malloc(sizeof(float) * (size_t)r->chunk_rows * 3 * (S0 > 0 ? (size_t)S0 * S0 : 1));
    }
    r->vt = r->rep[0].vt;
    if (r->nrep > 1) r->pool = t2_pool_new(r->nrep);
    if (t2_vlm_train_vit(r->vt)) {
        if (!r->pre_cfg) return t2_fail("%s: a vision model needs model.preprocessor (preprocessor_config.json)", o->config_path);
        if (t2_preproc_from_json(&r->pre, r->pre_cfg, r->model_cfg, "model.preprocessor")) return -1;
        r->has_pre = 1;
    }
    if (t2_tok_vocab_size(r->tok) > t2_lm_train_cfg(t2_vlm_train_lm(r->vt))->vocab_size)
        return t2_fail("the tokenizer has %d tokens but the model's vocab_size is %d", t2_tok_vocab_size(r->tok),
                       t2_lm_train_cfg(t2_vlm_train_lm(r->vt))->vocab_size);
    t2_train_data_model dm = {r->tok, chat, r->has_pre ? &r->pre : NULL, t2_vlm_train_image_tokens(r->vt),
                              t2_vlm_train_image_token_id(r->vt), t2_vlm_train_image_size(r->vt), r->max_len,
                              r->eval_prompt_share};
    if (!(r->data = t2_train_data_new(cJSON_GetObjectItem(cJSON_GetObjectItem(r->recipe, "data"), "sources"), r->base, &dm, r->seed)))
        return -1;
    if (!strcmp(r->init, "random")) {
        double std = t2_json_num(M, "init_std", t2_json_num(cJSON_GetObjectItem(r->model_cfg, "text_config"), "initializer_range", 0.02));
        t2_vlm_train_init(r->vt, r->seed, (float)std);
    } else {
        t2_st *st = t2_st_open(r->init);
        if (!st) return -1;
        int rc = t2_vlm_train_load(r->vt, st);
        t2_st_close(st);
        if (rc) return -1;
    }
    sync_replicas(r);
    if (t2_train_optim_init(&r->opt, r->vt)) return -1;
    for (int j = 0; j < r->nrep; j++) t2_vlm_train_set_vision_grad_center(r->rep[j].vt, r->oc.center_vision_grad);
    const cJSON *ls = cJSON_GetObjectItem(cJSON_GetObjectItem(r->recipe, "optim"), "lr_scale"), *e;
    cJSON_ArrayForEach(e, ls) {   // {"vision_tower": 0.1 | {"scale": 0, "until": 8000, "weight_decay": 1}}: per prefix
        double sc = cJSON_IsNumber(e) ? e->valuedouble : -1, until = -1, wd = -1;
        if (cJSON_IsObject(e)) {
            char where[160];
            snprintf(where, sizeof where, "optim.lr_scale.%.100s", e->string);
            if (t2_json_num_in(e, where, "scale", 1, 0, 1e6, 0, &sc) || t2_json_num_in(e, where, "until", -1, -1, 1e12, 1, &until) ||
                t2_json_num_in(e, where, "weight_decay", -1, 0, 1e3, 0, &wd)) {
                t2_error_prefix("%s: ", o->config_path);
                return -1;
            }
        }
        if (!(sc >= 0))
            return t2_fail("%s: optim.lr_scale.%s: a number >= 0 or {\"scale\": S, \"until\": STEP, \"weight_decay\": WD}",
                           o->config_path, e->string);
        if (t2_train_optim_group(&r->opt, r->vt, e->string, (float)sc, (int64_t)until, (float)wd) == 0)
            return t2_fail("%s: optim.lr_scale: no tensor name starts with '%s'", o->config_path, e->string);
    }
    t2_rng_seed(&r->rng, r->seed);
    if (r->nrep > 1) t2_blas_threads(1);   // the threads are the replicas'
    else if (r->threads > 0) t2_blas_threads(r->threads);
    return 0;
}

// One micro-batch: SMP[0..B) (ORDER: rows sorted by length) through the replicas.
typedef struct {
    run *r;
    t2_train_sample *smp;
    const int *order;
    const int *row_tgt;       // per row: its targets
    long n_tgt;               // the micro-batch's targets
    int B, S, nchunks;
    double loss[MAX_REPLICAS];   // per replica: Σ over its chunks of the cross-entropy summed over targets
    double *row_nll;          // per row: its targets' cross-entropy summed
    int failed[MAX_REPLICAS];
} batch_job;

static void replica_task(void *ctx, int j, int thread) {
    (void)thread;
    batch_job *bj = ctx;
    run *r = bj->r;
    replica *p = &r->rep[j];
    bj->loss[j] = 0, bj->failed[j] = 0;
    for (int round = 0; round * r->nrep < bj->nchunks; round++) {
        int c = round * r->nrep + (round % 2 ? r->nrep - 1 - j : j);
        if (c >= bj->nchunks) continue;
        int a = c * r->chunk_rows, b = a + r->chunk_rows < bj->B ? a + r->chunk_rows : bj->B;
        int T = 1, nimg = 0, S = bj->S;
        long n_tgt = 0;
        for (int i = a; i < b; i++) {
            if (bj->smp[bj->order[i]].n > T) T = bj->smp[bj->order[i]].n;
            n_tgt += bj->row_tgt[bj->order[i]];
        }
        for (int i = a; i < b; i++) {   // rows padded at the end: targets -1, token 0
            const t2_train_sample *s = &bj->smp[bj->order[i]];
            for (int t = 0; t < T; t++) {
                size_t n = (size_t)(i - a) * T + t;
                int in = t < s->n;
                p->tok[n] = in ? s->ids[t] : 0, p->tgt[n] = in ? s->targets[t] : -1, p->isimg[n] = in ? s->is_image[t] : 0;
            }
            if (s->has_image) memcpy(p->pix + (size_t)nimg++ * 3 * S * S, s->pixels, sizeof(float) * 3 * (size_t)S * S);
        }
        // This chunk's share of the micro-batch's targets: the chunks' gradients sum to the batch's mean.
        t2_lm_train_set_loss_scale(t2_vlm_train_lm(p->vt), bj->n_tgt > 0 ? (float)((double)n_tgt / (double)bj->n_tgt) : 0.0f);
        float l = t2_vlm_train_forward(p->vt, p->tok, p->tgt, p->isimg, p->pix, nimg, b - a, T);
        if (isnan(l)) {
            snprintf(p->err, sizeof p->err, "%s", t2_last_error());
            bj->failed[j] = 1;
            return;
        }
        bj->loss[j] += (double)l * (double)n_tgt;
        const float *nll = t2_lm_train_token_nll(t2_vlm_train_lm(p->vt));
        for (int i = a; i < b && nll; i++) {
            double sum = 0;
            for (int t = 0; t < T; t++)
                if (p->tgt[(size_t)(i - a) * T + t] >= 0) sum += nll[(size_t)(i - a) * T + t];
            bj->row_nll[bj->order[i]] = sum;
        }
        t2_vlm_train_backward(p->vt);
    }
}

// ORDER[0..B) = 0..B-1 sorted by the samples' lengths, ties in row order (stable insertion sort: B is
// a batch, and qsort would need the samples through a global).
static void sort_by_length(int *order, const t2_train_sample *smp, int B) {
    for (int k = 0; k < B; k++) {
        int i = k;
        for (; i > 0 && smp[order[i - 1]].n > smp[k].n; i--) order[i] = order[i - 1];
        order[i] = k;
    }
}

static float difficulty_at(const run *r, long step) {
    if (r->diff_ramp <= 0 || step >= r->diff_ramp) return (float)r->diff_end;
    return (float)(r->diff_start + (r->diff_end - r->diff_start) * (double)step / (double)r->diff_ramp);
}

static int save_all(run *r, long step, const char *settings) {
    if (t2_train_optim_save(&r->opt, r->vt, r->ckpt, &r->rng, settings)) return -1;
    if (export_model(r) || write_curve(r)) return -1;
    if (!r->quiet) fprintf(stderr, "checkpoint: step %ld → %s, model → %s\n", step, r->ckpt, r->model_dir);
    return 0;
}

static void fmt_time(double s, char *buf, size_t cap) {
    long t = (long)s;
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
}

int t2_train_run(const t2_train_opts *o) {
    run r;
    memset(&r, 0, sizeof r);
    int rc = parse_recipe(&r, o);
    if (rc == 0) rc = setup(&r, o);
    char *settings = rc == 0 ? settings_text(&r) : NULL;
    long step = 0;
    if (rc == 0 && o->resume) {
        char *saved = NULL;
        if ((rc = t2_train_optim_load(&r.opt, r.vt, r.ckpt, &r.rng, &saved)) == 0) {
            if (strcmp(saved, settings)) rc = t2_fail("%s: the recipe's model / data / optim / seed differ from the checkpoint's; "
                                                      "train into a new directory (or undo the change)", r.ckpt);
            step = (long)r.opt.adam.step;
            sync_replicas(&r);
            if (rc == 0) rc = trim_csv(&r, r.log_csv, step, 1);
            if (rc == 0) rc = trim_csv(&r, r.fam_csv, step, 0);
            if (rc == 0 && !r.quiet) fprintf(stderr, "resuming %s at step %ld\n", r.ckpt, step);
        }
        free(saved);
    } else if (rc == 0) {
        struct stat sb;
        if (stat(r.ckpt, &sb) == 0)
            rc = t2_fail("%s exists: pass --resume to continue that run, or choose another out directory", r.ckpt);
        else rc = t2_write_file_atomic(r.log_csv, "", 0) || t2_write_file_atomic(r.fam_csv, "", 0);
    }
    if (rc == 0) {
        char rp[2600];
        snprintf(rp, sizeof rp, "%s/recipe.json", r.out);
        rc = write_json(rp, r.recipe);
    }
    FILE *log = NULL;
    if (rc == 0 && !(log = fopen(r.log_csv, "a"))) rc = t2_fail("%s: %s", r.log_csv, strerror(errno));
    if (rc == 0 && ftell(log) == 0) fprintf(log, "step,loss,lr,grad_norm,tokens_per_s,samples_per_s,elapsed_s\n");
    // family_loss.csv: per source, the mean cross-entropy per scored token over each log_every window
    FILE *flog = NULL;
    if (rc == 0 && !(flog = fopen(r.fam_csv, "a"))) rc = t2_fail("%s: %s", r.fam_csv, strerror(errno));
    if (rc == 0 && ftell(flog) == 0) fprintf(flog, "step,family,loss,tokens\n");
    enum { MAX_FAM = 64 };
    char fam_name[MAX_FAM][64];
    double fam_sum[MAX_FAM];
    long fam_tok[MAX_FAM];
    int n_fam = 0;

    int B = r.oc.batch, S = r.vt ? t2_vlm_train_image_size(r.vt) : 0, T = r.max_len;
    t2_train_sample *smp = NULL;
    int *order = NULL, *row_tgt = NULL;
    double *row_nll = NULL;
    if (rc == 0) {
        smp = t2_calloc((size_t)B, sizeof *smp);
        for (int k = 0; k < B; k++) t2_train_sample_alloc(&smp[k], T, S);
        order = t2_malloc(sizeof(int) * (size_t)B), row_tgt = t2_malloc(sizeof(int) * (size_t)B);
        row_nll = t2_calloc((size_t)B, sizeof(double));
        if (!r.quiet) {
            size_t np = t2_vlm_train_numel(r.vt);
            fprintf(stderr, "t2 train: %.2fM parameters, batch %d × %d accumulation, %ld steps, %d source(s), out %s\n",
                    np / 1e6, B, r.oc.accum, r.oc.steps, t2_train_data_sources(r.data), r.out);
            if (r.nrep > 1)   // each replica holds parameters + gradients (f32) and its activations
                fprintf(stderr, "t2 train: data-parallel over %d threads (a replica each: %.0f MB of parameters and "
                        "gradients), chunks of %d rows\n", r.nrep, 8.0 * (double)np / 1e6, r.chunk_rows);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL), sigaction(SIGTERM, &sa, NULL);
    g_stop = 0;

    long end = r.oc.steps, ran = 0;
    if (o->max_steps > 0 && step + o->max_steps < end) end = step + o->max_steps;
    double t_start = t2_now(), last_ckpt_step = (double)step;
    double win_loss = 0, win_tok = 0, win_time = 0;   // the progress line's window (since the last line)
    long win_steps = 0;
    while (rc == 0 && step < end && !g_stop) {
        double t0 = t2_now();
        for (int j = 0; j < r.nrep; j++) {
            t2_vlm_train_zero_grad(r.rep[j].vt);
            t2_vlm_train_set_vision_grad(r.rep[j].vt, !t2_train_optim_block_frozen(&r.opt, 1));
        }
        double loss_sum = 0;
        long tokens = 0;
        float diff = difficulty_at(&r, step);
        for (int a = 0; a < r.oc.accum && rc == 0; a++) {
            for (int k = 0; k < B && rc == 0; k++) rc = t2_train_data_get(r.data, step, a * B + k, diff, &smp[k]);
            if (rc) break;
            batch_job bj = {.r = &r, .smp = smp, .order = order, .row_tgt = row_tgt, .B = B, .S = S, .row_nll = row_nll};
            for (int k = 0; k < B; k++) {
                order[k] = k, row_tgt[k] = 0;
                for (int t = 0; t < smp[k].n; t++) row_tgt[k] += smp[k].targets[t] >= 0;
                bj.n_tgt += row_tgt[k];
                tokens += smp[k].n;
            }
            if (r.nrep > 1) sort_by_length(order, smp, B);   // similar lengths together: less padding
            bj.nchunks = (B + r.chunk_rows - 1) / r.chunk_rows;
            if (r.nrep > 1) t2_pool_run(r.pool, r.nrep, replica_task, &bj);
            else replica_task(&bj, 0, 0);
            double lsum = 0;
            for (int j = 0; j < r.nrep && rc == 0; j++) {
                if (bj.failed[j]) rc = t2_fail("step %ld: %s", step, r.rep[j].err);
                lsum += bj.loss[j];
            }
            if (rc) break;
            loss_sum += bj.n_tgt > 0 ? lsum / (double)bj.n_tgt : 0.0;
            for (int k = 0; k < B; k++) {
                int f = 0;
                while (f < n_fam && strcmp(fam_name[f], smp[k].family)) f++;
                if (f == n_fam && n_fam < MAX_FAM) snprintf(fam_name[n_fam], sizeof fam_name[0], "%s", smp[k].family), fam_sum[f] = 0, fam_tok[f] = 0, n_fam++;
                if (f == n_fam) continue;
                fam_sum[f] += row_nll[k], fam_tok[f] += row_tgt[k];
            }
        }
        if (rc) break;
        t2_vlm_train_blocks bl, bo;
        t2_vlm_train_get_blocks(r.vt, &bl);
        for (int j = 1; j < r.nrep; j++) {   // the replicas' gradients summed into replica 0's, in a fixed order
            t2_vlm_train_get_blocks(r.rep[j].vt, &bo);
            for (int k = 0; k < 2; k++)
                for (size_t i = 0; i < bl.n[k]; i++) bl.g[k][i] += bo.g[k][i];
        }
        if (r.oc.accum > 1) {
            t2_grad_accum_finish(bl.g[0], bl.n[0], r.oc.accum);
            if (bl.n[1]) t2_grad_accum_finish(bl.g[1], bl.n[1], r.oc.accum);
        }
        double lr = t2_lr_at(step, r.oc.warmup, r.oc.steps, r.oc.lr, r.oc.lr_min);
        float gn = t2_train_optim_step(&r.opt, r.vt, &r.oc.adam, lr, (float)r.oc.clip);
        sync_replicas(&r);
        double loss = loss_sum / r.oc.accum, dt = t2_now() - t0;
        if (!isfinite(loss) || !isfinite(gn)) { rc = t2_fail("step %ld: the loss or gradient is not finite (loss %g, |g| %g): lower optim.lr", step, loss, gn); break; }
        step++, ran++;
        double tps = tokens / dt, sps = (double)B * r.oc.accum / dt;
        fprintf(log, "%ld,%.6f,%.6g,%.6g,%.1f,%.2f,%.2f\n", step, loss, lr, gn, tps, sps, t2_now() - t_start);
        fflush(log);
        curve_add(&r, (double)step, loss);
        int log_now = step % r.log_every == 0 || step == end;
        if (log_now) {
            for (int f = 0; f < n_fam; f++)
                if (fam_tok[f]) fprintf(flog, "%ld,%s,%.6f,%ld\n", step, fam_name[f], fam_sum[f] / fam_tok[f], fam_tok[f]);
            fflush(flog);
            n_fam = 0;
        }
        win_loss += loss, win_tok += (double)tokens, win_time += dt, win_steps++;
        if (!r.quiet && log_now) {   // means over the window: one step's figures are noisy
            char eta[32];
            fmt_time((t2_now() - t_start) / ran * (r.oc.steps - step), eta, sizeof eta);
            fprintf(stderr, "step %ld/%ld  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  %.1f samples/s  eta %s\n", step,
                    r.oc.steps, win_loss / win_steps, lr, gn, win_tok / win_time,
                    (double)win_steps * B * r.oc.accum / win_time, eta);
        }
        if (log_now) win_loss = win_tok = win_time = 0, win_steps = 0;
        if (step % r.ckpt_every == 0 || step == r.oc.steps) {
            rc = save_all(&r, step, settings);
            last_ckpt_step = (double)step;
        }
        if (rc == 0 && r.valid_every > 0 && (step % r.valid_every == 0 || step == r.oc.steps)) {
            if (last_ckpt_step != (double)step) rc = export_model(&r);
            if (rc == 0) rc = validate(&r, step);
        }
    }
    if (rc == 0 && last_ckpt_step != (double)step) rc = save_all(&r, step, settings);   // stopped early or by a signal
    if (rc == 0 && g_stop && !r.quiet) fprintf(stderr, "t2 train: stopped by a signal at step %ld (resume with --resume)\n", step);
    if (log) fclose(log);
    if (flog) fclose(flog);
    if (smp) for (int k = 0; k < B; k++) t2_train_sample_free(&smp[k]);
    free(smp), free(order), free(row_tgt), free(row_nll), free(settings);
    free(r.cx), free(r.cy), free(r.valid_fams);
    t2_train_data_free(r.data);
    if (r.vt) t2_train_optim_free(&r.opt);
    for (int j = 0; j < r.nrep; j++) {
        replica *p = &r.rep[j];
        t2_vlm_train_free(p->vt);
        free(p->tok), free(p->tgt), free(p->isimg), free(p->pix);
    }
    t2_pool_free(r.pool);
    t2_tok_free(r.tok);
    cJSON_Delete(r.recipe), cJSON_Delete(r.model_cfg), cJSON_Delete(r.pre_cfg);
    return rc;
}
