// vit_train.c — forward and exact backward of the LLaVA vision side (CLIP / SigLIP tower up to the
// deepest selected feature layer, feature selection, multi_modal_projector) for training, llm.c style:
// parameters, gradients and activations are each one block carved by a sizes table; every op is an
// op_forward / op_backward pair, gradients accumulate with +=, no autograd. Not here: the inference path
// (vit.c keeps weights in the mmap in their stored dtype; fusion/vlm.c runs the projector), d(pixels),
// post_layernorm, optimisers. Single-threaded apart from OpenBLAS inside t2_sgemm. Semantics match vit.c /
// transformers' modeling_clip.py, modeling_siglip.py and modeling_llava.py (get_image_features).
#include "vision/vit_train.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct t2_vit_train {
    t2_vit_train_config cfg;
    int max_n, n, U, have_fwd, have_proj;   // U: layers run (the deepest selected hidden_states index)
    t2_vit_params params, grads;
    size_t param_sizes[T2_VIT_PARAM_KINDS], n_params;
    float *param_block, *grad_block;
    // activations (N = n*T token rows, NP patches per image, Nt = n*tokens feature rows)
    float *patches;          // (n*NP, K) unfolded pixels
    float *pe;               // (n*NP, C) patch embeddings
    float *emb, *pre_m, *pre_r;   // (N, C) (N) (N) CLIP: pre_layrnorm input, its mean and 1/std
    float *resid;            // (U+1, N, C) hidden_states[0..U]
    float *xn1, *m1, *r1;    // (U, N, C) (U, N) (U, N)
    float *q, *k, *v;        // (U, N, C) each
    float *att;              // (U, n, heads, T, T) softmax probabilities
    float *atty;             // (U, N, C) attention output (out_proj input)
    float *hmid;             // (U, N, C) residual after attention
    float *xn2, *m2, *r2;    // (U, N, C) (U, N) (U, N)
    float *fch, *fca;        // (U, N, I) fc1 output before / after the activation
    float *feat;             // (Nt, F) selected features
    float *ph, *pa;          // (Nt, H) linear_1 output before / after the activation
    // backward scratch
    float *dres, *dxn, *dq, *dk, *dv, *datty;   // (N, C) each
    float *dh;               // (N, I)
    float *dP;               // (T, T)
    float *demb;             // (N, C)
    float *dpe;              // (n*NP, C)
    float *dfeat;            // (Nt, F)
    float *dph;              // (Nt, H)
    float *act_block;
};

// ---------------------------------------------------------------------------------------------
// Config

int t2_vit_train_config_parse(const cJSON *j, t2_vit_train_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    if (t2_vit_config_parse(j, &cfg->vit)) return -1;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(j, "text_config");
    double h = t2_json_num(cJSON_IsObject(tc) ? tc : NULL, "hidden_size", 4096);
    if (!(h >= 1 && h <= (1 << 20) && h == floor(h)))
        return t2_fail("config field 'text_config.hidden_size' must be a positive integer");
    cfg->text_hidden = (int)h;
    cfg->proj_bias = t2_json_bool(j, "multimodal_projector_bias", 1);
    const char *act = t2_json_str(j, "projector_hidden_act", "gelu");
    if (!strcmp(act, "gelu")) cfg->proj_act = T2_VIT_ACT_GELU;
    else if (!strcmp(act, "gelu_pytorch_tanh") || !strcmp(act, "gelu_new") || !strcmp(act, "gelu_fast"))
        cfg->proj_act = T2_VIT_ACT_GELU_TANH;
    else return t2_fail("projector_hidden_act '%s' is not supported (gelu, gelu_pytorch_tanh)", act);
    return 0;
}

int t2_vit_train_config_load(const char *dir, t2_vit_train_config *cfg) {
    char path[4096];
    if (t2_path_join(path, sizeof path, dir, "config.json")) return -1;
    cJSON *j = t2_json_load(path);
    if (!j) return -1;
    int rc = t2_vit_train_config_parse(j, cfg);
    cJSON_Delete(j);
    if (rc) t2_error_prefix("%s: ", path);
    return rc;
}

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

static void param_sizes(const t2_vit_train_config *tc, size_t *s) {
    const t2_vit_config *c = &tc->vit;
    size_t C = c->hidden_size, L = c->n_layers, I = c->intermediate_size, T = c->n_positions;
    size_t K = (size_t)c->n_channels * c->patch_size * c->patch_size, H = tc->text_hidden;
    size_t F = C * c->n_feature_layers, clip = c->kind == T2_VIT_CLIP, pb = tc->proj_bias ? 1 : 0;
    size_t t[T2_VIT_PARAM_KINDS] = {C * K, clip ? 0 : C, clip * C, T * C, clip * C, clip * C,
                                    L * C, L * C, L * C * C, L * C, L * C * C, L * C, L * C * C, L * C, L * C * C, L * C,
                                    L * C, L * C, L * I * C, L * I, L * C * I, L * C,
                                    H * F, pb * H, H * H, pb * H};
    memcpy(s, t, sizeof t);
}

static void param_ptrs(t2_vit_params *p, float **out[T2_VIT_PARAM_KINDS]) {
    float **t[T2_VIT_PARAM_KINDS] = {&p->patch_w, &p->patch_b, &p->class_emb, &p->pos_emb, &p->pre_w, &p->pre_b,
                                     &p->ln1_w, &p->ln1_b, &p->wq, &p->bq, &p->wk, &p->bk, &p->wv, &p->bv,
                                     &p->wo, &p->bo, &p->ln2_w, &p->ln2_b, &p->fc1_w, &p->fc1_b, &p->fc2_w,
                                     &p->fc2_b, &p->p1_w, &p->p1_b, &p->p2_w, &p->p2_b};
    memcpy(out, t, sizeof t);
}

t2_vit_train *t2_vit_train_new(const t2_vit_train_config *cfg, int max_images) {
    if (max_images <= 0) return t2_fail_null("vit_train: max_images %d must be positive", max_images);
    if (cfg->text_hidden <= 0) return t2_fail_null("vit_train: text_hidden %d must be positive", cfg->text_hidden);
    t2_vit_train *tr = t2_calloc(1, sizeof *tr);
    tr->cfg = *cfg;
    tr->max_n = max_images;
    const t2_vit_config *c = &cfg->vit;
    for (int s = 0; s < c->n_feature_layers; s++) if (c->feature_index[s] > tr->U) tr->U = c->feature_index[s];

    param_sizes(cfg, tr->param_sizes);
    float **pp[T2_VIT_PARAM_KINDS], **gp[T2_VIT_PARAM_KINDS];
    param_ptrs(&tr->params, pp);
    param_ptrs(&tr->grads, gp);
    tr->n_params = carve(NULL, tr->param_sizes, pp, T2_VIT_PARAM_KINDS);
    tr->param_block = t2_aligned_alloc(tr->n_params * sizeof(float));
    tr->grad_block = t2_aligned_alloc(tr->n_params * sizeof(float));
    carve(tr->param_block, tr->param_sizes, pp, T2_VIT_PARAM_KINDS);
    carve(tr->grad_block, tr->param_sizes, gp, T2_VIT_PARAM_KINDS);
    memset(tr->grad_block, 0, tr->n_params * sizeof(float));

    size_t n = max_images, T = c->n_positions, C = c->hidden_size, I = c->intermediate_size, U = tr->U;
    size_t NP = (size_t)c->grid * c->grid, K = (size_t)c->n_channels * c->patch_size * c->patch_size;
    size_t N = n * T, Nt = n * (T - c->drop_first), F = C * c->n_feature_layers, H = cfg->text_hidden;
    size_t clip = c->kind == T2_VIT_CLIP;
    // The activation sizes table.
    size_t sizes[] = {
        n * NP * K, n * NP * C, clip * N * C, clip * N, clip * N, (U + 1) * N * C,
        U * N * C, U * N, U * N, U * N * C, U * N * C, U * N * C, U * n * c->n_heads * T * T, U * N * C,
        U * N * C, U * N * C, U * N, U * N, U * N * I, U * N * I, Nt * F, Nt * H, Nt * H,
        N * C, N * C, N * C, N * C, N * C, N * C, N * I, T * T, N * C, n * NP * C, Nt * F, Nt * H,
    };
    float **ptrs[] = {
        &tr->patches, &tr->pe, &tr->emb, &tr->pre_m, &tr->pre_r, &tr->resid,
        &tr->xn1, &tr->m1, &tr->r1, &tr->q, &tr->k, &tr->v, &tr->att, &tr->atty,
        &tr->hmid, &tr->xn2, &tr->m2, &tr->r2, &tr->fch, &tr->fca, &tr->feat, &tr->ph, &tr->pa,
        &tr->dres, &tr->dxn, &tr->dq, &tr->dk, &tr->dv, &tr->datty, &tr->dh, &tr->dP, &tr->demb, &tr->dpe,
        &tr->dfeat, &tr->dph,
    };
    int na = (int)(sizeof sizes / sizeof sizes[0]);
    size_t total = carve(NULL, sizes, ptrs, na);
    tr->act_block = t2_aligned_alloc(total * sizeof(float));
    carve(tr->act_block, sizes, ptrs, na);
    return tr;
}

void t2_vit_train_free(t2_vit_train *tr) {
    if (!tr) return;
    free(tr->param_block);
    free(tr->grad_block);
    free(tr->act_block);
    free(tr);
}

const t2_vit_train_config *t2_vit_train_cfg(const t2_vit_train *tr) { return &tr->cfg; }
int t2_vit_train_tokens(const t2_vit_train *tr) { return tr->cfg.vit.n_positions - tr->cfg.vit.drop_first; }
int t2_vit_train_feat_dim(const t2_vit_train *tr) { return tr->cfg.vit.hidden_size * tr->cfg.vit.n_feature_layers; }
t2_vit_params *t2_vit_train_params(t2_vit_train *tr) { return &tr->params; }
t2_vit_params *t2_vit_train_grads(t2_vit_train *tr) { return &tr->grads; }
float *t2_vit_train_param_block(t2_vit_train *tr, size_t *n) { if (n) *n = tr->n_params; return tr->param_block; }
float *t2_vit_train_grad_block(t2_vit_train *tr, size_t *n) { if (n) *n = tr->n_params; return tr->grad_block; }
void t2_vit_train_zero_grad(t2_vit_train *tr) { memset(tr->grad_block, 0, tr->n_params * sizeof(float)); }
const float *t2_vit_train_features(const t2_vit_train *tr) { return tr->feat; }

// ---------------------------------------------------------------------------------------------
// Tensor names and loading

#define PROJ "multi_modal_projector."
static const char *const KIND_NAME[T2_VIT_PARAM_KINDS] = {
    "embeddings.patch_embedding.weight", "embeddings.patch_embedding.bias", "embeddings.class_embedding",
    "embeddings.position_embedding.weight", "pre_layrnorm.weight", "pre_layrnorm.bias",
    "encoder.layers.%d.layer_norm1.weight", "encoder.layers.%d.layer_norm1.bias",
    "encoder.layers.%d.self_attn.q_proj.weight", "encoder.layers.%d.self_attn.q_proj.bias",
    "encoder.layers.%d.self_attn.k_proj.weight", "encoder.layers.%d.self_attn.k_proj.bias",
    "encoder.layers.%d.self_attn.v_proj.weight", "encoder.layers.%d.self_attn.v_proj.bias",
    "encoder.layers.%d.self_attn.out_proj.weight", "encoder.layers.%d.self_attn.out_proj.bias",
    "encoder.layers.%d.layer_norm2.weight", "encoder.layers.%d.layer_norm2.bias",
    "encoder.layers.%d.mlp.fc1.weight", "encoder.layers.%d.mlp.fc1.bias",
    "encoder.layers.%d.mlp.fc2.weight", "encoder.layers.%d.mlp.fc2.bias",
    PROJ "linear_1.weight", PROJ "linear_1.bias", PROJ "linear_2.weight", PROJ "linear_2.bias",
};

static int is_per_layer(int kind) { return kind >= 6 && kind <= 21; }
static int is_proj(int kind) { return kind >= 22; }

// The stored shape of KIND: ndim and dims.
static int kind_shape(const t2_vit_train_config *tc, int kind, int64_t *dims) {
    const t2_vit_config *c = &tc->vit;
    int64_t C = c->hidden_size, I = c->intermediate_size, H = tc->text_hidden, F = C * c->n_feature_layers;
    switch (kind) {
    case 0: dims[0] = C; dims[1] = c->n_channels; dims[2] = dims[3] = c->patch_size; return 4;
    case 3: dims[0] = c->n_positions; dims[1] = C; return 2;
    case 8: case 10: case 12: case 14: dims[0] = C; dims[1] = C; return 2;
    case 18: dims[0] = I; dims[1] = C; return 2;
    case 19: dims[0] = I; return 1;
    case 20: dims[0] = C; dims[1] = I; return 2;
    case 22: dims[0] = H; dims[1] = F; return 2;
    case 24: dims[0] = H; dims[1] = H; return 2;
    case 23: case 25: dims[0] = H; return 1;
    default: dims[0] = C; return 1;
    }
}

int t2_vit_train_tensor_count(const t2_vit_train *tr) {
    int n = 0;
    for (int k = 0; k < T2_VIT_PARAM_KINDS; k++)
        if (tr->param_sizes[k]) n += is_per_layer(k) ? tr->cfg.vit.n_layers : 1;
    return n;
}

// Tensor I as (kind, index within the kind: the layer for per-layer kinds); -1 out of range.
static int locate(const t2_vit_train *tr, int i, int *kind) {
    for (int k = 0; k < T2_VIT_PARAM_KINDS; k++) {
        if (!tr->param_sizes[k]) continue;
        int cnt = is_per_layer(k) ? tr->cfg.vit.n_layers : 1;
        if (i < cnt) { *kind = k; return i; }
        i -= cnt;
    }
    return -1;
}

int t2_vit_train_tensor(t2_vit_train *tr, int i, char *name, size_t cap, float **param, float **grad,
                        size_t *numel) {
    int k, j = locate(tr, i, &k);
    if (j < 0) return t2_fail("vit_train: tensor index out of range");
    float **pp[T2_VIT_PARAM_KINDS], **gp[T2_VIT_PARAM_KINDS];
    param_ptrs(&tr->params, pp);
    param_ptrs(&tr->grads, gp);
    size_t each = tr->param_sizes[k] / (size_t)(is_per_layer(k) ? tr->cfg.vit.n_layers : 1);
    if (name) snprintf(name, cap, KIND_NAME[k], j);
    if (param) *param = *pp[k] + (size_t)j * each;
    if (grad) *grad = *gp[k] + (size_t)j * each;
    if (numel) *numel = each;
    return 0;
}

int t2_vit_train_tensor_shape(const t2_vit_train *tr, int i, int64_t *dims) {
    int k;
    if (locate(tr, i, &k) < 0) return t2_fail("vit_train: tensor index out of range");
    return kind_shape(&tr->cfg, k, dims);
}

int t2_vit_train_load(t2_vit_train *tr, const t2_st *st) {
    static const char *const vpre[] = {"vision_tower.vision_model.", "model.vision_tower.vision_model."};
    static const char *const ppre[] = {"", "model."};
    int vw = -1, pw = -1;
    for (int i = 0; i < 2; i++) {
        char name[128];
        snprintf(name, sizeof name, "%sembeddings.patch_embedding.weight", vpre[i]);
        if (vw < 0 && t2_st_find(st, name)) vw = i;
        snprintf(name, sizeof name, "%s" PROJ "linear_1.weight", ppre[i]);
        if (pw < 0 && t2_st_find(st, name)) pw = i;
    }
    if (vw < 0)
        return t2_fail("no vision tower found: expected 'vision_tower.vision_model.embeddings.patch_embedding.weight' "
                       "or 'model.vision_tower.vision_model.embeddings.patch_embedding.weight'");
    if (pw < 0)
        return t2_fail("no projector found: expected '" PROJ "linear_1.weight' or 'model." PROJ "linear_1.weight'");
    float **pp[T2_VIT_PARAM_KINDS];
    param_ptrs(&tr->params, pp);
    for (int kind = 0; kind < T2_VIT_PARAM_KINDS; kind++) {
        if (!tr->param_sizes[kind]) continue;
        int64_t dims[4];
        int nd = kind_shape(&tr->cfg, kind, dims);
        int cnt = is_per_layer(kind) ? tr->cfg.vit.n_layers : 1;
        for (int l = 0; l < cnt; l++) {
            char canon[128], full[256];
            snprintf(canon, sizeof canon, KIND_NAME[kind], l);
            snprintf(full, sizeof full, "%s%s", is_proj(kind) ? ppre[pw] : vpre[vw], canon);
            const t2_st_tensor *t = t2_st_get_shape(st, full, nd, dims);
            if (!t) return -1;
            if (t->dtype != T2_DTYPE_F32 && t->dtype != T2_DTYPE_F16 && t->dtype != T2_DTYPE_BF16)
                return t2_fail("%s: tensor '%s' has dtype %s; F32, F16 or BF16 expected", t->file, full,
                               t2_dtype_name(t->dtype));
            t2_to_f32(*pp[kind] + (size_t)l * (tr->param_sizes[kind] / (size_t)cnt), t->data, t->dtype, (size_t)t->numel);
        }
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Ops: forward / backward pairs. N rows; row-major matrices.

// Linear layers: t2_linear_forward / t2_linear_backward (core/kernels.h).

// out(N, C) = (x − mean)·rstd·w + b (nn.LayerNorm, biased variance); mean(N), rstd(N) kept.
static void layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b,
                              int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        double m = 0, v = 0;
        for (int i = 0; i < C; i++) m += xr[i];
        m /= C;
        for (int i = 0; i < C; i++) { double d = xr[i] - m; v += d * d; }
        float r = (float)(1.0 / sqrt(v / C + eps));
        mean[n] = (float)m;
        rstd[n] = r;
        for (int i = 0; i < C; i++) out[(size_t)n * C + i] = (xr[i] - (float)m) * r * w[i] + b[i];
    }
}

// x̂ = (x − mean)·rstd, g = dy⊙w: dx += rstd·(g − mean(g) − x̂·mean(g⊙x̂)); dw += Σ dy⊙x̂; db += Σ dy.
static void layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                               const float *mean, const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *dyr = dy + (size_t)n * C;
        float *dxr = dx + (size_t)n * C, m = mean[n], r = rstd[n];
        double sg = 0, sgx = 0;
        for (int i = 0; i < C; i++) {
            double g = (double)dyr[i] * w[i], xh = (xr[i] - m) * r;
            sg += g;
            sgx += g * xh;
        }
        float mg = (float)(sg / C), mgx = (float)(sgx / C);
        for (int i = 0; i < C; i++) {
            float xh = (xr[i] - m) * r;
            dxr[i] += r * (dyr[i] * w[i] - mg - xh * mgx);
            dw[i] += dyr[i] * xh;
            db[i] += dyr[i];
        }
    }
}

// y(n) = act(x) (transformers activations.py: QuickGELU, GELU (erf), PytorchGELUTanh, ReLU, SiLU).
static void act_forward(float *y, const float *x, size_t n, t2_vit_act a) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        switch (a) {
        case T2_VIT_ACT_QUICK_GELU: y[i] = v / (1.0f + expf(-1.702f * v)); break;
        case T2_VIT_ACT_GELU: y[i] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2)); break;
        case T2_VIT_ACT_GELU_TANH:
            y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
            break;
        case T2_VIT_ACT_RELU: y[i] = v > 0 ? v : 0; break;
        case T2_VIT_ACT_SILU: y[i] = v / (1.0f + expf(-v)); break;
        }
    }
}

// d(n) = d · act'(x) in place, x the activation's input.
static void act_backward(float *d, const float *x, size_t n, t2_vit_act a) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i], g = 0;
        switch (a) {
        case T2_VIT_ACT_QUICK_GELU: {
            float s = 1.0f / (1.0f + expf(-1.702f * v));
            g = s + 1.702f * v * s * (1.0f - s);
            break;
        }
        case T2_VIT_ACT_GELU:   // Φ(x) + x·φ(x)
            g = 0.5f * (1.0f + erff(v * (float)M_SQRT1_2)) + v * expf(-0.5f * v * v) * 0.3989422804014327f;
            break;
        case T2_VIT_ACT_GELU_TANH: {
            float k = 0.7978845608028654f, t = tanhf(k * (v + 0.044715f * v * v * v));
            g = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * v * v);
            break;
        }
        case T2_VIT_ACT_RELU: g = v > 0 ? 1.0f : 0.0f; break;
        case T2_VIT_ACT_SILU: {
            float s = 1.0f / (1.0f + expf(-v));
            g = s * (1.0f + v * (1.0f - s));
            break;
        }
        }
        d[i] *= g;
    }
}

typedef struct { int n, T, H, D; } attn_dims;

// Per image and head: P(T, T) = softmax(Q·Kᵀ/√D) (no mask), O = P·V. q,k,v,out (n*T, H*D), att (n, H, T, T).
static void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, attn_dims a) {
    int C = a.H * a.D, T = a.T;
    float scale = 1.0f / sqrtf((float)a.D);
    for (int b = 0; b < a.n; b++)
        for (int h = 0; h < a.H; h++) {
            float *P = att + ((size_t)b * a.H + h) * T * T;
            size_t o = (size_t)b * T * C + (size_t)h * a.D;
            t2_sgemm(0, 1, T, T, a.D, scale, q + o, C, k + o, C, 0.0f, P, T);
            for (int t = 0; t < T; t++) {
                float *row = P + (size_t)t * T, mx = -INFINITY, sum = 0;
                for (int i = 0; i < T; i++) if (row[i] > mx) mx = row[i];
                for (int i = 0; i < T; i++) { row[i] = expf(row[i] - mx); sum += row[i]; }
                for (int i = 0; i < T; i++) row[i] /= sum;
            }
            t2_sgemm(0, 0, T, a.D, T, 1.0f, P, T, v + o, C, 0.0f, out + o, C);
        }
}

// dq, dk, dv written (every head slice is its own). dP = dO·Vᵀ; dS = P⊙(dP − rowsum(dP⊙P));
// dQ = dS·K/√D; dK = dSᵀ·Q/√D; dV = Pᵀ·dO.
static void attention_backward(float *dq, float *dk, float *dv, float *dP, const float *dout, const float *att,
                               const float *q, const float *k, const float *v, attn_dims a) {
    int C = a.H * a.D, T = a.T;
    float scale = 1.0f / sqrtf((float)a.D);
    for (int b = 0; b < a.n; b++)
        for (int h = 0; h < a.H; h++) {
            const float *P = att + ((size_t)b * a.H + h) * T * T;
            size_t o = (size_t)b * T * C + (size_t)h * a.D;
            t2_sgemm(0, 1, T, T, a.D, 1.0f, dout + o, C, v + o, C, 0.0f, dP, T);
            t2_sgemm(1, 0, T, a.D, T, 1.0f, P, T, dout + o, C, 0.0f, dv + o, C);
            for (int t = 0; t < T; t++) {
                const float *pr = P + (size_t)t * T;
                float *dr = dP + (size_t)t * T;
                double s = 0;
                for (int i = 0; i < T; i++) s += (double)pr[i] * dr[i];
                for (int i = 0; i < T; i++) dr[i] = pr[i] * (dr[i] - (float)s);
            }
            t2_sgemm(0, 0, T, a.D, T, scale, dP, T, k + o, C, 0.0f, dq + o, C);
            t2_sgemm(1, 0, T, a.D, T, scale, dP, T, q + o, C, 0.0f, dk + o, C);
        }
}

// patches(n*NP, ch*P*P): patch (image, py, px) in the conv kernel's (c, ky, kx) order.
static void unfold_forward(float *patches, const float *pixels, int n, const t2_vit_config *c) {
    int P = c->patch_size, S = c->image_size, G = c->grid, K = c->n_channels * P * P;
    for (int img = 0; img < n; img++)
        for (int p = 0; p < G * G; p++) {
            int py = p / G, px = p % G;
            float *dst = patches + ((size_t)img * G * G + p) * K;
            for (int ch = 0; ch < c->n_channels; ch++) {
                const float *plane = pixels + ((size_t)img * c->n_channels + ch) * S * S;
                for (int ky = 0; ky < P; ky++)
                    memcpy(dst + ((size_t)ch * P + ky) * P, plane + (size_t)(py * P + ky) * S + (size_t)px * P,
                           sizeof(float) * P);
            }
        }
}

// ---------------------------------------------------------------------------------------------
// Model forward / backward

int t2_vit_train_forward(t2_vit_train *tr, const float *pixels, int n, float *out) {
    const t2_vit_config *c = &tr->cfg.vit;
    tr->have_fwd = 0;
    if (n <= 0 || n > tr->max_n)
        return t2_fail("vit_train forward: %d images outside the allocation [1, %d]", n, tr->max_n);
    tr->n = n;
    int T = c->n_positions, C = c->hidden_size, I = c->intermediate_size, NP = c->grid * c->grid;
    int K = c->n_channels * c->patch_size * c->patch_size, N = n * T, tok = T - c->drop_first;
    int Nt = n * tok, F = C * c->n_feature_layers, H = tr->cfg.text_hidden;
    const t2_vit_params *p = &tr->params;
    attn_dims ad = {n, T, c->n_heads, c->head_dim};
    size_t nc = (size_t)N * C, ni = (size_t)N * I;

    // embeddings → hidden_states[0]
    unfold_forward(tr->patches, pixels, n, c);
    t2_linear_forward(tr->pe, tr->patches, p->patch_w, p->patch_b, n * NP, C, K);
    float *x0 = c->kind == T2_VIT_CLIP ? tr->emb : tr->resid;
    for (int img = 0; img < n; img++)
        for (int t = 0; t < T; t++) {
            const float *src = c->kind == T2_VIT_CLIP ? (t == 0 ? p->class_emb : tr->pe + ((size_t)img * NP + t - 1) * C)
                                                      : tr->pe + ((size_t)img * NP + t) * C;
            float *dst = x0 + ((size_t)img * T + t) * C;
            for (int i = 0; i < C; i++) dst[i] = src[i] + p->pos_emb[(size_t)t * C + i];
        }
    if (c->kind == T2_VIT_CLIP) layernorm_forward(tr->resid, tr->pre_m, tr->pre_r, tr->emb, p->pre_w, p->pre_b, N, C, c->eps);

    for (int l = 0; l < tr->U; l++) {
        float *x = tr->resid + l * nc, *xo = tr->resid + (l + 1) * nc;
        float *xn1 = tr->xn1 + l * nc, *xn2 = tr->xn2 + l * nc, *hmid = tr->hmid + l * nc;
        float *q = tr->q + l * nc, *k = tr->k + l * nc, *v = tr->v + l * nc, *atty = tr->atty + l * nc;
        float *att = tr->att + (size_t)l * n * c->n_heads * T * T;
        float *fch = tr->fch + l * ni, *fca = tr->fca + l * ni;
        size_t lc = (size_t)l * C, lcc = (size_t)l * C * C, lic = (size_t)l * I * C;
        layernorm_forward(xn1, tr->m1 + (size_t)l * N, tr->r1 + (size_t)l * N, x, p->ln1_w + lc, p->ln1_b + lc, N, C, c->eps);
        t2_linear_forward(q, xn1, p->wq + lcc, p->bq + lc, N, C, C);
        t2_linear_forward(k, xn1, p->wk + lcc, p->bk + lc, N, C, C);
        t2_linear_forward(v, xn1, p->wv + lcc, p->bv + lc, N, C, C);
        attention_forward(atty, att, q, k, v, ad);
        t2_linear_forward(hmid, atty, p->wo + lcc, p->bo + lc, N, C, C);
        for (size_t i = 0; i < nc; i++) hmid[i] += x[i];                          // h = x + attn
        layernorm_forward(xn2, tr->m2 + (size_t)l * N, tr->r2 + (size_t)l * N, hmid, p->ln2_w + lc, p->ln2_b + lc, N, C, c->eps);
        t2_linear_forward(fch, xn2, p->fc1_w + lic, p->fc1_b + (size_t)l * I, N, I, C);
        act_forward(fca, fch, ni, c->act);
        t2_linear_forward(xo, fca, p->fc2_w + lic, p->fc2_b + lc, N, C, I);
        for (size_t i = 0; i < nc; i++) xo[i] += hmid[i];                         // h += mlp
    }

    // feature selection: slot s = hidden_states[feature_index[s]] at columns [s*C, (s+1)*C)
    for (int s = 0; s < c->n_feature_layers; s++) {
        const float *hs = tr->resid + (size_t)c->feature_index[s] * nc;
        for (int img = 0; img < n; img++)
            for (int t = 0; t < tok; t++)
                memcpy(tr->feat + ((size_t)img * tok + t) * F + (size_t)s * C,
                       hs + ((size_t)img * T + t + c->drop_first) * C, sizeof(float) * C);
    }
    tr->have_fwd = 1;
    tr->have_proj = out != NULL;
    if (!out) return 0;
    // projector: linear_1 → act → linear_2
    t2_linear_forward(tr->ph, tr->feat, p->p1_w, p->p1_b, Nt, H, F);
    act_forward(tr->pa, tr->ph, (size_t)Nt * H, tr->cfg.proj_act);
    t2_linear_forward(out, tr->pa, p->p2_w, p->p2_b, Nt, H, H);
    tr->have_fwd = 1;
    return 0;
}

static void tower_backward(t2_vit_train *tr);

void t2_vit_train_backward(t2_vit_train *tr, const float *dout) {
    T2_ASSERT(tr->have_fwd && tr->have_proj);
    const t2_vit_config *c = &tr->cfg.vit;
    int Nt = tr->n * (c->n_positions - c->drop_first), F = c->hidden_size * c->n_feature_layers, H = tr->cfg.text_hidden;
    const t2_vit_params *p = &tr->params;
    t2_vit_params *g = &tr->grads;

    // projector
    memset(tr->dph, 0, sizeof(float) * Nt * H);
    t2_linear_backward(tr->dph, g->p2_w, g->p2_b, dout, tr->pa, p->p2_w, Nt, H, H);
    act_backward(tr->dph, tr->ph, (size_t)Nt * H, tr->cfg.proj_act);
    memset(tr->dfeat, 0, sizeof(float) * Nt * F);
    t2_linear_backward(tr->dfeat, g->p1_w, g->p1_b, tr->dph, tr->feat, p->p1_w, Nt, H, F);
    tower_backward(tr);
}

void t2_vit_train_backward_features(t2_vit_train *tr, const float *dfeat) {
    T2_ASSERT(tr->have_fwd);
    const t2_vit_config *c = &tr->cfg.vit;
    size_t nf = (size_t)tr->n * (size_t)(c->n_positions - c->drop_first) * (size_t)(c->hidden_size * c->n_feature_layers);
    memcpy(tr->dfeat, dfeat, nf * sizeof(float));
    tower_backward(tr);
}

// dL/d(tower parameters) from tr->dfeat = dL/d(selected features), added (+=).
static void tower_backward(t2_vit_train *tr) {
    const t2_vit_config *c = &tr->cfg.vit;
    int n = tr->n, T = c->n_positions, C = c->hidden_size, I = c->intermediate_size, NP = c->grid * c->grid;
    int K = c->n_channels * c->patch_size * c->patch_size, N = n * T, tok = T - c->drop_first;
    int F = C * c->n_feature_layers;
    const t2_vit_params *p = &tr->params;
    t2_vit_params *g = &tr->grads;
    attn_dims ad = {n, T, c->n_heads, c->head_dim};
    size_t nc = (size_t)N * C, ni = (size_t)N * I;

    // down the tower: at hidden_states[idx] add the gradient of every slot that selected it
    memset(tr->dres, 0, nc * sizeof(float));
    for (int idx = tr->U; idx >= 0; idx--) {
        for (int s = 0; s < c->n_feature_layers; s++) {
            if (c->feature_index[s] != idx) continue;
            for (int img = 0; img < n; img++)
                for (int t = 0; t < tok; t++) {
                    const float *src = tr->dfeat + ((size_t)img * tok + t) * F + (size_t)s * C;
                    float *dst = tr->dres + ((size_t)img * T + t + c->drop_first) * C;
                    for (int i = 0; i < C; i++) dst[i] += src[i];
                }
        }
        if (idx == 0) break;
        int l = idx - 1;
        float *x = tr->resid + l * nc, *hmid = tr->hmid + l * nc;
        float *xn1 = tr->xn1 + l * nc, *xn2 = tr->xn2 + l * nc;
        float *q = tr->q + l * nc, *k = tr->k + l * nc, *v = tr->v + l * nc, *atty = tr->atty + l * nc;
        float *att = tr->att + (size_t)l * n * c->n_heads * T * T;
        float *fch = tr->fch + l * ni, *fca = tr->fca + l * ni;
        size_t lc = (size_t)l * C, lcc = (size_t)l * C * C, lic = (size_t)l * I * C;
        // MLP: dres is dL/d(resid[l+1]) and flows through unchanged to h_mid.
        memset(tr->dh, 0, ni * sizeof(float));
        t2_linear_backward(tr->dh, g->fc2_w + lic, g->fc2_b + lc, tr->dres, fca, p->fc2_w + lic, N, C, I);
        act_backward(tr->dh, fch, ni, c->act);
        memset(tr->dxn, 0, nc * sizeof(float));
        t2_linear_backward(tr->dxn, g->fc1_w + lic, g->fc1_b + (size_t)l * I, tr->dh, xn2, p->fc1_w + lic, N, I, C);
        layernorm_backward(tr->dres, g->ln2_w + lc, g->ln2_b + lc, tr->dxn, hmid, p->ln2_w + lc,
                           tr->m2 + (size_t)l * N, tr->r2 + (size_t)l * N, N, C);
        // attention block: dres is now dL/dh_mid, which flows to x and into out_proj.
        memset(tr->datty, 0, nc * sizeof(float));
        t2_linear_backward(tr->datty, g->wo + lcc, g->bo + lc, tr->dres, atty, p->wo + lcc, N, C, C);
        attention_backward(tr->dq, tr->dk, tr->dv, tr->dP, tr->datty, att, q, k, v, ad);
        memset(tr->dxn, 0, nc * sizeof(float));
        t2_linear_backward(tr->dxn, g->wq + lcc, g->bq + lc, tr->dq, xn1, p->wq + lcc, N, C, C);
        t2_linear_backward(tr->dxn, g->wk + lcc, g->bk + lc, tr->dk, xn1, p->wk + lcc, N, C, C);
        t2_linear_backward(tr->dxn, g->wv + lcc, g->bv + lc, tr->dv, xn1, p->wv + lcc, N, C, C);
        layernorm_backward(tr->dres, g->ln1_w + lc, g->ln1_b + lc, tr->dxn, x, p->ln1_w + lc,
                           tr->m1 + (size_t)l * N, tr->r1 + (size_t)l * N, N, C);
    }

    // embeddings: dres = dL/d(hidden_states[0])
    const float *demb = tr->dres;
    if (c->kind == T2_VIT_CLIP) {
        memset(tr->demb, 0, nc * sizeof(float));
        layernorm_backward(tr->demb, g->pre_w, g->pre_b, tr->dres, tr->emb, p->pre_w, tr->pre_m, tr->pre_r, N, C);
        demb = tr->demb;
    }
    for (int img = 0; img < n; img++)
        for (int t = 0; t < T; t++) {
            const float *d = demb + ((size_t)img * T + t) * C;
            float *gp = g->pos_emb + (size_t)t * C;
            for (int i = 0; i < C; i++) gp[i] += d[i];
            int clip = c->kind == T2_VIT_CLIP;
            if (clip && t == 0) { for (int i = 0; i < C; i++) g->class_emb[i] += d[i]; continue; }
            memcpy(tr->dpe + ((size_t)img * NP + t - clip) * C, d, sizeof(float) * C);   // patch t - clip
        }
    t2_linear_backward(NULL, g->patch_w, g->patch_b, tr->dpe, tr->patches, p->patch_w, n * NP, C, K);
}
