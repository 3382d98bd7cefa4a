// world.h — the procedural visual world that trains and tests the shipped model (t2-tiny): small
// RGB images (signs, labels, price tags, plates, doors, shape scenes) drawn with a TrueType font,
// and short-answer questions about them, plus text families (math, code, multiple-choice facts,
// dispatch). Every item is a pure function of (family, split, index, opts). Not here: tokenizing,
// training or scoring (train/, eval/). docs/world.md describes every family and template.
#ifndef T2_WORLD_H
#define T2_WORLD_H
#include <stdint.h>

typedef enum {
    T2_WORLD_TEXTVQA, T2_WORLD_SCENE, T2_WORLD_MATH, T2_WORLD_CODE, T2_WORLD_REASONING,
    T2_WORLD_DISPATCH,
    /* held out, never trained on: */
    T2_WORLD_SIGNSUM, T2_WORLD_MATH_HARD, T2_WORLD_CODE_HARD, T2_WORLD_KNOW,
    /* trained on, no test target (the captioning stage); last, so the others keep their seeds: */
    T2_WORLD_CAPTION,
    T2_WORLD_FACTS,   // trained on, no test set: the pieces of a reasoning question (after caption: same reason)
    T2_WORLD_COUNT
} t2_world_family;

typedef enum { T2_WORLD_SPLIT_TRAIN, T2_WORLD_SPLIT_VALID, T2_WORLD_SPLIT_TEST } t2_world_split;

typedef struct {
    int image_size;     // square images, pixels (default 96; 32..1024)
    float difficulty;   // 0..1: 0 = large short text, little clutter; 1 = the full range (curriculum knob)
} t2_world_opts;

#define T2_WORLD_MAX_CHOICES 4
#define T2_WORLD_MAX_GLYPHS 48

// One drawn character: its byte and its ink box in image pixels, [x0, x1) × [y0, y1), clipped to the
// image. What the tower's patch pretraining (train/tower_train.h) learns to read.
typedef struct {
    char ch;
    int16_t x0, y0, x1, y1;
} t2_world_glyph;

typedef struct {
    int family;
    int split;
    uint64_t index;
    char id[64];            // "<family>-<split>-<index>"
    char question[1024];    // what the model is asked (image items WITHOUT the "<image>" marker); MC
                            // items end with the choices as eval/run.c lists them: "\nA. x\nB. y..."
    char answer[192];       // canonical answer (lower case word / number / MC letter / "\\boxed{label}" /
                            // a caption: "2 red circles, 1 big blue square")
    int n_choices;          // MC only (reasoning), else 0
    char choices[T2_WORLD_MAX_CHOICES][96];
    int has_image;          // 1: RGB was filled
    int n_glyphs;           // the characters drawn on the image (spaces have no ink and no entry),
    t2_world_glyph glyphs[T2_WORLD_MAX_GLYPHS];   // in drawing order; past the cap they are not recorded
} t2_world_item;

// Contract: image_size 96, difficulty 1.
t2_world_opts t2_world_defaults(void);
// Contract: "textvqa", "scene", "math", "code", "reasoning", "dispatch", "signsum", "math_hard",
// "code_hard", "know", "caption", "facts" → the family; -1 if unknown.
int t2_world_family_parse(const char *name);
const char *t2_world_family_name(int family);
// Contract: 1 for the held-out families (signsum, math_hard, code_hard, know), else 0.
int t2_world_family_held_out(int family);
// Contract: 1 if the family's items always have images (dispatch: only some do), else 0.
int t2_world_family_has_images(int family);
// Contract: the eval metric name: "vqa" (image families), "exact" (math, code, dispatch and their
// hard twins), "mc" (reasoning).
const char *t2_world_family_metric(int family);
// Contract: "train", "valid", "test" → the split; -1 if unknown.
int t2_world_split_parse(const char *name);
const char *t2_world_split_name(int split);

// Contract: item INDEX of FAMILY in SPLIT: a pure function of (family, split, index, opts) — the
// same bytes every call on every machine (xoshiro seeded from a hash of family/split/index; no
// global state but the once-loaded font). RGB (image_size² × 3, row-major) is written when the
// item has an image (it->has_image; dispatch items sometimes have one, so pass RGB for them too).
// Thread-safe. O may be NULL (defaults). 0, or -1 + t2_fail
// (bad arguments, font missing).
int t2_world_make(int family, int split, uint64_t index, const t2_world_opts *o, t2_world_item *it, uint8_t *rgb);

// Contract: write items 0..N-1 of FAMILY/SPLIT to DIR/<family>-<split>.jsonl in the generic JSONL
// format of `t2 eval` ({"id","image"?,"question","answers":[a],"task","metric","choices"?}; MC
// questions hold the stem only there, eval appends the choices), PNGs as
// DIR/images/<family>-<split>-<index>.png (paths relative to DIR). Atomic per file. 0 or -1 + error.
int t2_world_write(const char *dir, int family, int split, int n, const t2_world_opts *o);

// Contract: t2_world_write calling PROGRESS(CTX, done, N) after each item (PROGRESS may be NULL).
int t2_world_write_progress(const char *dir, int family, int split, int n, const t2_world_opts *o,
                            void (*progress)(void *ctx, int done, int total), void *ctx);

// Contract: the JSONL line (no newline) of IT as t2_world_write writes it, IMAGE its relative image
// path or NULL; malloc'd, NULL on allocation failure.
char *t2_world_jsonl_line(const t2_world_item *it, const char *image);

#endif
