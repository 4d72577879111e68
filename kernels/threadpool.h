/*
 * kernels/threadpool.h - a fixed set of worker threads, created once and reused for every
 * parallel step (a decode step runs hundreds of matmuls: creating threads per call would
 * cost more than the work).
 *
 * The one way to use it is a parallel for: threadpool_parallel_for(pool, n, grain, body,
 * ctx) calls body(ctx, thread, i0, i1) on ranges [i0, i1) of at most `grain` items that
 * cover [0, n) exactly once. Every thread (the caller is thread 0) has a contiguous share
 * of [0, n), the same for every loop of the same n, and takes its ranges in order; then it
 * helps with the others' shares, so a thread slowed by a busy core simply takes fewer. As
 * long as body computes each item's output alone and in a fixed order, the results do
 * not depend on the thread count or on who took what.
 *
 * Waiting workers spin briefly (a decode step's next matmul comes within microseconds),
 * then sleep on a condition variable so that an idle engine uses no CPU.
 */
#ifndef KERNELS_THREADPOOL_H
#define KERNELS_THREADPOOL_H

typedef struct ThreadPool ThreadPool;

/* Items [i0, i1) of a parallel for, on thread `thread` (0 .. size - 1: it selects the
 * thread's scratch buffers, if any). */
typedef void (*RangeTask)(void *ctx, int thread, int i0, int i1);

/* n_threads >= 1 (1: no worker threads, run executes fn on the caller). NULL on failure. */
ThreadPool *threadpool_new(int n_threads);
void threadpool_free(ThreadPool *pool);
int threadpool_size(const ThreadPool *pool);

/* Runs body over [0, n) in ranges of at most grain items (grain >= 1), shared out among
 * the pool's threads; returns when all are done. pool may be NULL or have one thread, and
 * small loops (n <= grain) run on the caller alone, as one range [0, n): the caller
 * decides, by its grain, when work is worth waking threads for. Not reentrant: body must
 * not call it. */
void threadpool_parallel_for(ThreadPool *pool, int n, int grain, RangeTask body, void *ctx);

/* A grain that gives each of the pool's threads about `per_thread` ranges of [0, n)
 * (at least 1 item each): enough ranges to even out slow threads, few enough atomics. */
int threadpool_grain(const ThreadPool *pool, int n, int per_thread);

/* How many ranges of parallel fors the worker threads (not the caller) have run since
 * the pool was made: for tests and diagnostics, to see that work was really shared. */
long threadpool_worker_ranges(const ThreadPool *pool);

/* The CPUs this process may run on (its affinity mask, as taskset sets it; the online
 * CPUs where there is no such call), at least 1: the default thread count. */
int threadpool_default_threads(void);

#endif
