// run.h — running a benchmark through a model and scoring it, lmms-eval style: samples.jsonl written
// and flushed per item (so --resume continues a killed run without redoing finished items),
// results.json (overall, per task, per question / answer type, n, wall time, items/s, settings),
// a markdown table and chart.png (per-task scores). Also scoring an existing predictions file without a model. Not here: reading
// benchmark files (bench.h), the metrics themselves (metrics.h).
#ifndef T2_EVAL_RUN_H
#define T2_EVAL_RUN_H
#include "eval/bench.h"
#include "experts/dispatch.h"
#include "fusion/vlm.h"

// lmms-eval's default VQA prompt suffix.
#define T2_EVAL_VQA_SUFFIX "\nAnswer the question using a single word or phrase."

typedef struct {
    const char *out_dir;        // where results.json and samples.jsonl go (created)
    int limit;                  // first N items only (0 = all)
    int resume;                 // keep the finished items of out_dir/samples.jsonl
    const char *prompt_suffix;  // NULL = the benchmark's default (VQA kinds: T2_EVAL_VQA_SUFFIX)
    int ocr;                    // add "\nReference OCR token: ..." when the item has OCR tokens
    int n_predict;              // 0 = the benchmark's default (short answers 32, math 256)
    const char *template_name;  // NULL = recognised from the checkpoint
    int progress;               // 1 = progress on stderr
    int no_table;               // 1 = no markdown table of scores on stdout (callers that report them)
    const char *model_name;     // for the reports
    int batch;                  // items decoded together (0 = default 4; fewer if their KV caches would
                                // exceed ~2 GB; 1 with a per-request --adapt strategy)
    const char *adapt;          // --adapt strategy (experts/dispatch.h; NULL = none): samples.jsonl records
                                // each item's choice, mixture and pass timings; results.json the strategy,
                                // the dispatch confusion matrix (per task, the labels chosen) and the
                                // first / second pass time ratio
    int first_max_tokens;       // the first pass's token cap (0 = dispatch default)
} t2_eval_opts;

typedef struct {
    int n;                      // items scored
    double score;               // mean score × 100
    double wall_s, items_per_s;
} t2_eval_summary;

// Contract: the user-turn text asked for ITEM (malloc'd): the question, OCR tokens when o->ocr, the
// choices as "\nA. text" lines, and o->prompt_suffix or the metric's default suffix. The trainer uses
// it too, so a model trained by `t2 train` sees exactly the prompts `t2 eval` asks.
char *t2_eval_prompt(const t2_eval_item *it, const t2_eval_opts *o);
// Contract: the whole prompt text for ITEM as every asker builds it (eval, few-shot, the trainers):
// "<image>\n" in front when WITH_IMAGE, then t2_eval_prompt, rendered as one user turn of CHAT with
// BOS_TEXT (T2_CHAT_NONE: the content as it is). Malloc'd; NULL + error when rendering fails.
char *t2_eval_prompt_text(const t2_eval_item *it, const t2_eval_opts *o, int with_image, t2_chat_kind chat,
                          const char *bos_text);
// Contract: run every item of SET (up to opts->limit) through M greedily, score it, write the reports.
// -1 + error (the item's id) on a model failure or an unwritable out_dir.
int t2_eval_run(t2_vlm *m, const t2_eval_set *set, const t2_eval_opts *o, t2_eval_summary *sum);
// Few-shot adaptation (Transformer² strategy C): CEM over the mixing weights α of registry experts,
// fitness = greedy accuracy on a few examples, ties broken by the mean per-token log-likelihood of
// their reference answers (experts/cem.h).
typedef struct {
    int population, generations;   // 32, 100
    float elite, init_std;          // 0.2, 0.5 (α init 1/K, samples clamped to [0, 1])
    int per_matrix;                 // one α per expert per matrix (the official "per layer") instead of per expert
    const char *experts;            // comma-separated registry names (NULL: every dispatched expert)
    int patience;                   // stop when the best has not improved for N generations (0 = never)
    uint64_t seed;
    int progress;                   // a line per generation on stderr
} t2_fewshot_opts;

typedef struct {
    int K;                                          // experts mixed
    char names[T2_ADAPT_MAX_MIX][T2_ADAPT_NAME];
    float alpha[T2_ADAPT_MAX_MIX];                  // per expert (per matrix: the mean over matrices)
    double accuracy, loglik;                        // the best sample's fitness (accuracy in [0, 1])
    double base_accuracy;                           // the base weights on the same examples
    int generations, evaluations, n_examples;
    double seconds;
} t2_fewshot_result;

t2_fewshot_opts t2_fewshot_defaults(void);
// Contract: search the mixture for SHOTS (items scored by their metric; prompts as t2_eval_prompt
// with EO's settings, EO->n_predict tokens) through D's registry and adapter. D uses the best mixture
// from then on (t2_dispatcher_set_fixed); *OUT (when OUT is non-NULL) gets a copy as an ordinary
// expert (task "fewshot", settings JSON with the mixture and the search, the examples' accuracy × 100
// as its score). -1 + error.
int t2_eval_fewshot(t2_vlm *m, t2_dispatcher *d, const t2_eval_set *shots, const t2_eval_opts *eo,
                    const t2_fewshot_opts *fo, t2_fewshot_result *res, t2_expert **out);

// Contract: score PREDICTIONS (the official results format [{"question_id", "answer"}], or a t2 /
// lmms-eval samples.jsonl with "id" / "doc_id" and "prediction" / "filtered_resps") against SET and
// write results.json + samples.jsonl to o->out_dir (if set). Items without a prediction count as
// missing (score 0) and are reported.
int t2_eval_score_file(const t2_eval_set *set, const char *predictions, const t2_eval_opts *o, t2_eval_summary *sum);
// Contract: the markdown table of several runs' results.json side by side to stdout, and their
// grouped bar chart as PNG (CHART; NULL = none).
int t2_eval_compare(const char *const *dirs, int n, const char *chart);

#endif
