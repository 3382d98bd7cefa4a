// common.c — what the subcommands share: loading a checkpoint, sampling flags, flag parsers, output.
#include "cli/cli.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/safetensors.h"
#include "core/util.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void t2_cli_die(const char *cmd, const char *fmt, ...) {
    fprintf(stderr, "t2 %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

int t2_cli_int(const char *cmd, const char *flag, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        t2_cli_die(cmd, "%s expects an integer in [%ld, %ld], got '%s'", flag, lo, hi, s);
    return (int)v;
}

double t2_cli_float(const char *cmd, const char *flag, const char *s, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        t2_cli_die(cmd, "%s expects a number in [%g, %g], got '%s'", flag, lo, hi, s);
    return v;
}

int32_t *t2_cli_ids(const char *cmd, const char *s, int *n) {
    int cap = 16, k = 0;
    int32_t *ids = t2_malloc(sizeof(int32_t) * cap);
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX || (*end && *end != ','))
            t2_cli_die(cmd, "--prompt-ids expects comma-separated non-negative integers, got '%s'", s);
        if (k == cap) ids = t2_realloc(ids, sizeof(int32_t) * (cap *= 2));
        ids[k++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (k == 0) t2_cli_die(cmd, "--prompt-ids is empty");
    *n = k;
    return ids;
}

t2_vlm *t2_cli_load(const char *cmd, const char *dir, int threads, int need_tokenizer) {
    t2_vlm *m = t2_vlm_load(dir, threads, need_tokenizer);
    if (!m) t2_cli_die(cmd, "%s", t2_last_error());
    const t2_tokenizer *tok = t2_vlm_tok(m);
    if (tok && t2_tok_vocab_size(tok) > t2_vlm_lm_cfg(m)->vocab_size)
        fprintf(stderr, "t2: warning: tokenizer has %d tokens but the model's vocab_size is %d\n",
                t2_tok_vocab_size(tok), t2_vlm_lm_cfg(m)->vocab_size);
    return m;
}

void t2_cli_sampling_init(t2_cli_sampling *s, float temp) {
    memset(s, 0, sizeof *s);
    s->sp = t2_sampler_defaults();
    s->sp.temperature = temp;
    s->sp.top_k = 40;
    s->sp.top_p = 0.95f;
    s->sp.min_p = 0.05f;
    s->sp.repeat_penalty = 1.0f;
    s->sp.repeat_last_n = 64;
    s->sp.seed = (uint64_t)time(NULL);
}

int t2_cli_sampling_opt(t2_cli_sampling *s, const char *cmd, int c, const char *arg) {
    switch (c) {
    case T2_OPT_TEMP: s->sp.temperature = (float)t2_cli_float(cmd, "--temp", arg, 0, 100); return 1;
    case T2_OPT_TOPK: s->sp.top_k = t2_cli_int(cmd, "--top-k", arg, 0, 1 << 30); return 1;
    case T2_OPT_TOPP: s->sp.top_p = (float)t2_cli_float(cmd, "--top-p", arg, 0, 1); return 1;
    case T2_OPT_MINP: s->sp.min_p = (float)t2_cli_float(cmd, "--min-p", arg, 0, 1); return 1;
    case T2_OPT_RP: s->sp.repeat_penalty = (float)t2_cli_float(cmd, "--repeat-penalty", arg, 0.01, 100); return 1;
    case T2_OPT_RLN: s->sp.repeat_last_n = t2_cli_int(cmd, "--repeat-last-n", arg, 0, 1 << 24); return 1;
    case T2_OPT_SEED: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(arg, &end, 10);
        if (errno || end == arg || *end || arg[0] == '-') t2_cli_die(cmd, "--seed expects a non-negative integer, got '%s'", arg);
        s->sp.seed = v;
        s->seed_set = 1;
        return 1;
    }
    case T2_OPT_STOP:
        if (s->gp.n_stops == T2_GEN_MAX_STOPS) t2_cli_die(cmd, "at most %d --stop strings", T2_GEN_MAX_STOPS);
        if (!*arg) t2_cli_die(cmd, "--stop needs a non-empty string");
        s->gp.stops[s->gp.n_stops++] = arg;
        return 1;
    case T2_OPT_IGNORE_EOS: s->gp.ignore_eos = 1; return 1;
    }
    return 0;
}

void t2_cli_dump_logits(const char *cmd, const char *path, const float *logits, int n, int vocab, const char *model) {
    t2_st_writer *w = t2_st_writer_new();
    int64_t shape[2] = {n, vocab};
    if (t2_st_writer_add(w, "logits", T2_DTYPE_F32, 2, shape, logits) || t2_st_writer_meta(w, "format", "t2-logits") ||
        t2_st_writer_meta(w, "model", model) || t2_st_writer_write(w, path))
        t2_cli_die(cmd, "--dump-logits: %s", t2_last_error());
    t2_st_writer_free(w);
}

int t2_cli_print(void *ctx, const char *text, size_t len) {
    (void)ctx;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

void t2_cli_json_string(FILE *f, const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t k = t2_utf8_seq(s + i, len - i);
        if (k == 0) { fputs("\\ufffd", f); i++; continue; }   // invalid bytes → U+FFFD
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fwrite(s + i, 1, k, f);
        i += k;
    }
    fputc('"', f);
}
