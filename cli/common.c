// model.c — loading a text checkpoint directory for the CLI, and the small flag helpers.
#include "cli/cli.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/util.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        if (k == cap) ids = realloc(ids, sizeof(int32_t) * (cap *= 2));
        ids[k++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (k == 0) t2_cli_die(cmd, "--prompt-ids is empty");
    *n = k;
    return ids;
}

void t2_cli_model_load(t2_cli_model *m, const char *dir, int threads, int need_tokenizer) {
    memset(m, 0, sizeof *m);
    m->dir = dir;
    if (!t2_is_dir(dir)) t2_cli_die("model", "%s: not a directory (expected a Hugging Face checkpoint directory)", dir);
    if (t2_lm_config_load(dir, &m->cfg)) t2_cli_die("model", "%s", t2_last_error());
    m->st = t2_st_open(dir);
    if (!m->st) t2_cli_die("model", "%s", t2_last_error());
    m->threads = threads > 0 ? threads : t2_ncores();
    m->pool = t2_pool_new(m->threads);
    t2_blas_threads(m->threads);
    m->lm = t2_lm_new(m->st, &m->cfg, m->pool);
    if (!m->lm) t2_cli_die("model", "%s: %s", dir, t2_last_error());
    char path[4096];
    int has_tok = (t2_path_join(path, sizeof path, dir, "tokenizer.json") == 0 && t2_file_exists(path)) ||
                  (t2_path_join(path, sizeof path, dir, "vocab.json") == 0 && t2_file_exists(path));
    if (need_tokenizer || has_tok) {
        m->tok = t2_tok_load(dir);
        if (!m->tok) t2_cli_die("model", "%s", t2_last_error());
        if (t2_tok_vocab_size(m->tok) > m->cfg.vocab_size)
            fprintf(stderr, "t2: warning: tokenizer has %d tokens but the model's vocab_size is %d\n",
                    t2_tok_vocab_size(m->tok), m->cfg.vocab_size);
    }
}

void t2_cli_model_free(t2_cli_model *m) {
    t2_tok_free(m->tok);
    t2_lm_free(m->lm);
    t2_st_close(m->st);
    t2_pool_free(m->pool);
}
