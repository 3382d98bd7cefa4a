// cli/tower.c — `t2 tower train`: flags → t2_tower_train_run (train/tower_train.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "core/error.h"
#include "train/tower_train.h"

static const char *HELP =
"usage: t2 tower train --model DIR --out DIR [options]\n"
"\n"
"Pretrain a LLaVA model's vision tower on its own, on the procedural world's images: for every\n"
"patch, a linear head names the character drawn in its left and right half (a-z, 0-9, other, none;\n"
"the world knows where it drew each glyph) and another predicts the patch's pixels pooled 4x4 (so\n"
"colour and shape stay in the features). Only the tower learns; the projector and the language\n"
"model are copied through. The out directory gets:\n"
"  checkpoint.safetensors   tower + heads + AdamW state (atomic; every --every steps, at the end and\n"
"                           on SIGINT / SIGTERM)\n"
"  model/                   the whole model with the new tower (HF LLaVA layout, F16)\n"
"  log.csv                  step, loss, char loss, pixel MSE, char accuracy, lr, grad norm, images/s\n"
"  valid.csv                per-character accuracy on textvqa validation images\n"
"\n"
"  -m, --model DIR        the LLaVA checkpoint whose tower is trained (model.safetensors)\n"
"  -o, --out DIR          the run directory\n"
"      --steps N          schedule length (default 4000)\n"
"      --max-steps N      stop after N steps of this invocation (checkpointed; --resume continues)\n"
"      --batch N          images per step (default 16)\n"
"      --lr X             peak learning rate (default 1e-3; warmup, then cosine to --lr-min 1e-5)\n"
"      --lr-min X\n"
"      --warmup N         warmup steps (default 100)\n"
"      --weight-decay X   AdamW decay on matrices (default 0.05)\n"
"      --clip X           global gradient-norm clip (default 1; 0 = none)\n"
"      --recon X          weight of the pixel head's loss (default 1)\n"
"      --char-weight X    weight of a half-patch with a character in the character loss, against 1\n"
"                         for an empty one (default 10; the loss is the weighted mean)\n"
"      --on features|rows where the heads read: the tower's selected features (default), or the\n"
"                         projected rows, RMS-normalised as the language model's first norm sees them\n"
"                         (the tower then learns, through the frozen projector, what the LM receives)\n"
"      --probe            keep the tower frozen and train the heads only: a linear probe of what the\n"
"                         features / rows already hold (the export is then the input model)\n"
"      --projector heads  export a projector that computes the heads (needs --on features): linear_1 =\n"
"                         [char head; pixel head; -pixel head; the input model's other rows], linear_2 =\n"
"                         identity, so the language model receives character logits and pixels\n"
"                         on fixed axes (default: keep the input model's projector)\n"
"      --families SPEC    world image families and weights (default textvqa:4,caption:2,scene:1)\n"
"      --difficulty LO:HI each image's difficulty drawn uniformly in [LO, HI] (default 0:1)\n"
"      --seed N           data and head initialisation (default 1)\n"
"      --every N          checkpoint, export and validate every N steps (default 500)\n"
"      --log-every N      log.csv / progress line every N steps (default 50)\n"
"      --valid N          textvqa validation images (default 64; 0 = none)\n"
"  -t, --threads N        OpenBLAS threads\n"
"      --resume           continue the run in --out from its checkpoint (same settings required)\n"
"  -q, --quiet            no progress lines\n";

enum { O_STEPS = 256, O_MAX, O_BATCH, O_LR, O_LRMIN, O_WARM, O_WD, O_CLIP, O_RECON, O_FAM, O_DIFF, O_SEED,
       O_EVERY, O_LOGE, O_VALID, O_RESUME, O_CW, O_ON, O_PROBE, O_PROJ };

static int cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"out", required_argument, 0, 'o'}, {"steps", required_argument, 0, O_STEPS},
        {"max-steps", required_argument, 0, O_MAX}, {"batch", required_argument, 0, O_BATCH}, {"lr", required_argument, 0, O_LR},
        {"lr-min", required_argument, 0, O_LRMIN}, {"warmup", required_argument, 0, O_WARM},
        {"weight-decay", required_argument, 0, O_WD}, {"clip", required_argument, 0, O_CLIP},
        {"recon", required_argument, 0, O_RECON}, {"char-weight", required_argument, 0, O_CW},
        {"on", required_argument, 0, O_ON}, {"probe", no_argument, 0, O_PROBE},
        {"projector", required_argument, 0, O_PROJ}, {"families", required_argument, 0, O_FAM},
        {"difficulty", required_argument, 0, O_DIFF}, {"seed", required_argument, 0, O_SEED},
        {"every", required_argument, 0, O_EVERY}, {"log-every", required_argument, 0, O_LOGE},
        {"valid", required_argument, 0, O_VALID}, {"threads", required_argument, 0, 't'},
        {"resume", no_argument, 0, O_RESUME}, {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *cmd = "tower train";
    t2_tower_train_opts o = t2_tower_train_defaults();
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model_dir = optarg; break;
        case 'o': o.out_dir = optarg; break;
        case O_STEPS: o.steps = t2_cli_int(cmd, "--steps", optarg, 1, 100000000); break;
        case O_MAX: o.max_steps = t2_cli_int(cmd, "--max-steps", optarg, 1, 100000000); break;
        case O_BATCH: o.batch = t2_cli_int(cmd, "--batch", optarg, 1, 4096); break;
        case O_LR: o.lr = t2_cli_float(cmd, "--lr", optarg, 1e-9, 1); break;
        case O_LRMIN: o.lr_min = t2_cli_float(cmd, "--lr-min", optarg, 0, 1); break;
        case O_WARM: o.warmup = t2_cli_int(cmd, "--warmup", optarg, 0, 100000000); break;
        case O_WD: o.weight_decay = t2_cli_float(cmd, "--weight-decay", optarg, 0, 10); break;
        case O_CLIP: o.clip = t2_cli_float(cmd, "--clip", optarg, 0, 1e9); break;
        case O_RECON: o.recon_weight = t2_cli_float(cmd, "--recon", optarg, 0, 1e6); break;
        case O_CW: o.char_weight = t2_cli_float(cmd, "--char-weight", optarg, 1e-3, 1e6); break;
        case O_FAM: o.families = optarg; break;
        case O_ON:
            if (!strcmp(optarg, "rows")) o.on_rows = 1;
            else if (!strcmp(optarg, "features")) o.on_rows = 0;
            else t2_cli_die(cmd, "--on '%s': features or rows", optarg);
            break;
        case O_DIFF: {
            char *end;
            o.diff_lo = strtod(optarg, &end);
            if (*end != ':') t2_cli_die(cmd, "--difficulty '%s': LO:HI, e.g. 0:1", optarg);
            char *e2;
            o.diff_hi = strtod(end + 1, &e2);
            if (*e2 || !(o.diff_lo >= 0 && o.diff_hi <= 1 && o.diff_lo <= o.diff_hi))
                t2_cli_die(cmd, "--difficulty '%s': LO:HI with 0 <= LO <= HI <= 1", optarg);
            break;
        }
        case O_SEED: o.seed = (uint64_t)t2_cli_int(cmd, "--seed", optarg, 0, 2000000000); break;
        case O_EVERY: o.every = t2_cli_int(cmd, "--every", optarg, 1, 100000000); break;
        case O_LOGE: o.log_every = t2_cli_int(cmd, "--log-every", optarg, 1, 100000000); break;
        case O_VALID: o.n_valid = t2_cli_int(cmd, "--valid", optarg, 0, 100000); break;
        case 't': o.threads = t2_cli_int(cmd, "--threads", optarg, 1, 1024); break;
        case O_RESUME: o.resume = 1; break;
        case O_PROBE: o.probe = 1; break;
        case O_PROJ:
            if (!strcmp(optarg, "heads")) o.projector_from_heads = 1;
            else if (!strcmp(optarg, "keep")) o.projector_from_heads = 0;
            else t2_cli_die(cmd, "--projector '%s': heads or keep", optarg);
            break;
        case 'q': o.quiet = 1; break;
        case 'h': fputs(HELP, stdout); return 0;
        default: fputs(HELP, stderr); return 2;
        }
    }
    if (optind < argc) t2_cli_die(cmd, "unexpected argument '%s' (see --help)", argv[optind]);
    if (!o.model_dir || !o.out_dir) t2_cli_die(cmd, "--model DIR and --out DIR are required (see --help)");
    if (t2_tower_train_run(&o)) t2_cli_die(cmd, "%s", t2_last_error());
    return 0;
}

int t2_cmd_tower(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(HELP, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
    t2_cli_die("tower", "unknown subcommand '%s' (train)", argv[1]);
}
