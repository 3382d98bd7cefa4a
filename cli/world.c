// cli/world.c — `t2 world` (placeholder until its issue lands).
#include "cli/cli.h"
int t2_cmd_world(int argc, char **argv) { (void)argc; (void)argv; t2_cli_die("world", "not implemented yet"); }
