// cli/tokenizer.c — `t2 tokenizer train|encode`: learn a byte-level BPE tokenizer from text files
// (language/tokenizer_train.h) and, for debugging, encode text with a tokenizer directory.
// Plain input files hold one document per line; with --jsonl each line is a JSON object whose
// "question", "answer", "answers" and "choices" strings are the text (t2's generic eval JSONL).
#include "cli/cli.h"
#include "core/error.h"
#include "core/util.h"
#include "language/tokenizer.h"
#include "language/tokenizer_train.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "tokenizer train"
#define MAX_LIST 256

static void train_usage(FILE *f) {
    fprintf(f,
"usage: t2 tokenizer train --input FILE [--input FILE ...] --vocab-size N --out DIR [options]\n"
"Learn a byte-level BPE vocabulary (GPT-2 pre-split, greedy merges) and write DIR/tokenizer.json,\n"
"tokenizer_config.json and special_tokens_map.json (Hugging Face layout).\n"
"  -i, --input FILE          text file, one document per line (repeatable)\n"
"      --jsonl               inputs are JSONL: question / answer / answers / choices strings\n"
"  -n, --vocab-size N        total vocabulary: 256 bytes + merges + special tokens\n"
"  -o, --out DIR             output directory (created)\n"
"      --min-frequency N     smallest pair count merged (default 2)\n"
"      --special TOKEN       added special token (repeatable; replaces the default <image>)\n"
"      --bos TOKEN           BOS token (default <s>; \"\" for none)\n"
"      --eos TOKEN           EOS token (default </s>; \"\" for none)\n"
"      --pad TOKEN           padding token (default <pad>; \"\" for none)\n"
"      --unk TOKEN           unknown token (default none)\n"
"      --no-add-bos          do not prepend BOS when encoding\n"
"      --chat-template T     vicuna (llava-1.5's template) or a file holding a Jinja template\n"
"      --model-max-length N  tokenizer_config.json model_max_length (default 2048)\n"
"  -h, --help\n");
}

typedef struct { double t0; int tty; } progress_t;

static void on_progress(void *ctx, int done, int total) {
    progress_t *p = ctx;
    if (p->tty) fprintf(stderr, "\rt2 tokenizer: merges %d/%d (%.1f s)   ", done, total, t2_now() - p->t0);
}

// Exit with the library's message (which already says "tokenizer train: ...").
static void lib_die(void) __attribute__((noreturn));
static void lib_die(void) {
    const char *m = t2_last_error();
    if (!strncmp(m, CMD ": ", strlen(CMD) + 2)) m += strlen(CMD) + 2;
    t2_cli_die(CMD, "%s", m);
}

static void add_unique(const char **list, int *n, const char *s) {
    if (!s || !*s) return;
    for (int i = 0; i < *n; i++) if (!strcmp(list[i], s)) return;
    if (*n == MAX_LIST) t2_cli_die(CMD, "too many special tokens (at most %d)", MAX_LIST);
    list[(*n)++] = s;
}

static void feed(t2_toktrain *t, const char *path, int line, const char *s, size_t n) {
    if (n && t2_toktrain_feed(t, s, n) != 0) t2_cli_die(CMD, "%s:%d: %s", path, line, t2_last_error());
}

static void feed_json_strings(t2_toktrain *t, const char *path, int line, const cJSON *v, const char *key) {
    if (!v) return;
    if (cJSON_IsString(v)) { feed(t, path, line, v->valuestring, strlen(v->valuestring)); return; }
    if (cJSON_IsArray(v)) {
        const cJSON *x;
        cJSON_ArrayForEach(x, v) {
            if (cJSON_IsString(x)) feed(t, path, line, x->valuestring, strlen(x->valuestring));
            else if (cJSON_IsObject(x) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(x, "answer")))
                feed_json_strings(t, path, line, cJSON_GetObjectItemCaseSensitive(x, "answer"), key);
            else t2_cli_die(CMD, "%s:%d: \"%s\" holds a value that is not a string", path, line, key);
        }
        return;
    }
    if (!cJSON_IsNull(v)) t2_cli_die(CMD, "%s:%d: \"%s\" is neither a string nor a list of strings", path, line, key);
}

// Feed every document of PATH; returns the number of documents.
static long feed_file(t2_toktrain *t, const char *path, int jsonl) {
    size_t len;
    char *text = t2_read_file(path, &len);
    if (!text) t2_cli_die(CMD, "%s", t2_last_error());
    long docs = 0;
    int line = 0;
    static const char *keys[] = {"question", "answer", "answers", "choices"};
    for (size_t at = 0; at < len;) {
        char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - at;
        line++;
        if (n && text[at + n - 1] == '\r') n--;
        if (jsonl) {
            size_t k = 0;
            while (k < n && (text[at + k] == ' ' || text[at + k] == '\t')) k++;
            if (k < n) {
                cJSON *o = cJSON_ParseWithLength(text + at, n);
                if (!o || !cJSON_IsObject(o))
                    t2_cli_die(CMD, "%s:%d: %s", path, line, o ? "not a JSON object" : "invalid JSON");
                for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
                    feed_json_strings(t, path, line, cJSON_GetObjectItemCaseSensitive(o, keys[i]), keys[i]);
                cJSON_Delete(o);
                docs++;
            }
        } else if (n) {
            feed(t, path, line, text + at, n);
            docs++;
        }
        at = end + 1;
    }
    free(text);
    return docs;
}

static int cmd_train(int argc, char **argv) {
    enum { O_JSONL = 1, O_MINF, O_SPECIAL, O_BOS, O_EOS, O_PAD, O_UNK, O_NOBOS, O_TEMPLATE, O_MAXLEN };
    static const struct option opts[] = {
        {"input", required_argument, 0, 'i'}, {"vocab-size", required_argument, 0, 'n'},
        {"out", required_argument, 0, 'o'}, {"jsonl", no_argument, 0, O_JSONL},
        {"min-frequency", required_argument, 0, O_MINF}, {"special", required_argument, 0, O_SPECIAL},
        {"bos", required_argument, 0, O_BOS}, {"eos", required_argument, 0, O_EOS},
        {"pad", required_argument, 0, O_PAD}, {"unk", required_argument, 0, O_UNK},
        {"no-add-bos", no_argument, 0, O_NOBOS}, {"chat-template", required_argument, 0, O_TEMPLATE},
        {"model-max-length", required_argument, 0, O_MAXLEN}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *inputs[MAX_LIST], *extra[MAX_LIST], *out = NULL, *tmpl = NULL;
    const char *bos = "<s>", *eos = "</s>", *pad = "<pad>", *unk = NULL;
    int n_inputs = 0, n_extra = 0, extra_set = 0, jsonl = 0;
    t2_toktrain_params p = t2_toktrain_defaults();
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:n:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': if (n_inputs == MAX_LIST) t2_cli_die(CMD, "too many --input files"); inputs[n_inputs++] = optarg; break;
        case 'n': p.vocab_size = t2_cli_int(CMD, "--vocab-size", optarg, 1, 1 << 24); break;
        case 'o': out = optarg; break;
        case O_JSONL: jsonl = 1; break;
        case O_MINF: p.min_frequency = t2_cli_int(CMD, "--min-frequency", optarg, 1, 1 << 30); break;
        case O_SPECIAL: extra_set = 1; add_unique(extra, &n_extra, optarg); break;
        case O_BOS: bos = optarg; break;
        case O_EOS: eos = optarg; break;
        case O_PAD: pad = optarg; break;
        case O_UNK: unk = optarg; break;
        case O_NOBOS: p.add_bos = 0; break;
        case O_TEMPLATE: tmpl = optarg; break;
        case O_MAXLEN: p.model_max_length = t2_cli_int(CMD, "--model-max-length", optarg, 1, 1 << 30); break;
        case 'h': train_usage(stdout); return 0;
        default: train_usage(stderr); return 2;
        }
    }
    if (optind < argc) t2_cli_die(CMD, "unexpected argument '%s' (see --help)", argv[optind]);
    if (!n_inputs) t2_cli_die(CMD, "--input FILE is required (see --help)");
    if (!out) t2_cli_die(CMD, "--out DIR is required");
    if (!p.vocab_size) t2_cli_die(CMD, "--vocab-size N is required");
    if (!extra_set) extra[n_extra++] = "<image>";

    const char *specials[MAX_LIST];
    int n_specials = 0;
    add_unique(specials, &n_specials, bos);
    add_unique(specials, &n_specials, eos);
    add_unique(specials, &n_specials, pad);
    add_unique(specials, &n_specials, unk);
    for (int i = 0; i < n_extra; i++) add_unique(specials, &n_specials, extra[i]);
    p.specials = specials;
    p.n_specials = n_specials;
    p.bos = *bos ? bos : NULL;
    p.eos = *eos ? eos : NULL;
    p.pad = *pad ? pad : NULL;
    p.unk = unk && *unk ? unk : NULL;
    if (p.vocab_size < 256 + n_specials)
        t2_cli_die(CMD, "--vocab-size %d is smaller than 256 byte tokens + %d special tokens", p.vocab_size, n_specials);

    char *tmpl_text = NULL;
    if (tmpl) {
        if (!strcmp(tmpl, "vicuna") || !strcmp(tmpl, "llava") || !strcmp(tmpl, "llava-1.5")) p.chat_template = t2_toktrain_vicuna_template();
        else if (!(tmpl_text = t2_read_file(tmpl, NULL))) t2_cli_die(CMD, "--chat-template: %s", t2_last_error());
        else p.chat_template = tmpl_text;
    }

    progress_t pr = {t2_now(), isatty(2)};
    p.progress = on_progress;
    p.progress_ctx = &pr;
    t2_toktrain *t = t2_toktrain_new();
    long docs = 0;
    for (int i = 0; i < n_inputs; i++) docs += feed_file(t, inputs[i], jsonl);
    size_t total, distinct = t2_toktrain_n_words(t, &total);
    double t_read = t2_now() - pr.t0;
    fprintf(stderr, "t2 tokenizer: %ld documents, %zu words (%zu distinct) read in %.2f s\n", docs, total, distinct, t_read);
    pr.t0 = t2_now();
    if (t2_toktrain_run(t, &p) != 0) lib_die();
    double t_train = t2_now() - pr.t0;
    if (pr.tty) fputc('\n', stderr);
    int n_tok = t2_toktrain_n_tokens(t);
    if (n_tok + n_specials < p.vocab_size)
        fprintf(stderr, "t2 tokenizer: note: stopped at %d tokens (no pair left with count >= %d)\n",
                n_tok + n_specials, p.min_frequency);
    if (t2_toktrain_save(t, &p, out) != 0) lib_die();
    fprintf(stderr, "t2 tokenizer: %d merges in %.2f s; vocabulary %d (256 bytes + %d merged + %d special) → %s\n",
            t2_toktrain_n_merges(t), t_train, n_tok + n_specials, n_tok - 256, n_specials, out);
    t2_toktrain_free(t);
    free(tmpl_text);
    return 0;
}

// `t2 tokenizer encode --model DIR [--no-special] TEXT...`: ids on one line, then each piece.
static int cmd_encode(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"no-special", no_argument, 0, 'N'},
                                         {"pieces", no_argument, 0, 'p'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *dir = NULL;
    int special = 1, pieces = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        if (c == 'm') dir = optarg;
        else if (c == 'N') special = 0;
        else if (c == 'p') pieces = 1;
        else {
            fprintf(c == 'h' ? stdout : stderr, "usage: t2 tokenizer encode --model DIR [--no-special] [--pieces] TEXT...\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (!dir || optind >= argc) t2_cli_die("tokenizer encode", "usage: t2 tokenizer encode --model DIR [--no-special] [--pieces] TEXT...");
    t2_tokenizer *tok = t2_tok_load(dir);
    if (!tok) t2_cli_die("tokenizer encode", "%s", t2_last_error());
    for (int a = optind; a < argc; a++) {
        int n = t2_tok_encode(tok, argv[a], special, special, NULL, 0);
        if (n < 0) t2_cli_die("tokenizer encode", "%s", t2_last_error());
        int32_t *ids = t2_malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
        t2_tok_encode(tok, argv[a], special, special, ids, n);
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        if (pieces) {
            for (int i = 0; i < n; i++) {
                const char *s = t2_tok_piece(tok, ids[i]);
                printf(i ? " " : "");
                t2_cli_json_string(stdout, s ? s : "", s ? strlen(s) : 0);
            }
            printf("\n");
        }
        free(ids);
    }
    t2_tok_free(tok);
    return 0;
}

int t2_cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: t2 tokenizer train ...   learn a byte-level BPE tokenizer (see train --help)\n"
                   "       t2 tokenizer encode --model DIR TEXT...   print the ids of TEXT\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "encode")) return cmd_encode(argc - 1, argv + 1);
    t2_cli_die("tokenizer", "unknown subcommand '%s' (train, encode)", argv[1]);
}
