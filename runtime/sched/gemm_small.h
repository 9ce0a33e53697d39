/* gemm_small.h — a GEMM kernel for a few rows of C: the decode steps of a
 * KV-cached sampler multiply x [m, d] (m = the batch, e.g. 8) by weights
 * [out, d]^T, and one query row by a head's keys or values. OpenBLAS
 * packs all of B on every call, which for a few rows costs as much as the
 * arithmetic; this kernel reads each row (trans_b) or column band of B
 * from memory once, with the few rows of A staying in L1 or L2.
 *
 *   trans_b 1:  C[i, j] = alpha dot(A[i, :], B[j, :]) + beta C[i, j]
 *               tiles of 4 rows of A x 3 rows of B (1 x 8 when m = 1),
 *               8 lanes of k at a time, the next tile of B prefetched
 *   trans_b 0:  C[i, :] = alpha sum_l A[i, l] B[l, :] + beta C[i, :]
 *               tiles of 3 rows of A x 32 columns of B, one l at a time
 *
 * AVX2 + FMA, chosen at run time (the runtime is built without -march):
 * rt_gemm_small_fits is false on a CPU without them and the scheduler uses
 * OpenBLAS. beta == 0 never reads C (it may hold NaN). Measured on the
 * decode step's shapes (one thread, Zen 3): 8x1024x256 trans_b 55 us
 * against OpenBLAS's 100, 64 items of 1x95x32 14 us against 62.
 *
 * Every element of C is computed by the same sequence of operations
 * whatever the tile it falls in or the columns [n0, n1) a call covers:
 * trans_b 1 sums 8 lanes over k in order (masked zeros past k), then the
 * lanes by one fixed tree; trans_b 0 adds the products in l order; then
 * alpha times the sum, plus beta C by one FMA. So a split of the columns
 * or of the batch among threads gives bit-identical results for every
 * thread count. The order differs from OpenBLAS's (and from the reference
 * executor's) by rounding only: within (k + 4) 2^-24 (|alpha| sum_l
 * |A[i,l] B[l,j]| + |beta C[i,j]|) of the exact result, as
 * tests/test_gemm_small.c checks.
 *
 * Module prefix: rt_. */
#ifndef DAL_RT_GEMM_SMALL_H
#define DAL_RT_GEMM_SMALL_H

#include <stdbool.h>

#include "runtime/sched/plan.h"

/* GEMMs with more rows than this go to OpenBLAS (measured with trans_b on
 * n x k = 1024x256, 256x1024, 768x256, 256x256, one thread: the kernel at
 * 1.7-2x OpenBLAS's speed at m = 8, 1.35-1.6x at 16, 1.2-1.3x at 24,
 * 1.1-1.25x at 32, 0.9-1.1x at 48; without trans_b it stops at m = 8,
 * see gemm_small.c). */
#define RT_GEMM_SMALL_MAX_M 32

/* A GEMM step with a layer-norm prologue (RtGemm.ln) normalises at most
 * this many elements of A (m x k), into a block on the stack that stays in
 * L1 (32 KiB) while the kernel reads it for every column band. */
#define RT_GEMM_LN_MAX_ELEMS 8192

/* Whether rt_gemm_small handles g: not trans_a, 1 <= m <= RT_GEMM_SMALL_MAX_M
 * (at most 8 and k * n <= 128K without trans_b), a CPU with AVX2 and FMA,
 * and the kernel enabled (it is unless DAL_GEMM_SMALL=0 is set in the
 * environment, read once, or rt_gemm_small_enable(false) was called). */
bool rt_gemm_small_fits(const RtGemm *g);

/* Process-wide on/off switch, overriding DAL_GEMM_SMALL (for tests and
 * before/after measurements). Returns the previous setting. */
bool rt_gemm_small_enable(bool on);

/* Splits of the columns among threads should fall on multiples of this
 * many, whole tiles of the kernel's (any split gives the same results). */
int rt_gemm_small_cols(const RtGemm *g);

/* Columns [n0, n1) of one batch item (0 <= n0 <= n1 <= g->n):
 * C[:, n0:n1] = alpha A op(B)[:, n0:n1] + beta C[:, n0:n1], with a, b, c
 * pointing at the item's blocks (not offset by n0) and g's m, k, lda, ldb,
 * ldc, alpha, beta, trans_b. Only for a g that rt_gemm_small_fits. */
void rt_gemm_small(const RtGemm *g, const float *a, const float *b, float *c, int n0, int n1);

#endif
