// svf_train.h — training an SVF expert with REINFORCE (Transformer² §3.2; docs/svf.md): rollouts by
// the inference model with the current expert applied, reward ±1 from the eval harness's scorer,
// loss −r·Σ log π(answer tokens) + λ·KL(π_base ‖ π) over the answer tokens, the gradient w.r.t. every
// z through the language model's backward (the frozen tower and projector supply image rows),
// Adam with global-norm clipping, validation keeping the best expert, a CSV log and a PNG curve,
// atomic checkpoints and resume. Not here: decomposition and the expert format (svf/svf.h).
#ifndef T2_SVF_TRAIN_H
#define T2_SVF_TRAIN_H
#include <stdint.h>
#include "eval/bench.h"

typedef struct {
    const char *model_dir;       // the base checkpoint
    const char *svf_path;        // its decomposition (NULL: DIR/svf-mlp.safetensors)
    const char *task;            // the expert's task name (metadata)
    const t2_eval_set *train;    // rollout items (their metric is the reward's scorer)
    const t2_eval_set *valid;    // validation items (NULL: no validation; the last z is kept)
    const char *out;             // the expert file; the run lives in OUT.run/ (log, curve, checkpoint)
    int param;                   // T2_SVF_PARAM_* (official by default)
    int iters, batch;            // iterations; rollouts per iteration
    int max_iters;               // > 0: stop after this many iterations of this invocation (resume later)
    double lr, clip, kl;         // Adam lr (2e-3), global-norm clip (1e-3), λ of the KL term (0)
    float temperature;           // rollouts: 0 = greedy (the official setting)
    int baseline;                // 1: advantage r − mean r of the batch (REINFORCE with a baseline); 0: r (official)
    int nll;                     // 1: the paper's ablation — no rollouts, the reference answer with r = +1
                                 //    (next-token prediction through the same z-gradient); 0: REINFORCE
    int max_new;                 // tokens generated per rollout (answers are short)
    int valid_every, valid_n;    // validate every N iterations on the first valid_n items (0 = all)
    uint64_t seed;
    int threads;
    int resume;
    int quiet;
} t2_svf_train_opts;

// Contract: defaults as the official recipe: official parameterisation, batch 32, lr 2e-3, clip 1e-3,
// kl 0, greedy, max_new 16, validation every 10 iterations.
t2_svf_train_opts t2_svf_train_defaults(void);
// Contract: train; writes the best (or last) expert to o->out atomically. 0 or -1 + error.
int t2_svf_train_run(const t2_svf_train_opts *o);

#endif
