// generate.c — `t2 generate`: text generation from a prompt (plain or through the chat template),
// streamed to stdout as it is made. Also the debug aids that let anyone hold t2 against another
// implementation: --prompt-ids (no tokenizer, no template) and --dump-logits (prompt logits as
// safetensors).
#include "cli/cli.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 generate --model DIR (-p TEXT | --prompt-ids IDS) [options]\n"
"\n"
"Generate text with a Llama / Mistral / Qwen2 checkpoint, or the language model of a LLaVA one (a\n"
"Hugging Face directory: config.json, *.safetensors, tokenizer.json). Tokens are printed as they\n"
"are made; timings go to stderr. For questions about images, see t2 ask.\n"
"\n"
"  -m, --model DIR          checkpoint directory (required)\n"
"  -p, --prompt TEXT        the prompt\n"
"      --prompt-ids IDS     comma-separated token ids fed as they are (no tokenizer, no template)\n"
"  -n, --n-predict N        tokens to generate (default 128; 0 = only run the prompt)\n"
"      --chat               wrap the prompt in the checkpoint's chat template as a user message\n"
"      --template NAME      chat template: vicuna, llama2, llama3, chatml, mistral (default: recognised\n"
"                           from the checkpoint's chat_template; implies --chat)\n"
"      --system TEXT        system message (with --chat)\n"
T2_CLI_SAMPLING_HELP
"                           (defaults here: temp 0.8, top-k 40, top-p 0.95, min-p 0.05)\n"
"  -c, --ctx N              context size (default: min(max_position_embeddings, 4096))\n"
"  -t, --threads N          threads (default: all cores)\n"
"      --dump-logits FILE   write the prompt's logits (F32 tensor 'logits', (prompt length, vocab))\n"
"                           to FILE as safetensors\n"
"  -v, --verbose            print the prompt tokens and settings to stderr\n"
"  -h, --help               this help\n");
}

int t2_cmd_generate(int argc, char **argv) {
    const char *cmd = "generate";
    const char *model_dir = NULL, *prompt = NULL, *prompt_ids = NULL, *tmpl_name = NULL, *system = NULL;
    const char *dump = NULL;
    int n_predict = 128, chat = 0, threads = 0, n_ctx = 0, verbose = 0;
    t2_cli_sampling smp;
    t2_cli_sampling_init(&smp, 0.8f);
    enum { O_IDS = 256, O_CHAT, O_TEMPLATE, O_SYSTEM, O_DUMP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'},
        {"prompt-ids", required_argument, 0, O_IDS}, {"n-predict", required_argument, 0, 'n'},
        {"chat", no_argument, 0, O_CHAT}, {"template", required_argument, 0, O_TEMPLATE},
        {"system", required_argument, 0, O_SYSTEM}, T2_CLI_SAMPLING_OPTIONS,
        {"ctx", required_argument, 0, 'c'}, {"threads", required_argument, 0, 't'},
        {"dump-logits", required_argument, 0, O_DUMP}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:n:c:t:vh", opts, NULL)) != -1) {
        if (t2_cli_sampling_opt(&smp, cmd, c, optarg)) continue;
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'p': prompt = optarg; break;
        case O_IDS: prompt_ids = optarg; break;
        case 'n': n_predict = t2_cli_int(cmd, "--n-predict", optarg, 0, 1 << 24); break;
        case O_CHAT: chat = 1; break;
        case O_TEMPLATE: tmpl_name = optarg; chat = 1; break;
        case O_SYSTEM: system = optarg; break;
        case 'c': n_ctx = t2_cli_int(cmd, "--ctx", optarg, 1, 1 << 24); break;
        case 't': threads = t2_cli_int(cmd, "--threads", optarg, 1, 1024); break;
        case O_DUMP: dump = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) t2_cli_die(cmd, "unexpected argument '%s' (the prompt goes after -p)", argv[optind]);
    if (!model_dir) { usage(stderr); t2_cli_die(cmd, "--model DIR is required"); }
    if (!prompt == !prompt_ids) t2_cli_die(cmd, "give exactly one of -p TEXT or --prompt-ids IDS");
    if (prompt_ids && chat) t2_cli_die(cmd, "--prompt-ids feeds ids as they are; it cannot be combined with --chat");
    if (system && !chat) t2_cli_die(cmd, "--system needs --chat");

    t2_vlm *m = t2_cli_load(cmd, model_dir, threads, prompt != NULL);
    const t2_lm_config *cfg = t2_vlm_lm_cfg(m);
    const t2_tokenizer *tok = t2_vlm_tok(m);
    if (n_ctx == 0) n_ctx = cfg->max_position < 4096 ? cfg->max_position : 4096;
    if (n_ctx > cfg->max_position)
        t2_cli_die(cmd, "--ctx %d exceeds the model's max_position_embeddings %d", n_ctx, cfg->max_position);

    // The prompt's token ids (text here is never split on "<image>": generate takes no images).
    int32_t *ids = NULL;
    int n_prompt = 0;
    t2_chat_kind kind = T2_CHAT_NONE;
    if (prompt_ids) {
        ids = t2_cli_ids(cmd, prompt_ids, &n_prompt);
        for (int i = 0; i < n_prompt; i++)
            if (ids[i] >= cfg->vocab_size)
                t2_cli_die(cmd, "--prompt-ids: id %d is outside the vocabulary [0, %d)", ids[i], cfg->vocab_size);
    } else {
        char *text = NULL;
        if (chat) {
            if (t2_vlm_chat_kind(m, tmpl_name, &kind)) t2_cli_die(cmd, "%s", t2_last_error());
            t2_chat_msg msgs[2];
            int nm = 0;
            if (system) msgs[nm++] = (t2_chat_msg){"system", system};
            msgs[nm++] = (t2_chat_msg){"user", prompt};
            text = t2_chat_render(kind, msgs, nm, t2_tok_bos_text(tok));
            if (!text) t2_cli_die(cmd, "%s", t2_last_error());
        }
        const char *src = text ? text : prompt;
        int cap = (int)strlen(src) + 16;
        ids = t2_malloc(sizeof(int32_t) * cap);
        // Plain prompts get the post-processor's special tokens (BOS); a rendered template spells its own.
        n_prompt = t2_tok_encode(tok, src, !chat, 1, ids, cap);
        if (n_prompt < 0) t2_cli_die(cmd, "%s", t2_last_error());
        if (n_prompt > cap) t2_cli_die(cmd, "internal: prompt encodes to more ids than bytes");
        free(text);
        if (n_prompt == 0) t2_cli_die(cmd, "the prompt encodes to no tokens");
    }
    if (n_prompt + n_predict > n_ctx) {
        if (n_prompt >= n_ctx)
            t2_cli_die(cmd, "the prompt has %d tokens but the context is %d (max_position_embeddings %d)",
                       n_prompt, n_ctx, cfg->max_position);
        n_predict = n_ctx - n_prompt;
        fprintf(stderr, "t2 generate: only %d tokens fit after the prompt in the %d-token context\n", n_predict, n_ctx);
    }
    if (verbose) {
        fprintf(stderr, "prompt (%d tokens):", n_prompt);
        for (int i = 0; i < n_prompt; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\ntemplate %s, temp %g, top-k %d, top-p %g, min-p %g, seed %llu, threads %d\n",
                t2_chat_name(kind), smp.sp.temperature, smp.sp.top_k, smp.sp.top_p, smp.sp.min_p,
                (unsigned long long)smp.sp.seed, t2_vlm_threads(m));
    }
    if (kind != T2_CHAT_NONE && t2_chat_stop_text(kind) && smp.gp.n_stops < T2_GEN_MAX_STOPS)
        smp.gp.stops[smp.gp.n_stops++] = t2_chat_stop_text(kind);

    t2_lm *lm = t2_vlm_lm(m);
    t2_lm_state *st = t2_lm_state_new(lm, n_ctx, n_prompt < 512 ? n_prompt : 512);
    if (!st) t2_cli_die(cmd, "%s", t2_last_error());
    int V = cfg->vocab_size;
    float *logits = t2_malloc(sizeof(float) * (size_t)V * (dump ? n_prompt : 1));
    double t0 = t2_now();
    if (t2_lm_forward(lm, st, ids, NULL, NULL, n_prompt, logits, dump != NULL)) t2_cli_die(cmd, "%s", t2_last_error());
    double t_prompt = t2_now() - t0;
    if (dump) {
        t2_cli_dump_logits(cmd, dump, logits, n_prompt, V, model_dir);
        memmove(logits, logits + (size_t)(n_prompt - 1) * V, sizeof(float) * V);   // sampling goes on from here
    }
    t2_sampler *sampler = t2_sampler_new(V, smp.sp);
    smp.gp.n_predict = n_predict;
    smp.gp.on_text = t2_cli_print;
    t2_gen_result res;
    if (t2_generate(lm, st, tok, sampler, logits, ids, n_prompt, &smp.gp, &res)) t2_cli_die(cmd, "%s", t2_last_error());
    if (n_predict > 0) putchar('\n');
    fflush(stdout);
    fprintf(stderr, "t2: prompt %d tokens in %.1f ms (%.1f tok/s); generated %d tokens in %.1f ms (%.1f tok/s)\n",
            n_prompt, t_prompt * 1e3, n_prompt / t_prompt, res.n_gen, res.t_decode * 1e3,
            res.n_gen > 0 ? res.n_gen / res.t_decode : 0.0);
    t2_gen_result_free(&res);
    free(logits);
    free(ids);
    t2_sampler_free(sampler);
    t2_lm_state_free(st);
    t2_vlm_free(m);
    return 0;
}
