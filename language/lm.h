// lm.h — the decoder-only language model: Llama family (Llama-2/3, Vicuna, Mistral) and Qwen2, read
// from Hugging Face checkpoints in any of the three weight-name layouts (plain `model.*`, legacy
// LLaVA `language_model.model.*`, new LLaVA `model.language_model.*`). Weights stay in the mmap in
// their stored dtype; compute is f32. A KV cache per sequence; a forward over a block of positions
// (prefill, through sgemm) and single-token decode (SIMD matvec) share one code path.
#ifndef T2_LM_H
#define T2_LM_H
#include <stdint.h>
#include <cJSON.h>
#include "core/pool.h"
#include "core/safetensors.h"

typedef enum { T2_ARCH_LLAMA, T2_ARCH_QWEN2, T2_ARCH_MISTRAL } t2_arch;
typedef enum { T2_ROPE_DEFAULT, T2_ROPE_LLAMA3, T2_ROPE_LINEAR } t2_rope_type;

typedef struct {
    t2_arch arch;
    int vocab_size, hidden_size, n_layers, n_heads, n_kv_heads, head_dim, intermediate_size;
    int max_position;               // max_position_embeddings: the context limit
    float rope_theta, rms_eps;
    t2_rope_type rope_type;         // rope_scaling.rope_type / type
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_position;
    int tie_embeddings;             // lm_head = embed_tokens
    int attn_bias;                  // q/k/v biases (Qwen2)
    int bos_id, eos_id;             // from config.json, -1 if absent
} t2_lm_config;

// Contract: fill CFG from a text config object (config.json, or a LLaVA config's text_config);
// -1 + error naming the missing/invalid field.
int t2_lm_config_parse(const cJSON *j, t2_lm_config *cfg);
// Contract: read DIR/config.json and parse its text part (text_config for LLaVA-family configs).
int t2_lm_config_load(const char *dir, t2_lm_config *cfg);
const char *t2_arch_name(t2_arch a);
// Contract: INV_FREQ(head_dim / 2) = the rotary frequencies theta^(-2i/D) after the configured scaling
// (transformers modeling_rope_utils.py: default, linear, llama3).
void t2_lm_rope_frequencies(const t2_lm_config *c, float *inv_freq);
// Contract: COS_OUT, SIN_OUT (n_pos, head_dim / 2) = cos / sin of position × frequency (angles in f64).
void t2_lm_rope_table(const t2_lm_config *c, int n_pos, float *cos_out, float *sin_out);

typedef struct t2_lm t2_lm;

// Contract: which of the three weight-name layouts ST uses, found by its embedding: *PREFIX gets
// "model.language_model." (new LLaVA), "language_model.model." (legacy LLaVA) or "model." (text),
// *HEAD the lm_head tensor's name in that layout. -1 + error naming the three candidates.
int t2_lm_find_layout(const t2_st *st, const char **prefix, const char **head);

// Contract: bind the weights in ST for CFG, finding the layout by name; each tensor's shape is
// checked. NULL + error naming the tensor. ST must outlive the model.
t2_lm *t2_lm_new(const t2_st *st, const t2_lm_config *cfg, t2_pool *pool);
void t2_lm_free(t2_lm *lm);
const t2_lm_config *t2_lm_cfg(const t2_lm *lm);
// Contract: dtype of the large matrices ("F32", "F16", "BF16"; "mixed" if they differ).
const char *t2_lm_dtype_name(const t2_lm *lm);
// Contract: parameter count (tied embeddings counted once).
int64_t t2_lm_param_count(const t2_lm *lm);
// Contract: "model." / "language_model.model." / "model.language_model." — the layout found.
const char *t2_lm_prefix(const t2_lm *lm);

// A sequence's state: KV cache for up to n_ctx positions plus activations for blocks of up to
// max_block positions, all in one allocation.
typedef struct t2_lm_state t2_lm_state;
t2_lm_state *t2_lm_state_new(const t2_lm *lm, int n_ctx, int max_block);
void t2_lm_state_free(t2_lm_state *s);
// Contract: positions filled so far in the cache.
int t2_lm_state_pos(const t2_lm_state *s);
// Contract: forget positions >= pos (0 = clear).
void t2_lm_state_rewind(t2_lm_state *s, int pos);

// Contract: run T new positions after the cached ones. Position t takes EMBEDS(t, hidden) when EMBEDS
// is non-NULL and IS_EMBED is NULL or IS_EMBED[t] != 0, else the embedding of TOKENS[t]. Writes
// LOGITS(T, vocab) when ALL_LOGITS, else LOGITS(vocab) of the last position only; LOGITS may be NULL.
// T larger than max_block is processed in blocks. -1 + error if the context would exceed n_ctx or
// max_position, or a token id is out of range.
int t2_lm_forward(t2_lm *lm, t2_lm_state *s, const int32_t *tokens, const float *embeds,
                  const uint8_t *is_embed, int T, float *logits, int all_logits);
// Contract: N sequences forward together (batched prefill and decode): LENS[k] new positions (NULL =
// one each) go after the cached positions of STATES[k]; TOKENS / EMBEDS / IS_EMBED hold all the
// positions concatenated (as t2_lm_forward takes them). The linear layers run as one product over all
// positions, so the weights are read once for all sequences; attention runs per sequence on its own
// cache. LOGITS(N, vocab) for each sequence's last position, or NULL. The work buffers of STATES[0]
// are used (its max_block must hold the total); all states need one context size.
int t2_lm_forward_batch(t2_lm *lm, t2_lm_state *const *states, int n, const int *lens, const int32_t *tokens,
                        const float *embeds, const uint8_t *is_embed, float *logits);
// Contract: out(hidden) = the input embedding of token ID (f32).
void t2_lm_embed(const t2_lm *lm, int id, float *out);

// Contract: point linear WHICH (0..6 = q, k, v, o, gate, up, down: t2_lm_linear's order in
// lm_train.h) of LAYER at DATA in dtype DT (F32/F16/BF16, the checkpoint's shape; the caller keeps it
// alive), for SVF (svf/). The previous binding goes to *OLD_DATA / *OLD_DT when non-NULL, so it can be
// put back exactly. -1 + error on a bad layer / which / dtype or NULL data.
int t2_lm_set_matrix(t2_lm *lm, int layer, int which, const void *data, t2_dtype dt,
                     const void **old_data, t2_dtype *old_dt);

#endif
