// train.h — `t2 train`: the loop that trains a LLaVA-family (or text-only) model from a JSON recipe:
// batches mixed from the world's families and JSONL files, AdamW (no decay on norms / biases),
// warmup + cosine, global-norm clipping, gradient accumulation, atomic checkpoints that resume the
// same curve after a kill, a CSV log and a PNG curve, validation with the eval harness, and the model
// exported as an ordinary HF checkpoint. Not here: the model's maths (vlm_train.h), the data (data.h).
#ifndef T2_TRAIN_H
#define T2_TRAIN_H
#include <stddef.h>
#include <stdint.h>
#include "core/optim.h"
#include "train/vlm_train.h"

// The optimizer over a vlm_train's two parameter blocks: one AdamW state (m, v over both blocks, the
// language model's first), decay ranges from the tensors' groups.
typedef struct {
    t2_adamw adam;
    t2_param_range *ranges[2];
    float *scale[2];     // per range: the learning-rate multiplier (1; 0 = frozen) ...
    int64_t *until[2];   // ... while the step is below this (-1: always)
    float *wd[2];        // per range: its own weight decay, applied to every element (< 0: the
                         // config's, on the decay group only)
    int nranges[2];
} t2_train_optim;

// Contract: zeroed AdamW state for VT's parameters; 0 or -1 + error.
int t2_train_optim_init(t2_train_optim *o, t2_vlm_train *vt);
void t2_train_optim_free(t2_train_optim *o);
// Contract: multiply the learning rate of every tensor whose checkpoint name starts with PREFIX by
// SCALE (0 freezes it: no update, no decay) for the updates before step UNTIL (-1: all of them), and
// when WD >= 0 decay those tensors by WD (AdamW's decoupled decay, biases and norm gains included;
// WD < 0: the config's, on the decay group only). Returns how many tensors matched.
int t2_train_optim_group(t2_train_optim *o, t2_vlm_train *vt, const char *prefix, float scale, int64_t until, float wd);
// The multiplier in force for range R of block K at optimizer step STEP.
float t2_train_optim_scale_at(const t2_train_optim *o, int k, int r, int64_t step);
// 1 when every tensor of block K (0 language model, 1 vision side) is frozen at the next update: its
// gradients are not needed (t2_vlm_train_set_vision_grad).
int t2_train_optim_block_frozen(const t2_train_optim *o, int k);
// Contract: clip the gradients of the trainable tensors (multiplier > 0 at this step; frozen ones are
// left out, as torch leaves out parameters with requires_grad off) to global L2 norm CLIP (torch's
// clip_grad_norm_; CLIP <= 0: no clipping), then one AdamW step at rate LR over both blocks. Returns
// the norm before clipping.
float t2_train_optim_step(t2_train_optim *o, t2_vlm_train *vt, const t2_adamw_config *cfg, double lr, float clip);
// Contract: the parameters and the optimizer state as one train-state checkpoint (core/optim.h) at
// PATH, atomically; load checks the sizes and restores all of it. RNG may be NULL.
int t2_train_optim_save(const t2_train_optim *o, t2_vlm_train *vt, const char *path, const t2_rng *rng,
                        const char *settings_json);
int t2_train_optim_load(t2_train_optim *o, t2_vlm_train *vt, const char *path, t2_rng *rng, char **settings_json);

// The run: what `t2 train --config FILE` does.
typedef struct {
    const char *config_path;   // the JSON recipe
    const char *out_dir;       // overrides the recipe's "out" when set
    int resume;                // continue from out/checkpoint.safetensors
    int threads;               // overrides the recipe's "threads" when > 0
    long max_steps;            // stop after this many steps of this invocation (0 = the recipe's total); for tests
    int quiet;                 // no progress lines
} t2_train_opts;

// Contract: run the recipe (see docs/training.md for its fields); 0 on completion, -1 + error naming
// the field / file / step at fault.
int t2_train_run(const t2_train_opts *o);

#endif
