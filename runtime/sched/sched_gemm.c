/* sched_gemm.c — GEMM steps: OpenBLAS single-threaded with the pool
 * splitting the work (RT_GEMM_SPLIT), or OpenBLAS's own threads while the
 * pool sleeps (RT_GEMM_BLAS). See rt_sched.h for why. In the split mode a
 * GEMM with few rows (gemm_small.h) runs the small-M kernel instead of
 * OpenBLAS, split by batch items or columns. A step with a layer-norm
 * prologue (RtGemm.ln) normalises A's few rows once, on the caller, before
 * the split: every piece then reads the same block. */
#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "runtime/sched/gemm_small.h"
#include "runtime/sched/rt_sched.h"

/* Below this many multiply-adds a GEMM runs on the caller: waking the
 * workers costs more than it saves. */
#define SPLIT_MIN_MACS (1 << 16)

/* Calls per thread of a split GEMM (see rt_pool_run_n): fewer than a
 * kernel's, because each piece of a row (column) split packs all of B (A)
 * again. */
#define GEMM_CALLS 2
/* The small-M kernel packs nothing: its pieces cost no more than their
 * share, like a kernel step's. */
#define SMALL_CALLS 4

/* Row and column splits fall on multiples of this, so every thread but the
 * last gets whole register tiles of OpenBLAS's kernels. */
#define SPLIT_UNIT 16

static atomic_int gemm_mode = RT_GEMM_SPLIT;

void rt_sched_set_gemm_mode(RtGemmMode m) { atomic_store(&gemm_mode, (int)m); }
RtGemmMode rt_sched_gemm_mode(void) { return (RtGemmMode)atomic_load(&gemm_mode); }

void rt_sched_blas_threads(RtPool *pool) {
  int want = rt_sched_gemm_mode() == RT_GEMM_BLAS ? rt_pool_threads(pool) : 1;
  if (openblas_get_num_threads() != want) openblas_set_num_threads(want);
}

/* C block (m x n) = alpha op(A block) op(B block) + beta C block. */
static void sgemm(const RtGemm *g, const float *a, const float *b, float *c, int m, int n) {
  cblas_sgemm(CblasRowMajor, g->trans_a ? CblasTrans : CblasNoTrans, g->trans_b ? CblasTrans : CblasNoTrans, m, n,
              g->k, g->alpha, a, g->lda, b, g->ldb, g->beta, c, g->ldc);
}

typedef struct {
  const RtGemm *g;
  const float *a, *b;
  float *c;
  enum { BY_BATCH, BY_ROWS, BY_COLS } by;
  bool small; /* rt_gemm_small rather than OpenBLAS (never BY_ROWS) */
  int unit;   /* BY_ROWS, BY_COLS: splits fall on multiples of this */
} GemmJob;

/* Chunk ith of nth of [0, n) in units of 'unit' (the last chunk takes the
 * remainder). */
static void unit_chunk(int n, int unit, int ith, int nth, int *lo, int *hi) {
  int64_t b, e, units = (n + unit - 1) / unit;
  rt_chunk(units, ith, nth, &b, &e);
  *lo = (int)(b * unit < n ? b * unit : n);
  *hi = (int)(e * unit < n ? e * unit : n);
}

static void gemm_part(void *arg, int ith, int nth) {
  const GemmJob *j = arg;
  const RtGemm *g = j->g;
  if (j->by == BY_BATCH) {
    int64_t lo, hi;
    rt_chunk(g->batch, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
      const float *a = j->a + i * g->stride_a, *b = j->b + i * g->stride_b;
      float *c = j->c + i * g->stride_c;
      if (j->small) rt_gemm_small(g, a, b, c, 0, g->n);
      else sgemm(g, a, b, c, g->m, g->n);
    }
    return;
  }
  int lo, hi;
  unit_chunk(j->by == BY_ROWS ? g->m : g->n, j->unit, ith, nth, &lo, &hi);
  if (lo >= hi) return;
  for (int i = 0; i < g->batch; i++) {
    const float *a = j->a + i * g->stride_a, *b = j->b + i * g->stride_b;
    float *c = j->c + i * g->stride_c;
    if (j->small)
      rt_gemm_small(g, a, b, c, lo, hi);
    else if (j->by == BY_ROWS) /* rows lo..hi of op(A): rows of A, or columns if transposed */
      sgemm(g, a + (g->trans_a ? lo : (int64_t)lo * g->lda), b, c + (int64_t)lo * g->ldc, hi - lo, g->n);
    else /* columns lo..hi of op(B): columns of B, or rows if transposed */
      sgemm(g, a, b + (g->trans_b ? (int64_t)lo * g->ldb : lo), c + lo, g->m, hi - lo);
  }
}

void rt_sched_gemm(const RtGemm *g, const float *a, const float *b, float *c, RtPool *pool) {
  int nth = rt_pool_threads(pool);
  a += g->off_a;
  b += g->off_b;
  c += g->off_c;
  if (rt_sched_gemm_mode() == RT_GEMM_BLAS) {
    rt_pool_park(pool);
    for (int i = 0; i < g->batch; i++) sgemm(g, a + i * g->stride_a, b + i * g->stride_b, c + i * g->stride_c, g->m, g->n);
    return;
  }
  GemmJob j = {g, a, b, c, BY_BATCH, rt_gemm_small_fits(g), SPLIT_UNIT};
  if (j.small) j.unit = rt_gemm_small_cols(g);
  double macs = (double)g->m * g->n * g->k * g->batch;
  if (nth == 1 || macs < SPLIT_MIN_MACS) {
    gemm_part(&j, 0, 1);
    return;
  }
  /* Whole batch items when they divide evenly or are plenty and their C
   * blocks are disjoint; else split each item along the longer side of C
   * (the columns for the small-M kernel), every thread taking the items in
   * order (so overlapping C blocks, e.g. an accumulation with stride_c 0,
   * see them in batch order). */
  bool disjoint = g->batch == 1 || g->stride_c >= (int64_t)(g->m - 1) * g->ldc + g->n;
  int n, calls = j.small ? SMALL_CALLS : GEMM_CALLS;
  if (disjoint && (g->batch % nth == 0 || g->batch >= 4 * nth)) {
    j.by = BY_BATCH;
    n = rt_sched_calls(pool, g->batch, calls);
  } else {
    j.by = g->m >= g->n && !j.small ? BY_ROWS : BY_COLS;
    n = rt_sched_calls(pool, ((j.by == BY_ROWS ? g->m : g->n) + j.unit - 1) / j.unit, calls);
  }
  rt_pool_run_n(pool, gemm_part, &j, n);
}

/* sum over c of (r[c] - shift)^(square ? 2 : 1) in double, in 8 lanes
 * (c mod 8) added in a fixed order: the same result on every call, and 8
 * independent chains instead of one long one (a decode row of 256 is
 * summed in ~70 ns instead of ~250). */
static double row_sum(const float *r, int k, double shift, bool square) {
  double lane[8] = {0};
  int c = 0;
  for (; c + 8 <= k; c += 8)
    for (int l = 0; l < 8; l++) {
      double d = (double)r[c + l] - shift;
      lane[l] += square ? d * d : d;
    }
  for (int l = 0; c < k; c++, l++) {
    double d = (double)r[c] - shift;
    lane[l] += square ? d * d : d;
  }
  return ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

/* Rows [0, m) of x (k each) layer-normalised into y: the reference
 * executor's arithmetic (ir/ref/ref_nn.c: mean and biased variance in
 * double, then (x - mean) rstd gamma + beta), so a folded GEMM agrees with
 * it as closely as one reading a stored layer_norm. */
static void ln_rows(const float *x, const float *gamma, const float *beta, float eps, int m, int k, float *y) {
  for (int i = 0; i < m; i++) {
    const float *r = x + (int64_t)i * k;
    float *o = y + (int64_t)i * k;
    double mean = row_sum(r, k, 0, false) / k;
    double rstd = 1.0 / sqrt(row_sum(r, k, mean, true) / k + (double)eps);
    for (int c = 0; c < k; c++) o[c] = (float)(((double)r[c] - mean) * rstd * (double)gamma[c] + (double)beta[c]);
  }
}

void rt_sched_gemm_ln(const RtGemm *g, const float *x, const float *gamma, const float *beta, const float *b, float *c,
                      RtPool *pool) {
  /* rt_plan_check guarantees batch 1, no trans_a, lda == k and m * k <=
   * RT_GEMM_LN_MAX_ELEMS; rows past that would go in blocks */
  _Alignas(64) float y[RT_GEMM_LN_MAX_ELEMS];
  int rows = g->k <= RT_GEMM_LN_MAX_ELEMS ? RT_GEMM_LN_MAX_ELEMS / g->k : 0;
  if (rows < 1) return;
  RtGemm part = *g;
  part.ln = 0;
  part.off_a = 0; /* A is the normalised block y */
  x += g->off_a;
  for (int i0 = 0; i0 < g->m; i0 += rows) {
    part.m = g->m - i0 < rows ? g->m - i0 : rows;
    ln_rows(x + (int64_t)i0 * g->k, gamma, beta, g->ln_eps, part.m, g->k, y);
    rt_sched_gemm(&part, y, b, c + (int64_t)i0 * g->ldc, pool);
  }
}
