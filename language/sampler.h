// sampler.h — picks the next token from logits: greedy, temperature, top-k, top-p, min-p, repetition
// penalty, seeded. Owns its scratch (allocated once for the vocabulary size): no allocation per token.
#ifndef T2_SAMPLER_H
#define T2_SAMPLER_H
#include <stdint.h>

typedef struct {
    float temperature;      // 0 = greedy
    int top_k;              // 0 = off
    float top_p;            // 1 = off
    float min_p;            // 0 = off
    float repeat_penalty;   // 1 = off (CTRL-style: logit/p if > 0 else logit*p, over recent tokens)
    int repeat_last_n;      // window for the penalty
    uint64_t seed;
} t2_sampler_params;

typedef struct t2_sampler t2_sampler;

// Contract: defaults = greedy, no penalties, seed 0 (llama.cpp-like values for the others).
t2_sampler_params t2_sampler_defaults(void);
t2_sampler *t2_sampler_new(int vocab, t2_sampler_params p);
void t2_sampler_free(t2_sampler *s);
// Contract: choose a token from LOGITS(vocab) (may be modified); HISTORY(n) are the tokens so far,
// for the repetition penalty.
int t2_sampler_sample(t2_sampler *s, float *logits, const int32_t *history, int n);

#endif
