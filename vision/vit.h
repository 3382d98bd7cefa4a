// vit.h — the vision towers of the LLaVA family, forward only: CLIP ViT (CLIPVisionModel, LLaVA-1.5 /
// LLaVA-NeXT) and SigLIP (SiglipVisionModel, LLaVA-OneVision), read from a LLaVA checkpoint in either
// weight-name layout (`vision_tower.vision_model.*` or `model.vision_tower.vision_model.*`). Weights
// stay in the mmap in their stored dtype (F32/F16/BF16); compute is f32. Not here: turning images into
// normalised pixels (preprocess), the projector and anyres packing (fusion/), backward passes.
#ifndef T2_VIT_H
#define T2_VIT_H
#include <cJSON.h>
#include "core/pool.h"
#include "core/safetensors.h"

typedef enum { T2_VIT_CLIP, T2_VIT_SIGLIP } t2_vit_kind;
// hidden_act values (transformers activations.py); GELU_TANH covers gelu_pytorch_tanh / gelu_new / gelu_fast.
typedef enum { T2_VIT_ACT_QUICK_GELU, T2_VIT_ACT_GELU, T2_VIT_ACT_GELU_TANH, T2_VIT_ACT_RELU, T2_VIT_ACT_SILU } t2_vit_act;

#define T2_VIT_MAX_FEATURE_LAYERS 8

typedef struct {
    t2_vit_kind kind;               // vision_config.model_type
    int hidden_size, intermediate_size, n_layers, n_heads, head_dim;
    int n_channels, image_size, patch_size;
    int grid;                       // image_size / patch_size: patches per side
    int n_positions;                // tokens per image: grid² (+1 class token for CLIP)
    float eps;                      // layer_norm_eps
    t2_vit_act act;                 // hidden_act
    // LLaVA's feature selection (top level of the config): hidden_states has n_layers+1 entries,
    // [0] = embeddings (after pre_layrnorm for CLIP), [i] = output of layer i, never post-normed.
    int n_feature_layers;           // 1 for an int vision_feature_layer, else the list's length
    int feature_layer[T2_VIT_MAX_FEATURE_LAYERS];   // as written in the config (may be negative)
    int feature_index[T2_VIT_MAX_FEATURE_LAYERS];   // resolved hidden_states index in [0, n_layers]
    int drop_first;                 // vision_feature_select_strategy "default" (1: drop token 0) or "full" (0)
} t2_vit_config;

// Contract: fill CFG from a LLaVA-family config.json object (model_type llava / llava_next /
// llava_onevision): vision_config (clip_vision_model / siglip_vision_model, transformers' defaults for
// absent keys) plus vision_feature_layer / vision_feature_select_strategy. -1 + error naming the field.
int t2_vit_config_parse(const cJSON *llava_config, t2_vit_config *cfg);
// Contract: read DIR/config.json and parse it as above; errors are prefixed with the path.
int t2_vit_config_load(const char *dir, t2_vit_config *cfg);
const char *t2_vit_kind_name(t2_vit_kind k);

typedef struct t2_vit t2_vit;

// Contract: bind the tower's weights in ST (layout found by name, every tensor shape-checked) and
// allocate activations for batches of up to MAX_BATCH images (<= 0 means 1; larger calls are chunked).
// NULL + error naming the tensor. ST must outlive the tower.
t2_vit *t2_vit_new(const t2_st *st, const t2_vit_config *cfg, t2_pool *pool, int max_batch);
void t2_vit_free(t2_vit *vit);
const t2_vit_config *t2_vit_cfg(const t2_vit *vit);
// Contract: "vision_tower.vision_model." or "model.vision_tower.vision_model." — the layout found.
const char *t2_vit_prefix(const t2_vit *vit);
// Contract: image tokens per image in t2_vit_features' output (n_positions - drop_first).
int t2_vit_tokens(const t2_vit *vit);
// Contract: feature width: hidden_size × number of selected layers (concatenated in config order).
int t2_vit_feat_dim(const t2_vit *vit);

// Contract: LLaVA image features (HF get_image_features before the projector) of N images:
// PIXELS(n, channels, image_size, image_size) normalised → OUT(n, tokens, feat_dim). Runs only the
// layers up to the deepest selected one. -1 + error if n <= 0.
int t2_vit_features(t2_vit *vit, const float *pixels, int n, float *out);
// Contract: the whole tower as HF's vision model returns it: LAST(n, n_positions, hidden) =
// last_hidden_state (SigLIP: post_layernorm applied; CLIP: the raw last layer, as HF does) and, for
// CLIP only, POOLED(n, hidden) = post_layernorm(class token). Either may be NULL. -1 + error if POOLED is
// asked of SigLIP (its attention-pooling head is not implemented) or post_layernorm is absent.
int t2_vit_forward(t2_vit *vit, const float *pixels, int n, float *last, float *pooled);

#endif
