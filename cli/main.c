// main.c — the `t2` program: dispatches to the subcommands in cli/.
#include <stdio.h>
int main(int argc, char **argv) { (void)argc; (void)argv; puts("t2"); return 0; }
