// test_tokenizer_train.c — language/tokenizer_train.c (byte-level BPE training) against an
// independent Python trainer (tests/ref/tok_train_ref.py: the plain recount-every-step greedy loop,
// `regex` module pre-split, same tie-break): (1) the merge lists are identical; (2) the written
// directory loads with t2_tok_load and round-trips text, Unicode and unseen words included; (3) t2's
// encoding equals tests/ref/tok_ref.py's on the written tokenizer.json (the file is standard);
// (4) frequent corpus words are single tokens; (5) the CLI (`t2 tokenizer train`, plain and JSONL,
// vicuna chat template) and its errors; (6) a larger corpus trains quickly.
#include "core/error.h"
#include "core/util.h"
#include "language/chat.h"
#include "language/tokenizer.h"
#include "language/tokenizer_train.h"
#include "testutil.h"
#include <stdlib.h>
#include <string.h>

#define CAP 4096
#define VOCAB 460   // 256 bytes + 200 merged + 4 specials (the corpus allows ~210 at min_frequency 2)

static const char *SPECIALS[] = {"<s>", "</s>", "<pad>", "<image>"};

static t2_toktrain_params params(void) {
    t2_toktrain_params p = t2_toktrain_defaults();
    p.vocab_size = VOCAB;
    p.specials = SPECIALS;
    p.n_specials = 4;
    p.bos = "<s>"; p.eos = "</s>"; p.pad = "<pad>";
    p.chat_template = t2_toktrain_vicuna_template();
    return p;
}

// Feed PATH's lines (the CLI's plain-text reading) into T.
static int feed_lines(t2_toktrain *t, const char *path) {
    size_t len;
    char *s = t2_read_file(path, &len);
    T2_CHECK(s != NULL, "%s", t2_last_error());
    if (!s) return -1;
    for (size_t at = 0; at < len;) {
        char *nl = memchr(s + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - s) : len, n = end - at;
        if (n && s[at + n - 1] == '\r') n--;
        if (n) T2_CHECK(t2_toktrain_feed(t, s + at, n) == 0, "feed: %s", t2_last_error());
        at = end + 1;
    }
    free(s);
    return 0;
}

// (1) merges equal the Python reference's list, entry by entry.
static void check_merges(const t2_toktrain *t, const char *path) {
    cJSON *ref = t2_json_load(path);
    T2_CHECK(ref != NULL, "%s", t2_last_error());
    if (!ref) return;
    int n = t2_toktrain_n_merges(t), nr = cJSON_GetArraySize(ref), bad = 0, i = 0;
    T2_CHECK(n == nr, "merge count: C %d, Python %d", n, nr);
    const cJSON *m;
    cJSON_ArrayForEach(m, ref) {
        if (i >= n) break;
        const char *a, *b;
        t2_toktrain_merge(t, i, &a, &b);
        const char *ra = cJSON_GetArrayItem(m, 0)->valuestring, *rb = cJSON_GetArrayItem(m, 1)->valuestring;
        if ((strcmp(a, ra) || strcmp(b, rb)) && bad++ < 5)
            printf("  merge %d: C \"%s\" \"%s\", Python \"%s\" \"%s\"\n", i, a, b, ra, rb);
        i++;
    }
    T2_CHECK(bad == 0, "%d of %d merges differ from the Python reference", bad, nr);
    if (!bad && n == nr) printf("ok   %d merges equal the Python reference\n", n);
    cJSON_Delete(ref);
}

static int encode(const t2_tokenizer *t, const char *s, int add, int32_t *ids) {
    int n = t2_tok_encode(t, s, add, add, ids, CAP);
    T2_CHECK(n >= 0 && n <= CAP, "encode \"%s\": %d (%s)", s, n, t2_last_error());
    return n < 0 ? 0 : n;
}

static int same_ids(const int32_t *a, int na, const cJSON *want) {
    if (na != cJSON_GetArraySize(want)) return 0;
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, want) if (a[i++] != x->valueint) return 0;
    return 1;
}

// (2)–(4) on the saved directory DIR.
static void check_saved(const t2_test_env *e, const t2_toktrain *tr, const char *dir) {
    t2_tokenizer *t = t2_tok_load(dir);
    T2_CHECK(t != NULL, "t2_tok_load %s: %s", dir, t2_last_error());
    if (!t) return;
    int n_bpe = t2_toktrain_n_tokens(tr);
    T2_CHECK(n_bpe == VOCAB - 4, "BPE vocabulary %d, want %d", n_bpe, VOCAB - 4);
    T2_CHECK(t2_tok_vocab_size(t) == n_bpe + 4, "vocab size %d, want %d", t2_tok_vocab_size(t), n_bpe + 4);
    T2_CHECK(t2_tok_bos(t) == n_bpe && t2_tok_eos(t) == n_bpe + 1, "bos %d eos %d", t2_tok_bos(t), t2_tok_eos(t));
    T2_CHECK(t2_tok_id(t, "<image>") == n_bpe + 3 && t2_tok_is_special(t, n_bpe + 3), "<image> id %d", t2_tok_id(t, "<image>"));
    T2_CHECK(!strcmp(t2_tok_bos_text(t), "<s>") && !strcmp(t2_tok_eos_text(t), "</s>"), "bos/eos text");
    const char *ct = t2_tok_chat_template(t);
    T2_CHECK(ct && t2_chat_detect(ct, T2_CHAT_NONE) == T2_CHAT_VICUNA, "chat template not detected as vicuna");
    static int32_t ids[CAP];
    static char txt[1 << 16];
    // (2) round trips
    const char *rt[] = {"hello world", "What color is the hexagon?", "unseen zyxwvut qwertz", "Café 你好 👋🏽 🦙 ΩΩ",
                        "  spaces\tand\ntabs  ", "emoji 😀 and ⚙️ never seen", "x", "1234567890", "a\r\nb"};
    int bad = 0;
    for (size_t i = 0; i < sizeof rt / sizeof *rt; i++) {
        int n = encode(t, rt[i], 0, ids);
        t2_tok_decode(t, ids, n, 0, txt, sizeof txt);
        if (strcmp(txt, rt[i]) && bad++ < 3) printf("  round trip \"%s\" → \"%s\"\n", rt[i], txt);
    }
    T2_CHECK(bad == 0, "%d round trips differ", bad);
    int n = encode(t, "hello", 1, ids);
    T2_CHECK(n == 2 && ids[0] == n_bpe, "add_special: BOS first (n %d, first %d)", n, n ? ids[0] : -1);
    // (4) frequent words are single tokens
    const char *whole[] = {" hello", "hello", " color", " circle", " triangle", "What", " purple", " there"};
    for (size_t i = 0; i < sizeof whole / sizeof *whole; i++) {
        n = encode(t, whole[i], 0, ids);
        T2_CHECK(n == 1, "\"%s\" is %d tokens, want 1", whole[i], n);
    }
    // (3) parity with the Python reference tokenizer on the written tokenizer.json
    char path[4096];
    snprintf(path, sizeof path, "%s/cases.json", e->work);
    cJSON *cases = t2_json_load(path);
    snprintf(path, sizeof path, "%s/tok/expect.json", e->work);
    cJSON *exp = t2_json_load(path);
    T2_CHECK(cases && exp, "%s", t2_last_error());
    if (cases && exp) {
        const cJSON *c, *x = cJSON_GetObjectItem(exp, "cases")->child;
        int k = 0, diff = 0;
        cJSON_ArrayForEach(c, cases) {
            int n0 = encode(t, c->valuestring, 0, ids);
            int ok = same_ids(ids, n0, cJSON_GetObjectItem(x, "ids"));
            int n1 = encode(t, c->valuestring, 1, ids);
            ok &= same_ids(ids, n1, cJSON_GetObjectItem(x, "ids_sp"));
            if (!ok && diff++ < 3) printf("  case %d \"%s\": ids differ from tok_ref.py\n", k, c->valuestring);
            x = x->next;
            k++;
        }
        T2_CHECK(diff == 0, "%d of %d cases differ from tok_ref.py", diff, k);
        if (!diff) printf("ok   %d cases encode as tok_ref.py does\n", k);
    }
    cJSON_Delete(cases);
    cJSON_Delete(exp);
    t2_tok_free(t);
}

// (5) the CLI: a run that must succeed, and runs that must fail naming the fault.
static void cli_ok(const t2_test_env *e, const char *args) {
    char *out = NULL;
    int rc = t2_test_sh(&out, "'%s' tokenizer train %s 2>&1", e->t2, args);
    T2_CHECK(rc == 0, "t2 tokenizer train %s: exit %d\n%s", args, rc, out ? out : "");
    free(out);
}

static void cli_bad(const t2_test_env *e, const char *args, const char *want) {
    char *out = NULL;
    int rc = t2_test_sh(&out, "'%s' tokenizer train %s 2>&1", e->t2, args);
    T2_CHECK(rc != 0 && out && strstr(out, want), "t2 tokenizer train %s: want an error naming \"%s\", got exit %d: %s",
             args, want, rc, out ? out : "");
    if (rc != 0 && out && strstr(out, want)) printf("ok   error: %s", out);
    free(out);
}

static void check_cli(const t2_test_env *e, const t2_toktrain *lib) {
    const char *w = e->work;
    char args[8192], dir[4096];
    // plain text: the same merges as the library on the same lines
    snprintf(args, sizeof args, "--input '%s/corpus.txt' --vocab-size %d --out '%s/cli' --chat-template vicuna", w, VOCAB, w);
    cli_ok(e, args);
    snprintf(dir, sizeof dir, "%s/cli", w);
    t2_tokenizer *a = t2_tok_load(dir), *b;
    snprintf(dir, sizeof dir, "%s/tok", w);
    b = t2_tok_load(dir);
    T2_CHECK(a && b, "load CLI / library output: %s", t2_last_error());
    if (a && b) {
        int same = t2_tok_vocab_size(a) == t2_tok_vocab_size(b);
        for (int i = 0; same && i < t2_tok_vocab_size(a); i++) same = !strcmp(t2_tok_piece(a, i), t2_tok_piece(b, i));
        T2_CHECK(same, "CLI and library vocabularies differ");
        T2_CHECK(t2_tok_chat_template(a) && t2_chat_detect(t2_tok_chat_template(a), T2_CHAT_NONE) == T2_CHAT_VICUNA, "CLI chat template");
    }
    t2_tok_free(a); t2_tok_free(b);
    (void)lib;
    // JSONL with overridden specials and no BOS
    snprintf(args, sizeof args, "--input '%s/corpus.jsonl' --jsonl --vocab-size 360 --out '%s/jl' --special '<image>' "
             "--special '<|extra|>' --bos '' --eos '<|end|>' --pad '' --no-add-bos --min-frequency 3", w, w);
    cli_ok(e, args);
    snprintf(dir, sizeof dir, "%s/jl", w);
    a = t2_tok_load(dir);
    T2_CHECK(a != NULL, "load JSONL output: %s", t2_last_error());
    if (a) {
        static int32_t ids[CAP];
        T2_CHECK(t2_tok_bos(a) < 0 && t2_tok_eos(a) == t2_tok_id(a, "<|end|>") && t2_tok_eos(a) >= 0, "JSONL specials");
        T2_CHECK(t2_tok_vocab_size(a) == 360, "JSONL vocab size %d", t2_tok_vocab_size(a));
        int n = encode(a, " color", 1, ids);
        T2_CHECK(n == 1, "\" color\" is %d tokens in the JSONL tokenizer", n);
        n = encode(a, "<|extra|>", 1, ids);
        T2_CHECK(n == 1 && t2_tok_is_special(a, ids[0]), "<|extra|> is one special token");
        t2_tok_free(a);
    }
    // errors
    snprintf(args, sizeof args, "--input '%s/missing.txt' --vocab-size 600 --out '%s/x'", w, w);
    cli_bad(e, args, "missing.txt");
    FILE *f;
    snprintf(dir, sizeof dir, "%s/bad.jsonl", w);
    if ((f = fopen(dir, "w"))) { fputs("{\"question\": \"ok\"}\n{\"question\": \"broken\"\n", f); fclose(f); }
    snprintf(args, sizeof args, "--jsonl --input '%s' --vocab-size 600 --out '%s/x'", dir, w);
    cli_bad(e, args, "bad.jsonl:2: invalid JSON");
    snprintf(args, sizeof args, "--input '%s/corpus.txt' --vocab-size 259 --out '%s/x'", w, w);
    cli_bad(e, args, "smaller than 256");
    snprintf(dir, sizeof dir, "%s/empty.txt", w);
    if ((f = fopen(dir, "w"))) { fputs("\n\r\n\n", f); fclose(f); }
    snprintf(args, sizeof args, "--input '%s' --vocab-size 600 --out '%s/x'", dir, w);
    cli_bad(e, args, "empty");
    snprintf(args, sizeof args, "--input '%s/corpus.txt' --out '%s/x'", w, w);
    cli_bad(e, args, "--vocab-size");
    snprintf(args, sizeof args, "--input '%s/corpus.txt' --vocab-size 600 --out '%s/x' --chat-template '%s/nope.jinja'", w, w, w);
    cli_bad(e, args, "nope.jinja");
}

// Library-level errors.
static void check_lib_errors(void) {
    t2_toktrain_params p = params();
    t2_toktrain *t = t2_toktrain_new();
    T2_CHECK(t2_toktrain_run(t, &p) != 0 && strstr(t2_last_error(), "empty"), "empty corpus: %s", t2_last_error());
    t2_toktrain_free(t);
    t = t2_toktrain_new();
    t2_toktrain_feed(t, "abc abc", 7);
    p.vocab_size = 259;
    T2_CHECK(t2_toktrain_run(t, &p) != 0 && strstr(t2_last_error(), "smaller"), "small vocab: %s", t2_last_error());
    p = params();
    p.bos = "<bos>";
    T2_CHECK(t2_toktrain_run(t, &p) != 0 && strstr(t2_last_error(), "<bos>"), "unknown bos: %s", t2_last_error());
    p = params();
    const char *dup[] = {"<s>", "<s>"};
    p.specials = dup; p.n_specials = 2; p.eos = p.pad = NULL;
    T2_CHECK(t2_toktrain_run(t, &p) != 0 && strstr(t2_last_error(), "twice"), "duplicate special: %s", t2_last_error());
    // invalid UTF-8 is read as U+FFFD, not an error; few pairs → stops early without failing
    T2_CHECK(t2_toktrain_feed(t, "\xff\xfe ok", 5) == 0, "invalid UTF-8: %s", t2_last_error());
    p = params();
    T2_CHECK(t2_toktrain_run(t, &p) == 0 && t2_toktrain_n_tokens(t) < VOCAB - 4, "tiny corpus: %s", t2_last_error());
    t2_toktrain_free(t);
}

// (6) ~1 MB of text, 1000 merges, in well under the test's budget.
static void check_speed(void) {
    size_t cap = 1 << 20;
    char *s = t2_malloc(cap + 64);
    uint64_t x = 12345;
    size_t n = 0;
    while (n < cap) {   // pseudo-words over a skewed alphabet: many distinct words, realistic pairs
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int len = 1 + (int)((x >> 33) % 9);
        s[n++] = ' ';
        for (int i = 0; i < len; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            unsigned r = (unsigned)(x >> 40) % 100;
            s[n++] = "etaoinshrdlcumwfgypbvkjxqz"[r < 60 ? r % 8 : r % 26];
        }
    }
    double t0 = t2_now();
    t2_toktrain *t = t2_toktrain_new();
    t2_toktrain_feed(t, s, n);
    t2_toktrain_params p = params();
    p.vocab_size = 256 + 4 + 1000;
    T2_CHECK(t2_toktrain_run(t, &p) == 0, "%s", t2_last_error());
    double dt = t2_now() - t0;
    printf("ok   1 MB, %d merges in %.2f s\n", t2_toktrain_n_merges(t), dt);
    T2_CHECK(t2_toktrain_n_merges(t) >= 1000 && dt < 5.0, "1 MB / 1000 merges took %.2f s (%d merges)", dt, t2_toktrain_n_merges(t));
    t2_toktrain_free(t);
    free(s);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    char path[4096], dir[4096];
    if (t2_test_python(&e, "tok_train_ref.py", "gen '%s'", e.work) != 0 ||
        t2_test_python(&e, "tok_train_ref.py", "train '%s/corpus.txt' %d 4 2 '%s/merges_ref.json'", e.work, VOCAB, e.work) != 0) {
        T2_CHECK(0, "reference script failed");
        return t2_test_done();
    }
    t2_toktrain *t = t2_toktrain_new();
    snprintf(path, sizeof path, "%s/corpus.txt", e.work);
    feed_lines(t, path);
    t2_toktrain_params p = params();
    double t0 = t2_now();
    T2_CHECK(t2_toktrain_run(t, &p) == 0, "train: %s", t2_last_error());
    printf("     trained %d merges in %.3f s\n", t2_toktrain_n_merges(t), t2_now() - t0);
    snprintf(path, sizeof path, "%s/merges_ref.json", e.work);
    check_merges(t, path);
    snprintf(dir, sizeof dir, "%s/tok", e.work);
    T2_CHECK(t2_toktrain_save(t, &p, dir) == 0, "save: %s", t2_last_error());
    if (t2_test_python(&e, "tok_ref.py", "'%s' tok", e.work) != 0) T2_CHECK(0, "tok_ref.py failed on the written tokenizer");
    else check_saved(&e, t, dir);
    check_cli(&e, t);
    t2_toktrain_free(t);
    check_lib_errors();
    check_speed();
    return t2_test_done();
}
