// registry.h — a model's experts as one file, models/<model>/experts/registry.json: each expert's name,
// file, modality (vision / text) and, for the experts the first pass may choose, its dispatch entry
// (label + a one-line description for the classification prompt); optionally the classification
// expert (strategy B) and the decomposition the experts belong to. Adding an expert is a file and an
// entry, no code. Experts load lazily (t2_expert_load, checked against the model's weights). Not
// here: choosing between them (dispatch.h). Format: docs/adaptation.md.
#ifndef T2_EXPERTS_REGISTRY_H
#define T2_EXPERTS_REGISTRY_H
#include "core/pool.h"
#include "core/safetensors.h"
#include "svf/svf.h"

#define T2_REGISTRY_FORMAT "t2-experts"
#define T2_REGISTRY_VERSION 1

typedef enum { T2_MODALITY_TEXT, T2_MODALITY_VISION } t2_modality;

typedef struct {
    char *name;          // unique, e.g. "textvqa"
    char *file;          // the expert file, resolved (relative entries against the registry's folder)
    int modality;        // T2_MODALITY_*
    char *label;         // dispatch label ("" when the first pass never picks it: classifier, few-shot)
    char *description;   // one line for the classification prompt ("" when not dispatched)
} t2_registry_entry;

typedef struct t2_registry t2_registry;

// Contract: DIR/experts/registry.json into OUT (cap bytes); -1 if it does not fit.
int t2_registry_default_path(char *out, size_t cap, const char *model_dir);
// Contract: read and check a registry (PATH NULL: DIR/experts/registry.json): format and version,
// every entry with a unique name and an existing file, modality "text" / "vision", dispatch labels
// unique, lower-case [a-z0-9_-] and not "other", the classifier naming an entry. Nothing is loaded
// yet. NULL + error naming the file and the entry at fault.
t2_registry *t2_registry_load(const char *model_dir, const char *path);
void t2_registry_free(t2_registry *r);
const char *t2_registry_path(const t2_registry *r);
int t2_registry_count(const t2_registry *r);
const t2_registry_entry *t2_registry_at(const t2_registry *r, int i);
// Contract: index of the entry named NAME, or -1.
int t2_registry_find(const t2_registry *r, const char *name);
// Contract: index of the entry whose dispatch label is LABEL (case-insensitive), or -1.
int t2_registry_find_label(const t2_registry *r, const char *label);
// Contract: index of the classification expert (the registry's "classifier"), or -1 when none.
int t2_registry_classifier(const t2_registry *r);
// Contract: the decomposition file the experts belong to (registry "svf", default DIR/svf-mlp.safetensors).
const char *t2_registry_svf_path(const t2_registry *r);

// Contract: open the decomposition against WEIGHTS (the model's; kept by reference) once; later calls
// return the same. POOL hashes the fingerprint (NULL = serial). NULL + error (a stale decomposition
// names `t2 svf decompose`).
const t2_svf *t2_registry_svf(t2_registry *r, const t2_st *weights, t2_pool *pool);
// Contract: entry I's expert, loaded on first use against the registry's svf (t2_registry_svf must
// have succeeded). NULL + error naming the entry, its file and what is wrong (missing file,
// fingerprint of other weights, shapes). The registry owns the expert.
const t2_expert *t2_registry_expert(t2_registry *r, int i);

// Contract: the classification prompt (Transformer² strategy A) for QUESTION, malloc'd:
//   "Classify the request into one category: L1 (D1), L2 (D2), ..., other (anything else). Answer
//    \boxed{category}.\nRequest: QUESTION"
// over the dispatched entries in registry order — the same text the world's "dispatch" family
// trains t2-tiny on (world/world.c), so the model can be its own first pass.
char *t2_registry_prompt(const t2_registry *r, const char *question);

#endif
