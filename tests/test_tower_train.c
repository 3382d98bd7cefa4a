// test_tower_train.c — `t2 tower train` (train/tower_train.c): the character classes and per-half-patch
// labels from glyph boxes (hand-placed boxes, and real world items whose labels must spell their
// answers), then short runs on the shipped t2-tiny: the loss falls, a run stopped and resumed writes
// the same log and the same model as an uninterrupted one, the export changes the tower and copies
// the projector and the language model bit for bit, the export loads and answers, and bad input
// (existing run without --resume, other settings on resume, held-out / unknown / text-only families,
// a missing model) fails with a message naming it.
#include "testutil.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "train/tower_train.h"
#include "world/world.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static void test_classes(void) {
    T2_CHECK(t2_tower_char_class('a') == 1 && t2_tower_char_class('z') == 26, "a / z");
    T2_CHECK(t2_tower_char_class('A') == 1 && t2_tower_char_class('Q') == 17, "upper case folds");
    T2_CHECK(t2_tower_char_class('0') == 27 && t2_tower_char_class('9') == 36, "digits");
    T2_CHECK(t2_tower_char_class('$') == 37 && t2_tower_char_class('.') == 37, "other glyphs");
    T2_CHECK(t2_tower_char_class(' ') == T2_TOWER_NONE && t2_tower_char_class('\n') == T2_TOWER_NONE, "no ink");
}

static void test_labels(void) {
    // a 24-pixel image as a 2×2 grid of 12-pixel patches; boxes are [x0, x1) × [y0, y1)
    t2_world_item it;
    memset(&it, 0, sizeof it);
    const t2_world_glyph gl[] = {
        {'q', 2, 14, 8, 22},     // centre (5, 18): row 1, col 0, left half (5 < 6)
        {'U', 8, 14, 14, 22},    // centre (11, 18): row 1, col 0, right half
        {'7', 14, 2, 19, 10},    // centre (16, 6): row 0, col 1, left half (16 - 12 = 4 < 6)
        {'x', 3, 15, 7, 21},     // centre (5, 18) again: that slot keeps 'q'
        {'$', 17, 13, 24, 23},   // centre (20, 18): row 1, col 1, right half (8 ≥ 6)
        {' ', 0, 0, 4, 4},       // no ink: never a label
    };
    it.n_glyphs = (int)(sizeof gl / sizeof gl[0]);
    memcpy(it.glyphs, gl, sizeof gl);
    uint8_t lab[2 * 2 * 2];
    int n = t2_tower_patch_labels(&it, 24, 2, lab);
    const uint8_t want[8] = {0, 0, 34, 0, 17, 21, 0, 37};   // [row][col][half]
    T2_CHECK(n == 4 && !memcmp(lab, want, sizeof want), "hand-placed labels: %d labelled, got %d %d %d %d %d %d %d %d", n,
             lab[0], lab[1], lab[2], lab[3], lab[4], lab[5], lab[6], lab[7]);

    // real items: in reading order (row by row, left to right) the labelled slots spell the answer
    // whenever no two glyphs share a slot and the text sits on one patch row (most signs at difficulty 0)
    int spelled = 0, tried = 0;
    uint8_t rgb[96 * 96 * 3], L[8 * 8 * 2];
    for (uint64_t i = 0; i < 100; i++) {
        t2_world_opts o = t2_world_defaults();
        o.difficulty = 0;
        T2_CHECK(t2_world_make(T2_WORLD_TEXTVQA, T2_WORLD_SPLIT_VALID, i, &o, &it, rgb) == 0, "make: %s", t2_last_error());
        int k = t2_tower_patch_labels(&it, 96, 8, L);
        T2_CHECK(k >= 1 && k <= it.n_glyphs, "%s: %d labelled slots for %d glyphs", it.id, k, it.n_glyphs);
        char s[130] = "", want[200];
        int m = 0;
        for (int j = 0; j < 128; j++)
            if (L[j]) s[m++] = L[j] <= 26 ? (char)('a' + L[j] - 1) : L[j] <= 36 ? (char)('0' + L[j] - 27) : '$';
        s[m] = 0;
        int price = strstr(it.question, "price") || strstr(it.question, "cost");
        snprintf(want, sizeof want, "%s%s", price ? "$" : "", it.answer);
        tried++;
        if (k == it.n_glyphs && !strcmp(s, want)) spelled++;
    }
    printf("labels: %d of %d difficulty-0 textvqa items spell their answer in reading order\n", spelled, tried);
    T2_CHECK(spelled >= 60, "only %d of %d items spell their answer from the labels", spelled, tried);
}

// The CSV's columns but the last (images/s, a timing).
static char *csv_without_timing(const char *path) {
    size_t n;
    char *b = t2_read_file(path, &n);
    if (!b) return NULL;
    char *out = t2_malloc(n + 1), *w = out;
    for (char *line = b; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char *comma = NULL;
        for (size_t i = 0; i < len; i++) if (line[i] == ',') comma = line + i;
        size_t keep = comma ? (size_t)(comma - line) : len;
        memcpy(w, line, keep), w += keep, *w++ = '\n';
        line += len + (nl ? 1 : 0);
    }
    *w = 0;
    free(b);
    return out;
}

static double log_loss_at(const char *csv, int row) {   // the loss column of data row ROW (1-based)
    const char *p = csv;
    for (int i = 0; i < row && p; i++) { p = strchr(p, '\n'); if (p) p++; }
    if (!p || !*p) return -1;
    const char *c = strchr(p, ',');
    return c ? atof(c + 1) : -1;
}

static int tensors_equal(const t2_st *a, const t2_st *b, const char *name) {
    const t2_st_tensor *x = t2_st_find(a, name), *y = t2_st_find(b, name);
    return x && y && x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes);
}

static void test_runs(const t2_test_env *e) {
    char model[1024], cmd[4096], *out = NULL;
    snprintf(model, sizeof model, "%s/models/t2-tiny", e->src);
    const char *common = "--steps 40 --batch 4 --every 20 --log-every 5 --valid 8 --threads 1 --lr 2e-3 --warmup 5 -q";
    snprintf(cmd, sizeof cmd, "'%s' tower train --model '%s' --out '%s/a' %s 2>&1", e->t2, model, e->work, common);
    int rc = t2_test_sh(&out, "%s", cmd);
    T2_CHECK(rc == 0, "uninterrupted run failed: %s", out);
    free(out), out = NULL;
    rc = t2_test_sh(&out, "'%s' tower train --model '%s' --out '%s/b' %s --max-steps 15 2>&1 && "
                    "'%s' tower train --model '%s' --out '%s/b' %s --resume 2>&1",
                    e->t2, model, e->work, common, e->t2, model, e->work, common);
    T2_CHECK(rc == 0, "stopped + resumed run failed: %s", out);
    free(out), out = NULL;

    char pa[1200], pb[1200];
    snprintf(pa, sizeof pa, "%s/a/log.csv", e->work);
    snprintf(pb, sizeof pb, "%s/b/log.csv", e->work);
    char *la = csv_without_timing(pa), *lb = csv_without_timing(pb);
    T2_CHECK(la && lb, "log.csv missing: %s", t2_last_error());
    if (la && lb) {
        T2_CHECK(!strcmp(la, lb), "the resumed run's log differs from the uninterrupted one:\n%s\nvs\n%s", la, lb);
        double first = log_loss_at(la, 1), last = log_loss_at(la, 8);
        printf("runs: loss %.4f at step 5, %.4f at step 40\n", first, last);
        T2_CHECK(first > 0 && last > 0 && last < 0.6 * first, "the loss did not fall: %.4f → %.4f", first, last);
    }
    free(lb);
    snprintf(pa, sizeof pa, "%s/a/valid.csv", e->work);
    snprintf(pb, sizeof pb, "%s/b/valid.csv", e->work);
    size_t na, nb;
    char *va = t2_read_file(pa, &na), *vb = t2_read_file(pb, &nb);
    T2_CHECK(va && vb && na == nb && !memcmp(va, vb, na), "valid.csv differs after resuming");
    T2_CHECK(va && strstr(va, "\n20,") && strstr(va, "\n40,"), "valid.csv lacks steps 20 and 40: %s", va ? va : "");
    free(va), free(vb);

    // the exports: the same bytes; the tower changed; projector and language model copied exactly
    snprintf(pa, sizeof pa, "%s/a/model/model.safetensors", e->work);
    snprintf(pb, sizeof pb, "%s/b/model/model.safetensors", e->work);
    char src[1200];
    snprintf(src, sizeof src, "%s/model.safetensors", model);
    t2_st *A = t2_st_open(pa), *Bm = t2_st_open(pb), *S = t2_st_open(src);
    T2_CHECK(A && Bm && S, "open exports: %s", t2_last_error());
    if (A && Bm && S) {
        int n = t2_st_count(A), same_ab = 1, lm_same = 1, proj_same = 1, tower_changed = 0, tower_n = 0;
        for (int i = 0; i < n; i++) {
            const char *name = t2_st_at(A, i)->name;
            same_ab &= tensors_equal(A, Bm, name);
            if (!strncmp(name, "language_model.", 15)) lm_same &= tensors_equal(A, S, name);
            else if (!strncmp(name, "multi_modal_projector.", 22)) proj_same &= tensors_equal(A, S, name);
            else if (strstr(name, "encoder.layers.0.self_attn.q_proj.weight") || strstr(name, "patch_embedding"))
                tower_n++, tower_changed += !tensors_equal(A, S, name);
        }
        T2_CHECK(same_ab, "the resumed run exported other weights than the uninterrupted one");
        T2_CHECK(lm_same, "the language model's tensors changed");
        T2_CHECK(proj_same, "the projector's tensors changed");
        T2_CHECK(tower_n == 2 && tower_changed == 2, "the tower did not change (%d of %d)", tower_changed, tower_n);
    }
    t2_st_close(A), t2_st_close(Bm), t2_st_close(S);
    rc = t2_test_sh(&out, "'%s' ask --model '%s/a/model' --image '%s/samples/world-scene-test-2.png' -n 4 "
                    "'What color is the big shape?' 2>&1", e->t2, e->work, e->src);
    T2_CHECK(rc == 0 && out && *out, "the export does not load / answer: %s", out ? out : "");
    free(out), out = NULL;

    // --on rows: the heads read the projected, normalised rows; the tower learns through the projector,
    // which (like the language model) must still come out byte-identical
    rc = t2_test_sh(&out, "'%s' tower train --model '%s' --out '%s/r' %s --on rows 2>&1", e->t2, model, e->work, common);
    T2_CHECK(rc == 0, "--on rows run failed: %s", out);
    free(out), out = NULL;
    snprintf(pa, sizeof pa, "%s/r/log.csv", e->work);
    char *lr = csv_without_timing(pa);
    if (lr) {
        double first = log_loss_at(lr, 1), last = log_loss_at(lr, 8);
        printf("runs: --on rows: loss %.4f at step 5, %.4f at step 40\n", first, last);
        T2_CHECK(first > 0 && last > 0 && last < 0.6 * first, "--on rows: the loss did not fall: %.4f → %.4f", first, last);
        T2_CHECK(strcmp(lr, la ? la : ""), "--on rows gave the features run's log");
    }
    free(lr);
    snprintf(pa, sizeof pa, "%s/r/model/model.safetensors", e->work);
    A = t2_st_open(pa), S = t2_st_open(src);
    T2_CHECK(A && S, "open the rows export: %s", t2_last_error());
    if (A && S) {
        int same = 1, changed = 0;
        for (int i = 0; i < t2_st_count(A); i++) {
            const char *name = t2_st_at(A, i)->name;
            if (!strncmp(name, "language_model.", 15) || !strncmp(name, "multi_modal_projector.", 22)) same &= tensors_equal(A, S, name);
            else if (strstr(name, "patch_embedding")) changed += !tensors_equal(A, S, name);
        }
        T2_CHECK(same, "--on rows changed the projector or the language model");
        T2_CHECK(changed == 1, "--on rows did not change the tower");
    }
    t2_st_close(A), t2_st_close(S);

    // --probe --projector heads: the tower frozen (its tensors as the input's), the heads trained, and the
    // exported projector = [char head (76 rows); pixel head (48); its negation (48); the input's other
    // rows], linear_2 the identity
    rc = t2_test_sh(&out, "'%s' tower train --model '%s' --out '%s/p' %s --probe --projector heads 2>&1", e->t2, model,
                    e->work, common);
    T2_CHECK(rc == 0, "--probe --projector heads run failed: %s", out);
    free(out), out = NULL;
    snprintf(pa, sizeof pa, "%s/p/model/model.safetensors", e->work);
    A = t2_st_open(pa), S = t2_st_open(src);
    T2_CHECK(A && S, "open the probe export: %s", t2_last_error());
    if (A && S) {
        int tower_same = 1, lm_same = 1;
        for (int i = 0; i < t2_st_count(A); i++) {
            const char *name = t2_st_at(A, i)->name;
            if (!strncmp(name, "language_model.", 15)) lm_same &= tensors_equal(A, S, name);
            else if (strncmp(name, "multi_modal_projector.", 22)) tower_same &= tensors_equal(A, S, name);
        }
        T2_CHECK(tower_same && lm_same, "--probe changed the tower (%d) or the language model (%d)", !tower_same, !lm_same);
        const t2_st_tensor *w1 = t2_st_find(A, "multi_modal_projector.linear_1.weight"), *w2 = t2_st_find(A, "multi_modal_projector.linear_2.weight");
        const t2_st_tensor *b2 = t2_st_find(A, "multi_modal_projector.linear_2.bias"), *s1 = t2_st_find(S, "multi_modal_projector.linear_1.weight");
        int ok = w1 && w2 && b2 && s1 && w1->ndim == 2 && w2->ndim == 2 && w1->dtype == T2_DTYPE_F16 && w2->dtype == T2_DTYPE_F16;
        T2_CHECK(ok, "projector tensors missing or not F16 matrices");
        if (ok) {
            int H = (int)w1->shape[0], F = (int)w1->shape[1], id = 1, neg = 1, rest = 1, zero_b = 1;
            const uint16_t *a1 = w1->data, *a2 = w2->data, *sb = s1->data, *bb = b2->data;
            for (int i = 0; i < H; i++)
                for (int j = 0; j < H; j++) id &= t2_f16_to_f32(a2[(size_t)i * H + j]) == (i == j ? 1.0f : 0.0f);
            for (int i = 0; i < H; i++) zero_b &= t2_f16_to_f32(bb[i]) == 0;
            for (int i = 0; i < 48; i++)
                for (int j = 0; j < F; j++)
                    neg &= t2_f16_to_f32(a1[(size_t)(76 + i) * F + j]) == -t2_f16_to_f32(a1[(size_t)(124 + i) * F + j]);
            for (size_t k = (size_t)172 * F; k < (size_t)H * F; k++) rest &= a1[k] == sb[k];
            int none_zero = 1, chars_set = 0;   // the two "none" rows are zero; the character rows are not
            for (int j = 0; j < F; j++) {
                none_zero &= a1[j] == 0 && a1[(size_t)38 * F + j] == 0;
                chars_set += a1[(size_t)1 * F + j] != 0;
            }
            T2_CHECK(none_zero && chars_set > F / 2, "linear_1: the 'none' rows are not zero or the 'a' row is empty");
            T2_CHECK(H == 192 && id && zero_b, "linear_2 is not the identity with a zero bias");
            T2_CHECK(neg, "rows 124..171 of linear_1 are not the negated pixel head");
            T2_CHECK(rest, "rows 172.. of linear_1 are not the input model's");
        }
    }
    t2_st_close(A), t2_st_close(S);

    // bad input
    struct { const char *args, *want; } bad[] = {
        {"--out '%s/a'", "pass --resume"},
        {"--out '%s/a' --resume --lr 1e-3", "other settings"},
        {"--out '%s/c' --families textvqa,signsum", "held out"},
        {"--out '%s/c' --families textvqa:2,nosuch", "unknown world family 'nosuch'"},
        {"--out '%s/c' --families math", "'math' has no images"},
        {"--out '%s/c' --families textvqa:-1", "not a positive number"},
        {"--out '%s/c' --resume", "no checkpoint"},
        {"--out '%s/c' --on pixels", "features or rows"},
        {"--out '%s/c' --on rows --projector heads", "needs --on features"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char extra[1400];
        snprintf(extra, sizeof extra, bad[i].args, e->work);
        rc = t2_test_sh(&out, "'%s' tower train --model '%s' %s %s 2>&1", e->t2, model, common, extra);
        T2_CHECK(rc != 0 && out && strstr(out, bad[i].want), "'%s': exit %d, wanted '%s' in: %s", extra, rc, bad[i].want,
                 out ? out : "");
        free(out), out = NULL;
    }
    rc = t2_test_sh(&out, "'%s' tower train --model '%s/nosuch' --out '%s/c' 2>&1", e->t2, e->work, e->work);
    T2_CHECK(rc != 0 && out && strstr(out, "nosuch/config.json"), "missing model: exit %d: %s", rc, out ? out : "");
    free(out), out = NULL;
    rc = t2_test_sh(&out, "'%s' tower train --help", e->t2);
    T2_CHECK(rc == 0 && out && strstr(out, "--char-weight"), "--help");
    free(out);
    free(la);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    test_classes();
    test_labels();
    test_runs(&e);
    return t2_test_done();
}
