/* ref_step.c — helpers shared by the reference executors: error messages
 * that point at a node's source, and axis arithmetic. */
#include <stdarg.h>
#include <stdio.h>

#include "ir/ref/ref_step.h"

int ref_step_err(const RefStep *s, RtErr *e, const char *fmt, ...) {
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  const SrcLoc *l = &s->node->loc;
  const char *op = ir_op_name(s->node->op);
  if (l->file && l->line > 0)
    return rt_err(e, "%s:%d:%d: error: %s (node %d): %s", l->file, l->line, l->col, op, s->id, what);
  return rt_err(e, "error: %s (node %d): %s", op, s->id, what);
}

void ref_split_axis(const IrShape *s, int axis, int64_t *outer, int64_t *n, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < axis; i++) *outer *= s->d[i];
  for (int i = axis + 1; i < s->rank; i++) *inner *= s->d[i];
  *n = s->d[axis];
}

IrShape ref_in_shape(const RefStep *s, int k) {
  const RtTensor *t = s->in[k];
  return ir_shape_make(t->rank, t->dim);
}
