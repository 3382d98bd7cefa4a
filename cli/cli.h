// cli.h — what the `t2` subcommands share: the loaded text model, flag helpers, fatal errors.
// The CLI is thin (DESIGN.md §12): it turns flags into library calls and statuses into messages.
#ifndef T2_CLI_H
#define T2_CLI_H
#include "core/pool.h"
#include "core/safetensors.h"
#include "language/chat.h"
#include "language/lm.h"
#include "language/tokenizer.h"

typedef struct {
    const char *dir;
    t2_st *st;
    t2_lm_config cfg;
    t2_lm *lm;
    t2_tokenizer *tok;     // NULL when the checkpoint has none and none is required
    t2_pool *pool;
    int threads;
} t2_cli_model;

// Contract: load DIR's config, weights and (if NEED_TOKENIZER, or when present) tokenizer, with a
// pool of THREADS (<= 0: all cores). Exits with a message naming the file at fault on failure.
void t2_cli_model_load(t2_cli_model *m, const char *dir, int threads, int need_tokenizer);
void t2_cli_model_free(t2_cli_model *m);

// Print "t2 CMD: message" to stderr and exit(1).
void t2_cli_die(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
// Flag parsers that exit with a message naming the flag on a bad value.
int t2_cli_int(const char *cmd, const char *flag, const char *s, long lo, long hi);
double t2_cli_float(const char *cmd, const char *flag, const char *s, double lo, double hi);
// Contract: parse "1,2,3" into a malloc'd array; exits on a bad list.
int32_t *t2_cli_ids(const char *cmd, const char *s, int *n);

int t2_cmd_generate(int argc, char **argv);
int t2_cmd_info(int argc, char **argv);
int t2_cmd_bench(int argc, char **argv);

#endif
