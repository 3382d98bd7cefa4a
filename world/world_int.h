// world_int.h — what the world's files share privately: the canvas and its antialiased shapes and
// TrueType text (draw.c), and the word lists and the fact world of entities (facts.c). Not a public
// header: nothing outside world/ includes it.
#ifndef T2_WORLD_INT_H
#define T2_WORLD_INT_H
#include "core/rng.h"
#include "world/world.h"
#include <stdint.h>

typedef struct { uint8_t r, g, b; } wd_col;

typedef struct {
    int s;          // side, pixels
    uint8_t *p;     // (s, s, 3) RGB
    t2_world_item *it;   // NULL, or where the glyphs drawn are recorded (reset by wd_fill / wd_background)
} wd_canvas;

// ---- draw.c: shapes are filled with 4×4 supersampled coverage, alpha-blended onto the canvas.
void wd_fill(wd_canvas *c, wd_col col);
// Vertical gradient from TOP to BOTTOM colour plus uniform noise of ±NOISE (0 = none).
void wd_background(wd_canvas *c, wd_col top, wd_col bottom, int noise, t2_rng *r);
void wd_circle(wd_canvas *c, float cx, float cy, float rad, wd_col col);
void wd_rrect(wd_canvas *c, float x0, float y0, float x1, float y1, float rad, wd_col col);
// Convex polygon, N ≤ 8 points (any winding).
void wd_poly(wd_canvas *c, const float *xy, int n, wd_col col);
// A line of half-width HW with round caps.
void wd_line(wd_canvas *c, float x0, float y0, float x1, float y1, float hw, wd_col col);

// ---- text (DejaVu Sans Bold via stb_truetype, loaded once, thread-safe)
// Contract: load the font if not yet loaded; 0 or -1 + error naming the file.
int wd_font_init(void);
// Contract: the ink box of TEXT drawn with its origin (pen start, baseline) at (0, 0) with cap
// height CAP pixels: box = {x0, y0, x1, y1} (y down, so y0 < 0).
void wd_text_box(const char *text, float cap, int box[4]);
// Contract: draw TEXT with its origin at integer (X, BASELINE); -1 if any ink falls outside the canvas
// (nothing is drawn then).
int wd_text(wd_canvas *c, const char *text, int x, int baseline, float cap, wd_col col);
// Contract: draw TEXT with its ink box centred on (CX, CY); -1 if it does not fit.
int wd_text_centered(wd_canvas *c, const char *text, float cx, float cy, float cap, wd_col col);

// ---- facts.c
extern const char *const wd_words[];          // common short words, 3..7 letters
extern const int wd_n_words;

enum { WD_ANIMAL, WD_FRUIT, WD_VEGETABLE, WD_TOOL, WD_VEHICLE, WD_N_CATS };
extern const char *const wd_cat_names[WD_N_CATS];   // "animal", "fruit", ...

typedef struct {
    const char *name;
    int cat;          // WD_ANIMAL...
    const char *color;// usual colour or NULL (no single usual colour)
    int fly;          // 1 yes, 0 no, -1 unclear (never asked about)
    int water;        // lives in water
    int wheels;       // has wheels
    int size;         // 1 tiny .. 5 huge
} wd_entity;
extern const wd_entity wd_entities[];
extern const int wd_n_entities;

#endif
