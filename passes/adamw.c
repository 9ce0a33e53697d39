/* adamw.c — AdamW lowered to IR (see optimizer.h for the formulas).
 *
 * Everything is checked before the first node is built, so a refused call
 * leaves the graph as it was. The shared scalars (t, the bias corrections,
 * lr / (1 - beta1^t), 1 - lr wd, the clipping factor) are built once; each
 * parameter then gets its own chain of elementwise nodes ending in three
 * updates (param, m, v). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/optimizer.h"

/* Where the optimizer's shared nodes say they come from. */
static const SrcLoc adamw_loc = {"<adamw>", 0, 0};

/* ir_graph_fail with "adamw: " before the message (fmt is always a literal). */
#define fail(g, loc, ...) ir_graph_fail(g, loc, "adamw: " __VA_ARGS__)

/* "<prefix><name>" in a malloc'd string (NULL if out of memory). */
static char *prefixed(const char *prefix, const char *name) {
  size_t n = strlen(prefix) + strlen(name) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s%s", prefix, name);
  return s;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The names of g's params and states, sorted (for has_param_named: one
 * search per name, not a pass over the graph's leaves per parameter).
 * NULL if out of memory. */
static const char **sorted_leaf_names(const IrGraph *g) {
  const char **s = malloc(((size_t)g->nparam + 1) * sizeof *s);
  if (!s) return NULL;
  for (int i = 0; i < g->nparam; i++) s[i] = g->node[g->param[i]].name;
  qsort(s, (size_t)g->nparam, sizeof *s, name_cmp);
  return s;
}

static bool has_param_named(const IrGraph *g, const char **sorted, const char *name) {
  return bsearch(&name, sorted, (size_t)g->nparam, sizeof *sorted, name_cmp) != NULL;
}

static bool is_updated(const IrGraph *g, int id) {
  for (int i = 0; i < g->nupdate; i++)
    if (g->update_target[i] == id) return true;
  return false;
}

static bool default_decays(const IrNode *p, void *ctx) {
  (void)ctx;
  return p->shape.rank >= 2;
}

/* A probability-like hyper-parameter: 0 <= x < 1 (NaN fails). */
static bool in_unit(double x) { return x >= 0 && x < 1; }
static bool non_negative(double x) { return x >= 0 && isfinite(x); }

static int check_options(IrGraph *g, const AdamWOptions *o) {
  if (!o) return fail(g, adamw_loc, "no options given");
  if (!in_unit(o->beta1) || !in_unit(o->beta2))
    return fail(g, adamw_loc, "betas (%g, %g) must be in [0, 1)", o->beta1, o->beta2);
  if (!non_negative(o->eps)) return fail(g, adamw_loc, "eps %g must be finite and >= 0", o->eps);
  if (!non_negative(o->weight_decay))
    return fail(g, adamw_loc, "weight_decay %g must be finite and >= 0", o->weight_decay);
  if (!non_negative(o->clip_norm)) return fail(g, adamw_loc, "clip_norm %g must be finite and >= 0", o->clip_norm);
  return 0;
}

/* Parameter i: a PARAM, listed once, not yet updated, with a gradient of
 * its dtype and shape, and free names for its moments. */
static int check_param(IrGraph *g, const int *params, const int *grads, int i, const char **sorted, bool *listed) {
  int p = params[i], gr = grads[i];
  if (p < 0 || p >= g->n) return fail(g, adamw_loc, "param %d is %%%d, not a node of the graph", i, p);
  const IrNode *pn = &g->node[p];
  if (pn->op != OP_PARAM)
    return fail(g, pn->loc, "param %d is %%%d (%s), not a trainable param", i, p, ir_op_name(pn->op));
  if (listed[p]) return fail(g, pn->loc, "param \"%s\" is listed twice", pn->name);
  listed[p] = true;
  if (is_updated(g, p)) return fail(g, pn->loc, "param \"%s\" already has an update", pn->name);
  if (gr < 0 || gr >= g->n) return fail(g, pn->loc, "gradient of \"%s\" is %%%d, not a node of the graph", pn->name, gr);
  const IrNode *gn = &g->node[gr];
  if (gn->dtype != IR_F32 || !ir_shape_eq(&gn->shape, &pn->shape)) {
    char ps[160], gs[160];
    return fail(g, pn->loc, "gradient of \"%s\" is %s%s, the param is f32%s", pn->name, ir_dtype_name(gn->dtype),
                ir_shape_str(&gn->shape, gs, sizeof gs), ir_shape_str(&pn->shape, ps, sizeof ps));
  }
  const char *prefix[2] = {"opt.m.", "opt.v."};
  for (int k = 0; k < 2; k++) {
    char *name = prefixed(prefix[k], pn->name);
    if (!name) return fail(g, pn->loc, "out of memory");
    bool taken = has_param_named(g, sorted, name);
    free(name);
    if (taken) return fail(g, pn->loc, "\"%s%s\" is already a param or state of the graph", prefix[k], pn->name);
  }
  return 0;
}

static int check_all(IrGraph *g, const int *params, const int *grads, int n, const AdamWOptions *o) {
  if (check_options(g, o)) return -1;
  if (n < 1 || !params || !grads) return fail(g, adamw_loc, "no parameters to update (n = %d)", n);
  const char **sorted = sorted_leaf_names(g);
  bool *listed = calloc((size_t)g->n + 1, 1);
  int rc = sorted && listed ? 0 : fail(g, adamw_loc, "out of memory");
  for (int i = 0; i < n && rc == 0; i++) rc = check_param(g, params, grads, i, sorted, listed);
  free(listed);
  if (rc) {
    free(sorted);
    return -1;
  }
  static const char *const scalars[] = {"opt.step", "opt.bc1_sum", "opt.bc2_sum"};
  int taken = -1;
  for (size_t k = 0; k < sizeof scalars / sizeof scalars[0] && taken < 0; k++)
    if (has_param_named(g, sorted, scalars[k])) taken = (int)k;
  free(sorted);
  for (int i = 0; i < g->ninput; i++)
    if (strcmp(g->node[g->input[i]].name, "opt.lr") == 0) return fail(g, adamw_loc, "the graph already has an input \"opt.lr\"");
  if (taken >= 0) return fail(g, adamw_loc, "the graph already has a param or state \"%s\"", scalars[taken]);
  for (int i = 0; o->clip_norm > 0 && i < g->noutput; i++)
    if (strcmp(g->output_name[i], "opt.grad_norm") == 0)
      return fail(g, adamw_loc, "the graph already has an output \"opt.grad_norm\"");
  return 0;
}

/* Node building that stops at the first failure: every helper returns -1
 * once 'bad' is set, so a chain of calls needs one check at its end. */
typedef struct {
  IrGraph *g;
  SrcLoc loc;
  bool bad;
} Emit;

static int ok(Emit *e, int id) {
  if (id < 0) e->bad = true;
  return id;
}

static int bin(Emit *e, IrOp op, int a, int b) {
  return e->bad ? -1 : ok(e, ir_binary(e->g, op, a, b, e->loc));
}

static int un(Emit *e, IrOp op, int x) { return e->bad ? -1 : ok(e, ir_unary(e->g, op, x, e->loc)); }

static int scalar(Emit *e, double v) { return e->bad ? -1 : ok(e, ir_scalar(e->g, IR_F32, v, e->loc)); }

static int state(Emit *e, const char *prefix, const IrNode *p) {
  if (e->bad) return -1;
  char *name = prefixed(prefix, p->name);
  if (!name) {
    e->bad = true;
    snprintf(e->g->error, sizeof e->g->error, "adamw: out of memory");
    return -1;
  }
  /* check_all found every moment's name free: no search of the graph */
  int id = ok(e, ir_state_indexed(e->g, -1, name, p->shape, e->loc));
  free(name);
  return id;
}

static void update(Emit *e, int target, int value) {
  if (!e->bad) ok(e, ir_add_update(e->g, target, value, e->loc));
}

/* Shared scalar nodes of one step. */
typedef struct {
  int beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
  int step_size; /* lr / (1 - beta1^t) */
  int sqrt_bc2;  /* sqrt(1 - beta2^t) */
  int decay;     /* 1 - lr wd, or -1 when no param decays */
  int clip;      /* min(clip / (norm + 1e-6), 1), or -1 without clipping */
} Shared;

/* 1 - beta^t, without the cancellation of computing it so in f32 (where
 * 1 - 0.999f is off by 1.3e-5 relative): 1 - beta^t = (1 - beta) * S_t with
 * the geometric sum S_t = 1 + beta S_(t-1), S_0 = 0, kept as a STATE; 1 - beta
 * is rounded once from double. S_t has no cancellation, so the correction
 * stays within a few f32 ulps of PyTorch's double-precision one. */
static int bias_correction(Emit *e, const char *name, int beta, int one_minus_beta, int one) {
  int sum = e->bad ? -1 : ok(e, ir_state(e->g, name, ir_shape_make(0, NULL), e->loc));
  int next = bin(e, OP_ADD, one, bin(e, OP_MUL, beta, sum));
  update(e, sum, next);
  return bin(e, OP_MUL, one_minus_beta, next);
}

/* t = step + 1 (and its update), the bias corrections and the constants. */
static Shared build_shared(Emit *e, bool any_decay, double wd, const AdamWOptions *o) {
  Shared s;
  int lr = e->bad ? -1 : ok(e, ir_input(e->g, "opt.lr", IR_F32, ir_shape_make(0, NULL), e->loc));
  int step = e->bad ? -1 : ok(e, ir_state(e->g, "opt.step", ir_shape_make(0, NULL), e->loc));
  int one = scalar(e, 1.0);
  int t = bin(e, OP_ADD, step, one);
  update(e, step, t);
  s.beta1 = scalar(e, o->beta1);
  s.one_minus_beta1 = scalar(e, 1.0 - o->beta1);
  s.beta2 = scalar(e, o->beta2);
  s.one_minus_beta2 = scalar(e, 1.0 - o->beta2);
  s.eps = scalar(e, o->eps);
  int bc1 = bias_correction(e, "opt.bc1_sum", s.beta1, s.one_minus_beta1, one);
  int bc2 = bias_correction(e, "opt.bc2_sum", s.beta2, s.one_minus_beta2, one);
  s.step_size = bin(e, OP_DIV, lr, bc1);
  s.sqrt_bc2 = un(e, OP_SQRT, bc2);
  s.decay = any_decay ? bin(e, OP_SUB, one, bin(e, OP_MUL, lr, scalar(e, wd))) : -1;
  s.clip = -1;
  return s;
}

/* norm = sqrt(sum_i sum(g_i^2)), appended to the outputs as "opt.grad_norm";
 * returns the factor min(clip / (norm + 1e-6), 1) every gradient is scaled by
 * (the 1e-6 is clip_grad_norm_'s). */
static int build_clip(Emit *e, const int *grads, int n, double clip) {
  int total = -1;
  for (int i = 0; i < n && !e->bad; i++) {
    int gi = grads[i];
    int sq = bin(e, OP_MUL, gi, gi);
    uint32_t all = (1u << e->g->node[gi].shape.rank) - 1;
    int s = e->bad ? -1 : ok(e, ir_reduce(e->g, OP_SUM, sq, all, false, e->loc));
    total = total < 0 ? s : bin(e, OP_ADD, total, s);
  }
  int norm = un(e, OP_SQRT, total);
  int coef = bin(e, OP_DIV, scalar(e, clip), bin(e, OP_ADD, norm, scalar(e, 1e-6)));
  coef = bin(e, OP_MIN, coef, scalar(e, 1.0));
  if (e->bad) return -1;
  /* Append the norm to the outputs, keeping the others (and their names). */
  IrGraph *g = e->g;
  int no = g->noutput;
  int *ids = malloc((size_t)(no + 1) * sizeof *ids);
  const char **names = malloc((size_t)(no + 1) * sizeof *names);
  if (ids && names) {
    for (int i = 0; i < no; i++) {
      ids[i] = g->output[i];
      names[i] = g->output_name[i];
    }
    ids[no] = norm;
    names[no] = "opt.grad_norm";
    g->error[0] = 0;
    ir_set_outputs(g, ids, names, no + 1);
    if (g->error[0]) e->bad = true;
  } else {
    e->bad = true;
    snprintf(g->error, sizeof g->error, "adamw: out of memory");
  }
  free(ids);
  free(names);
  return coef;
}

/* The step for one parameter p with gradient gr. */
static void build_param(Emit *e, const Shared *s, int p, int gr, bool decays) {
  const IrNode *pn = &e->g->node[p];
  e->loc = pn->loc;
  int m = state(e, "opt.m.", pn);
  int v = state(e, "opt.v.", &e->g->node[p]); /* pn may have moved: the node array grows */
  if (s->clip >= 0) gr = bin(e, OP_MUL, gr, s->clip);
  int m1 = bin(e, OP_ADD, bin(e, OP_MUL, m, s->beta1), bin(e, OP_MUL, gr, s->one_minus_beta1));
  int v1 = bin(e, OP_ADD, bin(e, OP_MUL, v, s->beta2), bin(e, OP_MUL, bin(e, OP_MUL, gr, gr), s->one_minus_beta2));
  int pd = decays ? bin(e, OP_MUL, p, s->decay) : p;
  int denom = bin(e, OP_ADD, bin(e, OP_DIV, un(e, OP_SQRT, v1), s->sqrt_bc2), s->eps);
  int p1 = bin(e, OP_SUB, pd, bin(e, OP_MUL, s->step_size, bin(e, OP_DIV, m1, denom)));
  update(e, p, p1);
  update(e, m, m1);
  update(e, v, v1);
}

int opt_adamw(IrGraph *g, const int *params, const int *grads, int n, const AdamWOptions *o) {
  if (!g) return -1;
  if (check_all(g, params, grads, n, o)) return -1;
  bool (*decays)(const IrNode *, void *) = o->decays ? o->decays : default_decays;
  bool *dec = malloc((size_t)n * sizeof *dec);
  if (!dec) return fail(g, adamw_loc, "out of memory");
  bool any = false;
  for (int i = 0; i < n; i++) {
    dec[i] = o->weight_decay > 0 && decays(&g->node[params[i]], o->decays_ctx);
    any = any || dec[i];
  }
  Emit e = {.g = g, .loc = adamw_loc};
  Shared s = build_shared(&e, any, o->weight_decay, o);
  if (o->clip_norm > 0) s.clip = build_clip(&e, grads, n, o->clip_norm);
  for (int i = 0; i < n && !e.bad; i++) build_param(&e, &s, params[i], grads[i], dec[i]);
  free(dec);
  return e.bad ? -1 : 0;
}
