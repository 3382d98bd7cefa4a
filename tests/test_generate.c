// test_generate.c — temperature-0 end to end: `t2 generate` (tokenizer → chat template → model →
// greedy decoding → detokenizer) against an independent pipeline (tests/ref/generate_ref.py: the real
// Jinja chat template through jinja2, the reference BPE, the torch f64 model) on random checkpoints
// that carry the test tokenizers (Llama-3 style byte-level BPE, Qwen2 style, SentencePiece style).
// Also stop strings, seeded sampling, and the CLI's errors on bad flags.
#include "testutil.h"
#include "core/util.h"
#include <stdlib.h>
#include <string.h>

#define PROMPT "Hello world, the quick brown fox"
#define NGEN 16

// Runs t2 generate with ARGS on DIR; stdout into *out (len in *len), stderr into DIR/stderr.txt.
static int t2_run(const t2_test_env *e, const char *dir, const char *args, char **out, size_t *len) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "timeout 120 '%s' generate --model '%s' %s 2>'%s/stderr.txt' > '%s/stdout.bin'", e->t2, dir, args,
             dir, dir);
    int rc = t2_test_sh(NULL, "%s", cmd);
    char path[2048];
    snprintf(path, sizeof path, "%s/stdout.bin", dir);
    *out = t2_read_file(path, len);
    return rc;
}

// The prompt ids t2 printed with -v ("prompt (N tokens): a b c").
static int prompt_ids_from_stderr(const char *dir, int *ids, int cap) {
    char path[2048];
    snprintf(path, sizeof path, "%s/stderr.txt", dir);
    char *s = t2_read_file(path, NULL);
    if (!s) return -1;
    char *p = strstr(s, "tokens):");
    int n = 0;
    if (p) {
        p += 8;
        char *end;
        for (long v; n < cap && (v = strtol(p, &end, 10), end != p); p = end) ids[n++] = (int)v;
    }
    free(s);
    return n;
}

static void check_pipeline(const t2_test_env *e, const char *fixture, const char *arch, const char *jinja) {
    char dir[1024], tokdir[1024], ref[1100], args[1024];
    snprintf(dir, sizeof dir, "%s/model-%s%s", e->work, fixture, jinja ? "-chat" : "");
    snprintf(tokdir, sizeof tokdir, "%s/fixtures/%s", e->work, fixture);
    snprintf(ref, sizeof ref, "%s/ref", dir);
    T2_CHECK(t2_test_python(e, "generate_ref.py", "make '%s' '%s' %s 11", dir, tokdir, arch) == 0, "make %s", dir);
    if (jinja)
        T2_CHECK(t2_test_python(e, "generate_ref.py", "'%s' '%s' %d '%s' --chat '%s/tests/ref/templates/%s'", dir,
                                PROMPT, NGEN, ref, e->src, jinja) == 0, "reference for %s", dir);
    else
        T2_CHECK(t2_test_python(e, "generate_ref.py", "'%s' '%s' %d '%s'", dir, PROMPT, NGEN, ref) == 0,
                 "reference for %s", dir);
    snprintf(args, sizeof args, "-p '%s' -n %d --temp 0 --ignore-eos -v %s", PROMPT, NGEN, jinja ? "--chat" : "");
    char *out = NULL;
    size_t len = 0;
    int rc = t2_run(e, dir, args, &out, &len);
    T2_CHECK(rc == 0 && out, "t2 generate failed on %s", dir);
    char txt[1200];
    snprintf(txt, sizeof txt, "%s.txt", ref);
    size_t rlen = 0;
    char *want = t2_read_file(txt, &rlen);
    T2_CHECK(want != NULL, "no reference text %s", txt);
    if (out && want) {
        // t2 ends the output with one newline.
        int same = len == rlen + 1 && memcmp(out, want, rlen) == 0 && out[rlen] == '\n';
        T2_CHECK(same, "%s: %s: t2 printed %zu bytes, the reference %zu (t2 '%.*s' vs '%.*s')", fixture,
                 jinja ? jinja : "plain", len, rlen, (int)len, out, (int)rlen, want);
    }
    // The prompt ids match the reference's (tokenizer and template agree, not just the text).
    int ids[512], n = prompt_ids_from_stderr(dir, ids, 512);
    snprintf(txt, sizeof txt, "%s.json", ref);
    char *js = t2_read_file(txt, NULL);
    if (js && n > 0) {
        char buf[4096] = "{\"prompt_ids\": [";
        size_t k = strlen(buf);
        for (int i = 0; i < n; i++) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", i ? ", " : "", ids[i]);
        snprintf(buf + k, sizeof buf - k, "]");
        T2_CHECK(strncmp(js, buf, strlen(buf)) == 0, "%s: prompt ids differ:\n  t2:  %s\n  ref: %.300s", fixture, buf, js);
    } else {
        T2_CHECK(0, "%s: no prompt ids to compare (t2 printed %d)", fixture, n);
    }
    free(js);
    free(out);
    free(want);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    char fx[1024];
    snprintf(fx, sizeof fx, "%s/fixtures", e.work);
    T2_CHECK(t2_test_python(&e, "tok_fixtures.py", "'%s' >/dev/null", fx) == 0, "tokenizer fixtures");

    check_pipeline(&e, "llama3", "llama3", NULL);
    check_pipeline(&e, "llama3", "llama3", "meta-llama-3-8b-instruct.jinja");
    check_pipeline(&e, "qwen2", "qwen2", "qwen2-0.5b-instruct.jinja");
    check_pipeline(&e, "spm", "llama", NULL);

    // Stop strings cut the output before the match; sampling is reproducible for a seed.
    char dir[1024], *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    snprintf(dir, sizeof dir, "%s/model-llama3", e.work);
    char ref[1100];
    snprintf(ref, sizeof ref, "%s/ref.txt", dir);
    size_t rlen;
    char *want = t2_read_file(ref, &rlen);
    if (want && rlen > 6) {
        char stop[8], args[512];
        memcpy(stop, want + 4, 2);   // a 2-byte stop string first seen at byte >= 4 of the greedy text
        stop[2] = 0;
        char *first = memmem(want, rlen, stop, 2);
        int nul = memchr(stop, 0, 2) != NULL || strchr(stop, '\'') != NULL;
        if (!nul) {
            snprintf(args, sizeof args, "-p '%s' -n %d --temp 0 --ignore-eos --stop '%s'", PROMPT, NGEN, stop);
            T2_CHECK(t2_run(&e, dir, args, &a, &la) == 0, "--stop run failed");
            size_t cut = (size_t)(first - want);
            T2_CHECK(a && la == cut + 1 && memcmp(a, want, cut) == 0, "--stop '%s': expected the first %zu bytes, got %zu",
                     stop, cut, la);
            free(a);
        }
    }
    free(want);
    T2_CHECK(t2_run(&e, dir, "-p 'Once' -n 12 --temp 0.9 --seed 5 --ignore-eos", &a, &la) == 0, "seeded run");
    T2_CHECK(t2_run(&e, dir, "-p 'Once' -n 12 --temp 0.9 --seed 5 --ignore-eos", &b, &lb) == 0, "seeded run");
    T2_CHECK(a && b && la == lb && memcmp(a, b, la) == 0, "same seed, different output");
    free(a);
    free(b);

    // A vocabulary padded past the tokenizer (llava-1.5: 32064 vs 32002): ids the tokenizer cannot
    // decode are generated and fed back but print nothing (this once looped forever).
    char pad[1024];
    snprintf(pad, sizeof pad, "%s/model-padded", e.work);
    T2_CHECK(t2_test_python(&e, "generate_ref.py", "make '%s' '%s/llama3' llama 3 8", pad, fx) == 0 &&
             t2_test_python(&e, "generate_ref.py", "pad-only '%s'", pad) == 0, "padded model");
    T2_CHECK(t2_run(&e, pad, "-p 'Once' -n 5 --temp 0 --ignore-eos", &a, &la) == 0 && a && la == 1 && a[0] == '\n',
             "padded ids: %zu bytes of output", la);
    free(a);
    char errpath[1100], *err;
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", pad);
    err = t2_read_file(errpath, NULL);
    T2_CHECK(err && strstr(err, "generated 5 tokens"), "padded ids: '%s'", err ? err : "");
    free(err);

    // Bad flags and inputs: a message naming the problem and a non-zero exit, never a crash.
    static const struct { const char *args, *expect; } bad[] = {
        {"-p hi -n -3", "--n-predict"},
        {"-p hi --temp abc", "--temp"},
        {"-p hi --top-p 2", "--top-p"},
        {"-p hi --template nope", "unknown chat template"},
        {"--prompt-ids 1,x", "--prompt-ids"},
        {"-p hi --prompt-ids 1", "exactly one"},
        {"-p hi --ctx 100000", "max_position_embeddings"},
        {"-p hi stray", "unexpected argument"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *log = NULL;
        int rc = t2_test_sh(&log, "'%s' generate --model '%s' %s 2>&1", e.t2, dir, bad[i].args);
        T2_CHECK(rc == 1 && log && strstr(log, bad[i].expect), "'%s': rc %d, output '%s'", bad[i].args, rc, log);
        free(log);
    }
    char *log = NULL;
    int rc = t2_test_sh(&log, "'%s' --help && '%s' generate --help && '%s' info --help && '%s' bench --help", e.t2, e.t2,
                        e.t2, e.t2);
    T2_CHECK(rc == 0 && strstr(log, "generate") && strstr(log, "--dump-logits") && strstr(log, "pp"), "help texts");
    free(log);
    // bench --json is one JSON object, the model path escaped (reached here through a quote and a backslash)
    rc = t2_test_sh(&log, "ln -sfn '%s' '%s/be\"n\\ch' && '%s' bench --model '%s/be\"n\\ch' -p 8 -n 4 -r 1 --json | "
                          "python3 -c 'import json,sys; j=json.load(sys.stdin); "
                          "assert j[\"model\"].endswith(\"/be\\\"n\\\\ch\"), j[\"model\"]; "
                          "assert j[\"pp\"][\"n\"] == 8 and j[\"tg\"][\"n\"] == 4 and j[\"pp\"][\"tok_s\"] > 0 and j[\"tg\"][\"tok_s\"] > 0, j; "
                          "print(\"ok\")' 2>&1",
                    dir, e.work, e.t2, e.work);
    T2_CHECK(rc == 0 && log && strstr(log, "ok"), "bench --json: rc %d '%s'", rc, log);
    free(log);
    rc = t2_test_sh(&log, "'%s' frobnicate 2>&1", e.t2);
    T2_CHECK(rc == 2 && strstr(log, "unknown command"), "unknown command: rc %d '%s'", rc, log);
    free(log);
    // Corrupt weights: the error names the file.
    rc = t2_test_sh(&log, "cp -r '%s' '%s/corrupt' && truncate -s 100 '%s/corrupt/model.safetensors' && "
                    "'%s' generate --model '%s/corrupt' -p hi 2>&1", dir, e.work, e.work, e.t2, e.work);
    T2_CHECK(rc == 1 && strstr(log, "model.safetensors"), "truncated weights: rc %d '%s'", rc, log);
    free(log);
    // An activation the engine does not compute is refused, not run as SiLU; so is a rope_theta of 0.
    rc = t2_test_sh(&log, "rm -rf '%s/act' && cp -r '%s' '%s/act' && sed -i 's/\"silu\"/\"gelu\"/' '%s/act/config.json' && "
                          "'%s' generate --model '%s/act' -p hi 2>&1; echo rc=$?; sed -i 's/\"gelu\"/\"silu\"/; s/\"rope_theta\": *[0-9.e+]*/\"rope_theta\": 0/' "
                          "'%s/act/config.json' && '%s' generate --model '%s/act' -p hi 2>&1; echo rc=$?",
                    e.work, dir, e.work, e.work, e.t2, e.work, e.work, e.t2, e.work);
    T2_CHECK(log && strstr(log, "hidden_act gelu is not supported") && strstr(log, "'rope_theta' must be a positive number (a float)") && !strstr(log, "rc=0"),
             "unsupported config values: '%s'", log);
    free(log);
    rc = t2_test_sh(&log, "'%s' info --model '%s' 2>&1", e.t2, dir);
    T2_CHECK(rc == 0 && strstr(log, "llama") && strstr(log, "tokenizer") && strstr(log, "OpenBLAS"), "info: '%s'", log);
    free(log);
    return t2_test_done();
}
