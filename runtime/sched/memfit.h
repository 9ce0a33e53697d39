/* memfit.h — will a program fit in memory? What it needs (its parameters,
 * the optimizer state a training step writes, a KV cache, the arena of
 * intermediates and gradients) against what the machine has (MemAvailable
 * of /proc/meminfo, a cgroup's memory limit, DAL_MEMORY_LIMIT), checked
 * before anything large is allocated: a model too big for the machine is
 * an error that says both figures, not the kernel's OOM killer.
 *
 * The programs check at two points: when the state is allocated (the
 * parameters, which initialising makes resident; other state is zeroed
 * lazily and takes no memory until written) and before an entry first
 * runs (parameters, the entry's arena, the optimizer state if it trains,
 * the transient state it names). --force (rt_mem_set_force) skips both.
 *
 * Module prefix: rt_mem_.
 */
#ifndef DAL_RT_MEMFIT_H
#define DAL_RT_MEMFIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/core/rt_error.h"
#include "runtime/sched/plan.h"
#include "runtime/sched/state.h"

/* Bytes a program needs, by kind. */
typedef struct {
  int64_t param; /* the parameters */
  int64_t optim; /* saved non-parameter state a training step writes (AdamW's moments) */
  int64_t cache; /* transient state the entry uses (a KV cache) */
  int64_t arena; /* the arena of intermediates (a training step's gradients among them) */
  bool train;    /* a training step: the arena holds gradients (messages say so) */
} RtMemNeed;

/* What this process can still have. Sizes in bytes; -1: unknown / none. */
typedef struct {
  int64_t avail;        /* MemAvailable */
  int64_t cgroup_limit; /* the tightest cgroup memory limit (memory.max, memory.limit_in_bytes) */
  int64_t cgroup_used;  /* that cgroup's usage */
  int64_t env_limit;    /* DAL_MEMORY_LIMIT */
  int64_t self;         /* this process's resident memory (VmRSS): counted as its own */
  int64_t have;         /* min(avail, cgroup_limit - cgroup_used) + self, capped by env_limit */
} RtMemHave;

/* Reads the machine's figures (a few small /proc and /sys files). */
void rt_mem_have(RtMemHave *h);
int64_t rt_mem_total(const RtMemNeed *n);
/* "45.94 GiB (parameters 45.80 GiB + arena 0.14 GiB)" */
const char *rt_mem_need_str(const RtMemNeed *n, char *buf, size_t size);
/* "23.05 GiB (MemAvailable 22.90 GiB + 0.15 GiB this process holds; no cgroup limit)" */
const char *rt_mem_have_str(const RtMemHave *h, char *buf, size_t size);
/* 0 if n fits in what there is (or --force was given, or nothing is
 * known), else -1 with "WHAT needs about ..., more than the ... available;
 * --force runs it anyway". */
int rt_mem_check(const RtMemNeed *n, const char *what, RtErr *e);

/* --force: the checks pass whatever the figures (process-wide). */
void rt_mem_set_force(bool on);
bool rt_mem_force(void);
/* Takes every "--force" out of argv[1 .. argc) (before a "--"), setting
 * force if there was one; returns the new argc (argv[argc] stays NULL). */
int rt_mem_take_force(int argc, char **argv);

/* The parameters of s[0..n): what initialising a program makes resident. */
void rt_mem_need_params(const RtStateSpec *s, int n, RtMemNeed *need);
/* Running plan pl (an entry that trains if 'train') in a program of state
 * s[0..n) with an arena of 'arena' bytes: the parameters, the saved
 * non-parameter state if it trains, the transient state pl names. */
void rt_mem_need_plan(const RtStateSpec *s, int n, const RtPlan *pl, bool train, int64_t arena, RtMemNeed *need);

#endif
