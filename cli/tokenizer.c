// cli/tokenizer.c — `t2 tokenizer` (placeholder until its issue lands).
#include "cli/cli.h"
int t2_cmd_tokenizer(int argc, char **argv) { (void)argc; (void)argv; t2_cli_die("tokenizer", "not implemented yet"); }
