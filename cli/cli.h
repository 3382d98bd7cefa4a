// cli.h — what the `t2` subcommands share: loading a checkpoint, the sampling / stopping flags that
// generate, ask and chat all take, flag parsers, fatal errors. The CLI is thin (DESIGN.md §12): it
// turns flags into library calls and statuses into messages.
#ifndef T2_CLI_H
#define T2_CLI_H
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include "fusion/vlm.h"
#include "language/generate.h"
#include "language/sampler.h"

// Contract: t2_vlm_load or exit with its message ("t2 CMD: ...").
t2_vlm *t2_cli_load(const char *cmd, const char *dir, int threads, int need_tokenizer);

// Print "t2 CMD: message" to stderr and exit(1).
void t2_cli_die(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
// Flag parsers that exit with a message naming the flag on a bad value.
int t2_cli_int(const char *cmd, const char *flag, const char *s, long lo, long hi);
double t2_cli_float(const char *cmd, const char *flag, const char *s, double lo, double hi);
// Contract: parse "1,2,3" into a malloc'd array; exits on a bad list.
int32_t *t2_cli_ids(const char *cmd, const char *s, int *n);

// The sampling / stopping flags shared by generate, ask and chat.
enum {
    T2_OPT_TEMP = 1000, T2_OPT_TOPK, T2_OPT_TOPP, T2_OPT_MINP, T2_OPT_RP, T2_OPT_RLN, T2_OPT_SEED,
    T2_OPT_STOP, T2_OPT_IGNORE_EOS,
};
#define T2_CLI_SAMPLING_OPTIONS                                                                       \
    {"temp", required_argument, 0, T2_OPT_TEMP}, {"top-k", required_argument, 0, T2_OPT_TOPK},        \
    {"top-p", required_argument, 0, T2_OPT_TOPP}, {"min-p", required_argument, 0, T2_OPT_MINP},       \
    {"repeat-penalty", required_argument, 0, T2_OPT_RP},                                              \
    {"repeat-last-n", required_argument, 0, T2_OPT_RLN}, {"seed", required_argument, 0, T2_OPT_SEED}, \
    {"stop", required_argument, 0, T2_OPT_STOP}, {"ignore-eos", no_argument, 0, T2_OPT_IGNORE_EOS}
#define T2_CLI_SAMPLING_HELP                                                                          \
"      --temp T             temperature (0 = greedy)\n"                                              \
"      --top-k K            top-k filter (0 = off)\n"                                                \
"      --top-p P            nucleus filter (1 = off)\n"                                              \
"      --min-p P            min-p filter (0 = off)\n"                                                \
"      --repeat-penalty R   repetition penalty (default 1.0 = off)\n"                                \
"      --repeat-last-n N    window of the repetition penalty (default 64)\n"                         \
"      --seed S             sampling seed (default: from the clock)\n"                               \
"      --stop TEXT          stop when TEXT is generated (repeatable; EOS always stops)\n"            \
"      --ignore-eos         do not stop at EOS\n"

typedef struct {
    t2_sampler_params sp;
    t2_gen_params gp;
    int seed_set;
} t2_cli_sampling;

// Contract: defaults: temperature TEMP with llama.cpp's filters (top-k 40, top-p 0.95, min-p 0.05).
void t2_cli_sampling_init(t2_cli_sampling *s, float temp);
// Contract: apply flag C (one of T2_OPT_*) with ARG; 1 if it was one of them, 0 otherwise.
int t2_cli_sampling_opt(t2_cli_sampling *s, const char *cmd, int c, const char *arg);

// Contract: write LOGITS(n, vocab) to PATH as safetensors (F32 tensor "logits", metadata format
// t2-logits and the model), or exit naming the flag.
void t2_cli_dump_logits(const char *cmd, const char *path, const float *logits, int n, int vocab, const char *model);

// Contract: stream text to stdout (an on_text callback).
int t2_cli_print(void *ctx, const char *text, size_t len);
// Contract: print S as a JSON string literal (quotes, escapes) to F.
void t2_cli_json_string(FILE *f, const char *s, size_t len);

int t2_cmd_generate(int argc, char **argv);
int t2_cmd_ask(int argc, char **argv);
int t2_cmd_chat(int argc, char **argv);
int t2_cmd_eval(int argc, char **argv);
int t2_cmd_info(int argc, char **argv);
int t2_cmd_bench(int argc, char **argv);
int t2_cmd_serve(int argc, char **argv);
int t2_cmd_world(int argc, char **argv);
int t2_cmd_tokenizer(int argc, char **argv);
int t2_cmd_train(int argc, char **argv);
int t2_cmd_svf(int argc, char **argv);
int t2_cmd_experts(int argc, char **argv);
int t2_cmd_adapt(int argc, char **argv);
int t2_cmd_tower(int argc, char **argv);

#endif
