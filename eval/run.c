// run.c — benchmark runs and reports (see run.h). Items run in chunks of up to EVAL_BATCH: their images
// go through the tower as one batch, each prompt is prefilled into its own KV-cache state, and the
// chunk decodes together (one batched forward per step). Each finished item is appended to
// samples.jsonl and flushed at once, so a killed
// run loses at most the items in flight and --resume picks up after the last complete line.
#include "eval/run.h"
#include "core/error.h"
#include "core/util.h"
#include "eval/chart.h"
#include "eval/metrics.h"
#include "language/generate.h"
#include "language/sampler.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVAL_BATCH 4   // items decoded together, at most

// ---------------------------------------------------------------------------------------------
// Score accumulators: overall, per task, per question type, per answer type.

typedef struct { char name[96]; double sum; int n; } acc_row;
typedef struct { acc_row *rows; int n, cap; } acc_table;
typedef struct { acc_row all; acc_table task, qtype, atype; int missing; } accs;

static void acc_add(acc_table *t, const char *name, double s) {
    if (!name) return;
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->rows[i].name, name)) { t->rows[i].sum += s; t->rows[i].n++; return; }
    if (t->n == t->cap) t->rows = realloc(t->rows, sizeof(acc_row) * (size_t)(t->cap = t->cap ? 2 * t->cap : 8));
    acc_row *r = &t->rows[t->n++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->sum = s;
    r->n = 1;
}

static void accs_add(accs *a, const t2_eval_item *it, double s) {
    a->all.sum += s;
    a->all.n++;
    acc_add(&a->task, it->task, s);
    acc_add(&a->qtype, it->question_type, s);
    acc_add(&a->atype, it->answer_type, s);
}

static void accs_free(accs *a) { free(a->task.rows); free(a->qtype.rows); free(a->atype.rows); }

static cJSON *acc_json(const acc_table *t) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < t->n; i++) {
        cJSON *r = cJSON_AddObjectToObject(o, t->rows[i].name);
        cJSON_AddNumberToObject(r, "score", 100.0 * t->rows[i].sum / t->rows[i].n);
        cJSON_AddNumberToObject(r, "n", t->rows[i].n);
    }
    return o;
}

// ---------------------------------------------------------------------------------------------
// Reports

static const char *metric_name(t2_metric m) {
    static const char *n[] = {"vqa_accuracy", "anls", "exact_match", "gsm8k_last_number", "multiple_choice"};
    return n[m];
}

static int write_results(const char *dir, const t2_eval_set *set, const accs *a, const t2_eval_opts *o,
                         double wall, const char *mode) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "format", "t2-eval-results/1");
    cJSON_AddStringToObject(r, "benchmark", t2_bench_name(set->kind));
    cJSON_AddStringToObject(r, "mode", mode);
    if (o->model_name) cJSON_AddStringToObject(r, "model", o->model_name);
    cJSON_AddStringToObject(r, "metric", set->n ? metric_name(set->items[0].metric) : "");
    cJSON *ov = cJSON_AddObjectToObject(r, "overall");
    cJSON_AddNumberToObject(ov, "score", a->all.n ? 100.0 * a->all.sum / a->all.n : 0.0);
    cJSON_AddNumberToObject(ov, "n", a->all.n);
    cJSON_AddItemToObject(r, "tasks", acc_json(&a->task));
    if (a->qtype.n) cJSON_AddItemToObject(r, "question_types", acc_json(&a->qtype));
    if (a->atype.n) cJSON_AddItemToObject(r, "answer_types", acc_json(&a->atype));
    cJSON_AddNumberToObject(r, "missing_predictions", a->missing);
    cJSON_AddNumberToObject(r, "skipped_bad_items", set->n_skipped);
    cJSON_AddNumberToObject(r, "wall_time_s", wall);
    cJSON_AddNumberToObject(r, "items_per_s", wall > 0 ? a->all.n / wall : 0.0);
    cJSON *st = cJSON_AddObjectToObject(r, "settings");
    cJSON_AddStringToObject(st, "adaptation", "none");
    cJSON_AddStringToObject(st, "decoding", "greedy");
    if (o->prompt_suffix) cJSON_AddStringToObject(st, "prompt_suffix", o->prompt_suffix);
    cJSON_AddBoolToObject(st, "ocr_tokens", o->ocr);
    cJSON_AddNumberToObject(st, "limit", o->limit);
    cJSON_AddNumberToObject(st, "batch", o->batch > 0 && o->batch < EVAL_BATCH ? o->batch : EVAL_BATCH);
    char *text = cJSON_Print(r);
    cJSON_Delete(r);
    char path[4096];
    int rc = t2_path_join(path, sizeof path, dir, "results.json");
    if (rc == 0) rc = t2_write_file_atomic(path, text, strlen(text));
    free(text);
    if (rc == 0 && a->task.n > 0) {   // chart.png: per-task scores, then overall
        const char **names = t2_malloc(sizeof(char *) * (size_t)(a->task.n + 1));
        double *v = t2_malloc(sizeof(double) * (size_t)(a->task.n + 1));
        for (int i = 0; i < a->task.n; i++) { names[i] = a->task.rows[i].name; v[i] = 100.0 * a->task.rows[i].sum / a->task.rows[i].n; }
        names[a->task.n] = "overall";
        v[a->task.n] = a->all.n ? 100.0 * a->all.sum / a->all.n : 0;
        char title[256];
        snprintf(title, sizeof title, "%s: %s", t2_bench_name(set->kind), o->model_name ? o->model_name : "predictions");
        rc = t2_path_join(path, sizeof path, dir, "chart.png");
        if (rc == 0) rc = t2_chart_bars(path, title, names, a->task.n + 1, NULL, 1, v);
        free(names);
        free(v);
    }
    return rc;
}

static void print_table(const t2_eval_set *set, const accs *a) {
    printf("\n| task | n | %s |\n|---|---|---|\n", set->n ? metric_name(set->items[0].metric) : "score");
    for (int i = 0; i < a->task.n; i++)
        printf("| %s | %d | %.2f |\n", a->task.rows[i].name, a->task.rows[i].n, 100.0 * a->task.rows[i].sum / a->task.rows[i].n);
    printf("| **overall** | %d | %.2f |\n", a->all.n, a->all.n ? 100.0 * a->all.sum / a->all.n : 0.0);
    if (a->missing) printf("\n%d item(s) had no prediction (scored 0)\n", a->missing);
}

// One samples.jsonl line.
static void write_sample(FILE *f, const t2_eval_item *it, const char *prompt, const char *pred, size_t pred_len,
                         double score, double seconds) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "id", it->id);
    cJSON_AddStringToObject(s, "task", it->task);
    if (prompt) cJSON_AddStringToObject(s, "prompt", prompt);
    char *clean = t2_utf8_sanitize(pred, pred_len);
    cJSON_AddStringToObject(s, "prediction", clean);
    free(clean);
    cJSON_AddItemToObject(s, "references", cJSON_CreateStringArray((const char *const *)it->answers, it->n_answers));
    cJSON_AddNumberToObject(s, "score", score);
    cJSON_AddStringToObject(s, "adaptation", "none");
    cJSON_AddNumberToObject(s, "time_s", seconds);
    char *line = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    fprintf(f, "%s\n", line);
    fflush(f);
    free(line);
}

// ---------------------------------------------------------------------------------------------
// Resume: the ids (and scores) of the complete lines of an earlier samples.jsonl.

typedef struct { char **ids; double *scores; int n; } done_set;

static int done_find(const done_set *d, const char *id) {
    for (int i = 0; i < d->n; i++) if (!strcmp(d->ids[i], id)) return i;
    return -1;
}

static void done_free(done_set *d) {
    for (int i = 0; i < d->n; i++) free(d->ids[i]);
    free(d->ids);
    free(d->scores);
}

// Reads PATH's complete lines; rewrites the file without a torn last line.
static int load_done(const char *path, done_set *d) {
    memset(d, 0, sizeof *d);
    if (!t2_file_exists(path)) return 0;
    size_t len;
    char *text = t2_read_file(path, &len);
    if (!text) return -1;
    size_t good = 0, cap = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (!nl) break;   // a line without its newline was being written when the run died
        *nl = 0;
        cJSON *j = cJSON_Parse(p);
        const char *id = j ? t2_json_str(j, "id", NULL) : NULL;
        if (!id) { cJSON_Delete(j); *nl = '\n'; break; }
        if ((size_t)d->n == cap) {
            cap = cap ? 2 * cap : 64;
            d->ids = realloc(d->ids, sizeof(char *) * cap);
            d->scores = realloc(d->scores, sizeof(double) * cap);
        }
        d->ids[d->n] = t2_strdup(id);
        d->scores[d->n++] = t2_json_num(j, "score", 0);
        cJSON_Delete(j);
        *nl = '\n';
        p = nl + 1;
        good = (size_t)(p - text);
    }
    int rc = 0;
    if (good != len) rc = t2_write_file_atomic(path, text, good);
    free(text);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Running

char *t2_eval_prompt(const t2_eval_item *it, const t2_eval_opts *o) {
    size_t cap = strlen(it->question) + 256 + (o->prompt_suffix ? strlen(o->prompt_suffix) : 0);
    for (int i = 0; i < it->n_choices; i++) cap += strlen(it->choices[i]) + 8;
    for (int i = 0; i < it->n_ocr; i++) cap += strlen(it->ocr_tokens[i]) + 2;
    char *p = t2_malloc(cap);
    size_t k = (size_t)snprintf(p, cap, "%s", it->question);
    if (o->ocr && it->n_ocr > 0) {
        k += (size_t)snprintf(p + k, cap - k, "\nReference OCR token: ");
        for (int i = 0; i < it->n_ocr; i++) k += (size_t)snprintf(p + k, cap - k, "%s%s", i ? ", " : "", it->ocr_tokens[i]);
    }
    for (int i = 0; i < it->n_choices; i++) k += (size_t)snprintf(p + k, cap - k, "\n%c. %s", 'A' + i, it->choices[i]);
    const char *suffix = o->prompt_suffix;
    if (!suffix) {
        if (it->metric == T2_METRIC_MC) suffix = "\nAnswer with the option's letter from the given choices directly.";
        else if (it->metric == T2_METRIC_VQA || it->metric == T2_METRIC_ANLS || (it->metric == T2_METRIC_EXACT && it->image))
            suffix = T2_EVAL_VQA_SUFFIX;
        else suffix = "";
    }
    snprintf(p + k, cap - k, "%s", suffix);
    return p;
}

// Images are encoded EVAL_IMAGE_BATCH items at a time (the tower runs their tiles as one batch):
// the rows of the coming items wait here until their item runs.
#define EVAL_IMAGE_BATCH 4
typedef struct { t2_image_rows rows[EVAL_IMAGE_BATCH]; int item[EVAL_IMAGE_BATCH]; int n; } image_cache;

static void cache_clear(image_cache *c) {
    for (int k = 0; k < c->n; k++) free(c->rows[k].rows);
    c->n = 0;
}

// The rows of item I's image: from the cache, else encoded with the next image items' in one batch.
static int take_rows(t2_vlm *m, const t2_eval_set *set, int i, int total, const done_set *done, image_cache *c,
                     t2_image_rows *out) {
    for (int k = 0; k < c->n; k++)
        if (c->item[k] == i && c->rows[k].rows) { *out = c->rows[k]; c->rows[k].rows = NULL; return 0; }
    cache_clear(c);
    t2_image ims[EVAL_IMAGE_BATCH];
    int nb = 0;
    for (int j = i; j < total && nb < EVAL_IMAGE_BATCH; j++) {
        const t2_eval_item *it = &set->items[j];
        if (!it->image || done_find(done, it->id) >= 0) continue;
        if (t2_image_load(it->image, &ims[nb], 0)) {
            if (j == i) return -1;
            break;   // that item reports its own error when it runs
        }
        c->item[nb++] = j;
    }
    int rc = t2_vlm_encode_images(m, ims, nb, c->rows);
    for (int k = 0; k < nb; k++) t2_image_free(&ims[k]);
    if (rc) {   // encode item I alone, so an error names the right image
        if (nb == 1) return -1;
        t2_image im;
        if (t2_image_load(set->items[i].image, &im, 0)) return -1;
        rc = t2_vlm_encode_images(m, &im, 1, out);
        t2_image_free(&im);
        return rc;
    }
    c->n = nb;
    *out = c->rows[0];
    c->rows[0].rows = NULL;
    return 0;
}

static void progress(const t2_eval_opts *o, int done, int total, double t0, const accs *a, double *last, int final) {
    if (!o->progress) return;
    double now = t2_now(), el = now - t0;
    int tty = isatty(2);
    if (!final && !tty && now - *last < 5.0) return;
    *last = now;
    double rate = el > 0 ? done / el : 0, eta = rate > 0 ? (total - done) / rate : 0;
    double sc = a->all.n ? 100.0 * a->all.sum / a->all.n : 0;
    if (tty) {
        int w = 30, fill = total ? (int)((double)w * done / total) : w;
        fprintf(stderr, "\r[%.*s%*s] %d/%d  %.2f it/s  ETA %.0fs  score %.2f ", fill, "##############################",
                w - fill, "", done, total, rate, eta, sc);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "eval: %d/%d items, %.2f items/s, ETA %.0f s, running score %.2f\n", done, total, rate, eta, sc);
    }
}

int t2_eval_run(t2_vlm *m, const t2_eval_set *set, const t2_eval_opts *o, t2_eval_summary *sum) {
    memset(sum, 0, sizeof *sum);
    if (t2_mkdirs(o->out_dir)) return -1;
    char path[4096];
    if (t2_path_join(path, sizeof path, o->out_dir, "samples.jsonl")) return -1;
    done_set done = {0};
    if (o->resume) {
        if (load_done(path, &done)) return -1;
    } else if (t2_file_exists(path) && unlink(path) != 0) {
        return t2_fail("%s: cannot remove the previous samples: %s", path, strerror(errno));
    }
    FILE *f = fopen(path, "a");
    if (!f) { done_free(&done); return t2_fail("%s: cannot open for writing: %s", path, strerror(errno)); }

    const t2_lm_config *cfg = t2_vlm_lm_cfg(m);
    t2_lm *lm = t2_vlm_lm(m);
    const t2_tokenizer *tok = t2_vlm_tok(m);
    t2_chat_kind kind = T2_CHAT_NONE;
    if (t2_vlm_chat_kind(m, o->template_name, &kind)) {
        if (o->template_name) { fclose(f); done_free(&done); return -1; }
        kind = T2_CHAT_NONE;   // no recognised template: the prompt as it is
    }
    // Up to EVAL_BATCH items decode together (t2_lm_forward_batch reads each weight once for all of
    // them), as many as fit ~2 GB of f32 KV cache.
    int n_ctx = cfg->max_position < 4096 ? cfg->max_position : 4096;
    double kv = 2.0 * cfg->n_layers * n_ctx * cfg->n_kv_heads * cfg->head_dim * sizeof(float);
    int nb = (int)(2e9 / kv);
    int want = o->batch > 0 && o->batch < EVAL_BATCH ? o->batch : EVAL_BATCH;
    nb = nb < 1 ? 1 : nb > want ? want : nb;
    t2_lm_state *sts[EVAL_BATCH] = {0};
    for (int k = 0; k < nb; k++)
        if (!(sts[k] = t2_lm_state_new(lm, n_ctx, 512))) {
            for (int q = 0; q < k; q++) t2_lm_state_free(sts[q]);
            fclose(f);
            done_free(&done);
            return -1;
        }
    int V = cfg->vocab_size;
    float *logits = t2_malloc(sizeof(float) * (size_t)V * nb), *blog = t2_malloc(sizeof(float) * (size_t)V * nb);
    t2_sampler *smp = t2_sampler_new(V, t2_sampler_defaults());
    int total = o->limit > 0 && o->limit < set->n ? o->limit : set->n, rc = 0;
    image_cache cache = {0};
    accs a = {0};
    double t0 = t2_now(), last = 0;
    for (int i = 0; i < total && rc == 0;) {
        // The next chunk: up to nb items not finished in an earlier run.
        int idx[EVAL_BATCH], nc = 0;
        for (; i < total && nc < nb; i++) {
            int di = done_find(&done, set->items[i].id);
            if (di >= 0) accs_add(&a, &set->items[i], done.scores[di]);
            else idx[nc++] = i;
        }
        if (nc == 0) break;
        double tc = t2_now();
        t2_gen gens[EVAL_BATCH];
        t2_gen_params gps[EVAL_BATCH];
        t2_prompt ps[EVAL_BATCH];
        char *shown[EVAL_BATCH] = {0};
        int started = 0, prepared = 0, H = cfg->hidden_size;
        for (int k = 0; k < nc && rc == 0; k++) {   // the prompts (images from the batch cache)
            const t2_eval_item *it = &set->items[idx[k]];
            char *q = t2_eval_prompt(it, o), *text = NULL, *content = t2_malloc(strlen(q) + 16);
            t2_image_rows rows = {0};
            int n_img = 0;
            memset(&ps[k], 0, sizeof ps[k]);
            if (it->image) {
                rc = take_rows(m, set, idx[k], total, &done, &cache, &rows);
                n_img = rc == 0;
            }
            if (rc == 0) {
                sprintf(content, "%s%s", n_img ? "<image>\n" : "", q);
                if (kind != T2_CHAT_NONE) {
                    t2_chat_msg msg = {"user", content};
                    if (!(text = t2_chat_render(kind, &msg, 1, t2_tok_bos_text(tok)))) rc = -1;
                }
                if (rc == 0) rc = t2_vlm_prompt_text(m, text ? text : content, kind == T2_CHAT_NONE, &rows, n_img, &ps[k]);
            }
            if (rc == 0 && ps[k].n + 1 >= n_ctx)
                rc = t2_fail("the prompt has %d positions, more than the %d-token context", ps[k].n, n_ctx);
            if (rc == 0) {
                shown[k] = text ? text : content;   // the prompt as shown to the model, for samples.jsonl
                if (text) free(content);
                content = text = NULL;
                prepared++;
            } else {
                t2_error_prefix("item %d (id %s): ", idx[k] + 1, it->id);
            }
            free(rows.rows);   // taken over from the cache
            free(text);
            free(content);
            free(q);
        }
        // Prefill: the chunk's prompts as one batch when they fit one block, else one by one.
        int sum_n = 0, any_img = 0;
        for (int k = 0; k < prepared; k++) { sum_n += ps[k].n; any_img |= ps[k].embeds != NULL; }
        for (int k = 0; k < prepared; k++) t2_lm_state_rewind(sts[k], 0);
        if (rc == 0 && prepared > 1 && sum_n <= (n_ctx < 512 ? n_ctx : 512)) {   // the states' block size
            int lens[EVAL_BATCH];
            int32_t *ids = t2_malloc(sizeof(int32_t) * (size_t)sum_n);
            uint8_t *ise = t2_malloc((size_t)sum_n);
            float *emb = any_img ? t2_malloc(sizeof(float) * (size_t)sum_n * H) : NULL;
            for (int k = 0, t = 0; k < prepared; t += ps[k].n, k++) {
                lens[k] = ps[k].n;
                memcpy(ids + t, ps[k].ids, sizeof(int32_t) * (size_t)ps[k].n);
                memcpy(ise + t, ps[k].is_embed, (size_t)ps[k].n);
                if (emb && ps[k].embeds) memcpy(emb + (size_t)t * H, ps[k].embeds, sizeof(float) * (size_t)ps[k].n * H);
            }
            rc = t2_lm_forward_batch(lm, sts, prepared, lens, ids, emb, emb ? ise : NULL, logits);
            free(ids);
            free(ise);
            free(emb);
        } else {
            for (int k = 0; k < prepared && rc == 0; k++)
                rc = t2_lm_forward(lm, sts[k], ps[k].ids, ps[k].embeds, ps[k].is_embed, ps[k].n, logits + (size_t)k * V, 0);
        }
        for (int k = 0; k < prepared && rc == 0; k++, started++) {
            const t2_eval_item *it = &set->items[idx[k]];
            int n_predict = o->n_predict > 0 ? o->n_predict : it->metric == T2_METRIC_GSM8K ? 256 : 32;
            memset(&gps[k], 0, sizeof gps[k]);
            gps[k].n_predict = n_predict < n_ctx - ps[k].n ? n_predict : n_ctx - ps[k].n;
            if (kind != T2_CHAT_NONE && t2_chat_stop_text(kind)) gps[k].stops[gps[k].n_stops++] = t2_chat_stop_text(kind);
            t2_gen_begin(&gens[k], lm, tok, ps[k].ids, ps[k].n, &gps[k]);
        }
        for (int k = 0; k < nc; k++) t2_prompt_free(&ps[k]);
        // Decode the chunk together: each step feeds every unfinished item's token in one batch.
        while (rc == 0) {
            t2_lm_state *feed[EVAL_BATCH];
            int32_t next[EVAL_BATCH];
            int who[EVAL_BATCH], nf = 0;
            for (int k = 0; k < nc; k++) {
                int32_t tkn;
                if (!gens[k].done && !t2_gen_step(&gens[k], smp, logits + (size_t)k * V, &tkn)) {
                    feed[nf] = sts[k];
                    next[nf] = tkn;
                    who[nf++] = k;
                }
            }
            if (nf == 0) break;
            rc = t2_lm_forward_batch(lm, feed, nf, NULL, next, NULL, NULL, blog);
            for (int q = 0; q < nf && rc == 0; q++)
                memcpy(logits + (size_t)who[q] * V, blog + (size_t)q * V, sizeof(float) * V);
        }
        double each = (t2_now() - tc) / nc;
        for (int k = 0; k < started; k++) {
            t2_gen_result res;
            t2_gen_end(&gens[k], &res);
            if (rc == 0) {
                const t2_eval_item *it = &set->items[idx[k]];
                double sc = t2_eval_score(it, res.text);
                accs_add(&a, it, sc);
                write_sample(f, it, shown[k], res.text, res.len, sc, each);
            }
            t2_gen_result_free(&res);
        }
        for (int k = 0; k < nc; k++) free(shown[k]);
        progress(o, i, total, t0, &a, &last, 0);
    }
    fclose(f);
    double wall = t2_now() - t0;
    if (rc == 0) {
        progress(o, total, total, t0, &a, &last, 1);
        rc = write_results(o->out_dir, set, &a, o, wall, "run");
        if (rc == 0) print_table(set, &a);
        sum->n = a.all.n;
        sum->score = a.all.n ? 100.0 * a.all.sum / a.all.n : 0;
        sum->wall_s = wall;
        sum->items_per_s = wall > 0 ? a.all.n / wall : 0;
    }
    cache_clear(&cache);
    accs_free(&a);
    done_free(&done);
    t2_sampler_free(smp);
    free(logits);
    free(blog);
    for (int k = 0; k < nb; k++) t2_lm_state_free(sts[k]);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Scoring a predictions file

// Reads PREDICTIONS into parallel arrays of (id, answer).
static int load_predictions(const char *path, char ***ids, char ***answers, int *n) {
    size_t len;
    char *text = t2_read_file(path, &len);
    if (!text) return -1;
    *n = 0;
    int cap = 0, rc = 0;
    const char *p = text;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    cJSON *arr = *p == '[' ? cJSON_Parse(text) : NULL;
    if (*p == '[' && !arr) { free(text); return t2_fail("%s: invalid JSON", path); }
    int line_no = 0;
    char *save = NULL, *line = arr ? NULL : strtok_r(text, "\n", &save);
    for (int i = 0;; i++) {
        cJSON *j;
        if (arr) {
            if (i >= cJSON_GetArraySize(arr)) break;
            j = cJSON_GetArrayItem(arr, i);
        } else {
            if (!line) break;
            line_no++;
            j = cJSON_Parse(line);
            if (!j) { rc = t2_fail("%s: line %d is not JSON", path, line_no); break; }
        }
        char idbuf[64];
        const cJSON *idj = cJSON_GetObjectItemCaseSensitive(j, "question_id");
        if (!idj) idj = cJSON_GetObjectItemCaseSensitive(j, "id");
        if (!idj) idj = cJSON_GetObjectItemCaseSensitive(j, "doc_id");
        const char *id = cJSON_IsString(idj) ? idj->valuestring : NULL;
        if (cJSON_IsNumber(idj)) { snprintf(idbuf, sizeof idbuf, "%.0f", idj->valuedouble); id = idbuf; }
        const cJSON *aj = cJSON_GetObjectItemCaseSensitive(j, "answer");
        if (!aj) aj = cJSON_GetObjectItemCaseSensitive(j, "prediction");
        if (!aj) aj = cJSON_GetObjectItemCaseSensitive(j, "filtered_resps");
        if (cJSON_IsArray(aj)) aj = cJSON_GetArrayItem(aj, 0);
        if (!id || !cJSON_IsString(aj)) {
            rc = arr ? t2_fail("%s: entry %d needs \"question_id\" (or \"id\") and \"answer\"", path, i + 1)
                     : t2_fail("%s: line %d needs \"id\" and \"prediction\"", path, line_no);
            if (!arr) cJSON_Delete(j);
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            *ids = realloc(*ids, sizeof(char *) * (size_t)cap);
            *answers = realloc(*answers, sizeof(char *) * (size_t)cap);
        }
        (*ids)[*n] = t2_strdup(id);
        (*answers)[*n] = t2_strdup(aj->valuestring);
        (*n)++;
        if (!arr) { cJSON_Delete(j); line = strtok_r(NULL, "\n", &save); }
    }
    cJSON_Delete(arr);
    free(text);
    return rc;
}

int t2_eval_score_file(const t2_eval_set *set, const char *predictions, const t2_eval_opts *o, t2_eval_summary *sum) {
    memset(sum, 0, sizeof *sum);
    char **ids = NULL, **answers = NULL;
    int n = 0;
    double t0 = t2_now();
    int rc = load_predictions(predictions, &ids, &answers, &n);
    FILE *f = NULL;
    char path[4096];
    if (rc == 0 && o->out_dir) {
        if (t2_mkdirs(o->out_dir) || t2_path_join(path, sizeof path, o->out_dir, "samples.jsonl")) rc = -1;
        else if (!(f = fopen(path, "w"))) rc = t2_fail("%s: cannot open for writing: %s", path, strerror(errno));
    }
    accs a = {0};
    int total = o->limit > 0 && o->limit < set->n ? o->limit : set->n;
    for (int i = 0; rc == 0 && i < total; i++) {
        const t2_eval_item *it = &set->items[i];
        int k = -1;
        for (int j = 0; j < n && k < 0; j++) if (!strcmp(ids[j], it->id)) k = j;
        double s = k >= 0 ? t2_eval_score(it, answers[k]) : 0.0;
        if (k < 0) a.missing++;
        accs_add(&a, it, s);
        if (f) write_sample(f, it, NULL, k >= 0 ? answers[k] : "", k >= 0 ? strlen(answers[k]) : 0, s, 0);
    }
    if (f) fclose(f);
    if (rc == 0) {
        double wall = t2_now() - t0;
        if (o->out_dir) rc = write_results(o->out_dir, set, &a, o, wall, "score");
        if (rc == 0) print_table(set, &a);
        sum->n = a.all.n;
        sum->score = a.all.n ? 100.0 * a.all.sum / a.all.n : 0;
        sum->wall_s = wall;
    }
    for (int j = 0; j < n; j++) { free(ids[j]); free(answers[j]); }
    free(ids);
    free(answers);
    accs_free(&a);
    return rc;
}

int t2_eval_compare(const char *const *dirs, int n, const char *chart) {
    cJSON **res = t2_calloc((size_t)n, sizeof(cJSON *));
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char path[4096];
        if (t2_path_join(path, sizeof path, dirs[i], "results.json") || !(res[i] = t2_json_load(path))) rc = -1;
    }
    if (rc == 0) {
        printf("| task |");
        for (int i = 0; i < n; i++) printf(" %s |", dirs[i]);
        printf("\n|---|");
        for (int i = 0; i < n; i++) printf("---|");
        printf("\n");
        // The union of task names, in first-seen order.
        const char *names[256];
        int nn = 0;
        for (int i = 0; i < n; i++) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(res[i], "tasks"), *e;
            cJSON_ArrayForEach(e, t) {
                int seen = 0;
                for (int k = 0; k < nn; k++) if (!strcmp(names[k], e->string)) seen = 1;
                if (!seen && nn < 256) names[nn++] = e->string;
            }
        }
        for (int k = 0; k <= nn; k++) {
            printf("| %s |", k < nn ? names[k] : "**overall**");
            for (int i = 0; i < n; i++) {
                const cJSON *e = k < nn ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res[i], "tasks"), names[k])
                                        : cJSON_GetObjectItemCaseSensitive(res[i], "overall");
                if (e) printf(" %.2f (n %d) |", t2_json_num(e, "score", 0), (int)t2_json_num(e, "n", 0));
                else printf(" – |");
            }
            printf("\n");
        }
        if (chart) {
            double *v = t2_malloc(sizeof(double) * (size_t)n * (nn + 1));
            const char **gn = t2_malloc(sizeof(char *) * (size_t)(nn + 1));
            for (int k = 0; k <= nn; k++) gn[k] = k < nn ? names[k] : "overall";
            for (int i = 0; i < n; i++)
                for (int k = 0; k <= nn; k++) {
                    const cJSON *e = k < nn ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res[i], "tasks"), names[k])
                                            : cJSON_GetObjectItemCaseSensitive(res[i], "overall");
                    v[(size_t)i * (nn + 1) + k] = e ? t2_json_num(e, "score", 0) : -1;
                }
            rc = t2_chart_bars(chart, "t2 eval --compare", gn, nn + 1, (const char *const *)dirs, n, v);
            free(v);
            free(gn);
        }
    }
    for (int i = 0; i < n; i++) cJSON_Delete(res[i]);
    free(res);
    return rc;
}
