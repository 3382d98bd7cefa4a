// tower_train.h — `t2 tower train`: pretraining a LLaVA model's vision tower on its own, before any
// language model reads it, on the procedural world (which knows where it drew every character).
// Per patch of the selected features (or of the projected rows the language model receives), two linear heads: the character whose ink-box centre
// lies in the patch's left / right half (a–z, 0–9, other, none; cross-entropy), and the patch's
// pixels pooled 4×4 (normalised RGB, mean squared error) so that colour and coarse shape stay in the
// features. Only the tower is trained (the projector and the language model are copied through
// unchanged); the result is the whole model with the new tower, an ordinary HF LLaVA checkpoint.
// AdamW, warmup + cosine, clipping, atomic checkpoints that resume the same curve, a CSV log and
// per-character validation. Why: docs/t2-tiny.md (a tower trained through the language model's
// loss learned to silence the image instead of reading it). Not here: the language model's training
// (train.h), the world (world/).
#ifndef T2_TOWER_TRAIN_H
#define T2_TOWER_TRAIN_H
#include <stdint.h>
#include "world/world.h"

// Per-half-patch character classes: 0 none, 1–26 a–z (either case), 27–36 0–9, 37 any other glyph.
#define T2_TOWER_NONE 0
#define T2_TOWER_CLASSES 38

// Contract: the class of byte CH (a–z / A–Z → 1–26, 0–9 → 27–36, other printable → 37; space and
// control bytes → 0).
int t2_tower_char_class(char ch);

// Contract: the labels of IT's image seen as a GRID×GRID patch grid of an image of SIZE pixels:
// LABELS(grid, grid, 2) row-major, [row][col][half] = the class of the first recorded glyph whose
// ink-box centre ((x0+x1)/2, (y0+y1)/2, in pixels) falls in that half of that patch (left half:
// x − col·P < P/2, P = SIZE/GRID), else T2_TOWER_NONE. Returns how many slots are labelled.
int t2_tower_patch_labels(const t2_world_item *it, int size, int grid, uint8_t *labels);

typedef struct {
    const char *model_dir;   // the LLaVA checkpoint whose tower is trained (and whose other parts are copied)
    const char *out_dir;     // checkpoint.safetensors, log.csv, valid.csv, model/
    long steps;              // the schedule's length (cosine reaches lr_min here)
    long max_steps;          // stop after this many steps of this invocation (0: run to `steps`)
    int batch;               // images per step
    double lr, lr_min, weight_decay, clip;
    long warmup;
    double recon_weight;     // weight of the pixel head's loss beside the character head's
    double char_weight;      // a labelled half-patch's weight in the character loss (a "none" one: 1);
                             // the loss is the weighted mean, so text, a few % of the slots, is not drowned
    int on_rows;             // 0: the heads read the tower's selected features; 1: the projected rows,
                             // RMS-normalised as the language model's first norm sees them (no gain) —
                             // the tower then learns through the frozen projector what the LM receives
    int probe;               // 1: the tower stays frozen and only the heads learn — a linear probe of
                             // what the features (or rows) already say
    int projector_from_heads;// 1 (features only): the exported projector computes the heads — linear_1 =
                             // [char head; pixel head; −pixel head; the input's remaining rows],
                             // linear_2 = identity — so the language model receives each patch's
                             // character logits and pooled pixels on fixed axes
    const char *families;    // "textvqa:4,caption:2,scene:1": world image families and weights
    double diff_lo, diff_hi; // each image's difficulty uniform in [lo, hi]
    uint64_t seed;
    int threads;             // OpenBLAS threads (0: leave as is)
    long every;              // checkpoint, export and validation interval (steps)
    long log_every;
    int n_valid;             // textvqa validation images (valid split, difficulty diff_hi)
    int resume;
    int quiet;
} t2_tower_train_opts;

// Contract: defaults: steps 4000, batch 16, lr 1e-3 → 1e-5, warmup 100, weight decay 0.05, clip 1,
// recon 1, char weight 10, "textvqa:4,caption:2,scene:1", difficulty 0..1, seed 1, every 500, log_every 50,
// n_valid 64.
t2_tower_train_opts t2_tower_train_defaults(void);

// Contract: run it; 0 on completion (or a clean stop on SIGINT / SIGTERM, checkpointed), -1 + error
// naming the flag, file or step at fault.
int t2_tower_train_run(const t2_tower_train_opts *o);

#endif
