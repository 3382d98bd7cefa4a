// pool.c — the one thread pool (pool.h): persistent pthreads that run "fn for tasks 0..n-1".
// For: the many short parallel loops of a decode step (hundreds per token) and the longer ones of
// prefill. The caller is thread 0 and works too; tasks are claimed one at a time from a counter.
// Not for: nested parallelism, task graphs, or calls from two threads at once on one pool.
//
// Hand-off protocol. A call costs a handful of cache-line transfers between cores (~100 ns each on
// the build machine), so everything a job needs sits on one line:
//   state  64 bits: generation << 32 | next task index. An odd generation means "closed": the
//          caller is rewriting the job. Tasks are claimed with a CAS on the whole word, so a worker
//          can only claim a task of the generation whose fields it read.
//   fn, ctx, ntasks  written (release) while closed, read (acquire) after seeing an open generation.
//          A worker that read a newer job's field has, through that acquire, also seen the "closed"
//          store made before it, so its CAS on the old generation fails: it never runs a task with
//          mismatched fields.
// Completions go to one counter per worker (its own line), published once per job; the caller sums
// them. Idle workers spin for T2_POOL_SPIN_US (default below), then sleep on a condition variable;
// the caller signals only when someone sleeps.
#include "core/pool.h"
#include "core/error.h"
#include "core/util.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POOL_SPIN_US_DEFAULT 50.0   // covers the gaps between a decode step's calls; see bench/kernels.md

typedef struct {
    _Alignas(64) atomic_uint done;   // tasks this worker finished, ever (only it writes)
    t2_pool *pool;
    int index;                       // 1..n-1 (0 is the caller)
    pthread_t thread;
} pool_worker;

struct t2_pool {
    // the job line
    _Alignas(64) _Atomic uint64_t state;
    _Atomic(t2_pool_fn) fn;
    _Atomic(void *) ctx;
    atomic_int ntasks;
    atomic_int sleepers;
    atomic_int stop;
    // the rest
    _Alignas(64) int n;              // threads including the caller
    double spin_s;                   // how long an idle worker spins before sleeping
    unsigned done_total;             // sum of the workers' done counters after the last job
    atomic_int busy;                 // catches concurrent or nested t2_pool_run
    pool_worker *workers;            // (n-1)
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

#define GEN(s) ((uint32_t)((s) >> 32))
#define IDX(s) ((uint32_t)(s))

int t2_ncores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// Claim and run tasks of generation GEN (state S as last seen) until none are left or the job
// changed; returns how many ran.
static unsigned run_tasks(t2_pool *p, uint64_t s, t2_pool_fn fn, void *ctx, uint32_t ntasks, int thread) {
    uint32_t gen = GEN(s);
    unsigned ran = 0;
    while (GEN(s) == gen && IDX(s) < ntasks) {
        if (atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            fn(ctx, (int)IDX(s), thread);
            ran++;
            s++;
        }
    }
    return ran;
}

// Wait until the state shows an open generation other than SEEN, or stop; returns the state.
static uint64_t wait_for_job(t2_pool *p, uint32_t seen) {
    double t0 = t2_now();
    for (unsigned spins = 0;; spins++) {
        uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
        if ((GEN(s) != seen && !(GEN(s) & 1)) || atomic_load_explicit(&p->stop, memory_order_relaxed))
            return s;
        cpu_relax();
        if ((spins & 15) == 15 && t2_now() - t0 > p->spin_s) break;
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    uint64_t s;
    for (;;) {
        s = atomic_load(&p->state);
        if ((GEN(s) != seen && !(GEN(s) & 1)) || atomic_load(&p->stop)) break;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return s;
}

static void *worker_main(void *arg) {
    pool_worker *w = arg;
    t2_pool *p = w->pool;
    uint32_t seen = GEN(atomic_load(&p->state));
    unsigned done = 0;
    for (;;) {
        uint64_t s = wait_for_job(p, seen);
        if (atomic_load(&p->stop)) break;
        t2_pool_fn fn = atomic_load_explicit(&p->fn, memory_order_acquire);
        void *ctx = atomic_load_explicit(&p->ctx, memory_order_acquire);
        uint32_t ntasks = (uint32_t)atomic_load_explicit(&p->ntasks, memory_order_acquire);
        unsigned ran = run_tasks(p, s, fn, ctx, ntasks, w->index);
        if (ran) atomic_store_explicit(&w->done, done += ran, memory_order_release);
        seen = GEN(s);
    }
    return NULL;
}

t2_pool *t2_pool_new(int n) {
    if (n <= 0) n = t2_ncores();
    t2_pool *p = t2_aligned_alloc(sizeof *p);
    memset(p, 0, sizeof *p);
    p->n = n;
    const char *s = getenv("T2_POOL_SPIN_US");
    p->spin_s = (s && *s ? atof(s) : POOL_SPIN_US_DEFAULT) * 1e-6;
    atomic_init(&p->state, 0);
    atomic_init(&p->fn, NULL);
    atomic_init(&p->ctx, NULL);
    atomic_init(&p->ntasks, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->busy, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n > 1) p->workers = t2_aligned_alloc((size_t)(n - 1) * sizeof *p->workers);
    for (int i = 0; i < n - 1; i++) {
        pool_worker *w = &p->workers[i];
        atomic_init(&w->done, 0);
        w->pool = p;
        w->index = i + 1;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            p->n = i + 1;   // run with the threads we got; the pool stays correct with fewer
            break;
        }
    }
    return p;
}

void t2_pool_free(t2_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n - 1; i++) pthread_join(p->workers[i].thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->workers);
    free(p);
}

int t2_pool_size(const t2_pool *p) { return p ? p->n : 1; }

void t2_pool_run(t2_pool *p, int ntasks, t2_pool_fn fn, void *ctx) {
    if (ntasks <= 0) return;
    if (!p || p->n == 1 || ntasks == 1) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
        return;
    }
    int was_busy = atomic_exchange_explicit(&p->busy, 1, memory_order_acquire);
    T2_ASSERT(!was_busy && "t2_pool_run is not re-entrant");

    // close, rewrite, reopen (see the protocol at the top)
    uint32_t gen = GEN(atomic_load_explicit(&p->state, memory_order_relaxed));
    atomic_store(&p->state, (uint64_t)(gen + 1) << 32);
    atomic_store_explicit(&p->fn, fn, memory_order_release);
    atomic_store_explicit(&p->ctx, ctx, memory_order_release);
    atomic_store_explicit(&p->ntasks, ntasks, memory_order_release);
    uint64_t s = (uint64_t)(gen + 2) << 32;
    atomic_store(&p->state, s);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }

    // work alongside, then wait for the tasks the workers claimed
    unsigned want = p->done_total + (unsigned)ntasks - run_tasks(p, s, fn, ctx, (uint32_t)ntasks, 0);
    for (unsigned spins = 0;; spins++) {
        unsigned sum = 0;
        for (int i = 0; i < p->n - 1; i++)
            sum += atomic_load_explicit(&p->workers[i].done, memory_order_acquire);
        if (sum == want) break;
        cpu_relax();
        if (spins > (1u << 14)) sched_yield();   // a worker was preempted mid-task
    }
    p->done_total = want;
    atomic_store_explicit(&p->busy, 0, memory_order_release);
}
