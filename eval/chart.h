// chart.h — grouped bar charts as PNG (per-task scores of one run, or several runs side by side).
// Text is drawn with stb_easy_font; the file is written by vision/image.h's PNG writer (atomic).
#ifndef T2_CHART_H
#define T2_CHART_H

// Contract: draw N_GROUPS groups (e.g. tasks) of N_SERIES bars (e.g. runs); VALUES[s * n_groups + g]
// in [0, 100] (negative = missing); GROUPS and SERIES label them (SERIES may be NULL for one series).
// Writes PATH; -1 + error naming it.
int t2_chart_bars(const char *path, const char *title, const char *const *groups, int n_groups,
                  const char *const *series, int n_series, const double *values);

// Contract: line chart of N_SERIES series (XS[s], YS[s], N[s] points; NaN breaks a line), y on a log
// scale when LOG_Y (non-positive values skipped), labelled axes and a legend. Writes PATH; -1 + error.
int t2_chart_lines(const char *path, const char *title, const char *xlabel, const char *const *series,
                   int n_series, const double *const *xs, const double *const *ys, const int *n, int log_y);

#endif
