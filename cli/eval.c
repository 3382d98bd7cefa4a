// eval.c — `t2 eval`: run a benchmark through a model and score it with the official metrics;
// `t2 eval score`: score an existing predictions file without a model; `t2 eval --compare`: put
// several runs' results side by side.
#include "cli/cli.h"
#include "core/error.h"
#include "core/util.h"
#include "eval/run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 eval --model DIR --bench KIND --data PATH [--images DIR] [options]\n"
"       t2 eval score --bench KIND --data PATH --predictions FILE [--out DIR]\n"
"       t2 eval --compare DIR1 DIR2 ...\n"
"\n"
"Run a benchmark through a model (greedy) and score it as the official tools do: VQA accuracy\n"
"(vqaEval.py normalisation, 10-choose-9), ANLS, exact match, GSM8K last number, multiple choice.\n"
"Writes DIR/samples.jsonl (one line per item, flushed as it goes) and DIR/results.json (overall,\n"
"per task, per question / answer type, items/s), DIR/chart.png, and prints a markdown table.\n"
"Progress (done/total, items/s, ETA, running score) goes to stderr.\n"
"\n"
"  -m, --model DIR          checkpoint directory\n"
"  -b, --bench KIND         textvqa, vqav2, okvqa, docvqa, jsonl, gsm8k, arc\n"
"  -d, --data PATH          the benchmark file (VQAv2 / OK-VQA: the questions file)\n"
"      --annotations FILE   VQAv2 / OK-VQA annotations (default: found beside the questions file)\n"
"      --images DIR         image directory (TextVQA: train_images/; VQAv2: val2014/)\n"
"      --limit N            the first N items only\n"
"  -o, --out DIR            output directory (default t2-eval/KIND)\n"
"      --resume             keep the finished items of DIR/samples.jsonl and run the rest\n"
"      --prompt-suffix TEXT appended to every question (default for VQA: lmms-eval's\n"
"                           \"\\nAnswer the question using a single word or phrase.\")\n"
"      --ocr                add \"\\nReference OCR token: ...\" when the data has OCR tokens\n"
"      --skip-bad           skip (and count) malformed items instead of stopping at the first\n"
"  -n, --n-predict N        tokens per answer at most (default 32; gsm8k 256)\n"
"      --batch N            items decoded together, 1..4 (default 4; fewer when their KV caches\n"
"                           would pass ~2 GB)\n"
"      --template NAME      chat template (default: recognised from the checkpoint)\n"
"      --adapt STRATEGY     " T2_ADAPT_HELP " (docs/adaptation.md;\n"
"                           default none). samples.jsonl records each item's choice and pass times,\n"
"                           results.json the strategy, the dispatch confusion per task and the\n"
"                           first / second pass time ratio\n"
"      --first-tokens N     the first pass's token cap (default 24)\n"
"  -t, --threads N          threads (default: all cores)\n"
"      --predictions FILE   (eval score) [{\"question_id\", \"answer\"}] or a samples.jsonl\n"
"      --compare DIR...     markdown table of several results.json side by side, and a grouped bar\n"
"                           chart in OUT/compare.png (default t2-eval/compare.png)\n"
"  -q, --quiet              nothing on stderr but errors (no progress, no closing summary line)\n"
"  -h, --help               this help\n");
}

int t2_cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    int score_mode = argc > 1 && !strcmp(argv[1], "score");
    if (score_mode) { argc--; argv++; cmd = "eval score"; }
    const char *model = NULL, *bench = NULL, *data = NULL, *ann = NULL, *images = NULL, *out = NULL, *preds = NULL;
    int threads = 0, skip_bad = 0, compare = 0, quiet = 0;
    t2_eval_opts o = {0};
    enum { O_ANN = 256, O_IMAGES, O_LIMIT, O_RESUME, O_SUFFIX, O_OCR, O_SKIP, O_TEMPLATE, O_PRED, O_COMPARE, O_BATCH, O_ADAPT, O_FIRST };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"bench", required_argument, 0, 'b'},
        {"data", required_argument, 0, 'd'}, {"annotations", required_argument, 0, O_ANN},
        {"images", required_argument, 0, O_IMAGES}, {"limit", required_argument, 0, O_LIMIT},
        {"out", required_argument, 0, 'o'}, {"resume", no_argument, 0, O_RESUME},
        {"prompt-suffix", required_argument, 0, O_SUFFIX}, {"ocr", no_argument, 0, O_OCR},
        {"skip-bad", no_argument, 0, O_SKIP}, {"n-predict", required_argument, 0, 'n'},
        {"template", required_argument, 0, O_TEMPLATE}, {"threads", required_argument, 0, 't'},
        {"predictions", required_argument, 0, O_PRED}, {"compare", no_argument, 0, O_COMPARE},
        {"batch", required_argument, 0, O_BATCH}, {"adapt", required_argument, 0, O_ADAPT},
        {"first-tokens", required_argument, 0, O_FIRST}, {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:b:d:o:n:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'b': bench = optarg; break;
        case 'd': data = optarg; break;
        case O_ANN: ann = optarg; break;
        case O_IMAGES: images = optarg; break;
        case O_LIMIT: o.limit = t2_cli_int(cmd, "--limit", optarg, 1, 1 << 30); break;
        case 'o': out = optarg; break;
        case O_RESUME: o.resume = 1; break;
        case O_SUFFIX: o.prompt_suffix = optarg; break;
        case O_OCR: o.ocr = 1; break;
        case O_SKIP: skip_bad = 1; break;
        case 'n': o.n_predict = t2_cli_int(cmd, "--n-predict", optarg, 1, 1 << 20); break;
        case O_TEMPLATE: o.template_name = optarg; break;
        case 't': threads = t2_cli_int(cmd, "--threads", optarg, 1, 1024); break;
        case O_PRED: preds = optarg; break;
        case O_COMPARE: compare = 1; break;
        case O_BATCH: o.batch = t2_cli_int(cmd, "--batch", optarg, 1, 4); break;
        case O_ADAPT: o.adapt = optarg; break;
        case O_FIRST: o.first_max_tokens = t2_cli_int(cmd, "--first-tokens", optarg, 1, 4096); break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (compare) {
        if (optind >= argc) t2_cli_die(cmd, "--compare needs result directories");
        char chart[4096];
        const char *dir = out ? out : "t2-eval";
        if (t2_mkdirs(dir)) t2_cli_die(cmd, "%s", t2_last_error());
        snprintf(chart, sizeof chart, "%s/compare.png", dir);
        if (t2_eval_compare((const char *const *)argv + optind, argc - optind, chart)) t2_cli_die(cmd, "%s", t2_last_error());
        fprintf(stderr, "t2 eval: chart in %s\n", chart);
        return 0;
    }
    if (optind < argc) t2_cli_die(cmd, "unexpected argument '%s'", argv[optind]);
    if (!bench || !data) { usage(stderr); t2_cli_die(cmd, "--bench KIND and --data PATH are required"); }
    int kind = t2_bench_parse(bench);
    if (kind < 0) t2_cli_die(cmd, "unknown --bench '%s' (textvqa, vqav2, okvqa, docvqa, jsonl, gsm8k, arc)", bench);
    if (score_mode && !preds) t2_cli_die(cmd, "--predictions FILE is required");
    if (!score_mode && !model) t2_cli_die(cmd, "--model DIR is required (or use t2 eval score)");
    char defout[256];
    snprintf(defout, sizeof defout, "t2-eval/%s", t2_bench_name((t2_bench_kind)kind));
    o.out_dir = out ? out : (score_mode ? NULL : defout);
    o.progress = !quiet;
    o.model_name = model;
    t2_eval_set set;
    if (t2_eval_load((t2_bench_kind)kind, data, ann, images, skip_bad, &set)) t2_cli_die(cmd, "%s", t2_last_error());
    if (set.n_skipped) fprintf(stderr, "t2 eval: skipped %d malformed item(s); the first: %s\n", set.n_skipped,
                               set.first_skip_reason ? set.first_skip_reason : "?");
    t2_eval_summary sum;
    if (score_mode) {
        if (t2_eval_score_file(&set, preds, &o, &sum)) t2_cli_die(cmd, "%s", t2_last_error());
    } else {
        t2_vlm *m = t2_cli_load(cmd, model, threads, 1);
        if (t2_eval_run(m, &set, &o, &sum)) t2_cli_die(cmd, "%s", t2_last_error());
        if (!quiet)
            fprintf(stderr, "t2 eval: %d items in %.1f s (%.2f items/s); results in %s/results.json\n", sum.n, sum.wall_s,
                    sum.items_per_s, o.out_dir);
        t2_vlm_free(m);
    }
    t2_eval_set_free(&set);
    return 0;
}
