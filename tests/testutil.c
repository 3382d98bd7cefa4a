// testutil.c — shared test harness (see testutil.h). Failures are counted, printed, and turned into
// a non-zero exit by t2_test_done.
#include "testutil.h"
#include "core/error.h"
#include "core/util.h"
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int n_pass, n_fail;

t2_test_env t2_test_init(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s SRC_DIR WORK_DIR PYTHON T2_PROGRAM (run through ctest)\n", argv[0]);
        exit(2);
    }
    t2_test_env e = {argv[1], argv[2], argv[3], argv[4]};
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", e.work, e.work);
    if (system(cmd) != 0) { fprintf(stderr, "cannot create %s\n", e.work); exit(2); }
    return e;
}

int t2_test_sh(char **out, const char *fmt, ...) {
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int st = pclose(p);
    if (out) *out = buf; else { fputs(buf, stdout); free(buf); }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int t2_test_python(const t2_test_env *e, const char *script, const char *argsfmt, ...) {
    char args[8192];
    va_list ap;
    va_start(ap, argsfmt);
    vsnprintf(args, sizeof args, argsfmt, ap);
    va_end(ap);
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/ref/%s' %s", e->python, e->src, script, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

float *t2_test_read_f32(const char *path, size_t n, size_t *got) {
    size_t len;
    char *buf = t2_read_file(path, &len);
    if (!buf || len % sizeof(float) || (n && len != n * sizeof(float))) {
        printf("FAIL cannot read %zu floats from %s (%s)\n", n, path, buf ? "wrong size" : t2_last_error());
        free(buf);
        return NULL;
    }
    if (got) *got = len / sizeof(float);
    return (float *)buf;
}

double t2_test_max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

double t2_test_rel_err(const float *a, const float *b, size_t n) {
    double d = 0, m = t2_test_max_abs(b, n);
    for (size_t i = 0; i < n; i++) if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    return d / (m > 0 ? m : 1);
}

float t2_test_randn(void) {
    static uint64_t s = 88172645463325252ull;
    double u[2];
    for (int i = 0; i < 2; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        u[i] = ((s >> 11) + 0.5) / 9007199254740992.0;
    }
    return (float)(sqrt(-2 * log(u[0])) * cos(2 * M_PI * u[1]));
}

double t2_test_close(const char *name, const float *a, const float *b, size_t n, double tol) {
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) { worst = d; at = i; }   // catches NaN too
    }
    int ok = worst <= tol;
    printf("%s %s: max abs diff %.3g at %zu (tol %.3g, n %zu)\n", ok ? "ok  " : "FAIL", name, worst, at, tol, n);
    if (ok) n_pass++; else n_fail++;
    return worst;
}

void t2_test_check(int ok, const char *file, int line, const char *expr, const char *fmt, ...) {
    if (ok) { n_pass++; return; }
    n_fail++;
    fprintf(stdout, "FAIL %s:%d: %s: ", file, line, expr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

int t2_test_done(void) {
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return (n_fail == 0 && n_pass > 0) ? 0 : 1;
}
