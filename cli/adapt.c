// adapt.c — `t2 adapt fewshot`: Transformer²'s few-shot adaptation (strategy C) — CEM over the mixing
// weights of a model's registry experts, fitness = accuracy on a few examples (ties: the mean
// log-likelihood of their answers), the best mixture saved as an ordinary expert file that
// `--adapt expert:FILE` (ask, eval) reuses. Thin: flags → t2_eval_fewshot (eval/run.h).
#include "cli/cli.h"
#include "core/error.h"
#include "core/util.h"
#include "eval/run.h"
#include "experts/dispatch.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 adapt fewshot --model DIR --examples FILE --out EXPERT [options]\n"
"\n"
"Search the mixture z = Σ α_k z_k of the model's experts (DIR/experts/registry.json) that answers\n"
"the examples best: the cross-entropy method (population 32, elite ratio 0.2, α init 1/K, std 0.5,\n"
"samples clamped to [0, 1], up to 100 generations), fitness = greedy accuracy on the examples (their\n"
"metric, as t2 eval scores them), ties broken by the mean per-token log-likelihood of the reference\n"
"answers. The best mixture is written as an expert file (its settings record α and the search);\n"
"use it with --adapt expert:EXPERT, or fewshot:EXPERT.\n"
"\n"
"  -m, --model DIR          checkpoint directory (required)\n"
"  -e, --examples FILE      the examples: JSONL as t2 eval --bench jsonl reads it (required)\n"
"  -o, --out EXPERT         the expert file to write (required)\n"
"      --experts A,B        the experts to mix (default: every dispatched expert of the registry)\n"
"      --per-matrix         one α per expert per matrix (the official \"per layer\") instead of per expert\n"
"      --population N       samples per generation (default 32)\n"
"      --generations N      at most (default 100)\n"
"      --elite R            elite ratio (default 0.2)\n"
"      --std S              initial std (default 0.5)\n"
"      --patience N         stop when the best has not improved for N generations (default: never)\n"
"      --seed S             (default 1)\n"
"  -n, --n-predict N        tokens per answer (default 32; gsm8k 256)\n"
"      --template NAME      chat template (default: recognised from the checkpoint)\n"
"  -t, --threads N          threads (default: all cores)\n"
"  -q, --quiet              no progress\n"
"  -h, --help               this help\n");
}

static int cmd_fewshot(int argc, char **argv) {
    const char *cmd = "adapt fewshot", *model = NULL, *examples = NULL, *out = NULL;
    t2_fewshot_opts fo = t2_fewshot_defaults();
    t2_eval_opts eo = {0};
    int threads = 0, quiet = 0, c;
    enum { O_EXPERTS = 256, O_PERM, O_POP, O_GEN, O_ELITE, O_STD, O_PAT, O_SEED, O_TEMPLATE };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"examples", required_argument, 0, 'e'}, {"out", required_argument, 0, 'o'},
        {"experts", required_argument, 0, O_EXPERTS}, {"per-matrix", no_argument, 0, O_PERM},
        {"population", required_argument, 0, O_POP}, {"generations", required_argument, 0, O_GEN},
        {"elite", required_argument, 0, O_ELITE}, {"std", required_argument, 0, O_STD},
        {"patience", required_argument, 0, O_PAT}, {"seed", required_argument, 0, O_SEED},
        {"n-predict", required_argument, 0, 'n'}, {"template", required_argument, 0, O_TEMPLATE},
        {"threads", required_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:e:o:n:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'e': examples = optarg; break;
        case 'o': out = optarg; break;
        case O_EXPERTS: fo.experts = optarg; break;
        case O_PERM: fo.per_matrix = 1; break;
        case O_POP: fo.population = t2_cli_int(cmd, "--population", optarg, 2, 100000); break;
        case O_GEN: fo.generations = t2_cli_int(cmd, "--generations", optarg, 1, 100000); break;
        case O_ELITE: fo.elite = (float)t2_cli_float(cmd, "--elite", optarg, 1e-6, 1); break;
        case O_STD: fo.init_std = (float)t2_cli_float(cmd, "--std", optarg, 1e-6, 100); break;
        case O_PAT: fo.patience = t2_cli_int(cmd, "--patience", optarg, 0, 100000); break;
        case O_SEED: fo.seed = (uint64_t)t2_cli_int(cmd, "--seed", optarg, 0, 2147483647); break;
        case 'n': eo.n_predict = t2_cli_int(cmd, "--n-predict", optarg, 1, 1 << 20); break;
        case O_TEMPLATE: eo.template_name = optarg; break;
        case 't': threads = t2_cli_int(cmd, "--threads", optarg, 1, 1024); break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) t2_cli_die(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model || !examples || !out) { usage(stderr); t2_cli_die(cmd, "--model, --examples and --out are required"); }
    fo.progress = !quiet;
    {   // where the result goes, before a search that may take minutes: its folder made, and writable
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", out);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
        if (*dir && t2_mkdirs(dir)) t2_cli_die(cmd, "--out %s: %s", out, t2_last_error());
        struct stat sb;
        if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)) t2_cli_die(cmd, "--out %s is a directory: give the expert file's path", out);
        if (access(*dir ? dir : "/", W_OK) != 0)
            t2_cli_die(cmd, "--out %s: cannot write in %s: %s", out, *dir ? dir : "/", strerror(errno));
    }
    t2_eval_set shots;
    if (t2_eval_load(T2_BENCH_JSONL, examples, NULL, NULL, 0, &shots)) t2_cli_die(cmd, "%s", t2_last_error());
    t2_vlm *m = t2_cli_load(cmd, model, threads, 1);
    t2_adapt_spec spec;
    t2_adapt_parse("prompt", &spec);   // any registry strategy: the dispatcher holds the registry and adapter
    t2_dispatcher *d = t2_dispatcher_new(m, &spec, NULL);
    if (!d) t2_cli_die(cmd, "%s", t2_last_error());
    t2_fewshot_result r;
    t2_expert *e = NULL;
    if (t2_eval_fewshot(m, d, &shots, &eo, &fo, &r, &e)) t2_cli_die(cmd, "%s", t2_last_error());
    if (t2_expert_save(e, out)) t2_cli_die(cmd, "%s", t2_last_error());
    printf("few-shot mixture of %d experts over %d examples: accuracy %.3f (base %.3f), answer log-likelihood %.4f\n", r.K,
           r.n_examples, r.accuracy, r.base_accuracy, r.loglik);
    printf("  α%s:", fo.per_matrix ? " (mean over matrices)" : "");
    for (int k = 0; k < r.K; k++) printf(" %s=%.4f", r.names[k], r.alpha[k]);
    printf("\n  %d generations, %d evaluations, %.1f s\n  written to %s (use --adapt expert:%s)\n", r.generations, r.evaluations,
           r.seconds, out, out);
    t2_expert_free(e);
    t2_dispatcher_free(d);
    t2_vlm_free(m);
    t2_eval_set_free(&shots);
    return 0;
}

int t2_cmd_adapt(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "fewshot")) return cmd_fewshot(argc - 1, argv + 1);
    t2_cli_die("adapt", "unknown subcommand '%s' (fewshot; see t2 adapt --help)", argv[1]);
}
