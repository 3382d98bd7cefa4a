// bench.c — benchmark readers: TextVQA, VQAv2 / OK-VQA (questions + annotations), DocVQA, the
// project's generic JSONL, GSM8K and ARC, each read into one list of t2_eval_item with its metric,
// and t2_eval_score, which scores a prediction with that metric (eval/metrics.h).
// Not here: the metrics themselves (metrics.c), running a model over a set (run.c), reports.
//
// Every item is validated (keys present, types, answer counts, image files on disk, ids unique);
// a bad item is an error naming the file, the item index (0-based; JSONL also the line) and its id,
// or with skip_bad it is counted in n_skipped (the first message kept). File-level faults (cannot
// read, not JSON, no item list, annotations file missing) are always errors, and so is a benchmark
// with no items left.
//
// Images: relative paths resolve against IMAGES, or, when IMAGES is NULL, against the data file's
// directory. TextVQA: IMAGES/<image_id>.jpg. VQAv2 / OK-VQA: IMAGES/COCO_<subtype>_%012d.jpg, the
// subtype from the questions file's "data_subtype" (else its name; default val2014).
//
// Generic JSONL metric rule, first that applies: a "metric" field ("vqa" | "anls" | "exact" |
// "gsm8k" | "mc"); "choices" present → mc; "task" math/gsm8k → gsm8k; "task" docvqa/infovqa → anls;
// exactly 10 answers or "task" textvqa/vqav2/okvqa/vqa → vqa; otherwise exact match. For mc the gold
// answer (answers[0], or "answer") may be a letter A.., a label "1".., or the text of a choice; it
// is stored as the letter. For gsm8k a gold with "####" is reduced to its number.
#include "eval/bench.h"
#include "core/error.h"
#include "core/util.h"
#include "eval/metrics.h"
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_CAP 4096

static const char *const bench_names[T2_BENCH_COUNT] = {"textvqa", "vqav2", "okvqa", "docvqa",
                                                         "jsonl", "gsm8k", "arc"};

int t2_bench_parse(const char *name) {
    for (int k = 0; name && k < T2_BENCH_COUNT; k++)
        if (strcmp(name, bench_names[k]) == 0) return k;
    return -1;
}

const char *t2_bench_name(t2_bench_kind k) { return (k >= 0 && k < T2_BENCH_COUNT) ? bench_names[k] : "?"; }

// ---------------------------------------------------------------------------------------------
// A string → (pointer, index) hash map, open addressing: ids seen (duplicates) and annotations.

typedef struct { char *key; const void *ptr; int idx; } map_slot;
typedef struct { map_slot *slots; size_t cap, n; } strmap;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;                 // FNV-1a
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static map_slot *map_find(const strmap *m, const char *key) {
    if (!m->cap) return NULL;
    for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->slots[i].key) return NULL;
        if (strcmp(m->slots[i].key, key) == 0) return &m->slots[i];
    }
}

static void map_put(strmap *m, const char *key, const void *ptr, int idx) {
    if (2 * (m->n + 1) > m->cap) {                       // grow: load factor ≤ 1/2
        strmap g = {t2_calloc(m->cap ? 2 * m->cap : 64, sizeof(map_slot)), m->cap ? 2 * m->cap : 64, m->n};
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].key) continue;
            size_t j = hash_str(m->slots[i].key) & (g.cap - 1);
            while (g.slots[j].key) j = (j + 1) & (g.cap - 1);
            g.slots[j] = m->slots[i];
        }
        free(m->slots);
        *m = g;
    }
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->slots[i].key) i = (i + 1) & (m->cap - 1);
    m->slots[i] = (map_slot){t2_strdup(key), ptr, idx};
    m->n++;
}

static void map_free(strmap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->slots[i].key);
    free(m->slots);
    *m = (strmap){0};
}

// ---------------------------------------------------------------------------------------------
// The reading context: where we are (file, item, line) and the item-level error of the moment.

typedef struct {
    const char *file;        // the data file, for messages
    const char *ann_file;    // VQAv2 / OK-VQA: the annotations file, for messages
    const char *images;      // directory images resolve against
    int skip_bad;
    t2_eval_set *set;
    int cap;
    strmap ids;              // id → item index
    char why[1024];          // the current item's fault
} reader;

// Record why the current item is bad; always -1.
static int bad(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(reader *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    return -1;
}

static void item_free(t2_eval_item *it) {
    free(it->id); free(it->image); free(it->question); free(it->task);
    free(it->question_type); free(it->answer_type);
    for (int i = 0; i < it->n_answers; i++) free(it->answers[i]);
    for (int i = 0; i < it->n_choices; i++) free(it->choices[i]);
    for (int i = 0; i < it->n_ocr; i++) free(it->ocr_tokens[i]);
    free(it->answers); free(it->choices); free(it->ocr_tokens);
    memset(it, 0, sizeof *it);
}

char *t2_eval_id_string(const cJSON *v) {
    char buf[64];
    if (cJSON_IsString(v) && v->valuestring[0]) return t2_strdup(v->valuestring);
    if (!cJSON_IsNumber(v)) return NULL;
    double d = v->valuedouble;
    if (fabs(d) < 9.2e18 && d == floor(d)) snprintf(buf, sizeof buf, "%lld", (long long)d);   // in long long's range
    else snprintf(buf, sizeof buf, "%.17g", d);
    return t2_strdup(buf);
}

// Finish item INDEX (LINE > 0 for JSONL): on success append IT (ids must be unique); on failure
// (ok != 0, reason in r->why) either fail naming the file/item/id or count it as skipped.
static int finish(reader *r, int ok, t2_eval_item *it, int index, int line, const char *id) {
    if (ok == 0 && it->id) {
        const map_slot *s = map_find(&r->ids, it->id);
        if (s) ok = bad(r, "duplicate id (also item %d)", s->idx);
    }
    if (ok != 0) {
        char where[256];
        int n = line > 0 ? snprintf(where, sizeof where, "line %d, item %d", line, index)
                         : snprintf(where, sizeof where, "item %d", index);
        if (id && n > 0 && (size_t)n < sizeof where) snprintf(where + n, sizeof where - (size_t)n, " (id %s)", id);
        item_free(it);
        if (!r->skip_bad) return t2_fail("%s: %s: %s", r->file, where, r->why);
        if (r->set->n_skipped++ == 0) {
            size_t cap = strlen(r->file) + strlen(where) + strlen(r->why) + 8;
            r->set->first_skip_reason = t2_malloc(cap);
            snprintf(r->set->first_skip_reason, cap, "%s: %s: %s", r->file, where, r->why);
        }
        return 0;
    }
    if (r->set->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        t2_eval_item *g = realloc(r->set->items, (size_t)r->cap * sizeof *g);
        if (!g) { item_free(it); return t2_fail("%s: out of memory at item %d", r->file, index); }
        r->set->items = g;
    }
    if (it->id) map_put(&r->ids, it->id, NULL, r->set->n);
    r->set->items[r->set->n++] = *it;
    memset(it, 0, sizeof *it);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Field readers: each fills the item or says what is wrong (bad()).

static int get_str(reader *r, const cJSON *o, const char *key, char **out, int required) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return required ? bad(r, "missing \"%s\"", key) : 0;
    if (!cJSON_IsString(v)) return bad(r, "\"%s\" is not a string", key);
    if (required && !v->valuestring[0]) return bad(r, "\"%s\" is empty", key);
    size_t n = strlen(v->valuestring), at = t2_utf8_check(v->valuestring, n);
    if (at < n) return bad(r, "\"%s\" is not valid UTF-8 (byte %zu)", key, at);
    *out = t2_strdup(v->valuestring);
    return 0;
}

// Id from KEY (string or integer): required.
static int get_id(reader *r, const cJSON *o, const char *key, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return bad(r, "missing \"%s\"", key);
    if (!(*out = t2_eval_id_string(v))) return bad(r, "\"%s\" is not a non-empty string or a number", key);
    return 0;
}

// An array of strings (numbers too when ALLOW_NUM) into a malloc'd list; WANT > 0 = exact count.
static int str_list(reader *r, const cJSON *v, const char *what, int allow_num, int want, char ***out, int *n) {
    if (!cJSON_IsArray(v)) return bad(r, "\"%s\" is not an array", what);
    int m = cJSON_GetArraySize(v);
    if (want > 0 && m != want) return bad(r, "\"%s\" has %d entries, expected %d", what, m, want);
    char **l = t2_calloc((size_t)(m ? m : 1), sizeof *l);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, v) {
        char *s = cJSON_IsString(x) ? t2_strdup(x->valuestring) : (allow_num && cJSON_IsNumber(x)) ? t2_eval_id_string(x) : NULL;
        size_t at = s ? t2_utf8_check(s, strlen(s)) : 0;
        if (!s || s[at]) {
            for (int j = 0; j < i; j++) free(l[j]);
            free(l);
            free(s);
            return s ? bad(r, "\"%s\"[%d] is not valid UTF-8 (byte %zu)", what, i, at) : bad(r, "\"%s\"[%d] is not a string", what, i);
        }
        l[i++] = s;
    }
    *out = l;
    *n = m;
    return 0;
}

// The item's answers: KEY an array of strings, at least one (exactly WANT when WANT > 0).
static int get_answers(reader *r, const cJSON *o, const char *key, int allow_num, int want, t2_eval_item *it) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return bad(r, "missing \"%s\"", key);
    if (str_list(r, v, key, allow_num, want, &it->answers, &it->n_answers)) return -1;
    if (it->n_answers == 0) return bad(r, "\"%s\" is empty", key);
    return 0;
}

// Optional OCR tokens ("ocr_tokens": [str]).
static int get_ocr(reader *r, const cJSON *o, t2_eval_item *it) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "ocr_tokens");
    if (!v || cJSON_IsNull(v)) return 0;
    return str_list(r, v, "ocr_tokens", 1, 0, &it->ocr_tokens, &it->n_ocr);
}

// Resolve NAME against the images directory (absolute names as they are) and check the file exists.
static int set_image(reader *r, t2_eval_item *it, const char *name) {
    char path[PATH_CAP];
    int n = name[0] == '/' ? snprintf(path, sizeof path, "%s", name) : snprintf(path, sizeof path, "%s/%s", r->images, name);
    if (n < 0 || (size_t)n >= sizeof path) return bad(r, "image path too long: %s", name);
    if (!t2_file_exists(path)) return bad(r, "image not found: %s", path);
    it->image = t2_strdup(path);
    return 0;
}

// "text after ####" of a GSM8K solution as the gold number; the text itself when it has no "####".
static int gsm8k_gold(reader *r, t2_eval_item *it) {
    char buf[256];
    if (!strstr(it->answers[0], "####")) return 0;
    if (t2_gsm8k_gold(it->answers[0], buf, sizeof buf) == 0) return bad(r, "no number after \"####\" in the answer");
    free(it->answers[0]);
    it->answers[0] = t2_strdup(buf);
    return 0;
}

// The gold answer of a multiple-choice item as a letter: a letter A.. in range, a label "1".. in
// range, or the text of one choice. LABELS (may be NULL) are the file's own labels, in order.
static int mc_gold(reader *r, t2_eval_item *it, const char *gold, char *const *labels) {
    int k = -1;
    for (int i = 0; labels && i < it->n_choices && k < 0; i++)
        if (strcmp(labels[i], gold) == 0) k = i;
    if (k < 0 && gold[0] >= 'A' && gold[0] < 'A' + it->n_choices && !gold[1]) k = gold[0] - 'A';
    if (k < 0 && gold[0] >= 'a' && gold[0] < 'a' + it->n_choices && !gold[1]) k = gold[0] - 'a';
    if (k < 0 && isdigit((unsigned char)gold[0])) {
        char *end;
        long v = strtol(gold, &end, 10);
        if (!*end && v >= 1 && v <= it->n_choices) k = (int)v - 1;
    }
    for (int i = 0; i < it->n_choices && k < 0; i++)
        if (strcmp(it->choices[i], gold) == 0) k = i;
    if (k < 0) return bad(r, "answer \"%s\" names none of the %d choices", gold, it->n_choices);
    char letter[2] = {(char)('A' + k), 0};
    for (int i = 0; i < it->n_answers; i++) free(it->answers[i]);
    free(it->answers);
    it->answers = t2_malloc(sizeof *it->answers);
    it->answers[0] = t2_strdup(letter);
    it->n_answers = 1;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Whole-file JSON formats: TextVQA and DocVQA ({"data": [...]}).

static int textvqa_item(reader *r, const cJSON *o, t2_eval_item *it) {
    char *image_id = NULL;
    if (!cJSON_IsObject(o)) return bad(r, "not an object");
    if (get_id(r, o, "question_id", &it->id) || get_str(r, o, "question", &it->question, 1) ||
        get_answers(r, o, "answers", 0, 10, it) || get_ocr(r, o, it) || get_id(r, o, "image_id", &image_id))
        return free(image_id), -1;
    char name[PATH_CAP];
    snprintf(name, sizeof name, "%s.jpg", image_id);
    free(image_id);
    if (set_image(r, it, name)) return -1;
    it->task = t2_strdup("textvqa");
    it->metric = T2_METRIC_VQA;
    return 0;
}

static int docvqa_item(reader *r, const cJSON *o, t2_eval_item *it) {
    char *image = NULL;
    if (!cJSON_IsObject(o)) return bad(r, "not an object");
    if (get_id(r, o, "questionId", &it->id) || get_str(r, o, "question", &it->question, 1) ||
        get_answers(r, o, "answers", 1, 0, it) || get_str(r, o, "image", &image, 1))
        return free(image), -1;
    int rc = set_image(r, it, image);
    free(image);
    if (rc) return -1;
    const cJSON *qt = cJSON_GetObjectItemCaseSensitive(o, "question_types");
    if (cJSON_IsArray(qt) && cJSON_IsString(cJSON_GetArrayItem(qt, 0)))
        it->question_type = t2_strdup(cJSON_GetArrayItem(qt, 0)->valuestring);
    it->task = t2_strdup("docvqa");
    it->metric = T2_METRIC_ANLS;
    return 0;
}

static int load_data_list(reader *r, t2_bench_kind kind) {
    cJSON *doc = t2_json_load(r->file);
    if (!doc) return -1;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    if (!cJSON_IsArray(data)) {
        cJSON_Delete(doc);
        return t2_fail("%s: no \"data\" array (not a %s file)", r->file, t2_bench_name(kind));
    }
    int i = 0, rc = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, data) {
        t2_eval_item it = {0};
        r->why[0] = 0;
        int ok = kind == T2_BENCH_TEXTVQA ? textvqa_item(r, o, &it) : docvqa_item(r, o, &it);
        char *id = it.id ? t2_strdup(it.id) : t2_eval_id_string(cJSON_GetObjectItemCaseSensitive(
                                                  o, kind == T2_BENCH_TEXTVQA ? "question_id" : "questionId"));
        rc = finish(r, ok, &it, i++, 0, id);
        free(id);
        if (rc) break;
    }
    cJSON_Delete(doc);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// VQAv2 / OK-VQA: a questions file plus an annotations file, joined on question_id.

// The official annotations name beside QUESTIONS: drop "OpenEnded_" / "MultipleChoice_", and
// "questions" → "annotations" (v2_OpenEnded_mscoco_val2014_questions.json →
// v2_mscoco_val2014_annotations.json; OpenEnded_mscoco_val2014_questions.json →
// mscoco_val2014_annotations.json).
static int annotations_beside(const char *questions, char *out, size_t cap) {
    const char *slash = strrchr(questions, '/');
    const char *base = slash ? slash + 1 : questions;
    char name[1024], tmp[1100];
    if (snprintf(name, sizeof name, "%s", base) >= (int)sizeof name) return t2_fail("path too long: %s", questions);
    static const char *const drop[] = {"OpenEnded_", "MultipleChoice_"};
    for (int d = 0; d < 2; d++) {
        char *p = strstr(name, drop[d]);
        if (p) memmove(p, p + strlen(drop[d]), strlen(p + strlen(drop[d])) + 1);
    }
    char *q = strstr(name, "questions");
    if (!q) return t2_fail("%s: cannot derive the annotations file name (no \"questions\" in it); pass the "
                           "annotations file", questions);
    *q = 0;
    snprintf(tmp, sizeof tmp, "%sannotations%s", name, q + strlen("questions"));
    int n = slash ? snprintf(out, cap, "%.*s/%s", (int)(slash - questions), questions, tmp)
                  : snprintf(out, cap, "%s", tmp);
    if (n < 0 || (size_t)n >= cap) return t2_fail("path too long: %s", questions);
    if (!t2_file_exists(out))
        return t2_fail("%s: annotations not found beside it (looked for %s); pass the annotations file",
                       questions, out);
    return 0;
}

// COCO split of the images: the questions file's "data_subtype", else a split named in its file name.
static const char *coco_subtype(const cJSON *doc, const char *file, char *buf, size_t cap) {
    const char *s = t2_json_str(doc, "data_subtype", NULL);
    if (s && *s && strlen(s) < cap && !strchr(s, '/')) return snprintf(buf, cap, "%s", s), buf;
    static const char *const splits[] = {"train2014", "val2014", "test-dev2015", "test2015"};
    for (int i = 0; i < 4; i++)
        if (strstr(file, splits[i])) return i == 2 ? "test2015" : splits[i];
    return "val2014";
}

static int vqa_item(reader *r, const cJSON *q, const strmap *ann, const char *subtype, t2_eval_item *it,
                    const char *task) {
    if (!cJSON_IsObject(q)) return bad(r, "not an object");
    if (get_id(r, q, "question_id", &it->id) || get_str(r, q, "question", &it->question, 1)) return -1;
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(q, "image_id");
    if (!img) return bad(r, "missing \"image_id\"");
    if (!cJSON_IsNumber(img) || img->valuedouble < 0 || img->valuedouble >= 1e15 || img->valuedouble != floor(img->valuedouble))
        return bad(r, "\"image_id\" is not a non-negative integer");
    const map_slot *s = map_find(ann, it->id);
    if (!s) return bad(r, "no annotation for question_id %s in %s", it->id, r->ann_file);
    const cJSON *a = s->ptr;
    const cJSON *answers = cJSON_GetObjectItemCaseSensitive(a, "answers");
    if (!cJSON_IsArray(answers)) return bad(r, "%s, annotation %d: \"answers\" is not an array", r->ann_file, s->idx);
    int m = cJSON_GetArraySize(answers);
    if (m != 10) return bad(r, "%s, annotation %d: \"answers\" has %d entries, expected 10", r->ann_file, s->idx, m);
    it->answers = t2_calloc(10, sizeof *it->answers);
    const cJSON *x;
    cJSON_ArrayForEach(x, answers) {
        const char *t = t2_json_str(x, "answer", NULL);
        if (!t) return bad(r, "%s, annotation %d: answers[%d] has no \"answer\" string", r->ann_file, s->idx,
                             it->n_answers);
        it->answers[it->n_answers++] = t2_strdup(t);
    }
    const char *qt = t2_json_str(a, "question_type", NULL), *at = t2_json_str(a, "answer_type", NULL);
    if (qt) it->question_type = t2_strdup(qt);
    if (at) it->answer_type = t2_strdup(at);
    char name[256];
    snprintf(name, sizeof name, "COCO_%s_%012lld.jpg", subtype, (long long)img->valuedouble);
    if (set_image(r, it, name)) return -1;
    it->task = t2_strdup(task);
    it->metric = T2_METRIC_VQA;
    return 0;
}

static int load_vqa(reader *r, t2_bench_kind kind, const char *annotations) {
    char annpath[PATH_CAP], subbuf[64];
    if (!annotations) {
        if (annotations_beside(r->file, annpath, sizeof annpath)) return -1;
        annotations = annpath;
    }
    r->ann_file = annotations;
    cJSON *qdoc = t2_json_load(r->file);
    if (!qdoc) return -1;
    cJSON *adoc = t2_json_load(annotations);
    if (!adoc) return cJSON_Delete(qdoc), -1;
    strmap ann = {0};
    int rc = 0;
    const cJSON *qs = cJSON_GetObjectItemCaseSensitive(qdoc, "questions");
    const cJSON *as = cJSON_GetObjectItemCaseSensitive(adoc, "annotations");
    if (!cJSON_IsArray(qs)) {
        rc = t2_fail("%s: no \"questions\" array (not a VQA questions file)", r->file);
        goto done;
    }
    if (!cJSON_IsArray(as)) {
        rc = t2_fail("%s: no \"annotations\" array (not a VQA annotations file)", annotations);
        goto done;
    }
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, as) {
        char *qid = t2_eval_id_string(cJSON_GetObjectItemCaseSensitive(a, "question_id"));
        if (!qid) {
            rc = t2_fail("%s: annotation %d: missing or bad \"question_id\"", annotations, i);
            goto done;
        }
        if (map_find(&ann, qid)) {
            rc = t2_fail("%s: annotation %d: duplicate question_id %s", annotations, i, qid);
            free(qid);
            goto done;
        }
        map_put(&ann, qid, a, i++);
        free(qid);
    }
    const char *subtype = coco_subtype(qdoc, r->file, subbuf, sizeof subbuf);
    i = 0;
    const cJSON *q;
    cJSON_ArrayForEach(q, qs) {
        t2_eval_item it = {0};
        int ok = vqa_item(r, q, &ann, subtype, &it, t2_bench_name(kind));
        char *id = t2_eval_id_string(cJSON_GetObjectItemCaseSensitive(q, "question_id"));
        rc = finish(r, ok, &it, i++, 0, id);
        free(id);
        if (rc) break;
    }
done:
    map_free(&ann);
    cJSON_Delete(qdoc);
    cJSON_Delete(adoc);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// JSON-lines formats: generic, GSM8K, ARC.

static int parse_metric(const char *s) {
    static const char *const names[] = {"vqa", "anls", "exact", "gsm8k", "mc"};
    static const t2_metric ms[] = {T2_METRIC_VQA, T2_METRIC_ANLS, T2_METRIC_EXACT, T2_METRIC_GSM8K, T2_METRIC_MC};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) return (int)ms[i];
    return -1;
}

static int is_one_of(const char *s, const char *const *set) {
    for (; s && *set; set++)
        if (strcmp(s, *set) == 0) return 1;
    return 0;
}

static int jsonl_item(reader *r, const cJSON *o, t2_eval_item *it) {
    char *image = NULL, *metric = NULL;
    if (get_id(r, o, "id", &it->id) || get_str(r, o, "question", &it->question, 1) ||
        get_str(r, o, "task", &it->task, 0) || get_str(r, o, "image", &image, 0) ||
        get_str(r, o, "metric", &metric, 0) || get_ocr(r, o, it))
        goto fail;
    const cJSON *ans = cJSON_GetObjectItemCaseSensitive(o, "answers");
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(o, "answer");
    if (!ans && (cJSON_IsString(one) || cJSON_IsNumber(one))) {   // a single "answer" is accepted too
        it->answers = t2_malloc(sizeof *it->answers);
        it->answers[0] = cJSON_IsString(one) ? t2_strdup(one->valuestring) : t2_eval_id_string(one);
        it->n_answers = 1;
        if (!it->answers[0]) { bad(r, "\"answer\" is not an integer or a string"); goto fail; }
    } else if (get_answers(r, o, "answers", 1, 0, it)) goto fail;
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "choices");
    if (ch && !cJSON_IsNull(ch)) {
        if (str_list(r, ch, "choices", 1, 0, &it->choices, &it->n_choices)) goto fail;
        if (it->n_choices < 2 || it->n_choices > 26) { bad(r, "\"choices\" has %d entries (2..26)", it->n_choices); goto fail; }
    }
    if (image && set_image(r, it, image)) goto fail;
    static const char *const math[] = {"math", "gsm8k", NULL}, *const doc[] = {"docvqa", "infovqa", NULL},
                             *const vqa[] = {"textvqa", "vqav2", "okvqa", "vqa", NULL};
    int m;
    if (metric) {
        if ((m = parse_metric(metric)) < 0) { bad(r, "unknown \"metric\" \"%s\" (vqa, anls, exact, gsm8k, mc)", metric); goto fail; }
    } else if (it->choices) m = T2_METRIC_MC;
    else if (is_one_of(it->task, math)) m = T2_METRIC_GSM8K;
    else if (is_one_of(it->task, doc)) m = T2_METRIC_ANLS;
    else if (it->n_answers == 10 || is_one_of(it->task, vqa)) m = T2_METRIC_VQA;
    else m = T2_METRIC_EXACT;
    it->metric = (t2_metric)m;
    if (m == T2_METRIC_MC) {
        if (!it->choices) { bad(r, "metric mc needs \"choices\""); goto fail; }
        char *gold = t2_strdup(it->answers[0]);
        int rc = mc_gold(r, it, gold, NULL);
        free(gold);
        if (rc) goto fail;
    }
    if (m == T2_METRIC_GSM8K && gsm8k_gold(r, it)) goto fail;
    if (!it->task) it->task = t2_strdup("jsonl");
    free(image); free(metric);
    return 0;
fail:
    free(image); free(metric);
    return -1;
}

static int gsm8k_item(reader *r, const cJSON *o, t2_eval_item *it, int index) {
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (idv) {
        if (!(it->id = t2_eval_id_string(idv))) return bad(r, "\"id\" is not a string or a number");
    } else {
        char buf[32];
        snprintf(buf, sizeof buf, "%d", index);
        it->id = t2_strdup(buf);
    }
    char *sol = NULL;
    if (get_str(r, o, "question", &it->question, 1) || get_str(r, o, "answer", &sol, 1)) return free(sol), -1;
    it->answers = t2_malloc(sizeof *it->answers);
    it->answers[0] = sol;
    it->n_answers = 1;
    if (!strstr(sol, "####")) return bad(r, "\"answer\" has no \"#### N\" final answer");
    if (gsm8k_gold(r, it)) return -1;
    it->task = t2_strdup("gsm8k");
    it->metric = T2_METRIC_GSM8K;
    return 0;
}

// ARC: {"question": {"stem", "choices": [{"text","label"}]}} or {"question": str, "choices":
// {"text": [...], "label": [...]}}; "answerKey" names a label.
static int arc_item(reader *r, const cJSON *o, t2_eval_item *it) {
    char **labels = NULL, *key = NULL;
    int n_labels = 0, rc = -1;
    if (get_id(r, o, "id", &it->id)) return -1;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "question");
    const cJSON *ch;
    if (cJSON_IsObject(q)) {                                    // original ARC JSONL
        if (get_str(r, q, "stem", &it->question, 1)) return -1;
        ch = cJSON_GetObjectItemCaseSensitive(q, "choices");
        if (!cJSON_IsArray(ch)) return bad(r, "missing \"question.choices\" array");
        int m = cJSON_GetArraySize(ch), i = 0;
        it->choices = t2_calloc((size_t)(m ? m : 1), sizeof *it->choices);
        labels = t2_calloc((size_t)(m ? m : 1), sizeof *labels);
        const cJSON *c;
        cJSON_ArrayForEach(c, ch) {
            const char *t = t2_json_str(c, "text", NULL), *l = t2_json_str(c, "label", NULL);
            if (!t || !l) { bad(r, "choice %d lacks a \"text\" or \"label\" string", i); goto out; }
            it->choices[i] = t2_strdup(t);
            labels[i++] = t2_strdup(l);
            it->n_choices = n_labels = i;
        }
    } else if (cJSON_IsString(q)) {                             // Hugging Face datasets layout
        if (get_str(r, o, "question", &it->question, 1)) return -1;
        ch = cJSON_GetObjectItemCaseSensitive(o, "choices");
        if (!cJSON_IsObject(ch)) return bad(r, "missing \"choices\" object");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(ch, "text"), *l = cJSON_GetObjectItemCaseSensitive(ch, "label");
        if (!t || !l) return bad(r, "\"choices\" lacks \"text\" or \"label\"");
        if (str_list(r, t, "choices.text", 1, 0, &it->choices, &it->n_choices) ||
            str_list(r, l, "choices.label", 1, it->n_choices, &labels, &n_labels))
            goto out;
    } else return bad(r, q ? "\"question\" is neither an object nor a string" : "missing \"question\"");
    if (it->n_choices < 2 || it->n_choices > 26) { bad(r, "%d choices (2..26)", it->n_choices); goto out; }
    if (get_id(r, o, "answerKey", &key)) goto out;
    it->answers = t2_malloc(sizeof *it->answers);
    it->answers[0] = t2_strdup(key);
    it->n_answers = 1;
    if (mc_gold(r, it, key, labels)) goto out;
    it->task = t2_strdup("arc");
    it->metric = T2_METRIC_MC;
    rc = 0;
out:
    for (int i = 0; i < n_labels; i++) free(labels[i]);
    free(labels);
    free(key);
    return rc;
}

static int load_jsonl(reader *r, t2_bench_kind kind) {
    size_t len;
    char *buf = t2_read_file(r->file, &len);
    if (!buf) return -1;
    int line = 0, index = 0, rc = 0;
    for (char *p = buf; p < buf + len && rc == 0;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        char *end = nl ? nl : buf + len;
        *end = 0;
        char *s = p;
        p = end + 1;
        line++;
        while (*s && isspace((unsigned char)*s)) s++;
        if (!*s) continue;                                      // blank line
        t2_eval_item it = {0};
        r->why[0] = 0;
        int ok;
        const char *ep = NULL;
        cJSON *o = cJSON_ParseWithOpts(s, &ep, 1);
        if (!o) ok = bad(r, "not valid JSON (near column %d)", ep ? (int)(ep - s) + 1 : 0);
        else if (!cJSON_IsObject(o)) ok = bad(r, "not a JSON object");
        else if (kind == T2_BENCH_GSM8K) ok = gsm8k_item(r, o, &it, index);
        else if (kind == T2_BENCH_ARC) ok = arc_item(r, o, &it);
        else ok = jsonl_item(r, o, &it);
        char *id = o ? t2_eval_id_string(cJSON_GetObjectItemCaseSensitive(o, "id")) : NULL;
        if (!id && it.id) id = t2_strdup(it.id);
        rc = finish(r, ok, &it, index++, line, id);
        free(id);
        cJSON_Delete(o);
    }
    free(buf);
    return rc;
}

// ---------------------------------------------------------------------------------------------

int t2_eval_load(t2_bench_kind kind, const char *data, const char *annotations, const char *images, int skip_bad,
                 t2_eval_set *out) {
    memset(out, 0, sizeof *out);
    if (kind < 0 || kind >= T2_BENCH_COUNT) return t2_fail("unknown benchmark kind %d", (int)kind);
    if (!data) return t2_fail("%s: no data file given", t2_bench_name(kind));
    char dir[PATH_CAP];
    if (!images) {                                               // default: the data file's directory
        const char *slash = strrchr(data, '/');
        if (!slash) snprintf(dir, sizeof dir, ".");
        else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - data), data) >= (int)sizeof dir)
            return t2_fail("path too long: %s", data);
        if (slash == data) snprintf(dir, sizeof dir, "/");
        images = dir;
    }
    reader r = {.file = data, .images = images, .skip_bad = skip_bad, .set = out};
    out->kind = kind;
    int rc;
    switch (kind) {
    case T2_BENCH_TEXTVQA:
    case T2_BENCH_DOCVQA: rc = load_data_list(&r, kind); break;
    case T2_BENCH_VQAV2:
    case T2_BENCH_OKVQA: rc = load_vqa(&r, kind, annotations); break;
    default: rc = load_jsonl(&r, kind); break;
    }
    map_free(&r.ids);
    if (rc == 0 && out->n == 0) {
        rc = out->n_skipped ? t2_fail("%s: no valid items (%d skipped; first: %s)", data, out->n_skipped,
                                      out->first_skip_reason)
                            : t2_fail("%s: empty benchmark (no items)", data);
    }
    if (rc) {
        t2_eval_set_free(out);
        return -1;
    }
    return 0;
}

void t2_eval_set_free(t2_eval_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) item_free(&s->items[i]);
    free(s->items);
    free(s->first_skip_reason);
    memset(s, 0, sizeof *s);
}

double t2_eval_score(const t2_eval_item *item, const char *pred) {
    if (!item || !pred || item->n_answers <= 0) return 0.0;
    const char *const *ans = (const char *const *)item->answers;
    switch (item->metric) {
    case T2_METRIC_VQA: return t2_vqa_accuracy(pred, ans, item->n_answers);
    case T2_METRIC_ANLS: return t2_anls(pred, ans, item->n_answers, 0.5);
    case T2_METRIC_EXACT: return t2_exact_match(pred, ans, item->n_answers);
    case T2_METRIC_GSM8K: return t2_gsm8k_score(pred, ans[0]);
    case T2_METRIC_MC: {
        if (!item->choices || !ans[0][0]) return 0.0;
        int k = t2_mc_extract(pred, (const char *const *)item->choices, item->n_choices);
        return (k >= 0 && k == ans[0][0] - 'A') ? 1.0 : 0.0;
    }
    }
    return 0.0;
}
