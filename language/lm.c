// lm.c — placeholder, being written
