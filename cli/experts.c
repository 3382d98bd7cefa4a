// experts.c — `t2 experts list`: a model's expert registry (models/<model>/experts/registry.json) as a
// table — name, modality, dispatch label and description, file — each expert loaded and checked
// against the model's weights, and the classification prompt the first pass asks. Thin: flags →
// experts/registry.h.
#include "cli/cli.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "experts/registry.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 experts list --model DIR [--registry FILE] [--no-check] [--prompt QUESTION]\n"
"\n"
"List the experts of DIR/experts/registry.json (docs/adaptation.md): name, modality, the dispatch\n"
"label and description the classification prompt shows, the file, and whether it loads against\n"
"the model's weights and decomposition (fingerprint, shapes). Exits 1 when any does not.\n"
"\n"
"  -m, --model DIR          checkpoint directory (required)\n"
"      --registry FILE      another registry file\n"
"      --no-check           do not load the decomposition and the experts\n"
"      --prompt QUESTION    also print the classification prompt for QUESTION\n"
"  -h, --help               this help\n");
}

static int cmd_list(int argc, char **argv) {
    const char *cmd = "experts list", *model = NULL, *regp = NULL, *question = NULL;
    int check = 1, c;
    enum { O_REG = 256, O_NOCHECK, O_PROMPT };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"registry", required_argument, 0, O_REG},
        {"no-check", no_argument, 0, O_NOCHECK}, {"prompt", required_argument, 0, O_PROMPT},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case O_REG: regp = optarg; break;
        case O_NOCHECK: check = 0; break;
        case O_PROMPT: question = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model) { usage(stderr); t2_cli_die(cmd, "--model DIR is required"); }
    t2_registry *r = t2_registry_load(model, regp);
    if (!r) t2_cli_die(cmd, "%s", t2_last_error());
    t2_st *st = NULL;
    const t2_svf *svf = NULL;
    if (check) {
        if (!(st = t2_st_open(model))) t2_cli_die(cmd, "%s", t2_last_error());
        if (!(svf = t2_registry_svf(r, st, NULL))) t2_cli_die(cmd, "%s", t2_last_error());
    }
    printf("registry %s\ndecomposition %s\n\n", t2_registry_path(r), t2_registry_svf_path(r));
    printf("| name | modality | dispatch label | description | file | status |\n|---|---|---|---|---|---|\n");
    int bad = 0;
    for (int i = 0; i < t2_registry_count(r); i++) {
        const t2_registry_entry *e = t2_registry_at(r, i);
        const char *status = "not checked";
        char buf[600];
        if (check) {
            const t2_expert *ex = t2_registry_expert(r, i);
            if (ex) snprintf(buf, sizeof buf, "ok (%s, task %s)", t2_svf_param_name(ex->param), ex->task[0] ? ex->task : "-");
            else { snprintf(buf, sizeof buf, "ERROR: %s", t2_last_error()); bad++; }
            status = buf;
        }
        printf("| %s%s | %s | %s | %s | %s | %s |\n", e->name, i == t2_registry_classifier(r) ? " (classifier)" : "",
               e->modality == T2_MODALITY_VISION ? "vision" : "text", e->label[0] ? e->label : "-",
               e->description[0] ? e->description : "-", e->file, status);
    }
    if (question) {
        char *p = t2_registry_prompt(r, question);
        printf("\nclassification prompt:\n%s\n", p);
        free(p);
    }
    t2_registry_free(r);
    t2_st_close(st);
    return bad ? 1 : 0;
}

int t2_cmd_experts(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "list")) return cmd_list(argc - 1, argv + 1);
    t2_cli_die("experts", "unknown subcommand '%s' (list; see t2 experts --help)", argv[1]);
}
