// data.h — where `t2 train` gets its samples: a weighted mixture of sources (the procedural world's
// families, drawn fresh; JSONL files in t2 eval's generic format), each sample a pure function of
// (seed, step, slot) so a resumed run sees exactly the data the uninterrupted one would. A sample is
// rendered as `t2 eval` / `t2 ask` would ask it (eval's prompt text, the chat template, "<image>"
// expanded to the image's rows) followed by the answer and the end-of-turn token, which alone are scored.
#ifndef T2_TRAIN_DATA_H
#define T2_TRAIN_DATA_H
#include <cJSON.h>
#include <stdint.h>
#include "language/chat.h"
#include "language/tokenizer.h"
#include "vision/preprocess.h"

typedef struct t2_train_data t2_train_data;

// What the data needs to know of the model.
typedef struct {
    const t2_tokenizer *tok;
    t2_chat_kind chat;
    const t2_preproc *pre;     // NULL for text-only models
    int image_tokens;          // rows per image (0 without vision)
    int image_token_id;
    int image_size;            // world images are drawn at this size
    int max_len;               // longer samples are refused (counted, skipped)
    double eval_prompt_share;  // share of samples asked with eval's suffix (the rest as `t2 ask` asks)
} t2_train_data_model;

// One sample: positions 0..n-1.
typedef struct {
    int n;
    int32_t *ids;       // (max_len)
    int32_t *targets;   // (max_len) next-token target at each position, -1 = not scored
    uint8_t *is_image;  // (max_len)
    int has_image;
    float *pixels;      // (3, S, S) when has_image
    char family[64];    // the source's name (world family or file stem)
} t2_train_sample;

// Contract: parse SOURCES, a JSON array of {"world": FAMILY, "weight": W} or {"jsonl": FILE,
// "images": DIR?, "weight": W} (FILE / DIR relative to BASE_DIR); JSONL files are loaded here.
// Either may say "mc_answer": "letter" (default: a multiple-choice item's target is its letter) or
// "option_letter" (the option's text, then its letter in parentheses: "eagle (B)").
// NULL + error naming the source.
t2_train_data *t2_train_data_new(const cJSON *sources, const char *base_dir, const t2_train_data_model *m,
                                 uint64_t seed);
void t2_train_data_free(t2_train_data *d);
int t2_train_data_sources(const t2_train_data *d);
const char *t2_train_data_source_name(const t2_train_data *d, int i);

// Contract: sample SLOT of STEP (deterministic in seed, step, slot, difficulty) into S (buffers from
// t2_train_sample_alloc). A sample longer than max_len is redrawn (up to 16 times) and counted.
// -1 + error naming the item on a failure (unreadable image, tokenizer error).
int t2_train_data_get(t2_train_data *d, int64_t step, int slot, float difficulty, t2_train_sample *s);
// Contract: samples redrawn because they were too long, so far.
long t2_train_data_too_long(const t2_train_data *d);

// Contract: ANSWER's target ids as a sample ends — " ANSWER" (the leading space for Vicuna and no
// template: what generation continues "ASSISTANT:" with) tokenised into OUT, then the template's
// end-of-turn token (else EOS). Returns the count, end included; -1 when more than CAP; -2 + error
// (tokenizer failure, no end token). Shared with `t2 svf train --objective nll`.
int t2_train_answer_ids(const t2_tokenizer *tok, t2_chat_kind chat, const char *answer, int32_t *out, int cap);

void t2_train_sample_alloc(t2_train_sample *s, int max_len, int image_size);
void t2_train_sample_free(t2_train_sample *s);

#endif
