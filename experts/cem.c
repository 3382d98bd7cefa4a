// cem.c — the cross-entropy method (see cem.h). Per generation: draw `population` samples
// x = clamp(μ + σ ⊙ N(0, I), lo, hi), score them, take the ceil(elite · population) best (fitness,
// then the tie-break), refit μ and σ to the elites (per coordinate, population std). The best sample
// seen over all generations is kept (the official code keeps the best too). Deterministic per seed.
#include "experts/cem.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

t2_cem_opts t2_cem_defaults(int dim) {
    t2_cem_opts o = {0};
    o.dim = dim;
    o.population = 32;
    o.elite = 0.2f;
    o.init_mean = 0.0f;
    o.init_std = 0.5f;
    o.lo = 0.0f;
    o.hi = 1.0f;
    o.generations = 100;
    o.min_std = 1e-3f;
    o.seed = 1;
    return o;
}

typedef struct { double f, tie; int i; } ranked;

static int by_fitness(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->f != y->f) return x->f < y->f ? 1 : -1;
    if (x->tie != y->tie) return x->tie < y->tie ? 1 : -1;
    return x->i - y->i;   // stable: the earlier sample
}

static int better(double f, double t, double bf, double bt) { return f > bf || (f == bf && t > bt); }

int t2_cem_run(const t2_cem_opts *o, t2_cem_fitness fit, void *ctx, t2_cem_result *res) {
    memset(res, 0, sizeof *res);
    int D = o->dim, P = o->population;
    if (D < 1 || P < 2 || !(o->elite > 0 && o->elite <= 1) || o->generations < 1 || !(o->hi >= o->lo))
        return t2_fail("cem: bad settings (dim %d, population %d, elite %g, generations %d, range [%g, %g])", D, P,
                       (double)o->elite, o->generations, (double)o->lo, (double)o->hi);
    int E = (int)ceil(o->elite * P);
    if (E < 2)   // one elite refits σ to 0: the search would stop after its first generation
        return t2_fail("cem: population %d with elite ratio %g keeps %d elite sample: at least 2 are needed (a larger "
                       "population or elite ratio)", P, (double)o->elite, E);
    float *mu = t2_malloc(sizeof(float) * (size_t)D), *sd = t2_malloc(sizeof(float) * (size_t)D);
    float *x = t2_malloc(sizeof(float) * (size_t)D * P);
    ranked *rk = t2_malloc(sizeof(ranked) * (size_t)P);
    res->best = t2_malloc(sizeof(float) * (size_t)D);
    res->best_fitness = -INFINITY;
    res->best_tie = -INFINITY;
    for (int d = 0; d < D; d++) mu[d] = o->init_mean, sd[d] = o->init_std;
    t2_rng rng;
    t2_rng_seed(&rng, o->seed);
    int rc = 0, stale = 0;
    for (int g = 0; g < o->generations && rc == 0; g++) {
        double gbest = -INFINITY, gsum = 0;
        int improved = 0;
        for (int p = 0; p < P && rc == 0; p++) {
            float *xp = x + (size_t)p * D;
            for (int d = 0; d < D; d++) {
                float v = mu[d] + sd[d] * t2_rng_normal(&rng);
                xp[d] = v < o->lo ? o->lo : v > o->hi ? o->hi : v;
            }
            double f = 0, t = 0;
            rc = fit(ctx, xp, &f, &t);
            res->evaluations++;
            rk[p] = (ranked){f, t, p};
            gsum += f;
            if (f > gbest) gbest = f;
            if (better(f, t, res->best_fitness, res->best_tie)) {
                res->best_fitness = f, res->best_tie = t;
                memcpy(res->best, xp, sizeof(float) * (size_t)D);
                improved = 1;
            }
        }
        if (rc) break;
        qsort(rk, (size_t)P, sizeof *rk, by_fitness);
        double msd = 0;
        for (int d = 0; d < D; d++) {
            double m = 0, v = 0;
            for (int e = 0; e < E; e++) m += x[(size_t)rk[e].i * D + d];
            m /= E;
            for (int e = 0; e < E; e++) {
                double t = x[(size_t)rk[e].i * D + d] - m;
                v += t * t;
            }
            mu[d] = (float)m;
            sd[d] = (float)sqrt(v / E);
            msd += sd[d];
        }
        msd /= D;
        res->generations = g + 1;
        if (o->progress) o->progress(o->ctx, g + 1, o->generations, res->best_fitness, gbest, gsum / P, msd);
        stale = improved ? 0 : stale + 1;
        int converged = o->min_std > 0;
        for (int d = 0; d < D && converged; d++) converged = sd[d] < o->min_std;
        if (converged || (o->patience > 0 && stale >= o->patience)) break;
    }
    free(mu);
    free(sd);
    free(x);
    free(rk);
    if (rc) t2_cem_result_free(res);
    return rc;
}

void t2_cem_result_free(t2_cem_result *res) {
    free(res->best);
    res->best = NULL;
}
