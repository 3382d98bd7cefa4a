// vlm.h — the whole model t2 runs: a Hugging Face checkpoint directory loaded once (weights,
// tokenizer, language model, and for LLaVA-family checkpoints the preprocessor, vision tower and
// projector), and the step that turns a prompt with images into one sequence of input embeddings.
// Text-only checkpoints load through the same path (no vision parts). Not here: generation loops and
// sampling (their callers), SVF adaptation (svf/, experts/).
#ifndef T2_VLM_H
#define T2_VLM_H
#include <stdint.h>
#include "core/pool.h"
#include "core/safetensors.h"
#include "language/chat.h"
#include "language/lm.h"
#include "language/tokenizer.h"
#include "vision/image.h"
#include "vision/preprocess.h"
#include "vision/vit.h"

typedef struct t2_vlm t2_vlm;

// Contract: load checkpoint directory DIR with THREADS threads (<= 0: all cores). A tokenizer is
// loaded when present (required if NEED_TOKENIZER). NULL + error naming the file / tensor / field.
t2_vlm *t2_vlm_load(const char *dir, int threads, int need_tokenizer);
void t2_vlm_free(t2_vlm *m);

t2_lm *t2_vlm_lm(const t2_vlm *m);
const t2_lm_config *t2_vlm_lm_cfg(const t2_vlm *m);
const t2_tokenizer *t2_vlm_tok(const t2_vlm *m);        // NULL if the checkpoint has none
const t2_st *t2_vlm_weights(const t2_vlm *m);
t2_pool *t2_vlm_pool(const t2_vlm *m);
int t2_vlm_threads(const t2_vlm *m);
const char *t2_vlm_dir(const t2_vlm *m);
int t2_vlm_has_vision(const t2_vlm *m);
const t2_vit_config *t2_vlm_vit_cfg(const t2_vlm *m);  // NULL without vision
int t2_vlm_image_token(const t2_vlm *m);               // config image_token_index, -1 without vision
// Contract: "llava", "llava_next", "llava_onevision" or the text model_type.
const char *t2_vlm_kind(const t2_vlm *m);

// Contract: the language-model input rows for image IM: preprocess → ViT features → projector →
// (anyres) packing with unpadding, OneVision's anyres_max downsampling and image_newline, exactly as
// transformers' LLaVA / LLaVA-NeXT / LLaVA-OneVision models do. *OUT is malloc'd (n_tokens, hidden).
int t2_vlm_encode_image(t2_vlm *m, const t2_image *im, float **out, int *n_tokens);

// One encoded image: the language-model input rows it stands for.
typedef struct {
    float *rows;   // (n, hidden), malloc'd by t2_vlm_encode_image
    int n;
} t2_image_rows;

// Contract: the same for N images at once: their tiles go through the tower together (batched
// sgemm; ~5-10% less time per tile than one by one for CLIP-L/336 on 2 cores). OUT[k] as above;
// on error every OUT[k] is freed and zeroed, and the message names the image.
int t2_vlm_encode_images(t2_vlm *m, const t2_image *ims, int n, t2_image_rows *out);

// Contract: ViT features → projector for N preprocessed tiles PIXELS(n, 3, S, S): OUT(n, tokens, hidden)
// with tokens = t2_vit_tokens (no packing). For benchmarks and callers that tile images themselves.
int t2_vlm_encode_tiles(t2_vlm *m, const float *pixels, int n, float *out);
// Contract: language-model rows per tile (t2_vit_tokens), or 0 without vision.
int t2_vlm_tile_tokens(const t2_vlm *m);

// A prompt ready for the language model: ids (T), with the rows where is_embed[t] != 0 taken from
// embeds(T, hidden) instead. Everything in one allocation owned by the struct.
typedef struct {
    int n;
    int32_t *ids;        // (n) token ids; image positions hold the image token id (or 0)
    uint8_t *is_embed;   // (n)
    float *embeds;       // (n, hidden) rows for image positions (others unused); NULL if no image
    int n_images, n_image_tokens;
} t2_prompt;

// Contract: tokenise TEXT, in which each "<image>" marks where one image's rows go, and splice in
// the N encoded images (the count of markers must equal N). ADD_SPECIAL adds the tokenizer's BOS
// (plain prompts; a rendered chat template spells its own).
int t2_vlm_prompt_text(t2_vlm *m, const char *text, int add_special, const t2_image_rows *images, int n,
                       t2_prompt *p);
// Contract: the same from token ids: each lone image-token id becomes that image's rows; a run of
// image-token ids exactly as long as the image's row count (what HF processors emit) is filled as is.
int t2_vlm_prompt_ids(t2_vlm *m, const int32_t *ids, int n_ids, const t2_image_rows *images, int n, t2_prompt *p);
void t2_prompt_free(t2_prompt *p);

// Contract: the chat template for this checkpoint (recognised from its chat_template), NAME when
// given ("vicuna", ...). -1 + error when neither names a known format.
int t2_vlm_chat_kind(const t2_vlm *m, const char *name, t2_chat_kind *kind);

#endif
