// test_safetensors.c — core/safetensors.c against itself (writer → reader round trip), against an
// independent numpy writer/reader (tests/ref/st_write.py: a single file and a 2-shard index), and
// against hand-crafted malformed files: each must be refused with a message naming the file and the
// tensor, and truncated or corrupted files must never crash (run it under ASan too).
// Not covered here: the model loaders' expectations of names and shapes.
#include "testutil.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/util.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const t2_test_env *env;

static void path_in(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", env->work, name); }

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) { fprintf(stderr, "cannot write %s\n", path); exit(2); }
    fclose(f);
}

// A file whose header says N (little-endian u64) followed by LEN bytes of BODY.
static void craft_raw(const char *path, uint64_t n, const void *body, size_t len) {
    unsigned char *buf = t2_malloc(8 + len);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
    if (len) memcpy(buf + 8, body, len);
    write_bytes(path, buf, 8 + len);
    free(buf);
}

// A well-framed file: HEADER (its exact length) then DATALEN bytes of data (0, 1, 2, ...).
static void craft(const char *path, const char *header, size_t datalen) {
    size_t hl = strlen(header);
    char *body = t2_malloc(hl + datalen);
    memcpy(body, header, hl);
    for (size_t i = 0; i < datalen; i++) body[hl + i] = (char)i;
    craft_raw(path, hl, body, hl + datalen);
    free(body);
}

static const char *base_name(const char *p) { const char *s = strrchr(p, '/'); return s ? s + 1 : p; }

// t2_st_open(PATH) must fail, and the message must name NAMEFILE (default: PATH) and contain A and B.
static void expect_fail_in(const char *path, const char *namefile, const char *a, const char *b) {
    t2_error_clear();
    t2_st *st = t2_st_open(path);
    T2_CHECK(st == NULL, "%s: opened although malformed", path);
    if (st) { t2_st_close(st); return; }
    const char *err = t2_last_error();
    const char *file = base_name(namefile ? namefile : path);
    printf("  refused %-32s %s\n", base_name(path), err);
    T2_CHECK(strstr(err, file) != NULL, "message '%s' does not name file %s", err, file);
    if (a) T2_CHECK(strstr(err, a) != NULL, "message '%s' lacks '%s'", err, a);
    if (b) T2_CHECK(strstr(err, b) != NULL, "message '%s' lacks '%s'", err, b);
}
static void expect_fail(const char *path, const char *a, const char *b) { expect_fail_in(path, NULL, a, b); }

// Element I of T as a double, whatever its dtype (the data may be unaligned: memcpy).
static double elem(const t2_st_tensor *t, int64_t i) {
    const unsigned char *p = (const unsigned char *)t->data + (size_t)i * t2_dtype_size(t->dtype);
    switch (t->dtype) {
    case T2_DTYPE_F32: { float v; memcpy(&v, p, 4); return v; }
    case T2_DTYPE_F64: { double v; memcpy(&v, p, 8); return v; }
    case T2_DTYPE_F16: { uint16_t v; memcpy(&v, p, 2); return t2_f16_to_f32(v); }
    case T2_DTYPE_BF16: { uint16_t v; memcpy(&v, p, 2); return t2_bf16_to_f32(v); }
    case T2_DTYPE_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case T2_DTYPE_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case T2_DTYPE_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case T2_DTYPE_I8: return (int8_t)*p;
    case T2_DTYPE_U8: return *p;
    case T2_DTYPE_BOOL: return *p != 0;
    default: return NAN;
    }
}

// Compare tensor T with a JSON record {"dtype", "shape", "values"} (exact: both sides hold the same
// stored values).
static void check_against(const t2_st_tensor *t, const cJSON *rec, const char *what) {
    const char *dt = t2_json_str(rec, "dtype", "?");
    T2_CHECK(strcmp(t2_dtype_name(t->dtype), dt) == 0, "%s %s: dtype %s, expected %s", what, t->name,
             t2_dtype_name(t->dtype), dt);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(rec, "shape");
    int ok = cJSON_GetArraySize(shape) == t->ndim;
    for (int d = 0; ok && d < t->ndim; d++) ok = cJSON_GetArrayItem(shape, d)->valuedouble == (double)t->shape[d];
    T2_CHECK(ok, "%s %s: shape differs", what, t->name);
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(rec, "values");
    T2_CHECK(cJSON_GetArraySize(vals) == t->numel, "%s %s: %d values expected, tensor has %lld", what, t->name,
             cJSON_GetArraySize(vals), (long long)t->numel);
    if (cJSON_GetArraySize(vals) != t->numel) return;
    double worst = 0;
    int64_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vals) {
        double d = fabs(elem(t, i++) - v->valuedouble);
        if (!(d <= worst)) worst = d;
    }
    printf("%s %s %s: %lld values, max abs diff %g\n", worst == 0 ? "ok  " : "FAIL", what, t->name,
           (long long)t->numel, worst);
    T2_CHECK(worst == 0, "%s %s: values differ (max abs diff %g)", what, t->name, worst);
}

// ---------------------------------------------------------------------------------------------

static void test_round_trip(void) {
    printf("-- writer -> reader round trip\n");
    float f32[12];
    for (int i = 0; i < 12; i++) f32[i] = (float)i * 0.5f - 3.0f + 1e-3f * (float)i;
    uint16_t f16[5], bf16[8];
    for (int i = 0; i < 5; i++) f16[i] = t2_f32_to_f16((float)i * 1.7f - 4.1f);
    for (int i = 0; i < 8; i++) bf16[i] = t2_f32_to_bf16((float)i * -13.3f + 0.7f);
    int32_t i32[6] = {0, -1, 1, 2147483647, -2147483647 - 1, 4242};
    float scalar = 7.25f;
    int64_t s_f32[2] = {3, 4}, s_f16[1] = {5}, s_bf16[3] = {2, 2, 2}, s_i32[1] = {6}, s_empty[2] = {0, 4};

    t2_st_writer *w = t2_st_writer_new();
    // Added in an order unlike name order: the file keeps this order, the reader sorts by name.
    T2_CHECK(t2_st_writer_add(w, "w.f32", T2_DTYPE_F32, 2, s_f32, f32) == 0, "add: %s", t2_last_error());
    T2_CHECK(t2_st_writer_add(w, "b.f16", T2_DTYPE_F16, 1, s_f16, f16) == 0, "add: %s", t2_last_error());
    T2_CHECK(t2_st_writer_add(w, "z.bf16", T2_DTYPE_BF16, 3, s_bf16, bf16) == 0, "add: %s", t2_last_error());
    T2_CHECK(t2_st_writer_add(w, "a.i32", T2_DTYPE_I32, 1, s_i32, i32) == 0, "add: %s", t2_last_error());
    T2_CHECK(t2_st_writer_add(w, "m.scalar", T2_DTYPE_F32, 0, NULL, &scalar) == 0, "add: %s", t2_last_error());
    T2_CHECK(t2_st_writer_add(w, "c.empty", T2_DTYPE_F32, 2, s_empty, NULL) == 0, "add: %s", t2_last_error());
    T2_CHECK(t2_st_writer_add(w, "w.f32", T2_DTYPE_F32, 2, s_f32, f32) == -1, "duplicate add accepted");
    T2_CHECK(strstr(t2_last_error(), "w.f32") != NULL, "duplicate message '%s' lacks the name", t2_last_error());
    int64_t neg[1] = {-3};
    T2_CHECK(t2_st_writer_add(w, "neg", T2_DTYPE_F32, 1, neg, f32) == -1, "negative shape accepted");
    T2_CHECK(strstr(t2_last_error(), "neg") != NULL, "message '%s' lacks the name", t2_last_error());
    const char *odd = "quote \" backslash \\ newline \n unicode \xe2\x9c\x93";
    T2_CHECK(t2_st_writer_meta(w, "format", "t2") == 0, "meta");
    T2_CHECK(t2_st_writer_meta(w, "version", "0") == 0, "meta");
    T2_CHECK(t2_st_writer_meta(w, "version", "1") == 0, "meta replace");
    T2_CHECK(t2_st_writer_meta(w, "odd", odd) == 0, "meta");
    // the caller's buffers may change after add: the writer copied them
    float keep = f32[0];
    f32[0] = 999.0f;

    char path[4096], tmp[4200];
    path_in(path, sizeof path, "rt.safetensors");
    T2_CHECK(t2_st_writer_write(w, path) == 0, "write: %s", t2_last_error());
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    T2_CHECK(access(tmp, F_OK) != 0, "temporary file %s left behind", tmp);
    f32[0] = keep;

    char bad[4096];
    path_in(bad, sizeof bad, "no/such/dir/out.safetensors");
    T2_CHECK(t2_st_writer_write(w, bad) == -1, "write into a missing directory succeeded");
    T2_CHECK(strstr(t2_last_error(), "out.safetensors") != NULL, "message '%s' lacks the path", t2_last_error());
    t2_st_writer_free(w);

    t2_st *st = t2_st_open(path);
    T2_CHECK(st != NULL, "open: %s", t2_last_error());
    if (!st) return;
    T2_CHECK(t2_st_count(st) == 6, "count %d, expected 6", t2_st_count(st));
    for (int i = 1; i < t2_st_count(st); i++)
        T2_CHECK(strcmp(t2_st_at(st, i - 1)->name, t2_st_at(st, i)->name) < 0, "t2_st_at not sorted at %d", i);
    T2_CHECK(strcmp(t2_st_at(st, 0)->name, "a.i32") == 0, "first is %s", t2_st_at(st, 0)->name);

    struct { const char *name; t2_dtype dt; int ndim; const int64_t *shape; const void *data; size_t nbytes; } want[] = {
        {"w.f32", T2_DTYPE_F32, 2, s_f32, f32, sizeof f32},    {"b.f16", T2_DTYPE_F16, 1, s_f16, f16, sizeof f16},
        {"z.bf16", T2_DTYPE_BF16, 3, s_bf16, bf16, sizeof bf16}, {"a.i32", T2_DTYPE_I32, 1, s_i32, i32, sizeof i32},
        {"m.scalar", T2_DTYPE_F32, 0, NULL, &scalar, 4},       {"c.empty", T2_DTYPE_F32, 2, s_empty, NULL, 0},
    };
    const unsigned char *prev_end = NULL;
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        const t2_st_tensor *t = t2_st_get(st, want[k].name);
        T2_CHECK(t != NULL, "get %s: %s", want[k].name, t2_last_error());
        if (!t) continue;
        T2_CHECK(t->dtype == want[k].dt && t->ndim == want[k].ndim, "%s: dtype/ndim", t->name);
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            T2_CHECK(t->shape[d] == want[k].shape[d], "%s: shape[%d]", t->name, d);
            numel *= want[k].shape[d];
        }
        T2_CHECK(t->numel == numel && t->nbytes == want[k].nbytes, "%s: numel %lld nbytes %zu", t->name,
                 (long long)t->numel, t->nbytes);
        T2_CHECK(t->nbytes == 0 || memcmp(t->data, want[k].data, t->nbytes) == 0, "%s: data differs", t->name);
        T2_CHECK(strstr(t->file, "rt.safetensors") != NULL, "%s: file %s", t->name, t->file);
        // laid out contiguously, in the order added
        if (prev_end) T2_CHECK((const unsigned char *)t->data == prev_end, "%s: not right after the previous tensor", t->name);
        prev_end = (const unsigned char *)t->data + t->nbytes;
    }
    T2_CHECK(t2_st_metadata(st, "format") && strcmp(t2_st_metadata(st, "format"), "t2") == 0, "metadata format");
    T2_CHECK(t2_st_metadata(st, "version") && strcmp(t2_st_metadata(st, "version"), "1") == 0, "metadata version");
    T2_CHECK(t2_st_metadata(st, "odd") && strcmp(t2_st_metadata(st, "odd"), odd) == 0, "metadata with escapes");
    T2_CHECK(t2_st_metadata(st, "absent") == NULL, "absent metadata key");

    // header framing: length a multiple of 8, padded with spaces, data right after it
    size_t len;
    char *raw = t2_read_file(path, &len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)raw[i];
    T2_CHECK(n % 8 == 0, "header length %llu not a multiple of 8", (unsigned long long)n);
    T2_CHECK(raw[8] == '{' && (raw[8 + n - 1] == ' ' || raw[8 + n - 1] == '}'), "header framing");
    T2_CHECK(len == 8 + n + sizeof f32 + sizeof f16 + sizeof bf16 + sizeof i32 + 4, "file size %zu", len);
    free(raw);

    // lookups
    T2_CHECK(t2_st_find(st, "nope.weight") == NULL, "find of an absent tensor");
    t2_error_clear();
    T2_CHECK(t2_st_get(st, "nope.weight") == NULL, "get of an absent tensor");
    T2_CHECK(strstr(t2_last_error(), "nope.weight") && strstr(t2_last_error(), "rt.safetensors"),
             "get message '%s' must name the tensor and file", t2_last_error());
    int64_t exp1[2] = {3, 5}, exp2[2] = {-1, 4}, exp3[3] = {3, 4, 1};
    T2_CHECK(t2_st_get_shape(st, "w.f32", 2, exp1) == NULL, "shape mismatch accepted");
    const char *e = t2_last_error();
    printf("  shape mismatch: %s\n", e);
    T2_CHECK(strstr(e, "w.f32") && strstr(e, "[3, 4]") && strstr(e, "[3, 5]"),
             "shape message '%s' must name tensor, actual and expected shape", e);
    T2_CHECK(t2_st_get_shape(st, "w.f32", 2, exp2) != NULL, "wildcard shape: %s", t2_last_error());
    T2_CHECK(t2_st_get_shape(st, "w.f32", 3, exp3) == NULL, "ndim mismatch accepted");
    T2_CHECK(strstr(t2_last_error(), "w.f32") != NULL, "ndim message '%s'", t2_last_error());
    T2_CHECK(t2_st_get_shape(st, "gone", 2, exp1) == NULL && strstr(t2_last_error(), "gone"), "get_shape absent");

    // Rewriting the file replaces it atomically: the old mapping keeps the old bytes.
    const t2_st_tensor *old = t2_st_get(st, "w.f32");
    w = t2_st_writer_new();
    float other[12] = {0};
    t2_st_writer_add(w, "w.f32", T2_DTYPE_F32, 2, s_f32, other);
    T2_CHECK(t2_st_writer_write(w, path) == 0, "rewrite: %s", t2_last_error());
    t2_st_writer_free(w);
    T2_CHECK(memcmp(old->data, f32, sizeof f32) == 0, "old mapping changed by the rewrite");
    t2_st *st2 = t2_st_open(path);
    T2_CHECK(st2 && t2_st_count(st2) == 1 && t2_st_metadata(st2, "format") == NULL, "rewritten file");
    t2_st_close(st2);

    // An empty writer still makes a valid file.
    w = t2_st_writer_new();
    char empty_path[4096];
    path_in(empty_path, sizeof empty_path, "empty.safetensors");
    T2_CHECK(t2_st_writer_write(w, empty_path) == 0, "empty write: %s", t2_last_error());
    t2_st_writer_free(w);
    st2 = t2_st_open(empty_path);
    T2_CHECK(st2 && t2_st_count(st2) == 0, "empty file: %s", t2_last_error());
    t2_st_close(st2);
    t2_st_close(st);
}

// The C writer's file read back by numpy (st_write.py read), values compared.
// A header of odd length (valid: the format does not pad) leaves the tensors misaligned in the
// mapping; converting them reads each element safely (UBSan checks the loads) and gets the values.
static void test_odd_header(void) {
    char path[1024];
    path_in(path, sizeof path, "odd.safetensors");
    const char *h = "{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[6,10]}} ";
    size_t hl = strlen(h);
    if (hl % 2 == 0) { fprintf(stderr, "test_odd_header: the header must be of odd length\n"); exit(2); }
    unsigned char body[256];
    memcpy(body, h, hl);
    const uint16_t a[3] = {0x3c00, 0xc000, 0x3800};   // 1, -2, 0.5
    const float b = 3.25f;
    memcpy(body + hl, a, 6);
    memcpy(body + hl + 6, &b, 4);
    craft_raw(path, hl, body, hl + 10);
    t2_st *st = t2_st_open(path);
    T2_CHECK(st != NULL, "odd header: %s", t2_last_error());
    if (!st) return;
    const t2_st_tensor *ta = t2_st_get(st, "a"), *tb = t2_st_get(st, "b");
    T2_CHECK(ta && tb && (uintptr_t)ta->data % 2 == 1, "odd header: the F16 tensor is expected at an odd address");
    if (ta && tb) {
        float fa[3], fb;
        t2_to_f32(fa, ta->data, ta->dtype, 3);
        t2_to_f32(&fb, tb->data, tb->dtype, 1);
        T2_CHECK(fa[0] == 1 && fa[1] == -2 && fa[2] == 0.5f && fb == 3.25f, "odd header values %g %g %g %g", fa[0], fa[1], fa[2], fb);
    }
    t2_st_close(st);
}

static void test_python_reads_ours(void) {
    printf("-- numpy reads the C writer's file\n");
    float f32[6] = {1.5f, -2.25f, 3e-8f, 1e30f, -0.0f, 42.0f};
    uint16_t bf16[3] = {t2_f32_to_bf16(3.14159f), t2_f32_to_bf16(-1e-3f), t2_f32_to_bf16(65504.0f)};
    uint16_t f16[3] = {t2_f32_to_f16(3.14159f), t2_f32_to_f16(-1e-3f), t2_f32_to_f16(65504.0f)};
    int32_t i32[3] = {-7, 0, 1 << 30};
    int64_t s6[2] = {2, 3}, s3[1] = {3};
    t2_st_writer *w = t2_st_writer_new();
    t2_st_writer_add(w, "x", T2_DTYPE_F32, 2, s6, f32);
    t2_st_writer_add(w, "h", T2_DTYPE_F16, 1, s3, f16);
    t2_st_writer_add(w, "b", T2_DTYPE_BF16, 1, s3, bf16);
    t2_st_writer_add(w, "i", T2_DTYPE_I32, 1, s3, i32);
    t2_st_writer_meta(w, "format", "t2");
    char path[4096], out[4096];
    path_in(path, sizeof path, "for_numpy.safetensors");
    path_in(out, sizeof out, "for_numpy.json");
    T2_CHECK(t2_st_writer_write(w, path) == 0, "write: %s", t2_last_error());
    t2_st_writer_free(w);
    int rc = t2_test_python(env, "st_write.py", "read '%s' '%s'", path, out);
    T2_CHECK(rc == 0, "st_write.py read exited %d", rc);
    if (rc != 0) return;
    cJSON *doc = t2_json_load(out);
    t2_st *st = t2_st_open(path);
    T2_CHECK(doc && st, "load: %s", t2_last_error());
    if (doc && st) {
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "__metadata__");
        T2_CHECK(strcmp(t2_json_str(meta, "format", ""), "t2") == 0, "numpy sees metadata format");
        for (int i = 0; i < t2_st_count(st); i++) {
            const t2_st_tensor *t = t2_st_at(st, i);
            const cJSON *rec = cJSON_GetObjectItemCaseSensitive(doc, t->name);
            T2_CHECK(rec != NULL, "numpy did not see %s", t->name);
            if (rec) check_against(t, rec, "numpy-read");
        }
    }
    cJSON_Delete(doc);
    t2_st_close(st);
}

// Files from the numpy writer (st_write.py write), single and sharded, read by C.
static void test_python_files(void) {
    printf("-- C reads the numpy writer's files\n");
    char dir[4096], p[4096];
    path_in(dir, sizeof dir, "py");
    int rc = t2_test_python(env, "st_write.py", "write '%s'", dir);
    T2_CHECK(rc == 0, "st_write.py write exited %d", rc);
    if (rc != 0) return;
    t2_path_join(p, sizeof p, dir, "expect.json");
    cJSON *expect = t2_json_load(p);
    T2_CHECK(expect != NULL, "%s", t2_last_error());
    if (!expect) return;
    int nexp = cJSON_GetArraySize(expect);

    const char *opens[4] = {"single.safetensors", "", "sharded/model.safetensors.index.json", "sharded"};
    for (int k = 0; k < 4; k++) {
        if (*opens[k]) t2_path_join(p, sizeof p, dir, opens[k]);
        else t2_path_join(p, sizeof p, dir, ".");   // a directory with exactly one *.safetensors
        t2_st *st = t2_st_open(p);
        T2_CHECK(st != NULL, "open %s: %s", p, t2_last_error());
        if (!st) continue;
        T2_CHECK(t2_st_count(st) == nexp, "%s: %d tensors, expected %d", p, t2_st_count(st), nexp);
        for (int i = 1; i < t2_st_count(st); i++)
            T2_CHECK(strcmp(t2_st_at(st, i - 1)->name, t2_st_at(st, i)->name) < 0, "%s: not sorted", p);
        const cJSON *rec;
        cJSON_ArrayForEach(rec, expect) {
            const t2_st_tensor *t = t2_st_get(st, rec->string);
            T2_CHECK(t != NULL, "%s", t2_last_error());
            if (t) check_against(t, rec, k < 2 ? "single" : "sharded");
        }
        if (k < 2) {
            T2_CHECK(t2_st_metadata(st, "producer") && strcmp(t2_st_metadata(st, "producer"), "st_write.py") == 0,
                     "metadata producer");
        } else {
            // the first shard's metadata; tensors know their shard (first 5 names in shard 1)
            T2_CHECK(t2_st_metadata(st, "shard") && strcmp(t2_st_metadata(st, "shard"), "1") == 0, "shard metadata");
            for (int i = 0; i < t2_st_count(st); i++) {
                const char *want = i < 5 ? "model-00001-of-00002" : "model-00002-of-00002";
                T2_CHECK(strstr(t2_st_at(st, i)->file, want) != NULL, "%s lives in %s, expected %s",
                         t2_st_at(st, i)->name, t2_st_at(st, i)->file, want);
            }
        }
        t2_st_close(st);
    }
    cJSON_Delete(expect);
}

// A real file cut short anywhere, or with header bytes flipped, must be refused (or read in bounds),
// never crash.
static void test_truncated(void) {
    printf("-- truncated and corrupted files\n");
    char src[4096], p[4096];
    // the numpy writer's file (several dtypes, an empty tensor); the C writer's if python failed
    path_in(src, sizeof src, "py/single.safetensors");
    if (!t2_file_exists(src)) path_in(src, sizeof src, "for_numpy.safetensors");
    size_t len;
    unsigned char *raw = (unsigned char *)t2_read_file(src, &len);
    T2_CHECK(raw != NULL, "%s", t2_last_error());
    if (!raw) return;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | raw[i];
    path_in(p, sizeof p, "trunc.safetensors");
    int tried = 0, refused = 0;
    for (size_t cut = 0; cut < len; cut++) {
        int interesting = cut < 24 || (cut + 4 > 8 + n && cut < 8 + n + 4) || cut + 3 > len || cut % 29 == 0;
        if (!interesting) continue;
        write_bytes(p, raw, cut);
        t2_error_clear();
        t2_st *st = t2_st_open(p);
        tried++;
        if (!st && strstr(t2_last_error(), "trunc.safetensors")) refused++;
        else T2_CHECK(0, "cut at %zu of %zu: %s", cut, len, st ? "opened" : t2_last_error());
        t2_st_close(st);
    }
    printf("  %d of %d truncations refused with a message naming the file\n", refused, tried);

    // Flip header bytes (deterministic LCG); whatever opens must stay in bounds (ASan checks reads).
    uint64_t s = 12345;
    int opened = 0;
    double sink = 0;
    unsigned char *buf = t2_malloc(len);
    for (int it = 0; it < 400; it++) {
        memcpy(buf, raw, len);
        int flips = 1 + it % 3;
        for (int f = 0; f < flips; f++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = it < 40 ? (size_t)(s >> 33) % 8 : 8 + (size_t)(s >> 33) % n;
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[at] = (it % 2) ? (unsigned char)(s >> 56) : (unsigned char)"0123456789[]{},:\"-.e"[(s >> 40) % 20];
        }
        write_bytes(p, buf, len);
        t2_st *st = t2_st_open(p);
        if (!st) continue;
        opened++;
        for (int i = 0; i < t2_st_count(st); i++) {
            const t2_st_tensor *t = t2_st_at(st, i);
            for (size_t b = 0; b < t->nbytes; b++) sink += ((const unsigned char *)t->data)[b];
        }
        t2_st_close(st);
    }
    printf("  400 corrupted headers: %d still opened (read in bounds), checksum %g\n", opened, sink);
    T2_CHECK(1, "corruption survived");
    free(buf);
    free(raw);
}

// One test per malformation: refused, naming the file (and the tensor).
static void test_malformed(void) {
    printf("-- malformed headers\n");
    char p[4096];
    static const struct { const char *file, *header; size_t datalen; const char *a, *b; } cases[] = {
        {"not_json", "{\"a\": {", 0, "not valid JSON", NULL},
        {"not_object", "[1, 2, 3]    ", 0, "not a JSON object", NULL},
        {"trailing", "{}  xyz ", 0, "after its JSON", NULL},
        {"entry_not_object", "{\"w.entry\": 5}", 0, "'w.entry'", "not a JSON object"},
        {"no_dtype", "{\"w.nodtype\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8, "'w.nodtype'", "dtype"},
        {"dtype_number", "{\"w.dnum\": {\"dtype\": 4, \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, "'w.dnum'", "dtype"},
        {"unknown_dtype", "{\"w.f8\": {\"dtype\": \"F8_E4M3\", \"shape\": [2], \"data_offsets\": [0, 2]}}", 8, "'w.f8'",
         "unknown dtype \"F8_E4M3\""},
        {"no_shape", "{\"w.noshape\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", 8, "'w.noshape'", "shape"},
        {"shape_scalar", "{\"w.sh3\": {\"dtype\": \"F32\", \"shape\": 3, \"data_offsets\": [0, 12]}}", 12, "'w.sh3'", "shape"},
        {"shape_fraction", "{\"w.frac\": {\"dtype\": \"F32\", \"shape\": [2, 2.5], \"data_offsets\": [0, 20]}}", 20,
         "'w.frac'", "shape[1]"},
        {"shape_string", "{\"w.str\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}}", 8, "'w.str'",
         "shape[0]"},
        {"shape_negative", "{\"w.neg\": {\"dtype\": \"F32\", \"shape\": [-2, 4], \"data_offsets\": [0, 32]}}", 32,
         "'w.neg'", "negative"},
        {"shape_too_many", "{\"w.9d\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 1]}}", 1,
         "'w.9d'", "dimensions"},
        {"shape_overflow",
         "{\"w.huge\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [0, 8]}}", 8,
         "'w.huge'", "overflows"},
        {"shape_overflow_bytes",
         "{\"w.hugeb\": {\"dtype\": \"F64\", \"shape\": [4294967296, 1073741824], \"data_offsets\": [0, 8]}}", 8,
         "'w.hugeb'", "overflows"},
        {"no_offsets", "{\"w.nooff\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8, "'w.nooff'", "data_offsets"},
        {"offsets_short", "{\"w.off1\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", 8, "'w.off1'",
         "data_offsets"},
        {"offsets_negative", "{\"w.offneg\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [-8, 0]}}", 8,
         "'w.offneg'", "data_offsets"},
        {"offsets_reversed", "{\"w.rev\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8, "'w.rev'",
         "end before"},
        {"span_mismatch", "{\"a.weight\": {\"dtype\": \"F32\", \"shape\": [2, 4], \"data_offsets\": [0, 12]}}", 32,
         "'a.weight'", "data_offsets [0, 12] span 12 bytes but shape [2, 4] of F32 needs 32"},
        {"out_of_range", "{\"w.far\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [0, 32]}}", 16, "'w.far'",
         "past the 16 bytes"},
        {"overlap",
         "{\"w.one\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
         " \"w.two\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}", 24, "'w.one'", "'w.two'"},
        {"duplicate",
         "{\"dup.w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
         " \"dup.w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}", 16, "'dup.w'", "twice"},
        {"meta_string", "{\"__metadata__\": \"v1\"}", 0, "__metadata__", "not a JSON object"},
        {"meta_value", "{\"__metadata__\": {\"ok\": \"s\", \"count\": 1}}", 0, "'count'", "not a string"},
        {"meta_twice", "{\"__metadata__\": {}, \"__metadata__\": {}}", 0, "__metadata__", "twice"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char name[256];
        snprintf(name, sizeof name, "%s.safetensors", cases[k].file);
        path_in(p, sizeof p, name);
        craft(p, cases[k].header, cases[k].datalen);
        expect_fail(p, cases[k].a, cases[k].b);
    }

    // framing errors
    path_in(p, sizeof p, "empty_file.safetensors");
    write_bytes(p, "", 0);
    expect_fail(p, "too short", NULL);
    path_in(p, sizeof p, "short.safetensors");
    write_bytes(p, "\x10\0\0\0\0", 5);
    expect_fail(p, "too short", NULL);
    path_in(p, sizeof p, "past_eof.safetensors");
    craft_raw(p, 1000, "{}          ", 12);
    expect_fail(p, "1000", "past the end");
    path_in(p, sizeof p, "huge_header.safetensors");
    craft_raw(p, 200000000, "{}          ", 12);
    expect_fail(p, "100 MB", NULL);
    path_in(p, sizeof p, "nul_in_header.safetensors");
    craft_raw(p, 8, "{}\0     ", 8);
    expect_fail(p, "after its JSON", NULL);
    path_in(p, sizeof p, "missing.safetensors");
    expect_fail(p, "cannot open", NULL);

    // tolerated: holes between tensors, empty tensors sharing an offset, unused bytes at the end
    path_in(p, sizeof p, "holes.safetensors");
    craft(p, "{\"h.a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
             " \"h.e1\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 8]},"
             " \"h.e2\": {\"dtype\": \"I8\", \"shape\": [3, 0], \"data_offsets\": [8, 8]},"
             " \"h.b\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [16, 24]}}", 32);
    t2_st *st = t2_st_open(p);
    T2_CHECK(st && t2_st_count(st) == 4, "holes: %s", st ? "wrong count" : t2_last_error());
    if (st) {
        const t2_st_tensor *b = t2_st_get(st, "h.b");
        T2_CHECK(b && ((const unsigned char *)b->data)[0] == 16 && ((const unsigned char *)b->data)[7] == 23,
                 "h.b reads bytes 16..23 of the data");
    }
    t2_st_close(st);
}

static void make_dir(const char *d) {
    if (t2_mkdirs(d) != 0) { fprintf(stderr, "%s\n", t2_last_error()); exit(2); }
}

static void write_text(const char *dir, const char *name, const char *text) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_bytes(p, text, strlen(text));
}

static void craft_in(const char *dir, const char *name, const char *header, size_t datalen) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    craft(p, header, datalen);
}

// Sharded sets and directories that cannot be opened.
static void test_index_errors(void) {
    printf("-- index and directory errors\n");
    const char *one = "{\"a.w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}";
    const char *two = "{\"b.w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}";
    const char *dup = "{\"a.w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                      " \"b.w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}";
    char d[4096], p[4096];

    // a tensor in the weight_map absent from its shard
    path_in(d, sizeof d, "idx_absent");
    make_dir(d);
    craft_in(d, "s1.safetensors", one, 8);
    write_text(d, "model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"s1.safetensors\", \"ghost.w\": \"s1.safetensors\"}}");
    expect_fail_in(d, "model.safetensors.index.json", "'ghost.w'", "s1.safetensors");

    // the same tensor in two shards
    path_in(d, sizeof d, "idx_dup");
    make_dir(d);
    craft_in(d, "s1.safetensors", one, 8);
    craft_in(d, "s2.safetensors", dup, 16);
    write_text(d, "model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"s1.safetensors\", \"b.w\": \"s2.safetensors\"}}");
    t2_path_join(p, sizeof p, d, "model.safetensors.index.json");
    expect_fail_in(p, "s2.safetensors", "'a.w'", "s1.safetensors");

    // the weight_map names the wrong shard
    path_in(d, sizeof d, "idx_wrong");
    make_dir(d);
    craft_in(d, "s1.safetensors", one, 8);
    craft_in(d, "s2.safetensors", two, 8);
    write_text(d, "model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"s2.safetensors\", \"b.w\": \"s2.safetensors\"}}");
    t2_path_join(p, sizeof p, d, "model.safetensors.index.json");
    // s1 is not listed, so a.w is nowhere in the opened set
    expect_fail_in(p, "s2.safetensors", "'a.w'", "weight_map");
    write_text(d, "model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"s2.safetensors\", \"b.w\": \"s1.safetensors\"}}");
    expect_fail_in(p, "s1.safetensors", "'a.w'", "s2.safetensors");

    // a shard tensor the map does not list is allowed
    path_in(d, sizeof d, "idx_extra");
    make_dir(d);
    craft_in(d, "s1.safetensors", dup, 16);
    write_text(d, "model.safetensors.index.json", "{\"weight_map\": {\"a.w\": \"s1.safetensors\"}}");
    t2_st *st = t2_st_open(d);
    T2_CHECK(st && t2_st_count(st) == 2 && t2_st_find(st, "b.w"), "unlisted shard tensor: %s",
             st ? "wrong count" : t2_last_error());
    t2_st_close(st);

    // a missing shard, a malformed shard, no weight_map, invalid JSON, a path in the map
    path_in(d, sizeof d, "idx_missing_shard");
    make_dir(d);
    write_text(d, "model.safetensors.index.json", "{\"weight_map\": {\"a.w\": \"nope-00001.safetensors\"}}");
    expect_fail_in(d, "nope-00001.safetensors", "cannot open", NULL);
    path_in(d, sizeof d, "idx_bad_shard");
    make_dir(d);
    craft_in(d, "s1.safetensors", "{\"bad.w\": {\"dtype\": \"Q4\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8);
    write_text(d, "model.safetensors.index.json", "{\"weight_map\": {\"bad.w\": \"s1.safetensors\"}}");
    expect_fail_in(d, "s1.safetensors", "'bad.w'", "Q4");
    path_in(d, sizeof d, "idx_no_map");
    make_dir(d);
    write_text(d, "model.safetensors.index.json", "{\"metadata\": {\"total_size\": 8}}");
    expect_fail_in(d, "model.safetensors.index.json", "weight_map", NULL);
    path_in(d, sizeof d, "idx_bad_json");
    make_dir(d);
    write_text(d, "model.safetensors.index.json", "{\"weight_map\": {\"a.w\": ");
    expect_fail_in(d, "model.safetensors.index.json", "JSON", NULL);
    path_in(d, sizeof d, "idx_path");
    make_dir(d);
    write_text(d, "model.safetensors.index.json", "{\"weight_map\": {\"a.w\": \"../s1.safetensors\"}}");
    expect_fail_in(d, "model.safetensors.index.json", "'a.w'", NULL);
    path_in(d, sizeof d, "idx_map_dup");
    make_dir(d);
    craft_in(d, "s1.safetensors", one, 8);
    write_text(d, "model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"s1.safetensors\", \"a.w\": \"s1.safetensors\"}}");
    expect_fail_in(d, "model.safetensors.index.json", "'a.w'", "twice");

    // directories: index preferred over model.safetensors; model.safetensors preferred over others;
    // several loose files or none are errors
    path_in(d, sizeof d, "dir_prefer");
    make_dir(d);
    craft_in(d, "s1.safetensors", one, 8);
    craft_in(d, "model.safetensors", two, 8);
    write_text(d, "model.safetensors.index.json", "{\"weight_map\": {\"a.w\": \"s1.safetensors\"}}");
    st = t2_st_open(d);
    T2_CHECK(st && t2_st_find(st, "a.w") && !t2_st_find(st, "b.w"), "directory prefers the index: %s",
             st ? "wrong set" : t2_last_error());
    t2_st_close(st);
    t2_path_join(p, sizeof p, d, "model.safetensors.index.json");
    unlink(p);
    st = t2_st_open(d);
    T2_CHECK(st && t2_st_find(st, "b.w") && !t2_st_find(st, "a.w"), "directory then prefers model.safetensors: %s",
             st ? "wrong set" : t2_last_error());
    t2_st_close(st);
    t2_path_join(p, sizeof p, d, "model.safetensors");
    unlink(p);
    craft_in(d, "other.safetensors", two, 8);
    expect_fail_in(d, d, "2 *.safetensors", NULL);
    path_in(d, sizeof d, "dir_empty");
    make_dir(d);
    expect_fail_in(d, d, "no model.safetensors", NULL);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    env = &e;
    test_round_trip();
    test_odd_header();
    test_python_reads_ours();
    test_python_files();
    test_truncated();
    test_malformed();
    test_index_errors();
    return t2_test_done();
}
