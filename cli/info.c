// info.c — `t2 info`: what a checkpoint directory holds, as t2 understands it.
#include "cli/cli.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/util.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 info --model DIR\n"
"\n"
"Print a checkpoint's architecture, parameter count, dtypes, context, weight layout, files and\n"
"tokenizer, plus the compute back end t2 will use (SIMD level, OpenBLAS core).\n"
"\n"
"  -m, --model DIR   checkpoint directory (required)\n"
"  -h, --help        this help\n");
}

int t2_cmd_info(int argc, char **argv) {
    const char *cmd = "info", *dir = NULL;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        if (c == 'm') dir = optarg;
        else if (c == 'h') { usage(stdout); return 0; }
        else { usage(stderr); return 2; }
    }
    if (optind < argc) t2_cli_die(cmd, "unexpected argument '%s'", argv[optind]);
    if (!dir) { usage(stderr); t2_cli_die(cmd, "--model DIR is required"); }
    t2_vlm *vm = t2_cli_load(cmd, dir, 1, 0);
    const t2_lm_config *cfg = t2_vlm_lm_cfg(vm);
    const t2_lm *lm = t2_vlm_lm(vm);
    const t2_st *st = t2_vlm_weights(vm);
    const t2_tokenizer *tok = t2_vlm_tok(vm);
    printf("model          %s\n", dir);
    printf("checkpoint     %s\n", t2_vlm_kind(vm));
    printf("architecture   %s (weights under '%s')\n", t2_arch_name(cfg->arch), t2_lm_prefix(lm));
    printf("parameters     %lld (%.1f M) in the language model\n", (long long)t2_lm_param_count(lm),
           t2_lm_param_count(lm) / 1e6);
    printf("weights dtype  %s\n", t2_lm_dtype_name(lm));
    printf("shape          %d layers, hidden %d, intermediate %d, %d heads (%d KV), head_dim %d, vocab %d\n",
           cfg->n_layers, cfg->hidden_size, cfg->intermediate_size, cfg->n_heads, cfg->n_kv_heads,
           cfg->head_dim, cfg->vocab_size);
    printf("context        %d positions\n", cfg->max_position);
    const char *rope = cfg->rope_type == T2_ROPE_LLAMA3 ? "llama3" : cfg->rope_type == T2_ROPE_LINEAR ? "linear" : "default";
    printf("rope           theta %g, scaling %s", cfg->rope_theta, rope);
    if (cfg->rope_type != T2_ROPE_DEFAULT) printf(" (factor %g)", cfg->rope_factor);
    printf("\n");
    printf("tied lm_head   %s\n", cfg->tie_embeddings ? "yes" : "no");
    int nt = t2_st_count(st);
    size_t bytes = 0;
    const char *files[64];
    int nf = 0;
    for (int i = 0; i < nt; i++) {
        const t2_st_tensor *t = t2_st_at(st, i);
        bytes += t->nbytes;
        int seen = 0;
        for (int k = 0; k < nf; k++) if (!strcmp(files[k], t->file)) seen = 1;
        if (!seen && nf < 64) files[nf++] = t->file;
    }
    printf("tensors        %d, %.1f MB in %d file%s\n", nt, bytes / 1e6, nf, nf == 1 ? "" : "s");
    for (int k = 0; k < nf; k++) printf("  %s\n", files[k]);
    if (tok) {
        printf("tokenizer      %d tokens, bos %d, eos %d\n", t2_tok_vocab_size(tok), t2_tok_bos(tok), t2_tok_eos(tok));
        t2_chat_kind k = t2_chat_detect(t2_tok_chat_template(tok), T2_CHAT_NONE);
        printf("chat template  %s\n", t2_tok_chat_template(tok) ? t2_chat_name(k) : "(none in tokenizer_config.json)");
    } else {
        printf("tokenizer      (none: tokenizer.json / vocab.json absent)\n");
    }
    const t2_vit_config *vc = t2_vlm_vit_cfg(vm);
    if (vc) {
        printf("vision tower   %s, %d layers, hidden %d, %d heads, image %d, patch %d: %d positions per tile\n",
               t2_vit_kind_name(vc->kind), vc->n_layers, vc->hidden_size, vc->n_heads, vc->image_size,
               vc->patch_size, vc->n_positions);
        printf("image tokens   id %d\n", t2_vlm_image_token(vm));
    } else {
        printf("vision tower   (none: a text-only checkpoint)\n");
    }
    printf("back end       SIMD %s, OpenBLAS core %s (%s), %d cores\n", t2_simd_name(), t2_blas_core(),
           t2_blas_note(), t2_ncores());
    t2_vlm_free(vm);
    return 0;
}
