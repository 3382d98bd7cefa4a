// dispatch.h — inference-time adaptation (Transformer² §3.3): the `--adapt` strategies one flag names
// for ask, eval and serve, the `\boxed{label}` parser, and the dispatcher that runs the short first
// pass (the classification prompt, answered by the base model or by the classification expert, the
// request's images shown to it too) and applies the choice — an expert, a mixture, or exactly the
// base weights — before the second pass. Recomposed weights are cached per expert / mixture (the SVF
// adapter's LRU), so consecutive requests with the same choice pay nothing. Not here: the few-shot
// search (cem.h; its fitness runs benchmark items, eval/run.h), the answering pass (its callers).
#ifndef T2_EXPERTS_DISPATCH_H
#define T2_EXPERTS_DISPATCH_H
#include <stddef.h>
#include "experts/registry.h"
#include "fusion/vlm.h"
#include "svf/svf.h"

#define T2_ADAPT_MAX_MIX 16
#define T2_ADAPT_NAME 64

typedef enum {
    T2_ADAPT_NONE,          // the base weights, no first pass
    T2_ADAPT_PROMPT,        // first pass: the base model answers the classification prompt
    T2_ADAPT_CLASSIFIER,    // first pass: the same prompt, answered with the classification expert
    T2_ADAPT_FEWSHOT,       // fewshot:FILE — a mixture found by CEM on FILE's examples (or FILE is its
                            // saved result, an expert file)
    T2_ADAPT_EXPERT,        // expert:NAME — a registry entry, or the path of an expert file
    T2_ADAPT_MIX,           // mix:NAME=α,NAME=α — a fixed mixture of registry experts
} t2_adapt_kind;

typedef struct {
    t2_adapt_kind kind;
    char text[512];                             // the spec as given, normalised ("none", "expert:math")
    char arg[1024];                             // fewshot: FILE; expert: NAME or path
    int n_mix;                                  // mix: names and weights
    char mix_names[T2_ADAPT_MAX_MIX][T2_ADAPT_NAME];
    float mix_alpha[T2_ADAPT_MAX_MIX];
} t2_adapt_spec;

// Contract: parse an --adapt value: none | prompt | classifier | fewshot:FILE | expert:NAME |
// mix:NAME=α,NAME=α (α a finite number; names unique; at most T2_ADAPT_MAX_MIX). NULL or "" = none.
// -1 + error quoting the value and the grammar.
int t2_adapt_parse(const char *s, t2_adapt_spec *out);
// Contract: 1 when the strategy runs a first pass per request (prompt, classifier), else 0.
int t2_adapt_per_request(const t2_adapt_spec *s);
// The grammar, for --help texts.
#define T2_ADAPT_HELP "none | prompt | classifier | fewshot:FILE | expert:NAME | mix:NAME=A,NAME=A"

// Contract: the label inside the last "\boxed{...}" of TEXT into LABEL(cap): whitespace trimmed,
// lower-cased, a trailing '.' dropped; "\boxed{ Math }" → "math". 1 when found, 0 when TEXT has no
// complete \boxed{} (LABEL = "").
int t2_dispatch_parse_label(const char *text, char *label, size_t cap);

// How a request was adapted.
typedef struct {
    char strategy[T2_ADAPT_NAME];       // "none", "prompt", "classifier", "fewshot", "expert", "mix"
    char label[T2_ADAPT_NAME];          // first pass: the label parsed ("" when none was boxed)
    char choice[T2_ADAPT_NAME];         // what was applied: an expert's name, "mixture", or "base"
    char expert[T2_ADAPT_NAME];         // the single expert applied ("" for base or a mixture)
    int n_mix;                          // a mixture: its experts and weights (0 = none)
    char mix_names[T2_ADAPT_MAX_MIX][T2_ADAPT_NAME];
    float mix_alpha[T2_ADAPT_MAX_MIX];
    char first_text[160];               // the first pass's raw output (truncated)
    char note[160];                     // why the first pass did not run ("" when it did)
    int first_tokens;                   // its prompt positions + generated tokens
    double first_pass_s;                // the first pass (prompt, prefill, decode)
    double apply_s;                     // t2_svf_apply (≈ 0 on a cache hit)
    int cache_hit;                      // the recomposed weights were cached
    const t2_expert *weights;           // what is applied (NULL = the base), owned by the dispatcher
} t2_adapt_choice;

typedef struct {
    t2_chat_kind chat;          // the template both passes use (T2_CHAT_NONE: the text as it is)
    int first_max_tokens;       // the first pass's cap (default 24; it stops at the closing brace)
    int n_ctx;                  // first-pass context (0: min(max_position, 4096))
    int cache_slots;            // recomposed sets kept (default 4)
    const char *registry;       // registry path (NULL: DIR/experts/registry.json)
} t2_dispatch_opts;

t2_dispatch_opts t2_dispatch_defaults(void);

typedef struct t2_dispatcher t2_dispatcher;

// Contract: a dispatcher for model M and strategy SPEC: loads the registry (unless SPEC is none),
// the decomposition and the experts SPEC needs now (expert:, mix:, classifier; fewshot: when FILE is
// an expert file), and an SVF adapter on M's language model. A fewshot: spec whose FILE holds
// examples waits for t2_dispatcher_set_fixed (the search lives above, eval/run.h). NULL + error.
t2_dispatcher *t2_dispatcher_new(t2_vlm *m, const t2_adapt_spec *spec, const t2_dispatch_opts *o);
// Contract: restores the base weights, frees.
void t2_dispatcher_free(t2_dispatcher *d);
const t2_adapt_spec *t2_dispatcher_spec(const t2_dispatcher *d);
t2_registry *t2_dispatcher_registry(t2_dispatcher *d);             // NULL for none
t2_svf_adapter *t2_dispatcher_adapter(t2_dispatcher *d);           // NULL for none
// Contract: 1 when a fewshot: spec still needs its mixture (t2_dispatcher_set_fixed), else 0.
int t2_dispatcher_needs_fewshot(const t2_dispatcher *d);
// Contract: use E (taken over) as the fixed choice of a non-per-request strategy, reported as the
// mixture NAMES(k)/ALPHA(k) when K > 0 (ALPHA per expert; NULL names = a plain expert named by E's task).
void t2_dispatcher_set_fixed(t2_dispatcher *d, t2_expert *e, const char *const *names, const float *alpha, int k);

// Contract: decide how to answer QUESTION (the user's text; IMAGES its N encoded images, shown to the
// first pass as "<image>" markers before the prompt) and apply it to the model: per-request
// strategies run the first pass; an unknown label or 'other' applies the base weights explicitly.
// OUT describes the choice. -1 + error (a forward failure, an expert that does not load).
int t2_dispatcher_choose(t2_dispatcher *d, const char *question, const t2_image_rows *images, int n, t2_adapt_choice *out);
// Contract: the same for another strategy SPEC over D's registry and adapter (a server answers each
// request with its own strategy): none, prompt, classifier, expert:NAME (registry names only), mix:
// (each distinct mixture is built once and kept, at most 64). -1 + error.
int t2_dispatcher_choose_as(t2_dispatcher *d, const t2_adapt_spec *spec, const char *question, const t2_image_rows *images,
                            int n, t2_adapt_choice *out);
// Contract: the choice a first-pass output TEXT leads to under D's registry (no model run, nothing
// applied): label parsed, then an expert or base. For tests and for replaying recorded outputs.
void t2_dispatcher_choice_of_text(t2_dispatcher *d, const char *text, t2_adapt_choice *out);
// Contract: apply the weights of choice C again (a pointer swap when cached; a server re-applies each
// slot's choice before its compute). -1 + error.
int t2_dispatcher_apply(t2_dispatcher *d, const t2_adapt_choice *c);

// Contract: the choice as JSON fields appended to OBJ (a cJSON object): adapt, label, choice,
// expert, mixture {name: α}, first_pass_ms, apply_ms, cache_hit.
struct cJSON;
void t2_adapt_choice_json(struct cJSON *obj, const t2_adapt_choice *c);

#endif
