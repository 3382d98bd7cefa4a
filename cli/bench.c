// bench.c — `t2 bench`: llama-bench's pp / tg measurements for a checkpoint. Prompt processing runs
// N_PROMPT random token ids as one block from an empty cache; token generation decodes N_GEN single
// tokens from an empty cache. Both exclude tokenisation and sampling (fixed ids are fed). Each test
// runs after one warm-up and is repeated; mean ± sd over the repetitions, as llama-bench reports.
#include "cli/cli.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/util.h"
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 bench --model DIR [options]\n"
"\n"
"Measure prompt processing (ppN: N prompt tokens in one forward) and token generation (tgN: N\n"
"single-token decode steps) in tokens per second, excluding tokenisation and sampling; for LLaVA-family\n"
"checkpoints also image encode (vision tower + projector) of one tile of the native image size, in ms.\n"
"\n"
"  -m, --model DIR     checkpoint directory (required; no tokenizer needed)\n"
"  -p, --n-prompt N    prompt length for pp (default 512; 0 = skip)\n"
"  -n, --n-gen N       decode steps for tg (default 128; 0 = skip)\n"
"  -r, --reps N        repetitions of each test after a warm-up (default 3)\n"
"      --no-image      skip the image-encode test (LLaVA-family checkpoints)\n"
"  -t, --threads N     threads (default: all cores)\n"
"      --json          print one JSON object instead of the table\n"
"  -h, --help          this help\n");
}

static void stats(const double *v, int n, double *mean, double *sd) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

int t2_cmd_bench(int argc, char **argv) {
    const char *cmd = "bench", *dir = NULL;
    int n_prompt = 512, n_gen = 128, reps = 3, threads = 0, json = 0, image = 1;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"n-prompt", required_argument, 0, 'p'},
        {"n-gen", required_argument, 0, 'n'}, {"reps", required_argument, 0, 'r'},
        {"threads", required_argument, 0, 't'}, {"json", no_argument, 0, 'j'},
        {"no-image", no_argument, 0, 'I'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:n:r:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 'p': n_prompt = t2_cli_int(cmd, "--n-prompt", optarg, 0, 1 << 20); break;
        case 'n': n_gen = t2_cli_int(cmd, "--n-gen", optarg, 0, 1 << 20); break;
        case 'r': reps = t2_cli_int(cmd, "--reps", optarg, 1, 1000); break;
        case 't': threads = t2_cli_int(cmd, "--threads", optarg, 1, 1024); break;
        case 'j': json = 1; break;
        case 'I': image = 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) t2_cli_die(cmd, "unexpected argument '%s'", argv[optind]);
    if (!dir) { usage(stderr); t2_cli_die(cmd, "--model DIR is required"); }
    t2_vlm *vm = t2_cli_load(cmd, dir, threads, 0);
    const t2_lm_config *cfg = t2_vlm_lm_cfg(vm);
    t2_lm *lm = t2_vlm_lm(vm);
    int n_ctx = n_prompt > n_gen ? n_prompt : n_gen;
    if (n_ctx < 1) n_ctx = 1;
    if (n_ctx > cfg->max_position)
        t2_cli_die(cmd, "a %d-token test exceeds the model's context of %d", n_ctx, cfg->max_position);
    t2_lm_state *st = t2_lm_state_new(lm, n_ctx, n_prompt > 0 ? n_prompt : 1);
    if (!st) t2_cli_die(cmd, "%s", t2_last_error());
    int32_t *ids = t2_malloc(sizeof(int32_t) * (size_t)n_ctx);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < n_ctx; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; ids[i] = (int32_t)(x % (uint64_t)cfg->vocab_size); }
    float *logits = t2_malloc(sizeof(float) * (size_t)cfg->vocab_size);
    double *pp = t2_malloc(sizeof(double) * reps), *tg = t2_malloc(sizeof(double) * reps);
    for (int r = -1; r < reps; r++) {   // r = -1 is the warm-up
        if (n_prompt > 0) {
            t2_lm_state_rewind(st, 0);
            double t0 = t2_now();
            if (t2_lm_forward(lm, st, ids, NULL, NULL, n_prompt, logits, 0)) t2_cli_die(cmd, "%s", t2_last_error());
            if (r >= 0) pp[r] = n_prompt / (t2_now() - t0);
        }
        if (n_gen > 0) {
            t2_lm_state_rewind(st, 0);
            double t0 = t2_now();
            for (int i = 0; i < n_gen; i++)
                if (t2_lm_forward(lm, st, &ids[i], NULL, NULL, 1, logits, 0)) t2_cli_die(cmd, "%s", t2_last_error());
            if (r >= 0) tg[r] = n_gen / (t2_now() - t0);
        }
    }
    // Image encode: one native-size tile of random normalised pixels through the tower and projector.
    double *ie = t2_malloc(sizeof(double) * reps), iem = 0, ies = 0;
    const t2_vit_config *vc = t2_vlm_vit_cfg(vm);
    if (!vc) image = 0;
    if (image) {
        int S = vc->image_size, T = t2_vlm_tile_tokens(vm);
        float *px = t2_malloc(sizeof(float) * 3 * (size_t)S * S);
        float *rows = t2_malloc(sizeof(float) * (size_t)T * cfg->hidden_size);
        for (size_t i = 0; i < 3 * (size_t)S * S; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; px[i] = (float)(x % 2001) / 1000.0f - 1.0f; }
        for (int r = -1; r < reps; r++) {
            double t0 = t2_now();
            if (t2_vlm_encode_tiles(vm, px, 1, rows)) t2_cli_die(cmd, "%s", t2_last_error());
            if (r >= 0) ie[r] = (t2_now() - t0) * 1e3;
        }
        stats(ie, reps, &iem, &ies);
        free(px);
        free(rows);
    }
    double ppm = 0, pps = 0, tgm = 0, tgs = 0;
    if (n_prompt > 0) stats(pp, reps, &ppm, &pps);
    if (n_gen > 0) stats(tg, reps, &tgm, &tgs);
    double rss = t2_peak_rss() / 1048576.0;
    double params = t2_lm_param_count(lm) / 1e6;
    if (json) {
        printf("{\"model\": ");
        t2_cli_json_string(stdout, dir, strlen(dir));
        printf(", \"arch\": \"%s\", \"params_m\": %.2f, \"dtype\": \"%s\", \"threads\": %d, "
               "\"simd\": \"%s\", \"blas_core\": \"%s\", \"reps\": %d",
               t2_arch_name(cfg->arch), params, t2_lm_dtype_name(lm), t2_vlm_threads(vm), t2_simd_name(),
               t2_blas_core(), reps);
        if (n_prompt > 0) printf(", \"pp\": {\"n\": %d, \"tok_s\": %.2f, \"sd\": %.2f}", n_prompt, ppm, pps);
        if (n_gen > 0) printf(", \"tg\": {\"n\": %d, \"tok_s\": %.2f, \"sd\": %.2f}", n_gen, tgm, tgs);
        if (image)
            printf(", \"image_encode\": {\"tower\": \"%s\", \"image_size\": %d, \"tokens\": %d, \"ms\": %.1f, \"sd\": %.1f}",
                   t2_vit_kind_name(vc->kind), vc->image_size, t2_vlm_tile_tokens(vm), iem, ies);
        printf(", \"peak_rss_mib\": %.1f}\n", rss);
    } else {
        printf("| model | arch | params | dtype | threads | test | t/s |\n|---|---|---|---|---|---|---|\n");
        if (n_prompt > 0)
            printf("| %s | %s | %.2f M | %s | %d | pp%d | %.2f ± %.2f |\n", dir, t2_arch_name(cfg->arch), params,
                   t2_lm_dtype_name(lm), t2_vlm_threads(vm), n_prompt, ppm, pps);
        if (n_gen > 0)
            printf("| %s | %s | %.2f M | %s | %d | tg%d | %.2f ± %.2f |\n", dir, t2_arch_name(cfg->arch), params,
                   t2_lm_dtype_name(lm), t2_vlm_threads(vm), n_gen, tgm, tgs);
        if (image)
            printf("| %s | %s | | %s | %d | image %dx%d → %d tokens | %.1f ± %.1f ms |\n", dir, t2_vit_kind_name(vc->kind),
                   t2_lm_dtype_name(lm), t2_vlm_threads(vm), vc->image_size, vc->image_size, t2_vlm_tile_tokens(vm), iem, ies);
        printf("\nSIMD %s, OpenBLAS core %s (%s), peak RSS %.1f MiB, %d reps after a warm-up\n", t2_simd_name(),
               t2_blas_core(), t2_blas_note(), rss, reps);
    }
    free(pp); free(tg); free(ie); free(ids); free(logits);
    t2_lm_state_free(st);
    t2_vlm_free(vm);
    return 0;
}
