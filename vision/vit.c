// vit.c — the LLaVA vision towers, forward only: CLIP ViT and SigLIP (config, weight binding, the
// encoder). Not here: image decoding and HF preprocessing (pixels arrive normalised), the projector,
// anyres tiling / unpadding / image_newline (fusion/), gradients.
//
// Semantics follow transformers' modeling_clip.py (CLIPVisionTransformer) and modeling_siglip.py
// (SiglipVisionTransformer):
//   CLIP:   x = [class_embedding; conv(pixels) (no bias)] + position_embedding; x = pre_layrnorm(x)
//   SigLIP: x = conv(pixels) + bias + position_embedding                      (no class token, no pre-norm)
//   layer:  x += out_proj(attn(LN1(x)));  x += fc2(act(fc1(LN2(x))))          (biases everywhere)
//   attn:   per head softmax(q·kᵀ/√D)·v, no mask
//   hidden_states[0] = x before the first layer, [i] = after layer i (what LLaVA selects);
//   last_hidden_state: SigLIP post_layernorm(x), CLIP the raw x (its post_layernorm only makes pooler_output
//   from the class token).
// The conv is a matmul over unfolded patches; every linear layer runs over all tokens of all images of a
// batch as one (n·T, C) matrix through t2_matmul (sgemm); attention runs per image and head through
// t2_sgemm on strided head slices; row-wise work (norms, residuals, activations) is spread over the pool.
#include "vision/vit.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const void *data; t2_dtype dt; } t2_vit_mat;   // a weight matrix in the mmap

typedef struct {
    t2_vit_mat wq, wk, wv, wo;      // (C, C) each
    t2_vit_mat fc1, fc2;            // (I, C) (C, I)
    float *bq, *bk, *bv, *bo;       // (C) each, f32 copies
    float *b1, *b2;                 // (I) (C)
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b;   // (C) each
} t2_vit_layer;

struct t2_vit {
    t2_vit_config cfg;
    t2_pool *pool;
    char prefix[48];
    int max_batch;                  // images per pass (B)
    t2_vit_mat patch_w;             // (C, ch*P*P): the conv kernel (C, ch, P, P) read as a matrix
    float *patch_b;                 // (C) SigLIP; NULL for CLIP
    float *class_emb;               // (C) CLIP; NULL for SigLIP
    float *pos_emb;                 // (T, C)
    float *pre_w, *pre_b;           // (C) CLIP pre_layrnorm; NULL for SigLIP
    float *post_w, *post_b;         // (C) post_layernorm; NULL when the checkpoint has none
    t2_vit_layer *layers;           // (L)
    float *small;                   // one block holding every f32 vector above
    // Activations for B images of T tokens, carved from one block.
    float *x, *xb, *q, *k, *v, *att, *tmp;   // (B*T, C) each
    float *h;                       // (B*T, I)
    float *patches;                 // (B*NP, ch*P*P) unfolded pixels
    float *scores;                  // (T, T) attention scores of one image and head
    float *scratch;                 // t2_matmul conversion panel
    float *block;
};

// ---------------------------------------------------------------------------------------------
// Config

// Reads an integer field of OBJ (called WHERE in messages); DEF when absent.
static int get_int(const cJSON *obj, const char *where, const char *key, long def, long lo, long hi, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) { *out = (int)def; return 0; }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return t2_fail("config field '%s%s' must be an integer in [%ld, %ld]", where, key, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_float(const cJSON *obj, const char *where, const char *key, double def, float *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) { *out = (float)def; return 0; }
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0))
        return t2_fail("config field '%s%s' must be a positive number", where, key);
    *out = (float)v->valuedouble;
    return 0;
}

static int parse_act(const char *s, t2_vit_act *a) {
    static const struct { const char *name; t2_vit_act act; } acts[] = {
        {"quick_gelu", T2_VIT_ACT_QUICK_GELU}, {"gelu", T2_VIT_ACT_GELU},
        {"gelu_pytorch_tanh", T2_VIT_ACT_GELU_TANH}, {"gelu_new", T2_VIT_ACT_GELU_TANH},
        {"gelu_fast", T2_VIT_ACT_GELU_TANH}, {"relu", T2_VIT_ACT_RELU}, {"silu", T2_VIT_ACT_SILU},
    };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        if (!strcmp(s, acts[i].name)) { *a = acts[i].act; return 0; }
    return -1;
}

// One vision_feature_layer entry V → hidden_states index (negative counts from the end of L+1 entries).
static int resolve_layer(const cJSON *v, int L, int *raw, int *index) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return t2_fail("config field 'vision_feature_layer' must be an integer or a list of integers");
    int x = (int)v->valuedouble;
    if (x < -(L + 1) || x > L)
        return t2_fail("vision_feature_layer %d is out of range: the vision tower has %d layers, so "
                       "hidden_states indices run from %d to %d", x, L, -(L + 1), L);
    *raw = x;
    *index = x < 0 ? L + 1 + x : x;
    return 0;
}

int t2_vit_config_parse(const cJSON *j, t2_vit_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(j)) return t2_fail("config is not a JSON object");
    const char *top = t2_json_str(j, "model_type", "llava");
    int onevision = !strcmp(top, "llava_onevision");   // LlavaOnevisionConfig: SigLIP, layer -1, "full"
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(j, "vision_config");
    if (vc && !cJSON_IsNull(vc) && !cJSON_IsObject(vc)) return t2_fail("config field 'vision_config' must be an object");
    if (vc && cJSON_IsNull(vc)) vc = NULL;
    if (!vc && strcmp(top, "llava") && strcmp(top, "llava_next") && !onevision)
        return t2_fail("config has no 'vision_config' (model_type '%s' is not a LLaVA-family model)", top);

    const char *vmt = onevision ? "siglip_vision_model" : "clip_vision_model";   // as LlavaConfig fills it in
    if (vc) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(vc, "model_type");
        if (m && !cJSON_IsString(m)) return t2_fail("config field 'vision_config.model_type' must be a string");
        if (m) vmt = m->valuestring;
    }
    if (!strcmp(vmt, "clip_vision_model")) cfg->kind = T2_VIT_CLIP;
    else if (!strcmp(vmt, "siglip_vision_model")) cfg->kind = T2_VIT_SIGLIP;
    else return t2_fail("unsupported vision_config.model_type '%s' (supported: clip_vision_model, siglip_vision_model)", vmt);

    // Defaults: CLIPVisionConfig / SiglipVisionConfig; with no vision_config at all, LlavaConfig and
    // LlavaOnevisionConfig build one with the CLIP-L/336 sizes (hidden 1024, 24 layers, patch 14).
    int siglip = cfg->kind == T2_VIT_SIGLIP;
    long d_hidden = 768, d_inter = 3072, d_layers = 12, d_heads = 12, d_image = 224, d_patch = siglip ? 16 : 32;
    if (!vc) { d_hidden = 1024; d_inter = 4096; d_layers = 24; d_heads = 16; d_image = 336; d_patch = 14; }
    const char *w = "vision_config.";
    if (get_int(vc, w, "hidden_size", d_hidden, 1, 1 << 16, &cfg->hidden_size) ||
        get_int(vc, w, "intermediate_size", d_inter, 1, 1 << 20, &cfg->intermediate_size) ||
        get_int(vc, w, "num_hidden_layers", d_layers, 1, 1024, &cfg->n_layers) ||
        get_int(vc, w, "num_attention_heads", d_heads, 1, 1024, &cfg->n_heads) ||
        get_int(vc, w, "num_channels", 3, 1, 64, &cfg->n_channels) ||
        get_int(vc, w, "image_size", d_image, 1, 1 << 14, &cfg->image_size) ||
        get_int(vc, w, "patch_size", d_patch, 1, 1 << 10, &cfg->patch_size) ||
        get_float(vc, w, "layer_norm_eps", siglip ? 1e-6 : 1e-5, &cfg->eps))
        return -1;
    const char *act = siglip ? "gelu_pytorch_tanh" : "quick_gelu";
    if (vc) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(vc, "hidden_act");
        if (a && !cJSON_IsNull(a) && !cJSON_IsString(a)) return t2_fail("config field 'vision_config.hidden_act' must be a string");
        if (cJSON_IsString(a)) act = a->valuestring;
    }
    if (parse_act(act, &cfg->act))
        return t2_fail("unsupported vision_config.hidden_act '%s' (supported: quick_gelu, gelu, gelu_pytorch_tanh, "
                       "gelu_new, gelu_fast, relu, silu)", act);
    if (cfg->hidden_size % cfg->n_heads)
        return t2_fail("vision_config.hidden_size %d is not a multiple of num_attention_heads %d",
                       cfg->hidden_size, cfg->n_heads);
    cfg->head_dim = cfg->hidden_size / cfg->n_heads;
    if (cfg->image_size < cfg->patch_size)
        return t2_fail("vision_config.image_size %d is smaller than patch_size %d", cfg->image_size, cfg->patch_size);
    cfg->grid = cfg->image_size / cfg->patch_size;   // a "valid" conv: a partial last patch is dropped
    cfg->n_positions = cfg->grid * cfg->grid + (siglip ? 0 : 1);

    // Feature selection (LlavaForConditionalGeneration.get_image_features).
    int L = cfg->n_layers;
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(j, "vision_feature_layer");
    if (!fl || cJSON_IsNull(fl)) {
        cfg->n_feature_layers = 1;
        cfg->feature_layer[0] = onevision ? -1 : -2;
        cfg->feature_index[0] = L + 1 + cfg->feature_layer[0];
    } else if (cJSON_IsArray(fl)) {
        int n = cJSON_GetArraySize(fl);
        if (n < 1 || n > T2_VIT_MAX_FEATURE_LAYERS)
            return t2_fail("config field 'vision_feature_layer' lists %d layers; 1 to %d expected", n, T2_VIT_MAX_FEATURE_LAYERS);
        cfg->n_feature_layers = n;
        for (int i = 0; i < n; i++)
            if (resolve_layer(cJSON_GetArrayItem(fl, i), L, &cfg->feature_layer[i], &cfg->feature_index[i])) return -1;
    } else {
        cfg->n_feature_layers = 1;
        if (resolve_layer(fl, L, &cfg->feature_layer[0], &cfg->feature_index[0])) return -1;
    }
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(j, "vision_feature_select_strategy");
    const char *strategy = onevision ? "full" : "default";
    if (fs && !cJSON_IsNull(fs)) {
        if (!cJSON_IsString(fs)) return t2_fail("config field 'vision_feature_select_strategy' must be a string");
        strategy = fs->valuestring;
    }
    if (!strcmp(strategy, "default")) cfg->drop_first = 1;   // HF drops token 0 (CLIP's class token) whatever the tower
    else if (!strcmp(strategy, "full")) cfg->drop_first = 0;
    else return t2_fail("vision_feature_select_strategy '%s' is not supported ('default' or 'full')", strategy);
    if (cfg->drop_first && cfg->n_positions < 2)
        return t2_fail("vision_feature_select_strategy 'default' would leave no image tokens (%d positions)", cfg->n_positions);
    return 0;
}

int t2_vit_config_load(const char *dir, t2_vit_config *cfg) {
    char path[4096];
    if (t2_path_join(path, sizeof path, dir, "config.json")) return -1;
    cJSON *j = t2_json_load(path);
    if (!j) return -1;
    int rc = t2_vit_config_parse(j, cfg);
    if (rc) t2_error_prefix("%s: ", path);
    cJSON_Delete(j);
    return rc;
}

const char *t2_vit_kind_name(t2_vit_kind k) { return k == T2_VIT_SIGLIP ? "siglip" : "clip"; }

// ---------------------------------------------------------------------------------------------
// Weights

static int is_float_dtype(t2_dtype dt) { return dt == T2_DTYPE_F32 || dt == T2_DTYPE_F16 || dt == T2_DTYPE_BF16; }

// Finds PREFIX+NAME with the given shape and a float dtype; -1 + error naming it otherwise.
static const t2_st_tensor *get_tensor(const t2_st *st, const char *prefix, const char *name, int ndim, const int64_t *shape) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const t2_st_tensor *t = t2_st_get_shape(st, full, ndim, shape);
    if (!t) return NULL;
    if (!is_float_dtype(t->dtype))
        return t2_fail_null("%s: tensor '%s' has dtype %s; F32, F16 or BF16 expected", t->file, full, t2_dtype_name(t->dtype));
    return t;
}

static int bind_mat(const t2_st *st, const char *prefix, const char *name, int64_t rows, int64_t cols, t2_vit_mat *m) {
    int64_t shape[2] = {rows, cols};
    const t2_st_tensor *t = get_tensor(st, prefix, name, 2, shape);
    if (!t) return -1;
    m->data = t->data;
    m->dt = t->dtype;
    return 0;
}

// Copies PREFIX+NAME, of NDIM dims SHAPE, into DST as f32.
static int bind_f32(const t2_st *st, const char *prefix, const char *name, int ndim, const int64_t *shape, float *dst) {
    const t2_st_tensor *t = get_tensor(st, prefix, name, ndim, shape);
    if (!t) return -1;
    t2_to_f32(dst, t->data, t->dtype, (size_t)t->numel);
    return 0;
}

static int bind_vec(const t2_st *st, const char *prefix, const char *name, int64_t n, float *dst) {
    return bind_f32(st, prefix, name, 1, &n, dst);
}

t2_vit *t2_vit_new(const t2_st *st, const t2_vit_config *cfg, t2_pool *pool, int max_batch) {
    const t2_vit_config *c = cfg;
    static const char *prefixes[] = {"vision_tower.vision_model.", "model.vision_tower.vision_model."};
    int which = -1;
    char probe[128];
    for (int i = 0; i < 2 && which < 0; i++) {
        snprintf(probe, sizeof probe, "%sembeddings.patch_embedding.weight", prefixes[i]);
        if (t2_st_find(st, probe)) which = i;
    }
    if (which < 0)
        return t2_fail_null("no vision tower in the checkpoint: neither '%sembeddings.patch_embedding.weight' nor "
                            "'%sembeddings.patch_embedding.weight' found", prefixes[0], prefixes[1]);
    const char *P = prefixes[which];
    int siglip = c->kind == T2_VIT_SIGLIP;
    int64_t C = c->hidden_size, I = c->intermediate_size, L = c->n_layers, T = c->n_positions;
    int64_t NP = (int64_t)c->grid * c->grid, K = (int64_t)c->n_channels * c->patch_size * c->patch_size;

    t2_vit *vit = t2_calloc(1, sizeof *vit);
    vit->cfg = *c;
    vit->pool = pool;
    snprintf(vit->prefix, sizeof vit->prefix, "%s", P);
    vit->max_batch = max_batch > 0 ? max_batch : 1;
    vit->layers = t2_calloc((size_t)L, sizeof *vit->layers);
    size_t n_small = (size_t)(C * (T + 8) + L * (9 * C + I));
    float *f = vit->small = t2_malloc(n_small * sizeof(float));

    // Embeddings and the tower-level norms.
    int64_t pshape[4] = {C, c->n_channels, c->patch_size, c->patch_size}, posshape[2] = {T, C};
    const t2_st_tensor *pw = get_tensor(st, P, "embeddings.patch_embedding.weight", 4, pshape);
    if (!pw) goto fail;
    vit->patch_w.data = pw->data;
    vit->patch_w.dt = pw->dtype;
    vit->pos_emb = f; f += T * C;
    if (bind_f32(st, P, "embeddings.position_embedding.weight", 2, posshape, vit->pos_emb)) goto fail;
    if (siglip) {
        vit->patch_b = f; f += C;
        if (bind_vec(st, P, "embeddings.patch_embedding.bias", C, vit->patch_b)) goto fail;
    } else {
        vit->class_emb = f; f += C;
        vit->pre_w = f; f += C;
        vit->pre_b = f; f += C;
        if (bind_vec(st, P, "embeddings.class_embedding", C, vit->class_emb) ||
            bind_vec(st, P, "pre_layrnorm.weight", C, vit->pre_w) ||
            bind_vec(st, P, "pre_layrnorm.bias", C, vit->pre_b))
            goto fail;
    }
    snprintf(probe, sizeof probe, "%spost_layernorm.weight", P);
    if (t2_st_find(st, probe)) {   // optional: LLaVA's features never use it
        vit->post_w = f; f += C;
        vit->post_b = f; f += C;
        if (bind_vec(st, P, "post_layernorm.weight", C, vit->post_w) ||
            bind_vec(st, P, "post_layernorm.bias", C, vit->post_b))
            goto fail;
    }
    for (int l = 0; l < L; l++) {
        t2_vit_layer *w = &vit->layers[l];
        char p[96];
        snprintf(p, sizeof p, "%sencoder.layers.%d.", P, l);
        w->bq = f; f += C;
        w->bk = f; f += C;
        w->bv = f; f += C;
        w->bo = f; f += C;
        w->b1 = f; f += I;
        w->b2 = f; f += C;
        w->ln1_w = f; f += C;
        w->ln1_b = f; f += C;
        w->ln2_w = f; f += C;
        w->ln2_b = f; f += C;
        if (bind_vec(st, p, "layer_norm1.weight", C, w->ln1_w) ||
            bind_vec(st, p, "layer_norm1.bias", C, w->ln1_b) ||
            bind_mat(st, p, "self_attn.q_proj.weight", C, C, &w->wq) ||
            bind_vec(st, p, "self_attn.q_proj.bias", C, w->bq) ||
            bind_mat(st, p, "self_attn.k_proj.weight", C, C, &w->wk) ||
            bind_vec(st, p, "self_attn.k_proj.bias", C, w->bk) ||
            bind_mat(st, p, "self_attn.v_proj.weight", C, C, &w->wv) ||
            bind_vec(st, p, "self_attn.v_proj.bias", C, w->bv) ||
            bind_mat(st, p, "self_attn.out_proj.weight", C, C, &w->wo) ||
            bind_vec(st, p, "self_attn.out_proj.bias", C, w->bo) ||
            bind_vec(st, p, "layer_norm2.weight", C, w->ln2_w) ||
            bind_vec(st, p, "layer_norm2.bias", C, w->ln2_b) ||
            bind_mat(st, p, "mlp.fc1.weight", I, C, &w->fc1) ||
            bind_vec(st, p, "mlp.fc1.bias", I, w->b1) ||
            bind_mat(st, p, "mlp.fc2.weight", C, I, &w->fc2) ||
            bind_vec(st, p, "mlp.fc2.bias", C, w->b2))
            goto fail;
    }
    T2_ASSERT((size_t)(f - vit->small) <= n_small);

    // Activations: the sizes table, carved from one block (64-byte aligned pieces).
    size_t B = (size_t)vit->max_batch, BT = B * (size_t)T;
    size_t maxk = (size_t)(C > I ? C : I);
    if ((size_t)K > maxk) maxk = (size_t)K;
    size_t sizes[] = {BT * C, BT * C, BT * C, BT * C, BT * C, BT * C, BT * C, BT * I, B * NP * K,
                      (size_t)(T * T), t2_matmul_scratch_floats((int)maxk)};
    float **ptrs[] = {&vit->x, &vit->xb, &vit->q, &vit->k, &vit->v, &vit->att, &vit->tmp, &vit->h,
                      &vit->patches, &vit->scores, &vit->scratch};
    size_t total = 0, n = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n; i++) total += (sizes[i] + 15) & ~(size_t)15;
    vit->block = t2_aligned_alloc(total * sizeof(float));
    float *a = vit->block;
    for (size_t i = 0; i < n; i++) { *ptrs[i] = a; a += (sizes[i] + 15) & ~(size_t)15; }
    return vit;
fail:
    t2_vit_free(vit);
    return NULL;
}

void t2_vit_free(t2_vit *vit) {
    if (!vit) return;
    free(vit->layers);
    free(vit->small);
    free(vit->block);
    free(vit);
}

const t2_vit_config *t2_vit_cfg(const t2_vit *vit) { return &vit->cfg; }
const char *t2_vit_prefix(const t2_vit *vit) { return vit->prefix; }
int t2_vit_tokens(const t2_vit *vit) { return vit->cfg.n_positions - vit->cfg.drop_first; }
int t2_vit_feat_dim(const t2_vit *vit) { return vit->cfg.hidden_size * vit->cfg.n_feature_layers; }

// ---------------------------------------------------------------------------------------------
// Forward

// out(C) = (x - mean) / sqrt(var + eps) * w + b   (nn.LayerNorm, biased variance; may run in place)
static void layernorm(float *out, const float *x, const float *w, const float *b, int C, float eps) {
    double mean = 0, var = 0;
    for (int i = 0; i < C; i++) mean += x[i];
    mean /= C;
    for (int i = 0; i < C; i++) { double d = x[i] - mean; var += d * d; }
    var /= C;
    float m = (float)mean, r = (float)(1.0 / sqrt(var + eps));
    for (int i = 0; i < C; i++) out[i] = (x[i] - m) * r * w[i] + b[i];
}

// x(n) = act(x) in place (transformers activations.py: QuickGELU, GELU (erf), PytorchGELUTanh, ...).
static void activation(float *x, int n, t2_vit_act a) {
    switch (a) {
    case T2_VIT_ACT_QUICK_GELU:
        for (int i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
        break;
    case T2_VIT_ACT_GELU:
        for (int i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
        break;
    case T2_VIT_ACT_GELU_TANH:
        for (int i = 0; i < n; i++) {
            float v = x[i];
            x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        }
        break;
    case T2_VIT_ACT_RELU:
        for (int i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        break;
    case T2_VIT_ACT_SILU:
        for (int i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    }
}

static void matmul(t2_vit *vit, float *Y, const float *X, const t2_vit_mat *w, const float *bias, int T, int M, int K) {
    t2_matmul(vit->pool, Y, X, w->data, w->dt, bias, T, M, K, vit->scratch);
}

// The per-token (row) work, spread over the pool: one task = one token of the batch.
typedef enum { ROW_UNFOLD, ROW_EMBED, ROW_LN1, ROW_ADD_LN2, ROW_ACT, ROW_ADD } row_op;
typedef struct { t2_vit *vit; const t2_vit_layer *w; const float *pixels; row_op op; } row_job;

static void row_task(void *ctx, int t, int thread) {
    const row_job *j = ctx;
    t2_vit *vit = j->vit;
    const t2_vit_config *c = &vit->cfg;
    int C = c->hidden_size, T = c->n_positions, NP = c->grid * c->grid;
    float *x = vit->x + (size_t)t * C, *xb = vit->xb + (size_t)t * C, *tmp = vit->tmp + (size_t)t * C;
    switch (j->op) {
    case ROW_UNFOLD: {   // patch t (image, py, px) → patches(t, ch*P*P) in the conv kernel's (c, ky, kx) order
        int P = c->patch_size, S = c->image_size, img = t / NP, p = t % NP, py = p / c->grid, px = p % c->grid;
        float *dst = vit->patches + (size_t)t * c->n_channels * P * P;
        for (int ch = 0; ch < c->n_channels; ch++) {
            const float *plane = j->pixels + ((size_t)img * c->n_channels + ch) * S * S;
            for (int ky = 0; ky < P; ky++)
                memcpy(dst + ((size_t)ch * P + ky) * P, plane + (size_t)(py * P + ky) * S + (size_t)px * P, sizeof(float) * P);
        }
        break;
    }
    case ROW_EMBED: {    // token t (image, position): patch embedding (in tmp) or class token, + position
        int img = t / T, p = t % T;
        const float *pos = vit->pos_emb + (size_t)p * C;
        if (vit->class_emb) {
            const float *src = p == 0 ? vit->class_emb : vit->tmp + ((size_t)img * NP + p - 1) * C;
            for (int i = 0; i < C; i++) x[i] = src[i] + pos[i];
            layernorm(x, x, vit->pre_w, vit->pre_b, C, c->eps);
        } else {
            const float *src = vit->tmp + ((size_t)img * NP + p) * C;
            for (int i = 0; i < C; i++) x[i] = src[i] + pos[i];
        }
        break;
    }
    case ROW_LN1:
        layernorm(xb, x, j->w->ln1_w, j->w->ln1_b, C, c->eps);
        break;
    case ROW_ADD_LN2:    // residual after attention, then the MLP's norm
        for (int i = 0; i < C; i++) x[i] += tmp[i];
        layernorm(xb, x, j->w->ln2_w, j->w->ln2_b, C, c->eps);
        break;
    case ROW_ACT:
        activation(vit->h + (size_t)t * c->intermediate_size, c->intermediate_size, c->act);
        break;
    case ROW_ADD:
        for (int i = 0; i < C; i++) x[i] += tmp[i];
        break;
    }
}

static void rows(row_job *j, row_op op, int n) {
    j->op = op;
    t2_pool_run(j->vit->pool, n, row_task, j);
}

// Softmax of row t of the score matrix S(T, T) of one image and head.
static void softmax_task(void *ctx, int t, int thread) {
    t2_vit *vit = ctx;
    int T = vit->cfg.n_positions;
    float *row = vit->scores + (size_t)t * T;
    float mx = -INFINITY, sum = 0;
    for (int i = 0; i < T; i++) if (row[i] > mx) mx = row[i];
    for (int i = 0; i < T; i++) { row[i] = expf(row[i] - mx); sum += row[i]; }
    float inv = 1.0f / sum;
    for (int i = 0; i < T; i++) row[i] *= inv;
}

// Bidirectional attention of NB images: per image and head, S = Q·Kᵀ/√D and O = softmax(S)·V through
// sgemm on the strided head slices of q/k/v (B*T, C) → att (B*T, C).
static void attention(t2_vit *vit, int nb) {
    const t2_vit_config *c = &vit->cfg;
    int C = c->hidden_size, D = c->head_dim, T = c->n_positions;
    float scale = 1.0f / sqrtf((float)D);
    for (int img = 0; img < nb; img++) {
        size_t base = (size_t)img * T * C;
        for (int h = 0; h < c->n_heads; h++) {
            size_t off = base + (size_t)h * D;
            t2_sgemm(0, 1, T, T, D, scale, vit->q + off, C, vit->k + off, C, 0.0f, vit->scores, T);
            t2_pool_run(vit->pool, T, softmax_task, vit);
            t2_sgemm(0, 0, T, D, T, 1.0f, vit->scores, T, vit->v + off, C, 0.0f, vit->att + off, C);
        }
    }
}

// Embeddings of NB images PIXELS(nb, ch, S, S) into x (nb*T, C): hidden_states[0].
static void embed(t2_vit *vit, const float *pixels, int nb) {
    const t2_vit_config *c = &vit->cfg;
    int NP = c->grid * c->grid, K = c->n_channels * c->patch_size * c->patch_size;
    row_job j = {vit, NULL, pixels, ROW_UNFOLD};
    rows(&j, ROW_UNFOLD, nb * NP);
    matmul(vit, vit->tmp, vit->patches, &vit->patch_w, vit->patch_b, nb * NP, c->hidden_size, K);   // (nb*NP, C)
    rows(&j, ROW_EMBED, nb * c->n_positions);
}

// Encoder layer L over the NB images in x (nb*T, C), in place.
static void layer_forward(t2_vit *vit, int l, int nb) {
    const t2_vit_config *c = &vit->cfg;
    const t2_vit_layer *w = &vit->layers[l];
    int C = c->hidden_size, I = c->intermediate_size, BT = nb * c->n_positions;
    row_job j = {vit, w, NULL, ROW_LN1};
    rows(&j, ROW_LN1, BT);
    matmul(vit, vit->q, vit->xb, &w->wq, w->bq, BT, C, C);
    matmul(vit, vit->k, vit->xb, &w->wk, w->bk, BT, C, C);
    matmul(vit, vit->v, vit->xb, &w->wv, w->bv, BT, C, C);
    attention(vit, nb);
    matmul(vit, vit->tmp, vit->att, &w->wo, w->bo, BT, C, C);
    rows(&j, ROW_ADD_LN2, BT);
    matmul(vit, vit->h, vit->xb, &w->fc1, w->b1, BT, I, C);
    rows(&j, ROW_ACT, BT);
    matmul(vit, vit->tmp, vit->h, &w->fc2, w->b2, BT, C, I);
    rows(&j, ROW_ADD, BT);
}

// Copies hidden_states[index] (now in x) of NB images into every feature slot that selects it:
// out(nb, tokens, feat_dim), slot s at columns [s*C, (s+1)*C), tokens from drop_first on.
static void emit_features(t2_vit *vit, int index, int nb, float *out) {
    const t2_vit_config *c = &vit->cfg;
    int C = c->hidden_size, T = c->n_positions, nt = T - c->drop_first, F = t2_vit_feat_dim(vit);
    for (int s = 0; s < c->n_feature_layers; s++) {
        if (c->feature_index[s] != index) continue;
        for (int img = 0; img < nb; img++)
            for (int t = 0; t < nt; t++)
                memcpy(out + ((size_t)img * nt + t) * F + (size_t)s * C,
                       vit->x + ((size_t)img * T + t + c->drop_first) * C, sizeof(float) * C);
    }
}

int t2_vit_features(t2_vit *vit, const float *pixels, int n, float *out) {
    const t2_vit_config *c = &vit->cfg;
    if (n <= 0) return t2_fail("vision tower: %d images; at least one expected", n);
    int upto = 0;   // the deepest hidden state selected: layers past it are not run
    for (int s = 0; s < c->n_feature_layers; s++) if (c->feature_index[s] > upto) upto = c->feature_index[s];
    size_t img_px = (size_t)c->n_channels * c->image_size * c->image_size;
    size_t img_out = (size_t)t2_vit_tokens(vit) * t2_vit_feat_dim(vit);
    for (int i0 = 0; i0 < n; i0 += vit->max_batch) {
        int nb = n - i0 < vit->max_batch ? n - i0 : vit->max_batch;
        float *o = out + (size_t)i0 * img_out;
        embed(vit, pixels + (size_t)i0 * img_px, nb);
        emit_features(vit, 0, nb, o);
        for (int l = 0; l < upto; l++) {
            layer_forward(vit, l, nb);
            emit_features(vit, l + 1, nb, o);
        }
    }
    return 0;
}

int t2_vit_forward(t2_vit *vit, const float *pixels, int n, float *last, float *pooled) {
    const t2_vit_config *c = &vit->cfg;
    int C = c->hidden_size, T = c->n_positions;
    if (n <= 0) return t2_fail("vision tower: %d images; at least one expected", n);
    if (pooled && c->kind == T2_VIT_SIGLIP)
        return t2_fail("vision tower: SigLIP's pooled output needs its attention-pooling head, which is not implemented");
    if (!vit->post_w && (pooled || (last && c->kind == T2_VIT_SIGLIP)))
        return t2_fail("vision tower: tensor '%spost_layernorm.weight' is not in the checkpoint", vit->prefix);
    size_t img_px = (size_t)c->n_channels * c->image_size * c->image_size;
    for (int i0 = 0; i0 < n; i0 += vit->max_batch) {
        int nb = n - i0 < vit->max_batch ? n - i0 : vit->max_batch;
        embed(vit, pixels + (size_t)i0 * img_px, nb);
        for (int l = 0; l < c->n_layers; l++) layer_forward(vit, l, nb);
        for (int img = 0; img < nb; img++) {
            const float *x = vit->x + (size_t)img * T * C;
            if (last) {
                float *dst = last + (size_t)(i0 + img) * T * C;
                if (c->kind == T2_VIT_SIGLIP)
                    for (int t = 0; t < T; t++) layernorm(dst + (size_t)t * C, x + (size_t)t * C, vit->post_w, vit->post_b, C, c->eps);
                else
                    memcpy(dst, x, sizeof(float) * T * C);
            }
            if (pooled) layernorm(pooled + (size_t)(i0 + img) * C, x, vit->post_w, vit->post_b, C, c->eps);
        }
    }
    return 0;
}
