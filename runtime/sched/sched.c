/* sched.c — rt_plan_run (see rt_sched.h): binds the plan's buffers to
 * addresses, then runs its steps in order on the pool. */
#include "runtime/sched/rt_sched.h"

#include "runtime/core/numerics.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALIGN 64

/* Calls per thread of a kernel step: a thread the OS preempts leaves the
 * chunks it has not claimed to the others (rt_pool_run_n). Kernel
 * iterations are independent, so more calls cost only the claims. */
#define KERNEL_CALLS 4

/* A copy is split among the threads in pieces of at least this many bytes. */
#define COPY_PIECE (256 << 10)

int64_t rt_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void rt_chunk(int64_t range, int ith, int nth, int64_t *begin, int64_t *end) {
  int64_t q = range / nth, r = range % nth;
  *begin = ith * q + (ith < r ? ith : r);
  *end = *begin + q + (ith < r);
}

void *rt_arena_new(int64_t bytes, RtErr *e) {
  if (bytes < 0) {
    rt_err(e, "arena: negative size %lld", (long long)bytes);
    return NULL;
  }
  size_t n = (size_t)((bytes + ALIGN - 1) / ALIGN * ALIGN);
  void *p = aligned_alloc(ALIGN, n ? n : ALIGN);
  if (!p) rt_err(e, "arena: out of memory for %lld bytes", (long long)bytes);
  return p;
}

void rt_arena_free(void *arena) { free(arena); }

/* ---- binding ---- */

/* The state list's names, sorted, for binary search. */
typedef struct {
  const char *name;
  RtTensor *tensor;
} Named;

typedef struct {
  int n;
  Named *v;
} StateIndex;

static int by_name(const void *a, const void *b) { return strcmp(((const Named *)a)->name, ((const Named *)b)->name); }

static void index_state(StateIndex *ix, const RtTensorList *l) {
  ix->n = l ? l->n : 0;
  ix->v = malloc(((size_t)ix->n + 1) * sizeof *ix->v);
  for (int i = 0; i < ix->n; i++) ix->v[i] = (Named){l->name[i], l->tensor[i]};
  qsort(ix->v, (size_t)ix->n, sizeof *ix->v, by_name);
}

static RtTensor *find_state(const StateIndex *ix, const char *name) {
  Named key = {name, NULL}, *hit = bsearch(&key, ix->v, (size_t)ix->n, sizeof *ix->v, by_name);
  return hit ? hit->tensor : NULL;
}

static char *type_str(RtDType t, int rank, const int64_t *dim, char *buf, size_t size) {
  char shape[128];
  snprintf(buf, size, "%s%s", rt_dtype_name(t), rank ? rt_shape_str(rank, dim, shape, sizeof shape) : "");
  return buf;
}

/* 'what' (e.g. "input 0 'x'") must be a tensor of buffer b's dtype and shape. */
static int check_tensor(const RtPlan *p, const RtBuffer *b, const RtTensor *t, const char *what, RtErr *e) {
  if (!t || !t->data) return rt_err(e, "plan '%s': %s is missing", p->name ? p->name : "?", what);
  bool same = t->dtype == b->dtype && t->rank == b->rank;
  for (int d = 0; same && d < b->rank; d++) same = t->dim[d] == b->dim[d];
  if (!same) {
    char want[160], got[160];
    return rt_err(e, "plan '%s': %s is %s, expected %s", p->name ? p->name : "?", what,
                  type_str(t->dtype, t->rank, t->dim, got, sizeof got), type_str(b->dtype, b->rank, b->dim, want, sizeof want));
  }
  return 0;
}

/* Address of buffer i, allocating a missing output (marked in 'made'). */
static int bind(const RtPlan *p, int i, char *arena, RtTensor *const *inputs, RtTensor **outputs, char *made,
                const StateIndex *state, void **addr, RtErr *e) {
  const RtBuffer *b = &p->buf[i];
  char what[300];
  const char *nm = b->name ? b->name : "";
  switch (b->kind) {
  case RT_BUF_ARENA:
    addr[i] = arena + b->offset;
    return 0;
  case RT_BUF_CONST:
    addr[i] = (void *)b->data;
    return 0;
  case RT_BUF_INPUT:
    snprintf(what, sizeof what, "input %d '%s'", b->index, nm);
    if (check_tensor(p, b, inputs ? inputs[b->index] : NULL, what, e)) return -1;
    addr[i] = inputs[b->index]->data;
    return 0;
  case RT_BUF_OUTPUT:
    if (!outputs) return rt_err(e, "plan '%s': no output array for output %d '%s'", p->name ? p->name : "?", b->index, nm);
    if (!outputs[b->index]) {
      if (!(outputs[b->index] = rt_tensor_new(b->dtype, b->rank, b->dim, e))) return -1;
      made[b->index] = 1;
    }
    snprintf(what, sizeof what, "output %d '%s'", b->index, nm);
    if (check_tensor(p, b, outputs[b->index], what, e)) return -1;
    addr[i] = outputs[b->index]->data;
    return 0;
  case RT_BUF_STATE: {
    RtTensor *t = find_state(state, b->name);
    if (!t) return rt_err(e, "plan '%s': state tensor '%s' not found", p->name ? p->name : "?", b->name);
    snprintf(what, sizeof what, "state tensor '%s'", b->name);
    if (check_tensor(p, b, t, what, e)) return -1;
    addr[i] = t->data;
    return 0;
  }
  }
  return rt_err(e, "plan '%s': buffer %d has an unknown kind", p->name ? p->name : "?", i);
}

/* ---- steps ---- */

typedef struct {
  RtKernelFn fn;
  void *const *args;
  const RtRunCtx *ctx;
  int64_t range;
} KernelJob;

static void kernel_part(void *arg, int ith, int nth) {
  const KernelJob *j = arg;
  int64_t begin, end;
  rt_chunk(j->range, ith, nth, &begin, &end);
  if (begin < end) j->fn(j->args, j->ctx, begin, end);
}

int rt_sched_calls(RtPool *pool, int64_t units, int per_thread) {
  int nth = rt_pool_threads(pool);
  if (nth == 1 || units <= 1) return 1;
  int64_t n = (int64_t)nth * per_thread;
  return (int)(units < n ? units : n);
}

typedef struct {
  const char *src;
  char *dst;
  int64_t bytes;
} CopyJob;

static void copy_part(void *arg, int ith, int nth) {
  const CopyJob *j = arg;
  int64_t begin, end;
  rt_chunk(j->bytes, ith, nth, &begin, &end);
  memcpy(j->dst + begin, j->src + begin, (size_t)(end - begin));
}

/* A copy step: memmove for overlapping buffers, else pieces on the pool. */
static void copy_step(const void *src, void *dst, int64_t bytes, RtPool *pool) {
  if (src == dst || bytes <= 0) return;
  const char *s = src;
  char *d = dst;
  int n = rt_sched_calls(pool, bytes / COPY_PIECE, 1);
  if (n == 1 || (s < d + bytes && d < s + bytes)) {
    memmove(dst, src, (size_t)bytes);
    return;
  }
  CopyJob j = {s, d, bytes};
  rt_pool_run_n(pool, copy_part, &j, n);
}

static void run_step(const RtPlan *p, const RtStep *st, void **args, RtPool *pool, const RtRunCtx *ctx) {
  switch (st->kind) {
  case RT_STEP_KERNEL: {
    KernelJob j = {p->kernel[st->kernel], args, ctx, st->range};
    int n = rt_sched_calls(pool, st->range, KERNEL_CALLS);
    if (n == 1) kernel_part(&j, 0, 1);
    else rt_pool_run_n(pool, kernel_part, &j, n);
    break;
  }
  case RT_STEP_GEMM:
    if (st->gemm.ln) rt_sched_gemm_ln(&st->gemm, args[0], args[3], args[4], args[1], args[2], pool);
    else rt_sched_gemm(&st->gemm, args[0], args[1], args[2], pool);
    break;
  case RT_STEP_COPY: copy_step(args[0], args[1], p->buf[st->arg[0]].bytes, pool); break;
  }
}

/* The plan's index checks (plan.h) on the bound inputs. */
static int check_indices(const RtPlan *p, RtTensor *const *inputs, RtErr *e) {
  for (int c = 0; c < p->ncheck; c++) {
    const RtIndexCheck *ck = &p->check[c];
    const RtTensor *t = inputs[ck->input];
    if (t->dtype != RT_I32) continue; /* bind has reported it already */
    const int32_t *v = rt_i32(t);
    int64_t n = rt_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
      if (v[i] >= 0 && v[i] < ck->limit) continue;
      const char *name = "?";
      for (int b = 0; b < p->nbuf; b++)
        if (p->buf[b].kind == RT_BUF_INPUT && p->buf[b].index == ck->input && p->buf[b].name) name = p->buf[b].name;
      char at[160];
      int64_t rest = i, pos[RT_MAX_RANK];
      for (int d = t->rank - 1; d >= 0; d--) {
        pos[d] = t->dim[d] ? rest % t->dim[d] : 0;
        rest = t->dim[d] ? rest / t->dim[d] : 0;
      }
      rt_shape_str(t->rank, pos, at, sizeof at);
      return rt_err(e, "input '%s': element %s is %d, outside [0, %lld) (the %s)", name, at, (int)v[i],
                    (long long)ck->limit, ck->what ? ck->what : "valid range");
    }
  }
  return 0;
}

int rt_plan_run(const RtPlan *p, RtPool *pool, void *arena, RtTensor *const *inputs, RtTensor **outputs,
                RtTensorList *state, const RtRunCtx *ctx, RtErr *e) {
  if (rt_plan_check(p, e)) return -1;
  if (p->arena_bytes > 0 && (!arena || (uintptr_t)arena % ALIGN))
    return rt_err(e, "plan '%s': the arena of %lld bytes is %s", p->name ? p->name : "?", (long long)p->arena_bytes,
                  arena ? "not 64-byte aligned" : "missing");
  int nargs = 0;
  for (int s = 0; s < p->nstep; s++) nargs += p->step[s].narg;
  void **addr = malloc(((size_t)p->nbuf + 1) * sizeof *addr);
  void **args = malloc(((size_t)nargs + 1) * sizeof *args);
  char *made = calloc((size_t)p->noutput + 1, 1);
  StateIndex ix;
  index_state(&ix, state);
  int rc = 0;
  for (int i = 0; i < p->nbuf && rc == 0; i++) rc = bind(p, i, arena, inputs, outputs, made, &ix, addr, e);
  if (rc == 0) rc = check_indices(p, inputs, e);
  if (rc == 0) {
    RtRunCtx zero = {0, 0};
    bool prof = rt_prof_enabled(), check = rt_numerics_check();
    int64_t t0 = prof ? rt_now_ns() : 0, t = t0;
    rt_sched_blas_threads(pool);
    if (check) rt_sched_numerics_begin(p, arena, addr);
    for (int s = 0, k = 0; s < p->nstep && rc == 0; k += p->step[s].narg, s++) {
      for (int a = 0; a < p->step[s].narg; a++) args[k + a] = addr[p->step[s].arg[a]];
      run_step(p, &p->step[s], args + k, pool, ctx ? ctx : &zero);
      if (check) rc = rt_sched_numerics_step(p, s, addr, e);
      if (prof) {
        int64_t u = rt_now_ns();
        rt_prof_step(p, s, (double)(u - t));
        t = u;
      }
    }
    if (prof) rt_prof_run((double)(rt_now_ns() - t0));
    rt_pool_park(pool); /* the caller has other work now; don't spin on its cores */
  }
  if (rc != 0) {
    for (int i = 0; i < p->noutput; i++)
      if (made[i]) {
        rt_tensor_free(outputs[i]);
        outputs[i] = NULL;
      }
  }
  free(ix.v);
  free(made);
  free(args);
  free(addr);
  return rc;
}
