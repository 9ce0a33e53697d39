/* grad_nn.c — backward rules of the compute-heavy ops: matmul, conv2d,
 * conv_transpose2d, group_norm, layer_norm, cross_entropy.
 *
 * Convolutions need one op of their own, conv2d_backward_weight; their
 * input gradients are the other convolution (plus slicing/padding at the
 * border). The norms and cross-entropy are compositions of existing ops,
 * recomputing the statistics (mean, variance, softmax) from x rather than
 * saving them from the forward: no op grows a second output, the forward
 * kernels stay as they are, and the fusion pass sees ordinary reductions
 * and elementwise ops it can fuse. The price is one extra pass over x per
 * norm, small next to the convolutions around it.
 */
#include <string.h>

#include "passes/grad_rules.h"

/* y = op(a) @ op(b), op(a) [..., M, K], op(b) [..., K, N] (op transposes
 * where trans_a / trans_b say):
 *   d op(a) = dy @ op(b)^T   [..., M, K]
 *   d op(b) = op(a)^T @ dy   [..., K, N], summed over the batch if b is a
 *                            shared rank-2 matrix
 * each built as one matmul whose flags absorb the transposes. */
int grad_matmul(AdRule *r) {
  int a = ad_in(r, 0), b = ad_in(r, 1), ta = r->node.attr.trans_a, tb = r->node.attr.trans_b;
  IrShape as = ad_shape(r, a), bs = ad_shape(r, b);
  bool shared = bs.rank == 2 && as.rank > 2;
  if (ad_wants(r, 0)) {
    int da;
    if (!ta) da = ad_matmul(r, r->gy, b, 0, !tb);               /* dy [M,N] @ op(b)^T */
    else if (!shared) da = ad_matmul(r, b, r->gy, tb, 1);       /* op(b) [K,N] @ dy^T = da [K,M] */
    else da = ad_swap_last(r, ad_matmul(r, r->gy, b, 0, !tb)); /* (dy @ op(b)^T)^T */
    if (ad_give(r, 0, da)) return -1;
  }
  if (!ad_wants(r, 1)) return 0;
  int db;
  if (shared && !ta) {
    /* One matmul over the batch: a [..., M, K] as [P, K], dy as [P, N]. */
    int64_t p = ir_numel(&as) / as.d[as.rank - 1], n = r->node.shape.d[r->node.shape.rank - 1];
    int a2 = ad_reshape(r, a, ir_shape_make(2, (int64_t[]){p, as.d[as.rank - 1]}));
    int dy2 = ad_reshape(r, r->gy, ir_shape_make(2, (int64_t[]){p, n}));
    db = tb ? ad_matmul(r, dy2, a2, 1, 0) : ad_matmul(r, a2, dy2, 1, 0);
  } else {
    db = tb ? ad_matmul(r, r->gy, a, 1, ta) : ad_matmul(r, a, r->gy, !ta, 0);
    if (shared) db = ad_sum(r, db, (1u << (as.rank - 2)) - 1, false);
  }
  return ad_give(r, 1, db);
}

/* Convolution attributes with stride s, pad p (and weight shape w when given). */
static IrAttr conv_attr(int s, int p, const IrShape *w) {
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.stride = s;
  a.pad = p;
  if (w) a.shape = *w;
  return a;
}

/* dx of y = conv2d(x, w): x [N, C, H, W], w [O, C, kh, kw], dy [N, O, OH, OW].
 * dx[i] = sum over o = (i + p - k)/s of dy[o] w[k]: the transposed
 * convolution of dy with the same w. conv_transpose2d(dy, w, s, p) gives
 * rows 0 .. (OH-1)s - 2p + kh - 1, which is all of x's rows unless the
 * forward dropped a remainder (H + 2p - kh not a multiple of s). Then the
 * transposed conv is taken unpadded (full size (OH-1)s + kh), cropped to
 * rows p .. p+H-1, and zero rows that no output read are appended. */
static int conv2d_dx(AdRule *r, int w, IrShape xs, int s, int p) {
  IrShape ws = ad_shape(r, w), ys = r->node.shape;
  int64_t th = (ys.d[2] - 1) * s - 2 * p + ws.d[2], tw = (ys.d[3] - 1) * s - 2 * p + ws.d[3];
  bool exact = th == xs.d[2] && tw == xs.d[3];
  IrAttr a = conv_attr(s, exact || p == 0 ? p : 0, NULL);
  int dx = ad_build(r, OP_CONV_TRANSPOSE2D, (int[]){r->gy, w}, 2, &a);
  if (exact || dx < 0) return dx;
  int64_t start[4] = {0, 0, 0, 0};
  if (p > 0) {
    IrShape ts = ad_shape(r, dx), crop = xs;
    for (int i = 2; i < 4; i++) {
      if (ts.d[i] <= p) return ad_zeros(r, xs); /* every output read padding only */
      crop.d[i] = ts.d[i] - p < xs.d[i] ? ts.d[i] - p : xs.d[i];
      start[i] = p;
    }
    dx = ad_slice(r, dx, start, crop);
    start[2] = start[3] = 0;
  }
  return ad_pad(r, dx, xs, start);
}

/* y = conv2d(x, w), x [N, C, H, W], w [O, C, kh, kw], stride s, pad p:
 *   dx[n,c,i,j]   = sum_{o,ky,kx} dy[n, o, (i+p-ky)/s, (j+p-kx)/s] w[o,c,ky,kx]
 *                   (where the division is exact): see conv2d_dx
 *   dw[o,c,ky,kx] = sum_{n,oy,ox} dy[n,o,oy,ox] x[n, c, oy*s-p+ky, ox*s-p+kx]
 *                   = conv2d_backward_weight(x, dy) */
int grad_conv2d(AdRule *r) {
  int x = ad_in(r, 0), w = ad_in(r, 1), s = r->node.attr.stride, p = r->node.attr.pad;
  if (ad_wants(r, 0) && ad_give(r, 0, conv2d_dx(r, w, ad_shape(r, x), s, p))) return -1;
  if (!ad_wants(r, 1)) return 0;
  IrShape ws = ad_shape(r, w);
  IrAttr a = conv_attr(s, p, &ws);
  return ad_give(r, 1, ad_build(r, OP_CONV2D_BACKWARD_WEIGHT, (int[]){x, r->gy}, 2, &a));
}

/* y = conv_transpose2d(x, w), x [N, C, H, W], w [C, O, kh, kw]: x[n,c,i,j]
 * is scattered to y[n, o, i*s-p+ky, j*s-p+kx] with weight w[c,o,ky,kx], so
 *   dx = conv2d(dy, w, s, p)        (w [C, O, kh, kw] read as conv2d's [out, in, ...];
 *                                    its output is exactly H x W)
 *   dw = conv2d_backward_weight(dy, x): conv2d's weight gradient with the
 *        roles swapped (dy as the input, x as the output gradient) */
int grad_conv_transpose2d(AdRule *r) {
  int x = ad_in(r, 0), w = ad_in(r, 1), s = r->node.attr.stride, p = r->node.attr.pad;
  if (ad_wants(r, 0)) {
    IrAttr a = conv_attr(s, p, NULL);
    if (ad_give(r, 0, ad_build(r, OP_CONV2D, (int[]){r->gy, w}, 2, &a))) return -1;
  }
  if (!ad_wants(r, 1)) return 0;
  IrShape ws = ad_shape(r, w);
  IrAttr a = conv_attr(s, p, &ws);
  return ad_give(r, 1, ad_build(r, OP_CONV2D_BACKWARD_WEIGHT, (int[]){r->gy, x}, 2, &a));
}

/* Normalisation shared by both norms: xhat = (x - mean) * rstd over 'axes'
 * of x, rstd = 1/sqrt(var + eps) with the biased variance (both recomputed);
 * *rstd gets rstd (reduced axes kept as 1). */
static int normalise(AdRule *r, int x, uint32_t axes, float eps, int *rstd) {
  int xc = ad_binary(r, OP_SUB, x, ad_mean(r, x, axes, true));
  int var = ad_mean(r, ad_binary(r, OP_MUL, xc, xc), axes, true);
  *rstd = ad_unary(r, OP_RSQRT, ad_binary_k(r, OP_ADD, var, (double)eps));
  return ad_binary(r, OP_MUL, xc, *rstd);
}

/* The input gradient of xhat = normalise(x) given dxhat, means over 'axes':
 *   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
static int normalise_dx(AdRule *r, int dxhat, int xhat, int rstd, uint32_t axes) {
  int m1 = ad_mean(r, dxhat, axes, true);
  int m2 = ad_mean(r, ad_binary(r, OP_MUL, dxhat, xhat), axes, true);
  int centred = ad_binary(r, OP_SUB, ad_binary(r, OP_SUB, dxhat, m1), ad_binary(r, OP_MUL, xhat, m2));
  return ad_binary(r, OP_MUL, centred, rstd);
}

/* y = xhat * gamma + beta, x [N, C, ...] viewed as [N, G, C/G, S] and
 * normalised over its last two axes (one group of one sample):
 *   dbeta = sum_{n,s} dy,  dgamma = sum_{n,s} dy * xhat  (back to [C])
 *   dx    = normalise_dx(dy * gamma) */
int grad_group_norm(AdRule *r) {
  int x = ad_in(r, 0), gamma = ad_in(r, 1);
  IrShape xs = ad_shape(r, x);
  int64_t n = xs.d[0], c = xs.d[1], groups = r->node.attr.groups, cg = c / groups, sp = ir_numel(&xs) / (n * c);
  IrShape v4 = ir_shape_make(4, (int64_t[]){n, groups, cg, sp}), cs = ir_shape_make(1, &c);
  const uint32_t stats = 0xCu, outside = 0x9u; /* axes {2, 3} and {0, 3} of the view */
  int dy = ad_reshape(r, r->gy, v4);
  if (ad_wants(r, 2) && ad_give(r, 2, ad_reshape(r, ad_sum(r, dy, outside, false), cs))) return -1;
  if (!ad_wants(r, 0) && !ad_wants(r, 1)) return 0;
  int rstd, xhat = normalise(r, ad_reshape(r, x, v4), stats, r->node.attr.eps, &rstd);
  if (ad_wants(r, 1) &&
      ad_give(r, 1, ad_reshape(r, ad_sum(r, ad_binary(r, OP_MUL, dy, xhat), outside, false), cs)))
    return -1;
  if (!ad_wants(r, 0)) return 0;
  int g3 = ad_reshape(r, gamma, ir_shape_make(3, (int64_t[]){groups, cg, 1}));
  int dx = normalise_dx(r, ad_binary(r, OP_MUL, dy, g3), xhat, rstd, stats);
  return ad_give(r, 0, ad_reshape(r, dx, xs));
}

/* y = xhat * gamma + beta, x [..., C] normalised over its last axis:
 *   dbeta = sum_{...} dy,  dgamma = sum_{...} dy * xhat,  dx = normalise_dx(dy * gamma) */
int grad_layer_norm(AdRule *r) {
  int x = ad_in(r, 0), gamma = ad_in(r, 1), last = r->node.shape.rank - 1;
  uint32_t stats = 1u << last, leading = stats - 1;
  if (ad_wants(r, 2) && ad_give(r, 2, ad_sum(r, r->gy, leading, false))) return -1;
  if (!ad_wants(r, 0) && !ad_wants(r, 1)) return 0;
  int rstd, xhat = normalise(r, x, stats, r->node.attr.eps, &rstd);
  if (ad_wants(r, 1) && ad_give(r, 1, ad_sum(r, ad_binary(r, OP_MUL, r->gy, xhat), leading, false))) return -1;
  if (!ad_wants(r, 0)) return 0;
  return ad_give(r, 0, normalise_dx(r, ad_binary(r, OP_MUL, r->gy, gamma), xhat, rstd, stats));
}

/* y[...] = logsumexp(logits[..., :]) - logits[..., target]:
 *   dlogits = (softmax(logits) - onehot(target)) * dy[..., None]; the i32
 * target gets none. */
int grad_cross_entropy(AdRule *r) {
  int logits = ad_in(r, 0);
  IrShape ls = ad_shape(r, logits);
  int last = ls.rank - 1;
  IrAttr sa, oa;
  memset(&sa, 0, sizeof sa);
  memset(&oa, 0, sizeof oa);
  sa.axis = last;
  oa.axis = last;
  oa.depth = ls.d[last];
  int p = ad_build(r, OP_SOFTMAX, &logits, 1, &sa);
  int hot = ad_build(r, OP_ONEHOT, (int[]){ad_in(r, 1)}, 1, &oa);
  IrShape keep = ls;
  keep.d[last] = 1;
  int dy = ad_reshape(r, r->gy, keep);
  return ad_give(r, 0, ad_binary(r, OP_MUL, ad_binary(r, OP_SUB, p, hot), dy));
}
