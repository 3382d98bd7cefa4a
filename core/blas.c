// blas.c — OpenBLAS housekeeping (kernels.h): make sure its sgemm kernels suit this CPU, say which
// were chosen, set its thread count.
// Why: Debian 12's OpenBLAS 0.3.21 misdetects some AVX-512 Xeons as "Prescott" and runs SSE3
// kernels, 4x slower (bench/kernels.md). It reads OPENBLAS_CORETYPE only when the library loads,
// so the one sound fix from inside the program is to re-execute it once with the variable set.
// Not for: calling sgemm (kernels.c), or choosing our own SIMD level (kernels.c).
//
// Environment: OPENBLAS_CORETYPE set by the user is always respected (and reported). T2_BLAS_REEXEC
// marks the re-executed child and carries the misdetected name, so there is at most one re-exec.
// T2_BLAS_TEST_CORENAME (tests only) pretends OpenBLAS detected that name, to exercise the re-exec.
#include "core/kernels.h"
#include "core/pool.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

// Declared here rather than taken from <cblas.h>, which Debian's alternatives may point at netlib's.
extern char *openblas_get_corename(void);
extern void openblas_set_num_threads(int num_threads);

static char blas_core[64];
static char blas_note[256];

static int name_in(const char *name, const char *const *list) {
    for (; *list; list++)
        if (strcasecmp(name, *list) == 0) return 1;
    return 0;
}

const char *t2_blas_core_fix(const char *name, int has_avx512, int has_avx2) {
    static const char *const avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *const avx2_cores[] = {"Haswell", "Zen", "Excavator", "SkylakeX", "Cooperlake",
                                             "SapphireRapids", NULL};
    if (!name || !*name) return NULL;
    if (has_avx512) return name_in(name, avx512_cores) ? NULL : "SkylakeX";
    if (has_avx2) return name_in(name, avx2_cores) ? NULL : "Haswell";
    return NULL;   // pre-AVX2 CPU: whatever OpenBLAS picked is as good as we can tell
}

static void cpu_features(int *has_avx512, int *has_avx2) {
    *has_avx512 = *has_avx2 = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    *has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    *has_avx512 = *has_avx2 && __builtin_cpu_supports("avx512f");
#endif
}

static void set_core(const char *name) {
    snprintf(blas_core, sizeof blas_core, "%s", name && *name ? name : "unknown");
}

void t2_blas_init(int argc, char **argv) {
    const char *user = getenv("OPENBLAS_CORETYPE");
    const char *from = getenv("T2_BLAS_REEXEC");
    const char *pretend = getenv("T2_BLAS_TEST_CORENAME");
    const char *name = openblas_get_corename();
    if (pretend && *pretend && !(user && *user)) name = pretend;
    set_core(name);
    int has512, has2;
    cpu_features(&has512, &has2);
    const char *fix = t2_blas_core_fix(blas_core, has512, has2);

    if (from && *from) {   // we are the re-executed program
        snprintf(blas_note, sizeof blas_note, "re-exec from %s%s", from,
                 fix ? "; still not an optimal core for this CPU" : "");
        unsetenv("T2_BLAS_REEXEC");   // children of ours did not re-exec
        return;
    }
    if (user && *user) {
        if (fix)
            snprintf(blas_note, sizeof blas_note,
                     "set by OPENBLAS_CORETYPE; %s would suit this CPU better", fix);
        else
            snprintf(blas_note, sizeof blas_note, "set by OPENBLAS_CORETYPE");
        return;
    }
    if (!fix) {
        snprintf(blas_note, sizeof blas_note, "detected");
        return;
    }
    if (argc < 1 || !argv || !argv[0]) {
        snprintf(blas_note, sizeof blas_note, "weak core kept: no argv to re-exec as %s", fix);
        return;
    }
    setenv("OPENBLAS_CORETYPE", fix, 1);
    setenv("T2_BLAS_REEXEC", blas_core, 1);
    fflush(stdout);
    fflush(stderr);
    execv("/proc/self/exe", argv);
    int err = errno;   // still here: the exec failed; carry on with the slow kernels, and say so
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("T2_BLAS_REEXEC");
    snprintf(blas_note, sizeof blas_note, "weak core kept: re-exec as %s failed (%s)", fix,
             strerror(err));
}

const char *t2_blas_core(void) {
    if (!blas_core[0]) set_core(openblas_get_corename());
    return blas_core;
}

const char *t2_blas_note(void) { return blas_note[0] ? blas_note : "not checked (t2_blas_init not called)"; }

// More OpenBLAS threads than cores only slows the small products, and past its build's limit its
// buffer allocation spins (seen with -t 1024): capped at the core count.
void t2_blas_threads(int n) {
    int cores = t2_ncores();
    openblas_set_num_threads(n > 0 && n < cores ? n : cores);
}
