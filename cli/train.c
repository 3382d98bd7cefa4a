// cli/train.c — `t2 train` (placeholder until its issue lands).
#include "cli/cli.h"
int t2_cmd_train(int argc, char **argv) { (void)argc; (void)argv; t2_cli_die("train", "not implemented yet"); }
