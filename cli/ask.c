// ask.c — `t2 ask`: one question about one or more images, answered by a LLaVA-family checkpoint
// (greedy by default), streamed to stdout; --json prints the answer with token counts and timings.
// Also takes the debug aids of t2 generate (--prompt-ids with image-token ids, --dump-logits).
#include "cli/cli.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "eval/run.h"
#include "experts/dispatch.h"
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IMAGES 16

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 ask --model DIR [--image FILE]... \"question\"\n"
"       t2 ask --model DIR [--image FILE]... --prompt-ids IDS [--dump-logits FILE]\n"
"\n"
"Answer a question about images with a LLaVA-1.5 / LLaVA-NeXT / LLaVA-OneVision checkpoint (a\n"
"Hugging Face directory). The question goes through the checkpoint's chat template; each image is\n"
"placed where the question says \"<image>\", or before the question when it says nothing.\n"
"Images: PNG, JPEG, BMP, GIF (first frame), TGA.\n"
"\n"
"  -m, --model DIR          checkpoint directory (required)\n"
"  -i, --image FILE         an image (repeatable, up to 16, in prompt order)\n"
"  -n, --n-predict N        tokens to generate at most (default 256)\n"
"      --template NAME      chat template: vicuna, llama2, llama3, chatml, mistral, or none (the question\n"
"                           as it is); default: recognised from the checkpoint\n"
"      --system TEXT        system message\n"
"      --json               print one JSON object: answer, token counts, timings (ms), adaptation\n"
"      --adapt STRATEGY     Transformer² adaptation (docs/adaptation.md): " T2_ADAPT_HELP "\n"
"                           (default none: the base weights). prompt / classifier run a short first\n"
"                           pass that picks an expert of DIR/experts/registry.json\n"
"      --first-tokens N     the first pass's token cap (default 24)\n"
"      --prompt-ids IDS     comma-separated token ids fed as they are; each image-token id (or a run\n"
"                           of them as long as the image's features) takes the next --image\n"
"      --dump-logits FILE   write the prompt's logits (F32 'logits', (prompt length, vocab)) as safetensors\n"
T2_CLI_SAMPLING_HELP
"                           (default here: greedy, --temp 0)\n"
"  -c, --ctx N              context size (default: min(max_position_embeddings, 8192))\n"
"  -t, --threads N          threads (default: all cores)\n"
"  -v, --verbose            print the prompt and settings to stderr\n"
"  -h, --help               this help\n");
}

typedef struct { int json; } print_ctx;

static int on_text(void *ctx, const char *text, size_t len) {
    print_ctx *p = ctx;
    if (!p->json) t2_cli_print(NULL, text, len);
    return 0;
}

int t2_cmd_ask(int argc, char **argv) {
    const char *cmd = "ask";
    const char *model_dir = NULL, *prompt_ids = NULL, *tmpl_name = NULL, *system = NULL, *dump = NULL;
    const char *images[MAX_IMAGES];
    int n_images = 0, n_predict = 256, threads = 0, n_ctx = 0, verbose = 0, json = 0;
    t2_cli_sampling smp;
    t2_cli_sampling_init(&smp, 0.0f);
    const char *adapt = NULL;
    int first_tokens = 0;
    enum { O_IDS = 256, O_TEMPLATE, O_SYSTEM, O_DUMP, O_JSON, O_ADAPT, O_FIRST };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"image", required_argument, 0, 'i'},
        {"prompt-ids", required_argument, 0, O_IDS}, {"n-predict", required_argument, 0, 'n'},
        {"template", required_argument, 0, O_TEMPLATE}, {"system", required_argument, 0, O_SYSTEM},
        {"json", no_argument, 0, O_JSON}, {"adapt", required_argument, 0, O_ADAPT},
        {"first-tokens", required_argument, 0, O_FIRST}, T2_CLI_SAMPLING_OPTIONS,
        {"ctx", required_argument, 0, 'c'}, {"threads", required_argument, 0, 't'},
        {"dump-logits", required_argument, 0, O_DUMP}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:i:n:c:t:vh", opts, NULL)) != -1) {
        if (t2_cli_sampling_opt(&smp, cmd, c, optarg)) continue;
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'i':
            if (n_images == MAX_IMAGES) t2_cli_die(cmd, "at most %d images", MAX_IMAGES);
            images[n_images++] = optarg;
            break;
        case O_IDS: prompt_ids = optarg; break;
        case 'n': n_predict = t2_cli_int(cmd, "--n-predict", optarg, 0, 1 << 24); break;
        case O_TEMPLATE: tmpl_name = optarg; break;
        case O_SYSTEM: system = optarg; break;
        case O_JSON: json = 1; break;
        case O_ADAPT: adapt = optarg; break;
        case O_FIRST: first_tokens = t2_cli_int(cmd, "--first-tokens", optarg, 1, 4096); break;
        case 'c': n_ctx = t2_cli_int(cmd, "--ctx", optarg, 1, 1 << 24); break;
        case 't': threads = t2_cli_int(cmd, "--threads", optarg, 1, 1024); break;
        case O_DUMP: dump = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    const char *question = optind < argc ? argv[optind] : NULL;
    if (optind + 1 < argc) t2_cli_die(cmd, "unexpected argument '%s' (quote the question)", argv[optind + 1]);
    if (!model_dir) { usage(stderr); t2_cli_die(cmd, "--model DIR is required"); }
    if (!question == !prompt_ids) t2_cli_die(cmd, "give exactly one of a question or --prompt-ids IDS");
    if (question && !*question) t2_cli_die(cmd, "the question is empty");
    t2_adapt_spec spec;
    if (t2_adapt_parse(adapt, &spec)) t2_cli_die(cmd, "%s", t2_last_error());
    if (t2_adapt_per_request(&spec) && !question) t2_cli_die(cmd, "--adapt %s needs a question (not --prompt-ids)", spec.text);

    // Images are read before the model loads: a bad path fails fast.
    t2_image ims[MAX_IMAGES];
    for (int k = 0; k < n_images; k++)
        if (t2_image_load(images[k], &ims[k], 0)) t2_cli_die(cmd, "%s", t2_last_error());
    t2_vlm *m = t2_cli_load(cmd, model_dir, threads, question != NULL);
    const t2_lm_config *cfg = t2_vlm_lm_cfg(m);
    const t2_tokenizer *tok = t2_vlm_tok(m);
    if (n_images > 0 && !t2_vlm_has_vision(m))
        t2_cli_die(cmd, "%s is a text-only checkpoint (no vision tower): it cannot take --image; use t2 generate", model_dir);
    if (n_ctx == 0) n_ctx = cfg->max_position < 8192 ? cfg->max_position : 8192;
    if (n_ctx > cfg->max_position)
        t2_cli_die(cmd, "--ctx %d exceeds the model's max_position_embeddings %d", n_ctx, cfg->max_position);

    // Images → language-model rows.
    double t0 = t2_now();
    t2_image_rows rows[MAX_IMAGES];
    if (t2_vlm_encode_images(m, ims, n_images, rows)) t2_cli_die(cmd, "%s", t2_last_error());
    for (int k = 0; k < n_images; k++) t2_image_free(&ims[k]);
    double t_encode = t2_now() - t0;

    // The prompt.
    t2_prompt p;
    t2_chat_kind kind = T2_CHAT_NONE;
    if (prompt_ids) {
        int n_ids;
        int32_t *ids = t2_cli_ids(cmd, prompt_ids, &n_ids);
        if (t2_vlm_prompt_ids(m, ids, n_ids, rows, n_images, &p)) t2_cli_die(cmd, "%s", t2_last_error());
        free(ids);
    } else {
        // One "<image>" marker per image, before the question unless it places them itself.
        size_t ql = strlen(question);
        char *content = t2_malloc(ql + 8 * (size_t)n_images + 1);
        content[0] = 0;
        if (!strstr(question, "<image>")) for (int k = 0; k < n_images; k++) strcat(content, "<image>\n");
        strcat(content, question);
        char *text = NULL;
        if (!(tmpl_name && !strcmp(tmpl_name, "none"))) {
            if (t2_vlm_chat_kind(m, tmpl_name, &kind)) {
                if (tmpl_name) t2_cli_die(cmd, "%s", t2_last_error());
                fprintf(stderr, "t2 ask: %s: using the question as it is\n", t2_last_error());
                kind = T2_CHAT_NONE;
            }
        }
        if (kind != T2_CHAT_NONE) {
            t2_chat_msg msgs[2];
            int nm = 0;
            if (system) msgs[nm++] = (t2_chat_msg){"system", system};
            msgs[nm++] = (t2_chat_msg){"user", content};
            if (!(text = t2_chat_render(kind, msgs, nm, t2_tok_bos_text(tok)))) t2_cli_die(cmd, "%s", t2_last_error());
        } else if (system) {
            t2_cli_die(cmd, "--system needs a chat template");
        }
        if (verbose) fprintf(stderr, "prompt text: %s\n", text ? text : content);
        if (t2_vlm_prompt_text(m, text ? text : content, kind == T2_CHAT_NONE, rows, n_images, &p))
            t2_cli_die(cmd, "%s", t2_last_error());
        free(text);
        free(content);
    }
    // Adaptation (pass 1 for prompt / classifier): the choice is applied before the answering pass.
    t2_dispatcher *dsp = NULL;
    t2_adapt_choice choice;
    memset(&choice, 0, sizeof choice);
    if (spec.kind != T2_ADAPT_NONE) {
        t2_dispatch_opts dop = t2_dispatch_defaults();
        dop.chat = kind;
        if (first_tokens > 0) dop.first_max_tokens = first_tokens;
        if (!(dsp = t2_dispatcher_new(m, &spec, &dop))) t2_cli_die(cmd, "%s", t2_last_error());
        if (t2_dispatcher_needs_fewshot(dsp)) {   // fewshot:EXAMPLES — search the mixture first
            t2_eval_set shots;
            t2_eval_opts eo = {0};
            t2_fewshot_opts fo = t2_fewshot_defaults();
            t2_fewshot_result fr;
            fo.progress = verbose;
            eo.template_name = tmpl_name;
            if (t2_eval_load(T2_BENCH_JSONL, spec.arg, NULL, NULL, 0, &shots) || t2_eval_fewshot(m, dsp, &shots, &eo, &fo, &fr, NULL))
                t2_cli_die(cmd, "%s", t2_last_error());
            t2_eval_set_free(&shots);
        }
        if (t2_dispatcher_choose(dsp, question ? question : "", rows, n_images, &choice)) t2_cli_die(cmd, "%s", t2_last_error());
        if (verbose)
            fprintf(stderr, "adapt %s: label '%s' -> %s (first pass %.1f ms, %d positions; apply %.2f ms%s)\n", spec.text,
                    choice.label, choice.choice, choice.first_pass_s * 1e3, choice.first_tokens, choice.apply_s * 1e3,
                    choice.cache_hit ? ", cached" : "");
    }
    for (int k = 0; k < n_images; k++) free(rows[k].rows);
    if (p.n == 0) t2_cli_die(cmd, "the prompt is empty");
    if (p.n + n_predict > n_ctx) {
        if (p.n >= n_ctx)
            t2_cli_die(cmd, "the prompt has %d positions (%d of them image features) but the context is %d", p.n,
                       p.n_image_tokens, n_ctx);
        n_predict = n_ctx - p.n;
    }
    if (verbose) {
        fprintf(stderr, "prompt: %d positions (%d image), template %s, temp %g, seed %llu, threads %d\n", p.n,
                p.n_image_tokens, t2_chat_name(kind), smp.sp.temperature, (unsigned long long)smp.sp.seed,
                t2_vlm_threads(m));
    }
    if (kind != T2_CHAT_NONE && t2_chat_stop_text(kind) && smp.gp.n_stops < T2_GEN_MAX_STOPS)
        smp.gp.stops[smp.gp.n_stops++] = t2_chat_stop_text(kind);

    // Prefill (text and image rows together), then decode.
    t2_lm *lm = t2_vlm_lm(m);
    int V = cfg->vocab_size;
    t2_lm_state *st = t2_lm_state_new(lm, n_ctx, p.n < 512 ? p.n : 512);
    if (!st) t2_cli_die(cmd, "%s", t2_last_error());
    float *logits = t2_malloc(sizeof(float) * (size_t)V * (dump ? p.n : 1));
    t0 = t2_now();
    if (t2_lm_forward(lm, st, p.ids, p.embeds, p.is_embed, p.n, logits, dump != NULL)) t2_cli_die(cmd, "%s", t2_last_error());
    double t_prefill = t2_now() - t0;
    if (dump) {
        t2_cli_dump_logits(cmd, dump, logits, p.n, V, model_dir);
        memmove(logits, logits + (size_t)(p.n - 1) * V, sizeof(float) * V);
    }
    t2_sampler *sampler = t2_sampler_new(V, smp.sp);
    print_ctx pc = {json};
    smp.gp.n_predict = n_predict;
    smp.gp.on_text = on_text;
    smp.gp.ctx = &pc;
    t2_gen_result res;
    if (t2_generate(lm, st, tok, sampler, logits, p.ids, p.n, &smp.gp, &res)) t2_cli_die(cmd, "%s", t2_last_error());
    if (json) {
        static const char *stops[] = {"length", "eos", "stop", "caller"};
        printf("{\"answer\": ");
        t2_cli_json_string(stdout, res.text, res.len);
        printf(", \"finish_reason\": \"%s\", \"tokens\": {\"prompt\": %d, \"image\": %d, \"generated\": %d}, "
               "\"images\": %d, \"timings_ms\": {\"image_encode\": %.2f, \"prefill\": %.2f, \"decode\": %.2f}, "
               "\"decode_tok_s\": %.2f, \"model\": ",
               stops[res.stop], p.n, p.n_image_tokens, res.n_gen, n_images, t_encode * 1e3, t_prefill * 1e3,
               res.t_decode * 1e3, res.n_gen > 0 ? res.n_gen / res.t_decode : 0.0);
        t2_cli_json_string(stdout, model_dir, strlen(model_dir));
        // adapt, choice, expert, mixture, first / second pass times and their ratio (Table 3)
        double second = t_prefill + res.t_decode;
        cJSON *aj = cJSON_CreateObject();
        if (dsp) t2_adapt_choice_json(aj, &choice);
        else cJSON_AddStringToObject(aj, "adapt", "none");
        cJSON_AddNumberToObject(aj, "second_pass_ms", round(second * 1e5) / 100);
        cJSON_AddNumberToObject(aj, "first_to_second_ratio", second > 0 ? round(1e4 * choice.first_pass_s / second) / 1e4 : 0);
        char *at = cJSON_PrintUnformatted(aj);
        cJSON_Delete(aj);
        printf(", %.*s}\n", (int)strlen(at) - 2, at + 1);
        free(at);
    } else {
        if (n_predict > 0) putchar('\n');
        fflush(stdout);
        fprintf(stderr, "t2: %d image(s) encoded in %.1f ms; prompt %d positions in %.1f ms; %d tokens in %.1f ms (%.1f tok/s)\n",
                n_images, t_encode * 1e3, p.n, t_prefill * 1e3, res.n_gen, res.t_decode * 1e3,
                res.n_gen > 0 ? res.n_gen / res.t_decode : 0.0);
        if (dsp && t2_adapt_per_request(&spec))
            fprintf(stderr, "t2: adapt %s chose %s (label '%s'); first pass %.1f ms = %.2f of the second pass\n", spec.text,
                    choice.choice, choice.label, choice.first_pass_s * 1e3,
                    t_prefill + res.t_decode > 0 ? choice.first_pass_s / (t_prefill + res.t_decode) : 0.0);
        if (dsp && choice.note[0]) fprintf(stderr, "t2: adapt %s: %s\n", spec.text, choice.note);
    }
    fflush(stdout);
    t2_dispatcher_free(dsp);
    t2_gen_result_free(&res);
    t2_sampler_free(sampler);
    free(logits);
    t2_lm_state_free(st);
    t2_prompt_free(&p);
    t2_vlm_free(m);
    return 0;
}
