/* attention.h — fused masked scaled-dot-product attention (the kernels of
 * the ATTENTION and ATTENTION_BACKWARD ops, ir/ops.def), called by the
 * compiled kernels (codegen/llvm/emit_attention.c) over a range of batch
 * items, so the scheduler splits (batch, head) pairs among the threads.
 *
 * Shapes, for each batch item b (all contiguous, row-major):
 *   q [n, d], k [m, d], v [m, d], mask i32 [n, m] shared by every item
 *   (non-zero: query i sees key j), scores s = scale q k^T.
 *   y [n, d + 1]: y[i, :d] = softmax_j(where(mask, s, -inf))[i] v, and
 *   y[i, d] = log sum_j exp(s_ij) over the visible j (the log-sum-exp).
 *
 * No [n, m] score matrix is kept: queries go in blocks of a few rows, and
 * a block's scores are computed only over the keys some row of the block
 * sees (the span from the first to the last visible key of its rows, read
 * from the mask at run time), so for a causal mask the blocks above the
 * diagonal are never computed, and a decode step's single query reads only
 * the cache up to its position. The forward's softmax is online: it walks
 * the span in chunks of keys, each row keeping its running max, its sum of
 * exponentials and its unnormalised output, rescaled when a chunk raises
 * the max (FlashAttention's), so its scratch is a few rows of one chunk
 * whatever the sequence length. The backward (FlashAttention-2 style)
 * recomputes the probabilities from q, k and the saved log-sum-exp
 * (a block's score rows over its span, a few rows of at most m floats):
 *   D = rowsum(dy[:, :d] * y[:, :d]) - dy[:, d];  P = exp(s - lse) masked;
 *   dv += P^T dy;  dP = dy v^T;  dS = P (dP - D);  dq = scale dS k;
 *   dk += scale dS^T q.
 * Rows with no visible key give NaN outputs (0 / 0), like the unfused
 * softmax of an all -inf row.
 *
 * Module prefix: rt_attn_.
 */
#ifndef DAL_RT_ATTENTION_H
#define DAL_RT_ATTENTION_H

#include <stdint.h>

/* Items [begin, end) of y [B, n, d + 1] from q [B, n, d], k, v [B, m, d]. */
void rt_attn_forward(float *y, const float *q, const float *k, const float *v, const int32_t *mask, int64_t n,
                     int64_t m, int64_t d, float scale, int64_t begin, int64_t end);

/* Items [begin, end) of grad [B, n + 2m, d] (rows: dq [n], dk [m], dv [m])
 * from attention's inputs, its output y and y's gradient dy [B, n, d + 1]. */
void rt_attn_backward(float *grad, const float *q, const float *k, const float *v, const int32_t *mask,
                      const float *y, const float *dy, int64_t n, int64_t m, int64_t d, float scale, int64_t begin,
                      int64_t end);

#endif
