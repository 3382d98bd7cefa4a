// lm_train.c — forward and exact backward of the decoder LM (Llama / Qwen2 / Mistral) for training,
// llm.c style: parameters, gradients and activations are each one block carved by a sizes table;
// every op is an op_forward / op_backward pair, gradients accumulate with +=, no autograd. Not
// here: the inference path with its KV cache (lm.c), optimisers, SVF. Single-threaded apart from
// OpenBLAS inside t2_sgemm. Semantics match lm.c / transformers' modeling_llama.py: RMSNorm, rotate-
// half RoPE (llama3 / linear scaling), GQA causal attention, SwiGLU MLP, optionally tied lm_head.
#include "language/lm_train.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct t2_lm_train {
    t2_lm_config cfg;
    int max_B, max_T, flags;
    int B, T, n_valid, have_fwd, have_bwd;
    float loss_scale;    // t2_lm_train_backward computes loss_scale · dL/dθ (1 unless set)
    t2_lm_params params, grads;
    size_t param_sizes[T2_LM_PARAM_KINDS], n_params;
    float *param_block, *grad_block;
    // activations (N = B*T rows, all layers), carved from act_block
    float *resid;        // (L+1, N, C) residual stream entering each layer; [L] = final
    float *xn1, *rms1;   // (L, N, C) (L, N) input-norm output and its 1/rms
    float *q, *k, *v;    // (L, N, HD) (L, N, KVD) (L, N, KVD) q/k after RoPE
    float *att;          // (L, B, H, T, T) softmax probabilities
    float *atty;         // (L, N, HD) attention output (o_proj input)
    float *hmid;         // (L, N, C) residual after attention (post-attention norm input)
    float *xn2, *rms2;   // (L, N, C) (L, N)
    float *gate, *up, *hmlp;   // (L, N, I) each; hmlp = silu(gate)*up
    float *xf, *rmsf;    // (N, C) (N) final norm
    float *logits;       // (N, V)
    float *nll;          // (N) per-position cross-entropy of the last forward (0 where ignored)
    float *dlogits;      // (N, V)
    float *dres, *dxn;   // (N, C) (N, C) residual gradient, norm-output gradient
    float *dq, *dk, *dv; // (S, N, HD) (S, N, KVD) (S, N, KVD); S = L when saving linear io, else 1
    float *datty;        // (N, HD)
    float *dgate, *dup, *dh;   // (S, N, I) (S, N, I) (N, I)
    float *dyo, *dyd;    // (L, N, C) each, only when saving linear io
    float *dP;           // (T, T) attention-probability gradient scratch
    // T2_LM_TRAIN_TARGET_LOGITS: the head runs on the M target positions only
    int M;               // target positions of the last forward
    int32_t *trow, *ttgt;   // (N) (N) their positions and targets
    float *xg, *dxg, *nllc;   // (N, C) (N, C) (N) their final-norm rows, those rows' gradient, their NLL
    float *rope_cos, *rope_sin;   // (max_T, D/2)
    int32_t *tokens, *targets;    // (N) (N); tokens[n] = -1 at positions that took an input embedding
    float *act_block;
};

// ---------------------------------------------------------------------------------------------
// Allocation

static size_t carve(float *base, const size_t *sizes, float **ptrs[], int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (base && ptrs[i]) *ptrs[i] = sizes[i] ? base + total : NULL;
        total += sizes[i];
    }
    return total;
}

static void param_sizes(const t2_lm_config *c, size_t *s) {
    size_t C = c->hidden_size, L = c->n_layers, I = c->intermediate_size, V = c->vocab_size;
    size_t HD = (size_t)c->n_heads * c->head_dim, KVD = (size_t)c->n_kv_heads * c->head_dim;
    size_t b = c->attn_bias ? 1 : 0;
    size_t t[T2_LM_PARAM_KINDS] = {V * C, c->tie_embeddings ? 0 : V * C, C, L * C,
                                   L * HD * C, b * L * HD, L * KVD * C, b * L * KVD, L * KVD * C, b * L * KVD,
                                   L * C * HD, L * C, L * I * C, L * I * C, L * C * I};
    memcpy(s, t, sizeof t);
}

static void param_ptrs(t2_lm_params *p, float **out[T2_LM_PARAM_KINDS]) {
    float **t[T2_LM_PARAM_KINDS] = {&p->embed, &p->lm_head, &p->norm_final, &p->norm_in, &p->wq, &p->bq,
                                    &p->wk, &p->bk, &p->wv, &p->bv, &p->wo, &p->norm_post, &p->wgate,
                                    &p->wup, &p->wdown};
    memcpy(out, t, sizeof t);
}

t2_lm_train *t2_lm_train_new(const t2_lm_config *cfg, int max_B, int max_T) {
    return t2_lm_train_new_ex(cfg, max_B, max_T, 0);
}

t2_lm_train *t2_lm_train_new_ex(const t2_lm_config *cfg, int max_B, int max_T, int flags) {
    if (max_B <= 0 || max_T <= 0) return t2_fail_null("lm_train: batch %d x %d must be positive", max_B, max_T);
    if (max_T > cfg->max_position)
        return t2_fail_null("lm_train: T %d exceeds max_position_embeddings %d", max_T, cfg->max_position);
    t2_lm_train *tr = t2_calloc(1, sizeof *tr);
    tr->cfg = *cfg;
    tr->max_B = max_B;
    tr->max_T = max_T;
    tr->flags = flags;
    tr->loss_scale = 1.0f;
    const t2_lm_config *c = cfg;

    param_sizes(c, tr->param_sizes);
    float **pp[T2_LM_PARAM_KINDS], **gp[T2_LM_PARAM_KINDS];
    param_ptrs(&tr->params, pp);
    param_ptrs(&tr->grads, gp);
    tr->n_params = carve(NULL, tr->param_sizes, pp, T2_LM_PARAM_KINDS);
    tr->param_block = t2_aligned_alloc(tr->n_params * sizeof(float));
    tr->grad_block = t2_aligned_alloc(tr->n_params * sizeof(float));
    carve(tr->param_block, tr->param_sizes, pp, T2_LM_PARAM_KINDS);
    carve(tr->grad_block, tr->param_sizes, gp, T2_LM_PARAM_KINDS);
    memset(tr->grad_block, 0, tr->n_params * sizeof(float));

    size_t N = (size_t)max_B * max_T, T = max_T, C = c->hidden_size, L = c->n_layers;
    size_t I = c->intermediate_size, V = c->vocab_size, H = c->n_heads, half = c->head_dim / 2;
    size_t HD = H * c->head_dim, KVD = (size_t)c->n_kv_heads * c->head_dim;
    size_t S = (flags & T2_LM_TRAIN_SAVE_LINEAR) ? L : 1, LS = (flags & T2_LM_TRAIN_SAVE_LINEAR) ? L : 0;
    float *tok_f = NULL, *tgt_f = NULL, *trow_f = NULL, *ttgt_f = NULL;
    // The activation sizes table.
    size_t sizes[] = {
        (L + 1) * N * C, L * N * C, L * N, L * N * HD, L * N * KVD, L * N * KVD,
        L * max_B * H * T * T, L * N * HD, L * N * C, L * N * C, L * N, L * N * I, L * N * I, L * N * I,
        N * C, N, N * V, N * V, N * C, N * C, S * N * HD, S * N * KVD, S * N * KVD, N * HD,
        S * N * I, S * N * I, N * I, LS * N * C, LS * N * C, T * T, T * half, T * half, N, N, N,
        N, N, N * C, N * C, N,
    };
    float **ptrs[] = {
        &tr->resid, &tr->xn1, &tr->rms1, &tr->q, &tr->k, &tr->v,
        &tr->att, &tr->atty, &tr->hmid, &tr->xn2, &tr->rms2, &tr->gate, &tr->up, &tr->hmlp,
        &tr->xf, &tr->rmsf, &tr->logits, &tr->dlogits, &tr->dres, &tr->dxn, &tr->dq, &tr->dk, &tr->dv, &tr->datty,
        &tr->dgate, &tr->dup, &tr->dh, &tr->dyo, &tr->dyd, &tr->dP, &tr->rope_cos, &tr->rope_sin, &tok_f, &tgt_f, &tr->nll,
        &trow_f, &ttgt_f, &tr->xg, &tr->dxg, &tr->nllc,
    };
    int n = (int)(sizeof sizes / sizeof sizes[0]);
    size_t total = carve(NULL, sizes, ptrs, n);
    tr->act_block = t2_aligned_alloc(total * sizeof(float));
    carve(tr->act_block, sizes, ptrs, n);
    tr->tokens = (int32_t *)tok_f;    // int32 and f32 share a size: the ids live in the same block
    tr->targets = (int32_t *)tgt_f;
    tr->trow = (int32_t *)trow_f, tr->ttgt = (int32_t *)ttgt_f;

    t2_lm_rope_table(c, (int)T, tr->rope_cos, tr->rope_sin);
    return tr;
}

void t2_lm_train_free(t2_lm_train *tr) {
    if (!tr) return;
    free(tr->param_block);
    free(tr->grad_block);
    free(tr->act_block);
    free(tr);
}

const t2_lm_config *t2_lm_train_cfg(const t2_lm_train *tr) { return &tr->cfg; }
t2_lm_params *t2_lm_train_params(t2_lm_train *tr) { return &tr->params; }
t2_lm_params *t2_lm_train_grads(t2_lm_train *tr) { return &tr->grads; }
const float *t2_lm_train_token_nll(const t2_lm_train *tr) { return tr->have_fwd ? tr->nll : NULL; }
float *t2_lm_train_param_block(t2_lm_train *tr, size_t *n) { if (n) *n = tr->n_params; return tr->param_block; }
float *t2_lm_train_grad_block(t2_lm_train *tr, size_t *n) { if (n) *n = tr->n_params; return tr->grad_block; }
const float *t2_lm_train_logits(const t2_lm_train *tr) { return tr->logits; }
void t2_lm_train_zero_grad(t2_lm_train *tr) { memset(tr->grad_block, 0, tr->n_params * sizeof(float)); }

// ---------------------------------------------------------------------------------------------
// Tensor names and loading

// Per kind: the HF name ("%d" = layer for per-layer kinds), rows, cols (cols 0 = vector).
static const char *const KIND_NAME[T2_LM_PARAM_KINDS] = {
    "embed_tokens.weight", "lm_head.weight", "norm.weight", "layers.%d.input_layernorm.weight",
    "layers.%d.self_attn.q_proj.weight", "layers.%d.self_attn.q_proj.bias",
    "layers.%d.self_attn.k_proj.weight", "layers.%d.self_attn.k_proj.bias",
    "layers.%d.self_attn.v_proj.weight", "layers.%d.self_attn.v_proj.bias",
    "layers.%d.self_attn.o_proj.weight", "layers.%d.post_attention_layernorm.weight",
    "layers.%d.mlp.gate_proj.weight", "layers.%d.mlp.up_proj.weight", "layers.%d.mlp.down_proj.weight",
};

static void kind_shape(const t2_lm_config *c, int kind, int64_t *rows, int64_t *cols) {
    int64_t C = c->hidden_size, I = c->intermediate_size, V = c->vocab_size;
    int64_t HD = (int64_t)c->n_heads * c->head_dim, KVD = (int64_t)c->n_kv_heads * c->head_dim;
    static const int vec[T2_LM_PARAM_KINDS] = {0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0};
    int64_t r[T2_LM_PARAM_KINDS] = {V, V, C, C, HD, HD, KVD, KVD, KVD, KVD, C, C, I, I, C};
    int64_t k[T2_LM_PARAM_KINDS] = {C, C, 0, 0, C, 0, C, 0, C, 0, HD, 0, C, C, I};
    *rows = r[kind];
    *cols = vec[kind] ? 0 : k[kind];
}

static int is_per_layer(int kind) { return kind >= 3; }

int t2_lm_train_tensor_count(const t2_lm_train *tr) {
    int n = 0;
    for (int k = 0; k < T2_LM_PARAM_KINDS; k++)
        if (tr->param_sizes[k]) n += is_per_layer(k) ? tr->cfg.n_layers : 1;
    return n;
}

// Tensor I as (kind, index within the kind: the layer for per-layer kinds); -1 out of range.
static int locate(const t2_lm_train *tr, int i, int *kind) {
    for (int k = 0; k < T2_LM_PARAM_KINDS; k++) {
        if (!tr->param_sizes[k]) continue;
        int cnt = is_per_layer(k) ? tr->cfg.n_layers : 1;
        if (i < cnt) { *kind = k; return i; }
        i -= cnt;
    }
    return -1;
}

int t2_lm_train_tensor(t2_lm_train *tr, int i, char *name, size_t cap, float **param, float **grad,
                       size_t *numel) {
    int k, j = locate(tr, i, &k);
    if (j < 0) return t2_fail("lm_train: tensor index out of range");
    float **pp[T2_LM_PARAM_KINDS], **gp[T2_LM_PARAM_KINDS];
    param_ptrs(&tr->params, pp);
    param_ptrs(&tr->grads, gp);
    size_t each = tr->param_sizes[k] / (size_t)(is_per_layer(k) ? tr->cfg.n_layers : 1);
    if (name) snprintf(name, cap, KIND_NAME[k], j);
    if (param) *param = *pp[k] + (size_t)j * each;
    if (grad) *grad = *gp[k] + (size_t)j * each;
    if (numel) *numel = each;
    return 0;
}

int t2_lm_train_tensor_shape(const t2_lm_train *tr, int i, int64_t *dims) {
    int k;
    if (locate(tr, i, &k) < 0) return t2_fail("lm_train: tensor index out of range");
    kind_shape(&tr->cfg, k, &dims[0], &dims[1]);
    return dims[1] ? 2 : 1;
}

static int load_tensor(const t2_st *st, const char *full, int64_t rows, int64_t cols, float *dst) {
    int64_t shape[2] = {rows, cols};
    const t2_st_tensor *t = t2_st_get_shape(st, full, cols ? 2 : 1, shape);
    if (!t) return -1;
    if (t->dtype != T2_DTYPE_F32 && t->dtype != T2_DTYPE_F16 && t->dtype != T2_DTYPE_BF16)
        return t2_fail("%s: tensor '%s' has dtype %s; F32, F16 or BF16 expected", t->file, full,
                       t2_dtype_name(t->dtype));
    t2_to_f32(dst, t->data, t->dtype, (size_t)t->numel);
    return 0;
}

int t2_lm_train_load(t2_lm_train *tr, const t2_st *st) {
    const char *prefix, *head;
    if (t2_lm_find_layout(st, &prefix, &head)) return -1;
    float **pp[T2_LM_PARAM_KINDS];
    param_ptrs(&tr->params, pp);
    for (int kind = 0; kind < T2_LM_PARAM_KINDS; kind++) {
        if (!tr->param_sizes[kind]) continue;
        int64_t rows, cols;
        kind_shape(&tr->cfg, kind, &rows, &cols);
        int cnt = is_per_layer(kind) ? tr->cfg.n_layers : 1;
        for (int l = 0; l < cnt; l++) {
            char canon[128], full[256];
            float *p = *pp[kind] + (size_t)l * (tr->param_sizes[kind] / (size_t)cnt);
            snprintf(canon, sizeof canon, KIND_NAME[kind], l);
            if (kind == 1) {   // untied lm_head
                snprintf(full, sizeof full, "%s", head);
                if (!t2_st_find(st, full)) {   // absent: inference ties it; start the trainable copy equal
                    memcpy(p, tr->params.embed, tr->param_sizes[0] * sizeof(float));
                    continue;
                }
            } else {
                snprintf(full, sizeof full, "%s%s", prefix, canon);
            }
            if (load_tensor(st, full, rows, cols, p)) return -1;
        }
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Ops: forward / backward pairs. N rows; row-major matrices.

// Linear layers: t2_linear_forward / t2_linear_backward (core/kernels.h).

// Rotate-half RoPE in place on x(B, T, nh, D) at positions 0..T-1 of each row; SIGN -1 rotates back
// by the same angle, which is the backward (the rotation is orthogonal: dx = Rᵀ·dy).
static void rope_apply(float *x, int B, int T, int nh, int D, const float *cosb, const float *sinb, float sign) {
    int half = D / 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *cs = cosb + (size_t)t * half, *sn = sinb + (size_t)t * half;
            for (int h = 0; h < nh; h++) {
                float *v = x + (((size_t)b * T + t) * nh + h) * D;
                for (int i = 0; i < half; i++) {
                    float x0 = v[i], x1 = v[i + half], s = sign * sn[i];
                    v[i] = x0 * cs[i] - x1 * s;
                    v[i + half] = x1 * cs[i] + x0 * s;
                }
            }
        }
}
static void rope_forward(float *x, int B, int T, int nh, int D, const float *c, const float *s) { rope_apply(x, B, T, nh, D, c, s, 1.0f); }
static void rope_backward(float *dx, int B, int T, int nh, int D, const float *c, const float *s) { rope_apply(dx, B, T, nh, D, c, s, -1.0f); }

typedef struct { int B, T, H, KV, D; } attn_dims;

// Per row b and head h: P(T, T) = causal softmax(Q·Kᵀ/√D), O = P·V; query head h reads KV head
// h / (H/KV). q(B,T,H*D) k,v(B,T,KV*D) → out(B,T,H*D), att(B,H,T,T).
static void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, attn_dims a) {
    int HD = a.H * a.D, KVD = a.KV * a.D, T = a.T;
    float scale = 1.0f / sqrtf((float)a.D);
    for (int b = 0; b < a.B; b++)
        for (int h = 0; h < a.H; h++) {
            int kvh = h / (a.H / a.KV);
            float *P = att + ((size_t)b * a.H + h) * T * T;
            const float *qb = q + (size_t)b * T * HD + (size_t)h * a.D;
            const float *kb = k + (size_t)b * T * KVD + (size_t)kvh * a.D;
            const float *vb = v + (size_t)b * T * KVD + (size_t)kvh * a.D;
            t2_sgemm(0, 1, T, T, a.D, scale, qb, HD, kb, KVD, 0.0f, P, T);
            for (int t = 0; t < T; t++) {
                float *row = P + (size_t)t * T, mx = -INFINITY, sum = 0;
                for (int i = 0; i <= t; i++) if (row[i] > mx) mx = row[i];
                for (int i = 0; i <= t; i++) { row[i] = expf(row[i] - mx); sum += row[i]; }
                for (int i = 0; i <= t; i++) row[i] /= sum;
                for (int i = t + 1; i < T; i++) row[i] = 0;   // masked future
            }
            t2_sgemm(0, 0, T, a.D, T, 1.0f, P, T, vb, KVD, 0.0f, out + (size_t)b * T * HD + (size_t)h * a.D, HD);
        }
}

// dq = (overwritten), dk, dv (+=, zero them first: the query heads of a group sum into one KV head).
// dP = dO·Vᵀ; dS = P⊙(dP − rowsum(dP⊙P)); dQ = dS·K/√D; dK += dSᵀ·Q/√D; dV += Pᵀ·dO.
static void attention_backward(float *dq, float *dk, float *dv, float *dP, const float *dout, const float *att,
                               const float *q, const float *k, const float *v, attn_dims a) {
    int HD = a.H * a.D, KVD = a.KV * a.D, T = a.T;
    float scale = 1.0f / sqrtf((float)a.D);
    for (int b = 0; b < a.B; b++)
        for (int h = 0; h < a.H; h++) {
            int kvh = h / (a.H / a.KV);
            const float *P = att + ((size_t)b * a.H + h) * T * T;
            size_t qo = (size_t)b * T * HD + (size_t)h * a.D, ko = (size_t)b * T * KVD + (size_t)kvh * a.D;
            const float *dO = dout + qo;
            t2_sgemm(0, 1, T, T, a.D, 1.0f, dO, HD, v + ko, KVD, 0.0f, dP, T);
            t2_sgemm(1, 0, T, a.D, T, 1.0f, P, T, dO, HD, 1.0f, dv + ko, KVD);
            for (int t = 0; t < T; t++) {
                const float *pr = P + (size_t)t * T;
                float *dr = dP + (size_t)t * T;
                double s = 0;
                for (int i = 0; i <= t; i++) s += (double)pr[i] * dr[i];
                for (int i = 0; i <= t; i++) dr[i] = pr[i] * (dr[i] - (float)s);
                for (int i = t + 1; i < T; i++) dr[i] = 0;
            }
            t2_sgemm(0, 0, T, a.D, T, scale, dP, T, k + ko, KVD, 0.0f, dq + qo, HD);
            t2_sgemm(1, 0, T, a.D, T, scale, dP, T, q + qo, HD, 1.0f, dk + ko, KVD);
        }
}

// h(n) = silu(g)·u over n elements
static void swiglu_forward(float *h, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

// dg = dh·u·σ(g)(1 + g(1 − σ(g))), du = dh·silu(g)   (written, not accumulated: fresh buffers)
static void swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-g[i]));
        dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        du[i] = dh[i] * g[i] * s;
    }
}

// dembed[tokens[n]] += dx[n] for tokens[n] >= 0 (rows that took an input embedding have -1)
static void embedding_backward(float *dembed, const float *dx, const int32_t *tokens, int N, int C) {
    for (int n = 0; n < N; n++) {
        if (tokens[n] < 0) continue;
        float *d = dembed + (size_t)tokens[n] * C;
        for (int i = 0; i < C; i++) d[i] += dx[(size_t)n * C + i];
    }
}

// Mean over rows with target >= 0 of logsumexp(logits) − logits[target]; each row's term into NLL
// (0 for ignored rows).
static float crossentropy_forward(const float *logits, const int32_t *targets, int N, int V, int *n_valid, float *nll) {
    double sum = 0;
    int cnt = 0;
    for (int n = 0; n < N; n++) {
        nll[n] = 0;
        if (targets[n] < 0) continue;
        const float *row = logits + (size_t)n * V;
        float mx = -INFINITY;
        for (int i = 0; i < V; i++) if (row[i] > mx) mx = row[i];
        double s = 0;
        for (int i = 0; i < V; i++) s += exp((double)row[i] - mx);
        double l = log(s) + mx - row[targets[n]];
        nll[n] = (float)l;
        sum += l;
        cnt++;
    }
    *n_valid = cnt;
    return cnt ? (float)(sum / cnt) : 0.0f;
}

// dlogits(N, V) = SCALE · (softmax − onehot(target)) / n_valid on valid rows, 0 elsewhere (written).
static void crossentropy_backward(float *dlogits, const float *logits, const int32_t *targets, int N, int V, int n_valid,
                                  float scale) {
    for (int n = 0; n < N; n++) {
        float *d = dlogits + (size_t)n * V;
        if (targets[n] < 0 || !n_valid) { memset(d, 0, sizeof(float) * V); continue; }
        const float *row = logits + (size_t)n * V;
        float mx = -INFINITY;
        for (int i = 0; i < V; i++) if (row[i] > mx) mx = row[i];
        double s = 0;
        for (int i = 0; i < V; i++) s += exp((double)row[i] - mx);
        float inv = scale / n_valid;
        for (int i = 0; i < V; i++) d[i] = (float)(exp((double)row[i] - mx) / s) * inv;
        d[targets[n]] -= inv;
    }
}

// ---------------------------------------------------------------------------------------------
// Model forward / backward

float t2_lm_train_forward(t2_lm_train *tr, const int32_t *tokens, const int32_t *targets, int B, int T) {
    return t2_lm_train_forward_embeds(tr, tokens, NULL, NULL, targets, B, T);
}

float t2_lm_train_forward_embeds(t2_lm_train *tr, const int32_t *tokens, const float *embeds,
                                 const uint8_t *is_embed, const int32_t *targets, int B, int T) {
    const t2_lm_config *c = &tr->cfg;
    tr->have_fwd = tr->have_bwd = 0;
    if (B <= 0 || T <= 0 || B > tr->max_B || T > tr->max_T) {
        t2_fail("lm_train forward: batch %d x %d outside the allocation %d x %d", B, T, tr->max_B, tr->max_T);
        return NAN;
    }
    int N = B * T, C = c->hidden_size, L = c->n_layers, I = c->intermediate_size, V = c->vocab_size;
    int D = c->head_dim, H = c->n_heads, KV = c->n_kv_heads, HD = H * D, KVD = KV * D;
    for (int n = 0; n < N; n++) {
        int use_embed = embeds && (!is_embed || is_embed[n]);
        int tok = use_embed ? -1 : tokens ? tokens[n] : -1;
        if ((!use_embed && (tok < 0 || tok >= V)) || targets[n] < -1 || targets[n] >= V) {
            t2_fail("lm_train forward: token %d / target %d at (%d, %d) outside the vocabulary [0, %d)",
                    tok, targets[n], n / T, n % T, V);
            return NAN;
        }
        tr->tokens[n] = tok;
        tr->targets[n] = targets[n];
    }
    tr->B = B;
    tr->T = T;
    const t2_lm_params *p = &tr->params;
    attn_dims ad = {B, T, H, KV, D};
    size_t nc = (size_t)N * C, nhd = (size_t)N * HD, nkv = (size_t)N * KVD, ni = (size_t)N * I;
    for (int n = 0; n < N; n++) {
        const float *src = tr->tokens[n] < 0 ? embeds + (size_t)n * C : p->embed + (size_t)tr->tokens[n] * C;
        memcpy(tr->resid + (size_t)n * C, src, sizeof(float) * C);
    }
    for (int l = 0; l < L; l++) {
        float *x = tr->resid + l * nc, *xo = tr->resid + (l + 1) * nc;
        float *xn1 = tr->xn1 + l * nc, *xn2 = tr->xn2 + l * nc, *hmid = tr->hmid + l * nc;
        float *q = tr->q + l * nhd, *k = tr->k + l * nkv, *v = tr->v + l * nkv, *atty = tr->atty + l * nhd;
        float *att = tr->att + (size_t)l * B * H * T * T;
        float *gate = tr->gate + l * ni, *up = tr->up + l * ni, *hm = tr->hmlp + l * ni;
        t2_rmsnorm_forward(xn1, tr->rms1 + (size_t)l * N, x, p->norm_in + (size_t)l * C, N, C, c->rms_eps);
        t2_linear_forward(q, xn1, p->wq + (size_t)l * HD * C, p->bq ? p->bq + (size_t)l * HD : NULL, N, HD, C);
        t2_linear_forward(k, xn1, p->wk + (size_t)l * KVD * C, p->bk ? p->bk + (size_t)l * KVD : NULL, N, KVD, C);
        t2_linear_forward(v, xn1, p->wv + (size_t)l * KVD * C, p->bv ? p->bv + (size_t)l * KVD : NULL, N, KVD, C);
        rope_forward(q, B, T, H, D, tr->rope_cos, tr->rope_sin);
        rope_forward(k, B, T, KV, D, tr->rope_cos, tr->rope_sin);
        attention_forward(atty, att, q, k, v, ad);
        t2_linear_forward(hmid, atty, p->wo + (size_t)l * C * HD, NULL, N, C, HD);
        for (size_t i = 0; i < nc; i++) hmid[i] += x[i];                          // h = x + attn
        t2_rmsnorm_forward(xn2, tr->rms2 + (size_t)l * N, hmid, p->norm_post + (size_t)l * C, N, C, c->rms_eps);
        t2_linear_forward(gate, xn2, p->wgate + (size_t)l * I * C, NULL, N, I, C);
        t2_linear_forward(up, xn2, p->wup + (size_t)l * I * C, NULL, N, I, C);
        swiglu_forward(hm, gate, up, ni);
        t2_linear_forward(xo, hm, p->wdown + (size_t)l * C * I, NULL, N, C, I);
        for (size_t i = 0; i < nc; i++) xo[i] += hmid[i];                         // h += mlp
    }
    t2_rmsnorm_forward(tr->xf, tr->rmsf, tr->resid + (size_t)L * nc, p->norm_final, N, C, c->rms_eps);
    tr->have_fwd = 1;
    if (!(tr->flags & T2_LM_TRAIN_TARGET_LOGITS)) {
        t2_linear_forward(tr->logits, tr->xf, p->lm_head ? p->lm_head : p->embed, NULL, N, V, C);
        return crossentropy_forward(tr->logits, tr->targets, N, V, &tr->n_valid, tr->nll);
    }
    // Only the target positions reach the head: the others' logits feed no loss.
    int M = 0;
    for (int n = 0; n < N; n++)
        if (targets[n] >= 0) {
            memcpy(tr->xg + (size_t)M * C, tr->xf + (size_t)n * C, sizeof(float) * C);
            tr->trow[M] = n, tr->ttgt[M] = targets[n], M++;
        }
    tr->M = M;
    if (M) t2_linear_forward(tr->logits, tr->xg, p->lm_head ? p->lm_head : p->embed, NULL, M, V, C);
    float loss = crossentropy_forward(tr->logits, tr->ttgt, M, V, &tr->n_valid, tr->nllc);
    memset(tr->nll, 0, sizeof(float) * (size_t)N);
    for (int m = 0; m < M; m++) tr->nll[tr->trow[m]] = tr->nllc[m];
    return loss;
}

static void backward(t2_lm_train *tr, const float *dlogits);

void t2_lm_train_backward(t2_lm_train *tr) {
    T2_ASSERT(tr->have_fwd);
    const t2_lm_config *c = &tr->cfg;
    if (tr->flags & T2_LM_TRAIN_TARGET_LOGITS)
        crossentropy_backward(tr->dlogits, tr->logits, tr->ttgt, tr->M, c->vocab_size, tr->n_valid, tr->loss_scale);
    else
        crossentropy_backward(tr->dlogits, tr->logits, tr->targets, tr->B * tr->T, c->vocab_size, tr->n_valid, tr->loss_scale);
    backward(tr, tr->dlogits);
}

void t2_lm_train_backward_from(t2_lm_train *tr, const float *dlogits) {
    T2_ASSERT(tr->have_fwd);
    T2_ASSERT(!(tr->flags & T2_LM_TRAIN_TARGET_LOGITS));   // its logits are not (B*T, V)
    backward(tr, dlogits);
}

float *t2_lm_train_dlogits_buffer(t2_lm_train *tr) { return tr->dlogits; }
void t2_lm_train_set_loss_scale(t2_lm_train *tr, float s) { tr->loss_scale = s; }

static void backward(t2_lm_train *tr, const float *dlogits) {
    const t2_lm_config *c = &tr->cfg;
    int B = tr->B, T = tr->T, N = B * T, C = c->hidden_size, L = c->n_layers, I = c->intermediate_size;
    int V = c->vocab_size, D = c->head_dim, H = c->n_heads, KV = c->n_kv_heads, HD = H * D, KVD = KV * D;
    const t2_lm_params *p = &tr->params;
    t2_lm_params *g = &tr->grads;
    int save = tr->flags & T2_LM_TRAIN_SAVE_LINEAR;
    attn_dims ad = {B, T, H, KV, D};
    size_t nc = (size_t)N * C, nhd = (size_t)N * HD, nkv = (size_t)N * KVD, ni = (size_t)N * I;

    memset(tr->dxn, 0, nc * sizeof(float));
    if (tr->flags & T2_LM_TRAIN_TARGET_LOGITS) {   // the head saw the target rows only
        int M = tr->M;
        if (M) {
            memset(tr->dxg, 0, sizeof(float) * (size_t)M * C);
            t2_linear_backward(tr->dxg, p->lm_head ? g->lm_head : g->embed, NULL, dlogits, tr->xg,
                               p->lm_head ? p->lm_head : p->embed, M, V, C);
            for (int m = 0; m < M; m++)
                memcpy(tr->dxn + (size_t)tr->trow[m] * C, tr->dxg + (size_t)m * C, sizeof(float) * C);
        }
    } else
        t2_linear_backward(tr->dxn, p->lm_head ? g->lm_head : g->embed, NULL, dlogits, tr->xf,
                           p->lm_head ? p->lm_head : p->embed, N, V, C);
    memset(tr->dres, 0, nc * sizeof(float));
    t2_rmsnorm_backward(tr->dres, g->norm_final, tr->dxn, tr->resid + (size_t)L * nc, p->norm_final, tr->rmsf, N, C);
    for (int l = L - 1; l >= 0; l--) {
        float *x = tr->resid + l * nc, *hmid = tr->hmid + l * nc;
        float *xn1 = tr->xn1 + l * nc, *xn2 = tr->xn2 + l * nc;
        float *q = tr->q + l * nhd, *k = tr->k + l * nkv, *v = tr->v + l * nkv, *atty = tr->atty + l * nhd;
        float *att = tr->att + (size_t)l * B * H * T * T;
        float *gate = tr->gate + l * ni, *up = tr->up + l * ni, *hm = tr->hmlp + l * ni;
        size_t s = save ? (size_t)l : 0;
        float *dq = tr->dq + s * nhd, *dk = tr->dk + s * nkv, *dv = tr->dv + s * nkv;
        float *dgate = tr->dgate + s * ni, *dup = tr->dup + s * ni;
        // MLP: dres is dL/d(resid[l+1]) and flows through unchanged to h_mid.
        if (save) memcpy(tr->dyd + l * nc, tr->dres, nc * sizeof(float));
        memset(tr->dh, 0, ni * sizeof(float));
        t2_linear_backward(tr->dh, g->wdown + (size_t)l * C * I, NULL, tr->dres, hm, p->wdown + (size_t)l * C * I, N, C, I);
        swiglu_backward(dgate, dup, tr->dh, gate, up, ni);
        memset(tr->dxn, 0, nc * sizeof(float));
        t2_linear_backward(tr->dxn, g->wgate + (size_t)l * I * C, NULL, dgate, xn2, p->wgate + (size_t)l * I * C, N, I, C);
        t2_linear_backward(tr->dxn, g->wup + (size_t)l * I * C, NULL, dup, xn2, p->wup + (size_t)l * I * C, N, I, C);
        t2_rmsnorm_backward(tr->dres, g->norm_post + (size_t)l * C, tr->dxn, hmid, p->norm_post + (size_t)l * C,
                         tr->rms2 + (size_t)l * N, N, C);
        // attention block: dres is now dL/dh_mid, which flows to x and into o_proj.
        if (save) memcpy(tr->dyo + l * nc, tr->dres, nc * sizeof(float));
        memset(tr->datty, 0, nhd * sizeof(float));
        t2_linear_backward(tr->datty, g->wo + (size_t)l * C * HD, NULL, tr->dres, atty, p->wo + (size_t)l * C * HD, N, C, HD);
        memset(dk, 0, nkv * sizeof(float));
        memset(dv, 0, nkv * sizeof(float));
        attention_backward(dq, dk, dv, tr->dP, tr->datty, att, q, k, v, ad);
        rope_backward(dq, B, T, H, D, tr->rope_cos, tr->rope_sin);
        rope_backward(dk, B, T, KV, D, tr->rope_cos, tr->rope_sin);
        memset(tr->dxn, 0, nc * sizeof(float));
        t2_linear_backward(tr->dxn, g->wq + (size_t)l * HD * C, g->bq ? g->bq + (size_t)l * HD : NULL, dq, xn1,
                        p->wq + (size_t)l * HD * C, N, HD, C);
        t2_linear_backward(tr->dxn, g->wk + (size_t)l * KVD * C, g->bk ? g->bk + (size_t)l * KVD : NULL, dk, xn1,
                        p->wk + (size_t)l * KVD * C, N, KVD, C);
        t2_linear_backward(tr->dxn, g->wv + (size_t)l * KVD * C, g->bv ? g->bv + (size_t)l * KVD : NULL, dv, xn1,
                        p->wv + (size_t)l * KVD * C, N, KVD, C);
        t2_rmsnorm_backward(tr->dres, g->norm_in + (size_t)l * C, tr->dxn, x, p->norm_in + (size_t)l * C,
                         tr->rms1 + (size_t)l * N, N, C);
    }
    embedding_backward(g->embed, tr->dres, tr->tokens, N, C);   // dres stays: dL/d(input rows)
    tr->have_bwd = 1;
}

const float *t2_lm_train_dembeds(const t2_lm_train *tr) {
    if (!tr->have_bwd) { t2_fail("lm_train: no backward has run since the last forward"); return NULL; }
    return tr->dres;
}

int t2_lm_train_linear_io(const t2_lm_train *tr, int layer, t2_lm_linear which, const float **X,
                          const float **dY, int *rows, int *in, int *out) {
    if (!(tr->flags & T2_LM_TRAIN_SAVE_LINEAR))
        return t2_fail("lm_train: linear inputs/gradients are kept only with T2_LM_TRAIN_SAVE_LINEAR");
    if (!tr->have_bwd) return t2_fail("lm_train: no backward has run since the last forward");
    const t2_lm_config *c = &tr->cfg;
    if (layer < 0 || layer >= c->n_layers) return t2_fail("lm_train: layer %d out of range", layer);
    size_t N = (size_t)tr->B * tr->T, C = c->hidden_size, I = c->intermediate_size, l = (size_t)layer;
    size_t HD = (size_t)c->n_heads * c->head_dim, KVD = (size_t)c->n_kv_heads * c->head_dim;
    const float *x = NULL, *dy = NULL;
    size_t k = 0, m = 0;
    switch (which) {
    case T2_LIN_Q: x = tr->xn1 + l * N * C; dy = tr->dq + l * N * HD; k = C; m = HD; break;
    case T2_LIN_K: x = tr->xn1 + l * N * C; dy = tr->dk + l * N * KVD; k = C; m = KVD; break;
    case T2_LIN_V: x = tr->xn1 + l * N * C; dy = tr->dv + l * N * KVD; k = C; m = KVD; break;
    case T2_LIN_O: x = tr->atty + l * N * HD; dy = tr->dyo + l * N * C; k = HD; m = C; break;
    case T2_LIN_GATE: x = tr->xn2 + l * N * C; dy = tr->dgate + l * N * I; k = C; m = I; break;
    case T2_LIN_UP: x = tr->xn2 + l * N * C; dy = tr->dup + l * N * I; k = C; m = I; break;
    case T2_LIN_DOWN: x = tr->hmlp + l * N * I; dy = tr->dyd + l * N * C; k = I; m = C; break;
    default: return t2_fail("lm_train: unknown linear layer %d", (int)which);
    }
    *X = x; *dY = dy; *rows = (int)N; *in = (int)k; *out = (int)m;
    return 0;
}
