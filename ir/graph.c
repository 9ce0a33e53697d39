/* graph.c — graph lifetime, the general builder ir_build, outputs.
 *
 * A graph owns its node array, the id lists, every node name, the output
 * names and its own name. ir_build validates everything before it touches
 * the graph, so a failed call leaves the graph exactly as it was. */
#include "ir/graph_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A new, empty graph for entry 'name' (NULL: "main"); NULL if out of memory. */
IrGraph *ir_graph_new(const char *name) {
  IrGraph *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->name = strdup(name ? name : "main");
  if (!g->name) {
    free(g);
    return NULL;
  }
  return g;
}

static void free_outputs(IrGraph *g) {
  for (int i = 0; i < g->noutput; i++) free(g->output_name[i]);
  free(g->output);
  free(g->output_name);
  g->output = NULL;
  g->output_name = NULL;
  g->noutput = 0;
}

void ir_graph_free(IrGraph *g) {
  if (!g) return;
  for (int i = 0; i < g->n; i++) free(g->node[i].name);
  free(g->node);
  free(g->input);
  free(g->param);
  free(g->update_target);
  free(g->update_value);
  free_outputs(g);
  free(g->name);
  free(g);
}

bool ir_graph_reserve(IrGraph *g, int n) {
  if (n <= g->cap) return true;
  IrNode *p = realloc(g->node, (size_t)n * sizeof *p);
  if (!p) return false;
  g->node = p;
  g->cap = n;
  return true;
}

int ir_graph_fail(IrGraph *g, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g->error, sizeof g->error, fmt, ap);
  va_end(ap);
  g->error_loc = loc;
  return -1;
}

void ir_graph_truncate(IrGraph *g, int n) {
  if (n < 0 || n >= g->n) return;
  for (int i = n; i < g->n; i++) free(g->node[i].name);
  g->n = n;
  while (g->ninput > 0 && g->input[g->ninput - 1] >= n) g->ninput--;
  while (g->nparam > 0 && g->param[g->nparam - 1] >= n) g->nparam--;
}

/* Makes the graph's int list hold one more element; false if out of memory. */
static bool list_push(int **list, int *count, int value) {
  int *p = realloc(*list, (size_t)(*count + 1) * sizeof *p);
  if (!p) return false;
  p[(*count)++] = value;
  *list = p;
  return true;
}

/* Node id of the INPUT (list = g->input) or PARAM (g->param) called 'name', or -1. */
static int find_named(const IrGraph *g, const int *list, int count, const char *name) {
  for (int i = 0; i < count; i++)
    if (g->node[list[i]].name && strcmp(g->node[list[i]].name, name) == 0) return list[i];
  return -1;
}

/* Negative axes count from the end, as in numpy; they become 0..rank-1 here
 * (the rank being the one the axis indexes: ONEHOT's is the result's). An
 * axis still out of range is left for the shape rule to report as given. */
static void normalise_axes(IrOp op, IrAttr *a, const IrShape *in0) {
  int rank = 0; /* an op outside IrOp normalises nothing: no axis is >= 0 and < 0 */
  switch (op) {
  case OP_IOTA: rank = a->shape.rank; break;
  case OP_ONEHOT: rank = in0->rank + 1; break;
  case OP_ARGMAX:
  case OP_SOFTMAX:
  case OP_LOG_SOFTMAX:
  case OP_CONCAT: rank = in0->rank; break;
  case OP_PERMUTE:
    for (int i = 0; i < in0->rank && i < IR_MAX_RANK; i++)
      if (a->perm[i] < 0 && a->perm[i] >= -in0->rank) a->perm[i] += in0->rank;
    return;
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_GUMBEL: case OP_NEG: case OP_ABS:
  case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID: case OP_RELU:
  case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
  case OP_MAX: case OP_MIN: case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ:
  case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH: case OP_SUM: case OP_REDUCE_MAX: case OP_RESHAPE:
  case OP_BROADCAST: case OP_SLICE: case OP_GATHER: case OP_GATHER_BACKWARD: case OP_MATMUL: case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT: case OP_GROUP_NORM: case OP_LAYER_NORM:
  case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: return;
  }
  if (a->axis < 0 && a->axis >= -rank) a->axis += rank;
}

/* Checks the name rules: INPUT and PARAM need a unique non-empty name,
 * other ops take none. Returns -1 (with g->error set) or 0. */
static int check_name(IrGraph *g, IrOp op, const char *name, SrcLoc loc, bool unique) {
  const char *opname = ir_op_name(op);
  if (op != OP_INPUT && op != OP_PARAM && op != OP_STATE) {
    if (name) return ir_graph_fail(g, loc, "%s: only input and param nodes have names (got \"%s\")", opname, name);
    return 0;
  }
  if (!name || !*name)
    return ir_graph_fail(g, loc, "%s: needs a name (build it with ir_%s or ir_build_named)", opname, opname);
  if (unique) return 0; /* the caller vouches (ir_build_copied) */
  if (op == OP_INPUT && find_named(g, g->input, g->ninput, name) >= 0)
    return ir_graph_fail(g, loc, "input \"%s\": duplicate argument name", name);
  if ((op == OP_PARAM || op == OP_STATE) && find_named(g, g->param, g->nparam, name) >= 0)
    return ir_graph_fail(g, loc, "param \"%s\": already in the graph (ir_param returns the existing node)", name);
  return 0;
}

/* ir_build_named and ir_build_copied; 'unique': the name needs no search. */
static int build(IrGraph *g, IrOp op, const int *in, int nin, const IrAttr *attr, SrcLoc loc, const char *name,
                 bool unique) {
  if (!g) return -1;
  if ((unsigned)op >= (unsigned)OP_COUNT) return ir_graph_fail(g, loc, "unknown op %d", (int)op);
  const char *opname = ir_op_name(op);
  int arity = ir_op_arity(op);
  if (nin != arity)
    return ir_graph_fail(g, loc, "%s: expects %d input%s, got %d", opname, arity, arity == 1 ? "" : "s", nin);
  if (nin > 0 && !in) return ir_graph_fail(g, loc, "%s: input ids missing", opname);
  IrDType dt[IR_MAX_IN];
  IrShape sh[IR_MAX_IN];
  for (int i = 0; i < nin; i++) {
    if (!ir_graph_has(g, in[i]))
      return ir_graph_fail(g, loc, "%s: input %d is %%%d, which is not a node of this graph (it has %d)", opname, i,
                           in[i], g->n);
    dt[i] = g->node[in[i]].dtype;
    sh[i] = g->node[in[i]].shape;
  }
  if (check_name(g, op, name, loc, unique)) return -1;

  IrAttr a;
  if (attr) a = *attr;
  else memset(&a, 0, sizeof a);
  normalise_axes(op, &a, nin > 0 ? &sh[0] : NULL);
  IrNode node;
  memset(&node, 0, sizeof node);
  char err[sizeof g->error];
  if (!ir_infer(op, dt, sh, nin, &a, &node.dtype, &node.shape, err, sizeof err))
    return ir_graph_fail(g, loc, "%s", err);

  /* From here on only allocation can fail; undo whatever was done if so. */
  if (g->n == g->cap) {
    int cap = g->cap ? 2 * g->cap : 64;
    IrNode *p = realloc(g->node, (size_t)cap * sizeof *p);
    if (!p) return ir_graph_fail(g, loc, "%s: out of memory", opname);
    g->node = p;
    g->cap = cap;
  }
  if (name && !(node.name = strdup(name))) return ir_graph_fail(g, loc, "%s: out of memory", opname);
  int id = g->n;
  if ((op == OP_INPUT && !list_push(&g->input, &g->ninput, id)) ||
      ((op == OP_PARAM || op == OP_STATE) && !list_push(&g->param, &g->nparam, id))) {
    free(node.name);
    return ir_graph_fail(g, loc, "%s: out of memory", opname);
  }
  node.op = op;
  node.nin = nin;
  for (int i = 0; i < nin; i++) node.in[i] = in[i];
  node.attr = a;
  node.loc = loc;
  node.calls = g->calls;
  g->node[g->n++] = node;
  return id;
}

int ir_build_named(IrGraph *g, IrOp op, const int *in, int nin, const IrAttr *attr, SrcLoc loc,
                   const char *name) {
  return build(g, op, in, nin, attr, loc, name, false);
}

int ir_build_copied(IrGraph *g, IrOp op, const int *in, int nin, const IrAttr *attr, SrcLoc loc,
                    const char *name) {
  return build(g, op, in, nin, attr, loc, name, true);
}

int ir_build(IrGraph *g, IrOp op, const int *in, int nin, const IrAttr *attr, SrcLoc loc) {
  return ir_build_named(g, op, in, nin, attr, loc, NULL);
}

/* Replaces g's outputs with ids[0..n); names[i] (or, if names or names[i] is
 * NULL, "out" for a single output and "out<i>" otherwise) become the output
 * names. On a bad id or a repeated name, sets g->error and changes nothing. */
void ir_set_outputs(IrGraph *g, const int *ids, const char *const *names, int n) {
  if (!g) return;
  SrcLoc none = {0};
  if (n < 0 || (n > 0 && !ids)) {
    ir_graph_fail(g, none, "outputs: invalid list of %d ids", n);
    return;
  }
  for (int i = 0; i < n; i++)
    if (!ir_graph_has(g, ids[i])) {
      ir_graph_fail(g, none, "outputs: output %d is %%%d, which is not a node of this graph (it has %d)", i,
                    ids[i], g->n);
      return;
    }
  int *out = malloc((size_t)(n ? n : 1) * sizeof *out);
  char **nm = calloc((size_t)(n ? n : 1), sizeof *nm);
  bool ok = out && nm;
  for (int i = 0; ok && i < n; i++) {
    char dflt[24];
    snprintf(dflt, sizeof dflt, n == 1 ? "out" : "out%d", i);
    const char *s = names && names[i] ? names[i] : dflt;
    for (int j = 0; j < i; j++)
      if (strcmp(nm[j], s) == 0) {
        ir_graph_fail(g, none, "outputs: name \"%s\" is used twice", s);
        ok = false;
        break;
      }
    out[i] = ids[i];
    if (ok && !(nm[i] = strdup(s))) {
      ir_graph_fail(g, none, "outputs: out of memory");
      ok = false;
    }
  }
  if (!ok) {
    for (int i = 0; nm && i < n; i++) free(nm[i]);
    free(nm);
    free(out);
    if (!out || !nm) ir_graph_fail(g, none, "outputs: out of memory");
    return;
  }
  free_outputs(g);
  g->output = out;
  g->output_name = nm;
  g->noutput = n;
}

int64_t ir_param_count(const IrGraph *g) {
  int64_t total = 0;
  for (int i = 0; g && i < g->nparam; i++) total += ir_numel(&g->node[g->param[i]].shape);
  return total;
}

int ir_add_update(IrGraph *g, int target, int value, SrcLoc loc) {
  if (!g) return -1;
  if (!ir_graph_has(g, target) || !ir_graph_has(g, value))
    return ir_graph_fail(g, loc, "update: %%%d <- %%%d names a node outside the graph", target, value);
  const IrNode *t = &g->node[target], *v = &g->node[value];
  if (t->op != OP_PARAM && t->op != OP_STATE)
    return ir_graph_fail(g, loc, "update: target %%%d is a %s node, not a param or state", target, ir_op_name(t->op));
  if (t->dtype != v->dtype || !ir_shape_eq(&t->shape, &v->shape)) {
    char a[160], b[160];
    return ir_graph_fail(g, loc, "update of \"%s\": value %s does not match %s", t->name,
                         ir_shape_str(&v->shape, b, sizeof b), ir_shape_str(&t->shape, a, sizeof a));
  }
  for (int i = 0; i < g->nupdate; i++)
    if (g->update_target[i] == target) return ir_graph_fail(g, loc, "update: \"%s\" is updated twice", t->name);
  int *tt = realloc(g->update_target, (size_t)(g->nupdate + 1) * sizeof *tt);
  if (!tt) return ir_graph_fail(g, loc, "update: out of memory");
  g->update_target = tt;
  int *vv = realloc(g->update_value, (size_t)(g->nupdate + 1) * sizeof *vv);
  if (!vv) return ir_graph_fail(g, loc, "update: out of memory");
  g->update_value = vv;
  g->update_target[g->nupdate] = target;
  g->update_value[g->nupdate] = value;
  return g->nupdate++;
}
