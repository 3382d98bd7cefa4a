// draw.c — the world's raster: a square RGB canvas, antialiased shapes (4×4 supersampled coverage,
// blended in integers so every machine makes the same bytes) and TrueType text through stb_truetype
// with DejaVu Sans Bold. Not here: what to draw (world.c).
#include "world/world_int.h"
#include "core/error.h"
#include "core/util.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STB_TRUETYPE_IMPLEMENTATION
#define STBTT_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_truetype.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define WD_FONT_DEFAULT "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

// ---------------------------------------------------------------------------------------------
// Shapes

void wd_fill(wd_canvas *c, wd_col col) {
    if (c->it) c->it->n_glyphs = 0;
    for (int i = 0; i < c->s * c->s; i++) {
        c->p[3 * i] = col.r;
        c->p[3 * i + 1] = col.g;
        c->p[3 * i + 2] = col.b;
    }
}

static uint8_t clamp8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

void wd_background(wd_canvas *c, wd_col top, wd_col bottom, int noise, t2_rng *r) {
    if (c->it) c->it->n_glyphs = 0;
    int s = c->s;
    for (int y = 0; y < s; y++) {
        int t = s > 1 ? y * 256 / (s - 1) : 0;
        int cr = (top.r * (256 - t) + bottom.r * t) >> 8, cg = (top.g * (256 - t) + bottom.g * t) >> 8,
            cb = (top.b * (256 - t) + bottom.b * t) >> 8;
        for (int x = 0; x < s; x++) {
            int n = noise > 0 ? (int)t2_rng_below(r, (uint64_t)(2 * noise + 1)) - noise : 0;
            uint8_t *p = c->p + 3 * (y * s + x);
            p[0] = clamp8(cr + n);
            p[1] = clamp8(cg + n);
            p[2] = clamp8(cb + n);
        }
    }
}

static void blend(wd_canvas *c, int x, int y, int cov, wd_col col) {   // cov in 0..16
    uint8_t *p = c->p + 3 * (y * c->s + x);
    p[0] = (uint8_t)((col.r * cov + p[0] * (16 - cov) + 8) >> 4);
    p[1] = (uint8_t)((col.g * cov + p[1] * (16 - cov) + 8) >> 4);
    p[2] = (uint8_t)((col.b * cov + p[2] * (16 - cov) + 8) >> 4);
}

typedef int (*inside_fn)(const float *sh, float x, float y);

// Fill the shape SH over the pixel box [x0, x1) × [y0, y1) (clipped) by 4×4 subsamples.
static void cover(wd_canvas *c, float fx0, float fy0, float fx1, float fy1, inside_fn in, const float *sh, wd_col col) {
    int x0 = (int)floorf(fx0) - 1, y0 = (int)floorf(fy0) - 1, x1 = (int)ceilf(fx1) + 1, y1 = (int)ceilf(fy1) + 1;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > c->s) x1 = c->s;
    if (y1 > c->s) y1 = c->s;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            float fx = (float)x, fy = (float)y;   // convex shapes: 4 corners inside → fully covered
            int cov = 16;
            if (!(in(sh, fx, fy) && in(sh, fx + 1, fy) && in(sh, fx, fy + 1) && in(sh, fx + 1, fy + 1))) {
                cov = 0;
                for (int j = 0; j < 4; j++)
                    for (int i = 0; i < 4; i++) cov += in(sh, fx + 0.125f + 0.25f * (float)i, fy + 0.125f + 0.25f * (float)j);
            }
            if (cov) blend(c, x, y, cov, col);
        }
}

static int in_circle(const float *sh, float x, float y) {
    float dx = x - sh[0], dy = y - sh[1];
    return dx * dx + dy * dy <= sh[2] * sh[2];
}

void wd_circle(wd_canvas *c, float cx, float cy, float rad, wd_col col) {
    float sh[3] = {cx, cy, rad};
    cover(c, cx - rad, cy - rad, cx + rad, cy + rad, in_circle, sh, col);
}

static int in_rrect(const float *sh, float x, float y) {
    float x0 = sh[0], y0 = sh[1], x1 = sh[2], y1 = sh[3], r = sh[4];
    if (x < x0 || x > x1 || y < y0 || y > y1) return 0;
    float cx = x < x0 + r ? x0 + r : x > x1 - r ? x1 - r : x;
    float cy = y < y0 + r ? y0 + r : y > y1 - r ? y1 - r : y;
    float dx = x - cx, dy = y - cy;
    return dx * dx + dy * dy <= r * r;
}

void wd_rrect(wd_canvas *c, float x0, float y0, float x1, float y1, float rad, wd_col col) {
    float m = 0.5f * fminf(x1 - x0, y1 - y0);
    float sh[5] = {x0, y0, x1, y1, rad < 0 ? 0 : rad > m ? m : rad};
    cover(c, x0, y0, x1, y1, in_rrect, sh, col);
}

static int in_poly(const float *sh, float x, float y) {
    int n = (int)sh[0], pos = 0, neg = 0;
    const float *p = sh + 1;
    for (int i = 0; i < n; i++) {
        const float *a = p + 2 * i, *b = p + 2 * ((i + 1) % n);
        float e = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
        if (e > 0) pos = 1;
        if (e < 0) neg = 1;
    }
    return !(pos && neg);
}

void wd_poly(wd_canvas *c, const float *xy, int n, wd_col col) {
    float sh[17];
    sh[0] = (float)n;
    float x0 = xy[0], x1 = xy[0], y0 = xy[1], y1 = xy[1];
    for (int i = 0; i < n && i < 8; i++) {
        sh[1 + 2 * i] = xy[2 * i];
        sh[2 + 2 * i] = xy[2 * i + 1];
        x0 = fminf(x0, xy[2 * i]), x1 = fmaxf(x1, xy[2 * i]);
        y0 = fminf(y0, xy[2 * i + 1]), y1 = fmaxf(y1, xy[2 * i + 1]);
    }
    cover(c, x0, y0, x1, y1, in_poly, sh, col);
}

static int in_line(const float *sh, float x, float y) {
    float ax = sh[0], ay = sh[1], bx = sh[2], by = sh[3], hw = sh[4];
    float dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
    float t = l2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / l2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    float px = ax + t * dx - x, py = ay + t * dy - y;
    return px * px + py * py <= hw * hw;
}

void wd_line(wd_canvas *c, float x0, float y0, float x1, float y1, float hw, wd_col col) {
    float sh[5] = {x0, y0, x1, y1, hw};
    cover(c, fminf(x0, x1) - hw, fminf(y0, y1) - hw, fmaxf(x0, x1) + hw, fmaxf(y0, y1) + hw, in_line, sh, col);
}

// ---------------------------------------------------------------------------------------------
// Text

static pthread_once_t font_once = PTHREAD_ONCE_INIT;
static stbtt_fontinfo font;
static unsigned char *font_data;
static float font_cap_units;       // cap height of the font in font units ('H')
static char font_err[512];

static void font_load(void) {
    const char *path = getenv("T2_WORLD_FONT");
    if (!path || !*path) path = WD_FONT_DEFAULT;
    size_t n;
    font_data = (unsigned char *)t2_read_file(path, &n);
    if (!font_data) {
        snprintf(font_err, sizeof font_err,
                 "world: cannot read the font %s (install the Debian package fonts-dejavu-core, or set "
                 "T2_WORLD_FONT)", path);
        return;
    }
    if (!stbtt_InitFont(&font, font_data, stbtt_GetFontOffsetForIndex(font_data, 0))) {
        snprintf(font_err, sizeof font_err, "world: %s is not a TrueType font stb_truetype can read", path);
        free(font_data);
        font_data = NULL;
        return;
    }
    int x0, y0, x1, y1;
    stbtt_GetCodepointBox(&font, 'H', &x0, &y0, &x1, &y1);
    font_cap_units = (float)y1;
}

int wd_font_init(void) {
    pthread_once(&font_once, font_load);
    if (!font_data) return t2_fail("%s", font_err);
    return 0;
}

// Walk TEXT's glyphs: pen positions in pixels (integer part + subpixel shift) for a pen at x = 0.
typedef void (*glyph_fn)(void *ctx, int cp, float scale, int ix, float shift);

static void walk(const char *text, float cap, glyph_fn fn, void *ctx) {
    float scale = cap / font_cap_units, pen = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        int ix = (int)floorf(pen);
        fn(ctx, *p, scale, ix, pen - (float)ix);
        int adv, lsb;
        stbtt_GetCodepointHMetrics(&font, *p, &adv, &lsb);
        pen += scale * (float)adv;
        if (p[1]) pen += scale * (float)stbtt_GetCodepointKernAdvance(&font, *p, p[1]);
    }
}

static void box_glyph(void *ctx, int cp, float scale, int ix, float shift) {
    int *b = ctx, x0, y0, x1, y1;
    stbtt_GetCodepointBitmapBoxSubpixel(&font, cp, scale, scale, shift, 0, &x0, &y0, &x1, &y1);
    if (x1 <= x0 || y1 <= y0) return;   // space
    if (b[0] > b[2]) b[0] = ix + x0, b[1] = y0, b[2] = ix + x1, b[3] = y1;
    else {
        if (ix + x0 < b[0]) b[0] = ix + x0;
        if (y0 < b[1]) b[1] = y0;
        if (ix + x1 > b[2]) b[2] = ix + x1;
        if (y1 > b[3]) b[3] = y1;
    }
}

void wd_text_box(const char *text, float cap, int box[4]) {
    box[0] = 1, box[1] = 0, box[2] = 0, box[3] = 0;   // empty marker: x0 > x1
    if (wd_font_init()) { box[0] = box[1] = box[2] = box[3] = 0; return; }
    walk(text, cap, box_glyph, box);
    if (box[0] > box[2]) box[0] = box[1] = box[2] = box[3] = 0;
}

typedef struct { wd_canvas *c; int x, y; wd_col col; } draw_ctx;

static void draw_glyph(void *ctx, int cp, float scale, int ix, float shift) {
    draw_ctx *d = ctx;
    int x0, y0, x1, y1;
    stbtt_GetCodepointBitmapBoxSubpixel(&font, cp, scale, scale, shift, 0, &x0, &y0, &x1, &y1);
    int w = x1 - x0, h = y1 - y0;
    if (w <= 0 || h <= 0) return;
    unsigned char stackbuf[64 * 64], *buf = w * h <= 64 * 64 ? stackbuf : malloc((size_t)w * h);
    if (!buf) return;
    memset(buf, 0, (size_t)w * h);
    stbtt_MakeCodepointBitmapSubpixel(&font, buf, w, h, w, scale, scale, shift, 0, cp);
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            int a = buf[j * w + i];
            if (!a) continue;
            int px = d->x + ix + x0 + i, py = d->y + y0 + j;
            if (px < 0 || py < 0 || px >= d->c->s || py >= d->c->s) continue;
            uint8_t *p = d->c->p + 3 * (py * d->c->s + px);
            p[0] = (uint8_t)((d->col.r * a + p[0] * (255 - a) + 127) / 255);
            p[1] = (uint8_t)((d->col.g * a + p[1] * (255 - a) + 127) / 255);
            p[2] = (uint8_t)((d->col.b * a + p[2] * (255 - a) + 127) / 255);
        }
    if (buf != stackbuf) free(buf);
    t2_world_item *it = d->c->it;
    if (it && it->n_glyphs < T2_WORLD_MAX_GLYPHS) {
        int gx0 = d->x + ix + x0, gy0 = d->y + y0, s = d->c->s;
        t2_world_glyph *gl = &it->glyphs[it->n_glyphs++];
        gl->ch = (char)cp;
        gl->x0 = (int16_t)(gx0 < 0 ? 0 : gx0), gl->y0 = (int16_t)(gy0 < 0 ? 0 : gy0);
        gl->x1 = (int16_t)(gx0 + w > s ? s : gx0 + w), gl->y1 = (int16_t)(gy0 + h > s ? s : gy0 + h);
    }
}

int wd_text(wd_canvas *c, const char *text, int x, int baseline, float cap, wd_col col) {
    if (wd_font_init()) return -1;
    int b[4];
    wd_text_box(text, cap, b);
    if (x + b[0] < 0 || baseline + b[1] < 0 || x + b[2] > c->s || baseline + b[3] > c->s) return -1;
    draw_ctx d = {c, x, baseline, col};
    walk(text, cap, draw_glyph, &d);
    return 0;
}

int wd_text_centered(wd_canvas *c, const char *text, float cx, float cy, float cap, wd_col col) {
    int b[4];
    wd_text_box(text, cap, b);
    int x = (int)lroundf(cx - 0.5f * (float)(b[0] + b[2])), y = (int)lroundf(cy - 0.5f * (float)(b[1] + b[3]));
    return wd_text(c, text, x, y, cap, col);
}
