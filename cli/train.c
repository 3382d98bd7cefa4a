// cli/train.c — `t2 train`: flags → t2_train_run (train/train.h).
#include <stdio.h>
#include <stdlib.h>
#include "cli/cli.h"
#include "core/error.h"
#include "train/train.h"

static const char *HELP =
"usage: t2 train --config RECIPE.json [--resume] [--out DIR] [--threads N] [--max-steps N] [--quiet]\n"
"\n"
"Train a LLaVA-family (or text-only) model from a JSON recipe: the model's config.json, tokenizer and\n"
"preprocessor, data sources (world families drawn fresh, JSONL files in t2 eval's format), the\n"
"optimiser (AdamW, warmup + cosine, clipping, accumulation), checkpoints and validation.\n"
"docs/training.md describes every field. The run directory gets:\n"
"  checkpoint.safetensors   parameters + AdamW state + step + RNG (atomic, every checkpoint.every steps,\n"
"                           at the end and on SIGINT / SIGTERM)\n"
"  model/                   the model as an HF LLaVA checkpoint (t2 ask / eval / serve load it)\n"
"  log.csv, loss.png        step, loss, lr, grad norm, tokens/s, samples/s; the loss curve\n"
"  family_loss.csv          per data source, the loss per answer token over each log_every window\n"
"  valid.csv, valid/        per-family validation scores of the exported model (valid.every)\n"
"\n"
"  -c, --config FILE    the recipe\n"
"      --resume         continue the run in the out directory from its checkpoint (same curve as\n"
"                       an uninterrupted run: data and state are functions of the step)\n"
"  -o, --out DIR        the run directory (overrides the recipe's \"out\")\n"
"  -t, --threads N      worker threads (default: the recipe's \"threads\", else all cores): each trains\n"
"                       its share of every micro-batch on its own replica of the model (data\n"
"                       parallel; the recipe's \"data_parallel\": false makes them OpenBLAS threads)\n"
"      --max-steps N    stop after N steps of this invocation (checkpointed; resume later)\n"
"  -q, --quiet          no progress lines (every log_every steps: the loss, tokens/s and samples/s\n"
"                       averaged since the previous line, the lr, the last gradient norm, the eta)\n";

int t2_cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"resume", no_argument, 0, 'r'}, {"out", required_argument, 0, 'o'},
        {"threads", required_argument, 0, 't'}, {"max-steps", required_argument, 0, 'm'},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    t2_train_opts o = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:o:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o.config_path = optarg; break;
        case 'r': o.resume = 1; break;
        case 'o': o.out_dir = optarg; break;
        case 't': o.threads = t2_cli_int("train", "--threads", optarg, 1, 1024); break;
        case 'm': o.max_steps = t2_cli_int("train", "--max-steps", optarg, 1, 1000000000L); break;
        case 'q': o.quiet = 1; break;
        case 'h': fputs(HELP, stdout); return 0;
        default: fputs(HELP, stderr); return 2;
        }
    }
    if (optind < argc) t2_cli_die("train", "unexpected argument '%s' (see --help)", argv[optind]);
    if (!o.config_path) t2_cli_die("train", "--config RECIPE.json is required (see --help)");
    if (t2_train_run(&o)) t2_cli_die("train", "%s", t2_last_error());
    return 0;
}
