// cli/serve.c — `t2 serve` (placeholder until its issue lands).
#include "cli/cli.h"
int t2_cmd_serve(int argc, char **argv) { (void)argc; (void)argv; t2_cli_die("serve", "not implemented yet"); }
