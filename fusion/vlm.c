// vlm.c — loading a checkpoint directory as one model, and fusing images into the language model's
// input: preprocess → ViT → projector → packing → splice at the <image> markers. Semantics follow
// transformers' modeling_llava.py (get_image_features: projector after feature selection),
// modeling_llava_next.py (pack_image_features, unpad_image, get_anyres_image_grid_shape) and
// modeling_llava_onevision.py (pack_image_features with anyres_max_N bilinear downsampling).
// Not here: decoding loops and sampling (cli/, server/), adaptation (svf/, experts/).
#include "fusion/vlm.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIT_MAX_BATCH 4   // tiles per ViT call: bounds the activation block; more are chunked

typedef struct { const void *data; t2_dtype dt; } proj_mat;

struct t2_vlm {
    char dir[2048];
    char kind[32];
    t2_st *st;
    t2_lm_config lmcfg;
    t2_lm *lm;
    t2_tokenizer *tok;
    t2_pool *pool;
    int threads;
    char *chat_template;            // copy of the tokenizer's, for detection
    // vision (NULL / 0 for text checkpoints)
    int has_vision;
    t2_vit_config vcfg;
    t2_vit *vit;
    t2_preproc pp;
    proj_mat w1, w2;                // (H, F) (H, H)
    float *b1, *b2;                 // (H) (H) or NULL
    int proj_act_tanh;              // projector_hidden_act: 0 = gelu (erf), 1 = gelu_pytorch_tanh
    float *newline;                 // (H) image_newline or NULL
    int image_token;
    int anyres_max;                 // OneVision's anyres_max_N, 0 = none
    int onevision;
};

t2_lm *t2_vlm_lm(const t2_vlm *m) { return m->lm; }
const t2_lm_config *t2_vlm_lm_cfg(const t2_vlm *m) { return &m->lmcfg; }
const t2_tokenizer *t2_vlm_tok(const t2_vlm *m) { return m->tok; }
const t2_st *t2_vlm_weights(const t2_vlm *m) { return m->st; }
t2_pool *t2_vlm_pool(const t2_vlm *m) { return m->pool; }
int t2_vlm_threads(const t2_vlm *m) { return m->threads; }
const char *t2_vlm_dir(const t2_vlm *m) { return m->dir; }
int t2_vlm_has_vision(const t2_vlm *m) { return m->has_vision; }
const t2_vit_config *t2_vlm_vit_cfg(const t2_vlm *m) { return m->has_vision ? &m->vcfg : NULL; }
int t2_vlm_image_token(const t2_vlm *m) { return m->has_vision ? m->image_token : -1; }
const char *t2_vlm_kind(const t2_vlm *m) { return m->kind; }

// ---------------------------------------------------------------------------------------------
// Loading

static const t2_st_tensor *find_any(const t2_st *st, const char *name) {
    static const char *prefixes[] = {"", "model."};   // legacy LLaVA names, new transformers names
    char full[256];
    for (int i = 0; i < 2; i++) {
        snprintf(full, sizeof full, "%s%s", prefixes[i], name);
        const t2_st_tensor *t = t2_st_find(st, full);
        if (t) return t;
    }
    return NULL;
}

static int is_float(t2_dtype dt) { return dt == T2_DTYPE_F32 || dt == T2_DTYPE_F16 || dt == T2_DTYPE_BF16; }

// A projector matrix (rows, cols) or vector (rows): shape and dtype checked; vectors copied to f32.
static int bind_proj(const t2_st *st, const char *name, int64_t rows, int64_t cols, proj_mat *m, float **vec,
                     int required) {
    const t2_st_tensor *t = find_any(st, name);
    if (!t) return required ? t2_fail("tensor '%s' (or 'model.%s') not found", name, name) : 0;
    int nd = vec ? 1 : 2;
    if (t->ndim != nd || t->shape[0] != rows || (nd == 2 && t->shape[1] != cols) || !is_float(t->dtype))
        return t2_fail("%s: tensor '%s' has shape/dtype %s [%lld%s%lld]; expected %s [%lld%s%lld]", t->file, t->name,
                       t2_dtype_name(t->dtype), (long long)t->shape[0], t->ndim > 1 ? ", " : "",
                       t->ndim > 1 ? (long long)t->shape[1] : 0LL, "F32/F16/BF16", (long long)rows, nd > 1 ? ", " : "",
                       nd > 1 ? (long long)cols : 0LL);
    if (vec) {
        *vec = t2_malloc(sizeof(float) * (size_t)rows);
        t2_to_f32(*vec, t->data, t->dtype, (size_t)rows);
    } else {
        m->data = t->data;
        m->dt = t->dtype;
    }
    return 0;
}

static int load_vision(t2_vlm *m, const cJSON *cfg) {
    if (t2_vit_config_parse(cfg, &m->vcfg)) return -1;
    m->vit = t2_vit_new(m->st, &m->vcfg, m->pool, VIT_MAX_BATCH);
    if (!m->vit) return -1;
    if (t2_preproc_load(&m->pp, m->dir)) return -1;
    if (m->pp.anyres == 0 && m->pp.n_pinpoints == 0) {
        int want = m->vcfg.image_size;
        int out_h = m->pp.do_center_crop ? m->pp.crop_h : m->pp.size_h;
        int out_w = m->pp.do_center_crop ? m->pp.crop_w : m->pp.size_w;
        if (m->pp.do_center_crop || m->pp.shortest_edge == 0) {
            if (out_h != want || out_w != want)
                return t2_fail("preprocessor_config.json makes %dx%d images but the vision tower takes %dx%d", out_w,
                               out_h, want, want);
        }
    }
    int H = m->lmcfg.hidden_size, F = t2_vit_feat_dim(m->vit);
    if (bind_proj(m->st, "multi_modal_projector.linear_1.weight", H, F, &m->w1, NULL, 1) ||
        bind_proj(m->st, "multi_modal_projector.linear_2.weight", H, H, &m->w2, NULL, 1) ||
        bind_proj(m->st, "multi_modal_projector.linear_1.bias", H, 0, NULL, &m->b1, 0) ||
        bind_proj(m->st, "multi_modal_projector.linear_2.bias", H, 0, NULL, &m->b2, 0) ||
        bind_proj(m->st, "image_newline", H, 0, NULL, &m->newline, 0))
        return -1;
    const char *act = t2_json_str(cfg, "projector_hidden_act", "gelu");
    if (!strcmp(act, "gelu")) m->proj_act_tanh = 0;
    else if (!strcmp(act, "gelu_pytorch_tanh") || !strcmp(act, "gelu_new") || !strcmp(act, "gelu_fast")) m->proj_act_tanh = 1;
    else return t2_fail("projector_hidden_act '%s' is not supported (gelu, gelu_pytorch_tanh)", act);
    int def_tok = m->onevision ? 151646 : 32000;
    m->image_token = (int)t2_json_num(cfg, "image_token_index", t2_json_num(cfg, "image_token_id", def_tok));
    m->anyres_max = m->pp.anyres_max;
    m->has_vision = 1;
    return 0;
}

t2_vlm *t2_vlm_load(const char *dir, int threads, int need_tokenizer) {
    if (!t2_is_dir(dir)) return t2_fail_null("%s: not a directory (expected a Hugging Face checkpoint directory)", dir);
    t2_vlm *m = t2_calloc(1, sizeof *m);
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    char path[4096];
    cJSON *cfg = NULL;
    if (t2_path_join(path, sizeof path, dir, "config.json") || !(cfg = t2_json_load(path))) goto fail;
    const char *mt = t2_json_str(cfg, "model_type", "");
    snprintf(m->kind, sizeof m->kind, "%s", mt);
    if (t2_lm_config_load(dir, &m->lmcfg)) goto fail;
    if (!(m->st = t2_st_open(dir))) goto fail;
    m->threads = threads > 0 ? threads : t2_ncores();
    m->pool = t2_pool_new(m->threads);
    t2_blas_threads(m->threads);
    if (!(m->lm = t2_lm_new(m->st, &m->lmcfg, m->pool))) { t2_error_prefix("%s: ", dir); goto fail; }
    int has_tok = (t2_path_join(path, sizeof path, dir, "tokenizer.json") == 0 && t2_file_exists(path)) ||
                  (t2_path_join(path, sizeof path, dir, "vocab.json") == 0 && t2_file_exists(path));
    if (need_tokenizer || has_tok) {
        if (!(m->tok = t2_tok_load(dir))) goto fail;
    }
    m->onevision = !strcmp(mt, "llava_onevision");
    int is_llava = !strcmp(mt, "llava") || !strcmp(mt, "llava_next") || m->onevision;
    if (is_llava || cJSON_GetObjectItemCaseSensitive(cfg, "vision_config")) {
        if (load_vision(m, cfg)) { t2_error_prefix("%s: ", dir); goto fail; }
    }
    cJSON_Delete(cfg);
    return m;
fail:
    cJSON_Delete(cfg);
    t2_vlm_free(m);
    return NULL;
}

void t2_vlm_free(t2_vlm *m) {
    if (!m) return;
    t2_vit_free(m->vit);
    free(m->b1); free(m->b2); free(m->newline);
    t2_tok_free(m->tok);
    t2_lm_free(m->lm);
    t2_st_close(m->st);
    t2_pool_free(m->pool);
    free(m);
}

int t2_vlm_chat_kind(const t2_vlm *m, const char *name, t2_chat_kind *kind) {
    if (name) {
        int k = t2_chat_parse_name(name);
        if (k < 0) return t2_fail("unknown chat template '%s' (vicuna, llama2, llama3, chatml, mistral, none)", name);
        *kind = (t2_chat_kind)k;
        return 0;
    }
    const char *jinja = m->tok ? t2_tok_chat_template(m->tok) : NULL;
    *kind = t2_chat_detect(jinja, T2_CHAT_NONE);
    if (*kind == T2_CHAT_NONE)
        return t2_fail("%s: %s; name one (vicuna, llama2, llama3, chatml, mistral)", m->dir,
                       jinja ? "its chat_template is not one t2 recognises" : "no chat_template in tokenizer_config.json");
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Images → rows

static float gelu(float x, int tanh_form) {
    if (tanh_form) return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
}

// torch.nn.functional.interpolate(mode="bilinear", align_corners=False) of a (C, h, w) map stored
// as rows (h*w, C) to (oh, ow).
static void bilinear(const float *in, int h, int w, int C, float *out, int oh, int ow) {
    float sy = (float)h / oh, sx = (float)w / ow;
    for (int y = 0; y < oh; y++) {
        float fy = ((float)y + 0.5f) * sy - 0.5f;
        if (fy < 0) fy = 0;
        int y0 = (int)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
        float ly = fy - (float)y0;
        for (int x = 0; x < ow; x++) {
            float fx = ((float)x + 0.5f) * sx - 0.5f;
            if (fx < 0) fx = 0;
            int x0 = (int)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            float lx = fx - (float)x0;
            const float *a = in + ((size_t)y0 * w + x0) * C, *b = in + ((size_t)y0 * w + x1) * C;
            const float *c = in + ((size_t)y1 * w + x0) * C, *d = in + ((size_t)y1 * w + x1) * C;
            float *o = out + ((size_t)y * ow + x) * C;
            for (int k = 0; k < C; k++)
                o[k] = (1 - ly) * ((1 - lx) * a[k] + lx * b[k]) + ly * ((1 - lx) * c[k] + lx * d[k]);
        }
    }
}

// LLaVA-NeXT / OneVision packing of projected tile features TF(n_tiles, T, H) for an image of
// (orig_h, orig_w) on a rows×cols grid: base tile first, then the grid unpadded to the original
// aspect (unpad_image), downsampled for anyres_max_N, with image_newline after each row.
static float *pack_anyres(const t2_vlm *m, const float *tf, int T, int rows, int cols, int orig_h, int orig_w, int *n_out) {
    int H = m->lmcfg.hidden_size, side = m->vcfg.grid;
    if (side * side != T) { t2_fail("anyres packing needs a square token grid: %d tokens per tile", T); return NULL; }
    int ch = rows * side, cw = cols * side;
    // unpad_image: keep the rows / columns the original aspect fills (HF rounds to 7 decimals).
    int y0 = 0, y1 = ch, x0 = 0, x1 = cw;
    double orig_aspect = (double)orig_w / orig_h, cur_aspect = (double)cw / ch;
    if (orig_aspect > cur_aspect) {
        double scale = (double)cw / orig_w;
        int new_h = (int)(round(orig_h * scale * 1e7) / 1e7);
        int pad = (ch - new_h) / 2;
        y0 = pad; y1 = ch - pad;
    } else {
        double scale = (double)ch / orig_h;
        int new_w = (int)(round(orig_w * scale * 1e7) / 1e7);
        int pad = (cw - new_w) / 2;
        x0 = pad; x1 = cw - pad;
    }
    int uh = y1 - y0, uw = x1 - x0;
    float *grid = t2_malloc(sizeof(float) * (size_t)uh * uw * H);   // (uh, uw, H)
    for (int y = 0; y < uh; y++)
        for (int x = 0; x < uw; x++) {
            int gy = y + y0, gx = x + x0;
            int tile = 1 + (gy / side) * cols + gx / side, tok = (gy % side) * side + gx % side;
            memcpy(grid + ((size_t)y * uw + x) * H, tf + ((size_t)tile * T + tok) * H, sizeof(float) * H);
        }
    if (m->anyres_max > 0) {
        double ratio = sqrt((double)uh * uw / ((double)m->anyres_max * side * side));
        if (ratio > 1.1) {
            int oh = (int)floor(uh / ratio), ow = (int)floor(uw / ratio);
            float *small = t2_malloc(sizeof(float) * (size_t)oh * ow * H);
            bilinear(grid, uh, uw, H, small, oh, ow);
            free(grid);
            grid = small;
            uh = oh;
            uw = ow;
        }
    }
    int nl = m->newline ? 1 : 0;
    int n = T + uh * (uw + nl);
    float *out = t2_malloc(sizeof(float) * (size_t)n * H);
    memcpy(out, tf, sizeof(float) * (size_t)T * H);   // the base tile
    float *o = out + (size_t)T * H;
    for (int y = 0; y < uh; y++) {
        memcpy(o, grid + (size_t)y * uw * H, sizeof(float) * (size_t)uw * H);
        o += (size_t)uw * H;
        if (nl) { memcpy(o, m->newline, sizeof(float) * H); o += H; }
    }
    free(grid);
    *n_out = n;
    return out;
}

int t2_vlm_tile_tokens(const t2_vlm *m) { return m->has_vision ? t2_vit_tokens(m->vit) : 0; }

int t2_vlm_encode_tiles(t2_vlm *m, const float *pixels, int n, float *out) {
    if (!m->has_vision) return t2_fail("%s is a text-only checkpoint: it cannot take images", m->dir);
    int T = t2_vit_tokens(m->vit), F = t2_vit_feat_dim(m->vit), H = m->lmcfg.hidden_size;
    size_t rows = (size_t)n * T;
    float *feat = t2_malloc(sizeof(float) * rows * F);
    float *hid = t2_malloc(sizeof(float) * rows * H);
    size_t sk = t2_matmul_scratch_floats(F > H ? F : H);
    float *scratch = t2_malloc(sizeof(float) * (sk ? sk : 1));
    int rc = t2_vit_features(m->vit, pixels, n, feat);
    if (rc == 0) {
        // multi_modal_projector: linear_1 → GELU → linear_2
        t2_matmul(m->pool, hid, feat, m->w1.data, m->w1.dt, m->b1, (int)rows, H, F, scratch);
        for (size_t i = 0; i < rows * H; i++) hid[i] = gelu(hid[i], m->proj_act_tanh);
        t2_matmul(m->pool, out, hid, m->w2.data, m->w2.dt, m->b2, (int)rows, H, H, scratch);
    }
    free(scratch);
    free(hid);
    free(feat);
    return rc;
}

// The rows of one image from its projected tiles PROJ(n_tiles, T, H) (consumed: freed or returned).
static int rows_from_tiles(const t2_vlm *m, const t2_pixels *px, float *proj, t2_image_rows *out) {
    int n = px->n_tiles, T = t2_vit_tokens(m->vit), H = m->lmcfg.hidden_size;
    size_t rows = (size_t)n * T;
    if (n > 1 && px->grid_rows > 0) {
        out->rows = pack_anyres(m, proj, T, px->grid_rows, px->grid_cols, px->orig_h, px->orig_w, &out->n);
        free(proj);
        return out->rows ? 0 : -1;
    }
    if (m->newline && (m->pp.anyres || m->onevision)) {
        // a single-tile anyres image: its features then one image_newline (HF's else branch)
        float *r = realloc(proj, sizeof(float) * (rows + 1) * H);
        memcpy(r + rows * H, m->newline, sizeof(float) * H);
        out->rows = r;
        out->n = (int)rows + 1;
        return 0;
    }
    out->rows = proj;
    out->n = (int)rows;
    return 0;
}

int t2_vlm_encode_images(t2_vlm *m, const t2_image *ims, int n, t2_image_rows *out) {
    memset(out, 0, sizeof *out * (size_t)(n > 0 ? n : 0));
    if (n <= 0) return 0;
    if (!m->has_vision) return t2_fail("%s is a text-only checkpoint: it cannot take images", m->dir);
    t2_pixels *px = t2_calloc((size_t)n, sizeof *px);
    int S = m->vcfg.image_size, T = t2_vit_tokens(m->vit), H = m->lmcfg.hidden_size, rc = 0, tiles = 0;
    for (int k = 0; k < n && rc == 0; k++) {
        if (t2_preprocess(&m->pp, &ims[k], &px[k])) rc = -1;
        else if (px[k].h != S || px[k].w != S)
            rc = t2_fail("the preprocessor made %dx%d tiles but the vision tower takes %dx%d", px[k].w, px[k].h, S, S);
        if (rc) { if (n > 1) t2_error_prefix("image %d: ", k + 1); }
        else tiles += px[k].n_tiles;
    }
    float *all = NULL, *proj = NULL;
    if (rc == 0) {   // every tile in one block, through the tower and projector together
        size_t tile = (size_t)3 * S * S;
        all = t2_malloc(sizeof(float) * tile * tiles);
        for (int k = 0, t = 0; k < n; t += px[k].n_tiles, k++)
            memcpy(all + (size_t)t * tile, px[k].data, sizeof(float) * tile * px[k].n_tiles);
        proj = t2_malloc(sizeof(float) * (size_t)tiles * T * H);
        rc = t2_vlm_encode_tiles(m, all, tiles, proj);
    }
    for (int k = 0, t = 0; k < n && rc == 0; t += px[k].n_tiles, k++) {
        size_t sz = sizeof(float) * (size_t)px[k].n_tiles * T * H;
        float *mine = t2_malloc(sz + sizeof(float) * H);   // room for a newline row
        memcpy(mine, proj + (size_t)t * T * H, sz);
        rc = rows_from_tiles(m, &px[k], mine, &out[k]);
    }
    if (rc) for (int k = 0; k < n; k++) { free(out[k].rows); out[k].rows = NULL; out[k].n = 0; }
    for (int k = 0; k < n; k++) t2_pixels_free(&px[k]);
    free(px);
    free(all);
    free(proj);
    return rc;
}

int t2_vlm_encode_image(t2_vlm *m, const t2_image *im, float **out, int *n_tokens) {
    t2_image_rows r;
    int rc = t2_vlm_encode_images(m, im, 1, &r);
    *out = r.rows;
    *n_tokens = r.n;
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Prompts

// Builds P from SEGS: a list of (token run | image k) pieces.
typedef struct { const int32_t *ids; int n; int image; } piece;

static int assemble(t2_vlm *m, const piece *pc, int npc, const t2_image_rows *images, int n_images, t2_prompt *p) {
    memset(p, 0, sizeof *p);
    int H = m->lmcfg.hidden_size;
    // A run of image-token ids (from t2_vlm_prompt_ids) must be one placeholder or the image's rows.
    for (int i = 0; i < npc; i++)
        if (pc[i].image >= 0 && pc[i].n > 1 && pc[i].n != images[pc[i].image].n)
            return t2_fail("image %d: a run of %d image tokens matches neither one placeholder nor the image's %d "
                           "feature rows", pc[i].image + 1, pc[i].n, images[pc[i].image].n);
    int total = 0;
    for (int i = 0; i < npc; i++) total += pc[i].image >= 0 ? images[pc[i].image].n : pc[i].n;
    p->n = total;
    p->n_images = n_images;
    size_t bytes = sizeof(int32_t) * total + total + 64;
    size_t emb_off = (bytes + 63) & ~(size_t)63;
    if (n_images) bytes = emb_off + sizeof(float) * (size_t)total * H;
    char *block = t2_aligned_alloc(bytes);
    p->ids = (int32_t *)block;
    p->is_embed = (uint8_t *)(block + sizeof(int32_t) * total);
    p->embeds = n_images ? (float *)(block + emb_off) : NULL;
    int t = 0, img_tok = m->image_token >= 0 && m->image_token < m->lmcfg.vocab_size ? m->image_token : 0;
    for (int i = 0; i < npc; i++) {
        if (pc[i].image >= 0) {
            const t2_image_rows *r = &images[pc[i].image];
            memcpy(p->embeds + (size_t)t * H, r->rows, sizeof(float) * (size_t)r->n * H);
            for (int j = 0; j < r->n; j++, t++) { p->ids[t] = img_tok; p->is_embed[t] = 1; }
            p->n_image_tokens += r->n;
        } else {
            for (int j = 0; j < pc[i].n; j++, t++) { p->ids[t] = pc[i].ids[j]; p->is_embed[t] = 0; }
        }
    }
    return 0;
}

void t2_prompt_free(t2_prompt *p) {
    if (p && p->ids) free(p->ids);
    if (p) memset(p, 0, sizeof *p);
}

int t2_vlm_prompt_ids(t2_vlm *m, const int32_t *ids, int n_ids, const t2_image_rows *images, int n, t2_prompt *p) {
    memset(p, 0, sizeof *p);
    if (n > 0 && !m->has_vision) return t2_fail("%s is a text-only checkpoint: it cannot take images", m->dir);
    piece *pc = t2_malloc(sizeof(piece) * (size_t)(2 * n_ids + 1));
    int npc = 0, k = 0, rc = 0;
    for (int i = 0; i < n_ids && rc == 0;) {
        if (m->has_vision && ids[i] == m->image_token) {
            int r = 1;
            while (i + r < n_ids && ids[i + r] == m->image_token) r++;
            if (k >= n) { rc = t2_fail("the prompt has more image tokens (id %d) than the %d image(s) given", m->image_token, n); break; }
            // A run as long as the image's feature count is filled as is (HF processors expand the
            // placeholder themselves); a lone id is expanded. The encode below checks the length.
            pc[npc++] = (piece){NULL, r, -(k + 2)};   // resolved once the image's row count is known
            k++;
            i += r;
        } else {
            int j = i;
            while (j < n_ids && !(m->has_vision && ids[j] == m->image_token)) j++;
            pc[npc++] = (piece){ids + i, j - i, -1};
            i = j;
        }
    }
    if (rc == 0 && k != n) rc = t2_fail("%d image(s) given but the prompt has %d image placeholder(s) (id %d)", n, k, m->image_token);
    if (rc == 0) {
        for (int i = 0; i < npc; i++) if (pc[i].image <= -2) pc[i].image = -pc[i].image - 2;
        rc = assemble(m, pc, npc, images, n, p);
    }
    free(pc);
    return rc;
}

int t2_vlm_prompt_text(t2_vlm *m, const char *text, int add_special, const t2_image_rows *images, int n,
                       t2_prompt *p) {
    memset(p, 0, sizeof *p);
    if (!m->tok) return t2_fail("%s has no tokenizer (tokenizer.json or vocab.json): give token ids instead", m->dir);
    if (n > 0 && !m->has_vision) return t2_fail("%s is a text-only checkpoint: it cannot take images", m->dir);
    const char *marker = "<image>";
    size_t ml = strlen(marker), len = strlen(text);
    int markers = 0;
    for (const char *s = text; (s = strstr(s, marker)); s += ml) markers++;
    if (markers != n)
        return t2_fail("%d image(s) given but the prompt has %d \"<image>\" marker(s)", n, markers);
    // Each text segment between markers is encoded on its own (the tokenizers split on added tokens
    // such as LLaVA's "<image>" before BPE, so this matches encoding the whole text).
    int cap = (int)len + 16;
    int32_t *ids = t2_malloc(sizeof(int32_t) * cap);
    piece *pc = t2_malloc(sizeof(piece) * (size_t)(2 * n + 1));
    int npc = 0, used = 0, rc = 0;
    const char *s = text;
    char *seg = t2_malloc(len + 1);
    for (int k = 0; k <= n && rc == 0; k++) {
        const char *e = k < n ? strstr(s, marker) : text + len;
        size_t sl = (size_t)(e - s);
        memcpy(seg, s, sl);
        seg[sl] = 0;
        int got = t2_tok_encode(m->tok, seg, add_special && k == 0, 1, ids + used, cap - used);
        if (got < 0) { rc = -1; break; }
        if (got > cap - used) { rc = t2_fail("internal: prompt encodes to more ids than bytes"); break; }
        if (got > 0) pc[npc++] = (piece){ids + used, got, -1};
        used += got;
        if (k < n) pc[npc++] = (piece){NULL, 0, k};
        s = e + ml;
    }
    free(seg);
    if (rc == 0) rc = assemble(m, pc, npc, images, n, p);
    free(pc);
    free(ids);
    return rc;
}
