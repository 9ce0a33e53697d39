/* threadpool.h — persistent worker threads that run one parallel job at a
 * time, ggml-style: a job is a function called once for each ith in
 * 0..nth-1, and call ith derives its share of the work from (ith, nth)
 * alone, so results never depend on timing or on which thread ran which
 * call.
 *
 * The calling thread takes part; a pool of n threads has n - 1 workers,
 * created once. Calls are claimed, not assigned: a thread that finishes
 * one takes the next unclaimed one, so a worker the OS has not scheduled
 * (a busy machine) delays nobody. Between jobs a worker spins for a short
 * while (consecutive steps of a plan come microseconds apart), then sleeps
 * on a condition variable; rt_pool_park puts it to sleep at once, for when
 * another party (OpenBLAS's threads) is about to use the cores.
 *
 * One caller at a time: a pool is not reentrant and must not be driven from
 * two threads at once. Module prefix: rt_.
 */
#ifndef DAL_RT_THREADPOOL_H
#define DAL_RT_THREADPOOL_H

#include "runtime/core/rt_error.h"

#define RT_MAX_THREADS 256

typedef struct RtPool RtPool;

/* Part ith of a job split nth ways (0 <= ith < nth). */
typedef void (*RtPoolFn)(void *arg, int ith, int nth);

/* The thread count rt_pool_new(0, e) uses: $DAL_THREADS if it is set (an
 * integer from 1 to RT_MAX_THREADS), else the number of online cores.
 * -1 with a message if DAL_THREADS is set to anything else. */
int rt_threads_default(RtErr *e);

/* A pool of nthreads threads (the caller included); nthreads == 0 means
 * rt_threads_default(). NULL with a message if the count is out of range,
 * DAL_THREADS is malformed, or threads cannot be created. */
RtPool *rt_pool_new(int nthreads, RtErr *e);
/* Stops and joins the workers. p may be NULL. */
void rt_pool_free(RtPool *p);
/* Number of threads, the caller included; 1 for a NULL pool. */
int rt_pool_threads(const RtPool *p);

/* Calls fn(arg, ith, nth) once for every ith in 0..nth-1 (nth = the pool's
 * thread count), on the pool's threads (the caller included), and returns
 * when all calls have returned; their writes are then visible to the
 * caller. Two calls of one job may run at the same time, so they must not
 * write the same memory. A NULL pool runs fn(arg, 0, 1). */
void rt_pool_run(RtPool *p, RtPoolFn fn, void *arg);
/* The same with n calls fn(arg, i, n), i in 0..n-1, whatever the thread
 * count (n >= 1; nothing for n < 1): more calls than threads let a thread
 * that finds itself alone on the cores (the others preempted by other
 * processes) take over the work they have not claimed yet. */
void rt_pool_run_n(RtPool *p, RtPoolFn fn, void *arg, int n);

/* Sends spinning workers to sleep now rather than after their spin time;
 * the next rt_pool_run wakes them. */
void rt_pool_park(RtPool *p);

#endif
