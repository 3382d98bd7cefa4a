// test_preprocess.c — vision/preprocess.c against tests/ref/preprocess_ref.py, an independent
// restatement of transformers' slow image processors on PIL + numpy. Checked: PIL's Image.resize for
// all six filters (up, down, mixed, 1×1, huge upscale) byte for byte; select_best_resolution and
// get_patch_output_size for ~420 image sizes on the LLaVA-NeXT and OneVision pinpoint lists; whole
// processors (CLIP, LLaVA pad, SigLIP, NeXT, OneVision, odd / oversized crops, legacy int sizes,
// original-LLaVA config.json modes) on synthetic images — uint8 tiles before rescale and f32 tiles
// after normalise; and bad configs, which must fail with a message naming the field.
// The bar is exactness: bytes must match PIL bit for bit (a ±1 slip is what a fixed-point rounding
// mistake looks like, so it fails), f32 within 1e-6 (the same IEEE f32 operations as numpy's).
// Not covered: decoding (test_image), the ViT, fusion's unpad / newline / anyres_max downsampling.
#include "testutil.h"
#include "core/error.h"
#include "core/util.h"
#include "vision/preprocess.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const t2_test_env *env;

static void *load_raw(const char *name, size_t want) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", env->work, name);
    size_t n = 0;
    void *buf = t2_read_file(path, &n);
    if (!buf || n != want) {
        printf("FAIL cannot read %s (%zu bytes, want %zu): %s\n", path, n, want, t2_last_error());
        exit(1);
    }
    return buf;
}

static int num(const cJSON *o, const char *k) { return (int)t2_json_num(o, k, -1); }
static int idx(const cJSON *o, const char *k, int i) {
    return (int)cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, k), i)->valuedouble;
}

// Byte comparison: largest difference and how many bytes differ by exactly one level.
static int cmp_u8(const uint8_t *a, const uint8_t *b, size_t n, long *ones) {
    int worst = 0;
    *ones = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d == 1) (*ones)++;
        if (d > worst) worst = d;
    }
    return worst;
}

static void check_resize(const cJSON *list) {
    int n = 0, exact = 0, worst_all = 0;
    long ones_all = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, list) {
        int w = num(c, "w"), h = num(c, "h"), ow = num(c, "ow"), oh = num(c, "oh"), r = num(c, "resample");
        t2_image in = {w, h, load_raw(t2_json_str(c, "image", ""), (size_t)w * h * 3)};
        uint8_t *want = load_raw(t2_json_str(c, "file", ""), (size_t)ow * oh * 3);
        t2_image out;
        int rc = t2_preproc_resize(&in, ow, oh, (t2_resample)r, &out);
        T2_CHECK(rc == 0, "resize %dx%d → %dx%d filter %d: %s", w, h, ow, oh, r, t2_last_error());
        if (rc == 0) {
            long ones;
            int d = cmp_u8(out.rgb, want, (size_t)ow * oh * 3, &ones);
            T2_CHECK(d == 0, "resize %dx%d → %dx%d filter %d: max diff %d", w, h, ow, oh, r, d);
            if (d) printf("  resize %dx%d → %dx%d filter %d: max diff %d, %ld bytes ±1\n", w, h, ow, oh, r, d, ones);
            exact += d == 0;
            worst_all = d > worst_all ? d : worst_all;
            ones_all += ones;
            free(out.rgb);
        }
        n++;
        free(in.rgb);
        free(want);
    }
    printf("%s resize vs PIL: %d cases, %d byte-exact, max diff %d, %ld bytes off by 1\n",
           worst_all == 0 ? "ok  " : "FAIL", n, exact, worst_all, ones_all);
}

static void check_pinpoints(const cJSON *list) {
    t2_preproc next, ov;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/next", env->work);
    T2_CHECK(t2_preproc_load(&next, dir) == 0, "load %s: %s", dir, t2_last_error());
    snprintf(dir, sizeof dir, "%s/onevision", env->work);
    T2_CHECK(t2_preproc_load(&ov, dir) == 0, "load %s: %s", dir, t2_last_error());
    T2_CHECK(ov.anyres_max == 9 && next.anyres_max == 0 && ov.tile == 384 && next.tile == 336 &&
             ov.n_pinpoints == 36 && next.n_pinpoints == 5, "anyres configs: OneVision max %d tile %d (%d "
             "pinpoints), NeXT max %d tile %d (%d)", ov.anyres_max, ov.tile, ov.n_pinpoints, next.anyres_max,
             next.tile, next.n_pinpoints);
    int n = 0, bad = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, list) {
        const t2_preproc *p = strcmp(t2_json_str(c, "set", ""), "next") == 0 ? &next : &ov;
        int h = num(c, "h"), w = num(c, "w");
        t2_anyres_layout L;
        int rc = t2_preproc_layout(p, h, w, &L);
        int ok = rc == 0 && L.best_h == idx(c, "best", 0) && L.best_w == idx(c, "best", 1) &&
                 L.fit_h == idx(c, "fit", 0) && L.fit_w == idx(c, "fit", 1) && L.rows == L.best_h / p->tile &&
                 L.cols == L.best_w / p->tile;
        T2_CHECK(ok, "%s %dx%d (h×w): t2 best %dx%d fit %dx%d, HF best %dx%d fit %dx%d", t2_json_str(c, "set", ""),
                 h, w, L.best_h, L.best_w, L.fit_h, L.fit_w, idx(c, "best", 0), idx(c, "best", 1), idx(c, "fit", 0),
                 idx(c, "fit", 1));
        bad += !ok;
        n++;
    }
    printf("%s pinpoint selection + fit: %d sizes, %d mismatches\n", bad ? "FAIL" : "ok  ", n, bad);
}

static void check_pre(const cJSON *list) {
    const cJSON *c;
    double worst_f_rel = 0;
    int worst_u8 = 0, n = 0;
    long ones_all = 0;
    cJSON_ArrayForEach(c, list) {
        const char *name = t2_json_str(c, "name", "");
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", env->work, t2_json_str(c, "dir", ""));
        t2_preproc p;
        if (t2_preproc_load(&p, dir) != 0) {
            T2_CHECK(0, "%s: load: %s", name, t2_last_error());
            continue;
        }
        int w = num(c, "w"), h = num(c, "h"), nt = num(c, "n"), th = num(c, "th"), tw = num(c, "tw");
        t2_image im = {w, h, load_raw(t2_json_str(c, "image", ""), (size_t)w * h * 3)};
        t2_pixels px;
        int rc = t2_preprocess(&p, &im, &px);
        T2_CHECK(rc == 0, "%s: %s", name, t2_last_error());
        free(im.rgb);
        if (rc) continue;
        int shape_ok = px.n_tiles == nt && px.h == th && px.w == tw && px.orig_h == h && px.orig_w == w &&
                       px.grid_rows == idx(c, "grid", 0) && px.grid_cols == idx(c, "grid", 1) &&
                       px.best_h == idx(c, "best", 0) && px.best_w == idx(c, "best", 1);
        T2_CHECK(shape_ok, "%s: t2 %d tiles %dx%d grid %dx%d best %dx%d; HF %d tiles %dx%d grid %dx%d best %dx%d",
                 name, px.n_tiles, px.w, px.h, px.grid_rows, px.grid_cols, px.best_h, px.best_w, nt, tw, th,
                 idx(c, "grid", 0), idx(c, "grid", 1), idx(c, "best", 0), idx(c, "best", 1));
        if (shape_ok) {
            size_t total = (size_t)nt * 3 * th * tw;
            char fn[512];
            snprintf(fn, sizeof fn, "%s.u8", name);
            uint8_t *wu = load_raw(fn, total);
            snprintf(fn, sizeof fn, "%s.f32", name);
            float *wf = load_raw(fn, total * sizeof(float));
            long ones;
            int du = cmp_u8(px.u8, wu, total, &ones);
            T2_CHECK(du == 0, "%s: uint8 tiles max diff %d (%ld bytes ±1)", name, du, ones);
            // Reported in uint8 levels after rescale and normalise; required to agree to f32 rounding.
            double level = t2_json_num(c, "rescale", 1.0) / (cJSON_IsTrue(cJSON_GetObjectItem(c, "norm"))
                                                                  ? t2_json_num(c, "min_std", 1.0) : 1.0);
            char label[600];
            snprintf(label, sizeof label, "%s f32 (uint8 max diff %d, %ld ±1)", name, du, ones);
            double df = t2_test_close(label, px.data, wf, total, 1e-6);
            worst_f_rel = df / level > worst_f_rel ? df / level : worst_f_rel;
            worst_u8 = du > worst_u8 ? du : worst_u8;
            ones_all += ones;
            free(wu);
            free(wf);
        }
        t2_pixels_free(&px);
        n++;
    }
    printf("processors: %d cases, uint8 max diff %d (%ld bytes ±1 in all), f32 max diff %.3g uint8 levels\n", n,
           worst_u8, ones_all, worst_f_rel);
}

static void check_bad(const cJSON *list) {
    const cJSON *c;
    cJSON_ArrayForEach(c, list) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", env->work, t2_json_str(c, "dir", ""));
        t2_preproc p;
        t2_error_clear();
        int rc = t2_preproc_load(&p, dir);
        const char *want = t2_json_str(c, "want", "?");
        T2_CHECK(rc != 0, "%s: accepted a bad config", dir);
        if (rc == 0) continue;
        printf("  refused %-16s %s\n", t2_json_str(c, "dir", "") + 4, t2_last_error());
        T2_CHECK(strstr(t2_last_error(), want) != NULL, "message '%s' lacks '%s'", t2_last_error(), want);
        T2_CHECK(strstr(t2_last_error(), t2_json_str(c, "dir", "")) != NULL, "message '%s' does not name the "
                 "checkpoint directory", t2_last_error());
    }
}

// Calls the reference does not cover: bad arguments, and one config parsed from memory.
static void check_api(void) {
    t2_preproc p;
    cJSON *pp = cJSON_Parse("{\"image_processor_type\": \"SiglipImageProcessorFast\", "
                            "\"size\": {\"height\": 8, \"width\": 6}}");
    T2_CHECK(t2_preproc_from_json(&p, pp, NULL, "mem") == 0, "from_json: %s", t2_last_error());
    cJSON_Delete(pp);
    T2_CHECK(p.kind == T2_PREPROC_SIGLIP && p.size_h == 8 && p.size_w == 6 && p.mean[0] == 0.5f &&
             p.std[2] == 0.5f && p.resample == T2_RESAMPLE_BICUBIC && !p.anyres, "SigLIP defaults");
    uint8_t rgb[3 * 5 * 4] = {0};
    t2_image im = {5, 4, rgb}, empty = {0, 0, NULL};
    t2_pixels px;
    T2_CHECK(t2_preprocess(&p, &im, &px) == 0 && px.n_tiles == 1 && px.h == 8 && px.w == 6 &&
             px.data[0] == -1.0f, "tiny SigLIP: %s", t2_last_error());
    t2_pixels_free(&px);
    T2_CHECK(t2_preprocess(&p, &empty, &px) != 0 && px.data == NULL, "empty image accepted");
    t2_image out;
    T2_CHECK(t2_preproc_resize(&im, 3, 3, (t2_resample)9, &out) != 0, "filter 9 accepted");
    T2_CHECK(t2_preproc_resize(&im, 0, 3, T2_RESAMPLE_BICUBIC, &out) != 0, "0 width accepted");
    t2_anyres_layout L;
    T2_CHECK(t2_preproc_layout(&p, 10, 10, &L) != 0, "layout without pinpoints accepted");
    // A 1×60000 strip under shortest_edge 336 would need a 20-gigapixel intermediate: refused, not OOM.
    pp = cJSON_Parse("{\"image_processor_type\": \"CLIPImageProcessor\", \"size\": 336, \"crop_size\": 336}");
    T2_CHECK(t2_preproc_from_json(&p, pp, NULL, "mem") == 0, "clip from_json: %s", t2_last_error());
    cJSON_Delete(pp);
    uint8_t *strip = calloc(60000, 3);
    t2_image st = {60000, 1, strip};
    T2_CHECK(t2_preprocess(&p, &st, &px) != 0, "20-gigapixel resize accepted");
    printf("  refused strip: %s\n", t2_last_error());
    free(strip);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    env = &e;
    int rc = t2_test_python(&e, "preprocess_ref.py", "'%s'", e.work);
    T2_CHECK(rc == 0, "preprocess_ref.py failed (exit %d); it needs python3-pil and numpy", rc);
    if (rc) return t2_test_done();
    char path[4096];
    snprintf(path, sizeof path, "%s/cases.json", e.work);
    cJSON *cases = t2_json_load(path);
    T2_CHECK(cases != NULL, "%s", t2_last_error());
    if (!cases) return t2_test_done();
    check_resize(cJSON_GetObjectItem(cases, "resize"));
    check_pinpoints(cJSON_GetObjectItem(cases, "pinpoints"));
    check_pre(cJSON_GetObjectItem(cases, "pre"));
    check_bad(cJSON_GetObjectItem(cases, "bad"));
    check_api();
    cJSON_Delete(cases);
    return t2_test_done();
}
