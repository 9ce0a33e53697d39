/* verify.c — ir_verify: re-checks every invariant of a graph, whoever made
 * or last rewrote it (the builder, a pass, a hand edit in a test). */
#include "ir/ir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Writes the reason into err; returns false. */
__attribute__((format(printf, 3, 4))) static bool bad(char *err, size_t size, const char *fmt, ...) {
  if (err && size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
  }
  return false;
}

/* The node's type as "f32[2, 3]". */
static char *type_str(IrDType t, const IrShape *s, char *buf, size_t size) {
  char sh[160];
  snprintf(buf, size, "%s%s", ir_dtype_name(t), ir_shape_str(s, sh, sizeof sh));
  return buf;
}

/* Node 'id': op, arity, inputs defined earlier, name where required, and the
 * recorded dtype/shape equal to what its shape rule gives. */
static bool verify_node(const IrGraph *g, int id, char *err, size_t size) {
  const IrNode *n = &g->node[id];
  if ((unsigned)n->op >= (unsigned)OP_COUNT) return bad(err, size, "%%%d: unknown op %d", id, (int)n->op);
  const char *op = ir_op_name(n->op);
  if (n->nin != ir_op_arity(n->op))
    return bad(err, size, "%%%d (%s): has %d inputs, the op takes %d", id, op, n->nin, ir_op_arity(n->op));
  IrDType dt[IR_MAX_IN];
  IrShape sh[IR_MAX_IN];
  for (int i = 0; i < n->nin; i++) {
    if (n->in[i] < 0 || n->in[i] >= id)
      return bad(err, size, "%%%d (%s): input %d is %%%d, which is not an earlier node", id, op, i, n->in[i]);
    dt[i] = g->node[n->in[i]].dtype;
    sh[i] = g->node[n->in[i]].shape;
  }
  bool named = n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_STATE;
  if (named && (!n->name || !n->name[0])) return bad(err, size, "%%%d (%s): has no name", id, op);
  if (!named && n->name)
    return bad(err, size, "%%%d (%s): has a name (\"%s\"); only input and param nodes do", id, op, n->name);
  char why[512];
  IrDType t;
  IrShape s;
  if (!ir_infer(n->op, dt, sh, n->nin, &n->attr, &t, &s, why, sizeof why))
    return bad(err, size, "%%%d: %s", id, why);
  if (t != n->dtype || !ir_shape_eq(&s, &n->shape)) {
    char want[200], got[200];
    return bad(err, size, "%%%d (%s): recorded as %s but its shape rule gives %s", id, op,
               type_str(n->dtype, &n->shape, got, sizeof got), type_str(t, &s, want, sizeof want));
  }
  return true;
}

static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Whether two of the nodes list[0..count) share a name (all named, all
 * valid ids): sorted, in O(count log count) rather than pair by pair. */
static bool names_repeat(const IrGraph *g, const int *list, int count) {
  const char **name = malloc(((size_t)count + 1) * sizeof *name);
  if (!name) return true; /* let the pairwise search decide */
  for (int i = 0; i < count; i++) name[i] = g->node[list[i]].name;
  qsort(name, (size_t)count, sizeof *name, by_name);
  bool repeat = false;
  for (int i = 1; i < count && !repeat; i++) repeat = strcmp(name[i - 1], name[i]) == 0;
  free(name);
  return repeat;
}

/* A list of node ids ('what': "input" or "param") names every node of op
 * 'op' exactly once, and nothing else; names are unique among them. */
static bool verify_list(const IrGraph *g, const int *list, int count, IrOp op, const char *what, char *seen,
                        char *err, size_t size) {
  if (count < 0 || (count > 0 && !list)) return bad(err, size, "%s list: invalid (%d entries)", what, count);
  memset(seen, 0, (size_t)g->n);
  /* entry by entry: the id, then its name against the earlier entries'
   * (the names are compared sorted, and pair by pair only to report one) */
  int ok = 0; /* entries [0, ok) pass the id checks */
  while (ok < count && list[ok] >= 0 && list[ok] < g->n && !seen[list[ok]] &&
         (g->node[list[ok]].op == op || (op == OP_PARAM && g->node[list[ok]].op == OP_STATE)))
    seen[list[ok++]] = 1;
  if (names_repeat(g, list, ok))
    for (int i = 0; i < ok; i++)
      for (int j = 0; j < i; j++)
        if (strcmp(g->node[list[j]].name, g->node[list[i]].name) == 0)
          return bad(err, size, "%s list: name \"%s\" is used by %%%d and %%%d", what, g->node[list[i]].name,
                     list[j], list[i]);
  if (ok < count) {
    int i = ok, id = list[i];
    if (id < 0 || id >= g->n) return bad(err, size, "%s list: entry %d is %%%d, not a node", what, i, id);
    if (g->node[id].op != op && !(op == OP_PARAM && g->node[id].op == OP_STATE))
      return bad(err, size, "%s list: entry %d is %%%d, a %s node", what, i, id, ir_op_name(g->node[id].op));
    return bad(err, size, "%s list: %%%d appears twice", what, id);
  }
  for (int id = 0; id < g->n; id++)
    if ((g->node[id].op == op || (op == OP_PARAM && g->node[id].op == OP_STATE)) && !seen[id])
      return bad(err, size, "%%%d (%s) is missing from the %s list", id, what, what);
  return true;
}

static bool verify_outputs(const IrGraph *g, char *err, size_t size) {
  if (g->noutput < 0 || (g->noutput > 0 && (!g->output || !g->output_name)))
    return bad(err, size, "outputs: invalid list (%d entries)", g->noutput);
  for (int i = 0; i < g->noutput; i++) {
    if (g->output[i] < 0 || g->output[i] >= g->n)
      return bad(err, size, "output %d is %%%d, not a node", i, g->output[i]);
    if (!g->output_name[i] || !g->output_name[i][0]) return bad(err, size, "output %d has no name", i);
    for (int j = 0; j < i; j++)
      if (strcmp(g->output_name[i], g->output_name[j]) == 0)
        return bad(err, size, "outputs %d and %d are both named \"%s\"", j, i, g->output_name[i]);
  }
  if (g->train) {
    if (g->noutput < 1) return bad(err, size, "training entry returns nothing; it must return a scalar f32 loss");
    const IrNode *loss = &g->node[g->output[0]];
    if (loss->dtype != IR_F32 || loss->shape.rank != 0) {
      char t[200];
      return bad(err, size, "training entry must return a scalar f32 loss first, got %s",
                 type_str(loss->dtype, &loss->shape, t, sizeof t));
    }
  }
  return true;
}

bool ir_verify(const IrGraph *g, char *err, size_t size) {
  if (err && size) err[0] = 0;
  if (!g) return bad(err, size, "no graph");
  if (!g->name || !g->name[0]) return bad(err, size, "graph has no entry name");
  if (g->n < 0 || g->n > g->cap || (g->n > 0 && !g->node))
    return bad(err, size, "node array is inconsistent (n=%d, cap=%d)", g->n, g->cap);
  for (int id = 0; id < g->n; id++)
    if (!verify_node(g, id, err, size)) return false;
  char *seen = malloc((size_t)g->n + 1);
  if (!seen) return bad(err, size, "out of memory");
  bool ok = verify_list(g, g->input, g->ninput, OP_INPUT, "input", seen, err, size) &&
            verify_list(g, g->param, g->nparam, OP_PARAM, "param", seen, err, size) && verify_outputs(g, err, size);
  /* writer[t]: the first update of node t, so a repeat is found in one pass */
  int *writer = ok ? malloc(((size_t)g->n + 1) * sizeof *writer) : NULL;
  if (ok && !writer) ok = bad(err, size, "out of memory");
  for (int i = 0; ok && i < g->n; i++) writer[i] = -1;
  for (int i = 0; ok && i < g->nupdate; i++) {
    int t = g->update_target[i], v = g->update_value[i];
    if (t < 0 || t >= g->n || v < 0 || v >= g->n) {
      ok = bad(err, size, "update %d: %%%d <- %%%d is outside the graph", i, t, v);
    } else if (g->node[t].op != OP_PARAM && g->node[t].op != OP_STATE) {
      ok = bad(err, size, "update %d: target %%%d is a %s node", i, t, ir_op_name(g->node[t].op));
    } else if (g->node[t].dtype != g->node[v].dtype || !ir_shape_eq(&g->node[t].shape, &g->node[v].shape)) {
      ok = bad(err, size, "update %d: value %%%d does not match \"%s\"", i, v, g->node[t].name);
    } else if (writer[t] >= 0) {
      ok = bad(err, size, "updates %d and %d both write \"%s\"", writer[t], i, g->node[t].name);
    } else {
      writer[t] = i;
    }
  }
  free(writer);
  free(seen);
  return ok;
}
