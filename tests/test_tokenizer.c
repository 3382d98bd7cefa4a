// test_tokenizer.c — language/tokenizer.c against an independent Python reference (tests/ref/tok_ref.py)
// on fixtures written by tests/ref/tok_fixtures.py: Llama-3, Qwen2 (tokenizer.json and vocab.json +
// merges.txt), GPT-2 and two SentencePiece-style layouts. For ~340 fixed and random strings each:
// pre-tokenizer pieces (Python's `regex` on the same pattern), ids with and without special tokens,
// decode, and encode(decode(ids)) == ids. Then hand-written checks (BOS/EOS, lstrip/rstrip, byte
// fallback, split characters, truncation) and one malformed checkpoint per error path.
#include "core/error.h"
#include "core/util.h"
#include "language/tokenizer.h"
#include "testutil.h"
#include <stdlib.h>
#include <string.h>

#define CAP 4096

typedef struct { char **p; size_t *n; int count, cap; } pieces;

static void collect(void *ctx, const char *s, size_t n) {
    pieces *ps = ctx;
    if (ps->count == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 64;
        ps->p = realloc(ps->p, (size_t)ps->cap * sizeof *ps->p);
        ps->n = realloc(ps->n, (size_t)ps->cap * sizeof *ps->n);
    }
    ps->p[ps->count] = t2_malloc(n + 1);
    memcpy(ps->p[ps->count], s, n);
    ps->p[ps->count][n] = 0;
    ps->n[ps->count++] = n;
}

static void pieces_free(pieces *ps) {
    for (int i = 0; i < ps->count; i++) free(ps->p[i]);
    free(ps->p); free(ps->n);
}

static int same_ids(const int32_t *a, int na, const cJSON *want) {
    if (na != cJSON_GetArraySize(want)) return 0;
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, want) if (a[i++] != x->valueint) return 0;
    return 1;
}

static void print_ids(const char *label, const int32_t *a, int n) {
    printf("    %s:", label);
    for (int i = 0; i < n && i < 40; i++) printf(" %d", a[i]);
    printf("%s\n", n > 40 ? " ..." : "");
}

static int encode(const t2_tokenizer *t, const char *s, int add, int parse, int32_t *ids) {
    int n = t2_tok_encode(t, s, add, parse, ids, CAP);
    T2_CHECK(n >= 0 && n <= CAP, "encode \"%s\": %d (%s)", s, n, t2_last_error());
    return n < 0 ? 0 : n;
}

// Every case of one fixture against FIXTURE/expect.json. Returns the tokenizer (for more checks).
static t2_tokenizer *parity(const t2_test_env *e, const char *fx, const cJSON *cases) {
    char dir[2048], path[4096];
    snprintf(dir, sizeof dir, "%s/%s", e->work, fx);
    t2_tokenizer *t = t2_tok_load(dir);
    T2_CHECK(t != NULL, "load %s: %s", fx, t2_last_error());
    t2_path_join(path, sizeof path, dir, "expect.json");
    cJSON *exp = t2_json_load(path);
    T2_CHECK(exp != NULL, "%s", t2_last_error());
    if (!t || !exp) { cJSON_Delete(exp); return t; }
    const cJSON *ex = cJSON_GetObjectItem(exp, "cases")->child, *c;
    int bad[6] = {0}, i = 0;
    static int32_t ids[CAP], ids2[CAP];
    static char txt[1 << 16];
    cJSON_ArrayForEach(c, cases) {
        const char *s = c->valuestring;
        // pre-tokenizer pieces
        pieces ps = {0};
        int rc = t2_tok_pretokenize(t, s, collect, &ps);
        const cJSON *want = cJSON_GetObjectItem(ex, "pre"), *w;
        int ok = rc == 0 && ps.count == cJSON_GetArraySize(want), k = 0;
        if (ok) cJSON_ArrayForEach(w, want) { ok &= strlen(w->valuestring) == ps.n[k] && !memcmp(w->valuestring, ps.p[k], ps.n[k]); k++; }
        if (!ok && bad[0]++ < 3) {
            printf("  %s case %d \"%s\": pre-tokenizer differs (C %d pieces, ref %d):", fx, i, s, ps.count, cJSON_GetArraySize(want));
            for (int j = 0; j < ps.count; j++) printf(" [%s]", ps.p[j]);
            printf("\n");
        }
        pieces_free(&ps);
        // ids, plain and with special tokens
        const char *keys[2] = {"ids", "ids_sp"};
        for (int m = 0; m < 2; m++) {
            int n = encode(t, s, m, m, ids);
            if (!same_ids(ids, n, cJSON_GetObjectItem(ex, keys[m])) && bad[1 + m]++ < 3) {
                printf("  %s case %d \"%s\": %s differ\n", fx, i, s, keys[m]);
                print_ids("C  ", ids, n);
                char *r = cJSON_PrintUnformatted(cJSON_GetObjectItem(ex, keys[m]));
                printf("    ref: %s\n", r);
                free(r);
            }
        }
        // decode of the special-token encoding, keeping and skipping specials
        int nsp = encode(t, s, 1, 1, ids);
        for (int skip = 0; skip < 2; skip++) {
            const char *wd = cJSON_GetObjectItem(ex, skip ? "dec_skip" : "dec")->valuestring;
            int len = t2_tok_decode(t, ids, nsp, skip, txt, sizeof txt);
            if ((len != (int)strlen(wd) || strcmp(txt, wd)) && bad[3]++ < 3)
                printf("  %s case %d \"%s\": decode(skip=%d) gives \"%s\", ref \"%s\"\n", fx, i, s, skip, txt, wd);
        }
        // round trip: decode(ids) is the (normalised) text, and encodes back to the same ids
        int n = encode(t, s, 0, 0, ids);
        t2_tok_decode(t, ids, n, 0, txt, sizeof txt);
        if (strcmp(txt, cJSON_GetObjectItem(ex, "rt")->valuestring) && bad[4]++ < 3)
            printf("  %s case %d \"%s\": decode gives \"%s\"\n", fx, i, s, txt);
        if (cJSON_IsTrue(cJSON_GetObjectItem(ex, "exact"))) {
            int n2 = encode(t, txt, 0, 0, ids2);
            if ((n2 != n || memcmp(ids, ids2, (size_t)n * sizeof *ids)) && bad[5]++ < 3)
                printf("  %s case %d \"%s\": encode(decode(ids)) != ids\n", fx, i, s);
        }
        ex = ex->next;
        i++;
    }
    static const char *what[6] = {"pre-tokenizer pieces", "ids", "ids with specials", "decode", "decode round trip", "encode(decode(ids))"};
    for (int m = 0; m < 6; m++)
        T2_CHECK(bad[m] == 0, "%s: %s differ in %d of %d cases", fx, what[m], bad[m], i);
    printf("%s %s: %d cases (pre-tokenizer, ids, ids+specials, decode, round trip)\n",
           bad[0] + bad[1] + bad[2] + bad[3] + bad[4] + bad[5] ? "FAIL" : "ok  ", fx, i);
    cJSON_Delete(exp);
    return t;
}

// A and B encode to the same ids.
static int same_encoding(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && !memcmp(a, b, (size_t)na * sizeof *a);
}

static void check_llama3(const t2_tokenizer *t) {
    int32_t a[CAP], b[CAP];
    int bos = t2_tok_id(t, "<|begin_of_text|>"), eot = t2_tok_id(t, "<|eot_id|>"), eot2 = t2_tok_id(t, "<|end_of_text|>");
    T2_CHECK(bos > 0 && t2_tok_bos(t) == bos, "llama3 bos %d vs %d", t2_tok_bos(t), bos);
    T2_CHECK(!strcmp(t2_tok_bos_text(t), "<|begin_of_text|>"), "bos text %s", t2_tok_bos_text(t));
    T2_CHECK(t2_tok_eos(t) == eot && t2_tok_is_eos(t, eot2) && !t2_tok_is_eos(t, bos), "llama3 eos %d", t2_tok_eos(t));
    T2_CHECK(!strcmp(t2_tok_eos_text(t), "<|eot_id|>"), "eos text %s", t2_tok_eos_text(t));
    T2_CHECK(t2_tok_is_special(t, bos) && !t2_tok_is_special(t, t2_tok_id(t, "<extra>")), "special flags");
    T2_CHECK(t2_tok_vocab_size(t) == t2_tok_id(t, "<sep><sep>") + 1, "vocab size %d", t2_tok_vocab_size(t));
    T2_CHECK(t2_tok_chat_template(t) && strstr(t2_tok_chat_template(t), "start_header_id"), "chat template");
    int n = encode(t, "hi", 1, 0, a);
    T2_CHECK(n >= 2 && a[0] == bos, "add_special adds BOS");
    n = encode(t, "Hello", 0, 0, a);   // ignore_merges: "Hello" is in the vocabulary, merges do not reach it
    T2_CHECK(n == 1 && a[0] == t2_tok_id(t, "Hello"), "ignore_merges: \"Hello\" → %d ids", n);
    n = encode(t, "<|eot_id|>", 0, 1, a);
    T2_CHECK(n == 1 && a[0] == eot, "parse_special matches <|eot_id|>");
    n = encode(t, "<|eot_id|>", 0, 0, a);
    T2_CHECK(n > 1, "without parse_special <|eot_id|> is text (%d ids)", n);
    n = encode(t, "<extra>", 0, 0, a);
    T2_CHECK(n == 1 && a[0] == t2_tok_id(t, "<extra>"), "non-special added tokens always match");
    n = encode(t, "<sep><sep>", 0, 1, a);
    T2_CHECK(n == 1 && a[0] == t2_tok_id(t, "<sep><sep>"), "longest added token wins");
    n = encode(t, "<sep><sep>", 0, 0, a);
    T2_CHECK(n == 2 && a[0] == t2_tok_id(t, "<sep>") && a[1] == a[0], "special longest skipped without parse_special");
    // lstrip absorbs the whitespace before, rstrip the whitespace after
    n = encode(t, "x  <|lstrip|> y", 0, 1, a);
    int m = encode(t, "x", 0, 0, b);
    b[m++] = t2_tok_id(t, "<|lstrip|>");
    m += encode(t, " y", 0, 0, b + m);
    T2_CHECK(same_encoding(a, n, b, m), "lstrip");
    n = encode(t, "x <|rstrip|> \t y", 0, 1, a);
    m = encode(t, "x ", 0, 0, b);
    b[m++] = t2_tok_id(t, "<|rstrip|>");
    m += encode(t, "y", 0, 0, b + m);
    T2_CHECK(same_encoding(a, n, b, m), "rstrip");
    // truncation: the count is the full one, only CAP ids are written
    int32_t small[3] = {-7, -7, -7};
    n = t2_tok_encode(t, "Hello world, hello again", 0, 0, small, 2);
    T2_CHECK(n > 2 && small[2] == -7, "encode truncation: %d", n);
    // a character split over byte-level tokens decodes whole; half of it gives its first bytes
    const char *llama = "\xF0\x9F\xA6\x99\xF0\x9F\xA6\x99";   // 🦙🦙
    n = encode(t, "\xF0\x9F\x90\xB3", 0, 0, a);                 // 🐳: not in the corpus → 4 byte tokens
    T2_CHECK(n >= 2, "whale is %d byte tokens", n);
    char out[64];
    int len = t2_tok_decode(t, a, n, 0, out, sizeof out);
    T2_CHECK(len == 4 && !strcmp(out, "\xF0\x9F\x90\xB3"), "split character decodes whole");
    len = t2_tok_decode(t, a, 1, 0, out, sizeof out);
    T2_CHECK(len >= 1 && len < 4 && !memcmp(out, "\xF0\x9F\x90\xB3", (size_t)len), "part of a character decodes to its bytes");
    n = encode(t, llama, 0, 0, a);
    len = t2_tok_decode(t, a, n, 0, out, 3);
    T2_CHECK(len == 8 && strlen(out) == 2, "decode truncation: %d", len);
    // errors
    T2_CHECK(t2_tok_encode(t, "bad \xC3(", 0, 0, a, CAP) < 0 && strstr(t2_last_error(), "UTF-8"), "invalid UTF-8: %s", t2_last_error());
    int32_t bad_id = t2_tok_vocab_size(t) + 5;
    T2_CHECK(t2_tok_decode(t, &bad_id, 1, 0, out, sizeof out) < 0, "decode of an unknown id fails");
    T2_CHECK(t2_tok_piece(t, -1) == NULL && t2_tok_piece(t, 100000) == NULL, "piece out of range");
    T2_CHECK(!strcmp(t2_tok_piece(t, bos), "<|begin_of_text|>") && t2_tok_id(t, "no such token") == -1, "piece/id");
}

static void check_qwen2(const t2_tokenizer *t, const t2_tokenizer *files) {
    int32_t a[CAP], b[CAP];
    int im_end = t2_tok_id(t, "<|im_end|>"), eot = t2_tok_id(t, "<|endoftext|>");
    T2_CHECK(t2_tok_bos(t) == -1 && !strcmp(t2_tok_bos_text(t), ""), "qwen2 has no BOS (%d)", t2_tok_bos(t));
    T2_CHECK(t2_tok_eos(t) == im_end && t2_tok_is_eos(t, eot), "qwen2 eos: tokenizer_config + config.json");
    T2_CHECK(t2_tok_chat_template(t) && !strncmp(t2_tok_chat_template(t), "{% for message", 14), "default chat template from the list");
    int n = encode(t, "hi", 1, 1, a), m = encode(t, "hi", 0, 0, b);
    T2_CHECK(same_encoding(a, n, b, m), "qwen2 add_special adds nothing");
    n = encode(t, "cafe\xCC\x81", 0, 0, a);   // e + combining acute → é under NFC
    m = encode(t, "caf\xC3\xA9", 0, 0, b);
    T2_CHECK(same_encoding(a, n, b, m), "NFC normaliser");
    T2_CHECK(t2_tok_vocab_size(files) == t2_tok_vocab_size(t) && t2_tok_eos(files) == im_end, "vocab.json layout: same sizes");
    n = encode(files, "<|im_start|>user\nhi<|im_end|>", 0, 1, a);
    m = encode(t, "<|im_start|>user\nhi<|im_end|>", 0, 1, b);
    T2_CHECK(same_encoding(a, n, b, m) && a[0] == t2_tok_id(t, "<|im_start|>"), "vocab.json layout: same ids");
}

static void check_spm(const t2_tokenizer *t, const t2_tokenizer *meta) {
    int32_t a[CAP];
    char out[256];
    T2_CHECK(t2_tok_bos(t) == 1 && !strcmp(t2_tok_bos_text(t), "<s>") && t2_tok_eos(t) == 2, "spm bos/eos");
    int n = encode(t, "\xF0\x9F\x90\xB3", 1, 1, a);   // "▁" then 🐳 as <0xF0><0x9F><0x90><0xB3>
    T2_CHECK(n == 6 && a[0] == 1 && a[1] == t2_tok_id(t, "\xE2\x96\x81") && a[2] == t2_tok_id(t, "<0xF0>") &&
             a[3] == t2_tok_id(t, "<0x9F>") && a[4] == t2_tok_id(t, "<0x90>") && a[5] == t2_tok_id(t, "<0xB3>"),
             "byte fallback (%d ids)", n);
    int len = t2_tok_decode(t, a, n, 1, out, sizeof out);
    T2_CHECK(len == 4 && !strcmp(out, "\xF0\x9F\x90\xB3"), "byte fallback decodes, leading space stripped: \"%s\"", out);
    len = t2_tok_decode(t, a, n, 0, out, sizeof out);
    T2_CHECK(!strcmp(out, "<s> \xF0\x9F\x90\xB3"), "with <s>: \"%s\"", out);
    len = t2_tok_decode(t, a + 2, 2, 0, out, sizeof out);
    T2_CHECK(len == 2 && !memcmp(out, "\xF0\x9F", 2), "half a character decodes to its bytes");
    n = encode(t, "<image>\nhi", 0, 1, a);
    T2_CHECK(n > 1 && a[0] == t2_tok_id(t, "<image>") && t2_tok_is_special(t, a[0]), "<image> token");
    T2_CHECK(t2_tok_chat_template(t) == NULL, "spm: no chat template");
    // Metaspace layout: BOS from add_bos_token, "▁" only at the very start (prepend_scheme first)
    T2_CHECK(t2_tok_bos(meta) == 1, "spm_meta bos %d", t2_tok_bos(meta));
    n = encode(meta, "hi", 1, 1, a);
    T2_CHECK(n >= 2 && a[0] == 1, "add_bos_token fallback");
    T2_CHECK(t2_tok_chat_template(meta) && !strcmp(t2_tok_chat_template(meta), "{{ messages }}"), "chat_template.json");
}

static void check_bad(const t2_test_env *e, const char *fx, const char *want1, const char *want2) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", e->work, fx);
    t2_error_clear();
    t2_tokenizer *t = t2_tok_load(dir);
    const char *err = t2_last_error();
    T2_CHECK(t == NULL && strstr(err, want1) && strstr(err, want2), "%s: expected an error naming \"%s\" and \"%s\", got \"%s\"",
             fx, want1, want2, t ? "(loaded)" : err);
    if (!t) printf("ok   %s: %s\n", fx, err);
    t2_tok_free(t);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    if (t2_test_python(&e, "tok_fixtures.py", "'%s'", e.work) != 0 ||
        t2_test_python(&e, "tok_ref.py", "'%s' llama3 qwen2 qwen2_files gpt2 spm spm_meta", e.work) != 0) {
        T2_CHECK(0, "reference scripts failed");
        return t2_test_done();
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/cases.json", e.work);
    cJSON *cases = t2_json_load(path);
    T2_CHECK(cases != NULL, "%s", t2_last_error());
    if (!cases) return t2_test_done();
    const char *fx[6] = {"llama3", "qwen2", "qwen2_files", "gpt2", "spm", "spm_meta"};
    t2_tokenizer *t[6];
    for (int i = 0; i < 6; i++) t[i] = parity(&e, fx[i], cases);
    if (t[0]) check_llama3(t[0]);
    if (t[1] && t[2]) check_qwen2(t[1], t[2]);
    if (t[4] && t[5]) check_spm(t[4], t[5]);
    for (int i = 0; i < 6; i++) t2_tok_free(t[i]);
    cJSON_Delete(cases);

    check_bad(&e, "bad_missing", "bad_missing", "no tokenizer.json");
    check_bad(&e, "bad_json", "bad_json/tokenizer.json", "invalid JSON");
    check_bad(&e, "bad_type", "tokenizer.json", "WordPiece");
    check_bad(&e, "bad_merge", "tokenizer.json", "\"zzqx\" is not in the vocabulary");
    check_bad(&e, "bad_regex", "tokenizer.json", "does not compile");
    check_bad(&e, "bad_pretok", "tokenizer.json", "BertPreTokenizer");
    check_bad(&e, "bad_config", "bad_config/tokenizer_config.json", "invalid JSON");
    check_bad(&e, "bad_files", "merges.txt", "\"c\" is not in the vocabulary");
    check_bad(&e, "bad_nomerges", "merges.txt", "cannot open");
    return t2_test_done();
}
