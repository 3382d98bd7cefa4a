// cli/world.c — `t2 world gen`: write families of the procedural world as JSONL + PNG benchmark
// files; `t2 world show`: print one item as JSON (and its image as a PNG). Thin: flags → world/.
#include "cli/cli.h"
#include "core/error.h"
#include "core/util.h"
#include "vision/image.h"
#include "world/world.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 world gen --family NAME[,NAME...|all] --split train|valid|test --n N --out DIR [options]\n"
"       t2 world show --family NAME --split S --index I [--png FILE] [options]\n"
"\n"
"The procedural visual world that trains and tests t2-tiny (docs/world.md). Every item is a pure\n"
"function of (family, split, index, image size, difficulty): the same bytes on every machine.\n"
"gen writes DIR/<family>-<split>.jsonl (the generic JSONL of `t2 eval --bench jsonl`) and the\n"
"images as DIR/images/<family>-<split>-<index>.png, with a progress line on stderr.\n"
"show prints item I as JSON (with its question as the model sees it, MC choices included).\n"
"\n"
"families: textvqa scene math code reasoning dispatch (trained on and tested);\n"
"          caption (trained on, no test set: describe the image);\n"
"          facts (trained on, no test set: the pieces of a reasoning question);\n"
"          signsum math_hard code_hard know (held out); all = every family\n"
"\n"
"  -f, --family NAME        family, comma-separated list (gen) or all (gen)\n"
"  -s, --split S            train, valid or test\n"
"  -n, --n N                (gen) items 0..N-1 of each family\n"
"  -o, --out DIR            (gen) output directory (created)\n"
"  -i, --index I            (show) the item's index\n"
"      --png FILE           (show) write the item's image to FILE\n"
"      --image-size N       image side in pixels, 32..1024 (default 96)\n"
"      --difficulty D       0..1: 0 = large short text, little clutter; 1 = full range (default 1)\n"
"  -q, --quiet              (gen) no progress on stderr\n"
"  -h, --help               this help\n");
}

typedef struct { const char *name; double t0; } prog_ctx;

static void progress(void *ctx, int done, int total) {
    prog_ctx *p = ctx;
    if (done != total && done % 100) return;
    double dt = t2_now() - p->t0;
    fprintf(stderr, "\rt2 world: %s %d/%d (%.0f items/s)", p->name, done, total, dt > 0 ? done / dt : 0.0);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

int t2_cmd_world(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    int gen = !strcmp(argv[1], "gen"), show = !strcmp(argv[1], "show");
    if (!gen && !show) t2_cli_die("world", "unknown subcommand '%s' (gen or show; see t2 world --help)", argv[1]);
    const char *cmd = gen ? "world gen" : "world show";
    argc--, argv++;
    const char *fams = NULL, *split_s = NULL, *out = NULL, *png = NULL;
    long long n = -1, index = -1;
    int quiet = 0;
    t2_world_opts o = t2_world_defaults();
    enum { O_PNG = 256, O_SIZE, O_DIFF };
    static const struct option opts[] = {
        {"family", required_argument, 0, 'f'}, {"split", required_argument, 0, 's'}, {"n", required_argument, 0, 'n'},
        {"out", required_argument, 0, 'o'}, {"index", required_argument, 0, 'i'}, {"png", required_argument, 0, O_PNG},
        {"image-size", required_argument, 0, O_SIZE}, {"difficulty", required_argument, 0, O_DIFF},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "f:s:n:o:i:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'f': fams = optarg; break;
        case 's': split_s = optarg; break;
        case 'n': n = t2_cli_int(cmd, "--n", optarg, 1, 100000000); break;
        case 'o': out = optarg; break;
        case 'i': {
            char *end;
            index = strtoll(optarg, &end, 10);
            if (*end || end == optarg || index < 0) t2_cli_die(cmd, "--index expects a non-negative integer, got '%s'", optarg);
            break;
        }
        case O_PNG: png = optarg; break;
        case O_SIZE: o.image_size = t2_cli_int(cmd, "--image-size", optarg, 32, 1024); break;
        case O_DIFF: o.difficulty = (float)t2_cli_float(cmd, "--difficulty", optarg, 0, 1); break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: fprintf(stderr, "see t2 world --help\n"); return 2;
        }
    }
    if (optind < argc) t2_cli_die(cmd, "unexpected argument '%s'", argv[optind]);
    if (!fams) t2_cli_die(cmd, "--family is required (textvqa, scene, ..., or all; see --help)");
    if (!split_s) t2_cli_die(cmd, "--split is required (train, valid or test)");
    int split = t2_world_split_parse(split_s);
    if (split < 0) t2_cli_die(cmd, "unknown --split '%s' (train, valid or test)", split_s);

    if (show) {
        int fam = t2_world_family_parse(fams);
        if (fam < 0) t2_cli_die(cmd, "unknown --family '%s' (see --help)", fams);
        if (index < 0) t2_cli_die(cmd, "--index is required");
        if (n >= 0 || out) t2_cli_die(cmd, "--n and --out belong to `t2 world gen`");
        uint8_t *rgb = t2_malloc((size_t)o.image_size * o.image_size * 3);
        t2_world_item it;
        if (t2_world_make(fam, split, (uint64_t)index, &o, &it, rgb)) t2_cli_die(cmd, "%s", t2_last_error());
        char *line = t2_world_jsonl_line(&it, it.has_image && png ? png : NULL);
        // The JSONL line, plus the question as the model sees it (MC choices included).
        printf("%.*s,\"prompt\":", (int)strlen(line) - 1, line);
        t2_cli_json_string(stdout, it.question, strlen(it.question));
        printf(",\"has_image\":%s}\n", it.has_image ? "true" : "false");
        free(line);
        if (png && it.has_image) {
            t2_image im = {o.image_size, o.image_size, rgb};
            if (t2_image_write_png(png, &im)) t2_cli_die(cmd, "%s", t2_last_error());
        } else if (png) fprintf(stderr, "t2 %s: %s has no image; --png ignored\n", cmd, it.id);
        free(rgb);
        return 0;
    }

    if (n < 0) t2_cli_die(cmd, "--n is required");
    if (!out) t2_cli_die(cmd, "--out is required");
    if (index >= 0 || png) t2_cli_die(cmd, "--index and --png belong to `t2 world show`");
    int list[T2_WORLD_COUNT], nf = 0;
    if (!strcmp(fams, "all")) {
        for (int i = 0; i < T2_WORLD_COUNT; i++) list[nf++] = i;
    } else {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", fams);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int fam = t2_world_family_parse(t);
            if (fam < 0) t2_cli_die(cmd, "unknown family '%s' in --family (see --help)", t);
            if (nf == T2_WORLD_COUNT) t2_cli_die(cmd, "--family lists too many names");
            list[nf++] = fam;
        }
        if (nf == 0) t2_cli_die(cmd, "--family is empty");
    }
    for (int i = 0; i < nf; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%s", t2_world_family_name(list[i]), split_s);
        prog_ctx p = {name, t2_now()};
        if (t2_world_write_progress(out, list[i], split, (int)n, &o, quiet ? NULL : progress, &p))
            t2_cli_die(cmd, "%s", t2_last_error());
    }
    return 0;
}
