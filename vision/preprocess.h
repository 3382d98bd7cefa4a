// preprocess.h — Hugging Face image processors in C: a decoded RGB image becomes the normalised f32
// tiles a ViT takes, exactly as transformers' slow (PIL-backed) processors make them: CLIP, LLaVA-1.5
// (pad to square with the mean colour), SigLIP, LLaVA-NeXT anyres and LLaVA-OneVision anyres, with
// PIL's resampling (Image.resize: NEAREST/BILINEAR/BICUBIC/… in 8-bit fixed point) reimplemented.
// Not here: decoding (image.h), the ViT (vit.h), and what the model does with the tiles' features —
// anyres unpadding, image_newline, OneVision's anyres_max_N downsampling live in fusion/ (HF keeps
// them in the model: modeling_llava_next/_onevision pack_image_features). The torchvision-backed
// "Fast" processors are read as their slow twins (their bicubic differs from PIL's by a few levels).
#ifndef T2_PREPROCESS_H
#define T2_PREPROCESS_H
#include "vision/image.h"
#include <cJSON.h>
#include <stdint.h>

// PIL's Image.Resampling numbers, as preprocessor_config.json stores them ("resample": 3).
typedef enum {
    T2_RESAMPLE_NEAREST = 0,
    T2_RESAMPLE_LANCZOS = 1,
    T2_RESAMPLE_BILINEAR = 2,
    T2_RESAMPLE_BICUBIC = 3,
    T2_RESAMPLE_BOX = 4,
    T2_RESAMPLE_HAMMING = 5,
} t2_resample;

// Which HF class the config named (informational: the fields below drive the pipeline).
typedef enum {
    T2_PREPROC_CLIP,        // CLIPImageProcessor (also the original LLaVA's, with config.json's image_aspect_ratio)
    T2_PREPROC_LLAVA,       // LlavaImageProcessor: CLIP + do_pad (pad to square with the mean colour)
    T2_PREPROC_SIGLIP,      // SiglipImageProcessor: resize to exactly size, no crop
    T2_PREPROC_LLAVA_NEXT,  // LlavaNextImageProcessor: anyres
    T2_PREPROC_ONEVISION,   // LlavaOnevisionImageProcessor: anyres (single image)
} t2_preproc_kind;

#define T2_PREPROC_MAX_PINPOINTS 64

// The pipeline, in order: [pad to square] → [anyres: base tile + grid tiles | one tile] → per tile:
// [resize] → [centre crop] → [rescale] → [normalise] → planar f32.
typedef struct {
    t2_preproc_kind kind;
    int do_pad_square;          // pad to a square, image centred (floor offset), with pad_rgb
    uint8_t pad_rgb[3];         // int(image_mean[c] * 255), as HF computes the background colour
    int do_resize;
    int shortest_edge;          // > 0: short side to this, long side int(S * long / short) ...
    int size_h, size_w;         // ... else exactly size_h × size_w
    t2_resample resample;
    int do_center_crop, crop_h, crop_w;
    int do_rescale;
    double rescale_factor;      // applied in f64, then rounded to f32 (HF rescale)
    int do_normalize;
    float mean[3], std[3];      // f32, as HF's normalize casts them
    int anyres;                 // tile the image (NeXT / OneVision); 0 = one tile
    int n_pinpoints;
    int pinpoints[T2_PREPROC_MAX_PINPOINTS][2];  // (height, width) in pixels, HF's order
    int tile;                   // grid tile edge (NeXT: crop_size.height; OneVision: size.height)
    int base_h, base_w;         // the whole image resized to this is tile 0
    int anyres_max;             // config.json vision_aspect_ratio "anyres_max_N" → N, else 0 (for fusion)
} t2_preproc;

// Where an image of H×W lands in anyres (select_best_resolution + get_patch_output_size).
typedef struct {
    int best_h, best_w;         // the chosen pinpoint
    int fit_h, fit_w;           // the image resized inside it, keeping aspect (then zero-padded, centred)
    int rows, cols;             // grid tiles: best / tile
} t2_anyres_layout;

typedef struct {
    float *data;                // (n_tiles, 3, h, w) normalised pixels; anyres: tile 0 is the base image
    uint8_t *u8;                // (n_tiles, 3, h, w) the same before rescale / normalise (same block as data)
    int n_tiles, h, w;
    int orig_h, orig_w;         // the input's size (HF image_sizes, (height, width))
    int grid_rows, grid_cols;   // anyres: tiles 1.. are this grid, row-major; 0 otherwise
    int best_h, best_w;         // anyres: the chosen pinpoint; 0 otherwise
} t2_pixels;

// Contract: read DIR/preprocessor_config.json (+ DIR/config.json when present: image_aspect_ratio,
// image_grid_pinpoints, vision_config.image_size, vision_aspect_ratio) into P; -1 + error naming the file and field.
int t2_preproc_load(t2_preproc *p, const char *dir);
// Contract: the same from parsed JSON: PP = preprocessor_config, MODEL = config.json or NULL; NAME prefixes errors.
int t2_preproc_from_json(t2_preproc *p, const cJSON *pp, const cJSON *model, const char *name);
// Contract: the anyres layout HF picks for an H×W image under P's pinpoints; -1 + error if P has none or H, W < 1.
int t2_preproc_layout(const t2_preproc *p, int h, int w, t2_anyres_layout *out);
// Contract: run P on IM into OUT (allocated here, free with t2_pixels_free); -1 + error, OUT zeroed.
int t2_preprocess(const t2_preproc *p, const t2_image *im, t2_pixels *out);
// Contract: release PX's block and zero it (safe on a zeroed or already freed struct).
void t2_pixels_free(t2_pixels *px);
// Contract: OUT = IN resized to W×H exactly as PIL's Image.resize((W, H), resample) does for RGB
// (OUT->rgb malloc'd, free with free()); -1 + error on empty sizes or an unknown filter.
int t2_preproc_resize(const t2_image *in, int w, int h, t2_resample r, t2_image *out);

#endif
