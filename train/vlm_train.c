// vlm_train.c — the language model and the vision side trained as one model (vlm_train.h): image rows
// spliced into the language model's input, their gradient carried back into the tower, and the
// parameters listed, initialised and exported under llava-hf names.
#include "train/vlm_train.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "core/util.h"

struct t2_vlm_train {
    t2_lm_train *lm;
    t2_vit_train *vit;          // NULL: text-only
    int llava;                  // 1: llava-hf names on export
    int max_B, max_T, max_images;
    int hidden, image_tokens, image_size, image_token_id;
    int tied;
    float *embeds;              // (max_B*max_T, hidden) the input rows of the last forward
    float *img_out;             // (max_images, image_tokens, hidden) the tower's output
    float *dimg;                // (max_images, image_tokens, hidden) its gradient
    int *img_pos;               // (max_images * image_tokens) row index in the batch of each image row
    int last_images;            // images of the last forward
    int ready;                  // a forward was run
    int no_vision_grad;         // backward stops at the image rows (the vision side is frozen)
    int center_vision_grad;     // the image rows' gradient loses its mean over the batch's images, per position
};

t2_vlm_train *t2_vlm_train_new(const cJSON *config, int max_B, int max_T, int max_images) {
    return t2_vlm_train_new_ex(config, max_B, max_T, max_images, 0);
}

t2_vlm_train *t2_vlm_train_new_ex(const cJSON *config, int max_B, int max_T, int max_images, int lm_flags) {
    if (!cJSON_IsObject(config)) return t2_fail_null("model config: a JSON object expected");
    if (max_B < 1 || max_T < 1 || max_images < 0) return t2_fail_null("vlm_train: bad sizes B=%d T=%d images=%d", max_B, max_T, max_images);
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(config, "text_config");
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(config, "vision_config");
    t2_lm_config lc;
    if (t2_lm_config_parse(tc ? tc : config, &lc)) return NULL;
    t2_vlm_train *vt = t2_calloc(1, sizeof *vt);
    vt->max_B = max_B, vt->max_T = max_T, vt->hidden = lc.hidden_size, vt->tied = lc.tie_embeddings;
    vt->image_token_id = -1;
    if (tc || vc) {
        t2_vit_train_config vcfg;
        if (!vc) { t2_vlm_train_free(vt); return t2_fail_null("model config: text_config without vision_config"); }
        if (t2_vit_train_config_parse(config, &vcfg)) { t2_vlm_train_free(vt); return NULL; }
        if (vcfg.text_hidden != lc.hidden_size) {
            t2_vlm_train_free(vt);
            return t2_fail_null("model config: projector width %d != text hidden_size %d", vcfg.text_hidden, lc.hidden_size);
        }
        vt->llava = 1;
        vt->max_images = max_images > 0 ? max_images : 1;
        if (!(vt->vit = t2_vit_train_new(&vcfg, vt->max_images))) { t2_vlm_train_free(vt); return NULL; }
        vt->image_tokens = t2_vit_train_tokens(vt->vit);
        vt->image_size = vcfg.vit.image_size;
        vt->image_token_id = (int)t2_json_num(config, "image_token_index", t2_json_num(config, "image_token_id", 32000));
        size_t ni = (size_t)vt->max_images * (size_t)vt->image_tokens;
        vt->img_out = t2_malloc(sizeof(float) * ni * (size_t)vt->hidden);
        vt->dimg = t2_malloc(sizeof(float) * ni * (size_t)vt->hidden);
        vt->img_pos = t2_malloc(sizeof(int) * ni);
    }
    if (!(vt->lm = t2_lm_train_new_ex(&lc, max_B, max_T, lm_flags))) { t2_vlm_train_free(vt); return NULL; }
    vt->embeds = t2_calloc((size_t)max_B * (size_t)max_T * (size_t)vt->hidden, sizeof(float));
    return vt;
}

void t2_vlm_train_free(t2_vlm_train *vt) {
    if (!vt) return;
    t2_lm_train_free(vt->lm);
    t2_vit_train_free(vt->vit);
    free(vt->embeds), free(vt->img_out), free(vt->dimg), free(vt->img_pos);
    free(vt);
}

t2_lm_train *t2_vlm_train_lm(t2_vlm_train *vt) { return vt->lm; }
t2_vit_train *t2_vlm_train_vit(t2_vlm_train *vt) { return vt->vit; }
int t2_vlm_train_image_tokens(const t2_vlm_train *vt) { return vt->image_tokens; }
int t2_vlm_train_image_size(const t2_vlm_train *vt) { return vt->image_size; }
int t2_vlm_train_image_token_id(const t2_vlm_train *vt) { return vt->image_token_id; }

int t2_vlm_train_load(t2_vlm_train *vt, const t2_st *st) {
    if (t2_lm_train_load(vt->lm, st)) return -1;
    return vt->vit ? t2_vit_train_load(vt->vit, st) : 0;
}

// ---------------------------------------------------------------------------------------------
// Parameters as named tensors

int t2_vlm_train_tensor_count(const t2_vlm_train *vt) {
    return t2_lm_train_tensor_count(vt->lm) + (vt->vit ? t2_vit_train_tensor_count(vt->vit) : 0);
}

int t2_vlm_train_tensor_info(t2_vlm_train *vt, int i, t2_vlm_train_tensor *t) {
    memset(t, 0, sizeof *t);
    int nl = t2_lm_train_tensor_count(vt->lm);
    char base[128];
    float *p;
    if (i < 0 || i >= t2_vlm_train_tensor_count(vt)) return t2_fail("vlm_train: tensor %d out of range", i);
    if (i < nl) {
        size_t n;
        float *block = t2_lm_train_param_block(vt->lm, &n);
        t2_lm_train_tensor(vt->lm, i, base, sizeof base, &p, NULL, &t->numel);
        t->ndim = t2_lm_train_tensor_shape(vt->lm, i, t->dims);
        t->block = 0, t->offset = (size_t)(p - block);
        if (!strcmp(base, "lm_head.weight")) snprintf(t->name, sizeof t->name, "%slm_head.weight", vt->llava ? "language_model." : "");
        else snprintf(t->name, sizeof t->name, "%s%s", vt->llava ? "language_model.model." : "model.", base);
    } else {
        size_t n;
        float *block = t2_vit_train_param_block(vt->vit, &n);
        t2_vit_train_tensor(vt->vit, i - nl, base, sizeof base, &p, NULL, &t->numel);
        t->ndim = t2_vit_train_tensor_shape(vt->vit, i - nl, t->dims);
        t->block = 1, t->offset = (size_t)(p - block);
        if (!strncmp(base, "multi_modal_projector.", 22)) snprintf(t->name, sizeof t->name, "%s", base);
        else snprintf(t->name, sizeof t->name, "vision_tower.vision_model.%s", base);
    }
    t->decay = t->ndim >= 2;
    return 0;
}

void t2_vlm_train_get_blocks(t2_vlm_train *vt, t2_vlm_train_blocks *b) {
    memset(b, 0, sizeof *b);
    b->p[0] = t2_lm_train_param_block(vt->lm, &b->n[0]);
    b->g[0] = t2_lm_train_grad_block(vt->lm, &b->n[0]);
    if (vt->vit) {
        b->p[1] = t2_vit_train_param_block(vt->vit, &b->n[1]);
        b->g[1] = t2_vit_train_grad_block(vt->vit, &b->n[1]);
    }
}

size_t t2_vlm_train_numel(const t2_vlm_train *vt) {
    t2_vlm_train_blocks b;
    t2_vlm_train_get_blocks((t2_vlm_train *)vt, &b);
    return b.n[0] + b.n[1];
}

void t2_vlm_train_init(t2_vlm_train *vt, uint64_t seed, float std) {
    t2_vlm_train_blocks b;
    t2_vlm_train_get_blocks(vt, &b);
    t2_rng rng;
    t2_rng_seed(&rng, seed);
    int n = t2_vlm_train_tensor_count(vt);
    for (int i = 0; i < n; i++) {
        t2_vlm_train_tensor t;
        t2_vlm_train_tensor_info(vt, i, &t);
        float *p = b.p[t.block] + t.offset;
        // 1-D tensors: gains of norms are 1, biases / shifts 0; the class embedding is a vector drawn like the rest.
        int gain = t.ndim == 1 && strstr(t.name, "norm") && !strcmp(t.name + strlen(t.name) - 7, ".weight");
        int vec_random = t.ndim == 1 && strstr(t.name, "class_embedding");
        for (size_t k = 0; k < t.numel; k++)
            p[k] = t.ndim >= 2 || vec_random ? std * t2_rng_normal(&rng) : gain ? 1.0f : 0.0f;
    }
}

void t2_vlm_train_zero_grad(t2_vlm_train *vt) {
    t2_lm_train_zero_grad(vt->lm);
    if (vt->vit) t2_vit_train_zero_grad(vt->vit);
}

// ---------------------------------------------------------------------------------------------
// Forward / backward

float t2_vlm_train_forward(t2_vlm_train *vt, const int32_t *tokens, const int32_t *targets,
                           const uint8_t *is_image, const float *pixels, int n_images, int B, int T) {
    vt->ready = 0;
    if (B < 1 || T < 1 || B > vt->max_B || T > vt->max_T)
        return t2_fail("vlm_train: batch %d×%d exceeds the allocation %d×%d", B, T, vt->max_B, vt->max_T), NAN;
    if (n_images > 0 && !vt->vit) return t2_fail("vlm_train: a text-only model cannot take images"), NAN;
    if (n_images > vt->max_images) return t2_fail("vlm_train: %d images exceed the allocation %d", n_images, vt->max_images), NAN;
    // The image runs: each one exactly image_tokens long, one per image, in row-major order.
    int runs = 0, R = vt->image_tokens, H = vt->hidden;
    if (is_image) {
        for (int r = 0; r < B; r++) {
            for (int t = 0; t < T;) {
                size_t n = (size_t)r * T + t;
                if (!is_image[n]) { t++; continue; }
                int len = 0;
                while (t + len < T && is_image[n + len]) len++;
                if (runs >= n_images) return t2_fail("vlm_train: more image runs than the %d images given", n_images), NAN;
                if (len != R) return t2_fail("vlm_train: an image run of %d positions in row %d; %d expected", len, r, R), NAN;
                for (int k = 0; k < R; k++) vt->img_pos[runs * R + k] = (int)n + k;
                runs++;
                t += len;
            }
        }
    }
    if (runs != n_images) return t2_fail("vlm_train: %d images given for %d image runs", n_images, runs), NAN;
    if (n_images > 0) {
        if (t2_vit_train_forward(vt->vit, pixels, n_images, vt->img_out)) return NAN;
        for (int k = 0; k < n_images * R; k++)
            memcpy(vt->embeds + (size_t)vt->img_pos[k] * H, vt->img_out + (size_t)k * H, sizeof(float) * H);
    }
    vt->last_images = n_images;
    float loss = t2_lm_train_forward_embeds(vt->lm, tokens, n_images ? vt->embeds : NULL, n_images ? is_image : NULL,
                                            targets, B, T);
    if (!isnan(loss)) vt->ready = 1;
    return loss;
}

void t2_vlm_train_backward(t2_vlm_train *vt) {
    T2_ASSERT(vt->ready);
    t2_lm_train_backward(vt->lm);
    if (vt->last_images > 0 && !vt->no_vision_grad) {
        const float *de = t2_lm_train_dembeds(vt->lm);
        int R = vt->image_tokens, H = vt->hidden;
        int N = vt->last_images;
        for (int k = 0; k < N * R; k++)
            memcpy(vt->dimg + (size_t)k * H, de + (size_t)vt->img_pos[k] * H, sizeof(float) * H);
        if (vt->center_vision_grad && N > 1)   // per position and channel: minus the mean over the images
            for (size_t j = 0; j < (size_t)R * H; j++) {
                double m = 0;
                for (int i = 0; i < N; i++) m += vt->dimg[(size_t)i * R * H + j];
                float mf = (float)(m / N);
                for (int i = 0; i < N; i++) vt->dimg[(size_t)i * R * H + j] -= mf;
            }
        t2_vit_train_backward(vt->vit, vt->dimg);
    }
}

void t2_vlm_train_set_vision_grad(t2_vlm_train *vt, int on) { vt->no_vision_grad = !on; }
void t2_vlm_train_set_vision_grad_center(t2_vlm_train *vt, int on) { vt->center_vision_grad = on != 0; }

// ---------------------------------------------------------------------------------------------
// Export

int t2_vlm_train_export(t2_vlm_train *vt, const char *path, t2_dtype dtype) {
    if (dtype != T2_DTYPE_F32 && dtype != T2_DTYPE_F16 && dtype != T2_DTYPE_BF16)
        return t2_fail("%s: export dtype %s; F32, F16 or BF16 expected", path, t2_dtype_name(dtype));
    t2_vlm_train_blocks b;
    t2_vlm_train_get_blocks(vt, &b);
    t2_st_writer *w = t2_st_writer_new();
    size_t es = t2_dtype_size(dtype);
    void *buf = t2_malloc(es * (b.n[0] > b.n[1] ? b.n[0] : b.n[1]) + 16);
    int n = t2_vlm_train_tensor_count(vt), rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        t2_vlm_train_tensor t;
        t2_vlm_train_tensor_info(vt, i, &t);
        t2_from_f32(buf, b.p[t.block] + t.offset, dtype, t.numel);
        rc = t2_st_writer_add(w, t.name, dtype, t.ndim, t.dims, buf);
    }
    if (rc == 0 && vt->vit && vt->llava) {   // CLIP / SigLIP carry a post_layernorm LLaVA never uses: write it as identity
        int C = t2_vit_train_cfg(vt->vit)->vit.hidden_size;
        float *one = t2_malloc(sizeof(float) * C), *zero = t2_calloc(C, sizeof(float));
        for (int k = 0; k < C; k++) one[k] = 1.0f;
        int64_t d[1] = {C};
        t2_from_f32(buf, one, dtype, C);
        rc = t2_st_writer_add(w, "vision_tower.vision_model.post_layernorm.weight", dtype, 1, d, buf);
        t2_from_f32(buf, zero, dtype, C);
        if (rc == 0) rc = t2_st_writer_add(w, "vision_tower.vision_model.post_layernorm.bias", dtype, 1, d, buf);
        free(one), free(zero);
    }
    if (rc == 0) rc = t2_st_writer_meta(w, "format", "pt");
    if (rc == 0) rc = t2_st_writer_meta(w, "producer", "t2 train");
    if (rc == 0) rc = t2_st_writer_write(w, path);
    t2_st_writer_free(w);
    free(buf);
    return rc;
}
