// cli.c — placeholder
