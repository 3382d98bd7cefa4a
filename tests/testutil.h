// testutil.h — what every ctest executable shares: argument handling, a scratch directory, running
// the Python references in tests/ref, comparing tensors, and loud failure (non-zero exit).
#ifndef T2_TESTUTIL_H
#define T2_TESTUTIL_H
#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *src;      // source tree root
    const char *work;     // this test's scratch directory (created empty)
    const char *python;   // Debian python3 with numpy / regex / torch
    const char *t2;       // path of the t2 program
} t2_test_env;

// Contract: parse argv (see tests/CMakeLists.txt), empty + create the scratch dir.
t2_test_env t2_test_init(int argc, char **argv);
// Contract: run `python tests/ref/SCRIPT ARGS...` (printf-formatted args string); returns its exit code.
int t2_test_python(const t2_test_env *e, const char *script, const char *argsfmt, ...)
    __attribute__((format(printf, 3, 4)));
// Contract: run a shell command; returns exit code; output captured to *out (malloc'd) if out != NULL.
int t2_test_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Contract: max |a-b| over n; print "NAME: max abs diff D (tol T)" and record a failure if > tol.
double t2_test_close(const char *name, const float *a, const float *b, size_t n, double tol);
// Contract: max |A[i]| over N floats.
double t2_test_max_abs(const float *a, size_t n);
// Contract: max |A[i] − B[i]| / max |B[i]| (the reference's scale; 1 when B is all zeros).
double t2_test_rel_err(const float *a, const float *b, size_t n);
// Contract: standard normal draws from a fixed xorshift64 stream (Box-Muller): tests reproduce run to run.
float t2_test_randn(void);
// Contract: N floats read from the raw little-endian f32 file PATH (malloc'd); NULL (and a printed
// failure) if it cannot be read or holds another count. N = 0 accepts any count, stored in *GOT.
float *t2_test_read_f32(const char *path, size_t n, size_t *got);
// Record a failure unless COND; prints file:line and the message.
#define T2_CHECK(cond, ...) t2_test_check((cond), __FILE__, __LINE__, #cond, __VA_ARGS__)
void t2_test_check(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
// Contract: print "N passed, N failed" and return the process exit code (0 only if nothing failed
// and at least one check ran).
int t2_test_done(void);

#endif
