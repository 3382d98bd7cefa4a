// preprocess.c — transformers' slow image processors (CLIP, LLaVA, SigLIP, LLaVA-NeXT, LLaVA-OneVision)
// and the part of PIL they lean on (Image.resize), restated in C so that t2 feeds its ViT the very
// tensors HF would. Sources followed (huggingface/transformers, python-pillow/Pillow):
//   src/transformers/image_transforms.py        resize via PIL; get_resize_output_image_size;
//                                               center_crop (floor offsets, zero pad when larger);
//                                               rescale (f64 multiply, f32 result); normalize (f32)
//   models/clip/image_processing_clip.py        resize → center_crop → rescale → normalize
//   models/llava/image_processing_llava.py      do_pad: pad_to_square with int(mean * 255)
//   models/siglip/image_processing_siglip.py    resize to (height, width) → rescale → normalize
//   image_processing_utils.py                   select_best_resolution, get_patch_output_size
//   models/llava_next/image_processing_llava_next.py, models/llava_onevision/..._onevision.py
//                                               anyres: resize into the pinpoint, zero pad centred,
//                                               divide_to_patches, base image resized to a square first
//   Pillow src/libImaging/Resample.c            the separable convolution resampler (8-bit fixed point)
//   Pillow src/libImaging/Geometry.c, _imaging.c NEAREST = affine scale with accumulated coordinates
// Not here: image decoding, the ViT, and the model-side anyres steps (unpad, newline, anyres_max_N
// downsampling: modeling_llava_onevision.py pack_image_features, see fusion/).
#include "vision/preprocess.h"
#include "core/error.h"
#include "core/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Largest intermediate image we agree to make (a 1×60000 strip under shortest_edge 336 would need
// 20 Gpx): beyond it preprocessing fails instead of exhausting memory.
#define MAX_WORK_PIXELS ((long long)T2_IMAGE_MAX_PIXELS)

// OPENAI_CLIP_MEAN / _STD and IMAGENET_STANDARD (SigLIP), the classes' defaults.
static const double CLIP_MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
static const double CLIP_STD[3] = {0.26862954, 0.26130258, 0.27577711};
static const double HALF[3] = {0.5, 0.5, 0.5};

// ---- PIL resampling (Resample.c) ---------------------------------------------------------------
// Per axis, output pixel xx covers input centre (xx + 0.5) * scale; the filter is stretched by the
// scale when downscaling (antialias), its taps normalised to sum 1, then turned into 22-bit fixed
// point. Horizontal pass first (only over the rows the vertical pass reads), rounded and clamped to
// an 8-bit intermediate image, then the vertical pass, rounded and clamped again.

typedef struct {
    double (*fn)(double x);
    double support;
} filter;

static double f_box(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

static double f_bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double f_hamming(double x) {
    if (x < 0.0) x = -x;
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x = x * M_PI;
    return sin(x) / x * (0.54f + 0.46f * cos(x));   // float constants, as PIL writes them
}

static double f_bicubic(double x) {   // Keys cubic convolution, a = -0.5
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double f_lanczos(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

static const filter FILTERS[6] = {
    [T2_RESAMPLE_NEAREST] = {NULL, 0.0},   // not a convolution (see resize_nearest)
    [T2_RESAMPLE_LANCZOS] = {f_lanczos, 3.0},
    [T2_RESAMPLE_BILINEAR] = {f_bilinear, 1.0},
    [T2_RESAMPLE_BICUBIC] = {f_bicubic, 2.0},
    [T2_RESAMPLE_BOX] = {f_box, 0.5},
    [T2_RESAMPLE_HAMMING] = {f_hamming, 1.0},
};

#define PRECISION_BITS (32 - 8 - 2)

static inline uint8_t clip8(int ss) {
    int v = ss >> PRECISION_BITS;   // arithmetic shift, as PIL's table lookup
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Taps for IN_SIZE → OUT_SIZE: BOUNDS (out, 2) = (first input, count), KK (out, ksize) fixed point.
// Returns ksize; *kkp is malloc'd.
static int precompute_coeffs(int in_size, int out_size, const filter *f, int *bounds, int32_t **kkp) {
    const float in0 = 0.0f, in1 = (float)in_size;   // PIL's box is float[4]
    double scale = (double)(in1 - in0) / out_size, filterscale = scale;
    if (filterscale < 1.0) filterscale = 1.0;
    double support = f->support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    int32_t *kk = t2_malloc((size_t)out_size * (size_t)ksize * sizeof *kk);
    double *k = t2_malloc((size_t)ksize * sizeof *k);
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        int x;
        for (x = 0; x < xmax; x++) {
            double w = f->fn((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        for (x = 0; x < ksize; x++)   // normalize_coeffs_8bpc
            kk[xx * ksize + x] = k[x] < 0 ? (int32_t)(-0.5 + k[x] * (1 << PRECISION_BITS))
                                          : (int32_t)(0.5 + k[x] * (1 << PRECISION_BITS));
        bounds[xx * 2 + 0] = xmin;
        bounds[xx * 2 + 1] = xmax;
    }
    free(k);
    *kkp = kk;
    return ksize;
}

// DST (rows, out_w, 3) ← horizontal pass over SRC rows [row0, row0 + rows) of width in_w.
static void pass_horizontal(uint8_t *dst, int out_w, const uint8_t *src, int in_w, int row0, int rows,
                            int ksize, const int *bounds, const int32_t *kk) {
    for (int yy = 0; yy < rows; yy++) {
        const uint8_t *in = src + (size_t)(yy + row0) * (size_t)in_w * 3;
        uint8_t *out = dst + (size_t)yy * (size_t)out_w * 3;
        for (int xx = 0; xx < out_w; xx++) {
            int xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1];
            const int32_t *k = kk + (size_t)xx * ksize;
            int ss0 = 1 << (PRECISION_BITS - 1), ss1 = ss0, ss2 = ss0;
            for (int x = 0; x < xmax; x++) {
                const uint8_t *px = in + (size_t)(x + xmin) * 3;
                ss0 += px[0] * k[x];
                ss1 += px[1] * k[x];
                ss2 += px[2] * k[x];
            }
            out[xx * 3 + 0] = clip8(ss0);
            out[xx * 3 + 1] = clip8(ss1);
            out[xx * 3 + 2] = clip8(ss2);
        }
    }
}

// DST (out_h, w, 3) ← vertical pass over SRC (·, w, 3); bounds index SRC's rows.
static void pass_vertical(uint8_t *dst, int out_h, const uint8_t *src, int w, int ksize, const int *bounds,
                          const int32_t *kk) {
    size_t row = (size_t)w * 3;
    for (int yy = 0; yy < out_h; yy++) {
        int ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1];
        const int32_t *k = kk + (size_t)yy * ksize;
        uint8_t *out = dst + (size_t)yy * row;
        for (size_t i = 0; i < row; i++) {
            int ss = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < ymax; y++) ss += src[(size_t)(y + ymin) * row + i] * k[y];
            out[i] = clip8(ss);
        }
    }
}

// NEAREST: PIL resizes through an affine scale (Geometry.c ImagingScaleAffine) whose source
// coordinate starts at half a step and is accumulated step by step (not multiplied).
static void resize_nearest(const t2_image *in, uint8_t *dst, int w, int h) {
    double a0 = (double)((float)in->w - 0.0f) / w, a4 = (double)((float)in->h - 0.0f) / h;
    int *xin = t2_malloc((size_t)w * sizeof *xin);
    double xo = 0.0 + a0 * 0.5, yo = 0.0 + a4 * 0.5;
    for (int x = 0; x < w; x++) {
        int xi = xo < 0.0 ? -1 : (int)xo;
        xin[x] = (xi >= 0 && xi < in->w) ? xi : -1;
        xo += a0;
    }
    for (int y = 0; y < h; y++) {
        int yi = yo < 0.0 ? -1 : (int)yo;
        uint8_t *out = dst + (size_t)y * (size_t)w * 3;
        memset(out, 0, (size_t)w * 3);
        if (yi >= 0 && yi < in->h) {
            const uint8_t *row = in->rgb + (size_t)yi * (size_t)in->w * 3;
            for (int x = 0; x < w; x++)
                if (xin[x] >= 0) memcpy(out + (size_t)x * 3, row + (size_t)xin[x] * 3, 3);
        }
        yo += a4;
    }
    free(xin);
}

int t2_preproc_resize(const t2_image *in, int w, int h, t2_resample r, t2_image *out) {
    memset(out, 0, sizeof *out);
    if (!in || !in->rgb || in->w < 1 || in->h < 1) return t2_fail("resize: empty input image");
    if (w < 1 || h < 1) return t2_fail("resize: output size %dx%d is empty", w, h);
    if ((int)r < 0 || (int)r > 5) return t2_fail("resize: unknown resample filter %d (PIL's are 0-5)", (int)r);
    if ((long long)w * h > MAX_WORK_PIXELS)
        return t2_fail("resize: %dx%d → %dx%d is larger than %lld pixels", in->w, in->h, w, h, MAX_WORK_PIXELS);
    uint8_t *dst = t2_malloc((size_t)w * (size_t)h * 3);
    if (w == in->w && h == in->h) {   // Image.resize returns a copy
        memcpy(dst, in->rgb, (size_t)w * (size_t)h * 3);
    } else if (r == T2_RESAMPLE_NEAREST) {
        resize_nearest(in, dst, w, h);
    } else {
        const filter *f = &FILTERS[r];
        int need_h = w != in->w, need_v = h != in->h;
        int *bv = t2_malloc((size_t)h * 2 * sizeof *bv);
        int32_t *kv;
        int ksv = precompute_coeffs(in->h, h, f, bv, &kv);
        int first = bv[0], last = bv[h * 2 - 2] + bv[h * 2 - 1];   // input rows the vertical pass reads
        const uint8_t *src = in->rgb;
        uint8_t *tmp = NULL;
        if (need_h) {
            int *bh = t2_malloc((size_t)w * 2 * sizeof *bh);
            int32_t *kh;
            int ksh = precompute_coeffs(in->w, w, f, bh, &kh);
            if (!need_v) first = 0, last = in->h;
            for (int i = 0; i < h; i++) bv[i * 2] -= first;
            tmp = t2_malloc((size_t)w * (size_t)(last - first) * 3);
            pass_horizontal(need_v ? tmp : dst, w, in->rgb, in->w, first, last - first, ksh, bh, kh);
            free(bh);
            free(kh);
            src = tmp;
        }
        if (need_v) pass_vertical(dst, h, src, w, ksv, bv, kv);
        free(tmp);
        free(bv);
        free(kv);
    }
    out->w = w;
    out->h = h;
    out->rgb = dst;
    return 0;
}

// ---- configuration (preprocessor_config.json + config.json) ----------------------------------------

static const int NEXT_PINPOINTS[5][2] = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};

typedef struct {
    const char *pp, *model;   // file names for messages
} names;

// A positive integer-valued JSON number (sizes); 0 if V is something else.
static int json_dim(const cJSON *v) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 1 && d <= 1 << 20) || d != floor(d)) return 0;
    return (int)d;
}

// HF accepts Python truthiness; JSON files carry true/false (occasionally 0/1).
static int json_flag(const cJSON *obj, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    if (cJSON_IsNumber(v)) return v->valuedouble != 0;
    return def;
}

// get_size_dict: V as {shortest_edge} or {height, width}. An int means shortest_edge unless
// SQUARE (crop_size); a 2-list is (height, width). Missing keys stay 0.
static int parse_size(const cJSON *v, int square, int *se, int *h, int *w, const char *file, const char *key) {
    *se = *h = *w = 0;
    if (!v) return t2_fail("%s: %s is missing", file, key);
    if (cJSON_IsNumber(v)) {
        int d = json_dim(v);
        if (!d) return t2_fail("%s: %s must be a positive integer, got %g", file, key, v->valuedouble);
        if (square) *h = *w = d; else *se = d;
        return 0;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2) {
        *h = json_dim(cJSON_GetArrayItem(v, 0));
        *w = json_dim(cJSON_GetArrayItem(v, 1));
        if (!*h || !*w) return t2_fail("%s: %s must be two positive integers", file, key);
        return 0;
    }
    if (!cJSON_IsObject(v)) return t2_fail("%s: %s must be an object, a number or a pair", file, key);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "shortest_edge");
    const cJSON *hh = cJSON_GetObjectItemCaseSensitive(v, "height");
    const cJSON *ww = cJSON_GetObjectItemCaseSensitive(v, "width");
    if (s) {
        *se = json_dim(s);
        if (!*se) return t2_fail("%s: %s.shortest_edge must be a positive integer", file, key);
    }
    if (hh || ww) {
        *h = json_dim(hh);
        *w = json_dim(ww);
        if (!*h || !*w) return t2_fail("%s: %s.height and %s.width must be positive integers", file, key, key);
    }
    if (!*se && !*h) return t2_fail("%s: %s has neither shortest_edge nor height/width", file, key);
    return 0;
}

// image_mean / image_std: 3 numbers (or one, for all channels); D gets the f64 values.
static int parse_rgb(const cJSON *obj, const char *key, const double *def, float *out, double *d, int nonzero,
                     const char *file) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        for (int c = 0; c < 3; c++) out[c] = (float)def[c], d[c] = def[c];
        return 0;
    }
    for (int c = 0; c < 3; c++) {
        const cJSON *e = cJSON_IsNumber(v) ? v : cJSON_IsArray(v) ? cJSON_GetArrayItem(v, c) : NULL;
        if (cJSON_IsArray(v) && cJSON_GetArraySize(v) != 3)
            return t2_fail("%s: %s must have 3 values (RGB), got %d", file, key, cJSON_GetArraySize(v));
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return t2_fail("%s: %s must be 3 finite numbers", file, key);
        if (nonzero && e->valuedouble == 0) return t2_fail("%s: %s[%d] is 0", file, key, c);
        d[c] = e->valuedouble;
        out[c] = (float)e->valuedouble;
    }
    return 0;
}

// image_grid_pinpoints V → P; every pinpoint a multiple of P->tile.
static int parse_pinpoints(t2_preproc *p, const cJSON *v, const char *file) {
    if (cJSON_IsString(v))
        return t2_fail("%s: image_grid_pinpoints is the string \"%s\" (lmms-lab layout); t2 reads the "
                       "llava-hf form, a list of [height, width]", file, v->valuestring);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1)
        return t2_fail("%s: image_grid_pinpoints must be a non-empty list of [height, width]", file);
    int n = cJSON_GetArraySize(v);
    if (n > T2_PREPROC_MAX_PINPOINTS)
        return t2_fail("%s: image_grid_pinpoints has %d entries (at most %d)", file, n, T2_PREPROC_MAX_PINPOINTS);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        int h = cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 ? json_dim(cJSON_GetArrayItem(e, 0)) : 0;
        int w = cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 ? json_dim(cJSON_GetArrayItem(e, 1)) : 0;
        if (!h || !w) return t2_fail("%s: image_grid_pinpoints[%d] is not [height, width]", file, i);
        if (h % p->tile || w % p->tile)
            return t2_fail("%s: image_grid_pinpoints[%d] = [%d, %d] is not a multiple of the %d-pixel tile",
                           file, i, h, w, p->tile);
        p->pinpoints[i][0] = h;
        p->pinpoints[i][1] = w;
    }
    p->n_pinpoints = n;
    return 0;
}

static int same_pinpoints(const cJSON *a, const cJSON *b) {
    if (!cJSON_IsArray(a) || !cJSON_IsArray(b) || cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) return 0;
    for (int i = 0; i < cJSON_GetArraySize(a); i++)
        for (int j = 0; j < 2; j++)
            if (json_dim(cJSON_GetArrayItem(cJSON_GetArrayItem(a, i), j)) !=
                json_dim(cJSON_GetArrayItem(cJSON_GetArrayItem(b, i), j)))
                return 0;
    return 1;
}

// The size a TH×TW image is resized to (get_resize_output_image_size / an exact size).
static void resize_dims(const t2_preproc *p, int th, int tw, int *oh, int *ow) {
    long long h = th, w = tw;
    if (p->do_resize && p->shortest_edge > 0) {   // default_to_square=False: long side truncated
        long long s = p->shortest_edge, sh = tw <= th ? tw : th, lg = tw <= th ? th : tw;
        long long nl = (long long)((double)(s * lg) / (double)sh);
        h = tw <= th ? nl : s;
        w = tw <= th ? s : nl;
    } else if (p->do_resize) {
        h = p->size_h;
        w = p->size_w;
    }
    *oh = h > (1 << 30) ? (1 << 30) : (int)h;
    *ow = w > (1 << 30) ? (1 << 30) : (int)w;
}

// The size a TH×TW tile comes out at after P's per-tile resize and crop.
static void tile_dims(const t2_preproc *p, int th, int tw, int *oh, int *ow) {
    resize_dims(p, th, tw, oh, ow);
    if (p->do_center_crop) *oh = p->crop_h, *ow = p->crop_w;
}

int t2_preproc_from_json(t2_preproc *p, const cJSON *pp, const cJSON *model, const char *name) {
    memset(p, 0, sizeof *p);
    char ppf[1024], mf[1024];
    snprintf(ppf, sizeof ppf, "%s/preprocessor_config.json", name);
    snprintf(mf, sizeof mf, "%s/config.json", name);
    if (!cJSON_IsObject(pp)) return t2_fail("%s: not a JSON object", ppf);
    if (model && !cJSON_IsObject(model)) return t2_fail("%s: not a JSON object", mf);

    const char *type = t2_json_str(pp, "image_processor_type", t2_json_str(pp, "feature_extractor_type", NULL));
    if (!type) return t2_fail("%s: no image_processor_type", ppf);
    char base[128];
    snprintf(base, sizeof base, "%s", type);
    size_t bl = strlen(base);
    if (bl > 4 && strcmp(base + bl - 4, "Fast") == 0) base[bl - 4] = 0;        // read the slow twin
    else if (bl > 3 && strcmp(base + bl - 3, "Pil") == 0) base[bl - 3] = 0;    // transformers v5 names
    if (!strcmp(base, "CLIPImageProcessor") || !strcmp(base, "CLIPFeatureExtractor")) p->kind = T2_PREPROC_CLIP;
    else if (!strcmp(base, "LlavaImageProcessor")) p->kind = T2_PREPROC_LLAVA;
    else if (!strcmp(base, "SiglipImageProcessor")) p->kind = T2_PREPROC_SIGLIP;
    else if (!strcmp(base, "LlavaNextImageProcessor")) p->kind = T2_PREPROC_LLAVA_NEXT;
    else if (!strcmp(base, "LlavaOnevisionImageProcessor")) p->kind = T2_PREPROC_ONEVISION;
    else
        return t2_fail("%s: image_processor_type %s is not supported (CLIP, Llava, Siglip, LlavaNext, "
                       "LlavaOnevision image processors are)", ppf, type);
    int clip_like = p->kind == T2_PREPROC_CLIP || p->kind == T2_PREPROC_LLAVA || p->kind == T2_PREPROC_LLAVA_NEXT;

    // The classes' defaults (__init__) for what the file leaves out; size and crop_size are required.
    p->do_resize = json_flag(pp, "do_resize", 1);
    p->do_center_crop = clip_like ? json_flag(pp, "do_center_crop", 1) : 0;
    p->do_rescale = json_flag(pp, "do_rescale", 1);
    p->do_normalize = json_flag(pp, "do_normalize", 1);
    p->resample = T2_RESAMPLE_BICUBIC;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(pp, "resample");
    if (rs && !cJSON_IsNull(rs)) {
        if (!cJSON_IsNumber(rs) || rs->valuedouble != floor(rs->valuedouble) || rs->valuedouble < 0 ||
            rs->valuedouble > 5) {
            char *txt = cJSON_PrintUnformatted(rs);
            int rc = t2_fail("%s: resample %s is not a PIL filter (0 nearest, 1 lanczos, 2 bilinear, "
                             "3 bicubic, 4 box, 5 hamming)", ppf, txt ? txt : "?");
            free(txt);
            return rc;
        }
        p->resample = (t2_resample)(int)rs->valuedouble;
    }
    p->rescale_factor = 1.0 / 255.0;
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(pp, "rescale_factor");
    if (rf && !cJSON_IsNull(rf)) {
        if (!cJSON_IsNumber(rf) || !(rf->valuedouble > 0) || !isfinite(rf->valuedouble))
            return t2_fail("%s: rescale_factor must be a positive number", ppf);
        p->rescale_factor = rf->valuedouble;
    }
    int siglip_defaults = p->kind == T2_PREPROC_SIGLIP;
    double mean_d[3], std_d[3];
    if (parse_rgb(pp, "image_mean", siglip_defaults ? HALF : CLIP_MEAN, p->mean, mean_d, 0, ppf) ||
        parse_rgb(pp, "image_std", siglip_defaults ? HALF : CLIP_STD, p->std, std_d, 1, ppf))
        return -1;
    for (int c = 0; c < 3; c++) p->pad_rgb[c] = (uint8_t)(int)(mean_d[c] * 255);   // int(x * 255)

    int se, sh, sw;
    if (parse_size(cJSON_GetObjectItemCaseSensitive(pp, "size"), 0, &se, &sh, &sw, ppf, "size")) return -1;
    if (p->kind == T2_PREPROC_SIGLIP && !sh)
        return t2_fail("%s: size must give height and width for SiglipImageProcessor", ppf);
    if (p->kind == T2_PREPROC_ONEVISION) {   // size_tuple: (height, width), else (shortest_edge,)*2
        p->size_h = sh ? sh : se;
        p->size_w = sh ? sw : se;
    } else if (se && p->kind != T2_PREPROC_SIGLIP) {
        p->shortest_edge = se;
    } else {
        p->size_h = sh;
        p->size_w = sw;
    }
    int need_crop = p->do_center_crop || p->kind == T2_PREPROC_LLAVA_NEXT;
    if (need_crop) {
        int cse;
        if (parse_size(cJSON_GetObjectItemCaseSensitive(pp, "crop_size"), 1, &cse, &p->crop_h, &p->crop_w, ppf,
                       "crop_size"))
            return -1;
        if (!p->crop_h) return t2_fail("%s: crop_size must give height and width", ppf);
    }
    if (p->kind == T2_PREPROC_LLAVA) p->do_pad_square = json_flag(pp, "do_pad", 0);

    // Model config: the original LLaVA's image_aspect_ratio, pinpoints, the ViT's input size.
    const char *aspect = model ? t2_json_str(model, "image_aspect_ratio", "") : "";
    const char *vaspect = model ? t2_json_str(model, "vision_aspect_ratio", "") : "";
    const char *mx = !strncmp(vaspect, "anyres_max_", 11) ? vaspect : !strncmp(aspect, "anyres_max_", 11) ? aspect : NULL;
    if (mx) {
        p->anyres_max = atoi(mx + 11);
        if (p->anyres_max < 1) return t2_fail("%s: cannot read N in \"%s\"", mf, mx);
    }
    int anyres_from_model = 0;
    if (p->kind == T2_PREPROC_CLIP || p->kind == T2_PREPROC_LLAVA || p->kind == T2_PREPROC_SIGLIP) {
        if (!strcmp(aspect, "pad")) {
            p->do_pad_square = 1;
        } else if (!strcmp(aspect, "anyres") || !strncmp(aspect, "anyres_max_", 11)) {
            if (p->kind == T2_PREPROC_SIGLIP)
                return t2_fail("%s: image_aspect_ratio %s with a SiglipImageProcessor is not supported", mf, aspect);
            anyres_from_model = 1;
        } else if (*aspect && strcmp(aspect, "square") != 0) {
            return t2_fail("%s: image_aspect_ratio \"%s\" is not one of pad, anyres, square", mf, aspect);
        }
    }
    if (p->kind == T2_PREPROC_LLAVA_NEXT || p->kind == T2_PREPROC_ONEVISION || anyres_from_model) {
        p->anyres = 1;
        if (p->kind == T2_PREPROC_ONEVISION) {
            p->tile = p->size_h;
            p->base_h = p->size_h;
            p->base_w = p->size_w;
        } else {   // NeXT: patch_size = crop_size.height; base (shortest_edge,)*2 or min(h, w) squared
            if (!p->crop_h) return t2_fail("%s: crop_size is missing (it sets the anyres tile)", ppf);
            p->tile = p->crop_h;
            p->base_h = p->base_w = p->shortest_edge ? p->shortest_edge : (sh < sw ? sh : sw);
        }
        const cJSON *pins = cJSON_GetObjectItemCaseSensitive(pp, "image_grid_pinpoints");
        const cJSON *mpins = model ? cJSON_GetObjectItemCaseSensitive(model, "image_grid_pinpoints") : NULL;
        if (pins && mpins && !same_pinpoints(pins, mpins))
            return t2_fail("%s: image_grid_pinpoints differ from %s's (the model would cut the grid differently "
                           "from the processor)", ppf, mf);
        if (pins || mpins) {
            if (parse_pinpoints(p, pins ? pins : mpins, pins ? ppf : mf)) return -1;
        } else if (p->kind == T2_PREPROC_ONEVISION) {   // the class default: 1..6 × 1..6 tiles of 384
            for (int i = 0; i < 36; i++) p->pinpoints[i][0] = 384 * (1 + i / 6), p->pinpoints[i][1] = 384 * (1 + i % 6);
            p->n_pinpoints = 36;
        } else {
            memcpy(p->pinpoints, NEXT_PINPOINTS, sizeof NEXT_PINPOINTS);
            p->n_pinpoints = 5;
        }
        for (int i = 0; i < p->n_pinpoints; i++)
            if (p->pinpoints[i][0] % p->tile || p->pinpoints[i][1] % p->tile)
                return t2_fail("%s: image_grid_pinpoints[%d] is not a multiple of the %d-pixel tile", ppf, i, p->tile);
        const cJSON *vc = model ? cJSON_GetObjectItemCaseSensitive(model, "vision_config") : NULL;
        int vis = json_dim(cJSON_GetObjectItemCaseSensitive(vc, "image_size"));
        if (vis && vis != p->tile)
            return t2_fail("%s: vision_config.image_size %d differs from the processor's %d-pixel anyres tile "
                           "(the model would misread the grid)", mf, vis, p->tile);
        int bh, bw, th, tw;
        tile_dims(p, p->base_h, p->base_w, &bh, &bw);
        tile_dims(p, p->tile, p->tile, &th, &tw);
        if (bh != th || bw != tw)
            return t2_fail("%s: the base image would come out %dx%d but grid tiles %dx%d", ppf, bw, bh, tw, th);
    }
    return 0;
}

int t2_preproc_load(t2_preproc *p, const char *dir) {
    char path[4096];
    if (t2_path_join(path, sizeof path, dir, "preprocessor_config.json")) return -1;
    cJSON *pp = t2_json_load(path);
    if (!pp) {
        if (!t2_file_exists(path)) return t2_fail("%s: missing (the checkpoint has no image processor)", path);
        return -1;
    }
    cJSON *model = NULL;
    if (t2_path_join(path, sizeof path, dir, "config.json")) { cJSON_Delete(pp); return -1; }
    if (t2_file_exists(path) && !(model = t2_json_load(path))) { cJSON_Delete(pp); return -1; }
    int rc = t2_preproc_from_json(p, pp, model, dir);
    cJSON_Delete(pp);
    cJSON_Delete(model);
    return rc;
}

// ---- anyres layout -----------------------------------------------------------------------------

int t2_preproc_layout(const t2_preproc *p, int h, int w, t2_anyres_layout *out) {
    memset(out, 0, sizeof *out);
    if (!p->anyres || p->n_pinpoints < 1 || p->tile < 1) return t2_fail("anyres layout: no grid pinpoints");
    if (h < 1 || w < 1) return t2_fail("anyres layout: empty image %dx%d", w, h);
    // select_best_resolution: most effective pixels, then least waste; the first wins ties.
    long long best_eff = 0, best_waste = -1;
    int best = -1;
    for (int i = 0; i < p->n_pinpoints; i++) {
        int ph = p->pinpoints[i][0], pw = p->pinpoints[i][1];
        double sw = (double)pw / w, sh = (double)ph / h, scale = sh < sw ? sh : sw;
        long long dw = (long long)(w * scale), dh = (long long)(h * scale);
        long long eff = dw * dh < (long long)w * h ? dw * dh : (long long)w * h;
        long long waste = (long long)pw * ph - eff;
        if (eff > best_eff || (eff == best_eff && (best_waste < 0 || waste < best_waste))) {
            best_eff = eff;
            best_waste = waste;
            best = i;
        }
    }
    out->best_h = p->pinpoints[best][0];
    out->best_w = p->pinpoints[best][1];
    // get_patch_output_size: the side that binds fills the pinpoint, the other is ceil'd.
    double scale_w = (double)out->best_w / w, scale_h = (double)out->best_h / h;
    if (scale_w < scale_h) {
        out->fit_w = out->best_w;
        double c = ceil(h * scale_w);
        out->fit_h = c < out->best_h ? (int)c : out->best_h;
    } else {
        out->fit_h = out->best_h;
        double c = ceil(w * scale_h);
        out->fit_w = c < out->best_w ? (int)c : out->best_w;
    }
    out->rows = out->best_h / p->tile;
    out->cols = out->best_w / p->tile;
    return 0;
}

// ---- the pipeline ------------------------------------------------------------------------------

static int floor_div2(int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

// One tile T → DST (3, oh, ow) uint8 planar: resize (unless already that size), then centre crop
// (floor offsets; what falls outside the image is 0, as HF's zero-padded crop).
static int tile_u8(const t2_preproc *p, const t2_image *t, uint8_t *dst, int oh, int ow) {
    t2_image r = *t, tmp = {0};
    if (p->do_resize) {
        int rh, rw;
        resize_dims(p, t->h, t->w, &rh, &rw);
        if (rh != t->h || rw != t->w) {
            if (t2_preproc_resize(t, rw, rh, p->resample, &tmp)) return -1;
            r = tmp;
        }
    }
    int top = p->do_center_crop ? floor_div2(r.h - oh) : 0, left = p->do_center_crop ? floor_div2(r.w - ow) : 0;
    if (!p->do_center_crop && (r.h != oh || r.w != ow)) {
        free(tmp.rgb);
        return t2_fail("preprocess: tile came out %dx%d, expected %dx%d", r.w, r.h, ow, oh);
    }
    size_t plane = (size_t)oh * (size_t)ow;
    for (int y = 0; y < oh; y++) {
        int sy = y + top;
        for (int x = 0; x < ow; x++) {
            int sx = x + left;
            int in = sy >= 0 && sy < r.h && sx >= 0 && sx < r.w;
            const uint8_t *px = in ? r.rgb + ((size_t)sy * (size_t)r.w + (size_t)sx) * 3 : NULL;
            for (int c = 0; c < 3; c++) dst[c * plane + (size_t)y * ow + x] = in ? px[c] : 0;
        }
    }
    free(tmp.rgb);
    return 0;
}

int t2_preprocess(const t2_preproc *p, const t2_image *im, t2_pixels *out) {
    memset(out, 0, sizeof *out);
    if (!im || !im->rgb || im->w < 1 || im->h < 1) return t2_fail("preprocess: empty image");
    t2_image src = *im, padded = {0}, resized = {0}, canvas = {0}, base = {0}, tile = {0};
    int rc = -1;
    if (p->do_pad_square && im->w != im->h) {   // pad_to_square: centred with the mean colour
        int m = im->w > im->h ? im->w : im->h;
        padded = (t2_image){m, m, t2_malloc((size_t)m * (size_t)m * 3)};
        for (size_t i = 0; i < (size_t)m * m; i++) memcpy(padded.rgb + i * 3, p->pad_rgb, 3);
        int oy = (m - im->h) / 2, ox = (m - im->w) / 2;
        for (int y = 0; y < im->h; y++)
            memcpy(padded.rgb + ((size_t)(y + oy) * m + ox) * 3, im->rgb + (size_t)y * im->w * 3, (size_t)im->w * 3);
        src = padded;
    }
    t2_anyres_layout L = {0};
    int n = 1, oh, ow;
    if (p->anyres) {
        if (t2_preproc_layout(p, src.h, src.w, &L)) goto done;
        n = 1 + L.rows * L.cols;
        tile_dims(p, p->base_h, p->base_w, &oh, &ow);
    } else {
        tile_dims(p, src.h, src.w, &oh, &ow);
    }
    if ((long long)oh * ow * n > MAX_WORK_PIXELS) {
        t2_fail("preprocess: %dx%d image would give %d tiles of %dx%d", im->w, im->h, n, ow, oh);
        goto done;
    }
    size_t per = (size_t)3 * oh * ow, total = per * (size_t)n;
    out->data = t2_malloc(total * (sizeof(float) + 1));
    out->u8 = (uint8_t *)(out->data + total);
    out->n_tiles = n;
    out->h = oh;
    out->w = ow;
    out->orig_h = im->h;
    out->orig_w = im->w;
    if (p->anyres) {
        // Resize into the pinpoint keeping aspect, zero-pad centred (divmod), cut tile × tile patches.
        if (t2_preproc_resize(&src, L.fit_w, L.fit_h, p->resample, &resized)) goto done;
        canvas = (t2_image){L.best_w, L.best_h, t2_calloc((size_t)L.best_w * L.best_h, 3)};
        int py = (L.best_h - L.fit_h) / 2, px = (L.best_w - L.fit_w) / 2;
        for (int y = 0; y < L.fit_h; y++)
            memcpy(canvas.rgb + ((size_t)(y + py) * L.best_w + px) * 3, resized.rgb + (size_t)y * L.fit_w * 3,
                   (size_t)L.fit_w * 3);
        if (t2_preproc_resize(&src, p->base_w, p->base_h, p->resample, &base)) goto done;
        if (tile_u8(p, &base, out->u8, oh, ow)) goto done;
        int T = p->tile;
        tile = (t2_image){T, T, t2_malloc((size_t)T * T * 3)};
        for (int i = 0; i < L.rows; i++)
            for (int j = 0; j < L.cols; j++) {
                for (int y = 0; y < T; y++)
                    memcpy(tile.rgb + (size_t)y * T * 3, canvas.rgb + ((size_t)(i * T + y) * L.best_w + j * T) * 3,
                           (size_t)T * 3);
                if (tile_u8(p, &tile, out->u8 + per * (size_t)(1 + i * L.cols + j), oh, ow)) goto done;
            }
        out->grid_rows = L.rows;
        out->grid_cols = L.cols;
        out->best_h = L.best_h;
        out->best_w = L.best_w;
    } else if (tile_u8(p, &src, out->u8, oh, ow)) {
        goto done;
    }
    // rescale (f64 multiply, rounded to f32) then normalize in f32: a 256-entry table per channel.
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = p->do_rescale ? (float)((double)v * p->rescale_factor) : (float)v;
            if (p->do_normalize) x = (x - p->mean[c]) / p->std[c];
            lut[c][v] = x;
        }
    size_t plane = (size_t)oh * ow;
    for (int t = 0; t < n; t++)
        for (int c = 0; c < 3; c++) {
            const uint8_t *u = out->u8 + per * t + plane * c;
            float *f = out->data + per * t + plane * c;
            for (size_t i = 0; i < plane; i++) f[i] = lut[c][u[i]];
        }
    rc = 0;
done:
    free(padded.rgb);
    free(resized.rgb);
    free(canvas.rgb);
    free(base.rgb);
    free(tile.rgb);
    if (rc) {
        t2_error_prefix("preprocessing a %dx%d image: ", im->w, im->h);
        t2_pixels_free(out);
    }
    return rc;
}

void t2_pixels_free(t2_pixels *px) {
    if (!px) return;
    free(px->data);
    memset(px, 0, sizeof *px);
}
