/* jit_check.c — a graph through the reference executor and through the
 * JIT, compared (jit_check.h). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ref/ref.h"
#include "tests/jit_check.h"

static CgSession *session;
static RtPool *pool;

CgSession *jc_session(void) { return session; }
RtPool *jc_pool(void) { return pool; }

void jc_setup(void) {
  RtErr e;
  session = cg_session_new(&e);
  ck_assert_msg(session != NULL, "%s", e.msg);
  pool = rt_pool_new(2, &e);
  ck_assert_msg(pool != NULL, "%s", e.msg);
}

void jc_teardown(void) {
  cg_session_free(session);
  rt_pool_free(pool);
}

/* ---- deterministic inputs ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_u64(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

double jc_uniform(double lo, double hi) { return lo + (hi - lo) * (double)(next_u64() >> 11) / 9007199254740992.0; }


RtTensor *jc_make(IrDType dt, const IrShape *s, JcDom d, int hi) {
  RtErr e;
  RtTensor *t = rt_tensor_new((RtDType)dt, s->rank, s->d, &e);
  ck_assert_msg(t != NULL, "%s", e.msg);
  int64_t n = rt_tensor_numel(t);
  for (int64_t i = 0; i < n; i++) {
    double v;
    switch (d) {
    case JC_POS: v = jc_uniform(0.05, 9); break;
    case JC_SMALL: v = (double)(int)jc_uniform(-3, 4) - 0.0; break;
    case JC_INDEX: v = (double)(int64_t)jc_uniform(0, hi); break;
    case JC_NONZERO: v = (double)(int)jc_uniform(1, 21) * (next_u64() & 1 ? 1 : -1); break;
    case JC_BOOL: v = (double)(next_u64() & 1); break;
    case JC_WIDE: v = dt == IR_I32 ? (double)(int32_t)(uint32_t)next_u64() : jc_uniform(-3e9, 3e9); break;
    default: v = jc_uniform(-2.5, 2.5); break;
    }
    if (dt == IR_I32) rt_i32(t)[i] = (int32_t)v;
    else rt_f32(t)[i] = (float)v;
  }
  if (d == JC_WIDE && dt == IR_F32 && n > 3) {
    rt_f32(t)[0] = NAN;
    rt_f32(t)[1] = 2147483520.0f;
    rt_f32(t)[2] = -2147483648.0f;
  }
  if (d == JC_WIDE && dt == IR_I32 && n > 2) {
    rt_i32(t)[0] = INT32_MIN;
    rt_i32(t)[1] = INT32_MAX;
  }
  return t;
}

RtTensor *jc_copy(const RtTensor *t) {
  RtErr e;
  RtTensor *c = rt_tensor_new(t->dtype, t->rank, t->dim, &e);
  memcpy(c->data, t->data, rt_tensor_bytes(t));
  return c;
}

/* ---- running both ways ---- */

/* got matches want: same dtype and size; i32 and 'exact' f32 bit for bit
 * (NaN matching NaN), other f32 to tol relative. */
double jc_expect_agree(const char *what, const RtTensor *got, const RtTensor *want, double tol, bool exact) {
  ck_assert_msg(got->dtype == want->dtype && rt_tensor_numel(got) == rt_tensor_numel(want), "%s: dtype or size differs",
                what);
  int64_t n = rt_tensor_numel(want);
  if (want->dtype == RT_I32) {
    for (int64_t i = 0; i < n; i++)
      ck_assert_msg(rt_i32(got)[i] == rt_i32(want)[i], "%s: element %lld is %d, expected %d", what, (long long)i,
                    rt_i32(got)[i], rt_i32(want)[i]);
    return 0;
  }
  const float *a = rt_f32(got), *b = rt_f32(want);
  for (int64_t i = 0; i < n; i++) {
    ck_assert_msg(isnan(a[i]) == isnan(b[i]), "%s: element %lld is %g, expected %g", what, (long long)i, a[i], b[i]);
    if (exact && !isnan(b[i]))
      ck_assert_msg(a[i] == b[i], "%s: element %lld is %.9g, expected exactly %.9g", what, (long long)i, a[i], b[i]);
  }
  if (!exact) {
    /* relative error over the non-NaN elements */
    double num = 0, den = 1e-30;
    for (int64_t i = 0; i < n; i++) {
      if (isnan(b[i])) continue;
      if (isinf(b[i])) {
        ck_assert_msg(a[i] == b[i], "%s: element %lld is %g, expected %g", what, (long long)i, a[i], b[i]);
        continue;
      }
      num = fmax(num, fabs((double)a[i] - (double)b[i]));
      den = fmax(den, fabs((double)b[i]));
    }
    ck_assert_msg(num / den <= tol, "%s: relative error %.3g > %.1g", what, num / den, tol);
    return num / den;
  }
  return 0;
}


/* Runs g on inputs in[] and parameters params[] (copied for each side: the
 * updates write them) with ref_run and with the JIT under fusion plan fp
 * (NULL: fuse_plan with fusion on), and compares outputs and updated state. */
void jc_check_plan(IrGraph *g, const FusePlan *fp, RtTensor **in, RtTensor **params, JcCheck *c) {
  RtErr e = {{0}};
  int np = g->nparam;
  RtTensor **pref = calloc((size_t)np + 1, sizeof *pref);
  RtTensor **rout = calloc((size_t)g->noutput + 1, sizeof *rout), **jout = calloc((size_t)g->noutput + 1, sizeof *jout);
  for (int i = 0; i < np; i++) pref[i] = jc_copy(params[i]);
  RefOptions ro = {c->seed, c->step};
  ck_assert_msg(ref_run(g, in, pref, rout, &ro, &e) == 0, "ref_run(%s): %s", g->name, e.msg);

  FusePlan *own = NULL;
  if (!fp) fp = own = fuse_plan(g, &(FuseOptions){.enabled = true});
  CgModule *m = cg_module_new(session, g, fp, &e);
  ck_assert_msg(m != NULL, "cg_module_new(%s): %s", g->name, e.msg);
  if (own) fuse_plan_free(own);
  ck_assert_msg(cg_module_jit(m, &e) == 0, "jit(%s): %s", g->name, e.msg);
  const RtPlan *plan = cg_module_plan(m);
  c->kernels = plan->nkernel;
  c->steps = plan->nstep;
  RtTensorList *state = rt_list_new();
  for (int i = 0; i < np; i++) rt_list_put(state, g->node[g->param[i]].name, jc_copy(params[i]));
  void *arena = rt_arena_new(plan->arena_bytes, &e);
  ck_assert_msg(arena != NULL, "%s", e.msg);
  RtRunCtx ctx = {c->seed, c->step};
  ck_assert_msg(rt_plan_run(plan, pool, arena, in, jout, state, &ctx, &e) == 0, "rt_plan_run(%s): %s", g->name, e.msg);
  for (int k = 0; k < g->noutput; k++) {
    char what[200];
    snprintf(what, sizeof what, "%s output %d (%s)", g->name, k, g->output_name[k]);
    c->max_err = fmax(c->max_err, jc_expect_agree(what, jout[k], rout[k], c->tol, c->exact));
  }
  for (int i = 0; i < np; i++) {
    char what[200];
    snprintf(what, sizeof what, "%s state %s", g->name, g->node[g->param[i]].name);
    c->max_err = fmax(c->max_err, jc_expect_agree(what, rt_list_get(state, g->node[g->param[i]].name), pref[i], c->tol, c->exact));
  }
  for (int k = 0; k < g->noutput; k++) {
    rt_tensor_free(rout[k]);
    rt_tensor_free(jout[k]);
  }
  for (int i = 0; i < np; i++) rt_tensor_free(pref[i]);
  free(pref);
  free(rout);
  free(jout);
  rt_list_free(state);
  rt_arena_free(arena);
  cg_module_free(m);
}

/* jc_check_plan with fusion off (one group per node) and on. */
void jc_check_both(IrGraph *g, RtTensor **in, RtTensor **params, JcCheck *c) {
  FusePlan *off = fuse_plan(g, &(FuseOptions){.enabled = false});
  jc_check_plan(g, off, in, params, c);
  fuse_plan_free(off);
  jc_check_plan(g, NULL, in, params, c);
}

void jc_check_random(IrGraph *g, const FusePlan *fp, int index_hi, JcCheck *c) {
  RtTensor **in = calloc((size_t)g->ninput + 1, sizeof *in), **params = calloc((size_t)g->nparam + 1, sizeof *params);
  for (int i = 0; i < g->ninput; i++) {
    const IrNode *nd = &g->node[g->input[i]];
    in[i] = jc_make(nd->dtype, &nd->shape, nd->dtype == IR_I32 ? JC_INDEX : JC_NORMAL, index_hi);
  }
  for (int i = 0; i < g->nparam; i++) {
    const IrNode *nd = &g->node[g->param[i]];
    params[i] = jc_make(nd->dtype, &nd->shape, nd->op == OP_STATE ? JC_POS : JC_NORMAL, index_hi);
  }
  jc_check_plan(g, fp, in, params, c);
  for (int i = 0; i < g->ninput; i++) rt_tensor_free(in[i]);
  for (int i = 0; i < g->nparam; i++) rt_tensor_free(params[i]);
  free(in);
  free(params);
}
