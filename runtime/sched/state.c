/* state.c — a program's persistent tensors from their rows (see state.h). */
#include "runtime/sched/state.h"

#include "runtime/sched/memfit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that two of st[0..n) share (sorted: O(N log N), where
 * comparing each with those before it took O(N^2)), or NULL. *oom on
 * failure to allocate. */
static const char *repeated_name(const RtStateSpec *st, int n, bool *oom) {
  const char **name = malloc(((size_t)n + 1) * sizeof *name);
  *oom = !name;
  if (!name) return NULL;
  for (int i = 0; i < n; i++) name[i] = st[i].name;
  qsort(name, (size_t)n, sizeof *name, cmp_name);
  const char *twice = NULL;
  for (int i = 1; i < n && !twice; i++)
    if (strcmp(name[i - 1], name[i]) == 0) twice = name[i];
  free(name);
  return twice;
}

int rt_state_check(const RtStateSpec *st, int n, const char *model, int *nparam, int *nsaved, RtErr *e) {
  *nparam = 0;
  *nsaved = 0;
  for (int i = 0; i < n; i++) {
    const RtStateSpec *s = &st[i];
    if (!s->name || !*s->name) return rt_err(e, "%s: state tensor %d has no name", model, i);
    if (s->rank < 0 || s->rank > RT_MAX_RANK)
      return rt_err(e, "%s: state tensor '%s' has rank %d (at most %d)", model, s->name, s->rank, RT_MAX_RANK);
    if (s->param) {
      if (*nparam != i)
        return rt_err(e, "%s: parameter '%s' comes after non-trainable state '%s' (parameters go first)", model,
                      s->name, st[*nparam].name);
      if (s->dtype != RT_F32) return rt_err(e, "%s: parameter '%s' is not f32", model, s->name);
      if (s->init < RT_INIT_ZEROS || s->init > RT_INIT_UNIFORM)
        return rt_err(e, "%s: parameter '%s' has an unknown initialiser %d", model, s->name, (int)s->init);
      (*nparam)++;
    }
    if (s->transient && s->param) return rt_err(e, "%s: parameter '%s' is marked transient", model, s->name);
    if (!s->transient) {
      if (*nsaved != i)
        return rt_err(e, "%s: state '%s' comes after transient state '%s' (transient state goes last)", model,
                      s->name, st[*nsaved].name);
      (*nsaved)++;
    }
  }
  bool oom;
  const char *twice = repeated_name(st, n, &oom);
  if (oom) return rt_err(e, "%s: out of memory", model);
  if (twice) return rt_err(e, "%s: two state tensors are called '%s'", model, twice);
  return 0;
}

int rt_state_alloc(RtTensorList *state, const RtStateSpec *st, int n, const char *model, RtErr *e) {
  RtMemNeed need; /* the parameters: what rt_state_init makes resident */
  rt_mem_need_params(st, n, &need);
  if (rt_mem_check(&need, model, e)) return -1;
  bool fresh = state->n == 0;
  for (int i = 0; i < n; i++) {
    const RtStateSpec *s = &st[i];
    RtTensor *t = rt_tensor_new(s->dtype, s->rank, s->dim, e);
    if (!t) {
      char msg[sizeof e->msg];
      snprintf(msg, sizeof msg, "%s", e ? e->msg : "");
      return rt_err(e, "%s: state tensor '%s': %s", model, s->name, msg);
    }
    /* rt_state_check made the names unique; a fresh list needs no search */
    if (fresh) rt_list_append(state, s->name, t);
    else rt_list_put(state, s->name, t);
  }
  return 0;
}

/* Zeroes n bytes at p. On Linux the whole pages inside a large block are
 * handed back instead (MADV_DONTNEED on private anonymous memory: they read
 * as zeros and take no memory until written), so state that a run never
 * writes (a KV cache while training) stays out of the resident set, and
 * state that is written (AdamW's moments) becomes resident only then: at
 * the first training step, rt_state_make_resident. */
static void zero_lazily(void *p, size_t n) {
#ifdef MADV_DONTNEED
  long page = sysconf(_SC_PAGESIZE);
  if (page > 0 && n >= 64 * (size_t)page) {
    uintptr_t a = (uintptr_t)p, lo = (a + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page,
              hi = (a + n) / (uintptr_t)page * (uintptr_t)page;
    if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0) {
      memset(p, 0, lo - a);
      memset((void *)hi, 0, a + n - hi);
      return;
    }
  }
#endif
  memset(p, 0, n);
}

void rt_state_init(RtTensorList *state, const RtStateSpec *st, int n, uint64_t seed) {
  for (int i = 0; i < n && i < state->n; i++) {
    const RtStateSpec *s = &st[i];
    RtTensor *t = state->tensor[i];
    if (s->param) rt_init_fill(rt_f32(t), rt_tensor_numel(t), s->init, s->init_a, s->init_b, seed, s->name);
    else zero_lazily(t->data, rt_tensor_bytes(t));
  }
}

/* Faults in the pages of n bytes at p for writing, keeping their contents:
 * MADV_POPULATE_WRITE (Linux 5.14) where there is one, else a write of
 * each page's first byte back to itself. */
static void make_resident(void *p, size_t n) {
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0 || n == 0) return;
#ifdef MADV_POPULATE_WRITE
  uintptr_t a = (uintptr_t)p, lo = a / (uintptr_t)page * (uintptr_t)page;
  if (madvise((void *)lo, a + n - lo, MADV_POPULATE_WRITE) == 0) return;
#endif
  volatile unsigned char *c = p;
  for (size_t i = 0; i < n; i += (size_t)page) c[i] = c[i];
  c[n - 1] = c[n - 1];
}

void rt_state_make_resident(RtTensorList *state, const RtStateSpec *st, int n) {
  for (int i = 0; i < n && i < state->n; i++)
    if (!st[i].param && !st[i].transient) make_resident(state->tensor[i]->data, rt_tensor_bytes(state->tensor[i]));
}
