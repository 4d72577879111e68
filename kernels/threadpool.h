/*
 * kernels/threadpool.h - a fixed set of worker threads, created once and reused for every
 * parallel step (a decode step runs hundreds of matmuls: creating threads per call would
 * cost more than the work).
 *
 * threadpool_run(pool, fn, ctx) calls fn(ctx, i, n) once on each of the n threads (the
 * calling thread is thread 0) and returns when all calls have returned. fn splits its own
 * work by i; as long as each output is computed by one thread in a fixed order, results
 * are identical for every thread count.
 *
 * Waiting workers spin briefly (a decode step's next matmul comes within microseconds),
 * then sleep on a condition variable so that an idle engine uses no CPU.
 */
#ifndef KERNELS_THREADPOOL_H
#define KERNELS_THREADPOOL_H

typedef struct ThreadPool ThreadPool;
typedef void (*ThreadTask)(void *ctx, int thread, int n_threads);

/* n_threads >= 1 (1: no worker threads, run executes fn on the caller). NULL on failure. */
ThreadPool *threadpool_new(int n_threads);
void threadpool_free(ThreadPool *pool);
int threadpool_size(const ThreadPool *pool);

/* Runs fn on every thread of the pool. Not reentrant: fn must not call threadpool_run. */
void threadpool_run(ThreadPool *pool, ThreadTask fn, void *ctx);

/* The number of online CPUs (at least 1), the default thread count. */
int threadpool_default_threads(void);

#endif
