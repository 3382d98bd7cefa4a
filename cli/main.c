// main.c — the `t2` program: picks the subcommand and hands it the rest of the arguments.
#include "cli/cli.h"
#include "core/kernels.h"
#include <stdio.h>
#include <string.h>

#define T2_VERSION "0.1.0"

static const struct { const char *name; int (*fn)(int, char **); const char *what; } cmds[] = {
    {"adapt", t2_cmd_adapt, "few-shot adaptation: search a mixture of experts on a few examples (CEM)"},
    {"ask", t2_cmd_ask, "answer a question about images with a LLaVA-family checkpoint"},
    {"chat", t2_cmd_chat, "an interactive conversation (with /image PATH)"},
    {"eval", t2_cmd_eval, "score a model on VQA / text benchmarks with the official metrics"},
    {"experts", t2_cmd_experts, "list a model's experts (experts/registry.json) and check they load"},
    {"generate", t2_cmd_generate, "generate text from a prompt with a Llama / Mistral / Qwen2 checkpoint"},
    {"info", t2_cmd_info, "describe a checkpoint directory"},
    {"bench", t2_cmd_bench, "measure prefill and decode speed (pp512 / tg128)"},
    {"serve", t2_cmd_serve, "a local demo page and an OpenAI-compatible API"},
    {"svf", t2_cmd_svf, "Singular Value Fine-tuning: decompose a model's matrices (SVD cache)"},
    {"tower", t2_cmd_tower, "pretrain a vision tower on the world's glyphs and pixels (before any LM reads it)"},
    {"train", t2_cmd_train, "train a LLaVA-style model from a JSON recipe"},
    {"tokenizer", t2_cmd_tokenizer, "train a byte-level BPE tokenizer (tokenizer.json)"},
    {"world", t2_cmd_world, "generate the procedural visual world's images and questions"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: t2 COMMAND [options]   (t2 COMMAND --help for each)\n\n"
               "t2 " T2_VERSION " — a C engine for self-adaptive vision-language models (Transformer²).\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].what);
}

int main(int argc, char **argv) {
    t2_blas_init(argc, argv);   // may re-exec once with a correct OPENBLAS_CORETYPE
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) { printf("t2 %s\n", T2_VERSION); return 0; }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "t2: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
