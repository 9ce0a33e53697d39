/* ref_step.h — how ref_run hands one node to its op's executor (internal to
 * ir/ref).
 *
 * Each op in ops.def has an executor ref_exec_<NAME> (declared below from
 * ops.def itself, so a new op without one fails to link). An executor
 * unpacks the node's attributes, checks what only the data can tell, and
 * calls a kernel of ref_kernels.h. The executors live in ref_ops_*.c,
 * grouped like the kernels.
 */
#ifndef DAL_REF_STEP_H
#define DAL_REF_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ref/ref.h"

typedef struct {
  const IrNode *node;
  int id;                         /* the node's id in its graph */
  const RtTensor *in[IR_MAX_IN];  /* the node's input values, (nin) */
  RtTensor *bound;                /* INPUT, PARAM: the caller's (already checked) tensor */
  const RefOptions *opt;          /* never NULL */
  /* The result. ref_run allocates it, zero-filled with the node's dtype and
   * shape, for every op but INPUT and PARAM, whose executors set it to
   * 'bound' and set 'borrowed' (ref_run never frees a borrowed tensor). */
  RtTensor *out;
  bool borrowed;
} RefStep;

/* Fills s->out; 0, or -1 with e->msg set (nothing to free: ref_run owns s->out). */
typedef int (*RefExecFn)(RefStep *s, RtErr *e);

#define OP(name, text, arity, pattern, flags, rule, backward) int ref_exec_##name(RefStep *s, RtErr *e);
#include "ir/ops.def"
#undef OP

/* ---- helpers for executors (ref_step.c) ---- */

/* Formats an error about s's node as "file:line:col: error: op (node N): ..."
 * (without a known location: "error: op (node N): ..."); returns -1. */
int ref_step_err(const RefStep *s, RtErr *e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Views s as (outer, d[axis], inner) around 'axis' (0 <= axis < rank: the
 * builder normalises axes and ir_verify checks them). */
void ref_split_axis(const IrShape *s, int axis, int64_t *outer, int64_t *n, int64_t *inner);
/* The node's input k's shape as an IrShape. */
IrShape ref_in_shape(const RefStep *s, int k);

#endif
