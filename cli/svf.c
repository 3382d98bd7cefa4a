// cli/svf.c — `t2 svf decompose` (the SVD cache of a model's language matrices, with a progress bar
// and a timing summary), `t2 svf train` (an expert by REINFORCE, train/svf_train.h) and `t2 svf show`
// (an expert's metadata). Thin: flags → library calls (svf/, docs/svf.md).
#include "cli/cli.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "svf/svf.h"
#include "eval/bench.h"
#include "train/svf_train.h"
#include "fusion/vlm.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 svf decompose --model DIR [--targets mlp|attn|all] [--out FILE] [--threads N] [options]\n"
"       t2 svf train --model DIR --task TASK --train FILE [--valid FILE] --out EXPERT [options]\n"
"       t2 svf show --model DIR --expert FILE\n"
"\n"
"Singular Value Fine-tuning (Transformer², docs/svf.md). decompose computes the reduced SVD\n"
"W = U diag(S) Vᵀ (f32, LAPACKE) of every targeted language-model matrix once and stores it beside\n"
"the model (DIR/svf-<targets>.safetensors) with a fingerprint of the weights, so a stale cache is\n"
"refused. It resumes where a killed run stopped (FILE.partial/ holds the finished matrices).\n"
"\n"
"  -m, --model DIR          checkpoint directory (or .safetensors / index.json file)\n"
"  -t, --targets T          mlp (gate/up/down, the default, as the official code), attn (q/k/v/o), all\n"
"  -o, --out FILE           output file (default DIR/svf-<targets>.safetensors)\n"
"      --threads N          OpenBLAS / hashing threads (default: all cores)\n"
"  -f, --force              recompute even if FILE is up to date\n"
"  -v, --verbose            one line per matrix (shape, time, size)\n"
"  -q, --quiet              no progress bar\n"
"  -h, --help               this help\n");
}

typedef struct {
    double t0, slowest;
    const char *slowest_name;
    char slow_buf[160];
    int verbose, quiet, tty, resumed, computed, fallbacks;
    size_t bytes;
} prog;

static void on_progress(void *ctx, const t2_svf_progress *p) {
    prog *g = ctx;
    g->bytes += p->bytes;
    if (p->resumed) g->resumed++;
    else g->computed++;
    if (p->fallback) g->fallbacks++;
    if (!p->resumed && p->seconds > g->slowest) {
        g->slowest = p->seconds;
        snprintf(g->slow_buf, sizeof g->slow_buf, "%s", p->name);
        g->slowest_name = g->slow_buf;
    }
    if (g->verbose) {
        if (g->tty && !g->quiet) fputs("\r\033[K", stderr);
        fprintf(stderr, "  [%d/%d] %s (%d x %d, k %d): %s%.3f s, %.2f MB%s\n", p->index + 1, p->total, p->name,
                p->rows, p->cols, p->k, p->resumed ? "resumed, " : "", p->seconds, p->bytes / 1e6,
                p->fallback ? " (dgesdd fallback)" : "");
    }
    if (!g->quiet && (g->tty || p->index + 1 == p->total)) {
        int w = 30, fill = (p->index + 1) * w / p->total;
        double el = t2_now() - g->t0, eta = g->computed ? el / g->computed * (p->total - p->index - 1) : 0;
        fprintf(stderr, "\rt2 svf decompose: [%.*s%*s] %d/%d  %.0f s elapsed, ~%.0f s left ", fill,
                "##############################", w - fill, "", p->index + 1, p->total, el, eta);
        if (p->index + 1 == p->total) fputc('\n', stderr);
        fflush(stderr);
    }
}

static int cmd_decompose(int argc, char **argv) {
    const char *cmd = "svf decompose", *model = NULL, *out = NULL;
    t2_svf_decompose_opts o = t2_svf_decompose_defaults();
    prog g = {0};
    enum { O_THREADS = 256 };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"targets", required_argument, 0, 't'},
        {"out", required_argument, 0, 'o'}, {"threads", required_argument, 0, O_THREADS},
        {"force", no_argument, 0, 'f'}, {"verbose", no_argument, 0, 'v'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:t:o:fvqh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 't':
            if ((o.targets = t2_svf_targets_parse(optarg)) < 0) t2_cli_die(cmd, "--targets: %s", t2_last_error());
            break;
        case 'o': out = optarg; break;
        case O_THREADS: o.threads = t2_cli_int(cmd, "--threads", optarg, 1, 1024); break;
        case 'f': o.force = 1; break;
        case 'v': g.verbose = 1; break;
        case 'q': g.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: fprintf(stderr, "see t2 svf --help\n"); return 2;
        }
    }
    if (optind < argc) t2_cli_die(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model) t2_cli_die(cmd, "--model DIR is required");
    if (!t2_is_dir(model) && !t2_file_exists(model)) t2_cli_die(cmd, "--model %s: no such directory or file", model);
    t2_st *st = t2_st_open(model);
    if (!st) t2_cli_die(cmd, "%s", t2_last_error());
    char def[4096];
    if (!out) {
        // Beside the weights: DIR itself, or the directory of a file given as --model.
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", model);
        if (!t2_is_dir(model)) {
            char *sl = strrchr(dir, '/');
            if (sl) *sl = 0;
            else snprintf(dir, sizeof dir, ".");
        }
        if (t2_svf_default_path(def, sizeof def, dir, o.targets)) t2_cli_die(cmd, "%s", t2_last_error());
        out = def;
    }
    g.tty = isatty(2);
    g.t0 = t2_now();
    o.progress = on_progress;
    o.ctx = &g;
    int up = 0;
    int rc = t2_svf_decompose(st, out, &o, &up);
    t2_st_close(st);
    if (rc < 0) t2_cli_die(cmd, "%s", t2_last_error());
    if (up) {
        fprintf(stderr, "t2 svf decompose: %s is up to date with the weights (--force recomputes)\n", out);
        return 0;
    }
    double el = t2_now() - g.t0;
    fprintf(stderr, "t2 svf decompose: %d matrices (%s), %d computed in %.2f s (%.3f s each; slowest %.3f s: %s)",
            g.resumed + g.computed, t2_svf_targets_name(o.targets), g.computed, el,
            g.computed ? el / g.computed : 0.0, g.slowest, g.slowest_name ? g.slowest_name : "-");
    if (g.resumed) fprintf(stderr, ", %d resumed", g.resumed);
    if (g.fallbacks) fprintf(stderr, ", %d with the dgesdd fallback", g.fallbacks);
    fprintf(stderr, "; %s: %.1f MB\n", out, g.bytes / 1e6);
    return 0;
}

static const char *TRAIN_HELP =
"usage: t2 svf train --model DIR --task TASK --train FILE [--valid FILE] --out EXPERT [options]\n"
"\n"
"Train an SVF expert with REINFORCE (Transformer² §3.2, the official recipe's defaults): rollouts by\n"
"the model with the current expert applied, reward +1 / -1 from the eval scorer of each item's\n"
"metric, loss -r * sum log p(answer tokens) + kl * KL(base || expert) over the answer tokens, the\n"
"gradient w.r.t. every z through the language model's backward, Adam with global-norm clipping.\n"
"The best expert on --valid (checked every --valid-every iterations) is written to EXPERT; the run\n"
"(log.csv, reward.png, checkpoint.safetensors) lives in EXPERT.run/. Run `t2 svf decompose` first.\n"
"\n"
"  -m, --model DIR        the base checkpoint\n"
"      --svf FILE         its decomposition (default DIR/svf-mlp.safetensors)\n"
"      --task NAME        the expert's task (metadata; e.g. textvqa, math)\n"
"      --train FILE       training items: t2 eval's generic JSONL (t2 world gen writes it)\n"
"      --valid FILE       validation items (same format); without it the last z is kept\n"
"      --bench KIND       the format of --train / --valid (default jsonl; gsm8k, arc, textvqa, ...)\n"
"      --images DIR       images of the items (default: beside the file)\n"
"  -o, --out EXPERT       the expert file (.safetensors)\n"
"      --param P          official (sigmoid mask, sum-preserving; default) or scale (the paper's)\n"
"      --iters N          iterations (default 100)\n"
"      --batch N          rollouts per iteration (default 32)\n"
"      --lr X             Adam learning rate (default 2e-3)\n"
"      --clip X           global gradient-norm clip (default 1e-3)\n"
"      --kl X             lambda of the KL term (default 0)\n"
"      --temp T           rollout temperature (default 0: greedy)\n"
"      --baseline B       none (default, the official recipe: advantage = reward) or mean (reward minus\n"
"                         the batch's mean reward)\n"
"      --objective O      reinforce (default) or nll: no rollouts, next-token prediction of each item's\n"
"                         first reference answer through the same z-gradient (the paper's ablation)\n"
"      --max-new N        tokens per rollout (default 16)\n"
"      --valid-every N    iterations between validations (default 10)\n"
"      --valid-n N        validate on the first N items (default all)\n"
"      --seed S           initialisation, item order, sampling (default 1)\n"
"      --threads N        threads (default all cores)\n"
"      --resume           continue EXPERT.run/ from its checkpoint\n"
"      --max-iters N      stop after N iterations of this invocation (resume later)\n"
"  -q, --quiet            no progress lines\n";

// A two-way option: 0 for NO, 1 for YES; anything else is reported and gives -1.
static int either(const char *cmd, const char *flag, const char *s, const char *no, const char *yes) {
    if (!strcmp(s, no)) return 0;
    if (!strcmp(s, yes)) return 1;
    fprintf(stderr, "%s: %s must be %s or %s, not '%s'\n", cmd, flag, no, yes, s);
    return -1;
}

static int cmd_train(int argc, char **argv) {
    enum { O_SVF = 300, O_TASK, O_TRAIN, O_VALID, O_BENCH, O_IMAGES, O_PARAM, O_ITERS, O_BATCH, O_LR, O_CLIP, O_KL,
           O_TEMP, O_MAXNEW, O_VEVERY, O_VN, O_SEED, O_THREADS, O_RESUME, O_MAXIT, O_BASELINE, O_OBJECTIVE };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"svf", required_argument, 0, O_SVF}, {"task", required_argument, 0, O_TASK},
        {"train", required_argument, 0, O_TRAIN}, {"valid", required_argument, 0, O_VALID},
        {"bench", required_argument, 0, O_BENCH}, {"images", required_argument, 0, O_IMAGES},
        {"out", required_argument, 0, 'o'}, {"param", required_argument, 0, O_PARAM},
        {"iters", required_argument, 0, O_ITERS}, {"batch", required_argument, 0, O_BATCH},
        {"lr", required_argument, 0, O_LR}, {"clip", required_argument, 0, O_CLIP}, {"kl", required_argument, 0, O_KL},
        {"temp", required_argument, 0, O_TEMP}, {"baseline", required_argument, 0, O_BASELINE},
        {"objective", required_argument, 0, O_OBJECTIVE}, {"max-new", required_argument, 0, O_MAXNEW},
        {"valid-every", required_argument, 0, O_VEVERY}, {"valid-n", required_argument, 0, O_VN},
        {"seed", required_argument, 0, O_SEED}, {"threads", required_argument, 0, O_THREADS},
        {"resume", no_argument, 0, O_RESUME}, {"max-iters", required_argument, 0, O_MAXIT},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *cmd = "svf train", *train = NULL, *valid = NULL, *images = NULL, *bench = "jsonl";
    t2_svf_train_opts o = t2_svf_train_defaults();
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model_dir = optarg; break;
        case O_SVF: o.svf_path = optarg; break;
        case O_TASK: o.task = optarg; break;
        case O_TRAIN: train = optarg; break;
        case O_VALID: valid = optarg; break;
        case O_BENCH: bench = optarg; break;
        case O_IMAGES: images = optarg; break;
        case 'o': o.out = optarg; break;
        case O_PARAM:
            if ((o.param = t2_svf_param_parse(optarg)) < 0) t2_cli_die(cmd, "--param: %s", t2_last_error());
            break;
        case O_ITERS: o.iters = t2_cli_int(cmd, "--iters", optarg, 1, 1000000); break;
        case O_BATCH: o.batch = t2_cli_int(cmd, "--batch", optarg, 1, 4096); break;
        case O_LR: o.lr = t2_cli_float(cmd, "--lr", optarg, 1e-9, 10); break;
        case O_CLIP: o.clip = t2_cli_float(cmd, "--clip", optarg, 0, 1e9); break;
        case O_KL: o.kl = t2_cli_float(cmd, "--kl", optarg, 0, 1e6); break;
        case O_TEMP: o.temperature = (float)t2_cli_float(cmd, "--temp", optarg, 0, 10); break;
        case O_BASELINE:
            if ((o.baseline = either(cmd, "--baseline", optarg, "none", "mean")) < 0) return 2;
            break;
        case O_OBJECTIVE:
            if ((o.nll = either(cmd, "--objective", optarg, "reinforce", "nll")) < 0) return 2;
            break;
        case O_MAXNEW: o.max_new = t2_cli_int(cmd, "--max-new", optarg, 1, 63); break;
        case O_VEVERY: o.valid_every = t2_cli_int(cmd, "--valid-every", optarg, 1, 1000000); break;
        case O_VN: o.valid_n = t2_cli_int(cmd, "--valid-n", optarg, 0, 100000000); break;
        case O_SEED: o.seed = (uint64_t)t2_cli_int(cmd, "--seed", optarg, 0, 2000000000L); break;
        case O_THREADS: o.threads = t2_cli_int(cmd, "--threads", optarg, 1, 1024); break;
        case O_RESUME: o.resume = 1; break;
        case O_MAXIT: o.max_iters = t2_cli_int(cmd, "--max-iters", optarg, 1, 1000000); break;
        case 'q': o.quiet = 1; break;
        case 'h': fputs(TRAIN_HELP, stdout); return 0;
        default: fputs(TRAIN_HELP, stderr); return 2;
        }
    }
    if (optind < argc) t2_cli_die(cmd, "unexpected argument '%s' (see --help)", argv[optind]);
    if (!o.model_dir || !train || !o.out) t2_cli_die(cmd, "--model, --train and --out are required (see --help)");
    if (o.nll && o.baseline) t2_cli_die(cmd, "--objective nll gives every item reward +1: --baseline mean would leave no gradient");
    int kind = t2_bench_parse(bench);
    if (kind < 0) t2_cli_die(cmd, "--bench: unknown kind '%s'", bench);
    t2_eval_set tr, va;
    memset(&va, 0, sizeof va);
    char dir[2048];
    const char *img = images;
    if (!img) {   // images beside the file
        snprintf(dir, sizeof dir, "%s", train);
        char *sl = strrchr(dir, '/');
        if (sl) *sl = 0; else snprintf(dir, sizeof dir, ".");
        img = dir;
    }
    if (t2_eval_load((t2_bench_kind)kind, train, NULL, img, 0, &tr)) t2_cli_die(cmd, "%s", t2_last_error());
    if (valid) {
        char vdir[2048];
        const char *vimg = images;
        if (!vimg) {
            snprintf(vdir, sizeof vdir, "%s", valid);
            char *sl = strrchr(vdir, '/');
            if (sl) *sl = 0; else snprintf(vdir, sizeof vdir, ".");
            vimg = vdir;
        }
        if (t2_eval_load((t2_bench_kind)kind, valid, NULL, vimg, 0, &va)) t2_cli_die(cmd, "%s", t2_last_error());
    }
    o.train = &tr, o.valid = valid ? &va : NULL;
    if (!o.task) o.task = tr.n ? tr.items[0].task : "";
    int rc = t2_svf_train_run(&o);
    if (rc) t2_cli_die(cmd, "%s", t2_last_error());
    t2_eval_set_free(&tr);
    if (valid) t2_eval_set_free(&va);
    return 0;
}

static int cmd_show(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"expert", required_argument, 0, 'e'},
                                         {"svf", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *cmd = "svf show", *model = NULL, *expert = NULL, *svfp = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:e:h", opts, NULL)) != -1) {
        if (c == 'm') model = optarg;
        else if (c == 'e') expert = optarg;
        else if (c == 's') svfp = optarg;
        else if (c == 'h') { puts("usage: t2 svf show --model DIR --expert FILE [--svf FILE]: an expert's metadata and z statistics"); return 0; }
        else return 2;
    }
    if (!model || !expert) t2_cli_die(cmd, "--model and --expert are required");
    t2_st *st = t2_st_open(model);
    if (!st) t2_cli_die(cmd, "%s", t2_last_error());
    char path[2048];
    if (svfp) snprintf(path, sizeof path, "%s", svfp);
    else t2_svf_default_path(path, sizeof path, model, T2_SVF_MLP);
    t2_svf *s = t2_svf_load(path, st, NULL);
    if (!s) t2_cli_die(cmd, "%s", t2_last_error());
    t2_expert *e = t2_expert_load(expert, s);
    if (!e) t2_cli_die(cmd, "%s", t2_last_error());
    double mn = 1e30, mx = -1e30, sum = 0;
    for (size_t i = 0; i < e->n; i++) mn = e->z[i] < mn ? e->z[i] : mn, mx = e->z[i] > mx ? e->z[i] : mx, sum += e->z[i];
    printf("expert %s\n  task %s\n  parameterisation %s\n  targets %s, %d matrices, %zu values (z min %.4f, mean %.4f, max %.4f)\n"
           "  validation score %s%.2f\n  settings %s\n",
           expert, e->task, t2_svf_param_name(e->param), t2_svf_targets_name(t2_svf_targets_of(s)), t2_svf_count(s), e->n,
           mn, sum / (double)e->n, mx, e->score == e->score ? "" : "(none) ", e->score == e->score ? e->score : 0.0, e->settings);
    t2_expert_free(e);
    t2_svf_free(s);
    t2_st_close(st);
    return 0;
}

int t2_cmd_svf(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "decompose")) return cmd_decompose(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "show")) return cmd_show(argc - 1, argv + 1);
    t2_cli_die("svf", "unknown subcommand '%s' (decompose, train, show; see t2 svf --help)", argv[1]);
}
