// pool.h — the one thread pool. Work is "run FN for tasks 0..n-1" and returns when all are done.
// Built for short calls (a decode step issues hundreds): workers spin briefly, then sleep.
#ifndef T2_POOL_H
#define T2_POOL_H

typedef struct t2_pool t2_pool;
typedef void (*t2_pool_fn)(void *ctx, int task, int thread);

// Contract: a pool of N threads (the caller counts as one; N <= 0 means the number of cores).
t2_pool *t2_pool_new(int n);
void t2_pool_free(t2_pool *p);
int t2_pool_size(const t2_pool *p);
// Contract: call fn(ctx, t, thread) for every t in [0, ntasks), spread over the threads; blocks until
// all calls returned. p may be NULL (runs serially). Not re-entrant from inside fn.
void t2_pool_run(t2_pool *p, int ntasks, t2_pool_fn fn, void *ctx);
// Contract: the number of online CPU cores.
int t2_ncores(void);

#endif
