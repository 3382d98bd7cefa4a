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
#include "experts/cem.h"
#include "language/generate.h"
#include "language/sampler.h"
#include <errno.h>
#include <math.h>
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
    if (t->n == t->cap) t->rows = t2_realloc(t->rows, sizeof(acc_row) * (size_t)(t->cap = t->cap ? 2 * t->cap : 8));
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

// The adaptation of a run: the confusion of the first pass (per task, how often each label was
// chosen) and the pass times (the paper's Table 3: first-pass cost relative to the second pass).
typedef struct { char task[96], label[T2_ADAPT_NAME]; int n; } conf_cell;
typedef struct {
    const char *strategy;
    conf_cell *cells;
    int n, cap, items;
    double first_s, second_s, apply_s;
} adapt_stats;

static void adapt_add(adapt_stats *s, const t2_eval_item *it, const t2_adapt_choice *c, double second) {
    s->items++;
    s->first_s += c->first_pass_s;
    s->apply_s += c->apply_s;
    s->second_s += second;
    if (strcmp(c->strategy, "prompt") && strcmp(c->strategy, "classifier")) return;   // no first pass
    const char *task = it->task ? it->task : "", *label = c->label[0] ? c->label : "(none)";
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->cells[i].task, task) && !strcmp(s->cells[i].label, label)) { s->cells[i].n++; return; }
    if (s->n == s->cap) s->cells = t2_realloc(s->cells, sizeof(conf_cell) * (size_t)(s->cap = s->cap ? 2 * s->cap : 16));
    conf_cell *c2 = &s->cells[s->n++];
    snprintf(c2->task, sizeof c2->task, "%s", task);
    snprintf(c2->label, sizeof c2->label, "%s", label);
    c2->n = 1;
}

static cJSON *adapt_json(const adapt_stats *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "strategy", s->strategy ? s->strategy : "none");
    cJSON_AddNumberToObject(o, "items", s->items);
    cJSON_AddNumberToObject(o, "first_pass_ms_mean", s->items ? 1e3 * s->first_s / s->items : 0);
    cJSON_AddNumberToObject(o, "second_pass_ms_mean", s->items ? 1e3 * s->second_s / s->items : 0);
    cJSON_AddNumberToObject(o, "apply_ms_mean", s->items ? 1e3 * s->apply_s / s->items : 0);
    cJSON_AddNumberToObject(o, "first_to_second_ratio", s->second_s > 0 ? s->first_s / s->second_s : 0);
    if (s->n) {
        cJSON *cm = cJSON_AddObjectToObject(o, "confusion");
        for (int i = 0; i < s->n; i++) {
            cJSON *row = cJSON_GetObjectItemCaseSensitive(cm, s->cells[i].task);
            if (!row) row = cJSON_AddObjectToObject(cm, s->cells[i].task);
            cJSON_AddNumberToObject(row, s->cells[i].label, s->cells[i].n);
        }
    }
    return o;
}

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
                         double wall, const char *mode, const adapt_stats *ad) {
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
    cJSON_AddStringToObject(st, "adaptation", ad && ad->strategy ? ad->strategy : "none");
    cJSON_AddStringToObject(st, "decoding", "greedy");
    if (ad && ad->strategy) cJSON_AddItemToObject(r, "adaptation", adapt_json(ad));
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
                         double score, double seconds, const t2_adapt_choice *c) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "id", it->id);
    cJSON_AddStringToObject(s, "task", it->task);
    if (prompt) cJSON_AddStringToObject(s, "prompt", prompt);
    char *clean = t2_utf8_sanitize(pred, pred_len);
    cJSON_AddStringToObject(s, "prediction", clean);
    free(clean);
    cJSON_AddItemToObject(s, "references", cJSON_CreateStringArray((const char *const *)it->answers, it->n_answers));
    cJSON_AddNumberToObject(s, "score", score);
    if (c) {
        cJSON *ad = cJSON_AddObjectToObject(s, "adaptation");
        t2_adapt_choice_json(ad, c);
        cJSON_AddNumberToObject(ad, "second_pass_ms", round(seconds * 1e5) / 100);
    } else {
        cJSON_AddStringToObject(s, "adaptation", "none");
    }
    cJSON_AddNumberToObject(s, "time_s", seconds);
    char *line = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    fprintf(f, "%s\n", line);
    fflush(f);
    free(line);
}

// ---------------------------------------------------------------------------------------------
// Items by id (resume, scoring a predictions file): the set's ids sorted once, then binary search.

typedef struct { const char *id; int item; } id_ref;

static int id_ref_cmp(const void *a, const void *b) { return strcmp(((const id_ref *)a)->id, ((const id_ref *)b)->id); }

static id_ref *id_index(const t2_eval_set *set) {
    id_ref *ix = t2_malloc(sizeof *ix * (size_t)(set->n ? set->n : 1));
    for (int i = 0; i < set->n; i++) ix[i] = (id_ref){set->items[i].id, i};
    qsort(ix, (size_t)set->n, sizeof *ix, id_ref_cmp);
    return ix;
}

// The item whose id is ID, or -1.
static int id_find(const id_ref *ix, int n, const char *id) {
    id_ref key = {id, -1};
    const id_ref *r = bsearch(&key, ix, (size_t)n, sizeof *ix, id_ref_cmp);
    return r ? r->item : -1;
}

// ---------------------------------------------------------------------------------------------
// Resume: the scores of the items an earlier run's samples.jsonl finished (NAN: not finished).

typedef struct { double *score; int n; } done_set;

static int is_done(const done_set *d, int item) { return d->score && !isnan(d->score[item]); }

static void done_free(done_set *d) { free(d->score); }

// Reads PATH's complete lines; rewrites the file without a torn last line (a line without its newline
// was being written when the run died). Any other line must be a sample of an item of SET, once, with
// a score in [0, 1]: otherwise the file belongs to another run, and resuming it would mix the two.
static int load_done(const char *path, const t2_eval_set *set, done_set *d) {
    memset(d, 0, sizeof *d);
    d->score = t2_malloc(sizeof(double) * (size_t)(set->n ? set->n : 1));
    for (int i = 0; i < set->n; i++) d->score[i] = NAN;
    if (!t2_file_exists(path)) return 0;
    size_t len;
    char *text = t2_read_file(path, &len);
    if (!text) return -1;
    id_ref *ix = id_index(set);
    size_t good = 0;
    int rc = 0, line = 0;
    for (char *p = text; *p && rc == 0;) {
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        line++;
        cJSON *j = cJSON_Parse(p);
        const char *id = j ? t2_json_str(j, "id", NULL) : NULL;
        cJSON *sc = j ? cJSON_GetObjectItemCaseSensitive(j, "score") : NULL;
        int item = id ? id_find(ix, set->n, id) : -1;
        if (!id) rc = t2_fail("%s: line %d is not a sample (a JSON object with an \"id\")", path, line);
        else if (item < 0)
            rc = t2_fail("%s: line %d: id '%s' is not in the data: these samples are another benchmark's (use another --out, "
                         "or run without --resume)", path, line, id);
        else if (!isnan(d->score[item])) rc = t2_fail("%s: line %d: id '%s' appears twice", path, line, id);
        else if (!cJSON_IsNumber(sc) || !(sc->valuedouble >= 0 && sc->valuedouble <= 1))
            rc = t2_fail("%s: line %d (id '%s'): \"score\" is not a number in [0, 1]", path, line, id);
        else d->score[item] = sc->valuedouble, d->n++;
        cJSON_Delete(j);
        *nl = '\n';
        p = nl + 1;
        good = (size_t)(p - text);
    }
    free(ix);
    if (rc == 0 && good != len) rc = t2_write_file_atomic(path, text, good);
    free(text);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Running

char *t2_eval_prompt_text(const t2_eval_item *it, const t2_eval_opts *o, int with_image, t2_chat_kind chat,
                          const char *bos_text) {
    char *q = t2_eval_prompt(it, o);
    size_t n = strlen(q) + 16;
    char *content = t2_malloc(n);
    snprintf(content, n, "%s%s", with_image ? "<image>\n" : "", q);
    free(q);
    if (chat == T2_CHAT_NONE) return content;
    t2_chat_msg msg = {"user", content};
    char *text = t2_chat_render(chat, &msg, 1, bos_text);
    free(content);
    return text;
}

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
        if (!it->image || is_done(done, j)) continue;
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

// The dispatcher of an --adapt strategy, with its fixed choice applied (FIXED) when it has one; a
// fewshot: spec over an examples file runs its search here first.
static t2_dispatcher *open_dispatcher(t2_vlm *m, const t2_adapt_spec *spec, t2_chat_kind kind, const t2_eval_opts *o,
                                      t2_adapt_choice *fixed) {
    t2_dispatch_opts dop = t2_dispatch_defaults();
    dop.chat = kind;
    if (o->first_max_tokens > 0) dop.first_max_tokens = o->first_max_tokens;
    t2_dispatcher *d = t2_dispatcher_new(m, spec, &dop);
    if (!d) return NULL;
    int rc = 0;
    if (t2_dispatcher_needs_fewshot(d)) {
        t2_eval_set shots;
        if ((rc = t2_eval_load(T2_BENCH_JSONL, spec->arg, NULL, NULL, 0, &shots)) == 0) {
            t2_fewshot_opts fo = t2_fewshot_defaults();
            fo.progress = o->progress;
            t2_fewshot_result fr;
            rc = t2_eval_fewshot(m, d, &shots, o, &fo, &fr, NULL);
            t2_eval_set_free(&shots);
        }
    }
    if (rc == 0 && !t2_adapt_per_request(spec)) rc = t2_dispatcher_choose(d, "", NULL, 0, fixed);
    if (rc) { t2_dispatcher_free(d); return NULL; }
    return d;
}

static void print_adapt(const adapt_stats *s) {
    printf("\nadaptation %s: first pass %.1f ms, second pass %.1f ms per item (ratio %.3f), apply %.2f ms\n", s->strategy,
           s->items ? 1e3 * s->first_s / s->items : 0, s->items ? 1e3 * s->second_s / s->items : 0,
           s->second_s > 0 ? s->first_s / s->second_s : 0, s->items ? 1e3 * s->apply_s / s->items : 0);
    if (!s->n) return;
    printf("\n| task | chosen label: n |\n|---|---|\n");
    for (int i = 0; i < s->n; i++) {
        int first = 1;
        for (int j = 0; j < i; j++) if (!strcmp(s->cells[j].task, s->cells[i].task)) first = 0;
        if (!first) continue;
        printf("| %s |", s->cells[i].task);
        for (int j = i; j < s->n; j++)
            if (!strcmp(s->cells[j].task, s->cells[i].task)) printf(" %s: %d", s->cells[j].label, s->cells[j].n);
        printf(" |\n");
    }
}

int t2_eval_run(t2_vlm *m, const t2_eval_set *set, const t2_eval_opts *o, t2_eval_summary *sum) {
    memset(sum, 0, sizeof *sum);
    if (t2_mkdirs(o->out_dir)) return -1;
    char path[4096];
    if (t2_path_join(path, sizeof path, o->out_dir, "samples.jsonl")) return -1;
    done_set done = {0};
    if (o->resume) {
        if (load_done(path, set, &done)) { done_free(&done); return -1; }
    } else if (t2_file_exists(path) && unlink(path) != 0) {
        return t2_fail("%s: cannot remove the previous samples: %s", path, strerror(errno));
    }
    // results.json and chart.png describe a finished run: the one being replaced or resumed is not,
    // so they go now and come back when this run finishes (a failed run leaves no stale score).
    static const char *const finished[] = {"results.json", "chart.png"};
    for (int i = 0; i < 2; i++) {
        char old[4096];
        if (t2_path_join(old, sizeof old, o->out_dir, finished[i])) { done_free(&done); return -1; }
        if (t2_file_exists(old) && unlink(old) != 0) {
            done_free(&done);
            return t2_fail("%s: cannot remove: %s", old, strerror(errno));
        }
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
    // Adaptation: a fixed choice is applied once; a per-request strategy runs its first pass per item
    // (items then go one at a time, each under its own weights).
    t2_adapt_spec spec;
    t2_dispatcher *dsp = NULL;
    adapt_stats ast = {0};
    t2_adapt_choice fixed;
    memset(&fixed, 0, sizeof fixed);
    if (t2_adapt_parse(o->adapt, &spec) || (spec.kind != T2_ADAPT_NONE && !(dsp = open_dispatcher(m, &spec, kind, o, &fixed)))) {
        fclose(f);
        done_free(&done);
        return -1;
    }
    int per_request = t2_adapt_per_request(&spec);
    if (dsp) ast.strategy = spec.text;
    // Up to EVAL_BATCH items decode together (t2_lm_forward_batch reads each weight once for all of
    // them), as many as fit ~2 GB of f32 KV cache.
    int n_ctx = cfg->max_position < 4096 ? cfg->max_position : 4096;
    double kv = 2.0 * cfg->n_layers * n_ctx * cfg->n_kv_heads * cfg->head_dim * sizeof(float);
    int nb = (int)(2e9 / kv);
    int want = per_request ? 1 : o->batch > 0 && o->batch < EVAL_BATCH ? o->batch : EVAL_BATCH;
    nb = nb < 1 ? 1 : nb > want ? want : nb;
    t2_lm_state *sts[EVAL_BATCH] = {0};
    for (int k = 0; k < nb; k++)
        if (!(sts[k] = t2_lm_state_new(lm, n_ctx, 512))) {
            for (int q = 0; q < k; q++) t2_lm_state_free(sts[q]);
            fclose(f);
            done_free(&done);
            t2_dispatcher_free(dsp);
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
            if (is_done(&done, i)) accs_add(&a, &set->items[i], done.score[i]);
            else idx[nc++] = i;
        }
        if (nc == 0) break;
        double tc = t2_now();
        t2_gen gens[EVAL_BATCH];
        t2_gen_params gps[EVAL_BATCH];
        t2_prompt ps[EVAL_BATCH];
        char *shown[EVAL_BATCH] = {0};
        t2_adapt_choice choice[EVAL_BATCH];
        int started = 0, prepared = 0, H = cfg->hidden_size;
        memset(ps, 0, sizeof ps);   // all nc are freed below, also those after an item that failed
        for (int k = 0; k < nc && rc == 0; k++) {   // the prompts (images from the batch cache)
            const t2_eval_item *it = &set->items[idx[k]];
            char *text = NULL;
            t2_image_rows rows = {0};
            int n_img = 0;
            memset(&ps[k], 0, sizeof ps[k]);
            if (it->image) {
                rc = take_rows(m, set, idx[k], total, &done, &cache, &rows);
                n_img = rc == 0;
            }
            choice[k] = fixed;
            if (rc == 0 && per_request) {   // pass 1: the request as the dispatch prompt quotes it (no suffix)
                t2_eval_opts bare = *o;
                bare.prompt_suffix = "";
                char *req = t2_eval_prompt(it, &bare);
                rc = t2_dispatcher_choose(dsp, req, &rows, n_img, &choice[k]);
                free(req);
            }
            if (rc == 0) {
                if (!(text = t2_eval_prompt_text(it, o, n_img, kind, t2_tok_bos_text(tok)))) rc = -1;
                if (rc == 0) rc = t2_vlm_prompt_text(m, text, kind == T2_CHAT_NONE, &rows, n_img, &ps[k]);
            }
            if (rc == 0 && ps[k].n + 1 >= n_ctx)
                rc = t2_fail("the prompt has %d positions, more than the %d-token context", ps[k].n, n_ctx);
            if (rc == 0) {
                shown[k] = text;   // the prompt as shown to the model, for samples.jsonl
                text = NULL;
                prepared++;
            } else {
                t2_error_prefix("item %d (id %s): ", idx[k] + 1, it->id);
            }
            free(rows.rows);   // taken over from the cache
            free(text);
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
        if (per_request) each -= choice[0].first_pass_s + choice[0].apply_s;   // the second pass alone
        for (int k = 0; k < started; k++) {
            t2_gen_result res;
            t2_gen_end(&gens[k], &res);
            if (rc == 0) {
                const t2_eval_item *it = &set->items[idx[k]];
                double sc = t2_eval_score(it, res.text);
                accs_add(&a, it, sc);
                if (dsp) adapt_add(&ast, it, &choice[k], each);
                write_sample(f, it, shown[k], res.text, res.len, sc, each, dsp ? &choice[k] : NULL);
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
        rc = write_results(o->out_dir, set, &a, o, wall, "run", dsp ? &ast : NULL);
        if (rc == 0 && !o->no_table) print_table(set, &a);
        if (rc == 0 && dsp) print_adapt(&ast);
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
    free(ast.cells);
    t2_dispatcher_free(dsp);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Scoring a predictions file

// One prediction: PATH's entry / line J as (id, answer); returns 0, or fails naming where.
static int prediction_of(const char *path, const cJSON *j, int arr, int where, char **id, char **answer) {
    const cJSON *idj = cJSON_GetObjectItemCaseSensitive(j, "question_id");
    if (!idj) idj = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (!idj) idj = cJSON_GetObjectItemCaseSensitive(j, "doc_id");
    const cJSON *aj = cJSON_GetObjectItemCaseSensitive(j, "answer");
    if (!aj) aj = cJSON_GetObjectItemCaseSensitive(j, "prediction");
    if (!aj) aj = cJSON_GetObjectItemCaseSensitive(j, "filtered_resps");
    if (cJSON_IsArray(aj)) aj = cJSON_GetArrayItem(aj, 0);
    *id = t2_eval_id_string(idj);   // numeric ids as the benchmark readers write them
    if (!*id || !cJSON_IsString(aj)) {
        free(*id);
        return arr ? t2_fail("%s: entry %d needs \"question_id\" (or \"id\") and \"answer\"", path, where)
                   : t2_fail("%s: line %d needs \"id\" and \"prediction\"", path, where);
    }
    *answer = t2_strdup(aj->valuestring);
    return 0;
}

// Reads PREDICTIONS (a JSON array, or JSONL: blank lines skipped, lines counted as an editor does)
// into parallel arrays of (id, answer).
static int load_predictions(const char *path, char ***ids, char ***answers, int *n) {
    size_t len;
    char *text = t2_read_file(path, &len);
    if (!text) return -1;
    *n = 0;
    int cap = 0, rc = 0;
    char *p = text;
    if (!strncmp(p, "\xEF\xBB\xBF", 3)) p += 3;   // a UTF-8 byte-order mark
    const char *q = p;
    while (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t') q++;
    cJSON *arr = NULL;
    if (*q == '[' && !(arr = cJSON_Parse(q))) { free(text); return t2_fail("%s: invalid JSON", path); }
    int count = arr ? cJSON_GetArraySize(arr) : 0, line_no = 0;
    for (int i = 0; rc == 0; i++) {
        char *id, *answer;
        if (arr) {
            if (i >= count) break;
            rc = prediction_of(path, cJSON_GetArrayItem(arr, i), 1, i + 1, &id, &answer);
        } else {
            if (!*p) break;
            char *nl = strchr(p, '\n'), *next = nl ? nl + 1 : p + strlen(p);
            if (nl) *nl = 0;
            line_no++;
            char *line = p;
            p = next;
            size_t ll = strlen(line);
            while (ll && (line[ll - 1] == '\r' || line[ll - 1] == ' ' || line[ll - 1] == '\t')) line[--ll] = 0;
            while (*line == ' ' || *line == '\t') line++;
            if (!*line) continue;
            cJSON *j = cJSON_Parse(line);
            if (!j) { rc = t2_fail("%s: line %d is not JSON", path, line_no); break; }
            rc = prediction_of(path, j, 0, line_no, &id, &answer);
            cJSON_Delete(j);
        }
        if (rc) break;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            *ids = t2_realloc(*ids, sizeof(char *) * (size_t)cap);
            *answers = t2_realloc(*answers, sizeof(char *) * (size_t)cap);
        }
        (*ids)[*n] = id;
        (*answers)[*n] = answer;
        (*n)++;
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
    // each prediction to its item: unknown ids and second predictions of an item are counted and
    // reported; no prediction for any item is an error (the wrong file, or ids of another form)
    int total = o->limit > 0 && o->limit < set->n ? o->limit : set->n;
    int *pred = t2_malloc(sizeof(int) * (size_t)(set->n ? set->n : 1));
    for (int i = 0; i < set->n; i++) pred[i] = -1;
    int unknown = 0, twice = 0, matched = 0;
    const char *first_unknown = NULL, *first_twice = NULL;
    if (rc == 0) {
        id_ref *ix = id_index(set);
        for (int j = 0; j < n; j++) {
            int item = id_find(ix, set->n, ids[j]);
            if (item < 0) { if (!unknown++) first_unknown = ids[j]; }
            else if (pred[item] >= 0) { if (!twice++) first_twice = ids[j]; }
            else pred[item] = j, matched += item < total;
        }
        free(ix);
        if (unknown) fprintf(stderr, "eval score: %s: %d prediction(s) name no item of the data (the first: id '%s'); ignored\n",
                             predictions, unknown, first_unknown);
        if (twice) fprintf(stderr, "eval score: %s: %d item(s) predicted more than once (the first: id '%s'); the first "
                                   "prediction counts\n", predictions, twice, first_twice);
        if (matched == 0 && total > 0)
            rc = t2_fail("%s: none of its %d prediction(s) names an item of the data (%d items; the first id there: '%s')",
                         predictions, n, total, set->items[0].id);
    }
    FILE *f = NULL;
    char path[4096];
    if (rc == 0 && o->out_dir) {
        if (t2_mkdirs(o->out_dir) || t2_path_join(path, sizeof path, o->out_dir, "samples.jsonl")) rc = -1;
        else if (!(f = fopen(path, "w"))) rc = t2_fail("%s: cannot open for writing: %s", path, strerror(errno));
    }
    accs a = {0};
    for (int i = 0; rc == 0 && i < total; i++) {
        const t2_eval_item *it = &set->items[i];
        int k = pred[i];
        double s = k >= 0 ? t2_eval_score(it, answers[k]) : 0.0;
        if (k < 0) a.missing++;
        accs_add(&a, it, s);
        if (f) write_sample(f, it, NULL, k >= 0 ? answers[k] : "", k >= 0 ? strlen(answers[k]) : 0, s, 0, NULL);
    }
    if (f) fclose(f);
    if (rc == 0) {
        double wall = t2_now() - t0;
        if (o->out_dir) rc = write_results(o->out_dir, set, &a, o, wall, "score", NULL);
        if (rc == 0 && !o->no_table) print_table(set, &a);
        sum->n = a.all.n;
        sum->score = a.all.n ? 100.0 * a.all.sum / a.all.n : 0;
        sum->wall_s = wall;
    }
    for (int j = 0; j < n; j++) { free(ids[j]); free(answers[j]); }
    free(ids);
    free(answers);
    free(pred);
    accs_free(&a);
    return rc;
}

// A score entry {"score": 0..100, "n": ≥ 0} as write_results writes it.
static int score_ok(const cJSON *e) {
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(e, "score"), *n = cJSON_GetObjectItemCaseSensitive(e, "n");
    return cJSON_IsNumber(sc) && sc->valuedouble >= 0 && sc->valuedouble <= 100 && cJSON_IsNumber(n) && n->valuedouble >= 0 &&
           n->valuedouble <= 2e9;
}

// PATH (a results.json) is what t2 eval writes: the format, an overall score, per-task scores.
static int results_ok(const char *path, const cJSON *r) {
    const char *fmt = t2_json_str(r, "format", NULL);
    if (!fmt || strcmp(fmt, "t2-eval-results/1")) return t2_fail("%s: not a t2 eval results file (\"format\" is not t2-eval-results/1)", path);
    if (!score_ok(cJSON_GetObjectItemCaseSensitive(r, "overall")))
        return t2_fail("%s: \"overall\" needs a \"score\" in [0, 100] and an \"n\" ≥ 0", path);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "tasks"), *e;
    if (!cJSON_IsObject(t)) return t2_fail("%s: \"tasks\" is not an object", path);
    cJSON_ArrayForEach(e, t) if (!score_ok(e)) return t2_fail("%s: task '%s' needs a \"score\" in [0, 100] and an \"n\" ≥ 0", path, e->string);
    return 0;
}

// NAME as a markdown table cell: '|' escaped, line breaks as spaces.
static void print_cell(const char *name) {
    for (const char *c = name; *c; c++) {
        if (*c == '|') fputs("\\|", stdout);
        else if (*c == '\n' || *c == '\r') putchar(' ');
        else putchar(*c);
    }
}

int t2_eval_compare(const char *const *dirs, int n, const char *chart) {
    cJSON **res = t2_calloc((size_t)n, sizeof(cJSON *));
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char path[4096];
        if (t2_path_join(path, sizeof path, dirs[i], "results.json") || !(res[i] = t2_json_load(path)) || results_ok(path, res[i]))
            rc = -1;
    }
    if (rc == 0) {
        printf("| task |");
        for (int i = 0; i < n; i++) printf(" "), print_cell(dirs[i]), printf(" |");
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
            printf("| "), print_cell(k < nn ? names[k] : "**overall**"), printf(" |");
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

// ---------------------------------------------------------------------------------------------
// Few-shot adaptation: CEM over the mixing weights (experts/cem.h) with the examples as fitness.

t2_fewshot_opts t2_fewshot_defaults(void) {
    t2_fewshot_opts o = {0};
    o.population = 32;
    o.generations = 100;
    o.elite = 0.2f;
    o.init_std = 0.5f;
    o.seed = 1;
    return o;
}

#define FEWSHOT_MAX_ANSWER 64   // reference-answer tokens scored for the tie-break

typedef struct {
    t2_vlm *m;
    t2_dispatcher *d;
    const t2_eval_set *shots;
    t2_chat_kind kind;
    const t2_eval_opts *eo;
    t2_prompt *ps;                 // (n) the prompts, images spliced in (the weights do not change them)
    int32_t *ans;                  // (n, FEWSHOT_MAX_ANSWER) reference-answer ids
    int *n_ans;
    int n, n_ctx, K, per_matrix;
    const t2_expert *ex[T2_ADAPT_MAX_MIX];
    t2_lm_state *st;
    float *logits, *all;           // (vocab), (FEWSHOT_MAX_ANSWER, vocab)
    t2_sampler *smp;
    const t2_fewshot_opts *fo;
    double t0;
} fewshot_ctx;

// log softmax(LOGITS(V))[ID]
static double log_prob(const float *logits, int V, int id) {
    float mx = logits[0];
    for (int v = 1; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
    double z = 0;
    for (int v = 0; v < V; v++) z += exp((double)logits[v] - mx);
    return (double)logits[id] - mx - log(z);
}

// Accuracy (mean score) and mean per-token answer log-likelihood over the examples under expert E.
static int shots_score(fewshot_ctx *c, const t2_expert *e, double *acc, double *ll) {
    if (t2_svf_apply(t2_dispatcher_adapter(c->d), e)) return -1;
    t2_lm *lm = t2_vlm_lm(c->m);
    int V = t2_vlm_lm_cfg(c->m)->vocab_size;
    double sa = 0, sl = 0;
    for (int i = 0; i < c->n; i++) {
        const t2_eval_item *it = &c->shots->items[i];
        t2_prompt *p = &c->ps[i];
        t2_lm_state_rewind(c->st, 0);
        if (t2_lm_forward(lm, c->st, p->ids, p->embeds, p->is_embed, p->n, c->logits, 0)) return -1;
        const int32_t *a = c->ans + (size_t)i * FEWSHOT_MAX_ANSWER;
        int na = c->n_ans[i];
        double lp = na > 0 ? log_prob(c->logits, V, a[0]) : 0;
        t2_gen_params gp = {0};
        int n_predict = c->eo->n_predict > 0 ? c->eo->n_predict : it->metric == T2_METRIC_GSM8K ? 256 : 32;
        gp.n_predict = n_predict < c->n_ctx - p->n - FEWSHOT_MAX_ANSWER ? n_predict : c->n_ctx - p->n - FEWSHOT_MAX_ANSWER;
        if (c->kind != T2_CHAT_NONE && t2_chat_stop_text(c->kind)) gp.stops[gp.n_stops++] = t2_chat_stop_text(c->kind);
        t2_gen_result res;
        int rc = t2_generate(lm, c->st, t2_vlm_tok(c->m), c->smp, c->logits, p->ids, p->n, &gp, &res);
        if (rc == 0) sa += t2_eval_score(it, res.text);
        t2_gen_result_free(&res);
        if (rc) return -1;
        if (na > 1) {   // teacher-forced: the answer after the prompt
            t2_lm_state_rewind(c->st, p->n);
            if (t2_lm_forward(lm, c->st, a, NULL, NULL, na - 1, c->all, 1)) return -1;
            for (int t = 1; t < na; t++) lp += log_prob(c->all + (size_t)(t - 1) * V, V, a[t]);
        }
        sl += na > 0 ? lp / na : 0;
    }
    *acc = c->n ? sa / c->n : 0;
    *ll = c->n ? sl / c->n : 0;
    return 0;
}

static int fewshot_fitness(void *ctx, const float *x, double *f, double *tie) {
    fewshot_ctx *c = ctx;
    t2_expert *mix = t2_expert_mix(c->ex, c->K, x, c->per_matrix);
    if (!mix) return -1;
    int rc = shots_score(c, mix, f, tie);
    t2_expert_free(mix);
    return rc;
}

static void fewshot_progress(void *ctx, int gen, int gens, double best, double gbest, double gmean, double msd) {
    fewshot_ctx *c = ctx;
    if (!c->fo->progress) return;
    fprintf(stderr, "fewshot: generation %d/%d  best accuracy %.3f  this generation best %.3f mean %.3f  mean std %.4f  (%.1f s)\n",
            gen, gens, best, gbest, gmean, msd, t2_now() - c->t0);
}

int t2_eval_fewshot(t2_vlm *m, t2_dispatcher *d, const t2_eval_set *shots, const t2_eval_opts *eo,
                    const t2_fewshot_opts *fo, t2_fewshot_result *res, t2_expert **out) {
    memset(res, 0, sizeof *res);
    if (out) *out = NULL;
    t2_registry *reg = t2_dispatcher_registry(d);
    if (!reg || !t2_dispatcher_adapter(d)) return t2_fail("few-shot adaptation needs the model's expert registry");
    if (shots->n < 1) return t2_fail("few-shot adaptation needs at least one example");
    fewshot_ctx c = {.m = m, .d = d, .shots = shots, .eo = eo, .fo = fo, .per_matrix = fo->per_matrix};
    // The experts mixed.
    int rc = 0;
    if (fo->experts) {
        const char *p = fo->experts;
        while (*p && rc == 0) {
            size_t n = strcspn(p, ",");
            char name[T2_ADAPT_NAME];
            snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name - 1 ? n : sizeof name - 1), p);
            int i = t2_registry_find(reg, name), twice = 0;
            for (int k = 0; k < c.K; k++) twice |= !strcmp(res->names[k], name);
            if (i < 0) rc = t2_fail("%s: no expert named '%s'", t2_registry_path(reg), name);
            else if (twice) rc = t2_fail("few-shot: --experts names '%s' twice", name);
            else if (c.K == T2_ADAPT_MAX_MIX) rc = t2_fail("few-shot: at most %d experts", T2_ADAPT_MAX_MIX);
            else if (!(c.ex[c.K] = t2_registry_expert(reg, i))) rc = -1;
            else snprintf(res->names[c.K++], T2_ADAPT_NAME, "%s", name);
            p += n + (p[n] == ',');
        }
    } else {
        for (int i = 0; i < t2_registry_count(reg) && rc == 0 && c.K < T2_ADAPT_MAX_MIX; i++) {
            const t2_registry_entry *en = t2_registry_at(reg, i);
            if (!en->label[0]) continue;
            if (!(c.ex[c.K] = t2_registry_expert(reg, i))) rc = -1;
            else snprintf(res->names[c.K++], T2_ADAPT_NAME, "%s", en->name);
        }
    }
    if (rc) return -1;
    if (c.K < 1) return t2_fail("%s: no experts to mix (give --experts or dispatch entries)", t2_registry_path(reg));
    res->K = c.K;
    // The prompts, once.
    const t2_lm_config *cfg = t2_vlm_lm_cfg(m);
    const t2_tokenizer *tok = t2_vlm_tok(m);
    if (!tok) return t2_fail("%s has no tokenizer", t2_vlm_dir(m));
    if (t2_vlm_chat_kind(m, eo->template_name, &c.kind)) {
        if (eo->template_name) return -1;
        c.kind = T2_CHAT_NONE;
    }
    c.n_ctx = cfg->max_position < 4096 ? cfg->max_position : 4096;
    c.ps = t2_calloc((size_t)shots->n, sizeof(t2_prompt));
    c.ans = t2_calloc((size_t)shots->n * FEWSHOT_MAX_ANSWER, sizeof(int32_t));
    c.n_ans = t2_calloc((size_t)shots->n, sizeof(int));
    for (int i = 0; i < shots->n && rc == 0; i++, c.n++) {
        const t2_eval_item *it = &shots->items[i];
        t2_image_rows rows = {0};
        int n_img = 0;
        if (it->image) {
            t2_image im;
            if ((rc = t2_image_load(it->image, &im, 0))) break;
            rc = t2_vlm_encode_images(m, &im, 1, &rows);
            t2_image_free(&im);
            if (rc) break;
            n_img = 1;
        }
        char *text = t2_eval_prompt_text(it, eo, n_img, c.kind, t2_tok_bos_text(tok));
        if (!text) rc = -1;
        if (rc == 0) rc = t2_vlm_prompt_text(m, text, c.kind == T2_CHAT_NONE, &rows, n_img, &c.ps[i]);
        if (rc == 0 && c.ps[i].n + FEWSHOT_MAX_ANSWER + 8 >= c.n_ctx) rc = t2_fail("the prompt has %d positions: too long", c.ps[i].n);
        if (rc == 0 && it->n_answers > 0) {
            const char *ref = it->answers[0];
            char gold[64];
            if (it->metric == T2_METRIC_GSM8K && t2_gsm8k_gold(ref, gold, sizeof gold) > 0) ref = gold;
            int na = t2_tok_encode(tok, ref, 0, 0, c.ans + (size_t)i * FEWSHOT_MAX_ANSWER, FEWSHOT_MAX_ANSWER);
            if (na < 0) rc = -1;
            c.n_ans[i] = na > FEWSHOT_MAX_ANSWER ? FEWSHOT_MAX_ANSWER : na < 0 ? 0 : na;
        }
        if (rc) t2_error_prefix("few-shot example %d (id %s): ", i + 1, it->id);
        free(rows.rows);
        free(text);
    }
    if (rc == 0 && !(c.st = t2_lm_state_new(t2_vlm_lm(m), c.n_ctx, FEWSHOT_MAX_ANSWER > 512 ? FEWSHOT_MAX_ANSWER : 512))) rc = -1;
    t2_cem_result cr = {0};
    if (rc == 0) {
        c.logits = t2_malloc(sizeof(float) * (size_t)cfg->vocab_size);
        c.all = t2_malloc(sizeof(float) * (size_t)cfg->vocab_size * FEWSHOT_MAX_ANSWER);
        c.smp = t2_sampler_new(cfg->vocab_size, t2_sampler_defaults());
        c.t0 = t2_now();
        double bll;
        rc = shots_score(&c, NULL, &res->base_accuracy, &bll);
        if (rc == 0 && fo->progress)
            fprintf(stderr, "fewshot: %d examples, %d experts, base accuracy %.3f (log-likelihood %.3f)\n", c.n, c.K,
                    res->base_accuracy, bll);
        int count = t2_svf_count(c.ex[0]->svf);
        t2_cem_opts co = t2_cem_defaults(c.per_matrix ? c.K * count : c.K);
        co.population = fo->population > 0 ? fo->population : 32;
        co.generations = fo->generations > 0 ? fo->generations : 100;
        co.elite = fo->elite > 0 ? fo->elite : 0.2f;
        co.init_std = fo->init_std > 0 ? fo->init_std : 0.5f;
        co.init_mean = 1.0f / c.K;
        co.patience = fo->patience;
        co.seed = fo->seed;
        co.progress = fewshot_progress;
        co.ctx = &c;
        if (rc == 0) rc = t2_cem_run(&co, fewshot_fitness, &c, &cr);
        if (rc == 0) {
            res->accuracy = cr.best_fitness;
            res->loglik = cr.best_tie;
            res->generations = cr.generations;
            res->evaluations = cr.evaluations;
            res->n_examples = c.n;
            res->seconds = t2_now() - c.t0;
            for (int k = 0; k < c.K; k++) {
                double s = 0;
                int nm = c.per_matrix ? count : 1;
                for (int i = 0; i < nm; i++) s += cr.best[(size_t)k * nm + i];
                res->alpha[k] = (float)(s / nm);
            }
            // The result: an ordinary expert, its settings recording the search.
            t2_expert *best = t2_expert_mix(c.ex, c.K, cr.best, c.per_matrix);
            if (!best) rc = -1;
            else {
                cJSON *sj = cJSON_CreateObject();
                cJSON_AddStringToObject(sj, "strategy", "fewshot");
                cJSON *mj = cJSON_AddObjectToObject(sj, "mixture");
                for (int k = 0; k < c.K; k++) cJSON_AddNumberToObject(mj, res->names[k], res->alpha[k]);
                if (c.per_matrix) {
                    cJSON *pm = cJSON_AddArrayToObject(sj, "alpha_per_matrix");
                    for (int k = 0; k < c.K * count; k++) cJSON_AddItemToArray(pm, cJSON_CreateNumber(cr.best[k]));
                }
                cJSON_AddBoolToObject(sj, "per_matrix", c.per_matrix);
                cJSON_AddNumberToObject(sj, "examples", c.n);
                cJSON_AddNumberToObject(sj, "accuracy", res->accuracy);
                cJSON_AddNumberToObject(sj, "base_accuracy", res->base_accuracy);
                cJSON_AddNumberToObject(sj, "loglik", res->loglik);
                cJSON_AddNumberToObject(sj, "population", co.population);
                cJSON_AddNumberToObject(sj, "generations", res->generations);
                cJSON_AddNumberToObject(sj, "elite", co.elite);
                cJSON_AddNumberToObject(sj, "init_std", co.init_std);
                char *settings = cJSON_PrintUnformatted(sj);
                cJSON_Delete(sj);
                t2_expert_describe(best, "fewshot", settings, 100.0 * res->accuracy);
                free(settings);
                if (out) {
                    *out = t2_expert_mix(c.ex, c.K, cr.best, c.per_matrix);
                    t2_expert_describe(*out, "fewshot", best->settings, best->score);
                }
                const char *names[T2_ADAPT_MAX_MIX];
                for (int k = 0; k < c.K; k++) names[k] = res->names[k];
                t2_dispatcher_set_fixed(d, best, names, res->alpha, c.K);
            }
        }
        t2_svf_apply(t2_dispatcher_adapter(d), NULL);   // the base until the dispatcher applies its choice
    }
    t2_cem_result_free(&cr);
    for (int i = 0; c.ps && i < shots->n; i++) t2_prompt_free(&c.ps[i]);
    free(c.ps);
    free(c.ans);
    free(c.n_ans);
    t2_lm_state_free(c.st);
    free(c.logits);
    free(c.all);
    if (c.smp) t2_sampler_free(c.smp);
    return rc;
}
