// vit_train.h — exact gradients of the LLaVA vision side for training: the vision tower (CLIP / SigLIP
// semantics of vit.h) up to the deepest selected vision_feature_layer, LLaVA's feature selection, and
// the multi_modal_projector (linear_1 → GELU → linear_2). A trainable f32 copy of every parameter in one
// block, a gradient block of the same layout, activations for up to max_images images allocated once.
// Forward maps pixels to projected image tokens; backward takes dL/d(out) and accumulates dL/dparams
// (+=). Not here: the inference path (vit.c, fusion/vlm.c), d(pixels), optimisers, anyres packing,
// post_layernorm (LLaVA's features never use it; it is neither loaded nor trained).
#ifndef T2_VIT_TRAIN_H
#define T2_VIT_TRAIN_H
#include <stddef.h>
#include "core/safetensors.h"
#include "vision/vit.h"

typedef struct {
    t2_vit_config vit;      // the tower and feature selection (vit.h)
    int text_hidden;        // text_config.hidden_size: the projector's output width
    int proj_bias;          // multimodal_projector_bias (default true)
    t2_vit_act proj_act;    // projector_hidden_act: T2_VIT_ACT_GELU (erf) or T2_VIT_ACT_GELU_TANH
} t2_vit_train_config;

// Contract: parse a LLaVA-family config.json object (vit.h's fields plus text_config.hidden_size,
// multimodal_projector_bias, projector_hidden_act); -1 + error naming the field.
int t2_vit_train_config_parse(const cJSON *j, t2_vit_train_config *cfg);
// Contract: read DIR/config.json and parse it as above.
int t2_vit_train_config_load(const char *dir, t2_vit_train_config *cfg);

// The parameters (or their gradients): pointers into one f32 block; per-layer tensors of all layers
// back to back (wq + l*C*C is layer l's q_proj). Absent tensors are NULL (patch_b for CLIP; class_emb,
// pre_w, pre_b for SigLIP; proj biases without multimodal_projector_bias). K = channels*P*P, T = n_positions,
// F = hidden * n_feature_layers, H = text_hidden. Layers past the deepest selected one get no gradient.
typedef struct {
    float *patch_w;             // (C, K) the conv kernel (C, ch, P, P) read as a matrix
    float *patch_b;             // (C) SigLIP
    float *class_emb;           // (C) CLIP
    float *pos_emb;             // (T, C)
    float *pre_w, *pre_b;       // (C) (C) CLIP pre_layrnorm
    float *ln1_w, *ln1_b;       // (L, C) each
    float *wq, *bq, *wk, *bk;   // (L, C, C) (L, C) ...
    float *wv, *bv, *wo, *bo;   // (L, C, C) (L, C) ...
    float *ln2_w, *ln2_b;       // (L, C) each
    float *fc1_w, *fc1_b;       // (L, I, C) (L, I)
    float *fc2_w, *fc2_b;       // (L, C, I) (L, C)
    float *p1_w, *p1_b;         // (H, F) (H) multi_modal_projector.linear_1
    float *p2_w, *p2_b;         // (H, H) (H) multi_modal_projector.linear_2
} t2_vit_params;

#define T2_VIT_PARAM_KINDS 26   // the fields above, in order

typedef struct t2_vit_train t2_vit_train;

// Contract: allocate parameters, gradients (zeroed) and activations for up to MAX_IMAGES images;
// parameters are uninitialised until t2_vit_train_load. NULL + error on bad sizes.
t2_vit_train *t2_vit_train_new(const t2_vit_train_config *cfg, int max_images);
void t2_vit_train_free(t2_vit_train *tr);
const t2_vit_train_config *t2_vit_train_cfg(const t2_vit_train *tr);
// Contract: image tokens per image (n_positions - drop_first) and the feature width F.
int t2_vit_train_tokens(const t2_vit_train *tr);
int t2_vit_train_feat_dim(const t2_vit_train *tr);

// Contract: copy every parameter from ST (tower under "vision_tower.vision_model." or
// "model.vision_tower.vision_model.", projector under "multi_modal_projector." or
// "model.multi_modal_projector."; F32/F16/BF16 widened; shapes checked). -1 + error naming the tensor.
int t2_vit_train_load(t2_vit_train *tr, const t2_st *st);

t2_vit_params *t2_vit_train_params(t2_vit_train *tr);
t2_vit_params *t2_vit_train_grads(t2_vit_train *tr);
// Contract: the whole blocks as flat vectors of *N floats (grads[i] is the gradient of params[i]).
float *t2_vit_train_param_block(t2_vit_train *tr, size_t *n);
float *t2_vit_train_grad_block(t2_vit_train *tr, size_t *n);
void t2_vit_train_zero_grad(t2_vit_train *tr);

// Contract: the number of named tensors (per-layer ones counted per layer); for i in range, the HF
// name without the checkpoint prefix ("embeddings.patch_embedding.weight", "encoder.layers.0.mlp.fc1.weight",
// "multi_modal_projector.linear_1.weight", ...) into NAME, and the parameter / gradient pointers and size.
int t2_vit_train_tensor_count(const t2_vit_train *tr);
int t2_vit_train_tensor(t2_vit_train *tr, int i, char *name, size_t cap, float **param, float **grad,
                        size_t *numel);

// Contract: the stored shape of tensor I (the patch conv as (C, ch, P, P)) into DIMS[4]; returns ndim
// or -1 + error when I is out of range.
int t2_vit_train_tensor_shape(const t2_vit_train *tr, int i, int64_t *dims);

// Contract: PIXELS(n, channels, S, S) normalised → OUT(n, tokens, text_hidden): tower up to the deepest
// selected layer, feature selection, projector; keeps what the backward needs. OUT NULL: the tower
// and feature selection only (for t2_vit_train_backward_features). -1 + error if n is outside
// [1, max_images].
int t2_vit_train_forward(t2_vit_train *tr, const float *pixels, int n, float *out);
// Contract: the selected features (n, tokens, F) of the last forward (the projector's input).
const float *t2_vit_train_features(const t2_vit_train *tr);
// Contract: dL/dparams for DOUT(n, tokens, text_hidden) = dL/d(out) of the last forward, added (+=).
void t2_vit_train_backward(t2_vit_train *tr, const float *dout);
// Contract: dL/d(tower parameters) for DFEAT(n, tokens, F) = dL/d(the selected features) of the last
// forward, added (+=); the projector's gradients are left alone (training the tower on its own).
void t2_vit_train_backward_features(t2_vit_train *tr, const float *dfeat);

#endif
