// svf.h — Singular Value Fine-tuning (Transformer², arXiv 2501.06252 §3.1; docs/svf.md): the SVD
// cache of the language model's matrices, z-vector experts as files, recomposition of the adapted
// matrices W' = U diag(σ'(z)) Vᵀ, the z-gradient for training, and an adapter that swaps recomposed
// matrices into an inference model (t2_lm) with a small cache. Not here: the REINFORCE trainer and
// dispatch (experts/), which build on this API.
//
// Parameterisations (docs/svf.md):
//   official (default, SakanaAI/self-adaptive-llms): m = sigmoid(z), σ' = S ⊙ m · ΣS / Σ(S ⊙ m);
//             init z = 0.1 + 0.01·N(0,1)
//   scale     (the paper's equation): σ' = S ⊙ z; init z = 1
// Mixtures mix the raw z vectors: z = Σ_k α_k z_k (as the official code does).
#ifndef T2_SVF_H
#define T2_SVF_H
#include <stddef.h>
#include <stdint.h>
#include "core/safetensors.h"
#include "language/lm.h"

#define T2_SVF_VERSION "1"
#define T2_EXPERT_VERSION "1"

// Which matrices of every decoder layer are adapted.
typedef enum { T2_SVF_MLP = 1, T2_SVF_ATTN = 2, T2_SVF_ALL = 3 } t2_svf_targets;
typedef enum { T2_SVF_PARAM_OFFICIAL, T2_SVF_PARAM_SCALE } t2_svf_param;

// Contract: "mlp" / "attn" / "all" → T2_SVF_*; -1 + error naming the accepted values.
int t2_svf_targets_parse(const char *s);
const char *t2_svf_targets_name(int targets);
// Contract: "official" / "scale" → T2_SVF_PARAM_*; -1 + error.
int t2_svf_param_parse(const char *s);
const char *t2_svf_param_name(int param);

// Contract: the weights' fingerprint for TARGETS: FNV-1a 64 over, per targeted matrix in canonical
// order (layer, then q k v o gate up down), its dtype, shape and raw stored bytes (names excluded, so
// the three weight-name layouts of one model agree). Hashes tensors on POOL's threads (NULL = serial).
// -1 + error when the model has no such matrices.
int t2_svf_fingerprint(const t2_st *weights, int targets, t2_pool *pool, uint64_t *fp);

// ---------------------------------------------------------------------------------------------
// Decomposition: one file per model and target set (default DIR/svf-<targets>.safetensors).

typedef struct {
    const char *name;       // the weight's name in the checkpoint
    int index, total;       // this is matrix index+1 of total
    int rows, cols, k;
    double seconds;         // SVD + write time (0 when resumed from the partial state)
    size_t bytes;           // U + S + V bytes
    int resumed;            // 1: taken from an earlier, interrupted run
    int fallback;           // 1: sgesdd did not converge, dgesdd was used
} t2_svf_progress;

typedef struct {
    int targets;            // T2_SVF_* (default mlp)
    int threads;            // OpenBLAS threads for the SVDs (set process-wide) and hashing (<= 0: cores)
    int force;              // redo even when OUT is already up to date
    int stop_after;         // > 0: compute at most this many matrices in this call, then return 1
                            //      leaving the partial state (tests; a time-sliced run)
    void (*progress)(void *ctx, const t2_svf_progress *p);   // after each matrix (may be NULL)
    void *ctx;
} t2_svf_decompose_opts;

t2_svf_decompose_opts t2_svf_decompose_defaults(void);
// Contract: DIR/svf-<targets>.safetensors into OUT (cap bytes); -1 if it does not fit.
int t2_svf_default_path(char *out, size_t cap, const char *dir, int targets);
// Contract: reduced SVD of every targeted matrix of WEIGHTS into OUT (safetensors, format t2-svf).
// Resumable: each finished matrix is written atomically to OUT.partial/<index>.safetensors first; a
// later call reuses the parts made from the same weights, and the merge into OUT removes them.
// Returns 0 when OUT is complete (already up to date included: *UP_TO_DATE = 1 when non-NULL), 1 when
// stop_after stopped it early, -1 + error (an SVD failure names the matrix).
int t2_svf_decompose(const t2_st *weights, const char *out, const t2_svf_decompose_opts *o, int *up_to_date);

// Contract: reduced SVD A(rows, cols) = U diag(S) Vᵀ in f32: U(rows, k), S(k) descending, V(cols, k),
// k = min(rows, cols) (LAPACKE_sgesdd; LAPACKE_dgesdd when that does not converge: *FALLBACK = 1).
// A is not modified. -1 + error if neither converges.
int t2_svf_svd(const float *A, int rows, int cols, float *U, float *S, float *V, int *fallback);

// ---------------------------------------------------------------------------------------------
// The loaded decomposition (mmap'd; U, S, V point into the file).

typedef struct {
    const char *name;       // weight name, e.g. "model.layers.0.mlp.gate_proj.weight"
    int layer, which;       // which: t2_lm_linear of language/lm_train.h (T2_LIN_Q .. T2_LIN_DOWN)
    int rows, cols, k;      // W is (rows, cols) = (out, in); k = min(rows, cols)
    const float *U;         // (rows, k)
    const float *S;         // (k), descending
    const float *V;         // (cols, k)
    size_t offset;          // where this matrix's z starts in an expert's flat z vector
    const void *W;          // the base weight (rows, cols) in the weights given to t2_svf_load
    t2_dtype dt;            //   and its stored dtype (valid while those weights are open)
} t2_svf_matrix;

typedef struct t2_svf t2_svf;

// Contract: open the decomposition PATH and check it against WEIGHTS (format, version, every
// targeted matrix present with the right shapes, fingerprint equal: a stale cache is refused with a
// message saying to rerun `t2 svf decompose`). POOL hashes (NULL = serial). NULL + error.
t2_svf *t2_svf_load(const char *path, const t2_st *weights, t2_pool *pool);
void t2_svf_free(t2_svf *s);
int t2_svf_count(const t2_svf *s);
const t2_svf_matrix *t2_svf_at(const t2_svf *s, int i);
// Contract: index of the matrix for (LAYER, WHICH), or -1.
int t2_svf_find(const t2_svf *s, int layer, int which);
int t2_svf_targets_of(const t2_svf *s);
uint64_t t2_svf_fingerprint_of(const t2_svf *s);
// Contract: Σ k over all matrices = the length of an expert's z.
size_t t2_svf_z_size(const t2_svf *s);

// ---------------------------------------------------------------------------------------------
// Parameterisation, recomposition and the z-gradient (one matrix; z is its own (k) slice).

// Contract: SIGMA(k) = σ'(Z) of matrix M under PARAM.
void t2_svf_sigma(const t2_svf_matrix *m, const float *z, int param, float *sigma);
// Contract: W(rows, cols) = U diag(σ'(z)) Vᵀ of matrix I (sgemm). SCRATCH holds k·k floats, or is
// NULL (then allocated here).
void t2_svf_recompose(const t2_svf *s, int i, const float *z, int param, float *W, float *scratch);
// Contract: DZ(k) += dL/dz of matrix I given the layer input X(rows, cols) and output gradient
// DY(rows, out) of Y = X W'ᵀ (as t2_lm_train_linear_io gives them): dL/dσ'_j = Σ_r (DY U)_rj (X V)_rj,
// chained through σ'(z) exactly (official: the sum-preserving rescale depends on every m).
// SCRATCH holds 2·rows·k floats, or is NULL (then allocated here).
void t2_svf_grad_z(const t2_svf *s, int i, const float *z, int param, const float *X, const float *dY,
                   int rows, float *dz, float *scratch);
// Contract: DZ(k) += dL/dz of matrix I given DW(rows, cols) = dL/dW' (dL/dσ'_j = u_jᵀ DW v_j).
// SCRATCH holds rows·k floats, or NULL.
void t2_svf_grad_z_dw(const t2_svf *s, int i, const float *z, int param, const float *dW, float *dz,
                      float *scratch);
// Contract: DZ(k) += dL/dz given G(k) = dL/dσ' (the chain rule through σ'(z) alone).
void t2_svf_sigma_backward(const t2_svf_matrix *m, const float *z, int param, const float *g, float *dz);

// ---------------------------------------------------------------------------------------------
// Experts: one z vector per targeted matrix, saved as safetensors (format t2-expert, docs/svf.md).

typedef struct {
    const t2_svf *svf;      // the decomposition it belongs to (matrix order and ranks)
    int param;              // T2_SVF_PARAM_*
    size_t n;               // t2_svf_z_size(svf)
    float *z;               // (n): matrix i's z at z + t2_svf_at(svf, i)->offset
    char *task;             // "" if unknown
    char *settings;         // training settings as JSON text ("{}" if none)
    double score;           // validation score, NAN if none
} t2_expert;

// Contract: a fresh expert: official z = 0.1 + 0.01·N(0,1) from SEED (xoshiro256**), scale z = 1.
t2_expert *t2_expert_new(const t2_svf *s, int param, uint64_t seed);
void t2_expert_free(t2_expert *e);
// Contract: set the descriptive fields (NULL leaves one unchanged).
void t2_expert_describe(t2_expert *e, const char *task, const char *settings_json, double score);
// Contract: write E to PATH atomically. -1 + error.
int t2_expert_save(const t2_expert *e, const char *path);
// Contract: read PATH for S: checks format, version, fingerprint (same base weights), targets, and
// that every matrix of S has a 1-D F32 z of length k (names matched without the layout prefix).
// NULL + error naming the file and what is wrong.
t2_expert *t2_expert_load(const char *path, const t2_svf *s);
// Contract: the mixture z = Σ_k ALPHA[k] · EXPERTS[k]->z of K experts of one svf and param; ALPHA is
// (K) or, with PER_MATRIX, (K, count) (one weight per expert per matrix, CEM's "per layer").
// task "mix". NULL + error when the experts disagree on svf or param.
t2_expert *t2_expert_mix(const t2_expert *const *experts, int K, const float *alpha, int per_matrix);

// ---------------------------------------------------------------------------------------------
// Adapter: recomposed matrices swapped into one t2_lm. Recomposed weights are stored in each base
// matrix's dtype and cached per z (LRU of `slots` sets), so re-applying a recent choice costs a
// comparison. Not thread-safe against a forward running on the same model; apply between requests.
// KV caches computed under another expert are the caller's to rewind.

typedef struct t2_svf_adapter t2_svf_adapter;

typedef struct {
    long hits, misses;              // applies served from the cache / recomposed
    double last_recompose_s;        // time of the last recomposition (all matrices)
    double total_recompose_s;
    size_t slot_bytes;              // memory of one cached set of matrices
} t2_svf_adapter_stats;

// Contract: an adapter for LM (built from the weights S was checked against); SLOTS cached sets
// (>= 1). Checks that every matrix of S fits LM's shapes. NULL + error.
t2_svf_adapter *t2_svf_adapter_new(t2_lm *lm, const t2_svf *s, int slots);
// Contract: restores the base weights, then frees.
void t2_svf_adapter_free(t2_svf_adapter *a);
// Contract: make LM use E's recomposed matrices (E = NULL: exactly the base weights again). E must
// belong to the adapter's svf. -1 + error.
int t2_svf_apply(t2_svf_adapter *a, const t2_expert *e);
t2_svf_adapter_stats t2_svf_adapter_stats_get(const t2_svf_adapter *a);

#endif
