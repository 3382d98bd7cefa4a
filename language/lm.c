// lm.c — the decoder-only language model (Llama family, Mistral, Qwen2): config, weight binding,
// KV cache and the forward pass. Not here: tokenisation (tokenizer.c), sampling (sampler.c), images
// (fusion/), training (the backward lives beside it in a later file).
//
// One forward serves prefill and decode: a block of B positions goes through every layer as
// (B, C) matrices; B > 1 uses sgemm (t2_matmul), B == 1 the SIMD matvec. Semantics follow
// transformers' modeling_llama.py / modeling_qwen2.py: RMSNorm in f32, rotate-half RoPE (with the
// "llama3" frequency scaling of modeling_rope_utils.py), grouped-query attention with a causal mask,
// SwiGLU MLP, lm_head (tied to embed_tokens when the config says so or the tensor is absent).
#include "language/lm.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const void *data; t2_dtype dt; } t2_mat;   // a weight matrix in the mmap

typedef struct {
    t2_mat wq, wk, wv, wo;          // (H*D, C) (KV*D, C) (KV*D, C) (C, H*D)
    t2_mat wgate, wup, wdown;       // (I, C) (I, C) (C, I)
    float *norm_in, *norm_post;     // (C) (C), f32 copies
    float *bq, *bk, *bv;            // (H*D) (KV*D) (KV*D) or NULL
} t2_lm_layer;

struct t2_lm {
    t2_lm_config cfg;
    t2_pool *pool;
    char prefix[32];
    t2_mat embed;                   // (V, C)
    t2_mat lm_head;                 // (V, C), may alias embed
    float *norm_final;              // (C)
    t2_lm_layer *layers;            // (L)
    float *small;                   // one block holding every norm weight and bias as f32
    int64_t n_params;
    const char *dtype_name;
};

struct t2_lm_state {
    const t2_lm *lm;
    int n_ctx, max_block, pos;
    float *kcache, *vcache;         // (L, n_ctx, KV*D) each
    float *rope_cos, *rope_sin;     // (n_ctx, D/2)
    float *x, *xb, *q, *k, *v, *att, *tmp, *gate, *up;   // (B,C) (B,C) (B,HD) (B,KVD) (B,KVD) (B,HD) (B,C) (B,I) (B,I)
    float *scores;                  // (max(threads, max_block), n_ctx): attention scores
    float *scratch;                 // t2_matmul conversion panel
    float *block;                   // the one allocation the above point into
    t2_lm_state **row_state;        // (max_block) batched forwards: each row's sequence ...
    int *row_pos;                   // (max_block) ... and its position there
};

// ---------------------------------------------------------------------------------------------
// Config

static int model_type_arch(const char *mt) {
    if (!mt) return -1;
    if (!strcmp(mt, "llama")) return T2_ARCH_LLAMA;
    if (!strcmp(mt, "qwen2")) return T2_ARCH_QWEN2;
    if (!strcmp(mt, "mistral")) return T2_ARCH_MISTRAL;
    return -1;
}

// Reads an integer field; HF's per-class default when absent. -1 + error if present but invalid.
static int get_int(const cJSON *j, const char *key, long def, long lo, long hi, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) { *out = (int)def; return 0; }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return t2_fail("config field '%s' must be an integer in [%ld, %ld]", key, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_float(const cJSON *j, const char *key, double def, float *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) { *out = (float)def; return 0; }
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0 && v->valuedouble <= 3.4e38))
        return t2_fail("config field '%s' must be a positive number (a float)", key);
    *out = (float)v->valuedouble;
    return 0;
}

// The first element if VALUE is a list (eos_token_id may be one), else the value; -1 when absent.
static int first_id(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : -1;
}

int t2_lm_config_parse(const cJSON *j, t2_lm_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(j)) return t2_fail("text config is not a JSON object");
    const char *mt = t2_json_str(j, "model_type", NULL);
    int arch = model_type_arch(mt);
    if (arch < 0) {
        if (!mt) return t2_fail("config has no 'model_type' (expected llama, mistral or qwen2)");
        return t2_fail("unsupported model_type '%s' (supported: llama, mistral, qwen2)", mt);
    }
    cfg->arch = (t2_arch)arch;
    // Defaults are those of transformers' LlamaConfig / MistralConfig / Qwen2Config: LLaVA configs
    // often store only the fields that differ from them.
    long d_vocab = 32000, d_hidden = 4096, d_inter = 11008, d_layers = 32, d_heads = 32, d_maxpos = 2048;
    double d_eps = 1e-6;
    if (arch == T2_ARCH_MISTRAL) { d_inter = 14336; d_maxpos = 4096 * 32; }
    if (arch == T2_ARCH_QWEN2) { d_vocab = 151936; d_inter = 22016; d_maxpos = 32768; }
    const long big = 1L << 30;
    if (get_int(j, "vocab_size", d_vocab, 1, big, &cfg->vocab_size) ||
        get_int(j, "hidden_size", d_hidden, 1, 1 << 20, &cfg->hidden_size) ||
        get_int(j, "intermediate_size", d_inter, 1, 1 << 22, &cfg->intermediate_size) ||
        get_int(j, "num_hidden_layers", d_layers, 1, 4096, &cfg->n_layers) ||
        get_int(j, "num_attention_heads", d_heads, 1, 4096, &cfg->n_heads) ||
        get_int(j, "max_position_embeddings", d_maxpos, 1, big, &cfg->max_position))
        return -1;
    long d_kv = arch == T2_ARCH_MISTRAL ? 8 : cfg->n_heads;
    if (get_int(j, "num_key_value_heads", d_kv, 1, 4096, &cfg->n_kv_heads) ||
        get_int(j, "head_dim", cfg->hidden_size / cfg->n_heads, 1, 1 << 16, &cfg->head_dim) ||
        get_float(j, "rope_theta", 10000.0, &cfg->rope_theta) ||
        get_float(j, "rms_norm_eps", d_eps, &cfg->rms_eps))
        return -1;
    if (cfg->hidden_size % cfg->n_heads != 0 && !cJSON_GetObjectItemCaseSensitive(j, "head_dim"))
        return t2_fail("hidden_size %d is not a multiple of num_attention_heads %d", cfg->hidden_size, cfg->n_heads);
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return t2_fail("num_attention_heads %d is not a multiple of num_key_value_heads %d", cfg->n_heads, cfg->n_kv_heads);
    if (cfg->head_dim % 2 != 0) return t2_fail("head_dim %d must be even for rotary embeddings", cfg->head_dim);
    // the MLP's activation: SiLU is what the engine computes (Llama, Mistral, Qwen2 all use it)
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "hidden_act");
    if (act && !cJSON_IsNull(act) && !(cJSON_IsString(act) && (!strcmp(act->valuestring, "silu") || !strcmp(act->valuestring, "swish"))))
        return t2_fail("hidden_act %s is not supported (silu)", cJSON_IsString(act) ? act->valuestring : "(not a string)");
    cfg->tie_embeddings = t2_json_bool(j, "tie_word_embeddings", 0);
    cfg->attn_bias = arch == T2_ARCH_QWEN2 ? 1 : t2_json_bool(j, "attention_bias", 0);
    cfg->bos_id = first_id(j, "bos_token_id");
    cfg->eos_id = first_id(j, "eos_token_id");

    cfg->rope_type = T2_ROPE_DEFAULT;
    cfg->rope_factor = 1;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    if (cJSON_IsObject(rs)) {
        const char *type = t2_json_str(rs, "rope_type", t2_json_str(rs, "type", "default"));
        if (!strcmp(type, "default")) {
        } else if (!strcmp(type, "llama3")) {
            cfg->rope_type = T2_ROPE_LLAMA3;
            if (get_float(rs, "factor", 8.0, &cfg->rope_factor) ||
                get_float(rs, "low_freq_factor", 1.0, &cfg->rope_low_freq_factor) ||
                get_float(rs, "high_freq_factor", 4.0, &cfg->rope_high_freq_factor) ||
                get_int(rs, "original_max_position_embeddings", 8192, 1, big, &cfg->rope_original_max_position))
                return -1;
            if (cfg->rope_high_freq_factor == cfg->rope_low_freq_factor)
                return t2_fail("rope_scaling: high_freq_factor must differ from low_freq_factor");
        } else if (!strcmp(type, "linear")) {
            cfg->rope_type = T2_ROPE_LINEAR;
            if (get_float(rs, "factor", 1.0, &cfg->rope_factor)) return -1;
        } else {
            return t2_fail("rope_scaling type '%s' is not supported (default, linear, llama3)", type);
        }
    } else if (rs && !cJSON_IsNull(rs)) {
        return t2_fail("config field 'rope_scaling' must be an object or null");
    }
    return 0;
}

int t2_lm_config_load(const char *dir, t2_lm_config *cfg) {
    char path[4096];
    if (t2_path_join(path, sizeof path, dir, "config.json")) return -1;
    cJSON *j = t2_json_load(path);
    if (!j) return -1;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text_config");
    int rc = t2_lm_config_parse(text ? text : j, cfg);
    if (rc) t2_error_prefix("%s%s: ", path, text ? " (text_config)" : "");
    cJSON_Delete(j);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Weights

const char *t2_arch_name(t2_arch a) {
    return a == T2_ARCH_QWEN2 ? "qwen2" : a == T2_ARCH_MISTRAL ? "mistral" : "llama";
}

static int is_float_dtype(t2_dtype dt) { return dt == T2_DTYPE_F32 || dt == T2_DTYPE_F16 || dt == T2_DTYPE_BF16; }

// Finds PREFIX+NAME with the given 2-D shape; -1 + error naming it otherwise.
static int bind_mat(const t2_st *st, const char *prefix, const char *name, int64_t rows, int64_t cols, t2_mat *m) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    int64_t shape[2] = {rows, cols};
    const t2_st_tensor *t = t2_st_get_shape(st, full, 2, shape);
    if (!t) return -1;
    if (!is_float_dtype(t->dtype))
        return t2_fail("%s: tensor '%s' has dtype %s; F32, F16 or BF16 expected", t->file, full, t2_dtype_name(t->dtype));
    m->data = t->data;
    m->dt = t->dtype;
    return 0;
}

// Copies PREFIX+NAME, a vector of N, into DST as f32.
static int bind_vec(const t2_st *st, const char *prefix, const char *name, int64_t n, float *dst) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const t2_st_tensor *t = t2_st_get_shape(st, full, 1, &n);
    if (!t) return -1;
    if (!is_float_dtype(t->dtype))
        return t2_fail("%s: tensor '%s' has dtype %s; F32, F16 or BF16 expected", t->file, full, t2_dtype_name(t->dtype));
    t2_to_f32(dst, t->data, t->dtype, (size_t)n);
    return 0;
}

// Rope frequencies: inv_freq[i] = theta^(-2i/D), then the configured scaling
// (transformers modeling_rope_utils.py: _compute_default / _linear / _llama3_parameters).
void t2_lm_rope_frequencies(const t2_lm_config *c, float *inv_freq) {
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow((double)c->rope_theta, (2.0 * i) / c->head_dim);
        if (c->rope_type == T2_ROPE_LINEAR) f /= c->rope_factor;
        if (c->rope_type == T2_ROPE_LLAMA3) {
            double orig = c->rope_original_max_position;
            double low_wavelen = orig / c->rope_low_freq_factor;
            double high_wavelen = orig / c->rope_high_freq_factor;
            double wavelen = 2 * M_PI / f;
            if (wavelen > low_wavelen) f = f / c->rope_factor;
            else if (wavelen >= high_wavelen) {
                double smooth = (orig / wavelen - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1 - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}

int t2_lm_find_layout(const t2_st *st, const char **prefix, const char **head) {
    static const struct { const char *prefix, *head; } layouts[] = {
        {"model.language_model.", "lm_head.weight"},                 // new transformers LLaVA layout
        {"language_model.model.", "language_model.lm_head.weight"},  // legacy LLaVA layout
        {"model.", "lm_head.weight"},                                // plain text checkpoint
    };
    for (int i = 0; i < 3; i++) {
        char name[128];
        snprintf(name, sizeof name, "%sembed_tokens.weight", layouts[i].prefix);
        if (t2_st_find(st, name)) {
            *prefix = layouts[i].prefix;
            *head = layouts[i].head;
            return 0;
        }
    }
    return t2_fail("no language-model embedding found: expected one of 'model.embed_tokens.weight', "
                   "'language_model.model.embed_tokens.weight', 'model.language_model.embed_tokens.weight'");
}

t2_lm *t2_lm_new(const t2_st *st, const t2_lm_config *cfg, t2_pool *pool) {
    const t2_lm_config *c = cfg;
    const char *found_prefix, *head_name;
    if (t2_lm_find_layout(st, &found_prefix, &head_name)) return NULL;
    t2_lm *lm = t2_calloc(1, sizeof *lm);
    lm->cfg = *c;
    lm->pool = pool;
    snprintf(lm->prefix, sizeof lm->prefix, "%s", found_prefix);
    const char *P = lm->prefix;
    int C = c->hidden_size, L = c->n_layers, I = c->intermediate_size, V = c->vocab_size;
    int HD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;

    size_t per_layer = 2 * (size_t)C + (c->attn_bias ? (size_t)HD + 2 * (size_t)KVD : 0);
    lm->small = t2_malloc(((size_t)L * per_layer + C) * sizeof(float));
    lm->layers = t2_calloc((size_t)L, sizeof *lm->layers);
    float *f = lm->small;
    lm->norm_final = f; f += C;

    if (bind_mat(st, P, "embed_tokens.weight", V, C, &lm->embed) ||
        bind_vec(st, P, "norm.weight", C, lm->norm_final))
        goto fail;
    const t2_st_tensor *head = t2_st_find(st, head_name);
    if (c->tie_embeddings || !head) {
        lm->lm_head = lm->embed;     // tied (HF ties whenever tie_word_embeddings; Qwen2-0.5B stores none)
    } else {
        if (bind_mat(st, "", head_name, V, C, &lm->lm_head)) goto fail;
    }
    int64_t n = (int64_t)V * C + C;
    if (lm->lm_head.data != lm->embed.data) n += (int64_t)V * C;
    int dts = 0;   // bitmask of the matrix dtypes seen
    for (int l = 0; l < L; l++) {
        t2_lm_layer *w = &lm->layers[l];
        char p[96];
        snprintf(p, sizeof p, "%slayers.%d.", P, l);
        w->norm_in = f; f += C;
        w->norm_post = f; f += C;
        if (bind_mat(st, p, "self_attn.q_proj.weight", HD, C, &w->wq) ||
            bind_mat(st, p, "self_attn.k_proj.weight", KVD, C, &w->wk) ||
            bind_mat(st, p, "self_attn.v_proj.weight", KVD, C, &w->wv) ||
            bind_mat(st, p, "self_attn.o_proj.weight", C, HD, &w->wo) ||
            bind_mat(st, p, "mlp.gate_proj.weight", I, C, &w->wgate) ||
            bind_mat(st, p, "mlp.up_proj.weight", I, C, &w->wup) ||
            bind_mat(st, p, "mlp.down_proj.weight", C, I, &w->wdown) ||
            bind_vec(st, p, "input_layernorm.weight", C, w->norm_in) ||
            bind_vec(st, p, "post_attention_layernorm.weight", C, w->norm_post))
            goto fail;
        if (c->attn_bias) {
            w->bq = f; f += HD;
            w->bk = f; f += KVD;
            w->bv = f; f += KVD;
            if (bind_vec(st, p, "self_attn.q_proj.bias", HD, w->bq) ||
                bind_vec(st, p, "self_attn.k_proj.bias", KVD, w->bk) ||
                bind_vec(st, p, "self_attn.v_proj.bias", KVD, w->bv))
                goto fail;
            n += HD + 2 * KVD;
        }
        n += 2 * ((int64_t)HD * C + (int64_t)KVD * C) + 3 * (int64_t)I * C + 2 * C;
        const t2_mat *ms[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->wgate, &w->wup, &w->wdown};
        for (int i = 0; i < 7; i++) dts |= 1 << ms[i]->dt;
    }
    lm->n_params = n;
    lm->dtype_name = dts == (1 << T2_DTYPE_F32) ? "F32" : dts == (1 << T2_DTYPE_F16) ? "F16"
                   : dts == (1 << T2_DTYPE_BF16) ? "BF16" : "mixed";
    return lm;
fail:
    t2_lm_free(lm);
    return NULL;
}

void t2_lm_free(t2_lm *lm) {
    if (!lm) return;
    free(lm->layers);
    free(lm->small);
    free(lm);
}

const t2_lm_config *t2_lm_cfg(const t2_lm *lm) { return &lm->cfg; }
const char *t2_lm_dtype_name(const t2_lm *lm) { return lm->dtype_name; }
int64_t t2_lm_param_count(const t2_lm *lm) { return lm->n_params; }
const char *t2_lm_prefix(const t2_lm *lm) { return lm->prefix; }

int t2_lm_set_matrix(t2_lm *lm, int layer, int which, const void *data, t2_dtype dt,
                     const void **old_data, t2_dtype *old_dt) {
    if (layer < 0 || layer >= lm->cfg.n_layers) return t2_fail("set_matrix: layer %d out of range [0, %d)", layer, lm->cfg.n_layers);
    if (which < 0 || which > 6) return t2_fail("set_matrix: linear %d out of range [0, 7)", which);
    if (!data || !is_float_dtype(dt)) return t2_fail("set_matrix: NULL data or dtype %s (F32, F16 or BF16)", t2_dtype_name(dt));
    t2_lm_layer *w = &lm->layers[layer];
    t2_mat *ms[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->wgate, &w->wup, &w->wdown};
    if (old_data) *old_data = ms[which]->data;
    if (old_dt) *old_dt = ms[which]->dt;
    ms[which]->data = data;
    ms[which]->dt = dt;
    return 0;
}

void t2_lm_embed(const t2_lm *lm, int id, float *out) {
    int C = lm->cfg.hidden_size;
    size_t es = t2_dtype_size(lm->embed.dt);
    t2_to_f32(out, (const char *)lm->embed.data + (size_t)id * C * es, lm->embed.dt, (size_t)C);
}

// ---------------------------------------------------------------------------------------------
// State

t2_lm_state *t2_lm_state_new(const t2_lm *lm, int n_ctx, int max_block) {
    const t2_lm_config *c = &lm->cfg;
    if (n_ctx <= 0) n_ctx = c->max_position;
    if (n_ctx > c->max_position)
        return t2_fail_null("context %d exceeds the model's max_position_embeddings %d", n_ctx, c->max_position);
    if (max_block <= 0) max_block = 1;
    if (max_block > n_ctx) max_block = n_ctx;
    t2_lm_state *s = t2_calloc(1, sizeof *s);
    s->lm = lm;
    s->n_ctx = n_ctx;
    s->max_block = max_block;
    size_t B = (size_t)max_block, C = c->hidden_size, I = c->intermediate_size, half = c->head_dim / 2;
    size_t HD = (size_t)c->n_heads * c->head_dim, KVD = (size_t)c->n_kv_heads * c->head_dim;
    int nth = lm->pool ? t2_pool_size(lm->pool) : 1;
    size_t maxk = C > I ? C : I;
    if (HD > maxk) maxk = HD;
    // The sizes table: every buffer of the state, carved from one block (64-byte aligned pieces).
    size_t sizes[] = {
        (size_t)c->n_layers * n_ctx * KVD, (size_t)c->n_layers * n_ctx * KVD,
        (size_t)n_ctx * half, (size_t)n_ctx * half,
        B * C, B * C, B * HD, B * KVD, B * KVD, B * HD, B * C, B * I, B * I,
        (size_t)(nth > max_block ? nth : max_block) * n_ctx, t2_matmul_scratch_floats((int)maxk),
    };
    float **ptrs[] = {&s->kcache, &s->vcache, &s->rope_cos, &s->rope_sin, &s->x, &s->xb, &s->q, &s->k,
                      &s->v, &s->att, &s->tmp, &s->gate, &s->up, &s->scores, &s->scratch};
    size_t total = 0, n = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n; i++) total += (sizes[i] + 15) & ~(size_t)15;
    s->block = t2_aligned_alloc(total * sizeof(float));
    float *p = s->block;
    for (size_t i = 0; i < n; i++) { *ptrs[i] = p; p += (sizes[i] + 15) & ~(size_t)15; }
    s->row_state = t2_malloc(sizeof(t2_lm_state *) * (size_t)max_block);
    s->row_pos = t2_malloc(sizeof(int) * (size_t)max_block);
    t2_lm_rope_table(&lm->cfg, n_ctx, s->rope_cos, s->rope_sin);
    return s;
}

void t2_lm_rope_table(const t2_lm_config *c, int n_pos, float *cos_out, float *sin_out) {
    size_t half = (size_t)c->head_dim / 2;
    float *inv_freq = t2_malloc(sizeof(float) * half);
    t2_lm_rope_frequencies(c, inv_freq);
    for (size_t pos = 0; pos < (size_t)n_pos; pos++)
        for (size_t i = 0; i < half; i++) {
            double a = (double)pos * inv_freq[i];
            cos_out[pos * half + i] = (float)cos(a);
            sin_out[pos * half + i] = (float)sin(a);
        }
    free(inv_freq);
}

void t2_lm_state_free(t2_lm_state *s) {
    if (!s) return;
    free(s->block);
    free(s->row_state);
    free(s->row_pos);
    free(s);
}

int t2_lm_state_pos(const t2_lm_state *s) { return s->pos; }
void t2_lm_state_rewind(t2_lm_state *s, int pos) { if (pos >= 0 && pos < s->pos) s->pos = pos; }

// ---------------------------------------------------------------------------------------------
// Forward

// out(C) = x(C) / sqrt(mean(x²) + eps) * w(C)   (LlamaRMSNorm, f32)
static void rmsnorm(float *out, const float *x, const float *w, int C, float eps) {
    double ss = 0;
    for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
    float r = (float)(1.0 / sqrt(ss / C + eps));
    for (int i = 0; i < C; i++) out[i] = x[i] * r * w[i];
}

// Rotate-half RoPE on one head vector x(D) at position POS.
static void rope(float *x, int D, const float *cs, const float *sn) {
    int half = D / 2;
    for (int i = 0; i < half; i++) {
        float x0 = x[i], x1 = x[i + half];
        x[i] = x0 * cs[i] - x1 * sn[i];
        x[i + half] = x1 * cs[i] + x0 * sn[i];
    }
}

static void matmul(t2_lm_state *s, float *Y, const float *X, const t2_mat *w, const float *bias,
                   int T, int M, int K) {
    t2_matmul(s->lm->pool, Y, X, w->data, w->dt, bias, T, M, K, s->scratch);
}

typedef struct { t2_lm_state *s; int layer, B, p0, head; } attn_job;

// Decode-style attention, one task = one query head over the block's B positions:
// causal softmax(q·K/√D)·V with dot products (used when B is small).
static void attn_task(void *ctx, int h, int thread) {
    attn_job *j = ctx;
    t2_lm_state *s = j->s;
    const t2_lm_config *c = &s->lm->cfg;
    int D = c->head_dim, HD = c->n_heads * D, KVD = c->n_kv_heads * D;
    int kvh = h / (c->n_heads / c->n_kv_heads);
    const float *kc = s->kcache + (size_t)j->layer * s->n_ctx * KVD + (size_t)kvh * D;
    const float *vc = s->vcache + (size_t)j->layer * s->n_ctx * KVD + (size_t)kvh * D;
    float *sc = s->scores + (size_t)thread * s->n_ctx;
    float scale = 1.0f / sqrtf((float)D);
    for (int t = 0; t < j->B; t++) {
        const float *q = s->q + (size_t)t * HD + (size_t)h * D;
        int n = j->p0 + t + 1;   // causal: positions 0..p0+t
        float mx = -INFINITY;
        for (int i = 0; i < n; i++) {
            sc[i] = t2_dot(q, kc + (size_t)i * KVD, D) * scale;
            if (sc[i] > mx) mx = sc[i];
        }
        float sum = 0;
        for (int i = 0; i < n; i++) { sc[i] = expf(sc[i] - mx); sum += sc[i]; }
        float inv = 1.0f / sum;
        float *out = s->att + (size_t)t * HD + (size_t)h * D;
        memset(out, 0, sizeof(float) * D);
        for (int i = 0; i < n; i++) {
            const float *vi = vc + (size_t)i * KVD;
            float a = sc[i] * inv;
            for (int d = 0; d < D; d++) out[d] += a * vi[d];
        }
    }
}

// Causal softmax of one row t of the block's score matrix S(B, p0+B) (prefill attention).
static void softmax_row_task(void *ctx, int t, int thread) {
    attn_job *j = ctx;
    int n_all = j->p0 + j->B, n = j->p0 + t + 1;
    float *row = j->s->scores + (size_t)t * n_all;
    float mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) if (row[i] > mx) mx = row[i];
    for (int i = 0; i < n; i++) { row[i] = expf(row[i] - mx); sum += row[i]; }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) row[i] *= inv;
    for (int i = n; i < n_all; i++) row[i] = 0;   // masked future positions
}

// Prefill attention for B positions: per head, S = Q·Kᵀ/√D and O = softmax(S)·V through sgemm on
// the strided head slices of the block's queries and the layer's cache.
static void attn_prefill(t2_lm *lm, t2_lm_state *s, int layer, int B, int p0) {
    const t2_lm_config *c = &lm->cfg;
    int D = c->head_dim, HD = c->n_heads * D, KVD = c->n_kv_heads * D, n = p0 + B;
    const float *kc = s->kcache + (size_t)layer * s->n_ctx * KVD;
    const float *vc = s->vcache + (size_t)layer * s->n_ctx * KVD;
    attn_job job = {s, layer, B, p0, 0};
    for (int h = 0; h < c->n_heads; h++) {
        int kvh = h / (c->n_heads / c->n_kv_heads);
        t2_sgemm(0, 1, B, n, D, 1.0f / sqrtf((float)D), s->q + (size_t)h * D, HD, kc + (size_t)kvh * D, KVD,
                 0.0f, s->scores, n);
        t2_pool_run(lm->pool, B, softmax_row_task, &job);
        t2_sgemm(0, 0, B, D, n, 1.0f, s->scores, n, vc + (size_t)kvh * D, KVD, 0.0f, s->att + (size_t)h * D, HD);
    }
}

// The per-position (row) work of a layer, spread over the pool: one task = one position.
typedef enum { ROW_NORM_IN, ROW_ROPE, ROW_ADD_NORM_POST, ROW_SWIGLU, ROW_ADD } row_op;
typedef struct {
    t2_lm *lm;
    t2_lm_state *s;                 // the work buffers (and, for one sequence, its cache)
    const t2_lm_layer *w;
    int layer, p0;
    row_op op;
    int batched;                    // rows belong to several sequences: s->row_state[t] at s->row_pos[t]
} row_job;

static void row_task(void *ctx, int t, int thread) {
    row_job *j = ctx;
    t2_lm_state *s = j->s;
    const t2_lm_config *c = &j->lm->cfg;
    int C = c->hidden_size, I = c->intermediate_size, D = c->head_dim, half = D / 2;
    int HD = c->n_heads * D, KVD = c->n_kv_heads * D;
    float *x = s->x + (size_t)t * C, *xb = s->xb + (size_t)t * C, *tmp = s->tmp + (size_t)t * C;
    switch (j->op) {
    case ROW_NORM_IN:
        rmsnorm(xb, x, j->w->norm_in, C, c->rms_eps);
        break;
    case ROW_ROPE: {   // rotate q and k, then append k and v to the (row's sequence's) cache
        t2_lm_state *cs_state = j->batched ? s->row_state[t] : s;
        int pos = j->batched ? s->row_pos[t] : j->p0 + t;
        const float *cs = cs_state->rope_cos + (size_t)pos * half, *sn = cs_state->rope_sin + (size_t)pos * half;
        for (int h = 0; h < c->n_heads; h++) rope(s->q + (size_t)t * HD + (size_t)h * D, D, cs, sn);
        for (int h = 0; h < c->n_kv_heads; h++) rope(s->k + (size_t)t * KVD + (size_t)h * D, D, cs, sn);
        size_t off = ((size_t)j->layer * cs_state->n_ctx + pos) * KVD;
        memcpy(cs_state->kcache + off, s->k + (size_t)t * KVD, sizeof(float) * KVD);
        memcpy(cs_state->vcache + off, s->v + (size_t)t * KVD, sizeof(float) * KVD);
        break;
    }
    case ROW_ADD_NORM_POST:   // residual after attention, then the MLP's norm
        for (int i = 0; i < C; i++) x[i] += tmp[i];
        rmsnorm(xb, x, j->w->norm_post, C, c->rms_eps);
        break;
    case ROW_SWIGLU: {
        float *g = s->gate + (size_t)t * I;
        const float *u = s->up + (size_t)t * I;
        for (int i = 0; i < I; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];   // SiLU(gate) * up
        break;
    }
    case ROW_ADD:
        for (int i = 0; i < C; i++) x[i] += tmp[i];
        break;
    }
}

// Batched attention: task = (row t, head h); row t attends over its own sequence's cache up to its
// position (the rows' keys and values are all in their caches by then).
static void attn_batch_task(void *ctx, int task, int thread) {
    row_job *j = ctx;
    t2_lm_state *w = j->s;
    const t2_lm_config *c = &j->lm->cfg;
    int D = c->head_dim, HD = c->n_heads * D, KVD = c->n_kv_heads * D;
    int t = task / c->n_heads, h = task % c->n_heads, kvh = h / (c->n_heads / c->n_kv_heads);
    const t2_lm_state *q_state = w->row_state[t];
    const float *kc = q_state->kcache + (size_t)j->layer * q_state->n_ctx * KVD + (size_t)kvh * D;
    const float *vc = q_state->vcache + (size_t)j->layer * q_state->n_ctx * KVD + (size_t)kvh * D;
    float *sc = w->scores + (size_t)thread * w->n_ctx;
    const float *q = w->q + (size_t)t * HD + (size_t)h * D;
    int n = w->row_pos[t] + 1;   // causal within the row's own sequence
    float scale = 1.0f / sqrtf((float)D), mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) {
        sc[i] = t2_dot(q, kc + (size_t)i * KVD, D) * scale;
        if (sc[i] > mx) mx = sc[i];
    }
    for (int i = 0; i < n; i++) { sc[i] = expf(sc[i] - mx); sum += sc[i]; }
    float inv = 1.0f / sum, *out = w->att + (size_t)t * HD + (size_t)h * D;
    memset(out, 0, sizeof(float) * D);
    for (int i = 0; i < n; i++) {
        const float *vi = vc + (size_t)i * KVD;
        float a = sc[i] * inv;
        for (int d = 0; d < D; d++) out[d] += a * vi[d];
    }
}

static void rows(row_job *j, row_op op, int B) {
    j->op = op;
    if (B == 1) row_task(j, 0, 0);    // a single position: no hand-off to the pool
    else t2_pool_run(j->lm->pool, B, row_task, j);
}

// Blocks at least this long take the sgemm attention path; shorter ones the dot-product path.
#define PREFILL_ATTN_MIN_BLOCK 8

// One block of B positions starting at cache position p0, through every layer; leaves the final
// hidden states (not yet normed) in s->x.
static void forward_block(t2_lm *lm, t2_lm_state *s, int B, int p0, int batched) {
    const t2_lm_config *c = &lm->cfg;
    int C = c->hidden_size, I = c->intermediate_size;
    int HD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        const t2_lm_layer *w = &lm->layers[l];
        row_job rj = {lm, s, w, l, p0, ROW_NORM_IN, batched};
        rows(&rj, ROW_NORM_IN, B);
        matmul(s, s->q, s->xb, &w->wq, w->bq, B, HD, C);
        matmul(s, s->k, s->xb, &w->wk, w->bk, B, KVD, C);
        matmul(s, s->v, s->xb, &w->wv, w->bv, B, KVD, C);
        rows(&rj, ROW_ROPE, B);
        if (batched) {
            t2_pool_run(lm->pool, B * c->n_heads, attn_batch_task, &rj);
        } else if (B >= PREFILL_ATTN_MIN_BLOCK) {
            attn_prefill(lm, s, l, B, p0);
        } else {
            attn_job job = {s, l, B, p0, 0};
            t2_pool_run(lm->pool, c->n_heads, attn_task, &job);
        }
        matmul(s, s->tmp, s->att, &w->wo, NULL, B, C, HD);
        rows(&rj, ROW_ADD_NORM_POST, B);
        matmul(s, s->gate, s->xb, &w->wgate, NULL, B, I, C);
        matmul(s, s->up, s->xb, &w->wup, NULL, B, I, C);
        rows(&rj, ROW_SWIGLU, B);
        matmul(s, s->tmp, s->gate, &w->wdown, NULL, B, C, I);
        rows(&rj, ROW_ADD, B);
    }
}

int t2_lm_forward(t2_lm *lm, t2_lm_state *s, const int32_t *tokens, const float *embeds,
                  const uint8_t *is_embed, int T, float *logits, int all_logits) {
    const t2_lm_config *c = &lm->cfg;
    int C = c->hidden_size, V = c->vocab_size;
    if (T <= 0) return t2_fail("forward: no positions to process");
    if (s->pos + T > s->n_ctx)
        return t2_fail("context length exceeded: %d cached + %d new positions > %d (the context of this run%s)",
                       s->pos, T, s->n_ctx, s->n_ctx == c->max_position ? ", the model's max_position_embeddings" : "");
    for (int t = 0; t < T; t++) {
        int use_embed = embeds && (!is_embed || is_embed[t]);
        if (!use_embed && (!tokens || tokens[t] < 0 || tokens[t] >= V))
            return t2_fail("token id %d at position %d is outside the vocabulary [0, %d)",
                           tokens ? tokens[t] : -1, t, V);
    }
    for (int t0 = 0; t0 < T; t0 += s->max_block) {
        int B = T - t0 < s->max_block ? T - t0 : s->max_block;
        for (int t = 0; t < B; t++) {
            int i = t0 + t;
            if (embeds && (!is_embed || is_embed[i])) memcpy(s->x + (size_t)t * C, embeds + (size_t)i * C, sizeof(float) * C);
            else t2_lm_embed(lm, tokens[i], s->x + (size_t)t * C);
        }
        forward_block(lm, s, B, s->pos, 0);
        s->pos += B;
        if (!logits) continue;
        if (all_logits) {
            for (int t = 0; t < B; t++) rmsnorm(s->xb + (size_t)t * C, s->x + (size_t)t * C, lm->norm_final, C, c->rms_eps);
            matmul(s, logits + (size_t)t0 * V, s->xb, &lm->lm_head, NULL, B, V, C);
        } else if (t0 + B == T) {
            rmsnorm(s->xb, s->x + (size_t)(B - 1) * C, lm->norm_final, C, c->rms_eps);
            t2_matvec(lm->pool, logits, lm->lm_head.data, lm->lm_head.dt, s->xb, NULL, V, C);
        }
    }
    return 0;
}

int t2_lm_forward_batch(t2_lm *lm, t2_lm_state *const *states, int n, const int *lens, const int32_t *tokens,
                        const float *embeds, const uint8_t *is_embed, float *logits) {
    const t2_lm_config *c = &lm->cfg;
    int C = c->hidden_size, V = c->vocab_size;
    if (n <= 0) return t2_fail("batched forward: no sequences");
    t2_lm_state *w = states[0];
    int total = 0;
    for (int k = 0; k < n; k++) {
        const t2_lm_state *s = states[k];
        int len = lens ? lens[k] : 1;
        if (len <= 0) return t2_fail("batched forward: sequence %d has no positions", k);
        if (s->lm != lm) return t2_fail("batched forward: state %d belongs to another model", k);
        if (s->n_ctx != w->n_ctx) return t2_fail("batched forward: states need one context size (%d vs %d)", s->n_ctx, w->n_ctx);
        if (s->pos + len > s->n_ctx)
            return t2_fail("context length exceeded: sequence %d holds %d positions, %d more do not fit in %d", k, s->pos,
                           len, s->n_ctx);
        for (int q = 0; q < k; q++) if (states[q] == s) return t2_fail("batched forward: state %d given twice", k);
        total += len;
    }
    if (total > w->max_block)
        return t2_fail("batched forward: %d positions but the first state's block holds %d", total, w->max_block);
    for (int t = 0; t < total; t++) {
        int use_embed = embeds && (!is_embed || is_embed[t]);
        if (!use_embed && (!tokens || tokens[t] < 0 || tokens[t] >= V))
            return t2_fail("token id %d at batch position %d is outside the vocabulary [0, %d)", tokens ? tokens[t] : -1, t, V);
    }
    for (int k = 0, t = 0; k < n; k++)
        for (int i = 0; i < (lens ? lens[k] : 1); i++, t++) {
            w->row_state[t] = states[k];
            w->row_pos[t] = states[k]->pos + i;
            if (embeds && (!is_embed || is_embed[t])) memcpy(w->x + (size_t)t * C, embeds + (size_t)t * C, sizeof(float) * C);
            else t2_lm_embed(lm, tokens[t], w->x + (size_t)t * C);
        }
    forward_block(lm, w, total, 0, 1);
    for (int k = 0, t = 0; k < n; k++) {
        int len = lens ? lens[k] : 1;
        states[k]->pos += len;
        t += len;
        // each sequence's last row, normed, gathered at the front for one lm_head product
        if (logits) rmsnorm(w->xb + (size_t)k * C, w->x + (size_t)(t - 1) * C, lm->norm_final, C, c->rms_eps);
    }
    if (logits) matmul(w, logits, w->xb, &lm->lm_head, NULL, n, V, C);
    return 0;
}
