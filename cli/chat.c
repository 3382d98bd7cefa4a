// chat.c — `t2 chat`: an interactive conversation on stdin/stdout, like llama-mtmd-cli without -p.
// Commands: /image PATH attaches an image to the next message, /clear starts over, /quit (or end of
// input) leaves. Each turn re-renders the conversation through the chat template and reuses the KV
// cache for the prefix that did not change, so earlier turns and images are not recomputed.
#include "cli/cli.h"
#include "core/error.h"
#include "core/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TURNS 256
#define MAX_IMAGES 32

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 chat --model DIR [--image FILE] [options]\n"
"\n"
"Chat with a checkpoint. Type a message and press enter. Commands:\n"
"  /image PATH   attach an image to your next message (repeatable)\n"
"  /clear        forget the conversation and its images\n"
"  /quit         leave (so does end of input)\n"
"\n"
"  -m, --model DIR          checkpoint directory (required)\n"
"  -i, --image FILE         an image attached to the first message\n"
"      --template NAME      chat template (default: recognised from the checkpoint)\n"
"      --system TEXT        system message\n"
"  -n, --n-predict N        tokens per reply at most (default 512)\n"
T2_CLI_SAMPLING_HELP
"                           (default here: greedy, --temp 0)\n"
"  -c, --ctx N              context size (default: min(max_position_embeddings, 8192))\n"
"  -t, --threads N          threads (default: all cores)\n"
"      --no-reuse           recompute the whole conversation every turn (to check the cache reuse)\n"
"  -h, --help               this help\n");
}

// A position's identity for prefix reuse: a token id, or (image, row) for image rows.
static int64_t pos_key(const t2_prompt *p, int t, int *img_k, int *img_row) {
    if (!p->is_embed[t]) return p->ids[t];
    if (*img_row == 0) (*img_k)++;
    int64_t key = -1 - ((int64_t)*img_k << 32 | (int64_t)*img_row);
    (*img_row)++;
    return key;
}

typedef struct {
    t2_vlm *m;
    t2_chat_kind kind;
    const char *system;
    t2_chat_msg msgs[MAX_TURNS];
    int n_msgs;
    t2_image_rows rows[MAX_IMAGES];
    int n_images, pending;      // images attached so far; of which not yet in a message
    int64_t *cached;            // keys of the positions in the KV cache
    int n_cached;
} session;

static void session_clear(session *s) {
    for (int i = 0; i < s->n_msgs; i++) free((char *)s->msgs[i].content);
    for (int k = 0; k < s->n_images; k++) free(s->rows[k].rows);
    s->n_msgs = s->n_images = s->pending = s->n_cached = 0;
    if (s->system) s->msgs[s->n_msgs++] = (t2_chat_msg){"system", t2_strdup(s->system)};
}

static int attach(session *s, const char *path) {
    if (s->n_images == MAX_IMAGES) return t2_fail("at most %d images in one conversation", MAX_IMAGES);
    t2_image im;
    if (t2_image_load(path, &im, 0)) return -1;
    int rc = t2_vlm_encode_image(s->m, &im, &s->rows[s->n_images].rows, &s->rows[s->n_images].n);
    t2_image_free(&im);
    if (rc) return t2_fail("%s: %s", path, t2_last_error());
    s->n_images++;
    s->pending++;
    return 0;
}

int t2_cmd_chat(int argc, char **argv) {
    const char *cmd = "chat", *model_dir = NULL, *tmpl_name = NULL, *image = NULL;
    session s = {0};
    int n_predict = 512, threads = 0, n_ctx = 0, reuse = 1;
    t2_cli_sampling smp;
    t2_cli_sampling_init(&smp, 0.0f);
    enum { O_TEMPLATE = 256, O_SYSTEM, O_NO_REUSE };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"image", required_argument, 0, 'i'},
        {"template", required_argument, 0, O_TEMPLATE}, {"system", required_argument, 0, O_SYSTEM},
        {"n-predict", required_argument, 0, 'n'}, T2_CLI_SAMPLING_OPTIONS,
        {"ctx", required_argument, 0, 'c'}, {"threads", required_argument, 0, 't'},
        {"no-reuse", no_argument, 0, O_NO_REUSE}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:i:n:c:t:h", opts, NULL)) != -1) {
        if (t2_cli_sampling_opt(&smp, cmd, c, optarg)) continue;
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'i': image = optarg; break;
        case O_TEMPLATE: tmpl_name = optarg; break;
        case O_SYSTEM: s.system = optarg; break;
        case O_NO_REUSE: reuse = 0; break;
        case 'n': n_predict = t2_cli_int(cmd, "--n-predict", optarg, 1, 1 << 24); break;
        case 'c': n_ctx = t2_cli_int(cmd, "--ctx", optarg, 1, 1 << 24); break;
        case 't': threads = t2_cli_int(cmd, "--threads", optarg, 1, 1024); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) t2_cli_die(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model_dir) { usage(stderr); t2_cli_die(cmd, "--model DIR is required"); }
    s.m = t2_cli_load(cmd, model_dir, threads, 1);
    if (t2_vlm_chat_kind(s.m, tmpl_name, &s.kind)) t2_cli_die(cmd, "%s", t2_last_error());
    const t2_lm_config *cfg = t2_vlm_lm_cfg(s.m);
    const t2_tokenizer *tok = t2_vlm_tok(s.m);
    if (n_ctx == 0) n_ctx = cfg->max_position < 8192 ? cfg->max_position : 8192;
    if (n_ctx > cfg->max_position) t2_cli_die(cmd, "--ctx %d exceeds max_position_embeddings %d", n_ctx, cfg->max_position);
    t2_lm *lm = t2_vlm_lm(s.m);
    t2_lm_state *st = t2_lm_state_new(lm, n_ctx, 512);
    if (!st) t2_cli_die(cmd, "%s", t2_last_error());
    s.cached = t2_malloc(sizeof(int64_t) * (size_t)n_ctx);
    float *logits = t2_malloc(sizeof(float) * (size_t)cfg->vocab_size);
    t2_sampler *sampler = t2_sampler_new(cfg->vocab_size, smp.sp);
    if (t2_chat_stop_text(s.kind) && smp.gp.n_stops < T2_GEN_MAX_STOPS) smp.gp.stops[smp.gp.n_stops++] = t2_chat_stop_text(s.kind);
    smp.gp.on_text = t2_cli_print;
    session_clear(&s);
    if (image && attach(&s, image)) t2_cli_die(cmd, "%s", t2_last_error());
    int tty = isatty(0);
    if (tty) fprintf(stderr, "t2 chat with %s (%s template). /image PATH, /clear, /quit.\n", model_dir, t2_chat_name(s.kind));

    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        if (tty) { fputs("> ", stdout); fflush(stdout); }
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
        if (!strcmp(line, "/clear")) { session_clear(&s); t2_lm_state_rewind(st, 0); fputs("(cleared)\n", stdout); continue; }
        if (!strncmp(line, "/image ", 7)) {
            if (!t2_vlm_has_vision(s.m)) { fprintf(stderr, "%s is a text-only checkpoint: no images\n", model_dir); continue; }
            if (attach(&s, line + 7)) fprintf(stderr, "t2 chat: %s\n", t2_last_error());
            else fprintf(stdout, "(image %d attached to your next message)\n", s.n_images);
            continue;
        }
        if (line[0] == '/') { fprintf(stderr, "unknown command %s (/image PATH, /clear, /quit)\n", line); continue; }
        if (s.n_msgs + 2 > MAX_TURNS) { fprintf(stderr, "the conversation is full: /clear to start over\n"); continue; }
        // The user's message, with markers for the images attached since the last one.
        char *content = t2_malloc((size_t)n + 8 * (size_t)s.pending + 1);
        content[0] = 0;
        for (int k = 0; k < s.pending; k++) strcat(content, "<image>\n");
        strcat(content, line);
        s.msgs[s.n_msgs++] = (t2_chat_msg){"user", content};
        char *text = t2_chat_render(s.kind, s.msgs, s.n_msgs, t2_tok_bos_text(tok));
        t2_prompt p;
        if (!text || t2_vlm_prompt_text(s.m, text, 0, s.rows, s.n_images, &p)) {
            fprintf(stderr, "t2 chat: %s\n", t2_last_error());
            free(text);
            free(content);
            s.n_msgs--;
            continue;
        }
        free(text);
        if (p.n + 1 >= n_ctx) {
            fprintf(stderr, "t2 chat: the conversation (%d positions) no longer fits the %d-token context: /clear\n", p.n, n_ctx);
            t2_prompt_free(&p);
            free(content);
            s.n_msgs--;
            continue;
        }
        s.pending = 0;
        // Reuse the cached prefix; run the rest.
        int k = -1, row = 0, same = 0;
        int64_t *keys = t2_malloc(sizeof(int64_t) * (size_t)p.n);
        for (int t = 0; t < p.n; t++) {
            if (!p.is_embed[t]) row = 0;
            keys[t] = pos_key(&p, t, &k, &row);
        }
        while (reuse && same < s.n_cached && same < p.n - 1 && keys[same] == s.cached[same]) same++;
        t2_lm_state_rewind(st, same);
        int rc = t2_lm_forward(lm, st, p.ids + same, p.embeds ? p.embeds + (size_t)same * cfg->hidden_size : NULL,
                               p.is_embed + same, p.n - same, logits, 0);
        if (rc) t2_cli_die(cmd, "%s", t2_last_error());
        memcpy(s.cached, keys, sizeof(int64_t) * (size_t)p.n);
        s.n_cached = p.n;
        free(keys);
        smp.gp.n_predict = n_predict < n_ctx - p.n ? n_predict : n_ctx - p.n;
        t2_gen_result res;
        if (t2_generate(lm, st, tok, sampler, logits, p.ids, p.n, &smp.gp, &res)) t2_cli_die(cmd, "%s", t2_last_error());
        putchar('\n');
        fflush(stdout);
        // The generated tokens that were fed back are in the cache too.
        for (int i = 0; s.n_cached < t2_lm_state_pos(st) && i < res.n_gen; i++) s.cached[s.n_cached++] = res.ids[i];
        s.msgs[s.n_msgs++] = (t2_chat_msg){"assistant", t2_utf8_sanitize(res.text, res.len)};
        t2_gen_result_free(&res);
        t2_prompt_free(&p);
    }
    free(line);
    session_clear(&s);
    for (int i = 0; i < s.n_msgs; i++) free((char *)s.msgs[i].content);
    free(s.cached);
    free(logits);
    t2_sampler_free(sampler);
    t2_lm_state_free(st);
    t2_vlm_free(s.m);
    return 0;
}
