/* threadpool.c — the worker threads (see threadpool.h).
 *
 * A job is n calls fn(arg, i, n) (n = the thread count for rt_pool_run, any
 * n >= 1 for rt_pool_run_n). The caller publishes (fn, arg), resets the
 * completion counter 'ndone', sets the claim word to (n, 0), and bumps
 * 'gen'; then every thread, the caller included, claims call numbers from
 * the claim word until they run out, and the caller waits for 'ndone' to
 * reach n. Claiming instead of fixed thread-to-call assignment keeps the
 * caller from waiting on a worker the OS has not scheduled (the machine may
 * be busy with other processes): it runs that call itself. Results do not
 * change, because call i's work depends only on (i, n).
 *
 * The claim word holds the job's call count in its high half and the next
 * call number in its low half, so one fetch-and-add both claims a number
 * and says whether it belongs to the job: a thread still looping over an
 * earlier job (with another count) gets a number at or past that job's
 * count and stops, never a call of the new job it has not been told about.
 *
 * Waiting (for a job, for completion) spins, then spins yielding the CPU,
 * then sleeps on a condition variable. The sleeping side announces itself
 * (nsleep, caller_waiting) with a sequentially consistent write under the
 * mutex and re-checks its condition; the waking side makes its change with
 * a sequentially consistent write and then looks at the announcement, so at
 * least one of the two sees the other (no lost wake-up), and the mutex
 * orders the signal after the wait.
 *
 * A worker that wakes late may claim calls of a later job than the one that
 * woke it: that is fine, it reads fn and arg after its claim, and the
 * caller publishes them before setting the claim word.
 */
#include "runtime/core/threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A waiting thread spins for PAUSE_NS, then yields the CPU between checks
 * (letting a thread it waits for run if they share a core) until SPIN_NS,
 * then sleeps. Steps of a plan follow each other within microseconds; a
 * sleeping worker takes tens of microseconds to wake. */
#define PAUSE_NS 20000
#define SPIN_NS 100000

struct RtPool {
  int nth;
  pthread_t *thread; /* [nth - 1] */
  pthread_mutex_t mu;
  pthread_cond_t wake; /* workers wait here for a new 'gen' */
  pthread_cond_t done; /* the caller waits here for ndone == nth */
  atomic_uint gen;
  atomic_uint_least64_t claim; /* (calls << 32) | next call number */
  atomic_int ndone;            /* calls finished */
  int ncall;                   /* the current job's call count (the caller's copy) */
  atomic_int nsleep;
  atomic_int caller_waiting;
  atomic_int park;
  atomic_int quit;
  RtPoolFn fn; /* the current job, written before the claim word is set */
  void *arg;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Spins until cond(p) holds, 'park' is set (if watch_park) or SPIN_NS have
 * passed; returns whether cond(p) held. The clock is read every 64 turns. */
static int spin_until(RtPool *p, int (*cond)(RtPool *, unsigned), unsigned arg, int watch_park) {
  int64_t start = 0, t = 0;
  for (unsigned i = 1;; i++) {
    if (cond(p, arg)) return 1;
    if (watch_park && atomic_load_explicit(&p->park, memory_order_relaxed)) return 0;
    if (t - start < PAUSE_NS) cpu_relax();
    else sched_yield();
    if ((i & 63) == 0) {
      t = now_ns();
      if (!start) start = t;
      else if (t - start > SPIN_NS) return 0;
    }
  }
}

static int gen_moved(RtPool *p, unsigned seen) { return atomic_load(&p->gen) != seen; }
static int all_done(RtPool *p, unsigned unused) {
  (void)unused;
  return atomic_load(&p->ndone) == p->ncall;
}

/* Waits for a generation other than 'seen' and returns it. */
static unsigned wait_for_job(RtPool *p, unsigned seen) {
  if (!spin_until(p, gen_moved, seen, 1)) {
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->nsleep, 1);
    while (atomic_load(&p->gen) == seen) pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub(&p->nsleep, 1);
    pthread_mutex_unlock(&p->mu);
  }
  return atomic_load(&p->gen);
}

/* Claims and runs calls of the current job until none are left; the thread
 * that finishes the last one wakes a sleeping caller. */
static void run_calls(RtPool *p) {
  for (;;) {
    uint64_t w = atomic_fetch_add(&p->claim, 1);
    int n = (int)(w >> 32), i = (int)(w & 0xffffffffu);
    if (i >= n) return;
    p->fn(p->arg, i, n);
    if (atomic_fetch_add(&p->ndone, 1) + 1 == n && atomic_load(&p->caller_waiting)) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->mu);
    }
  }
}

static void *worker_main(void *arg) {
  RtPool *p = arg;
  unsigned seen = 0;
  for (;;) {
    seen = wait_for_job(p, seen);
    if (atomic_load(&p->quit)) return NULL;
    run_calls(p);
  }
}

/* Publishes a new generation and wakes the sleepers. */
static void bump_gen(RtPool *p) {
  atomic_fetch_add(&p->gen, 1);
  if (atomic_load(&p->nsleep) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
  }
}

int rt_threads_default(RtErr *e) {
  const char *env = getenv("DAL_THREADS");
  if (env) {
    char *end;
    errno = 0;
    long n = strtol(env, &end, 10);
    if (errno || end == env || *end || n < 1 || n > RT_MAX_THREADS)
      return rt_err(e, "DAL_THREADS='%s': expected a thread count from 1 to %d", env, RT_MAX_THREADS);
    return (int)n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > RT_MAX_THREADS ? RT_MAX_THREADS : (int)n;
}

RtPool *rt_pool_new(int nthreads, RtErr *e) {
  if (nthreads == 0 && (nthreads = rt_threads_default(e)) < 0) return NULL;
  if (nthreads < 1 || nthreads > RT_MAX_THREADS) {
    rt_err(e, "thread pool: %d threads requested, expected 1 to %d", nthreads, RT_MAX_THREADS);
    return NULL;
  }
  RtPool *p = calloc(1, sizeof *p);
  p->nth = nthreads;
  p->thread = calloc((size_t)nthreads, sizeof *p->thread);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  for (int i = 0; i < nthreads - 1; i++) {
    int rc = pthread_create(&p->thread[i], NULL, worker_main, p);
    if (rc) {
      rt_err(e, "thread pool: cannot start thread %d of %d: %s", i + 1, nthreads, strerror(rc));
      p->nth = i + 1; /* the workers started so far, for rt_pool_free */
      rt_pool_free(p);
      return NULL;
    }
  }
  return p;
}

void rt_pool_free(RtPool *p) {
  if (!p) return;
  atomic_store(&p->quit, 1);
  bump_gen(p);
  for (int i = 0; i < p->nth - 1; i++) pthread_join(p->thread[i], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  free(p->thread);
  free(p);
}

int rt_pool_threads(const RtPool *p) { return p ? p->nth : 1; }

void rt_pool_run(RtPool *p, RtPoolFn fn, void *arg) { rt_pool_run_n(p, fn, arg, p ? p->nth : 1); }

void rt_pool_run_n(RtPool *p, RtPoolFn fn, void *arg, int n) {
  if (n < 1) return;
  if (!p || p->nth == 1 || n == 1) {
    for (int i = 0; i < n; i++) fn(arg, i, n);
    return;
  }
  /* Publish the job before the claim word that lets threads claim it. */
  p->fn = fn;
  p->arg = arg;
  p->ncall = n;
  atomic_store(&p->ndone, 0);
  atomic_store(&p->claim, (uint64_t)n << 32);
  atomic_store(&p->park, 0);
  bump_gen(p);
  run_calls(p);
  if (!spin_until(p, all_done, 0, 0)) {
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->caller_waiting, 1);
    while (atomic_load(&p->ndone) != n) pthread_cond_wait(&p->done, &p->mu);
    atomic_store(&p->caller_waiting, 0);
    pthread_mutex_unlock(&p->mu);
  }
}

void rt_pool_park(RtPool *p) {
  if (p) atomic_store(&p->park, 1);
}
