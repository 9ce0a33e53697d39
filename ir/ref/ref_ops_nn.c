/* ref_ops_nn.c — executors for the compute-heavy ops: matmul, conv2d,
 * conv_transpose2d, group_norm, layer_norm and cross_entropy. */
#include "ir/ref/ref_kernels.h"
#include "ir/ref/ref_step.h"

/* a [..., M, K] (trans_a: [..., K, M]) @ b [..., K, N] (trans_b: [..., N, K])
 * -> [..., M, N]; a rank-2 b is shared by every batch. */
int ref_exec_MATMUL(RefStep *s, RtErr *e) {
  (void)e;
  const RtTensor *a = s->in[0], *b = s->in[1];
  const IrAttr *at = &s->node->attr;
  int ra = a->rank, rb = b->rank;
  int64_t M = at->trans_a ? a->dim[ra - 1] : a->dim[ra - 2];
  int64_t K = at->trans_a ? a->dim[ra - 2] : a->dim[ra - 1];
  int64_t N = at->trans_b ? b->dim[rb - 2] : b->dim[rb - 1];
  int64_t batch = 1;
  for (int i = 0; i < ra - 2; i++) batch *= a->dim[i];
  ref_matmul(rt_f32(s->out), rt_f32(a), rt_f32(b), batch, M, K, N, at->trans_a, at->trans_b, rb == 2);
  return 0;
}

/* x [N, C, H, W], w [O, C, kh, kw] -> [N, O, OH, OW]. */
int ref_exec_CONV2D(RefStep *s, RtErr *e) {
  (void)e;
  const int64_t *x = s->in[0]->dim, *w = s->in[1]->dim;
  ref_conv2d(rt_f32(s->out), rt_f32(s->in[0]), rt_f32(s->in[1]), x[0], x[1], x[2], x[3], w[0], w[2], w[3],
             s->node->attr.stride, s->node->attr.pad);
  return 0;
}

/* x [N, C, H, W], w [C, O, kh, kw] -> [N, O, OH, OW]. */
int ref_exec_CONV_TRANSPOSE2D(RefStep *s, RtErr *e) {
  (void)e;
  const int64_t *x = s->in[0]->dim, *w = s->in[1]->dim;
  ref_conv_transpose2d(rt_f32(s->out), rt_f32(s->in[0]), rt_f32(s->in[1]), x[0], x[1], x[2], x[3], w[1], w[2],
                       w[3], s->node->attr.stride, s->node->attr.pad);
  return 0;
}

/* x [N, C, H, W], grad [N, O, OH, OW] -> dw [O, C, kh, kw] (the node's shape). */
int ref_exec_CONV2D_BACKWARD_WEIGHT(RefStep *s, RtErr *e) {
  (void)e;
  const int64_t *x = s->in[0]->dim, *w = s->node->shape.d;
  ref_conv2d_backward_weight(rt_f32(s->out), rt_f32(s->in[0]), rt_f32(s->in[1]), x[0], x[1], x[2], x[3], w[0], w[2],
                             w[3], s->node->attr.stride, s->node->attr.pad);
  return 0;
}

/* x [N, C, ...] viewed as (N, C, S), gamma [C], beta [C]. */
int ref_exec_GROUP_NORM(RefStep *s, RtErr *e) {
  (void)e;
  const RtTensor *x = s->in[0];
  int64_t N = x->dim[0], C = x->dim[1], S = rt_tensor_numel(x) / (N * C);
  ref_group_norm(rt_f32(s->out), rt_f32(x), rt_f32(s->in[1]), rt_f32(s->in[2]), N, C, S, s->node->attr.groups,
                 s->node->attr.eps);
  return 0;
}

/* x [..., C] viewed as (R, C), gamma [C], beta [C]. */
int ref_exec_LAYER_NORM(RefStep *s, RtErr *e) {
  (void)e;
  const RtTensor *x = s->in[0];
  int64_t C = x->dim[x->rank - 1], R = rt_tensor_numel(x) / C;
  ref_layer_norm(rt_f32(s->out), rt_f32(x), rt_f32(s->in[1]), rt_f32(s->in[2]), R, C, s->node->attr.eps);
  return 0;
}

/* logits [..., V] viewed as (R, V), target [...] as (R) -> out (R). */
int ref_exec_CROSS_ENTROPY(RefStep *s, RtErr *e) {
  const RtTensor *logits = s->in[0];
  const int32_t *target = rt_i32(s->in[1]);
  int64_t V = logits->dim[logits->rank - 1], R = rt_tensor_numel(s->in[1]);
  int64_t bad = ref_cross_entropy(rt_f32(s->out), rt_f32(logits), target, R, V);
  if (bad >= 0)
    return ref_step_err(s, e, "target %d at position %lld is out of range for %lld classes", (int)target[bad],
                        (long long)bad, (long long)V);
  return 0;
}
