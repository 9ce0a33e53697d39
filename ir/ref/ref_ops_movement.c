/* ref_ops_movement.c — executors for data movement: reshape, permute,
 * broadcast, slice, concat, gather and onehot. Index errors in the data
 * (gather, onehot) name the bad value and where it is. */
#include <string.h>

#include "ir/ref/ref_kernels.h"
#include "ir/ref/ref_step.h"

/* Element size of a tensor's dtype (f32 and i32 are both 4 bytes). */
static size_t esize(const RtTensor *t) { return rt_dtype_size(t->dtype); }

/* Row-major data does not move in a reshape. */
int ref_exec_RESHAPE(RefStep *s, RtErr *e) {
  (void)e;
  memcpy(s->out->data, s->in[0]->data, rt_tensor_bytes(s->out));
  return 0;
}

/* out.d[i] = x.d[attr.perm[i]]. */
int ref_exec_PERMUTE(RefStep *s, RtErr *e) {
  (void)e;
  const RtTensor *x = s->in[0];
  ref_permute(s->out->data, x->data, x->dim, s->node->attr.perm, x->rank, esize(x));
  return 0;
}

/* x -> attr.shape, same rank, size-1 dims stretched. */
int ref_exec_BROADCAST(RefStep *s, RtErr *e) {
  (void)e;
  const RtTensor *x = s->in[0];
  ref_broadcast(s->out->data, x->data, x->dim, s->out->dim, x->rank, esize(x));
  return 0;
}

/* out = x[start[i]:stop[i]] on every axis. */
int ref_exec_SLICE(RefStep *s, RtErr *e) {
  (void)e;
  const RtTensor *x = s->in[0];
  ref_slice(s->out->data, x->data, x->dim, s->node->attr.start, s->node->attr.stop, x->rank, esize(x));
  return 0;
}

/* a (outer, na, inner) ++ b (outer, nb, inner) along attr.axis. */
int ref_exec_CONCAT(RefStep *s, RtErr *e) {
  (void)e;
  int axis = s->node->attr.axis;
  int64_t outer, n, inner;
  ref_split_axis(&s->node->shape, axis, &outer, &n, &inner);
  const RtTensor *a = s->in[0], *b = s->in[1];
  ref_concat(s->out->data, a->data, b->data, outer, a->dim[axis], b->dim[axis], inner, esize(a));
  return 0;
}

/* table (V, row...) and idx (...) -> out (..., row...): a row per index. */
int ref_exec_GATHER(RefStep *s, RtErr *e) {
  const RtTensor *table = s->in[0], *idx = s->in[1];
  int64_t V = table->dim[0], row = rt_tensor_numel(table) / V, n = rt_tensor_numel(idx);
  int64_t bad = ref_gather(s->out->data, table->data, rt_i32(idx), n, V, row, esize(table));
  if (bad >= 0)
    return ref_step_err(s, e, "index %d at position %lld is out of range for a table of %lld rows",
                        (int)rt_i32(idx)[bad], (long long)bad, (long long)V);
  return 0;
}

/* idx (...) and grad (..., row...) -> table (V, row...) (the node's shape):
 * each grad row added into the table row its index names. */
int ref_exec_GATHER_BACKWARD(RefStep *s, RtErr *e) {
  const RtTensor *idx = s->in[0];
  int64_t V = s->out->dim[0], row = rt_tensor_numel(s->out) / V, n = rt_tensor_numel(idx);
  int64_t bad = ref_gather_backward(rt_f32(s->out), rt_i32(idx), rt_f32(s->in[1]), n, V, row);
  if (bad >= 0)
    return ref_step_err(s, e, "index %d at position %lld is out of range for a table of %lld rows",
                        (int)rt_i32(idx)[bad], (long long)bad, (long long)V);
  return 0;
}

/* idx (outer, inner) -> out (outer, attr.depth, inner), the new axis at attr.axis. */
int ref_exec_ONEHOT(RefStep *s, RtErr *e) {
  int64_t outer, depth, inner;
  ref_split_axis(&s->node->shape, s->node->attr.axis, &outer, &depth, &inner);
  const int32_t *idx = rt_i32(s->in[0]);
  int64_t bad = ref_onehot(rt_f32(s->out), idx, outer, depth, inner);
  if (bad >= 0)
    return ref_step_err(s, e, "index %d at position %lld is out of range for depth %lld", (int)idx[bad],
                        (long long)bad, (long long)depth);
  return 0;
}
