// lm_train.h — exact gradients of the decoder language model (Llama / Qwen2 / Mistral semantics of
// lm.h) for training: a trainable f32 copy of every parameter in one block, a gradient block of the
// same layout, and an activation block sized once for (max_B, max_T). Forward = mean cross-entropy
// over the non-ignored targets; backward accumulates dL/dparams (+=). Not here: optimizers, the
// inference path (lm.c: KV cache, stored-dtype weights), SVF (svf/ uses the linear-layer hook below).
//
// Batches: B independent rows of length T, each with causal attention over its own positions 0..T-1
// (no packing of several sequences in one row, no attention mask beyond causality); padding is
// expressed by targets == -1 (ignored in the loss). Mistral's sliding window is not applied.
#ifndef T2_LM_TRAIN_H
#define T2_LM_TRAIN_H
#include <stddef.h>
#include <stdint.h>
#include "core/safetensors.h"
#include "language/lm.h"

// The parameters (or their gradients): pointers into one f32 block. Per-layer tensors of all layers
// lie back to back: wq + l*HD*C is layer l's q_proj. Absent tensors (biases without attn_bias,
// lm_head when tied) are NULL. HD = n_heads*head_dim, KVD = n_kv_heads*head_dim.
typedef struct {
    float *embed;        // (V, C)
    float *lm_head;      // (V, C) or NULL when tied to embed
    float *norm_final;   // (C)
    float *norm_in;      // (L, C)
    float *wq, *bq;      // (L, HD, C) (L, HD)
    float *wk, *bk;      // (L, KVD, C) (L, KVD)
    float *wv, *bv;      // (L, KVD, C) (L, KVD)
    float *wo;           // (L, C, HD)
    float *norm_post;    // (L, C)
    float *wgate, *wup;  // (L, I, C) (L, I, C)
    float *wdown;        // (L, C, I)
} t2_lm_params;

#define T2_LM_PARAM_KINDS 15   // the fields above, in order

typedef struct t2_lm_train t2_lm_train;

// Flags for t2_lm_train_new_ex.
#define T2_LM_TRAIN_SAVE_LINEAR 1   // keep every linear layer's input X and output gradient dY
// The head (final norm → logits) runs only at positions with a target: the loss and its gradient
// are unchanged, the other positions' logits are never computed. t2_lm_train_logits then holds one
// row per target position, in order; t2_lm_train_backward_from is not available.
#define T2_LM_TRAIN_TARGET_LOGITS 2

// Contract: allocate parameters, gradients (zeroed) and activations for batches up to
// (MAX_B, MAX_T); parameters are uninitialised until t2_lm_train_load. NULL + error on bad sizes.
t2_lm_train *t2_lm_train_new(const t2_lm_config *cfg, int max_B, int max_T);
t2_lm_train *t2_lm_train_new_ex(const t2_lm_config *cfg, int max_B, int max_T, int flags);
void t2_lm_train_free(t2_lm_train *tr);
const t2_lm_config *t2_lm_train_cfg(const t2_lm_train *tr);

// Contract: copy every parameter from ST (names "model." / "language_model.model." /
// "model.language_model." like lm.c; F32/F16/BF16 widened to f32; shapes checked). An untied config
// whose checkpoint lacks lm_head gets lm_head = embed (as inference does). -1 + error naming the tensor.
int t2_lm_train_load(t2_lm_train *tr, const t2_st *st);

// Contract: the parameter / gradient views, and the whole blocks as flat vectors of *N floats
// (same layout: grads[i] is the gradient of params[i]).
t2_lm_params *t2_lm_train_params(t2_lm_train *tr);
t2_lm_params *t2_lm_train_grads(t2_lm_train *tr);
float *t2_lm_train_param_block(t2_lm_train *tr, size_t *n);
float *t2_lm_train_grad_block(t2_lm_train *tr, size_t *n);

// Contract: the number of named tensors (per layer tensors counted per layer); for i in range, the
// canonical HF name without prefix ("layers.0.self_attn.q_proj.weight", "embed_tokens.weight",
// "lm_head.weight", ...) into NAME, and the tensor's parameter / gradient pointers and size.
int t2_lm_train_tensor_count(const t2_lm_train *tr);
int t2_lm_train_tensor(t2_lm_train *tr, int i, char *name, size_t cap, float **param, float **grad,
                       size_t *numel);

// Contract: the stored shape of tensor I (as in the checkpoint) into DIMS[2]; returns ndim (1 or 2)
// or -1 + error when I is out of range.
int t2_lm_train_tensor_shape(const t2_lm_train *tr, int i, int64_t *dims);

// Contract: forward over TOKENS(B, T) with next-token TARGETS(B, T) (-1 = ignored); returns the
// mean cross-entropy over the non-ignored targets (0 when there are none) and keeps what the backward
// needs. NAN + error if B/T exceed the allocation or an id is outside the vocabulary.
float t2_lm_train_forward(t2_lm_train *tr, const int32_t *tokens, const int32_t *targets, int B, int T);
// Contract: the same with input embeddings, as t2_lm_forward takes them: position n of the (B, T)
// batch takes EMBEDS(n, hidden) (EMBEDS is (B, T, hidden), row-major) when EMBEDS is non-NULL and
// IS_EMBED(B, T) is NULL or IS_EMBED[n] != 0, else the embedding of TOKENS[n]. TOKENS is read only at
// the other positions (may be NULL when every position is embedded). Embedded positions add nothing
// to the embed_tokens gradient; their gradient is t2_lm_train_dembeds. EMBEDS is copied (not kept).
float t2_lm_train_forward_embeds(t2_lm_train *tr, const int32_t *tokens, const float *embeds,
                                 const uint8_t *is_embed, const int32_t *targets, int B, int T);
// Contract: the logits (B*T, V) of the last forward (with T2_LM_TRAIN_TARGET_LOGITS: (targets, V), the
// target positions' rows in order).
const float *t2_lm_train_logits(const t2_lm_train *tr);
// Contract: per position (B*T) of the last forward, the cross-entropy of its target (0 where the
// target is ignored): the terms whose mean the forward returned. NULL before a forward.
const float *t2_lm_train_token_nll(const t2_lm_train *tr);
// Contract: dL/dparams of the last forward's loss, added (+=) to the gradient block.
void t2_lm_train_backward(t2_lm_train *tr);
// Contract: the same backward from DLOGITS(B*T, V) = d(loss)/d(logits) of the last forward, for a loss
// the caller computed from t2_lm_train_logits (policy gradients, KL terms); DLOGITS may be the
// t2_lm_train_dlogits_buffer (B*T*V floats owned by TR, free to fill between forward and backward).
void t2_lm_train_backward_from(t2_lm_train *tr, const float *dlogits);
float *t2_lm_train_dlogits_buffer(t2_lm_train *tr);
// Contract: from now on t2_lm_train_backward adds S · dL/dparams (default 1). A batch split over
// replicas (data-parallel training) weights each part by its share of the batch's targets, so that
// the parts' gradients sum to the whole batch's. Not applied by t2_lm_train_backward_from.
void t2_lm_train_set_loss_scale(t2_lm_train *tr, float s);
void t2_lm_train_zero_grad(t2_lm_train *tr);
// Contract: after a backward, dL/d(input rows) (B*T, hidden) of the last forward's loss (written, not
// accumulated; rows for every position, token or embedded — callers read the embedded ones, e.g. as
// the dout of the projector / vision backward). Valid until the next forward or backward; NULL +
// error before a backward.
const float *t2_lm_train_dembeds(const t2_lm_train *tr);

// The linear layers of one decoder layer, for the SVF hook.
typedef enum { T2_LIN_Q, T2_LIN_K, T2_LIN_V, T2_LIN_O, T2_LIN_GATE, T2_LIN_UP, T2_LIN_DOWN } t2_lm_linear;

// Contract: with T2_LM_TRAIN_SAVE_LINEAR, after a forward + backward: X(rows, in) is the input and
// dY(rows, out) the output gradient of linear WHICH of LAYER (rows = B*T), so that
// dL/dW(out, in) = dYᵀ·X and dL/db = Σ_rows dY. -1 + error without the flag or before a backward.
int t2_lm_train_linear_io(const t2_lm_train *tr, int layer, t2_lm_linear which, const float **X,
                          const float **dY, int *rows, int *in, int *out);

#endif
