// bench.h — benchmark files read into one list of items, whatever the source format: TextVQA,
// VQAv2 / OK-VQA (questions + annotations), DocVQA-style, the project's generic JSONL, GSM8K-style
// math, ARC-style multiple choice. Malformed files give an error naming the file and the item; with
// skip_bad such items are counted and skipped instead. Not here: scoring (metrics.h), running (run.h).
#ifndef T2_EVAL_BENCH_H
#define T2_EVAL_BENCH_H
#include <stddef.h>

typedef enum {
    T2_BENCH_TEXTVQA,   // TextVQA_0.5.1_*.json: {"data": [{question, image_id, answers[10], question_id, ...}]}
    T2_BENCH_VQAV2,     // DATA = questions file; annotations file beside it (or given); COCO image names
    T2_BENCH_OKVQA,     // as VQAv2
    T2_BENCH_DOCVQA,    // {"data": [{questionId, question, image, answers[]}]} → ANLS
    T2_BENCH_JSONL,     // {"id", "image"?, "question", "answers": [...], "task"?, "choices"?} per line
    T2_BENCH_GSM8K,     // {"question", "answer": "... #### N"} per line
    T2_BENCH_ARC,       // {"id", "question": {"stem", "choices": [{"label","text"}]} | "question" + "choices":
                        //  {"label": [...], "text": [...]}, "answerKey"} per line
    T2_BENCH_COUNT
} t2_bench_kind;

typedef enum { T2_METRIC_VQA, T2_METRIC_ANLS, T2_METRIC_EXACT, T2_METRIC_GSM8K, T2_METRIC_MC } t2_metric;

typedef struct {
    char *id;                 // question id as a string
    char *image;              // image path (resolved against the images dir) or NULL for text items
    char *question;
    char **answers;           // reference answers (VQA: the 10 human answers; MC: the answer letter)
    int n_answers;
    char **choices;           // multiple choice texts (labels A, B, ... in order) or NULL
    int n_choices;
    char *task;               // family / task name ("textvqa", "math", ...; the benchmark's name if absent)
    char *question_type, *answer_type;   // VQA breakdowns, or NULL
    char **ocr_tokens;        // TextVQA-style OCR tokens when the data has them, or NULL
    int n_ocr;
    t2_metric metric;
} t2_eval_item;

typedef struct {
    t2_bench_kind kind;
    int n;
    t2_eval_item *items;
    int n_skipped;            // items skipped as malformed (skip_bad)
    char *first_skip_reason;  // the first skip's message, or NULL
} t2_eval_set;

// Contract: the kind named NAME ("textvqa", "vqav2", "okvqa", "docvqa", "jsonl", "gsm8k", "arc"), -1 if unknown.
int t2_bench_parse(const char *name);
const char *t2_bench_name(t2_bench_kind k);
// Contract: read DATA (a file; for VQAv2/OK-VQA the questions file, annotations found beside it by
// the official naming or given as ANNOTATIONS) with images under IMAGES (may be NULL for text
// benchmarks; image existence is checked). -1 + error naming the file and the item's index / id.
int t2_eval_load(t2_bench_kind kind, const char *data, const char *annotations, const char *images, int skip_bad,
                 t2_eval_set *out);
void t2_eval_set_free(t2_eval_set *s);

// A JSON id (a non-empty string, or a number: integral ones without a fraction) as a malloc'd string, as
// items' ids are read; NULL if neither. Predictions files name items the same way.
struct cJSON;
char *t2_eval_id_string(const struct cJSON *v);
// Contract: score PRED for ITEM with the item's metric, in [0, 1].
double t2_eval_score(const t2_eval_item *item, const char *pred);

#endif
