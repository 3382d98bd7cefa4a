// generate.c — `t2 generate`: text generation from a prompt (plain or through the chat template),
// streamed to stdout as it is made. Also the debug aids that let anyone hold t2 against another
// implementation: --prompt-ids (no tokenizer, no template) and --dump-logits (prompt logits as
// safetensors).
#include "cli/cli.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "language/sampler.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STOPS 16

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 generate --model DIR (-p TEXT | --prompt-ids IDS) [options]\n"
"\n"
"Generate text with a Llama / Mistral / Qwen2 checkpoint (a Hugging Face directory: config.json,\n"
"*.safetensors, tokenizer.json). Tokens are printed as they are made; timings go to stderr.\n"
"\n"
"  -m, --model DIR          checkpoint directory (required)\n"
"  -p, --prompt TEXT        the prompt\n"
"      --prompt-ids IDS     comma-separated token ids fed as they are (no tokenizer, no template)\n"
"  -n, --n-predict N        tokens to generate (default 128; 0 = only run the prompt)\n"
"      --chat               wrap the prompt in the checkpoint's chat template as a user message\n"
"      --template NAME      chat template: vicuna, llama2, llama3, chatml, mistral (default: recognised\n"
"                           from the checkpoint's chat_template)\n"
"      --system TEXT        system message (with --chat)\n"
"      --temp T             temperature (default 0.8; 0 = greedy)\n"
"      --top-k K            top-k filter (default 40; 0 = off)\n"
"      --top-p P            nucleus filter (default 0.95; 1 = off)\n"
"      --min-p P            min-p filter (default 0.05; 0 = off)\n"
"      --repeat-penalty R   repetition penalty (default 1.0 = off)\n"
"      --repeat-last-n N    window of the repetition penalty (default 64)\n"
"      --seed S             sampling seed (default: from the clock, printed with --verbose)\n"
"      --stop TEXT          stop when TEXT is generated (repeatable; EOS always stops)\n"
"      --ignore-eos         do not stop at EOS\n"
"  -c, --ctx N              context size (default: min(max_position_embeddings, 4096))\n"
"  -t, --threads N          threads (default: all cores)\n"
"      --dump-logits FILE   write the prompt's logits (F32 tensor 'logits', (prompt length, vocab))\n"
"                           to FILE as safetensors\n"
"  -v, --verbose            print the prompt tokens and settings to stderr\n"
"  -h, --help               this help\n");
}

// Length of the longest prefix of S[0..n) that ends on a UTF-8 character boundary.
static size_t utf8_complete(const char *s, size_t n) {
    size_t i = n;
    int back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) { i--; back++; }
    if (i == 0) return n;
    unsigned char lead = (unsigned char)s[i - 1];
    int need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return (back + 1 >= need) ? n : i - 1;
}

int t2_cmd_generate(int argc, char **argv) {
    const char *cmd = "generate";
    const char *model_dir = NULL, *prompt = NULL, *prompt_ids = NULL, *tmpl_name = NULL, *system = NULL;
    const char *dump = NULL;
    const char *stops[MAX_STOPS];
    int n_stops = 0, n_predict = 128, chat = 0, threads = 0, n_ctx = 0, verbose = 0, ignore_eos = 0;
    int seed_set = 0;
    t2_sampler_params sp = t2_sampler_defaults();
    sp.temperature = 0.8f; sp.top_k = 40; sp.top_p = 0.95f; sp.min_p = 0.05f;
    sp.repeat_penalty = 1.0f; sp.repeat_last_n = 64;
    enum { O_IDS = 256, O_CHAT, O_TEMPLATE, O_SYSTEM, O_TEMP, O_TOPK, O_TOPP, O_MINP, O_RP, O_RLN, O_SEED,
           O_STOP, O_DUMP, O_IGNORE_EOS };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'},
        {"prompt-ids", required_argument, 0, O_IDS}, {"n-predict", required_argument, 0, 'n'},
        {"chat", no_argument, 0, O_CHAT}, {"template", required_argument, 0, O_TEMPLATE},
        {"system", required_argument, 0, O_SYSTEM}, {"temp", required_argument, 0, O_TEMP},
        {"top-k", required_argument, 0, O_TOPK}, {"top-p", required_argument, 0, O_TOPP},
        {"min-p", required_argument, 0, O_MINP}, {"repeat-penalty", required_argument, 0, O_RP},
        {"repeat-last-n", required_argument, 0, O_RLN}, {"seed", required_argument, 0, O_SEED},
        {"stop", required_argument, 0, O_STOP}, {"ignore-eos", no_argument, 0, O_IGNORE_EOS},
        {"ctx", required_argument, 0, 'c'}, {"threads", required_argument, 0, 't'},
        {"dump-logits", required_argument, 0, O_DUMP}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:n:c:t:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'p': prompt = optarg; break;
        case O_IDS: prompt_ids = optarg; break;
        case 'n': n_predict = t2_cli_int(cmd, "--n-predict", optarg, 0, 1 << 24); break;
        case O_CHAT: chat = 1; break;
        case O_TEMPLATE: tmpl_name = optarg; chat = 1; break;
        case O_SYSTEM: system = optarg; break;
        case O_TEMP: sp.temperature = (float)t2_cli_float(cmd, "--temp", optarg, 0, 100); break;
        case O_TOPK: sp.top_k = t2_cli_int(cmd, "--top-k", optarg, 0, 1 << 30); break;
        case O_TOPP: sp.top_p = (float)t2_cli_float(cmd, "--top-p", optarg, 0, 1); break;
        case O_MINP: sp.min_p = (float)t2_cli_float(cmd, "--min-p", optarg, 0, 1); break;
        case O_RP: sp.repeat_penalty = (float)t2_cli_float(cmd, "--repeat-penalty", optarg, 0.01, 100); break;
        case O_RLN: sp.repeat_last_n = t2_cli_int(cmd, "--repeat-last-n", optarg, 0, 1 << 24); break;
        case O_SEED: sp.seed = (uint64_t)t2_cli_float(cmd, "--seed", optarg, 0, 1.8e19); seed_set = 1; break;
        case O_STOP:
            if (n_stops == MAX_STOPS) t2_cli_die(cmd, "at most %d --stop strings", MAX_STOPS);
            if (!*optarg) t2_cli_die(cmd, "--stop needs a non-empty string");
            stops[n_stops++] = optarg;
            break;
        case O_IGNORE_EOS: ignore_eos = 1; break;
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
    if (!seed_set) sp.seed = (uint64_t)time(NULL);

    t2_cli_model m;
    t2_cli_model_load(&m, model_dir, threads, prompt != NULL);
    const t2_lm_config *cfg = &m.cfg;
    if (n_ctx == 0) n_ctx = cfg->max_position < 4096 ? cfg->max_position : 4096;
    if (n_ctx > cfg->max_position)
        t2_cli_die(cmd, "--ctx %d exceeds the model's max_position_embeddings %d", n_ctx, cfg->max_position);

    // The prompt's token ids.
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
            if (tmpl_name) {
                int k = t2_chat_parse_name(tmpl_name);
                if (k < 0) t2_cli_die(cmd, "unknown --template '%s' (vicuna, llama2, llama3, chatml, mistral)", tmpl_name);
                kind = (t2_chat_kind)k;
            } else {
                kind = t2_chat_detect(t2_tok_chat_template(m.tok), T2_CHAT_NONE);
                if (kind == T2_CHAT_NONE)
                    t2_cli_die(cmd, "%s has no chat template t2 recognises; name one with --template", model_dir);
            }
            t2_chat_msg msgs[2];
            int nm = 0;
            if (system) msgs[nm++] = (t2_chat_msg){"system", system};
            msgs[nm++] = (t2_chat_msg){"user", prompt};
            text = t2_chat_render(kind, msgs, nm, t2_tok_bos_text(m.tok));
            if (!text) t2_cli_die(cmd, "%s", t2_last_error());
        }
        const char *src = text ? text : prompt;
        int cap = (int)strlen(src) + 16;
        ids = t2_malloc(sizeof(int32_t) * cap);
        // Plain prompts get the post-processor's special tokens (BOS); a rendered template spells its own.
        n_prompt = t2_tok_encode(m.tok, src, !chat, 1, ids, cap);
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
                t2_chat_name(kind), sp.temperature, sp.top_k, sp.top_p, sp.min_p,
                (unsigned long long)sp.seed, m.threads);
    }
    if (kind != T2_CHAT_NONE && t2_chat_stop_text(kind) && n_stops < MAX_STOPS) stops[n_stops++] = t2_chat_stop_text(kind);

    int block = n_prompt < 512 ? n_prompt : 512;
    t2_lm_state *st = t2_lm_state_new(m.lm, n_ctx, block);
    if (!st) t2_cli_die(cmd, "%s", t2_last_error());
    int V = cfg->vocab_size;
    float *logits = t2_malloc(sizeof(float) * (size_t)V * (dump ? n_prompt : 1));

    double t0 = t2_now();
    if (t2_lm_forward(m.lm, st, ids, NULL, NULL, n_prompt, logits, dump != NULL))
        t2_cli_die(cmd, "%s", t2_last_error());
    double t_prompt = t2_now() - t0;
    if (dump) {
        t2_st_writer *w = t2_st_writer_new();
        int64_t shape[2] = {n_prompt, V};
        if (t2_st_writer_add(w, "logits", T2_DTYPE_F32, 2, shape, logits) ||
            t2_st_writer_meta(w, "format", "t2-logits") || t2_st_writer_meta(w, "model", model_dir) ||
            t2_st_writer_write(w, dump))
            t2_cli_die(cmd, "--dump-logits: %s", t2_last_error());
        t2_st_writer_free(w);
        // Sampling continues from the last position's logits.
        memmove(logits, logits + (size_t)(n_prompt - 1) * V, sizeof(float) * V);
    }

    // Generation: sample, stream, stop.
    t2_sampler *smp = t2_sampler_new(V, sp);
    int32_t *hist = t2_malloc(sizeof(int32_t) * (size_t)(n_prompt + n_predict + 1));
    memcpy(hist, ids, sizeof(int32_t) * n_prompt);
    int n_hist = n_prompt, n_gen = 0;
    size_t out_cap = 1 << 16, printed = 0;
    char *out = t2_malloc(out_cap);
    out[0] = 0;
    size_t max_stop = 0;
    for (int i = 0; i < n_stops; i++) if (strlen(stops[i]) > max_stop) max_stop = strlen(stops[i]);
    double t1 = t2_now();
    int done = n_predict == 0;
    while (!done) {
        int tok = t2_sampler_sample(smp, logits, hist, n_hist);
        int is_eos = (m.tok && t2_tok_is_eos(m.tok, tok)) || tok == cfg->eos_id;
        if (is_eos && !ignore_eos) break;
        hist[n_hist++] = tok;
        n_gen++;
        size_t len = 0;
        if (m.tok) {
            int need = t2_tok_decode(m.tok, hist + n_prompt, n_gen, 1, out, out_cap);
            while ((size_t)need >= out_cap) {
                out = realloc(out, out_cap *= 2);
                need = t2_tok_decode(m.tok, hist + n_prompt, n_gen, 1, out, out_cap);
            }
            len = (size_t)need;
            for (int i = 0; i < n_stops; i++) {
                char *hit = strstr(out + (printed > max_stop ? printed - max_stop : 0), stops[i]);
                if (hit) { len = (size_t)(hit - out); done = 1; }
            }
        } else {
            printf("%s%d", n_gen > 1 ? " " : "", tok);   // no tokenizer: stream the ids
        }
        if (n_gen >= n_predict) done = 1;
        if (m.tok) {
            size_t ready = done ? len : utf8_complete(out, len > max_stop ? len - max_stop : 0);
            if (ready > printed) { fwrite(out + printed, 1, ready - printed, stdout); printed = ready; }
        }
        fflush(stdout);
        if (!done && t2_lm_forward(m.lm, st, &hist[n_hist - 1], NULL, NULL, 1, logits, 0))
            t2_cli_die(cmd, "%s", t2_last_error());
    }
    double t_gen = t2_now() - t1;
    if (m.tok && printed < strlen(out) && !done) fwrite(out + printed, 1, strlen(out) - printed, stdout);
    if (n_predict > 0) putchar('\n');
    fflush(stdout);
    fprintf(stderr, "t2: prompt %d tokens in %.1f ms (%.1f tok/s); generated %d tokens in %.1f ms (%.1f tok/s)\n",
            n_prompt, t_prompt * 1e3, n_prompt / t_prompt, n_gen, t_gen * 1e3, n_gen > 0 ? n_gen / t_gen : 0.0);
    free(out);
    free(hist);
    free(logits);
    free(ids);
    t2_sampler_free(smp);
    t2_lm_state_free(st);
    t2_cli_model_free(&m);
    return 0;
}
