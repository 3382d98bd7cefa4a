// optim.h — the optimizer of t2's trainers, independent of any model: AdamW over a flat parameter
// block described as ranges (so norms and biases skip weight decay), learning-rate schedules,
// global-norm gradient clipping, gradient-accumulation helpers, and train-state checkpoints (params
// + Adam moments + step + RNG + settings in one safetensors file). It is not a model: it never
// computes gradients, and it knows nothing of layers beyond the ranges it is handed.
#ifndef T2_OPTIM_H
#define T2_OPTIM_H
#include <stddef.h>
#include <stdint.h>
#include "core/rng.h"

// One slice of the parameter block: params[offset .. offset+count), with or without weight decay.
typedef struct {
    size_t offset, count;
    int decay;   // 1: apply weight decay (matrices); 0: none (norm gains, biases, embeddings' kin)
} t2_param_range;

// Hyper-parameters (torch.optim.AdamW's names; lr comes per step from the schedule).
// Doubles, as torch holds them (Python floats): the coefficients are formed in double and rounded to
// float once, so 0.9 must not arrive as 0.9f.
typedef struct {
    double beta1, beta2, eps, weight_decay;
} t2_adamw_config;

// Contract: torch's defaults: betas (0.9, 0.999), eps 1e-8, weight_decay 0.01.
t2_adamw_config t2_adamw_defaults(void);

// The optimizer state: m and v are carved from one block; step counts the updates made so far.
typedef struct {
    size_t n;        // parameters covered
    int64_t step;    // updates done (torch's state["step"])
    float *m;        // (n) first moment
    float *v;        // (n) second moment
    float *mem;      // the one allocation m and v live in
} t2_adamw;

// Contract: zeroed state for N parameters (one allocation); 0, or -1 + error when out of memory.
int t2_adamw_init(t2_adamw *o, size_t n);
void t2_adamw_free(t2_adamw *o);
// Contract: check that RANGES lie inside [0, n) and do not overlap; 0 or -1 + error naming the range.
int t2_param_ranges_check(const t2_param_range *ranges, int nranges, size_t n);
// Contract: one AdamW step exactly as torch.optim.AdamW (amsgrad off): step += 1, then for each
// range p *= 1 - lr·wd (decay ranges only), m = β1·m + (1-β1)·g, v = β2·v + (1-β2)·g²,
// p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps). Parameters outside every range are untouched.
// P(n) updated in place; G(n) read only. Ranges must pass t2_param_ranges_check (asserted).
void t2_adamw_step(t2_adamw *o, const t2_adamw_config *cfg, double lr, float *p, const float *g,
                   const t2_param_range *ranges, int nranges);

// Learning-rate schedules (double, like the Python floats torch uses). STEP is the 0-based index of
// the update about to be made.
typedef enum { T2_LR_COSINE, T2_LR_CONSTANT } t2_lr_kind;
typedef struct {
    t2_lr_kind kind;
    int64_t warmup, total;   // warmup steps; total steps (cosine reaches lr_min at total)
    double lr_max, lr_min;
} t2_lr_schedule;

// Contract: linear warmup lr_max·(step+1)/warmup for step < warmup; then cosine from lr_max down
// to lr_min: lr_min + ½(1 + cos(π·(step-warmup)/(total-warmup)))·(lr_max-lr_min); lr_min from total on.
double t2_lr_at(int64_t step, int64_t warmup, int64_t total, double lr_max, double lr_min);
// Contract: the schedule's rate at STEP (T2_LR_CONSTANT: the same warmup, then lr_max forever).
double t2_lr_schedule_at(const t2_lr_schedule *s, int64_t step);

// Contract: as torch.nn.utils.clip_grad_norm_ (L2): norm = ||G(n)||, and when max_norm/(norm+1e-6)
// < 1, G *= that factor. Returns the norm before clipping (non-finite norms are returned, G untouched).
float t2_clip_grad_norm(float *g, size_t n, float max_norm);
// Contract: the L2 norm of G(n), accumulated in double.
float t2_grad_norm(const float *g, size_t n);
// Gradient accumulation: zero G before the first micro-batch, let the backward passes add (+=),
// then t2_grad_accum_finish divides by the number of micro-batches K (the mean over micro-batches).
void t2_grad_zero(float *g, size_t n);
void t2_grad_scale(float *g, size_t n, float s);
void t2_grad_accum_finish(float *g, size_t n, int k);

// Train-state checkpoints: one safetensors file, __metadata__ {"format": "t2-train-state",
// "version": "1", "n_params": "<n>", "settings": "<JSON text>"}; tensors "params" F32 (n),
// "adam.m" F32 (n), "adam.v" F32 (n), "adam.step" I64 (1), "rng" I64 (4: xoshiro256** state bits).
#define T2_TRAIN_STATE_FORMAT "t2-train-state"
#define T2_TRAIN_STATE_VERSION "1"

// Contract: write PATH atomically (temp file + rename). RNG may be NULL (stored as zeros);
// SETTINGS_JSON may be NULL ("{}") and must otherwise parse as JSON. 0, or -1 + error naming PATH.
int t2_train_state_save(const char *path, const float *params, const t2_adamw *o, const t2_rng *rng,
                        const char *settings_json);
// Contract: read PATH into PARAMS(o->n), O (m, v, step; o initialised for the expected n) and RNG
// (may be NULL). *SETTINGS_JSON (when non-NULL) receives a malloc'd copy of the settings text.
// Checks format, version, dtypes and that every tensor holds o->n elements; on any failure returns
// -1 with an error naming PATH (and the tensor) and leaves PARAMS, O and RNG unchanged.
int t2_train_state_load(const char *path, float *params, t2_adamw *o, t2_rng *rng, char **settings_json);

#endif
