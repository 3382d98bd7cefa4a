// test_image.c — vision/image.c against PIL (tests/ref/image_ref.py): every fixture (PNG of each
// colour type and 16-bit, JPEG baseline / progressive / grey with each EXIF orientation, BMP, GIF
// first frame, TGA) decodes to PIL's pixels — exactly for lossless formats, within a few levels for
// JPEG (the largest gap is printed); the PNG writer's output reads back in PIL unchanged; corrupt,
// truncated, empty and oversized files, JPEGs crafted against stb 2.27's known overruns and a PNG
// deflate bomb are refused with the file's name in the message; and a few hundred random mutations
// of small fixtures never crash (run it under ASan + UBSan too).
// Not covered here: preprocessing for a model (test_preprocess).
#include "testutil.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/util.h"
#include "vision/image.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_PER_SEED 60
#define FUZZ_CAP ((size_t)1 << 20)

static const t2_test_env *env;

static void path_in(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", env->work, name); }

// Every fixture of fixtures.txt ("NAME W H TOL") decodes to NAME.rgb within TOL per channel.
static void check_fixtures(void) {
    char list[4096], line[512];
    path_in(list, sizeof list, "fixtures.txt");
    FILE *f = fopen(list, "r");
    T2_CHECK(f != NULL, "cannot open %s", list);
    if (!f) return;
    int n = 0, jpeg_worst = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256];
        int w, h, tol;
        if (sscanf(line, "%255s %d %d %d", name, &w, &h, &tol) != 4) continue;
        char p[4096], rp[4200];
        path_in(p, sizeof p, name);
        snprintf(rp, sizeof rp, "%s.rgb", p);
        size_t rn = 0;
        uint8_t *ref = (uint8_t *)t2_read_file(rp, &rn);
        T2_CHECK(ref && rn == (size_t)w * h * 3, "%s: bad reference file", rp);
        t2_image im;
        int rc = t2_image_load(p, &im, 0);
        T2_CHECK(rc == 0, "%s: %s", name, t2_last_error());
        if (rc == 0 && ref) {
            T2_CHECK(im.w == w && im.h == h, "%s: decoded %dx%d, PIL %dx%d", name, im.w, im.h, w, h);
            if (im.w == w && im.h == h) {
                int worst = 0;
                double sum = 0;
                for (size_t i = 0; i < rn; i++) {
                    int d = abs((int)im.rgb[i] - (int)ref[i]);
                    sum += d;
                    if (d > worst) worst = d;
                }
                printf("%s %-16s %3dx%-3d max abs diff %3d (tol %2d), mean %.3f\n", worst <= tol ? "ok  " : "FAIL",
                       name, w, h, worst, tol, sum / (double)rn);
                T2_CHECK(worst <= tol, "%s: max diff %d over tol %d", name, worst, tol);
                // lossy: the mean gap must stay small too (a wrong orientation or colour transform
                // would show as tens of levels on average)
                if (tol > 0) T2_CHECK(sum / (double)rn < 1.5, "%s: mean diff %.3f", name, sum / (double)rn);
                if (tol > 0 && worst > jpeg_worst) jpeg_worst = worst;
            }
        }
        t2_image_free(&im);
        free(ref);
        n++;
    }
    fclose(f);
    printf("fixtures: %d checked; largest JPEG gap to PIL/libjpeg: %d levels\n", n, jpeg_worst);
    T2_CHECK(n >= 40, "only %d fixtures listed", n);
}

// Load must fail with a message naming the file (and containing WANT unless NULL).
static void expect_fail(const char *path, size_t max_pixels, const char *want) {
    t2_error_clear();
    t2_image im;
    int rc = t2_image_load(path, &im, max_pixels);
    const char *err = t2_last_error();
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    T2_CHECK(rc == -1, "%s: loaded (%dx%d) although it should be refused", base, im.w, im.h);
    T2_CHECK(im.rgb == NULL && im.w == 0 && im.h == 0, "%s: image not left empty on failure", base);
    if (rc == 0) { t2_image_free(&im); return; }
    printf("  refused %-16s %s\n", base, err);
    T2_CHECK(strstr(err, base) != NULL, "message '%s' does not name %s", err, base);
    if (want) T2_CHECK(strstr(err, want) != NULL, "message '%s' lacks '%s'", err, want);
}

static void check_corrupt(void) {
    char list[4096], line[512];
    path_in(list, sizeof list, "corrupt.txt");
    FILE *f = fopen(list, "r");
    T2_CHECK(f != NULL, "cannot open %s", list);
    if (!f) return;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256], want[256];
        if (sscanf(line, "%255s %255s", name, want) != 2) continue;
        char p[4096];
        path_in(p, sizeof p, name);
        expect_fail(p, 0, strcmp(want, "-") ? want : NULL);
        n++;
    }
    fclose(f);
    T2_CHECK(n >= 15, "only %d corrupt files listed", n);
    char p[4096];
    path_in(p, sizeof p, "no-such-file.png");
    expect_fail(p, 0, NULL);
}

// The cap counts pixels and is checked before decoding.
static void check_cap(void) {
    char p[4096];
    path_in(p, sizeof p, "rgb.png");               // 67 × 45 = 3015 pixels
    expect_fail(p, 3014, "67x45");
    expect_fail(p, 3014, "3014");
    path_in(p, sizeof p, "prog_big.jpg");          // 203 × 131
    expect_fail(p, 10000, "203x131");
    path_in(p, sizeof p, "rgb.png");
    t2_image im;
    T2_CHECK(t2_image_load(p, &im, 3015) == 0, "exactly at the cap: %s", t2_last_error());
    t2_image_free(&im);
    T2_CHECK(im.rgb == NULL, "t2_image_free leaves a pointer");
    t2_image_free(&im);                            // twice is harmless
}

// From memory: the NAME is what errors mention.
static void check_mem(void) {
    char p[4096];
    path_in(p, sizeof p, "rgb.png");
    size_t n = 0;
    char *data = t2_read_file(p, &n);
    T2_CHECK(data != NULL, "%s", t2_last_error());
    if (!data) return;
    t2_image im;
    T2_CHECK(t2_image_load_mem(data, n, "request image 2", &im, 0) == 0 && im.w == 67 && im.h == 45,
             "from memory: %s", t2_last_error());
    t2_image_free(&im);
    memset(data + 16, 0x5a, 8);                    // break IHDR's size fields and its CRC
    T2_CHECK(t2_image_load_mem(data, n, "request image 2", &im, 0) == -1, "corrupt IHDR loaded");
    T2_CHECK(strstr(t2_last_error(), "request image 2") != NULL, "message: %s", t2_last_error());
    T2_CHECK(t2_image_load_mem(data, 0, "request image 3", &im, 0) == -1 &&
             strstr(t2_last_error(), "request image 3") != NULL, "empty buffer: %s", t2_last_error());
    free(data);
}

// Writer: PIL reads our PNG exactly; we read it back; the write is atomic and errors name PATH.
static void check_write(void) {
    t2_image im = {53, 31, t2_malloc(53 * 31 * 3)};
    t2_rng r;
    t2_rng_seed(&r, 42);
    for (size_t i = 0; i < 53 * 31 * 3; i++) im.rgb[i] = (uint8_t)(i % 3 == 0 ? i / 7 : t2_rng_u64(&r));
    char png[4096], raw[4096];
    path_in(png, sizeof png, "written.png");
    path_in(raw, sizeof raw, "written.rgb");
    T2_CHECK(t2_image_write_png(png, &im) == 0, "write: %s", t2_last_error());
    FILE *f = fopen(raw, "wb");
    fwrite(im.rgb, 1, 53 * 31 * 3, f);
    fclose(f);
    fflush(stdout);
    T2_CHECK(t2_test_python(env, "image_ref.py", "check '%s' '%s' 53 31", png, raw) == 0, "PIL disagrees with %s", png);
    t2_image back;
    T2_CHECK(t2_image_load(png, &back, 0) == 0, "read back: %s", t2_last_error());
    if (back.rgb) T2_CHECK(back.w == 53 && back.h == 31 && memcmp(back.rgb, im.rgb, 53 * 31 * 3) == 0, "round trip differs");
    t2_image_free(&back);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", png, (int)getpid());
    T2_CHECK(access(tmp, F_OK) != 0, "temporary file %s left behind", tmp);
    T2_CHECK(t2_image_write_png(png, &im) == 0, "overwrite: %s", t2_last_error());   // replaces in place

    char bad[4096];
    path_in(bad, sizeof bad, "no-such-dir/out.png");
    T2_CHECK(t2_image_write_png(bad, &im) == -1 && strstr(t2_last_error(), bad), "into a missing dir: %s", t2_last_error());
    path_in(bad, sizeof bad, "a-dir");                                               // rename onto a directory fails
    mkdir(bad, 0755);
    char inside[4096];
    path_in(inside, sizeof inside, "a-dir/keep");
    f = fopen(inside, "w");
    if (f) fclose(f);
    T2_CHECK(t2_image_write_png(bad, &im) == -1 && strstr(t2_last_error(), bad), "onto a directory: %s", t2_last_error());
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", bad, (int)getpid());
    T2_CHECK(access(tmp, F_OK) != 0, "temporary file %s left behind after a failure", tmp);
    t2_image empty = {0, 0, NULL};
    T2_CHECK(t2_image_write_png(png, &empty) == -1 && strstr(t2_last_error(), png), "empty image: %s", t2_last_error());
    printf("  write errors: %s\n", t2_last_error());
    free(im.rgb);
}

// Random mutations of small fixtures: decode or refuse, never crash; refusals name the buffer.
static void check_fuzz(void) {
    char list[4096], line[512];
    path_in(list, sizeof list, "fuzz.txt");
    FILE *f = fopen(list, "r");
    T2_CHECK(f != NULL, "cannot open %s", list);
    if (!f) return;
    t2_rng r;
    t2_rng_seed(&r, 2024);
    int decoded = 0, refused = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256];
        if (sscanf(line, "%255s", name) != 1) continue;
        char p[4096];
        path_in(p, sizeof p, name);
        size_t n = 0;
        uint8_t *orig = (uint8_t *)t2_read_file(p, &n);
        T2_CHECK(orig != NULL && n > 16, "%s", t2_last_error());
        if (!orig) continue;
        uint8_t *buf = t2_malloc(n);
        for (int it = 0; it < FUZZ_PER_SEED; it++) {
            memcpy(buf, orig, n);
            size_t len = n;
            int edits = 1 + (int)t2_rng_below(&r, 6);
            for (int k = 0; k < edits; k++) {
                // half the edits land in the first 64 bytes, where the headers are
                size_t at = t2_rng_below(&r, 2) ? t2_rng_below(&r, len < 64 ? len : 64) : t2_rng_below(&r, len);
                switch (t2_rng_below(&r, 5)) {
                case 0: buf[at] = (uint8_t)t2_rng_u64(&r); break;
                case 1: buf[at] ^= (uint8_t)(1u << t2_rng_below(&r, 8)); break;
                case 2: buf[at] = (uint8_t)(t2_rng_below(&r, 2) ? 0xFF : 0x00); break;
                case 3: if (at > 0) len = at; break;                         // truncate
                case 4: {                                                    // copy a block over
                    size_t from = t2_rng_below(&r, len), m = 1 + t2_rng_below(&r, 16);
                    if (from + m > len) m = len - from;
                    if (at + m > len) m = len - at;
                    memmove(buf + at, buf + from, m);
                    break;
                }
                }
            }
            char tag[300];
            snprintf(tag, sizeof tag, "fuzz %s #%d", name, it);
            t2_image im;
            t2_error_clear();
            int rc = t2_image_load_mem(buf, len, tag, &im, FUZZ_CAP);
            if (rc == 0) {
                decoded++;
                if (im.w <= 0 || im.h <= 0 || (size_t)im.w * im.h > FUZZ_CAP || !im.rgb) bad++;
                else {
                    unsigned s = 0;   // touch every byte, so ASan sees a short buffer
                    for (size_t i = 0; i < (size_t)im.w * im.h * 3; i++) s += im.rgb[i];
                    (void)s;
                }
                t2_image_free(&im);
            } else {
                refused++;
                if (rc != -1 || im.rgb || !strstr(t2_last_error(), tag)) {
                    bad++;
                    printf("FAIL %s: rc %d, message '%s'\n", tag, rc, t2_last_error());
                }
            }
        }
        free(buf);
        free(orig);
    }
    fclose(f);
    printf("fuzz: %d mutated files, %d decoded, %d refused, %d misbehaved\n", decoded + refused, decoded, refused, bad);
    T2_CHECK(bad == 0, "%d mutated files misbehaved", bad);
    T2_CHECK(decoded > 0 && refused > 0, "fuzz exercised only one outcome");
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    env = &e;
    int rc = t2_test_python(&e, "image_ref.py", "fixtures '%s'", e.work);
    T2_CHECK(rc == 0, "image_ref.py fixtures failed (%d)", rc);
    if (rc != 0) return t2_test_done();
    check_fixtures();
    check_corrupt();
    check_cap();
    check_mem();
    check_write();
    check_fuzz();
    return t2_test_done();
}
