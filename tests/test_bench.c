// test_bench.c — eval/bench.c against fixtures written by tests/ref/bench_fixtures.py: every good
// file of every format (TextVQA, VQAv2, OK-VQA, DocVQA, generic JSONL, GSM8K, ARC in both layouts)
// is read and each item's fields compared with the script's expectations (ids, questions, resolved
// image paths, answers, choices, task, VQA breakdowns, OCR tokens, metric); every malformed variant
// must fail with a message naming the file and the item, and with skip_bad must keep the other
// items and count one skip; t2_eval_score on a few predictions per metric.
#include "core/error.h"
#include "core/util.h"
#include "eval/bench.h"
#include "testutil.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const metric_names[] = {"vqa", "anls", "exact", "gsm8k", "mc"};

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// S (may be NULL) equals the expectation WANT (a JSON string or null).
static int same_str(const char *s, const char *want) {
    if (!s || !want) return s == want;
    return strcmp(s, want) == 0;
}

// The list S(n) (may be NULL) equals WANT (a JSON array of strings, or null / absent → NULL).
static int same_list(char *const *s, int n, const cJSON *want) {
    if (!cJSON_IsArray(want)) return s == NULL && n == 0;
    if (!s || n != cJSON_GetArraySize(want)) return 0;
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, want) if (!cJSON_IsString(x) || strcmp(s[i++], x->valuestring) != 0) return 0;
    return 1;
}

static int load(const cJSON *spec, int skip_bad, t2_eval_set *set) {
    int kind = t2_bench_parse(jstr(spec, "kind"));
    T2_CHECK(kind >= 0, "kind %s parses", jstr(spec, "kind"));
    return t2_eval_load((t2_bench_kind)kind, jstr(spec, "data"), jstr(spec, "annotations"), jstr(spec, "images"),
                        skip_bad, set);
}

static void check_good(const cJSON *spec) {
    const char *name = jstr(spec, "name");
    t2_eval_set set;
    int rc = load(spec, 0, &set);
    T2_CHECK(rc == 0, "%s: loads (%s)", name, t2_last_error());
    if (rc) return;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(spec, "items");
    T2_CHECK(set.n == cJSON_GetArraySize(items), "%s: %d items, want %d", name, set.n, cJSON_GetArraySize(items));
    T2_CHECK(set.n_skipped == 0 && !set.first_skip_reason, "%s: nothing skipped", name);
    T2_CHECK(strcmp(t2_bench_name(set.kind), jstr(spec, "kind")) == 0, "%s: kind", name);
    int i = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, items) {
        if (i >= set.n) break;
        const t2_eval_item *it = &set.items[i];
        T2_CHECK(same_str(it->id, jstr(w, "id")), "%s[%d]: id %s, want %s", name, i, it->id, jstr(w, "id"));
        T2_CHECK(same_str(it->question, jstr(w, "question")), "%s[%d]: question %s", name, i, it->question);
        T2_CHECK(same_str(it->image, jstr(w, "image")), "%s[%d]: image %s, want %s", name, i,
                 it->image ? it->image : "(null)", jstr(w, "image") ? jstr(w, "image") : "(null)");
        T2_CHECK(same_list(it->answers, it->n_answers, cJSON_GetObjectItemCaseSensitive(w, "answers")),
                 "%s[%d]: answers (%d, first %s)", name, i, it->n_answers, it->n_answers ? it->answers[0] : "-");
        T2_CHECK(same_list(it->choices, it->n_choices, cJSON_GetObjectItemCaseSensitive(w, "choices")),
                 "%s[%d]: choices (%d)", name, i, it->n_choices);
        T2_CHECK(same_list(it->ocr_tokens, it->n_ocr, cJSON_GetObjectItemCaseSensitive(w, "ocr")),
                 "%s[%d]: ocr tokens (%d)", name, i, it->n_ocr);
        T2_CHECK(same_str(it->task, jstr(w, "task")), "%s[%d]: task %s, want %s", name, i, it->task, jstr(w, "task"));
        T2_CHECK(same_str(it->question_type, jstr(w, "question_type")), "%s[%d]: question_type %s", name, i,
                 it->question_type ? it->question_type : "(null)");
        T2_CHECK(same_str(it->answer_type, jstr(w, "answer_type")), "%s[%d]: answer_type %s", name, i,
                 it->answer_type ? it->answer_type : "(null)");
        T2_CHECK(strcmp(metric_names[it->metric], jstr(w, "metric")) == 0, "%s[%d]: metric %s, want %s", name, i,
                 metric_names[it->metric], jstr(w, "metric"));
        T2_CHECK(!it->image || t2_file_exists(it->image), "%s[%d]: image exists", name, i);
        i++;
    }
    printf("%-8s %d items\n", name, set.n);
    t2_eval_set_free(&set);
}

static int has_all(const char *msg, const cJSON *contains) {
    const cJSON *x;
    cJSON_ArrayForEach(x, contains) if (!strstr(msg, x->valuestring)) return 0;
    return 1;
}

static void check_bad(const cJSON *spec) {
    const char *name = jstr(spec, "name");
    const cJSON *contains = cJSON_GetObjectItemCaseSensitive(spec, "contains");
    int n_good = cJSON_GetObjectItemCaseSensitive(spec, "n_good")->valueint;
    t2_eval_set set;
    t2_error_clear();
    int rc = load(spec, 0, &set);
    T2_CHECK(rc == -1, "%s: fails", name);
    T2_CHECK(set.n == 0 && set.items == NULL, "%s: nothing left after failing", name);
    T2_CHECK(has_all(t2_last_error(), contains), "%s: message names the fault: %s", name, t2_last_error());
    printf("%-28s %s\n", name, t2_last_error());
    t2_error_clear();
    rc = load(spec, 1, &set);
    if (n_good <= 0) {
        T2_CHECK(rc == -1, "%s: fails with skip_bad too", name);
        T2_CHECK(has_all(t2_last_error(), contains), "%s: skip_bad message: %s", name, t2_last_error());
        if (rc == 0) t2_eval_set_free(&set);
        return;
    }
    T2_CHECK(rc == 0, "%s: skip_bad loads (%s)", name, t2_last_error());
    if (rc) return;
    T2_CHECK(set.n == n_good && set.n_skipped == 1, "%s: skip_bad keeps %d (want %d), skips %d", name, set.n,
             n_good, set.n_skipped);
    T2_CHECK(set.first_skip_reason && has_all(set.first_skip_reason, contains), "%s: skip reason %s", name,
             set.first_skip_reason ? set.first_skip_reason : "(null)");
    t2_eval_set_free(&set);
}

static void check_scores(const cJSON *good, const cJSON *scores) {
    const cJSON *sc;
    cJSON_ArrayForEach(sc, scores) {
        const char *setname = jstr(sc, "set"), *pred = jstr(sc, "pred");
        int idx = cJSON_GetObjectItemCaseSensitive(sc, "item")->valueint;
        double want = cJSON_GetObjectItemCaseSensitive(sc, "score")->valuedouble;
        const cJSON *spec = NULL, *g;
        cJSON_ArrayForEach(g, good) if (strcmp(jstr(g, "name"), setname) == 0) spec = g;
        T2_CHECK(spec != NULL, "score set %s exists", setname);
        if (!spec) continue;
        t2_eval_set set;
        if (load(spec, 0, &set)) { T2_CHECK(0, "%s loads", setname); continue; }
        double got = t2_eval_score(&set.items[idx], pred);
        T2_CHECK(fabs(got - want) < 1e-9, "score %s[%d] \"%s\" (%s): %.4f, want %.4f", setname, idx, pred,
                 metric_names[set.items[idx].metric], got, want);
        T2_CHECK(t2_eval_score(&set.items[idx], NULL) == 0.0, "score of NULL is 0");
        t2_eval_set_free(&set);
    }
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    T2_CHECK(t2_test_python(&e, "bench_fixtures.py", "'%s'", e.work) == 0, "bench_fixtures.py runs");
    char path[4096];
    snprintf(path, sizeof path, "%s/expect.json", e.work);
    cJSON *ex = t2_json_load(path);
    T2_CHECK(ex != NULL, "expect.json: %s", t2_last_error());
    if (!ex) return t2_test_done();

    for (int k = 0; k < T2_BENCH_COUNT; k++)
        T2_CHECK(t2_bench_parse(t2_bench_name((t2_bench_kind)k)) == k, "name round trip %d", k);
    T2_CHECK(t2_bench_parse("mmlu") == -1 && t2_bench_parse(NULL) == -1, "unknown names");

    const cJSON *good = cJSON_GetObjectItemCaseSensitive(ex, "good"), *x;
    cJSON_ArrayForEach(x, good) check_good(x);
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(ex, "bad")) check_bad(x);
    check_scores(good, cJSON_GetObjectItemCaseSensitive(ex, "scores"));

    // Missing files and bad arguments are errors that name the file.
    t2_eval_set set;
    snprintf(path, sizeof path, "%s/none.jsonl", e.work);
    T2_CHECK(t2_eval_load(T2_BENCH_JSONL, path, NULL, NULL, 1, &set) == -1 && strstr(t2_last_error(), "none.jsonl"),
             "missing file: %s", t2_last_error());
    snprintf(path, sizeof path, "%s/generic/bench.jsonl", e.work);
    T2_CHECK(t2_eval_load(T2_BENCH_TEXTVQA, path, NULL, NULL, 0, &set) == -1, "JSONL read as TextVQA fails: %s",
             t2_last_error());
    // An explicit annotations file wins over the one found beside the questions.
    snprintf(path, sizeof path, "%s/vqav2/lonely/v2_OpenEnded_mscoco_val2014_questions.json", e.work);
    char ann[4096], imgs[4096];
    snprintf(ann, sizeof ann, "%s/vqav2/v2_mscoco_val2014_annotations.json", e.work);
    snprintf(imgs, sizeof imgs, "%s/vqav2/val2014", e.work);
    int rc = t2_eval_load(T2_BENCH_VQAV2, path, ann, imgs, 0, &set);
    T2_CHECK(rc == 0 && set.n == 3, "explicit annotations: %s", t2_last_error());
    if (rc == 0) t2_eval_set_free(&set);
    t2_eval_set_free(&set);   // freeing twice (zeroed) is harmless

    cJSON_Delete(ex);
    return t2_test_done();
}
