// generate.h — the decoding loop shared by every front end (t2 generate / ask / chat, the server):
// sample a token, stop on EOS / stop strings / length, detokenise incrementally and hand out text
// only once it is final (whole UTF-8 characters, never part of a stop string). Not here: the prompt
// (fusion/vlm.h builds it) and the sampler's maths (sampler.h).
#ifndef T2_GENERATE_H
#define T2_GENERATE_H
#include <stddef.h>
#include <stdint.h>
#include "language/lm.h"
#include "language/sampler.h"
#include "language/tokenizer.h"

#define T2_GEN_MAX_STOPS 16

typedef struct {
    int n_predict;                          // tokens to generate at most
    int ignore_eos;
    const char *stops[T2_GEN_MAX_STOPS];    // stop strings (cut from the output)
    int n_stops;
    // Called with each piece of final text as it becomes final; return non-zero to stop early.
    int (*on_text)(void *ctx, const char *text, size_t len);
    void *ctx;
} t2_gen_params;

typedef enum { T2_GEN_STOP_LENGTH, T2_GEN_STOP_EOS, T2_GEN_STOP_STRING, T2_GEN_STOP_CALLER } t2_gen_stop;

typedef struct {
    int n_gen;              // tokens generated (EOS not counted)
    char *text;             // the whole output (malloc'd, NUL-terminated; stop string cut)
    size_t len;
    int32_t *ids;           // (n_gen) the generated ids (malloc'd)
    t2_gen_stop stop;
    double t_decode;        // seconds in the loop
} t2_gen_result;

// The loop one step at a time, for callers that decode several sequences together
// (t2_lm_forward_batch). Not thread-safe per object; one per sequence.
typedef struct {
    const t2_tokenizer *tok;
    const t2_gen_params *gp;
    int eos_id, np, n_prompt, n_hist, n_gen, n_text, done;
    int32_t *hist, *text_ids;   // prompt + generated ids; the generated ids that decode to text
    char *out;                  // decoded text so far
    size_t cap, len, printed, max_stop;
    t2_gen_stop stop;
} t2_gen;

// Contract: start generating after PROMPT(n_prompt) (for the repetition penalty) with GP (kept by
// reference). Allocates; t2_gen_end frees.
void t2_gen_begin(t2_gen *g, const t2_lm *lm, const t2_tokenizer *tok, const int32_t *prompt, int n_prompt,
                  const t2_gen_params *gp);
// Contract: choose the next token from LOGITS(vocab) (modified). Returns 1 when generation is over
// (nothing more to feed), else 0 with *NEXT the token to feed to the model before the next step.
int t2_gen_step(t2_gen *g, t2_sampler *smp, float *logits, int32_t *next);
// Contract: move the output into RES (t_decode left 0) and release G.
void t2_gen_end(t2_gen *g, t2_gen_result *res);

// Contract: generate after a prompt of N_PROMPT positions already in ST, whose last position's
// logits are LOGITS(vocab) (overwritten). PROMPT(n_prompt) feeds the repetition penalty. TOK may be
// NULL: the text is then the ids, space-separated. 0 or -1 + error (a forward failure); RES is
// filled either way (free with t2_gen_result_free).
int t2_generate(t2_lm *lm, t2_lm_state *st, const t2_tokenizer *tok, t2_sampler *smp, float *logits,
                const int32_t *prompt, int n_prompt, const t2_gen_params *gp, t2_gen_result *res);
void t2_gen_result_free(t2_gen_result *res);

#endif
