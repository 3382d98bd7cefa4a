// error.c — thread-local last-error message and the assertion handler. Not a logger.
#include "core/error.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[1024];

const char *t2_last_error(void) { return last_error; }

void t2_error_clear(void) { last_error[0] = 0; }

static void vset(const char *fmt, va_list ap) { vsnprintf(last_error, sizeof last_error, fmt, ap); }

int t2_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(fmt, ap);
    va_end(ap);
    return -1;
}

void *t2_fail_null(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(fmt, ap);
    va_end(ap);
    return NULL;
}

void t2_error_prefix(const char *fmt, ...) {
    char old[sizeof last_error], pre[512];
    memcpy(old, last_error, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    size_t np = strlen(pre), no = strlen(old);
    if (np > sizeof last_error - 1) np = sizeof last_error - 1;
    if (no > sizeof last_error - 1 - np) no = sizeof last_error - 1 - np;   // truncate, keep the prefix
    memcpy(last_error, pre, np);
    memcpy(last_error + np, old, no);
    last_error[np + no] = 0;
}

void t2_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "t2: internal error: assertion `%s` failed at %s:%d\n", expr, file, line);
    abort();
}
