// world.c — the procedural visual world's families: what each item shows and asks (docs/world.md
// lists every template), the per-item seeding that makes an item a pure function of (family,
// split, index, opts), and the JSONL + PNG writer that `t2 eval` reads. Not here: pixels and
// glyphs (draw.c), the word lists and facts (facts.c), tokenizing or training (train/).
#include "world/world.h"
#include "world/world_int.h"
#include "core/error.h"
#include "core/util.h"
#include "vision/image.h"
#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const family_names[T2_WORLD_COUNT] = {
    "textvqa", "scene", "math", "code", "reasoning", "dispatch", "signsum", "math_hard", "code_hard", "know", "caption", "facts"};
static const char *const split_names[3] = {"train", "valid", "test"};

t2_world_opts t2_world_defaults(void) { return (t2_world_opts){.image_size = 96, .difficulty = 1.0f}; }

int t2_world_family_parse(const char *name) {
    for (int i = 0; name && i < T2_WORLD_COUNT; i++)
        if (!strcmp(name, family_names[i])) return i;
    return -1;
}
const char *t2_world_family_name(int f) { return f >= 0 && f < T2_WORLD_COUNT ? family_names[f] : "?"; }
int t2_world_family_held_out(int f) { return f >= T2_WORLD_SIGNSUM && f <= T2_WORLD_KNOW; }
int t2_world_family_has_images(int f) {
    return f == T2_WORLD_TEXTVQA || f == T2_WORLD_SCENE || f == T2_WORLD_SIGNSUM || f == T2_WORLD_KNOW ||
           f == T2_WORLD_CAPTION;
}
const char *t2_world_family_metric(int f) {
    if (t2_world_family_has_images(f)) return "vqa";
    return f == T2_WORLD_REASONING ? "mc" : "exact";
}
int t2_world_split_parse(const char *name) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, split_names[i])) return i;
    return -1;
}
const char *t2_world_split_name(int s) { return s >= 0 && s < 3 ? split_names[s] : "?"; }

// ---------------------------------------------------------------------------------------------
// Generator state and small helpers

typedef struct {
    t2_rng r;
    float d;        // difficulty 0..1
    int S;          // image side
    float f;        // S / 96: every length below is written for a 96-pixel image
    int split;
    const t2_world_opts *o;
    char desc[192]; // what the image shows, as the caption family says it (textvqa images)
} gen;

static int ri(gen *g, int lo, int hi) { return lo + (int)t2_rng_below(&g->r, (uint64_t)(hi - lo + 1)); }  // [lo, hi]
static float rf(gen *g, float lo, float hi) { return lo + (hi - lo) * t2_rng_uniform(&g->r); }
static int chance(gen *g, float p) { return t2_rng_uniform(&g->r) < p; }
#define PICK(g, arr) ((arr)[t2_rng_below(&(g)->r, sizeof(arr) / sizeof((arr)[0]))])

static void setf(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void setf(char *dst, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    T2_ASSERT(n >= 0 && (size_t)n < cap);
}
#define Q(...) setf(it->question, sizeof it->question, __VA_ARGS__)
#define A(...) setf(it->answer, sizeof it->answer, __VA_ARGS__)

static uint64_t mix64(uint64_t z) {   // splitmix64's finaliser
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
// One base seed per split, so test items are never train items.
static const uint64_t split_seed[3] = {0x7432776f726c6401ull, 0x7432776f726c6402ull, 0x7432776f726c6403ull};

// Colours
static const wd_col BLACK = {20, 20, 20}, WHITE = {250, 250, 245};
typedef struct { wd_col bg, fg; } pair;
// Panel / text pairs with strong contrast; the first four are the difficulty-0 set.
static const pair panels[] = {
    {{250, 250, 245}, {20, 20, 20}}, {{30, 70, 170}, {250, 250, 245}}, {{245, 205, 30}, {20, 20, 20}},
    {{25, 110, 50}, {250, 250, 245}}, {{200, 30, 30}, {250, 250, 245}}, {{25, 25, 25}, {250, 250, 245}},
    {{110, 65, 30}, {250, 250, 245}}, {{110, 40, 140}, {250, 250, 245}}, {{245, 140, 30}, {20, 20, 20}},
    {{160, 210, 245}, {20, 30, 90}}, {{215, 215, 210}, {140, 20, 20}}, {{250, 235, 200}, {30, 60, 140}},
};
static pair pick_panel(gen *g) {
    int n = 4 + (int)lroundf(g->d * (float)(sizeof panels / sizeof panels[0] - 4));
    return panels[ri(g, 0, n - 1)];
}

// ---------------------------------------------------------------------------------------------
// Backgrounds and clutter

static void backdrop(gen *g, wd_canvas *c) {
    static const wd_col tops[][2] = {
        {{170, 205, 235}, {215, 230, 245}},   // sky
        {{225, 215, 195}, {200, 190, 170}},   // wall
        {{200, 200, 200}, {160, 160, 160}},   // concrete
        {{190, 215, 170}, {140, 180, 120}},   // garden
        {{235, 225, 235}, {210, 200, 215}},   // pale lilac
        {{120, 110, 100}, {90, 85, 80}},      // dark wall
    };
    int k = ri(g, 0, g->d < 0.3f ? 3 : 5);
    wd_background(c, tops[k][0], tops[k][1], (int)lroundf(6.0f * g->d * t2_rng_uniform(&g->r)), &g->r);
    if (chance(g, 0.5f)) {   // ground strip
        float y = g->S * rf(g, 0.75f, 0.9f);
        wd_rrect(c, 0, y, (float)g->S, (float)g->S, 0, (wd_col){(uint8_t)ri(g, 90, 150), (uint8_t)ri(g, 90, 140), (uint8_t)ri(g, 80, 120)});
    }
    int n = (int)lroundf(g->d * (float)ri(g, 0, 5));   // clutter: muted shapes and lines
    for (int i = 0; i < n; i++) {
        wd_col col = {(uint8_t)ri(g, 70, 200), (uint8_t)ri(g, 70, 200), (uint8_t)ri(g, 70, 200)};
        float x = rf(g, 0, (float)g->S), y = rf(g, 0, (float)g->S), s = g->f * rf(g, 3, 14);
        switch (ri(g, 0, 2)) {
        case 0: wd_circle(c, x, y, s, col); break;
        case 1: wd_rrect(c, x - s, y - s * 0.6f, x + s, y + s * 0.6f, g->f * 2, col); break;
        default: wd_line(c, x, y, x + rf(g, -30, 30) * g->f, y + rf(g, -30, 30) * g->f, g->f * rf(g, 0.6f, 1.5f), col); break;
        }
    }
}

// Cap height in pixels: 16..20 at difficulty 0, 9..16 at difficulty 1 (96-pixel image).
static float pick_cap(gen *g) { return g->f * rf(g, 16.0f - 7.0f * g->d, 20.0f - 4.0f * g->d); }

// Word / case choice: short words at difficulty 0, any length at 1; upper / title case with
// probability 0.3·d each (the answer stays lower case).
static const char *pick_word(gen *g) {
    int maxlen = 4 + (int)lroundf(3.0f * g->d);
    for (;;) {
        const char *w = wd_words[t2_rng_below(&g->r, (uint64_t)wd_n_words)];
        if ((int)strlen(w) <= maxlen) return w;
    }
}
static void styled(gen *g, const char *word, char *out, size_t cap) {
    snprintf(out, cap, "%s", word);
    float u = t2_rng_uniform(&g->r);
    if (u < 0.3f * g->d) for (char *p = out; *p; p++) *p = (char)toupper((unsigned char)*p);
    else if (u < 0.6f * g->d) out[0] = (char)toupper((unsigned char)out[0]);
}

// Fit a text of cap CAP with padding (px, py) into at most MAXW × MAXH: shrinks CAP; returns the
// panel size in W, H and the final cap.
static float fit_text(gen *g, const char *text, float cap, float padx, float pady, float maxw, float maxh, float *w, float *h) {
    for (;;) {
        int b[4];
        wd_text_box(text, cap, b);
        *w = (float)(b[2] - b[0]) + 2 * padx;
        *h = (float)(b[3] - b[1]) + 2 * pady;
        if ((*w <= maxw && *h <= maxh) || cap < 6.0f * g->f) return cap;
        cap *= 0.92f;
    }
}

// A centre coordinate for a panel of extent E in [m, S-m]: near the middle at difficulty 0.
static float place(gen *g, float e, float m) {
    float lo = m + e / 2, hi = (float)g->S - m - e / 2;
    if (hi < lo) return (float)g->S / 2;
    float mid = (float)g->S / 2, x = rf(g, lo, hi);
    float k = 0.3f + 0.7f * g->d;
    return mid + (x - mid) * k;
}

// A sign: post, border, panel, text centred at (cx, cy). Returns -1 if the text would not fit.
static int draw_sign(gen *g, wd_canvas *c, const char *text, float cap, float cx, float cy, float w, float h, pair p, int post) {
    float bw = g->f * 1.5f;
    if (post) wd_rrect(c, cx - 2 * g->f, cy, cx + 2 * g->f, (float)g->S, 0, (wd_col){120, 120, 125});
    wd_col border = p.bg.r + p.bg.g + p.bg.b > 450 ? (wd_col){60, 60, 60} : WHITE;
    wd_rrect(c, cx - w / 2 - bw, cy - h / 2 - bw, cx + w / 2 + bw, cy + h / 2 + bw, g->f * 3, border);
    wd_rrect(c, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, g->f * 2, p.bg);
    return wd_text_centered(c, text, cx, cy, cap, p.fg);
}

// ---------------------------------------------------------------------------------------------
// textvqa: one object with text — sign, label, door, price tag, number plate

static int fam_textvqa(gen *g, t2_world_item *it, wd_canvas *c) {
    backdrop(g, c);
    float S = (float)g->S, f = g->f, cap = pick_cap(g), w, h;
    char text[64];
    int kind = ri(g, 0, 4);
    if (kind == 0) {                                           // sign
        const char *word = pick_word(g);
        styled(g, word, text, sizeof text);
        pair p = pick_panel(g);
        cap = fit_text(g, text, cap, f * rf(g, 3, 6), f * rf(g, 3, 6), S - 8 * f, S * 0.6f, &w, &h);
        float cx = place(g, w, 5 * f), cy = place(g, h, 5 * f);
        if (draw_sign(g, c, text, cap, cx, cy, w, h, p, chance(g, 0.6f))) return -1;
        static const char *qs[] = {"What does the sign say?", "What word is on the sign?", "What is written on the sign?"};
        Q("%s", PICK(g, qs));
        A("%s", word);
        setf(g->desc, sizeof g->desc, "a sign that says %s", word);
    } else if (kind == 1) {                                    // label on a jar / box / bottle
        const char *word = pick_word(g);
        styled(g, word, text, sizeof text);
        static const wd_col bodies[] = {{70, 130, 180}, {150, 90, 50}, {60, 140, 80}, {180, 50, 50}, {220, 180, 60}, {120, 120, 130}};
        static const wd_col inks[] = {{20, 20, 20}, {20, 40, 120}, {140, 20, 20}};
        wd_col body = PICK(g, bodies), ink = PICK(g, inks);
        wd_col paper = chance(g, 0.5f) ? (wd_col){250, 250, 245} : (wd_col){245, 235, 205};
        cap = fit_text(g, text, cap, f * 3, f * 3, S - 20 * f, S * 0.45f, &w, &h);
        float bw = w + 2 * f * rf(g, 4, 8), bh = h + f * rf(g, 20, 34);
        if (bw > S - 4 * f) bw = S - 4 * f;
        if (bh > S - 12 * f) bh = S - 12 * f;
        float cx = place(g, bw, 2 * f), by1 = fminf(S - 2 * f, S / 2 + bh / 2 + rf(g, -8, 8) * f * g->d);
        float by0 = by1 - bh;
        wd_rrect(c, cx - bw / 2 + 4 * f, by0 - 7 * f, cx + bw / 2 - 4 * f, by0 + 2 * f, f * 2, (wd_col){90, 90, 95});  // lid
        wd_rrect(c, cx - bw / 2, by0, cx + bw / 2, by1, f * 5, body);
        float cy = (by0 + by1) / 2;
        wd_rrect(c, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, f, paper);
        if (wd_text_centered(c, text, cx, cy, cap, ink)) return -1;
        static const char *qs[] = {"What word is on the label?", "What does the label say?", "What is written on the label?"};
        Q("%s", PICK(g, qs));
        A("%s", word);
        setf(g->desc, sizeof g->desc, "a jar with a label that says %s", word);
    } else if (kind == 2) {                                    // door with a number
        int num = ri(g, 0, 99);
        snprintf(text, sizeof text, "%d", num);
        static const wd_col doors[] = {{120, 75, 40}, {40, 90, 60}, {40, 60, 120}, {160, 40, 40}, {90, 100, 110}, {200, 190, 170}};
        wd_col door = PICK(g, doors);
        float dw = S * rf(g, 0.42f, 0.55f), dh = S * rf(g, 0.78f, 0.9f);
        float cx = place(g, dw, 3 * f), y0 = S - dh;
        wd_rrect(c, cx - dw / 2 - 2 * f, y0 - 2 * f, cx + dw / 2 + 2 * f, S, 0, (wd_col){235, 235, 230});   // frame
        wd_rrect(c, cx - dw / 2, y0, cx + dw / 2, S, 0, door);
        wd_rrect(c, cx - dw / 2 + 4 * f, y0 + dh * 0.45f, cx + dw / 2 - 4 * f, y0 + dh * 0.8f, f, (wd_col){(uint8_t)(door.r * 3 / 4), (uint8_t)(door.g * 3 / 4), (uint8_t)(door.b * 3 / 4)});
        wd_circle(c, cx + dw / 2 - 6 * f, y0 + dh * 0.55f, 2.5f * f, (wd_col){220, 190, 60});
        float pcap = cap * 1.1f;
        pcap = fit_text(g, text, pcap, f * 3, f * 3, dw - 6 * f, dh * 0.35f, &w, &h);
        float cy = y0 + 4 * f + h / 2 + rf(g, 0, 6) * f * g->d;
        wd_col ink = door.r + door.g + door.b > 450 ? BLACK : WHITE;
        if (chance(g, 0.6f)) {                                 // a plate on the door
            wd_rrect(c, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 2 * f, chance(g, 0.5f) ? WHITE : (wd_col){230, 200, 90});
            ink = BLACK;
        }
        if (wd_text_centered(c, text, cx, cy, pcap, ink)) return -1;
        static const char *qs[] = {"What number is on the door?", "What is the door number?"};
        Q("%s", PICK(g, qs));
        A("%d", num);
        setf(g->desc, sizeof g->desc, "a door with the number %d", num);
    } else if (kind == 3) {                                    // price tag "$12"
        int price = ri(g, 1, 99);
        snprintf(text, sizeof text, "$%d", price);
        static const wd_col tags[] = {{250, 250, 245}, {250, 225, 90}, {255, 190, 120}, {200, 235, 190}};
        wd_col tag = PICK(g, tags), ink = chance(g, 0.7f) ? BLACK : (wd_col){180, 20, 20};
        cap = fit_text(g, text, cap, f * 3, f * 3, S - 22 * f, S * 0.5f, &w, &h);
        float point = h * 0.5f + 2 * f, tw = w + point;
        float cx = place(g, tw + 6 * f, 3 * f), cy = place(g, h, 10 * f);
        float x0 = cx - tw / 2, x1 = cx + tw / 2, y0 = cy - h / 2, y1 = cy + h / 2;
        wd_line(c, x0 + point * 0.6f, cy, x0 - rf(g, 2, 10) * f, f * rf(g, 0, 4), f * 0.6f, (wd_col){90, 80, 70});
        float outline[10] = {x0 - f, cy, x0 + point - f * 0.5f, y0 - f, x1 + f, y0 - f, x1 + f, y1 + f, x0 + point - f * 0.5f, y1 + f};
        wd_poly(c, outline, 5, (wd_col){110, 100, 90});
        float poly[10] = {x0, cy, x0 + point, y0, x1, y0, x1, y1, x0 + point, y1};
        wd_poly(c, poly, 5, tag);
        wd_circle(c, x0 + point * 0.6f, cy, f * 1.5f, (wd_col){110, 100, 90});
        if (wd_text_centered(c, text, x0 + point + w / 2, cy, cap, ink)) return -1;
        static const char *qs[] = {"What is the price?", "How much does it cost?", "What price is on the tag?"};
        Q("%s", PICK(g, qs));
        A("%d", price);
        setf(g->desc, sizeof g->desc, "a price tag of %d", price);
    } else {                                                   // number plate "AB12"
        char code[8];
        code[0] = (char)('a' + ri(g, 0, 25));
        code[1] = (char)('a' + ri(g, 0, 25));
        snprintf(code + 2, sizeof code - 2, "%02d", ri(g, 0, 99));
        for (int i = 0; code[i]; i++) text[i] = (char)toupper((unsigned char)code[i]);
        text[4] = 0;
        static const wd_col cars[] = {{180, 30, 30}, {30, 60, 150}, {40, 40, 45}, {200, 200, 205}, {40, 120, 60}};
        wd_col car = PICK(g, cars);
        wd_col plate = chance(g, 0.6f) ? WHITE : (wd_col){245, 210, 40};
        cap = fit_text(g, text, cap, f * 3, f * 2.5f, S - 14 * f, S * 0.4f, &w, &h);
        float cx = place(g, w + 12 * f, 2 * f), cy = place(g, h, 14 * f);
        wd_rrect(c, cx - w / 2 - rf(g, 8, 20) * f, cy - h / 2 - rf(g, 10, 20) * f, cx + w / 2 + rf(g, 8, 20) * f, cy + h / 2 + rf(g, 6, 12) * f, 6 * f, car);
        wd_rrect(c, cx - w / 2 - 1.5f * f, cy - h / 2 - 1.5f * f, cx + w / 2 + 1.5f * f, cy + h / 2 + 1.5f * f, 2 * f, BLACK);
        wd_rrect(c, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 1.5f * f, plate);
        if (wd_text_centered(c, text, cx, cy, cap, BLACK)) return -1;
        static const char *qs[] = {"What is on the plate?", "What does the plate say?", "What is the number plate?"};
        Q("%s", PICK(g, qs));
        A("%s", code);
        setf(g->desc, sizeof g->desc, "a car with the number plate %s", code);
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// scene: 1–6 non-overlapping shapes (circle, square, triangle) × 6 colours, small or large

static const char *const shape_names[3] = {"circle", "square", "triangle"};
static const char *const color_names[6] = {"red", "green", "blue", "yellow", "purple", "orange"};
static const wd_col scene_cols[6] = {{220, 40, 40}, {40, 160, 60}, {40, 80, 220}, {240, 205, 30}, {140, 60, 180}, {245, 135, 25}};

typedef struct { int shape, color, big; float x, y, r; } obj;

static void draw_obj(wd_canvas *c, const obj *o) {
    wd_col col = scene_cols[o->color];
    if (o->shape == 0) wd_circle(c, o->x, o->y, o->r, col);
    else if (o->shape == 1) {
        float h = o->r * 0.85f;
        wd_rrect(c, o->x - h, o->y - h, o->x + h, o->y + h, 0, col);
    } else {
        float r = o->r;
        float p[6] = {o->x, o->y - r, o->x + r * 0.95f, o->y + r * 0.75f, o->x - r * 0.95f, o->y + r * 0.75f};
        wd_poly(c, p, 3, col);
    }
}

// A random object spec (shape, colour, big 35 %), drawn in that order: the draws are sequenced here
// because a compound literal's initialisers are evaluated in an unspecified order.
static obj random_obj(gen *g) {
    obj o = {0};
    o.shape = ri(g, 0, 2);
    o.color = ri(g, 0, 5);
    o.big = chance(g, 0.35f);
    return o;
}

// Place N objects (specs already set: shape, color, big) without overlap; -1 if no room.
static int place_objs(gen *g, obj *ob, int n) {
    for (int i = 0; i < n; i++) {
        ob[i].r = g->f * (ob[i].big ? rf(g, 13, 16) : rf(g, 6, 8));
        int ok = 0;
        for (int t = 0; t < 200 && !ok; t++) {
            float m = ob[i].r + 2 * g->f;
            ob[i].x = rf(g, m, (float)g->S - m);
            ob[i].y = rf(g, m, (float)g->S - m);
            ok = 1;
            for (int j = 0; j < i && ok; j++) {
                float dx = ob[i].x - ob[j].x, dy = ob[i].y - ob[j].y, dd = ob[i].r + ob[j].r + 3 * g->f;
                if (dx * dx + dy * dy < dd * dd) ok = 0;
            }
        }
        if (!ok) return -1;
    }
    return 0;
}

static void scene_backdrop(gen *g, wd_canvas *c) {
    int v = ri(g, 215, 250);
    wd_col top = {(uint8_t)v, (uint8_t)(v - ri(g, 0, 10)), (uint8_t)(v - ri(g, 0, 20))};
    wd_background(c, top, top, (int)lroundf(5.0f * g->d * t2_rng_uniform(&g->r)), &g->r);
}

static int count_match(const obj *ob, int n, int shape, int color, int big) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if ((shape < 0 || ob[i].shape == shape) && (color < 0 || ob[i].color == color) && (big < 0 || ob[i].big == big)) k++;
    return k;
}

static int fam_scene(gen *g, t2_world_item *it, wd_canvas *c) {
    int qt = ri(g, 0, 5);
    int maxn = 3 + (int)lroundf(3.0f * g->d);
    for (int attempt = 0; attempt < 100; attempt++) {
        obj ob[6];
        int n = ri(g, 1, maxn);
        for (int i = 0; i < n; i++) ob[i] = random_obj(g);
        int ts = ri(g, 0, 2), tc = ri(g, 0, 5);
        if (qt == 0) {                       // count colour+shape: 0..3 targets, balanced
            int k = ri(g, 0, 3);
            // Objects added to reach K targets are small (their shape and colour are set below). They
            // were left uninitialised until 2026-11-29, so their size was whatever the stack held.
            for (; n < k; n++) ob[n] = (obj){0, 0, 0, 0, 0, 0};
            for (int i = 0; i < n; i++) {
                if (i < k) ob[i].shape = ts, ob[i].color = tc;
                else while (ob[i].shape == ts && ob[i].color == tc) ob[i].shape = ri(g, 0, 2), ob[i].color = ri(g, 0, 5);
            }
        }
        if (place_objs(g, ob, n)) continue;
        // validate the question on this scene
        char q[256], a[32];
        if (qt == 0) {
            snprintf(q, sizeof q, "How many %s %ss are there?", color_names[tc], shape_names[ts]);
            snprintf(a, sizeof a, "%d", count_match(ob, n, ts, tc, -1));
        } else if (qt == 1) {
            static const char *qs[] = {"How many shapes are there?", "How many objects are there?"};
            snprintf(q, sizeof q, "%s", PICK(g, qs));
            snprintf(a, sizeof a, "%d", n);
        } else if (qt == 2) {                // colour of the unique shape
            int s = ob[ri(g, 0, n - 1)].shape;
            if (count_match(ob, n, s, -1, -1) != 1) continue;
            int i = 0;
            while (ob[i].shape != s) i++;
            snprintf(q, sizeof q, "What color is the %s?", shape_names[s]);
            snprintf(a, sizeof a, "%s", color_names[ob[i].color]);
        } else if (qt == 3 || qt == 4) {     // the big object (exactly one big, at least one small)
            if (count_match(ob, n, -1, -1, 1) != 1 || n < 2) continue;
            int i = 0;
            while (!ob[i].big) i++;
            if (qt == 3) {
                static const char *qs[] = {"What shape is the big object?", "What shape is the large object?"};
                snprintf(q, sizeof q, "%s", PICK(g, qs));
                snprintf(a, sizeof a, "%s", shape_names[ob[i].shape]);
            } else {
                static const char *qs[] = {"What color is the big shape?", "What color is the large shape?"};
                snprintf(q, sizeof q, "%s", PICK(g, qs));
                snprintf(a, sizeof a, "%s", color_names[ob[i].color]);
            }
        } else {                             // left of: two uniquely described objects
            if (n < 2) continue;
            int i = ri(g, 0, n - 1), j = ri(g, 0, n - 1);
            if (i == j || count_match(ob, n, ob[i].shape, ob[i].color, -1) != 1 ||
                count_match(ob, n, ob[j].shape, ob[j].color, -1) != 1 || fabsf(ob[i].x - ob[j].x) < 8 * g->f)
                continue;
            snprintf(q, sizeof q, "Is the %s %s left of the %s %s?", color_names[ob[i].color], shape_names[ob[i].shape],
                     color_names[ob[j].color], shape_names[ob[j].shape]);
            snprintf(a, sizeof a, "%s", ob[i].x < ob[j].x ? "yes" : "no");
        }
        scene_backdrop(g, c);
        for (int i = 0; i < n; i++) draw_obj(c, &ob[i]);
        Q("%s", q);
        A("%s", a);
        return 0;
    }
    return t2_fail("world: scene item %s: no valid scene after 100 attempts", it->id);
}

// ---------------------------------------------------------------------------------------------
// caption (trained on, never tested: the role of LLaVA's captioning stage). "Describe the image." over
// a scene or a textvqa image, answered with everything the image shows, so that every answer token
// depends on the image (a QA item carries one such token, and often the prior guesses it).
// Scenes: each group of equal objects (size, colour, shape) with its count, left to right by the
// group's leftmost member: "2 red circles, 1 big blue square". Half the scenes draw their objects
// from 1–3 kinds, so that counts above 1 are common. textvqa images: what it is and what it says.

static int fam_caption(gen *g, t2_world_item *it, wd_canvas *c) {
    static const char *qs[] = {"Describe the image.", "What is in the image?", "What do you see in the image?"};
    if (chance(g, 0.4f)) {
        if (fam_textvqa(g, it, c)) return -1;
        Q("%s", PICK(g, qs));
        A("%s", g->desc);
        return 0;
    }
    int maxn = 3 + (int)lroundf(3.0f * g->d);
    for (int attempt = 0; attempt < 100; attempt++) {
        obj ob[6], kind[3];
        int n = ri(g, 1, maxn), kinds = chance(g, 0.5f) ? ri(g, 1, 3) : 0;
        for (int k = 0; k < kinds; k++) kind[k] = random_obj(g);
        for (int i = 0; i < n; i++) ob[i] = kinds ? kind[ri(g, 0, kinds - 1)] : random_obj(g);
        if (place_objs(g, ob, n)) continue;
        scene_backdrop(g, c);
        for (int i = 0; i < n; i++) draw_obj(c, &ob[i]);
        char a[sizeof it->answer];
        size_t len = 0;
        int done[6] = {0};
        for (;;) {
            int i = -1;
            for (int j = 0; j < n; j++)
                if (!done[j] && (i < 0 || ob[j].x < ob[i].x)) i = j;
            if (i < 0) break;
            int k = 0;
            for (int j = 0; j < n; j++)
                if (ob[j].shape == ob[i].shape && ob[j].color == ob[i].color && ob[j].big == ob[i].big) done[j] = 1, k++;
            len += (size_t)snprintf(a + len, sizeof a - len, "%s%d %s%s %s%s", len ? ", " : "", k, ob[i].big ? "big " : "",
                                    color_names[ob[i].color], shape_names[ob[i].shape], k > 1 ? "s" : "");
        }
        Q("%s", PICK(g, qs));
        A("%s", a);
        return 0;
    }
    return t2_fail("world: caption item %s: no valid scene after 100 attempts", it->id);
}

// ---------------------------------------------------------------------------------------------
// math / math_hard: one- and two-step word problems with integer answers

static const char *const names_f[] = {"anna", "carla", "emma", "grace", "ivy", "kate", "mia", "olive", "rosa", "tara", "lucy", "nora"};
static const char *const names_m[] = {"ben", "dev", "finn", "hugo", "jack", "leo", "noah", "paul", "sam", "will", "omar", "tom"};
static const char *const things[] = {"apples", "pears", "books", "pens", "cards", "coins", "eggs", "cups", "balls", "shells",
                                     "stamps", "rocks", "cookies", "flowers", "stickers", "marbles", "toys", "candles", "keys", "beads"};
static const char *const holders[] = {"bags", "boxes", "baskets", "jars", "plates", "packs"};

typedef struct { char n1[16], n2[16], he[8], He[8]; const char *thing, *holder; } cast;

static void pick_cast(gen *g, cast *k) {
    int fem = chance(g, 0.5f);
    const char *a = fem ? PICK(g, names_f) : PICK(g, names_m);
    const char *b;
    do b = chance(g, 0.5f) ? PICK(g, names_f) : PICK(g, names_m); while (b == a);
    snprintf(k->n1, sizeof k->n1, "%c%s", toupper((unsigned char)a[0]), a + 1);
    snprintf(k->n2, sizeof k->n2, "%c%s", toupper((unsigned char)b[0]), b + 1);
    snprintf(k->he, sizeof k->he, "%s", fem ? "she" : "he");
    snprintf(k->He, sizeof k->He, "%s", fem ? "She" : "He");
    k->thing = PICK(g, things);
    k->holder = PICK(g, holders);
}

static int fam_math(gen *g, t2_world_item *it) {
    cast k;
    pick_cast(g, &k);
    const char *N = k.n1, *M = k.n2, *P = k.He, *o = k.thing;
    int op = ri(g, 0, 2), t = ri(g, 0, 3), a, b, ans;
    if (op == 0) {
        a = ri(g, 1, 20), b = ri(g, 1, 20), ans = a + b;
        if (t == 0) Q("%s has %d %s. %s gets %d more. How many %s does %s have now?", N, a, o, P, b, o, N);
        else if (t == 1) Q("%s has %d %s and %s has %d %s. How many %s do they have in total?", N, a, o, M, b, o, o);
        else if (t == 2) Q("There are %d %s on the table. %s puts %d more on it. How many %s are on the table now?", a, o, N, b, o);
        else Q("%s found %d %s in the morning and %d in the afternoon. How many %s did %s find?", N, a, o, b, o, N);
    } else if (op == 1) {
        a = ri(g, 1, 20), b = ri(g, 0, a), ans = a - b;
        if (t == 0) Q("%s has %d %s. %s gives %d to %s. How many %s does %s have left?", N, a, o, P, b, M, o, N);
        else if (t == 1) Q("There are %d %s in a box. %s takes out %d. How many %s are left in the box?", a, o, N, b, o);
        else if (t == 2) Q("%s had %d %s and lost %d. How many %s does %s have now?", N, a, o, b, o, N);
        else Q("%s has %d %s. %s has %d fewer. How many %s does %s have?", N, a, o, M, b, o, M);
    } else {
        a = ri(g, 2, 10), b = ri(g, 2, 10), ans = a * b;
        if (t == 0) Q("%s has %d %s with %d %s in each. How many %s does %s have?", N, a, k.holder, b, o, o, N);
        else if (t == 1) Q("There are %d rows of %s with %d in each row. How many %s are there?", a, o, b, o);
        else if (t == 2) Q("%s buys %d %s of %s. Each one has %d %s. How many %s does %s buy?", N, a, k.holder, o, b, o, o, N);
        else Q("Each of %d children has %d %s. How many %s do they have together?", a, b, o, o);
    }
    A("%d", ans);
    return 0;
}

static int fam_math_hard(gen *g, t2_world_item *it) {
    cast k;
    pick_cast(g, &k);
    const char *N = k.n1, *M = k.n2, *P = k.He, *o = k.thing;
    int t = ri(g, 0, 4), a, b, c, ans;
    if (t == 0) {
        a = ri(g, 1, 20), b = ri(g, 1, 20), c = ri(g, 0, a + b), ans = a + b - c;
        Q("%s has %d %s. %s buys %d more and then gives %d to %s. How many %s does %s have now?", N, a, o, P, b, c, M, o, N);
    } else if (t == 1) {
        a = ri(g, 2, 9), b = ri(g, 2, 9), c = ri(g, 1, a * b), ans = a * b - c;
        Q("%s buys %d %s with %d %s in each and gives away %d %s. How many %s does %s have left?", N, a, k.holder, b, o, c, o, o, N);
    } else if (t == 2) {
        a = ri(g, 1, 20), b = ri(g, 1, 20), ans = a + (a + b);
        Q("%s has %d %s. %s has %d more %s than %s. How many %s do they have together?", N, a, o, M, b, o, N, o);
    } else if (t == 3) {
        a = ri(g, 2, 9), b = ri(g, 2, 9), c = ri(g, 1, 20), ans = a * b + c;
        Q("There are %d rows of %s with %d in each row. %s adds %d more. How many %s are there now?", a, o, b, N, c, o);
    } else {
        c = ri(g, 2, 5), ans = ri(g, 2, 9), b = ri(g, 1, 15), a = c * ans + b;
        Q("%s has %d %s. %s gives %d to %s and shares the rest equally among %d %s. How many %s are in each of the %s?",
          N, a, o, P, b, M, c, k.holder, o, k.holder);
    }
    A("%d", ans);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// code / code_hard: what does this Python-like program print?

static const char *const var_pool[] = {"a", "b", "c", "x", "y", "z", "n", "m", "k", "total", "count", "score"};

static void pick_vars(gen *g, const char **v, int n) {
    for (int i = 0; i < n; i++) {
        int dup;
        do {
            v[i] = PICK(g, var_pool);
            dup = 0;
            for (int j = 0; j < i; j++) dup |= v[j] == v[i];
        } while (dup);
    }
}

// A binary operation on small numbers: sets *op and returns the result.
static int binop(gen *g, int x, int y, char *op) {
    int k = ri(g, 0, 2);
    *op = "+-*"[k];
    return k == 0 ? x + y : k == 1 ? x - y : x * y;
}

static int fam_code(gen *g, t2_world_item *it) {
    const char *v[3];
    pick_vars(g, v, 3);
    char prog[512];
    int ans, t = ri(g, 0, 3);
    char op;
    if (t == 0) {                                        // x = a; y = b; print(x op y)
        int a = ri(g, 0, 20), b = ri(g, 0, 20);
        ans = binop(g, a, b, &op);
        if (op == '*') a = ri(g, 0, 9), b = ri(g, 0, 9), ans = a * b;
        snprintf(prog, sizeof prog, "%s = %d\n%s = %d\nprint(%s %c %s)", v[0], a, v[1], b, v[0], op, v[1]);
    } else if (t == 1) {                                 // x = a; x = x op b; print(x)
        int a = ri(g, 0, 20), b = ri(g, 1, 9);
        ans = binop(g, a, b, &op);
        snprintf(prog, sizeof prog, "%s = %d\n%s = %s %c %d\nprint(%s)", v[0], a, v[0], v[0], op, b, v[0]);
    } else if (t == 2) {                                 // a = p; b = a op q; c = b op2 a; print(c)
        int a = ri(g, 1, 9), b = ri(g, 1, 9);
        char op2;
        int y = binop(g, a, b, &op);
        int z = binop(g, y, a, &op2);
        if (op2 == '*' && (y > 20 || y < -20)) op2 = '+', z = y + a;
        ans = z;
        snprintf(prog, sizeof prog, "%s = %d\n%s = %s %c %d\n%s = %s %c %s\nprint(%s)", v[0], a, v[1], v[0], op, b, v[2],
                 v[1], op2, v[0], v[2]);
    } else {                                             // x = a; if x > k: x = x op b; print(x)
        int a = ri(g, 0, 20), lim = ri(g, 0, 20), b = ri(g, 1, 9);
        const char *cmp = chance(g, 0.5f) ? ">" : "<";
        int taken = cmp[0] == '>' ? a > lim : a < lim;
        int y = binop(g, a, b, &op);
        ans = taken ? y : a;
        snprintf(prog, sizeof prog, "%s = %d\nif %s %s %d:\n    %s = %s %c %d\nprint(%s)", v[0], a, v[0], cmp, lim, v[0], v[0],
                 op, b, v[0]);
    }
    Q("What does this program print?\n%s", prog);
    A("%d", ans);
    return 0;
}

static int fam_code_hard(gen *g, t2_world_item *it) {
    const char *v[3];
    pick_vars(g, v, 3);
    const char *i = chance(g, 0.7f) ? "i" : "j";
    char prog[768];
    int ans, t = ri(g, 0, 5);
    if (t == 0) {                                        // repeated addition from a start value
        int s = ri(g, 0, 10), n = ri(g, 2, 6), k = ri(g, 1, 9);
        ans = s + n * k;
        snprintf(prog, sizeof prog, "%s = %d\nfor %s in range(%d):\n    %s = %s + %d\nprint(%s)", v[0], s, i, n, v[0], v[0], k, v[0]);
    } else if (t == 1) {                                 // sum of the loop variable
        int n = ri(g, 2, 8);
        ans = n * (n - 1) / 2;
        snprintf(prog, sizeof prog, "%s = 0\nfor %s in range(%d):\n    %s = %s + %s\nprint(%s)", v[0], i, n, v[0], v[0], i, v[0]);
    } else if (t == 2) {                                 // doubling
        int a = ri(g, 1, 5), n = ri(g, 1, 4);
        ans = a << n;
        snprintf(prog, sizeof prog, "%s = %d\nfor %s in range(%d):\n    %s = %s * 2\nprint(%s)", v[0], a, i, n, v[0], v[0], v[0]);
    } else if (t == 3) {                                 // counting even numbers
        int n = ri(g, 2, 12);
        ans = (n + 1) / 2;
        snprintf(prog, sizeof prog, "%s = 0\nfor %s in range(%d):\n    if %s %% 2 == 0:\n        %s = %s + 1\nprint(%s)", v[0], i,
                 n, i, v[0], v[0], v[0]);
    } else if (t == 4) {                                 // while loop
        int a = ri(g, 0, 10), lim = ri(g, a + 1, a + 20), k = ri(g, 2, 6);
        int x = a;
        while (x < lim) x += k;
        ans = x;
        snprintf(prog, sizeof prog, "%s = %d\n%s = %d\nwhile %s < %s:\n    %s = %s + %d\nprint(%s)", v[0], a, v[1], lim, v[0], v[1],
                 v[0], v[0], k, v[0]);
    } else {                                             // swap then subtract
        int p = ri(g, 0, 20), q = ri(g, 0, 20);
        ans = q - p;
        snprintf(prog, sizeof prog, "%s = %d\n%s = %d\n%s = %s\n%s = %s\n%s = %s\nprint(%s - %s)", v[0], p, v[1], q, v[2], v[0], v[0],
                 v[1], v[1], v[2], v[0], v[1]);
    }
    Q("What does this program print?\n%s", prog);
    A("%d", ans);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// reasoning: 4-way multiple choice over the fact world (facts.c)

enum { P_FLY, P_WATER, P_WHEELS, P_CAT, P_NOTCAT, P_COLOR, P_BIG, P_SMALL, P_N };

static const char *article(const char *w) { return strchr("aeiou", w[0]) ? "an" : "a"; }
// The usual colours reasoning and facts ask about (entities with one of these in facts.c).
static const char *const usual_colours[] = {"red", "yellow", "green", "purple", "gray", "brown"};

// 1 if E answers property P (with argument ARG), 0 if it clearly does not, -1 if it must not be used.
static int prop(int p, int arg, const wd_entity *e, const char *color) {
    switch (p) {
    case P_FLY: return e->fly;
    case P_WATER: return e->water;
    case P_WHEELS: return e->wheels;
    case P_CAT: return e->cat == arg;
    case P_NOTCAT: return e->cat != arg;
    case P_COLOR: return e->color ? !strcmp(e->color, color) : -1;
    }
    return -1;
}

static int fam_reasoning(gen *g, t2_world_item *it) {
    int p = ri(g, 0, P_N - 1), arg = ri(g, 0, WD_N_CATS - 1);
    const char *color = NULL;
    int pick[4], correct = ri(g, 0, 3);
    if (p == P_COLOR) color = PICK(g, usual_colours);
    if (p == P_BIG || p == P_SMALL) {
        int r;
        do pick[correct] = ri(g, 0, wd_n_entities - 1), r = wd_entities[pick[correct]].size;
        while (p == P_BIG ? r < 3 : r > 3);
        for (int i = 0; i < 4; i++) {
            if (i == correct) continue;
            int dup, s;
            do {
                pick[i] = ri(g, 0, wd_n_entities - 1), s = wd_entities[pick[i]].size;
                dup = 0;
                for (int j = 0; j < i; j++) dup |= pick[j] == pick[i];
                if (i < correct) dup |= pick[correct] == pick[i];
            } while (dup || (p == P_BIG ? s > r - 2 : s < r + 2));
        }
        Q("Which of these is the %s?", p == P_BIG ? "biggest" : "smallest");
    } else {
        do pick[correct] = ri(g, 0, wd_n_entities - 1);
        while (prop(p, arg, &wd_entities[pick[correct]], color) != 1);
        for (int i = 0; i < 4; i++) {
            if (i == correct) continue;
            int dup;
            do {
                pick[i] = ri(g, 0, wd_n_entities - 1);
                dup = pick[i] == pick[correct];
                for (int j = 0; j < i; j++) dup |= pick[j] == pick[i];
            } while (dup || prop(p, arg, &wd_entities[pick[i]], color) != 0);
        }
        const char *cn = wd_cat_names[arg];
        if (p == P_FLY) Q("Which of these can fly?");
        else if (p == P_WATER) Q("Which of these lives in water?");
        else if (p == P_WHEELS) Q("Which of these has wheels?");
        else if (p == P_CAT) Q("Which of these is %s %s?", article(cn), cn);
        else if (p == P_NOTCAT) Q("Which of these is not %s %s?", article(cn), cn);
        else Q("Which of these is usually %s?", color);
    }
    it->n_choices = 4;
    size_t k = strlen(it->question);
    for (int i = 0; i < 4; i++) {
        snprintf(it->choices[i], sizeof it->choices[i], "%s", wd_entities[pick[i]].name);
        k += (size_t)snprintf(it->question + k, sizeof it->question - k, "\n%c. %s", 'A' + i, it->choices[i]);
    }
    A("%c", 'A' + correct);
    return 0;
}

// facts (trained on, no test set): the pieces of a reasoning question taught one at a time, the way
// captions teach the image. Four kinds, a quarter each: which word has the property, the options
// inline with no letters ("Which of these is a fruit: saw, plum, crow or bus?" → plum); which letter
// a word has, in reasoning's own layout with 2–4 options ("Which of these is plum?\nA. saw\nB. plum"
// → B); one fact asked yes/no ("Can an owl fly?" → yes, "Is a whale bigger than a dog?"); every
// option's letter, 2–4 options, in a random order ("Which letter does each option have?\nA. saw\nB.
// plum" → "plum (B), saw (A)": many lookups per item, each keyed by the word just written).
// Reasoning composes the first two: find the word with the property, answer its letter.
static int fam_facts(gen *g, t2_world_item *it) {
    int kind = ri(g, 0, 3);
    if (kind == 3) {                                     // every option's letter, in a random order
        int n = ri(g, 2, 4), pick[4], order[4];
        for (int i = 0; i < n; i++) {
            int dup;
            do {
                pick[i] = ri(g, 0, wd_n_entities - 1), dup = 0;
                for (int j = 0; j < i; j++) dup |= pick[j] == pick[i];
            } while (dup);
            order[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = ri(g, 0, i), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        size_t m = (size_t)snprintf(it->question, sizeof it->question, "Which letter does each option have?");
        for (int i = 0; i < n; i++)
            m += (size_t)snprintf(it->question + m, sizeof it->question - m, "\n%c. %s", 'A' + i, wd_entities[pick[i]].name);
        size_t a = 0;
        for (int i = 0; i < n; i++)
            a += (size_t)snprintf(it->answer + a, sizeof it->answer - a, "%s%s (%c)", i ? ", " : "",
                                  wd_entities[pick[order[i]]].name, 'A' + order[i]);
        return 0;
    }
    if (kind < 2) {
        t2_world_item mc;
        memset(&mc, 0, sizeof mc);
        if (fam_reasoning(g, &mc)) return -1;
        char *opts = strchr(mc.question, '\n');
        if (!opts) return t2_fail("world: %s: a reasoning item without options", it->id);
        if (kind == 0) {
            *opts = 0;                                   // the stem, its '?' replaced by the inline options
            size_t n = strlen(mc.question);
            Q("%.*s: %s, %s, %s or %s?", (int)(n - 1), mc.question, mc.choices[0], mc.choices[1], mc.choices[2],
              mc.choices[3]);
            A("%s", mc.choices[mc.answer[0] - 'A']);
        } else {                                         // 2–4 options: fewer to bind while it is learnt
            int n = ri(g, 2, 4), k = ri(g, 0, n - 1);
            size_t m = (size_t)snprintf(it->question, sizeof it->question, "Which of these is %s?", mc.choices[k]);
            for (int i = 0; i < n; i++)
                m += (size_t)snprintf(it->question + m, sizeof it->question - m, "\n%c. %s", 'A' + i, mc.choices[i]);
            A("%c", 'A' + k);
        }
        return 0;
    }
    for (;;) {
        const wd_entity *e = &wd_entities[ri(g, 0, wd_n_entities - 1)];
        const char *art = article(e->name);
        int q = ri(g, 0, 5), yes;
        if (q == 0) {                                    // category: its own half the time
            int cat = chance(g, 0.5f) ? e->cat : ri(g, 0, WD_N_CATS - 1);
            Q("Is %s %s %s %s?", art, e->name, article(wd_cat_names[cat]), wd_cat_names[cat]);
            yes = cat == e->cat;
        } else if (q == 1) {
            if (e->fly < 0) continue;
            Q("Can %s %s fly?", art, e->name), yes = e->fly;
        } else if (q == 2) {
            if (e->water < 0) continue;
            Q("Does %s %s live in water?", art, e->name), yes = e->water;
        } else if (q == 3) {
            if (e->wheels < 0) continue;
            Q("Does %s %s have wheels?", art, e->name), yes = e->wheels;
        } else if (q == 4) {                             // usual colour: its own half the time
            if (!e->color) continue;
            const char *c = chance(g, 0.5f) ? e->color : PICK(g, usual_colours);
            Q("Is %s %s usually %s?", art, e->name, c), yes = !strcmp(c, e->color);
        } else {                                         // size: only pairs two steps apart, as reasoning asks
            const wd_entity *o = &wd_entities[ri(g, 0, wd_n_entities - 1)];
            if (abs(e->size - o->size) < 2) continue;
            Q("Is %s %s bigger than %s %s?", art, e->name, article(o->name), o->name), yes = e->size > o->size;
        }
        A("%s", yes ? "yes" : "no");
        return 0;
    }
}

// ---------------------------------------------------------------------------------------------
// signsum (held out): two signs with numbers; know (held out): a sign naming an entity + a fact

static int fam_signsum(gen *g, t2_world_item *it, wd_canvas *c) {
    backdrop(g, c);
    float S = (float)g->S, f = g->f;
    int v[2] = {ri(g, 1, 50), ri(g, 1, 50)};
    int vertical = chance(g, 0.3f);
    for (int i = 0; i < 2; i++) {
        char text[16];
        snprintf(text, sizeof text, "%d", v[i]);
        float w, h, cap = fit_text(g, text, pick_cap(g), f * rf(g, 3, 6), f * rf(g, 3, 5), S / 2 - 8 * f, S / 2 - 8 * f, &w, &h);
        float cx, cy;
        if (vertical) cx = place(g, w, 5 * f), cy = S / 4 + (float)i * S / 2;
        else cx = S / 4 + (float)i * S / 2, cy = place(g, h, 6 * f);
        if (vertical) cy += rf(g, -1, 1) * fmaxf(0, S / 4 - h / 2 - 5 * f);
        else cx += rf(g, -1, 1) * fmaxf(0, S / 4 - w / 2 - 5 * f);
        if (draw_sign(g, c, text, cap, cx, cy, w, h, pick_panel(g), !vertical && chance(g, 0.5f))) return -1;
    }
    static const char *qs[] = {"What is the sum of the two numbers on the signs?", "What do the numbers on the two signs add up to?"};
    Q("%s", PICK(g, qs));
    A("%d", v[0] + v[1]);
    return 0;
}

static int fam_know(gen *g, t2_world_item *it, wd_canvas *c) {
    backdrop(g, c);
    float S = (float)g->S, f = g->f;
    const wd_entity *e;
    int qt;
    for (;;) {
        e = &wd_entities[ri(g, 0, wd_n_entities - 1)];
        qt = ri(g, 0, 5);
        if (qt == 0 && (e->cat != WD_ANIMAL || e->fly < 0)) continue;
        if (qt == 1 && (e->cat != WD_ANIMAL || e->water < 0)) continue;
        if (qt == 2 && !e->color) continue;
        if (qt == 3 && (e->cat != WD_VEHICLE || e->wheels < 0)) continue;
        if (qt == 5 && e->size == 3) continue;
        break;
    }
    char text[32];
    styled(g, e->name, text, sizeof text);
    float w, h, cap = fit_text(g, text, pick_cap(g), f * rf(g, 3, 6), f * rf(g, 3, 6), S - 8 * f, S * 0.6f, &w, &h);
    float cx = place(g, w, 5 * f), cy = place(g, h, 5 * f);
    if (draw_sign(g, c, text, cap, cx, cy, w, h, pick_panel(g), chance(g, 0.6f))) return -1;
    const char *cn = wd_cat_names[e->cat];
    switch (qt) {
    case 0: Q("Can the animal on the sign fly?"); A("%s", e->fly ? "yes" : "no"); break;
    case 1: Q("Does the animal on the sign live in water?"); A("%s", e->water ? "yes" : "no"); break;
    case 2: Q("What color is the %s on the sign?", cn); A("%s", e->color); break;
    case 3: Q("Does the vehicle on the sign have wheels?"); A("%s", e->wheels ? "yes" : "no"); break;
    case 4: Q("What kind of thing is on the sign?"); A("%s", cn); break;
    default: Q("Is the %s on the sign bigger than a dog?", cn); A("%s", e->size > 3 ? "yes" : "no"); break;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// dispatch: the classification prompt (transformer2.md, strategy A) around another family's question

#define DISPATCH_PROMPT                                                                               \
    "Classify the request into one category: textvqa (read text in the image), math (word problem), " \
    "code (program output), reasoning (multiple choice facts), other (anything else). Answer "         \
    "\\boxed{category}.\nRequest: "

static const char *const chat[] = {
    "Hello, how are you?", "What is your name?", "Tell me a joke.", "Write a short poem about the sea.",
    "What is the weather like today?", "Good morning!", "Can you help me plan a trip?", "What is your favorite color?",
    "Say something nice.", "Who are you?", "Thank you for your help.", "What should I cook tonight?",
    "Describe this picture.", "Do you like music?", "Give me a name for a cat.", "How do I make tea?",
};

static int make_item(int family, int split, uint64_t index, const t2_world_opts *o, t2_world_item *it, uint8_t *rgb);

static int fam_dispatch(gen *g, t2_world_item *it, uint8_t *rgb) {
    // Five labels, 1/5 each; "other" is half scene questions (with their image), half chit-chat.
    static const int inner[] = {T2_WORLD_TEXTVQA, T2_WORLD_MATH, T2_WORLD_CODE, T2_WORLD_REASONING, T2_WORLD_SCENE, -1};
    static const char *labels[] = {"textvqa", "math", "code", "reasoning", "other", "other"};
    int k = ri(g, 0, 4);
    if (k == 4) k += ri(g, 0, 1);
    const char *text;
    t2_world_item sub;
    if (inner[k] >= 0) {
        uint64_t idx = t2_rng_u64(&g->r);
        if (make_item(inner[k], g->split, idx, g->o, &sub, rgb)) return -1;
        it->has_image = sub.has_image;
        text = sub.question;
    } else text = PICK(g, chat);
    Q(DISPATCH_PROMPT "%s", text);
    A("\\boxed{%s}", labels[k]);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The entry points

static int make_item(int family, int split, uint64_t index, const t2_world_opts *o, t2_world_item *it, uint8_t *rgb) {
    memset(it, 0, sizeof *it);
    it->family = family, it->split = split, it->index = index;
    snprintf(it->id, sizeof it->id, "%s-%s-%llu", family_names[family], split_names[split], (unsigned long long)index);
    gen g = {.d = o->difficulty, .S = o->image_size, .f = (float)o->image_size / 96.0f, .split = split, .o = o};
    t2_rng_seed(&g.r, mix64(mix64(mix64(split_seed[split]) + (uint64_t)family) + index));
    wd_canvas c = {o->image_size, rgb, it};
    int img = t2_world_family_has_images(family);
    if (img && !rgb) return t2_fail("world: %s needs an RGB buffer", it->id);
    if (img && wd_font_init()) return -1;
    int rc;
    for (int attempt = 0;; attempt++) {
        switch (family) {
        case T2_WORLD_TEXTVQA: rc = fam_textvqa(&g, it, &c); break;
        case T2_WORLD_SCENE: rc = fam_scene(&g, it, &c); break;
        case T2_WORLD_MATH: rc = fam_math(&g, it); break;
        case T2_WORLD_CODE: rc = fam_code(&g, it); break;
        case T2_WORLD_REASONING: rc = fam_reasoning(&g, it); break;
        case T2_WORLD_DISPATCH: rc = fam_dispatch(&g, it, rgb); break;
        case T2_WORLD_SIGNSUM: rc = fam_signsum(&g, it, &c); break;
        case T2_WORLD_MATH_HARD: rc = fam_math_hard(&g, it); break;
        case T2_WORLD_CODE_HARD: rc = fam_code_hard(&g, it); break;
        case T2_WORLD_CAPTION: rc = fam_caption(&g, it, &c); break;
        case T2_WORLD_FACTS: rc = fam_facts(&g, it); break;
        default: rc = fam_know(&g, it, &c); break;
        }
        if (rc == 0 || family == T2_WORLD_SCENE || family == T2_WORLD_DISPATCH || attempt == 20) break;
        it->question[0] = it->answer[0] = 0;   // text did not fit: redraw with the rng moved on
        it->n_glyphs = 0;
    }
    if (rc) return rc == -1 && *t2_last_error() ? -1 : t2_fail("world: %s: text did not fit the image", it->id);
    if (img) it->has_image = 1;
    return 0;
}

int t2_world_make(int family, int split, uint64_t index, const t2_world_opts *o, t2_world_item *it, uint8_t *rgb) {
    t2_world_opts def = t2_world_defaults();
    if (!o) o = &def;
    if (!it) return t2_fail("world: no item to fill");
    if (family < 0 || family >= T2_WORLD_COUNT) return t2_fail("world: unknown family %d", family);
    if (split < 0 || split > 2) return t2_fail("world: unknown split %d", split);
    if (o->image_size < 32 || o->image_size > 1024)
        return t2_fail("world: image_size %d outside 32..1024", o->image_size);
    if (!(o->difficulty >= 0 && o->difficulty <= 1)) return t2_fail("world: difficulty %g outside 0..1", o->difficulty);
    t2_error_clear();
    return make_item(family, split, index, o, it, rgb);
}

char *t2_world_jsonl_line(const t2_world_item *it, const char *image) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "id", it->id);
    if (image) cJSON_AddStringToObject(j, "image", image);
    char stem[sizeof it->question];
    snprintf(stem, sizeof stem, "%s", it->question);
    if (it->n_choices) {                     // eval/run.c appends "\nA. x..." itself
        char *p = strstr(stem, "\nA. ");
        if (p) *p = 0;
    }
    cJSON_AddStringToObject(j, "question", stem);
    // VQA accuracy (vqaEval.py) scores a prediction against ten human answers: min(1, matches among
    // the other nine / 3). The world's answer is ground truth, so its ten "annotators" agree: ten
    // copies, and an exact (normalised) match scores 100. Other metrics take the one answer.
    cJSON *ans = cJSON_AddArrayToObject(j, "answers");
    int copies = !strcmp(t2_world_family_metric(it->family), "vqa") ? 10 : 1;
    for (int k = 0; k < copies; k++) cJSON_AddItemToArray(ans, cJSON_CreateString(it->answer));
    cJSON_AddStringToObject(j, "task", family_names[it->family]);
    cJSON_AddStringToObject(j, "metric", t2_world_family_metric(it->family));
    if (it->n_choices) {
        cJSON *ch = cJSON_AddArrayToObject(j, "choices");
        for (int i = 0; i < it->n_choices; i++) cJSON_AddItemToArray(ch, cJSON_CreateString(it->choices[i]));
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

int t2_world_write_progress(const char *dir, int family, int split, int n, const t2_world_opts *o,
                            void (*progress)(void *ctx, int done, int total), void *ctx) {
    t2_world_opts def = t2_world_defaults();
    if (!o) o = &def;
    if (family < 0 || family >= T2_WORLD_COUNT) return t2_fail("world: unknown family %d", family);
    if (split < 0 || split > 2) return t2_fail("world: unknown split %d", split);
    if (n < 0) return t2_fail("world: negative item count %d", n);
    char imgdir[4096], path[4096];
    if (t2_path_join(imgdir, sizeof imgdir, dir, "images")) return -1;
    if (t2_mkdirs(imgdir)) return -1;
    uint8_t *rgb = t2_malloc((size_t)o->image_size * o->image_size * 3);
    size_t cap = 1 << 16, len = 0;
    char *buf = t2_malloc(cap);
    int rc = 0;
    t2_world_item it;
    for (int i = 0; i < n && rc == 0; i++) {
        if ((rc = t2_world_make(family, split, (uint64_t)i, o, &it, rgb))) break;
        char rel[128];
        if (it.has_image) {
            snprintf(rel, sizeof rel, "images/%s.png", it.id);
            t2_image im = {o->image_size, o->image_size, rgb};
            if (t2_path_join(path, sizeof path, dir, rel) || t2_image_write_png(path, &im)) { rc = -1; break; }
        }
        char *line = t2_world_jsonl_line(&it, it.has_image ? rel : NULL);
        if (!line) { rc = t2_fail("world: out of memory"); break; }
        size_t l = strlen(line);
        while (len + l + 2 > cap) buf = t2_realloc(buf, cap *= 2);
        memcpy(buf + len, line, l);
        len += l;
        buf[len++] = '\n';
        free(line);
        if (progress) progress(ctx, i + 1, n);
    }
    if (rc == 0) {
        char name[64];
        snprintf(name, sizeof name, "%s-%s.jsonl", family_names[family], split_names[split]);
        if (t2_path_join(path, sizeof path, dir, name) || t2_write_file_atomic(path, buf, len)) rc = -1;
    }
    free(buf);
    free(rgb);
    return rc;
}

int t2_world_write(const char *dir, int family, int split, int n, const t2_world_opts *o) {
    return t2_world_write_progress(dir, family, split, n, o, NULL, NULL);
}
