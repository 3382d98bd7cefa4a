// test_vlm.c — the whole LLaVA path against an independent reference (tests/ref/llava_ref.py: PIL
// decode + PIL/numpy preprocessing + torch f64 tower, projector, HF packing and language model) on
// tiny random checkpoints from tests/ref/make_llava.py: CLIP + Llama (llava-1.5, legacy names),
// CLIP + Llama anyres (LLaVA-NeXT: unpad + image_newline), SigLIP + Qwen2 (OneVision, new names,
// also with anyres_max downsampling forced). Checked: the image rows (projector output after
// packing) and the final logits within 1e-4, through the library and through `t2 ask`; the
// question path through a chat template and a tokenizer; prompt-id expansion rules; clear errors.
#include "testutil.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "fusion/vlm.h"
#include <stdlib.h>
#include <string.h>

// Compares `t2 ask --dump-logits` on DIR/IMG with llava_ref's logits for ARGS (already run into REF).
static void compare_dump(const char *name, const char *dump, const char *ref) {
    t2_st *st = t2_st_open(dump);
    T2_CHECK(st != NULL, "%s: no logits dump: %s", name, t2_last_error());
    size_t n = 0;
    float *want = t2_test_read_f32(ref, 0, &n);
    T2_CHECK(want != NULL, "%s: no reference logits", name);
    if (st && want) {
        const t2_st_tensor *t = t2_st_get(st, "logits");
        T2_CHECK(t && (size_t)t->numel == n, "%s: logits size %lld vs reference %zu", name, t ? (long long)t->numel : -1LL, n);
        if (t && (size_t)t->numel == n) t2_test_close(name, t->data, want, n, 1e-4);
    }
    free(want);
    t2_st_close(st);
}

typedef struct { const char *name, *kind, *extra, *image, *config_edit; } vcase;

static void check_case(const t2_test_env *e, const vcase *c) {
    char dir[1024], ref[1100], rows[1100], dump[1100], img[1100];
    snprintf(dir, sizeof dir, "%s/%s", e->work, c->name);
    snprintf(ref, sizeof ref, "%s/ref.f32", dir);
    snprintf(rows, sizeof rows, "%s/rows.f32", dir);
    snprintf(dump, sizeof dump, "%s/dump.safetensors", dir);
    snprintf(img, sizeof img, "%s/%s", e->work, c->image);
    T2_CHECK(t2_test_python(e, "make_llava.py", "'%s' --kind %s %s", dir, c->kind, c->extra) == 0, "make %s", c->name);
    if (c->config_edit)
        T2_CHECK(t2_test_python(e, "vlm_fixtures.py", "edit '%s/config.json' '%s'", dir, c->config_edit) == 0, "edit");
    const char *ids = "1,17,299,5,42";
    T2_CHECK(t2_test_python(e, "llava_ref.py", "'%s' '%s' --tokens %s --out '%s' --rows-out '%s' >/dev/null", dir, img,
                            ids, ref, rows) == 0, "llava_ref %s", c->name);

    // The library: image rows (projector + packing) equal the reference's.
    t2_vlm *m = t2_vlm_load(dir, 2, 0);
    T2_CHECK(m != NULL, "%s: load: %s", c->name, t2_last_error());
    if (!m) return;
    t2_image im;
    T2_CHECK(t2_image_load(img, &im, 0) == 0, "%s: %s", img, t2_last_error());
    t2_image_rows r = {0};
    int rc = t2_vlm_encode_image(m, &im, &r.rows, &r.n);
    T2_CHECK(rc == 0, "%s: encode: %s", c->name, t2_last_error());
    size_t n = 0;
    float *want = t2_test_read_f32(rows, 0, &n);
    int H = t2_vlm_lm_cfg(m)->hidden_size;
    char label[256];
    snprintf(label, sizeof label, "%s: image rows (%d)", c->name, r.n);
    T2_CHECK(want && rc == 0 && n == (size_t)r.n * H, "%s: %d rows vs reference %zu", c->name, r.n, n / (size_t)H);
    if (want && rc == 0 && n == (size_t)r.n * H) t2_test_close(label, r.rows, want, n, 1e-4);

    // A run of image-token ids as long as the rows (what HF processors emit) is filled as is; a wrong
    // run length is refused; the placeholder count must match the images.
    int32_t pre[3] = {1, 17, 0}, *run = t2_malloc(sizeof(int32_t) * (size_t)(r.n + 5));
    int img_tok = t2_vlm_image_token(m), k = 0;
    run[k++] = 1; run[k++] = 17;
    for (int i = 0; i < r.n; i++) run[k++] = img_tok;
    run[k++] = 5; run[k++] = 42;
    t2_prompt p1, p2;
    pre[2] = img_tok;
    int32_t one[5] = {1, 17, img_tok, 5, 42};
    T2_CHECK(t2_vlm_prompt_ids(m, one, 5, &r, 1, &p1) == 0, "%s: expand: %s", c->name, t2_last_error());
    T2_CHECK(t2_vlm_prompt_ids(m, run, k, &r, 1, &p2) == 0, "%s: run: %s", c->name, t2_last_error());
    int same = p1.n == k && p2.n == k && p1.n_image_tokens == r.n && memcmp(p1.ids, p2.ids, sizeof(int32_t) * k) == 0 &&
               memcmp(p1.is_embed, p2.is_embed, (size_t)k) == 0;
    for (int t = 0; same && t < k; t++)   // image rows equal (text positions' rows are unused)
        if (p1.is_embed[t]) same = memcmp(p1.embeds + (size_t)t * H, p2.embeds + (size_t)t * H, sizeof(float) * H) == 0;
    T2_CHECK(same, "%s: expanded and pre-expanded prompts differ", c->name);
    t2_prompt_free(&p1);
    t2_prompt_free(&p2);
    if (r.n > 2) {
        T2_CHECK(t2_vlm_prompt_ids(m, run, k - 3, &r, 1, &p1) == -1 && strstr(t2_last_error(), "run of"),
                 "%s: a short run accepted: %s", c->name, t2_last_error());
    }
    T2_CHECK(t2_vlm_prompt_ids(m, pre, 3, &r, 0, &p1) == -1 && strstr(t2_last_error(), "more image tokens"),
             "%s: placeholder without image: %s", c->name, t2_last_error());
    T2_CHECK(t2_vlm_prompt_ids(m, pre, 2, &r, 1, &p1) == -1, "%s: image without placeholder accepted", c->name);
    free(run);
    free(want);
    free(r.rows);
    t2_image_free(&im);
    t2_vlm_free(m);

    // The program: t2 ask --prompt-ids --dump-logits equals the reference's logits.
    char *log = NULL;
    rc = t2_test_sh(&log, "'%s' ask --model '%s' --image '%s' --prompt-ids %s --dump-logits '%s' -n 2 --json 2>&1", e->t2,
                    dir, img, ids, dump);
    T2_CHECK(rc == 0 && strstr(log, "\"answer\""), "%s: t2 ask failed: %s", c->name, log);
    free(log);
    snprintf(label, sizeof label, "%s: t2 ask logits", c->name);
    compare_dump(label, dump, ref);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    T2_CHECK(t2_test_python(&e, "vlm_fixtures.py", "images '%s'", e.work) == 0, "image fixtures");
    static const vcase cases[] = {
        {"llava15", "llava15", "", "wide.png", NULL},
        {"llava15-bf16-tall", "llava15", "--dtype BF16", "tall.png", NULL},
        {"next-wide", "next", "", "wide.png", NULL},
        {"next-tall-new", "next", "--layout new --dtype F16", "tall.png", NULL},
        {"onevision", "onevision", "", "wide.png", NULL},
        {"onevision-max1", "onevision", "", "big.png", "vision_aspect_ratio=anyres_max_1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&e, &cases[i]);

    // The question path: chat template + tokenizer + "<image>" splicing, against jinja2 + tok_ref.
    char dir[1024], ref[1100], dump[1100], *log = NULL;
    snprintf(dir, sizeof dir, "%s/chat", e.work);
    snprintf(ref, sizeof ref, "%s/ref.f32", dir);
    snprintf(dump, sizeof dump, "%s/dump.safetensors", dir);
    T2_CHECK(t2_test_python(&e, "vlm_fixtures.py", "chatmodel '%s' '%s'", dir, e.work) == 0, "chat model");
    T2_CHECK(t2_test_python(&e, "llava_ref.py", "'%s' '%s/wide.png' --chat '%s/tests/ref/templates/meta-llama-3-8b-instruct.jinja' "
                            "'What is in the picture?' --out '%s' >/dev/null", dir, e.work, e.src, ref) == 0, "chat reference");
    int rc = t2_test_sh(&log, "'%s' ask --model '%s' --image '%s/wide.png' 'What is in the picture?' --dump-logits '%s' -n 4 2>&1",
                        e.t2, dir, e.work, dump);
    T2_CHECK(rc == 0, "t2 ask with a question failed: %s", log);
    free(log);
    compare_dump("chat template + tokenizer + image", dump, ref);

    // Several images encoded as one batch give each image's rows as encoded alone (anyres: different
    // tile counts per image).
    const char *kinds[] = {"next-wide", "onevision"};
    for (int q = 0; q < 2; q++) {
        char md[1100], p1[1100], p2[1100];
        snprintf(md, sizeof md, "%s/%s", e.work, kinds[q]);
        snprintf(p1, sizeof p1, "%s/wide.png", e.work);
        snprintf(p2, sizeof p2, "%s/tall.png", e.work);
        t2_vlm *vm = t2_vlm_load(md, 2, 0);
        t2_image ims[2];
        T2_CHECK(vm && t2_image_load(p1, &ims[0], 0) == 0 && t2_image_load(p2, &ims[1], 0) == 0, "batch fixtures");
        if (!vm) continue;
        t2_image_rows both[2], one;
        T2_CHECK(t2_vlm_encode_images(vm, ims, 2, both) == 0, "batch: %s", t2_last_error());
        int Hh = t2_vlm_lm_cfg(vm)->hidden_size;
        for (int k = 0; k < 2; k++) {
            T2_CHECK(t2_vlm_encode_images(vm, &ims[k], 1, &one) == 0, "single: %s", t2_last_error());
            char lab[128];
            snprintf(lab, sizeof lab, "%s: image %d batched vs alone (%d rows)", kinds[q], k + 1, one.n);
            T2_CHECK(one.n == both[k].n, "%s: %d vs %d rows", lab, one.n, both[k].n);
            if (one.n == both[k].n) t2_test_close(lab, both[k].rows, one.rows, (size_t)one.n * Hh, 1e-5);
            free(one.rows);
            free(both[k].rows);
            t2_image_free(&ims[k]);
        }
        t2_vlm_free(vm);
    }

    // t2 chat: reusing the KV cache across turns gives the same replies as recomputing everything.
    char *a = NULL, *b = NULL;
    const char *script = "/image %s/wide.png\nWhat is this?\nAnd the colours?\n/image %s/tall.png\nCompare them.\n/quit\n";
    char in[4096];
    snprintf(in, sizeof in, script, e.work, e.work);
    int ra = t2_test_sh(&a, "printf '%s' | '%s' chat --model '%s' -n 6 2>&1", in, e.t2, dir);
    int rb = t2_test_sh(&b, "printf '%s' | '%s' chat --model '%s' -n 6 --no-reuse 2>&1", in, e.t2, dir);
    T2_CHECK(ra == 0 && rb == 0 && strcmp(a, b) == 0 && strstr(a, "image 2 attached"),
             "chat with and without cache reuse differ:\n%s\n---\n%s", a, b);
    free(a);
    free(b);

    // Errors: clear, non-zero, never a crash.
    snprintf(dir, sizeof dir, "%s/llava15", e.work);
    static const struct { const char *args, *expect; } bad[] = {
        {"--image %s/missing.png --prompt-ids 1,299", "missing.png"},
        {"--image %s/corrupt.png --prompt-ids 1,299", "corrupt.png"},
        {"--image %s/wide.png --prompt-ids 1,2", "placeholder"},
        {"--prompt-ids 1,299 --image %s/wide.png --image %s/wide.png", "placeholder"},
        {"--image %s/wide.png", "exactly one"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[2048];
        snprintf(args, sizeof args, bad[i].args, e.work, e.work);
        rc = t2_test_sh(&log, "'%s' ask --model '%s' %s 2>&1", e.t2, dir, args);
        T2_CHECK(rc == 1 && strstr(log, bad[i].expect), "'%s': rc %d '%s'", args, rc, log);
        free(log);
    }
    return t2_test_done();
}
