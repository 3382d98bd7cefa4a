// chart.c — a small raster bar-chart renderer (see chart.h): axes at 0/25/50/75/100, one colour per
// series, the value above each bar, group names below, a legend. Not a plotting library.
#include "eval/chart.h"
#include "core/error.h"
#include "core/util.h"
#include "vision/image.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

typedef struct { t2_image im; } canvas;

static void fill(canvas *c, int x0, int y0, int x1, int y1, const unsigned char rgb[3]) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > c->im.w) x1 = c->im.w;
    if (y1 > c->im.h) y1 = c->im.h;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) memcpy(c->im.rgb + ((size_t)y * c->im.w + x) * 3, rgb, 3);
}

// Text at (x, y) top-left, SCALE pixels per font unit; returns its width in pixels.
static int text(canvas *c, int x, int y, const char *s, int scale, const unsigned char rgb[3]) {
    static float buf[4 * 4 * 2000];   // stb_easy_font: 4 vertices × (x, y, z, colour) per quad
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", s);
    int q = stb_easy_font_print(0, 0, tmp, NULL, buf, sizeof buf);
    for (int i = 0; i < q; i++) {
        float *v = buf + i * 16;   // 4 vertices of 16 bytes (x, y, z, rgba as a float's bytes)
        int qx0 = (int)v[0], qy0 = (int)v[1], qx1 = (int)v[8], qy1 = (int)v[9];
        fill(c, x + qx0 * scale, y + qy0 * scale, x + qx1 * scale, y + qy1 * scale, rgb);
    }
    return stb_easy_font_width(tmp) * scale;
}

int t2_chart_bars(const char *path, const char *title, const char *const *groups, int n_groups,
                  const char *const *series, int n_series, const double *values) {
    if (n_groups <= 0 || n_series <= 0) return t2_fail("%s: nothing to chart", path);
    static const unsigned char pal[][3] = {{66, 114, 196}, {221, 132, 82}, {85, 168, 104}, {196, 78, 82},
                                           {129, 114, 179}, {147, 120, 96}, {218, 139, 195}, {140, 140, 140}};
    const unsigned char white[3] = {255, 255, 255}, black[3] = {0, 0, 0}, grid[3] = {225, 225, 225};
    int bar = 28, gap = 24, left = 70, top = 50, plot_h = 300;
    int group_w = n_series * bar + gap;
    int w = left + n_groups * group_w + 40, h = top + plot_h + 80 + (n_series > 1 ? 18 * n_series : 0);
    if (w < 360) w = 360;
    canvas c = {{w, h, t2_malloc((size_t)w * h * 3)}};
    fill(&c, 0, 0, w, h, white);
    text(&c, left, 14, title ? title : "", 2, black);
    for (int t = 0; t <= 4; t++) {   // grid lines and ticks
        int y = top + plot_h - t * plot_h / 4;
        fill(&c, left, y, w - 20, y + 1, grid);
        char lab[8];
        snprintf(lab, sizeof lab, "%d", t * 25);
        text(&c, left - 44, y - 6, lab, 2, black);
    }
    fill(&c, left, top, left + 1, top + plot_h + 1, black);
    fill(&c, left, top + plot_h, w - 20, top + plot_h + 1, black);
    for (int g = 0; g < n_groups; g++) {
        int gx = left + gap / 2 + g * group_w;
        for (int s = 0; s < n_series; s++) {
            double v = values[(size_t)s * n_groups + g];
            if (v < 0) continue;
            if (v > 100) v = 100;
            int bh = (int)(v / 100.0 * plot_h + 0.5), x = gx + s * bar;
            fill(&c, x + 2, top + plot_h - bh, x + bar - 2, top + plot_h, pal[s % 8]);
            char lab[16];
            snprintf(lab, sizeof lab, "%.0f", v);
            text(&c, x + 4, top + plot_h - bh - 14, lab, 1, black);
        }
        char name[32];
        snprintf(name, sizeof name, "%.*s", (group_w - 4) / 6 > 0 ? (group_w - 4) / 6 : 1, groups[g]);
        text(&c, gx, top + plot_h + 8, name, 1, black);
    }
    if (n_series > 1 && series)
        for (int s = 0; s < n_series; s++) {
            int y = top + plot_h + 30 + 18 * s;
            fill(&c, left, y, left + 12, y + 12, pal[s % 8]);
            text(&c, left + 18, y + 2, series[s], 1, black);
        }
    int rc = t2_image_write_png(path, &c.im);
    free(c.im.rgb);
    return rc;
}

static void dot(canvas *c, int x, int y, int r, const unsigned char rgb[3]) { fill(c, x - r, y - r, x + r + 1, y + r + 1, rgb); }

// A line from (x0, y0) to (x1, y1), 2 px wide (DDA).
static void line(canvas *c, int x0, int y0, int x1, int y1, const unsigned char rgb[3]) {
    int dx = x1 - x0, dy = y1 - y0, n = abs(dx) > abs(dy) ? abs(dx) : abs(dy);
    if (n == 0) { dot(c, x0, y0, 1, rgb); return; }
    for (int i = 0; i <= n; i++) dot(c, x0 + dx * i / n, y0 + dy * i / n, 1, rgb);
}

int t2_chart_lines(const char *path, const char *title, const char *xlabel, const char *const *series,
                   int n_series, const double *const *xs, const double *const *ys, const int *n, int log_y) {
    static const unsigned char black[3] = {0, 0, 0}, grid[3] = {225, 225, 225}, white[3] = {255, 255, 255};
    static const unsigned char pal[6][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                            {148, 103, 189}, {140, 86, 75}};
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < n[s]; i++) {
            double y = ys[s][i];
            if (!(y == y) || (log_y && y <= 0)) continue;
            if (log_y) y = log10(y);
            x0 = fmin(x0, xs[s][i]), x1 = fmax(x1, xs[s][i]), y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    if (x0 > x1) return t2_fail("%s: no points to plot", path);
    if (x1 == x0) x1 = x0 + 1;
    if (y1 - y0 < 1e-9) y0 -= 0.5, y1 += 0.5;
    double pad = (y1 - y0) * 0.05;
    y0 -= pad, y1 += pad;
    int w = 900, h = 500, left = 80, top = 50, plot_w = w - left - 30, plot_h = h - top - 70;
    canvas c = {{w, h, t2_malloc((size_t)w * h * 3)}};
    fill(&c, 0, 0, w, h, white);
    text(&c, left, 14, title, 2, black);
    for (int k = 0; k <= 4; k++) {   // horizontal grid with labels
        int y = top + plot_h - k * plot_h / 4;
        double v = y0 + (y1 - y0) * k / 4;
        char lab[32];
        snprintf(lab, sizeof lab, "%.3g", log_y ? pow(10, v) : v);
        fill(&c, left, y, left + plot_w, y + 1, grid);
        text(&c, 8, y - 4, lab, 1, black);
    }
    for (int k = 0; k <= 4; k++) {
        int x = left + k * plot_w / 4;
        char lab[32];
        snprintf(lab, sizeof lab, "%.0f", x0 + (x1 - x0) * k / 4);
        text(&c, x - 10, top + plot_h + 8, lab, 1, black);
    }
    text(&c, left + plot_w / 2 - 20, top + plot_h + 24, xlabel, 1, black);
    fill(&c, left, top, left + 1, top + plot_h + 1, black);
    fill(&c, left, top + plot_h, left + plot_w, top + plot_h + 1, black);
    for (int s = 0; s < n_series; s++) {
        int px = -1, py = -1;
        for (int i = 0; i < n[s]; i++) {
            double y = ys[s][i];
            if (!(y == y) || (log_y && y <= 0)) { px = -1; continue; }
            if (log_y) y = log10(y);
            int X = left + (int)((xs[s][i] - x0) / (x1 - x0) * plot_w), Y = top + plot_h - (int)((y - y0) / (y1 - y0) * plot_h);
            if (px >= 0) line(&c, px, py, X, Y, pal[s % 6]);
            else dot(&c, X, Y, 1, pal[s % 6]);
            px = X, py = Y;
        }
        if (series && n_series > 1) {
            int ly = top + plot_h + 44, lx = left + s * 130;
            fill(&c, lx, ly, lx + 12, ly + 12, pal[s % 6]);
            text(&c, lx + 16, ly + 2, series[s], 1, black);
        }
    }
    int rc = t2_image_write_png(path, &c.im);
    free(c.im.rgb);
    return rc;
}
