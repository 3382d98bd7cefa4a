// vlm_train.h — a LLaVA-family (or text-only) model as one trainable unit: the language model of
// language/lm_train.h and, for LLaVA configs, the vision tower + projector of vision/vit_train.h.
// A batch mixes image and text rows: the tower runs once over the batch's images, its projected rows
// replace the image-token positions of the language model's input, and the backward carries
// d(loss)/d(those rows) back into the tower. Also here: seeded initialisation, the parameter list as
// named tensors (with weight-decay groups), and export as an ordinary HF LLaVA checkpoint.
// Not here: optimisers and the loop (train.h), data (data.h), inference (fusion/vlm.h).
#ifndef T2_VLM_TRAIN_H
#define T2_VLM_TRAIN_H
#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include "core/dtype.h"
#include "core/safetensors.h"
#include "language/lm_train.h"
#include "vision/vit_train.h"

typedef struct t2_vlm_train t2_vlm_train;

// Contract: a model of config CONFIG (a config.json object: LLaVA with text_config + vision_config,
// or a text-only Llama / Qwen2 / Mistral config) for batches up to MAX_B rows × MAX_T positions
// holding up to MAX_IMAGES images; parameters uninitialised. NULL + error naming the field.
t2_vlm_train *t2_vlm_train_new(const cJSON *config, int max_B, int max_T, int max_images);
// The same with t2_lm_train_new_ex's LM_FLAGS for the language model (T2_LM_TRAIN_TARGET_LOGITS, ...).
t2_vlm_train *t2_vlm_train_new_ex(const cJSON *config, int max_B, int max_T, int max_images, int lm_flags);
void t2_vlm_train_free(t2_vlm_train *vt);

t2_lm_train *t2_vlm_train_lm(t2_vlm_train *vt);
t2_vit_train *t2_vlm_train_vit(t2_vlm_train *vt);   // NULL for text-only models
int t2_vlm_train_image_tokens(const t2_vlm_train *vt); // rows per image (0 without vision)
int t2_vlm_train_image_size(const t2_vlm_train *vt);   // pixels per side (0 without vision)
int t2_vlm_train_image_token_id(const t2_vlm_train *vt); // config image_token_index (-1 without vision)

// Contract: every parameter from checkpoint ST (the layouts inference reads). -1 + error naming the tensor.
int t2_vlm_train_load(t2_vlm_train *vt, const t2_st *st);
// Contract: seeded initialisation as transformers' _init_weights does for these models in spirit:
// every matrix and embedding ~ N(0, STD²) (the config's initializer_range is the usual STD), norm
// gains 1, biases and LayerNorm shifts 0. The same SEED gives the same parameters.
void t2_vlm_train_init(t2_vlm_train *vt, uint64_t seed, float std);

// Contract: mean cross-entropy over the non-ignored TARGETS(B, T) of next-token prediction. Rows are
// independent sequences (padding = target -1 at the end). Positions with IS_IMAGE[n] != 0 take image
// rows: PIXELS(n_images, 3, S, S) (normalised) go through the tower, and the k-th image's rows fill
// the k-th run of image positions in row-major order (each run exactly image_tokens long).
// NAN + error on a mismatch (runs vs images, sizes over the allocation, ids outside the vocabulary).
float t2_vlm_train_forward(t2_vlm_train *vt, const int32_t *tokens, const int32_t *targets,
                           const uint8_t *is_image, const float *pixels, int n_images, int B, int T);
// Contract: d(loss)/d(every parameter) of the last forward, added (+=) to the gradients.
void t2_vlm_train_backward(t2_vlm_train *vt);
// ON = 0: backward leaves the vision side's gradients alone (it is frozen; saves the tower's
// backward). Default 1.
void t2_vlm_train_set_vision_grad(t2_vlm_train *vt, int on);
// ON = 1: backward hands the vision side the image rows' gradient minus its mean over the batch's
// images (per position and channel), so that the tower and projector only learn what tells one
// image from another — not a shared component that every image gets (docs/t2-tiny.md: with a
// randomly initialised tower that component grows until the language model's RMSNorm divides the
// image away). Not the gradient of the loss; a training option. Default 0.
void t2_vlm_train_set_vision_grad_center(t2_vlm_train *vt, int on);
void t2_vlm_train_zero_grad(t2_vlm_train *vt);

// The parameters as two flat blocks (language model, then vision side), one optimizer state over both.
typedef struct {
    float *p[2], *g[2];
    size_t n[2];   // n[1] = 0 without vision
} t2_vlm_train_blocks;
void t2_vlm_train_get_blocks(t2_vlm_train *vt, t2_vlm_train_blocks *b);
size_t t2_vlm_train_numel(const t2_vlm_train *vt);

// One named tensor: its checkpoint name (export layout), place in the blocks, shape, decay group.
typedef struct {
    char name[160];     // "language_model.model.layers.0.mlp.up_proj.weight", "vision_tower.vision_model...."
    int block;          // 0 language model, 1 vision side
    size_t offset, numel;   // inside block
    int ndim;
    int64_t dims[4];
    int decay;          // 0 for norms, biases and the class embedding (1-D tensors), 1 otherwise
} t2_vlm_train_tensor;
int t2_vlm_train_tensor_count(const t2_vlm_train *vt);
// Contract: tensor I's description; -1 + error out of range.
int t2_vlm_train_tensor_info(t2_vlm_train *vt, int i, t2_vlm_train_tensor *t);

// Contract: write the parameters to PATH as one safetensors in the llava-hf layout
// (language_model.model.*, language_model.lm_head.weight when untied, vision_tower.vision_model.*
// with a unit post_layernorm, multi_modal_projector.*; text-only models: model.*, lm_head.weight) in
// DTYPE (F32, F16 or BF16), atomically, with metadata {"format": "pt", "producer": "t2 train"}.
int t2_vlm_train_export(t2_vlm_train *vt, const char *path, t2_dtype dtype);

#endif
