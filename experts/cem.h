// cem.h — the cross-entropy method over mixing coefficients (Transformer² §3.3, strategy C): a
// diagonal Gaussian over α, sampled, clamped to [lo, hi], the elite fraction refits mean and std.
// Generic: the fitness is a callback (a synthetic one in the tests; the few-shot accuracy over a set
// of examples with a log-likelihood tie-break in eval/run.h). Not here: running a model.
#ifndef T2_EXPERTS_CEM_H
#define T2_EXPERTS_CEM_H
#include <stdint.h>

typedef struct {
    int dim;                    // α's length (K per expert, or K × matrices per matrix)
    int population;             // samples per generation (official: 32)
    float elite;                // elite ratio (0.2)
    float init_mean;            // α init (1/K)
    float init_std;             // std init (0.5)
    float lo, hi;               // samples clamped to [lo, hi] ([0, 1])
    int generations;            // at most (paper: up to 100)
    float min_std;              // stop early when every std is below this (0 = never)
    int patience;               // stop when the best has not improved for this many generations (0 = never)
    uint64_t seed;
    // Called once per generation after its evaluation (may be NULL).
    void (*progress)(void *ctx, int gen, int generations, double best, double gen_best, double gen_mean, double mean_std);
    void *ctx;
} t2_cem_opts;

// Contract: population 32, elite 0.2, init mean 0 (set it: 1/K), std 0.5, [0, 1], 100 generations,
// min_std 1e-3, no patience, seed 1.
t2_cem_opts t2_cem_defaults(int dim);

// Fitness of X(dim): larger is better. TIE(optional out) breaks equal fitness (larger wins). Return
// 0, or -1 + error to stop the search.
typedef int (*t2_cem_fitness)(void *ctx, const float *x, double *fitness, double *tie);

typedef struct {
    float *best;                // (dim) malloc'd: the best sample seen
    double best_fitness, best_tie;
    int generations;            // run
    int evaluations;
} t2_cem_result;

// Contract: maximise F over α. RES->best is malloc'd (free it). 0 or -1 + error (from F, or bad opts).
int t2_cem_run(const t2_cem_opts *o, t2_cem_fitness f, void *ctx, t2_cem_result *res);
void t2_cem_result_free(t2_cem_result *res);

#endif
