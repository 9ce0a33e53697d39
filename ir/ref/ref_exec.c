/* ref_exec.c — the reference executor's driver: the dispatch table indexed
 * by IrOp, and ref_run, which binds the caller's tensors, runs the live
 * nodes in id order (a topological order) and frees every intermediate once
 * its last consumer has run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ref/ref_step.h"
#include "runtime/core/numerics.h"

/* One executor per op, generated from ops.def: an op added there without a
 * ref_exec_<NAME> fails to link. */
static const RefExecFn exec_table[] = {
#define OP(name, text, arity, pattern, flags, rule, backward) [OP_##name] = ref_exec_##name,
#include "ir/ops.def"
#undef OP
};

bool ref_has_kernel(IrOp op) { return (unsigned)op < (unsigned)OP_COUNT && exec_table[op] != NULL; }

/* Per-run state: one value per node id. */
typedef struct {
  const IrGraph *g;
  RtTensor **value;   /* (n): the node's result while some consumer still needs it */
  bool *borrowed;     /* (n): value is the caller's tensor (never freed) */
  RtTensor **bound;   /* (n): INPUT and PARAM nodes' caller tensors */
  int *uses;          /* (n): consumers not yet run, plus one per output slot */
  RefStats stats;     /* nodes run so far, peak bytes */
  int64_t held;       /* bytes of the tensors this run allocated that are alive now */
} Run;

/* Accounts for a tensor this run allocated (+) or freed (-). */
static void track(Run *r, const RtTensor *t, int sign) {
  r->held += sign * (int64_t)rt_tensor_bytes(t);
  if (r->held > r->stats.peak_bytes) r->stats.peak_bytes = r->held;
}

static void run_free(Run *r) {
  if (r->value)
    for (int i = 0; i < r->g->n; i++)
      if (!r->borrowed[i]) rt_tensor_free(r->value[i]);
  free(r->value);
  free(r->borrowed);
  free(r->bound);
  free(r->uses);
}

/* Checks the tensor bound to a leaf node: present, same dtype and shape.
 * 'kind' is "input" or "parameter". */
static int check_binding(const IrNode *n, const RtTensor *t, const char *kind, int index, RtErr *e) {
  char want[160], got[160];
  ir_shape_str(&n->shape, want, sizeof want);
  const char *name = n->name ? n->name : "?";
  if (!t) return rt_err(e, "%s %d '%s' (%s%s): no tensor given", kind, index, name, ir_dtype_name(n->dtype), want);
  if (t->rank < 0 || t->rank > RT_MAX_RANK)
    return rt_err(e, "%s '%s': expected %s%s, got a tensor of rank %d", kind, name, ir_dtype_name(n->dtype), want,
                  t->rank);
  rt_shape_str(t->rank, t->dim, got, sizeof got);
  IrShape ts = ir_shape_make(t->rank, t->dim);
  if ((int)t->dtype != (int)n->dtype || !ir_shape_eq(&ts, &n->shape))
    return rt_err(e, "%s '%s': expected %s%s, got %s%s", kind, name, ir_dtype_name(n->dtype), want,
                  rt_dtype_name(t->dtype), got);
  return 0;
}

/* Binds inputs and params to their node ids, checking each. */
static int bind_all(Run *r, RtTensor *const *inputs, RtTensor *const *params, RtErr *e) {
  const IrGraph *g = r->g;
  for (int i = 0; i < g->ninput; i++) {
    RtTensor *t = inputs ? inputs[i] : NULL;
    if (check_binding(&g->node[g->input[i]], t, "input", i, e)) return -1;
    r->bound[g->input[i]] = t;
  }
  for (int i = 0; i < g->nparam; i++) {
    RtTensor *t = params ? params[i] : NULL;
    if (check_binding(&g->node[g->param[i]], t, "parameter", i, e)) return -1;
    r->bound[g->param[i]] = t;
  }
  return 0;
}

/* Counts uses from the outputs back: a node is live if an output depends on
 * it, and its use count is its live consumers plus its output slots. Dead
 * nodes (uses 0) are never run. */
static void count_uses(Run *r) {
  const IrGraph *g = r->g;
  for (int i = 0; i < g->noutput; i++) r->uses[g->output[i]]++;
  for (int i = 0; i < g->nupdate; i++) r->uses[g->update_value[i]]++;
  for (int id = g->n - 1; id >= 0; id--) {
    if (r->uses[id] == 0) continue;
    const IrNode *n = &g->node[id];
    for (int k = 0; k < n->nin; k++) r->uses[n->in[k]]++;
  }
}

/* One use of node id is over; frees its value after the last. */
static void release(Run *r, int id) {
  if (--r->uses[id] > 0) return;
  if (!r->borrowed[id]) {
    track(r, r->value[id], -1);
    rt_tensor_free(r->value[id]);
  }
  r->value[id] = NULL;
}

static RtTensor *clone(const RtTensor *t, RtErr *e) {
  RtTensor *c = rt_tensor_new(t->dtype, t->rank, t->dim, e);
  if (c) memcpy(c->data, t->data, rt_tensor_bytes(t));
  return c;
}

/* --check-numerics (runtime/core/numerics.h): node id's f32 result must
 * be finite. A node after the loss of a differentiated graph (a training
 * step, an entry with "grad:" outputs) belongs to the gradient. */
static int check_node(const Run *r, int id, const RtTensor *t, RtErr *e) {
  int64_t first;
  if (t->dtype != RT_F32 || rt_all_finite(rt_f32(t), rt_tensor_numel(t), &first)) return 0;
  const IrGraph *g = r->g;
  const IrNode *n = &g->node[id];
  bool grads = g->train;
  for (int k = 1; k < g->noutput && !grads; k++) grads = !strncmp(g->output_name[k], "grad:", 5);
  char src[1100] = "", what[600];
  if (n->loc.file && n->loc.line > 0) snprintf(src, sizeof src, "%s:%d:%d", n->loc.file, n->loc.line, n->loc.col);
  else if (n->loc.file) snprintf(src, sizeof src, "%s", n->loc.file);
  int at = snprintf(what, sizeof what, "node %%%d", id);
  for (int k = 0, m = 0; k < n->nin && at < (int)sizeof what; k++) /* the parameters it reads place it in the model */
    if (g->node[n->in[k]].op == OP_PARAM && g->node[n->in[k]].name)
      at += snprintf(what + at, sizeof what - (size_t)at, "%s%s", m++ ? ", " : ", reading ", g->node[n->in[k]].name);
  char calls[1200] = "";
  size_t at2 = 0;
  const IrCallSite *c = n->calls;
  for (int k = 0; c && k < 8 && at2 < sizeof calls; c = c->up, k++)
    at2 += (size_t)snprintf(calls + at2, sizeof calls - at2, "%s%s:%d:%d", k ? ", " : "", c->at.file ? c->at.file : "?",
                            c->at.line, c->at.col);
  return rt_numerics_fail(e, src, calls, grads && n->loc.line > 0 && g->noutput > 0 && id > g->output[0], ir_op_name(n->op),
                          what, g->name, "its result", t->rank, t->dim, first, rt_f32(t)[first]);
}

/* Runs node id: allocates its result (unless it is a bound leaf), calls its
 * executor, then releases its inputs. */
static int run_node(Run *r, int id, const RefOptions *opt, RtErr *e) {
  const IrNode *n = &r->g->node[id];
  RefStep s = {.node = n, .id = id, .bound = r->bound[id], .opt = opt};
  for (int k = 0; k < n->nin; k++) s.in[k] = r->value[n->in[k]];
  if (n->op != OP_INPUT && n->op != OP_PARAM && n->op != OP_STATE) {
    s.out = rt_tensor_new((RtDType)n->dtype, n->shape.rank, n->shape.d, e);
    if (!s.out) return -1;
    track(r, s.out, +1);
  }
  if (exec_table[n->op](&s, e)) {
    if (!s.borrowed) rt_tensor_free(s.out);
    return -1;
  }
  if (!s.bound && rt_numerics_check() && check_node(r, id, s.out, e)) {
    if (!s.borrowed) rt_tensor_free(s.out);
    return -1;
  }
  r->value[id] = s.out;
  r->borrowed[id] = s.borrowed;
  r->stats.nodes_run++;
  for (int k = 0; k < n->nin; k++) release(r, n->in[k]);
  return 0;
}

/* Hands each output slot its tensor: the value itself at its last use if
 * ref_run owns it, else a copy (an output that is an input, a parameter, or
 * listed twice). */
static int collect_outputs(Run *r, RtTensor **outputs, RtErr *e) {
  const IrGraph *g = r->g;
  for (int i = 0; i < g->noutput; i++) {
    int id = g->output[i];
    if (r->uses[id] == 1 && !r->borrowed[id]) {
      outputs[i] = r->value[id];
      r->value[id] = NULL;
      r->uses[id] = 0;
      continue;
    }
    outputs[i] = clone(r->value[id], e);
    if (!outputs[i]) return -1;
    track(r, outputs[i], +1);
    release(r, id);
  }
  return 0;
}

/* Writes each update's value into the persistent tensor bound to its
 * target. Every update reads the values from before any update (ir.h): a
 * value that is itself a persistent tensor (a <- b, b <- a) is copied
 * first, so writing one target cannot change another update's source. */
static int apply_updates(Run *r, RtErr *e) {
  const IrGraph *g = r->g;
  for (int i = 0; i < g->nupdate; i++) {
    int v = g->update_value[i];
    if (!r->borrowed[v]) continue;
    RtTensor *copy = clone(r->value[v], e);
    if (!copy) return -1;
    track(r, copy, +1);
    r->value[v] = copy;
    r->borrowed[v] = false;
  }
  for (int i = 0; i < g->nupdate; i++) {
    int v = g->update_value[i];
    RtTensor *target = r->bound[g->update_target[i]];
    memmove(target->data, r->value[v]->data, rt_tensor_bytes(target));
  }
  for (int i = 0; i < g->nupdate; i++) release(r, g->update_value[i]);
  return 0;
}

int ref_run(const IrGraph *g, RtTensor *const *inputs, RtTensor *const *params, RtTensor **outputs,
            const RefOptions *opt, RtErr *e) {
  return ref_run_stats(g, inputs, params, outputs, opt, NULL, e);
}

int ref_run_stats(const IrGraph *g, RtTensor *const *inputs, RtTensor *const *params, RtTensor **outputs,
                  const RefOptions *opt, RefStats *stats, RtErr *e) {
  if (g && outputs)
    for (int i = 0; i < g->noutput; i++) outputs[i] = NULL;
  char why[512];
  if (!ir_verify(g, why, sizeof why))
    return rt_err(e, "ref_run: graph '%s' is invalid: %s", g && g->name ? g->name : "?", why);
  if (g->noutput > 0 && !outputs) return rt_err(e, "ref_run: graph '%s': no array for its outputs", g->name);
  static const RefOptions no_opt;
  if (!opt) opt = &no_opt;

  Run r = {.g = g};
  size_t n = (size_t)(g->n > 0 ? g->n : 1);
  r.value = calloc(n, sizeof *r.value);
  r.borrowed = calloc(n, sizeof *r.borrowed);
  r.bound = calloc(n, sizeof *r.bound);
  r.uses = calloc(n, sizeof *r.uses);
  int rc = -1;
  if (!r.value || !r.borrowed || !r.bound || !r.uses) {
    rt_err(e, "ref_run: graph '%s': out of memory", g->name);
    goto done;
  }
  if (bind_all(&r, inputs, params, e)) goto done;
  count_uses(&r);
  for (int id = 0; id < g->n; id++)
    if (r.uses[id] > 0 && run_node(&r, id, opt, e)) goto done;
  rc = collect_outputs(&r, outputs, e);
  if (rc == 0) rc = apply_updates(&r, e);
  if (stats) *stats = r.stats;
done:
  if (rc)
    for (int i = 0; i < g->noutput; i++) {
      rt_tensor_free(outputs[i]);
      outputs[i] = NULL;
    }
  run_free(&r);
  return rc;
}
