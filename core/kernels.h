// kernels.h — the numeric hot spots: matrix-vector (decode) and matrix-matrix (prefill) products over
// weights stored in F32/F16/BF16, plus a few row ops. Each optimised kernel has a naive twin
// (t2_*_naive) that tests hold it against. The SIMD path is chosen at run time (AVX-512, AVX2+F16C,
// portable C). Matrices are row-major; W(M, K) means M rows of K contiguous elements.
#ifndef T2_KERNELS_H
#define T2_KERNELS_H
#include <stddef.h>
#include "core/dtype.h"
#include "core/pool.h"

// Contract: y(M) = W(M,K) · x(K) [+ bias(M) if bias]; W in dt; rows split over the pool's threads.
void t2_matvec(t2_pool *p, float *y, const void *W, t2_dtype dt, const float *x,
               const float *bias, int M, int K);
void t2_matvec_naive(float *y, const void *W, t2_dtype dt, const float *x, const float *bias,
                     int M, int K);

// Contract: Y(T,M) = X(T,K) · W(M,K)ᵀ [+ bias(M)]. F32 weights go straight to OpenBLAS sgemm; F16/BF16
// weights are widened panel by panel into SCRATCH (t2_matmul_scratch_floats(K) floats) first.
// T <= 8 uses the matvec kernels, each weight row streamed once for all T vectors. Runs threaded (OpenBLAS threads for sgemm, the pool for conversion).
void t2_matmul(t2_pool *p, float *Y, const float *X, const void *W, t2_dtype dt, const float *bias,
               int T, int M, int K, float *scratch);
size_t t2_matmul_scratch_floats(int K);
void t2_matmul_naive(float *Y, const float *X, const void *W, t2_dtype dt, const float *bias,
                     int T, int M, int K);

// Contract: C(M,N) = alpha·op(A)·op(B) + beta·C, row-major with leading dimensions (OpenBLAS sgemm);
// op(X) = Xᵀ when the trans flag is set. For strided f32 products such as attention over heads.
void t2_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

// Training's linear layer on f32 weights (sgemm). Forward: Y(N,M) = X(N,K) · W(M,K)ᵀ [+ b(M)].
// Backward: dX(N,K) += dY · W (skipped when dX is NULL); dW(M,K) += dYᵀ · X; db(M) += Σ_n dY[n].
void t2_linear_forward(float *Y, const float *X, const float *W, const float *b, int N, int M, int K);
void t2_linear_backward(float *dX, float *dW, float *db, const float *dY, const float *X, const float *W,
                        int N, int M, int K);

// Training's RMSNorm (Llama): OUT(N, C) = x / rms(x) ⊙ w, RINV(N) = 1/sqrt(mean(x²) + eps) kept for the
// backward; the backward adds (+=) dL/dx into DX and dL/dw into DW.
void t2_rmsnorm_forward(float *out, float *rinv, const float *x, const float *w, int N, int C, float eps);
void t2_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, const float *rinv,
                         int N, int C);

// Contract: dot product of x(n) and y(n) in f32 (SIMD).
float t2_dot(const float *x, const float *y, int n);

// Contract: the SIMD level in use: "avx512", "avx2", or "generic" (T2_SIMD=generic|avx2 forces lower).
const char *t2_simd_name(void);
// Contract: force the SIMD level ("generic", "avx2", "avx512"; NULL = back to the automatic choice,
// which honours T2_SIMD). Returns -1 (level unchanged) if unknown or unsupported by this CPU. For
// tests and benchmarks; not to be called while kernels run on other threads.
int t2_simd_force(const char *level);

// OpenBLAS: Debian 12's 0.3.21 can misdetect AVX-512 CPUs as "Prescott" (4x slower sgemm). Call first
// thing in main(): if the detected core is wrong for this CPU and OPENBLAS_CORETYPE is unset, it
// re-executes the program once with the right OPENBLAS_CORETYPE (the library reads it at load time).
void t2_blas_init(int argc, char **argv);
// Contract: the OPENBLAS_CORETYPE that suits a CPU with these features better than the detected
// core NAME ("SkylakeX", "Haswell"), or NULL when NAME is fine (pure: the decision of t2_blas_init).
const char *t2_blas_core_fix(const char *name, int has_avx512, int has_avx2);
// Contract: OpenBLAS's core name ("SkylakeX") and a note on how it came to be: "detected",
// "re-exec from Prescott", "set by OPENBLAS_CORETYPE", or why a weak core was kept.
const char *t2_blas_core(void);
const char *t2_blas_note(void);
// Contract: set OpenBLAS's thread count.
void t2_blas_threads(int n);   // capped at the core count

#endif
