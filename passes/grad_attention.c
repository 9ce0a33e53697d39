/* grad_attention.c — the backward rule of the fused attention op. */
#include "passes/grad_rules.h"

/* y = attention(q, k, v, mask) [..., n, d + 1] (output and log-sum-exp):
 * one attention_backward node recomputes the probabilities from q, k and
 * y's saved log-sum-exp and gives dq, dk and dv stacked along axis -2
 * ([..., n + 2m, d]); each input's gradient is its slice of that. The
 * mask (i32) gets none. */
int grad_attention(AdRule *r) {
  if (!ad_wants(r, 0) && !ad_wants(r, 1) && !ad_wants(r, 2)) return 0;
  IrAttr a = {.value = r->node.attr.value};
  int in[6] = {ad_in(r, 0), ad_in(r, 1), ad_in(r, 2), ad_in(r, 3), r->id, r->gy};
  int g = ad_build(r, OP_ATTENTION_BACKWARD, in, 6, &a);
  IrShape qs = ad_shape(r, ad_in(r, 0)), ks = ad_shape(r, ad_in(r, 1));
  int axis = qs.rank - 2;
  int64_t start[IR_MAX_RANK] = {0};
  for (int i = 0; i < 3; i++) {
    if (i > 0) start[axis] = qs.d[axis] + (i - 1) * ks.d[axis];
    if (ad_wants(r, i) && ad_give(r, i, ad_slice(r, g, start, i == 0 ? qs : ks))) return -1;
  }
  return g < 0 ? -1 : 0;
}
