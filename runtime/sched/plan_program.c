/* plan_program.c — compiled plans from static tables as an RtProgram (see
 * plan_program.h). */
#include "runtime/sched/plan_program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sched/memfit.h"
#include "runtime/sched/rt_sched.h"
#include "runtime/core/threadpool.h"

typedef struct {
  RtProgram pub;              /* pub.ctx points back here */
  const RtPlanProgramDesc *d; /* borrowed */
  const RtPlan **plan;        /* (nentry) d->plan, and the plans made since */
  RtPool *pool;               /* made at the first run */
  void *arena;                /* the largest plan's arena, shared: entries run one at a time */
  int64_t arena_bytes;
  bool moments_resident;      /* rt_state_make_resident done since the last init */
  bool *fits;                 /* (nentry) the entry's memory checked (memfit.h) before its first run */
} PlanProgram;

static void pp_free(RtProgram *p) {
  if (!p) return;
  PlanProgram *pp = p->ctx;
  rt_pool_free(pp->pool);
  rt_arena_free(pp->arena);
  rt_list_free(p->state);
  free(pp->plan);
  free(pp->fits);
  free(pp);
}

static int pp_init(RtProgram *p, uint64_t seed, RtErr *e) {
  (void)e; /* filling existing tensors cannot fail */
  PlanProgram *pp = p->ctx;
  rt_state_init(p->state, pp->d->state, pp->d->nstate, seed);
  pp->moments_resident = false;
  return 0;
}

static int make_plan(PlanProgram *pp, int entry, RtErr *e);

static int pp_prepare(RtProgram *p, int entry, RtErr *e) {
  PlanProgram *pp = p->ctx;
  if (entry < 0 || entry >= p->nentry) return rt_err(e, "%s: there is no entry number %d", p->model, entry);
  return pp->plan[entry] ? 0 : make_plan(pp, entry, e);
}

/* Before entry 'entry''s first run: the parameters, the arena as it will
 * be allocated, and the state the run makes resident fit in memory. */
static int check_memory(PlanProgram *pp, int entry, RtErr *e) {
  const RtEntrySpec *en = &pp->d->entry[entry];
  RtMemNeed need;
  rt_mem_need_plan(pp->d->state, pp->d->nstate, pp->plan[entry], en->train, pp->arena_bytes, &need);
  char what[300];
  snprintf(what, sizeof what, "%s: entry '%s'", pp->d->model, en->name);
  if (rt_mem_check(&need, what, e)) return -1;
  pp->fits[entry] = true;
  return 0;
}

static int pp_run(RtProgram *p, int entry, RtTensor *const *inputs, RtTensor **outputs, uint64_t seed, uint64_t step,
                  RtErr *e) {
  PlanProgram *pp = p->ctx;
  if (entry < 0 || entry >= p->nentry) return rt_err(e, "%s: there is no entry number %d", p->model, entry);
  for (int k = 0; k < p->entry[entry].noutput; k++) outputs[k] = NULL;
  if (!pp->plan[entry] && make_plan(pp, entry, e)) return -1;
  if (!pp->fits[entry] && check_memory(pp, entry, e)) return -1;
  if (!pp->pool && !(pp->pool = rt_pool_new(pp->d->threads, e))) return -1;
  if (!pp->arena && !(pp->arena = rt_arena_new(pp->arena_bytes, e))) return -1;
  if (p->entry[entry].train && !pp->moments_resident) {
    rt_state_make_resident(p->state, pp->d->state, pp->d->nstate); /* before the step's threads write them */
    pp->moments_resident = true;
  }
  RtRunCtx ctx = {seed, step};
  return rt_plan_run(pp->plan[entry], pp->pool, pp->arena, inputs, outputs, p->state, &ctx, e);
}

static bool same_shape(int ra, const int64_t *a, int rb, const int64_t *b) {
  if (ra != rb) return false;
  for (int i = 0; i < ra; i++)
    if (a[i] != b[i]) return false;
  return true;
}

static int check_args(const RtPlan *pl, const RtEntrySpec *en, RtErr *e) {
  if (pl->ninput != en->ninput || pl->noutput != en->noutput)
    return rt_err(e, "entry '%s': its plan takes %d inputs and gives %d outputs, the entry %d and %d", en->name,
                  pl->ninput, pl->noutput, en->ninput, en->noutput);
  for (int i = 0; i < pl->nbuf; i++) {
    const RtBuffer *b = &pl->buf[i];
    if (b->kind != RT_BUF_INPUT && b->kind != RT_BUF_OUTPUT) continue;
    const RtArgSpec *a = b->kind == RT_BUF_INPUT ? &en->input[b->index] : &en->output[b->index];
    if (b->dtype != a->dtype || !same_shape(b->rank, b->dim, a->rank, a->dim)) {
      char want[160], got[160];
      return rt_err(e, "entry '%s': %s '%s' is %s%s in the plan but %s%s in the entry", en->name,
                    b->kind == RT_BUF_INPUT ? "input" : "output", a->name, rt_dtype_name(b->dtype),
                    rt_shape_str(b->rank, b->dim, got, sizeof got), rt_dtype_name(a->dtype),
                    rt_shape_str(a->rank, a->dim, want, sizeof want));
    }
  }
  return 0;
}

static int cmp_spec_name(const void *a, const void *b) {
  return strcmp((*(const RtStateSpec *const *)a)->name, (*(const RtStateSpec *const *)b)->name);
}

/* The state row called 'name' in 'sorted' (d's rows by name), or NULL. */
static const RtStateSpec *find_spec(const RtStateSpec *const *sorted, int n, const char *name) {
  const RtStateSpec key = {.name = name}, *k = &key;
  const RtStateSpec *const *hit = bsearch(&k, sorted, (size_t)n, sizeof *sorted, cmp_spec_name);
  return hit ? *hit : NULL;
}

/* Buffer b of plan pl is state row s: the same dtype and shape. */
static int check_state_use(const RtPlanProgramDesc *d, const RtPlan *pl, const RtBuffer *b, const RtStateSpec *s,
                           RtErr *e) {
  if (s->dtype == b->dtype && same_shape(s->rank, s->dim, b->rank, b->dim)) return 0;
  char want[160], got[160];
  return rt_err(e, "plan '%s': state tensor '%s' is %s%s there but %s%s in %s", pl->name, b->name,
                rt_dtype_name(b->dtype), rt_shape_str(b->rank, b->dim, got, sizeof got), rt_dtype_name(s->dtype),
                rt_shape_str(s->rank, s->dim, want, sizeof want), d->model);
}

static int check_state_uses(const RtPlanProgramDesc *d, const RtPlan *pl, RtErr *e) {
  /* by name, sorted: N state buffers of N rows are checked in O(N log N) */
  const RtStateSpec **sorted = malloc(((size_t)d->nstate + 1) * sizeof *sorted);
  if (!sorted) return rt_err(e, "plan '%s': out of memory", pl->name);
  for (int k = 0; k < d->nstate; k++) sorted[k] = &d->state[k];
  qsort(sorted, (size_t)d->nstate, sizeof *sorted, cmp_spec_name);
  int rc = 0;
  for (int i = 0; i < pl->nbuf && rc == 0; i++) {
    const RtBuffer *b = &pl->buf[i];
    if (b->kind != RT_BUF_STATE) continue;
    const RtStateSpec *s = find_spec(sorted, d->nstate, b->name);
    if (!s) rc = rt_err(e, "plan '%s': state tensor '%s' is not part of %s", pl->name, b->name, d->model);
    else rc = check_state_use(d, pl, b, s, e);
  }
  free(sorted);
  return rc;
}

static int check_plan(const RtPlanProgramDesc *d, const RtPlan *pl, int entry, RtErr *e) {
  return rt_plan_check(pl, e) || check_args(pl, &d->entry[entry], e) || check_state_uses(d, pl, e) ? -1 : 0;
}

/* Entry 'entry''s plan from the maker, checked; the arena grows to fit. */
static int make_plan(PlanProgram *pp, int entry, RtErr *e) {
  const RtPlan *pl = pp->d->make_plan(pp->d->make_ctx, entry, e);
  if (!pl || check_plan(pp->d, pl, entry, e)) return -1;
  pp->plan[entry] = pl;
  if (pl->arena_bytes > pp->arena_bytes) {
    rt_arena_free(pp->arena); /* nothing lives in it between runs */
    pp->arena = NULL;
    pp->arena_bytes = pl->arena_bytes;
    memset(pp->fits, 0, sizeof *pp->fits * (size_t)pp->d->nentry); /* checked again with the larger arena */
  }
  return 0;
}

RtProgram *rt_plan_program_new(const RtPlanProgramDesc *d, uint64_t seed, RtErr *e) {
  int nparam, nsaved;
  if (rt_state_check(d->state, d->nstate, d->model, &nparam, &nsaved, e)) return NULL;
  int64_t arena = 0;
  for (int i = 0; i < d->nentry; i++) {
    const RtPlan *pl = d->plan[i];
    if (!pl && d->make_plan) continue;
    if (!pl) {
      rt_err(e, "%s: entry '%s' has no plan", d->model, d->entry[i].name);
      return NULL;
    }
    if (check_plan(d, pl, i, e)) return NULL;
    if (pl->arena_bytes > arena) arena = pl->arena_bytes;
  }
  PlanProgram *pp = calloc(1, sizeof *pp);
  RtTensorList *state = rt_list_new();
  const RtPlan **plans = calloc((size_t)d->nentry + 1, sizeof *plans);
  bool *fits = calloc((size_t)d->nentry + 1, sizeof *fits);
  if (!pp || !state || !plans || !fits) {
    free(pp);
    free(plans);
    free(fits);
    rt_list_free(state);
    rt_err(e, "%s: out of memory", d->model);
    return NULL;
  }
  for (int i = 0; i < d->nentry; i++) plans[i] = d->plan[i];
  pp->plan = plans;
  pp->fits = fits;
  pp->d = d;
  pp->arena_bytes = arena;
  pp->pub = (RtProgram){.model = d->model, .config = d->config, .state = state, .nparam = nparam, .nsaved = nsaved,
                        .nentry = d->nentry, .entry = d->entry, .lr = d->lr, .source_hash = d->source_hash,
                        .init = pp_init, .run = pp_run,
                        .prepare = d->make_plan ? pp_prepare : NULL, .free = pp_free, .ctx = pp};
  if (rt_state_alloc(state, d->state, d->nstate, d->model, e)) {
    pp_free(&pp->pub);
    return NULL;
  }
  pp_init(&pp->pub, seed, e);
  return &pp->pub;
}
