/* ref_kernels.h — the reference executor's kernels (internal to ir/ref).
 *
 * Plain loops over contiguous row-major buffers, written to be obviously
 * correct rather than fast: they are the oracle every optimised path is
 * tested against. Signatures follow llm.c: outputs first, sizes last, shapes
 * in comments. Reductions, matmul, convolutions and norms accumulate in
 * double. Kernels never fail; where an input value can be invalid (integer
 * division by zero, an index out of range) the kernel writes nothing past
 * its output and returns the flat position of the first bad element, or -1
 * when every element was fine, so the caller can name the op and the value.
 *
 * Module prefix: ref_.
 */
#ifndef DAL_REF_KERNELS_H
#define DAL_REF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* ---- ref_elementwise.c ---- */

/* out[i] = op(x[i]) for the f32 unary ops (op_eval_kind OP_EVAL_UNARY);
 * x and out are (n). */
void ref_unary_f32(float *out, const float *x, IrOp op, int64_t n);
/* out[i] = op(x[i]) for NEG and ABS on i32 (wrapping: -INT32_MIN stays INT32_MIN). */
void ref_unary_i32(int32_t *out, const int32_t *x, IrOp op, int64_t n);
/* out[i] = a[i] op b[i] for ADD SUB MUL DIV MAX MIN POW; all (n). */
void ref_binary_f32(float *out, const float *a, const float *b, IrOp op, int64_t n);
/* Same for ADD SUB MUL DIV MAX MIN on i32; ADD SUB MUL wrap, DIV is floor
 * division (Python's //). Returns the position of the first zero divisor
 * (nothing is written from there on), else -1. */
int64_t ref_binary_i32(int32_t *out, const int32_t *a, const int32_t *b, IrOp op, int64_t n);
/* out[i] = (a[i] op b[i]) ? 1 : 0 for LT LE GT GE EQ NE; a, b, out are (n). */
void ref_compare_f32(int32_t *out, const float *a, const float *b, IrOp op, int64_t n);
void ref_compare_i32(int32_t *out, const int32_t *a, const int32_t *b, IrOp op, int64_t n);
/* out[i] = cond[i] != 0 ? a[i] : b[i]; all (n). */
void ref_where_f32(float *out, const int32_t *cond, const float *a, const float *b, int64_t n);
void ref_where_i32(int32_t *out, const int32_t *cond, const int32_t *a, const int32_t *b, int64_t n);
/* f32 -> i32 truncating toward zero; NaN gives 0 and values beyond the i32
 * range saturate (C leaves both undefined). x, out are (n). */
void ref_cast_f32_i32(int32_t *out, const float *x, int64_t n);
void ref_cast_i32_f32(float *out, const int32_t *x, int64_t n);

/* ---- ref_reduce.c ----
 * x is (dim[0], ..., dim[rank-1]); out has the same dims with every axis i
 * whose bit is set in 'axes' reduced to 1 (keepdim only changes the shape). */
void ref_sum_f32(float *out, const float *x, const int64_t *dim, int rank, uint32_t axes);
void ref_sum_i32(int32_t *out, const int32_t *x, const int64_t *dim, int rank, uint32_t axes);
void ref_reduce_max_f32(float *out, const float *x, const int64_t *dim, int rank, uint32_t axes);
void ref_reduce_max_i32(int32_t *out, const int32_t *x, const int64_t *dim, int rank, uint32_t axes);
/* The reduced axis viewed as the middle of (outer, n, inner):
 * x is (outer, n, inner), out is (outer, inner); first maximum wins, a NaN
 * counts as the maximum (as numpy and PyTorch). n >= 1. */
void ref_argmax_f32(int32_t *out, const float *x, int64_t outer, int64_t n, int64_t inner);
void ref_argmax_i32(int32_t *out, const int32_t *x, int64_t outer, int64_t n, int64_t inner);
/* x, out are (outer, n, inner), normalised along n; numerically stable. */
void ref_softmax(float *out, const float *x, int64_t outer, int64_t n, int64_t inner);
void ref_log_softmax(float *out, const float *x, int64_t outer, int64_t n, int64_t inner);

/* ---- ref_movement.c ----
 * Movement kernels copy elements of 'es' bytes, so they serve every dtype. */

/* out (dim[perm[0]], ..., dim[perm[rank-1]]) = x (dim) with axes permuted. */
void ref_permute(void *out, const void *x, const int64_t *dim, const int *perm, int rank, size_t es);
/* out (odim) from x (xdim), same rank, every xdim[i] 1 or odim[i]. */
void ref_broadcast(void *out, const void *x, const int64_t *xdim, const int64_t *odim, int rank, size_t es);
/* out (stop[i]-start[i] per axis) = x (dim)[start:stop]. */
void ref_slice(void *out, const void *x, const int64_t *dim, const int64_t *start, const int64_t *stop,
               int rank, size_t es);
/* out (outer, na+nb, inner) = [a (outer, na, inner), b (outer, nb, inner)] along the middle axis. */
void ref_concat(void *out, const void *a, const void *b, int64_t outer, int64_t na, int64_t nb,
                int64_t inner, size_t es);
/* out (n, row) = table (V, row)[idx (n)]. Returns the position in idx of the
 * first index outside [0, V), else -1. */
int64_t ref_gather(void *out, const void *table, const int32_t *idx, int64_t n, int64_t V, int64_t row,
                   size_t es);
/* table (V, row) = the sum of grad (n, row)'s rows i with idx[i] == v in row
 * v, added in order of i (gather's table gradient). Returns the position in
 * idx of the first index outside [0, V) (nothing is written), else -1. */
int64_t ref_gather_backward(float *table, const int32_t *idx, const float *grad, int64_t n, int64_t V, int64_t row);
/* out (outer, depth, inner) = 1.0 where idx (outer, inner) equals the
 * position along depth, else 0. Returns the position in idx of the first
 * index outside [0, depth), else -1. */
int64_t ref_onehot(float *out, const int32_t *idx, int64_t outer, int64_t depth, int64_t inner);
/* out (outer, n, inner) = the position along n. */
void ref_iota(int32_t *out, int64_t outer, int64_t n, int64_t inner);
void ref_fill_f32(float *out, float value, int64_t n);
void ref_fill_i32(int32_t *out, int32_t value, int64_t n);

/* ---- ref_nn.c ---- */

/* out (B, M, N) = a (B, M, K) @ b (B, K, N), where a is stored (B, K, M) if
 * trans_a, b is stored (B, N, K) if trans_b, and b_shared means b has no
 * batch dimension (one (K, N) matrix for every batch). */
void ref_matmul(float *out, const float *a, const float *b, int64_t B, int64_t M, int64_t K, int64_t N,
                int trans_a, int trans_b, int b_shared);
/* out (N, O, OH, OW) = x (N, C, H, W) conv w (O, C, KH, KW), stride s and
 * zero padding p on both axes; OH = (H + 2p - KH)/s + 1, likewise OW. */
void ref_conv2d(float *out, const float *x, const float *w, int64_t N, int64_t C, int64_t H, int64_t W,
                int64_t O, int64_t KH, int64_t KW, int s, int p);
/* out (N, O, OH, OW) = x (N, C, H, W) transposed-conv w (C, O, KH, KW);
 * OH = (H - 1)s - 2p + KH, likewise OW. */
void ref_conv_transpose2d(float *out, const float *x, const float *w, int64_t N, int64_t C, int64_t H,
                          int64_t W, int64_t O, int64_t KH, int64_t KW, int s, int p);
/* dw (O, C, KH, KW) = the gradient of ref_conv2d's output with respect to
 * its weight, given x (N, C, H, W) and the output's gradient dy (N, O, OH,
 * OW); same stride s and padding p. */
void ref_conv2d_backward_weight(float *dw, const float *x, const float *dy, int64_t N, int64_t C, int64_t H,
                                int64_t W, int64_t O, int64_t KH, int64_t KW, int s, int p);
/* out, x are (N, C, S) (S = product of the spatial dims), gamma, beta (C);
 * statistics per (n, group of C/G channels), biased variance. */
void ref_group_norm(float *out, const float *x, const float *gamma, const float *beta, int64_t N, int64_t C,
                    int64_t S, int G, float eps);
/* out, x are (R, C), gamma, beta (C); normalised over C, biased variance. */
void ref_layer_norm(float *out, const float *x, const float *gamma, const float *beta, int64_t R, int64_t C,
                    float eps);
/* out (R) = logsumexp(logits[r]) - logits[r, target[r]]; logits (R, V),
 * target (R). Returns the first r whose target is outside [0, V), else -1. */
int64_t ref_cross_entropy(float *out, const float *logits, const int32_t *target, int64_t R, int64_t V);

/* ---- ref_attention.c ---- */

/* For each of B items: y [n, d + 1] from q [n, d], k, v [m, d], mask [n, m]
 * (shared): y[i, :d] = softmax_j(where(mask, scale q k^T, -inf))[i] v and
 * y[i, d] = the row's log-sum-exp (-inf, with NaN outputs, for a row that
 * sees no key). */
void ref_attention(float *y, const float *q, const float *k, const float *v, const int32_t *mask, int64_t B, int64_t n,
                   int64_t m, int64_t d, double scale);
/* grad [B, n + 2m, d] (dq, dk, dv stacked) of sum(y * dy), y as above, dy
 * [B, n, d + 1] (its last column is the log-sum-exp's gradient). Computed
 * from q, k, v alone; a row that sees no key contributes nothing. */
void ref_attention_backward(float *grad, const float *q, const float *k, const float *v, const int32_t *mask,
                            const float *dy, int64_t B, int64_t n, int64_t m, int64_t d, double scale);

#endif
