/* gemm_small.c — the small-M GEMM kernel of gemm_small.h: AVX2 + FMA tiles
 * in functions compiled for those extensions alone, picked at run time. */
#include "runtime/sched/gemm_small.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define TILE static inline __attribute__((always_inline, target("avx2,fma")))

/* trans_b 1: rows of A x rows of B (columns of C) per tile: 4 x 3 = 12
 * accumulators + 3 rows of B + 1 of A fill the 16 ymm registers. m = 1
 * takes 8 rows of B at a time. */
#define TB_MA 4
#define TB_NB 3
#define TB_MAXA 4
#define TB_MAXB 8
/* trans_b 0: rows of A x vectors of 8 columns per tile: 12 accumulators.
 * Each tile reads a band of 32 columns of B, one row (page, for a wide B)
 * after the other: OpenBLAS is faster once m > 8 or B is large (measured
 * on the 2-core Zen 3 VM: 8x512x256 1.08x OpenBLAS's speed, 16x512x256
 * 0.8x, 8x1024x256 0.75-1.3x, 4x1024x256 0.6-0.7x), so those stay there. */
#define TN_MA 3
#define TN_NV 4
#define TN_MAX_M 8
#define TN_MAX_B (128 * 1024) /* elements of B: k * n */

/* ---- switches ---- */

/* -1 not decided yet, 0 off, 1 on. */
static atomic_int enabled = -1;
static atomic_int cpu_ok = -1;

static bool env_enabled(void) {
  const char *s = getenv("DAL_GEMM_SMALL");
  return !(s && strcmp(s, "0") == 0);
}

bool rt_gemm_small_enable(bool on) {
  int was = atomic_exchange(&enabled, on ? 1 : 0);
  return was < 0 ? env_enabled() : was == 1;
}

static bool usable(void) {
  int on = atomic_load(&enabled);
  if (on < 0) atomic_store(&enabled, on = env_enabled() ? 1 : 0);
  if (!on) return false;
  int cpu = atomic_load(&cpu_ok);
  if (cpu < 0) {
    __builtin_cpu_init();
    cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    atomic_store(&cpu_ok, cpu);
  }
  return cpu == 1;
}

bool rt_gemm_small_fits(const RtGemm *g) {
  if (g->trans_a || g->m < 1 || g->m > RT_GEMM_SMALL_MAX_M) return false;
  if (!g->trans_b && (g->m > TN_MAX_M || (int64_t)g->k * g->n > TN_MAX_B)) return false;
  return usable();
}

int rt_gemm_small_cols(const RtGemm *g) {
  if (!g->trans_b) return 8 * TN_NV;
  return g->m == 1 ? 8 * TB_MAXB : 8 * TB_NB; /* whole tiles and 8 columns (32 bytes) of C */
}

/* ---- helpers ---- */

/* Lanes 0..n-1 of a mask set (n clamped to [0, 8]). */
TILE __m256i lanes8(int n) {
  n = n < 0 ? 0 : n > 8 ? 8 : n;
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

TILE __m128i lanes4(int n) {
  return _mm_cmpgt_epi32(_mm_set1_epi32(n), _mm_setr_epi32(0, 1, 2, 3));
}

/* The lane sums of x0..x3 in a vector of 4, each by the same tree:
 * ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). */
TILE __m128 hsum4(__m256 x0, __m256 x1, __m256 x2, __m256 x3) {
  __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(x0, x1), _mm256_hadd_ps(x2, x3));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* ---- trans_b 1 ---- */

/* C[0:ma, 0:nb] (ldc) = alpha A[0:ma, :] B[0:nb, :]^T + beta C, for
 * ma <= TB_MAXA, nb <= NB <= TB_MAXB (ma and NB constants after inlining)
 * and 1 <= nb: rows of B past nb repeat row nb - 1, their sums are not
 * stored. With pf, the npf (>= 1) rows of B after these are prefetched on
 * the way (the next tile's, when the caller moves on to them). */
TILE void tb_tile(int ma, int NB, bool pf, int npf, int nb, const float *a, int lda, const float *b, int ldb, int k,
                  float *c, int ldc, float alpha, float beta) {
  const float *br[TB_MAXB];
#pragma GCC unroll 8
  for (int j = 0; j < NB; j++) br[j] = b + (int64_t)(j < nb ? j : nb - 1) * ldb;
  __m256 acc[TB_MAXA][TB_MAXB];
#pragma GCC unroll 4
  for (int i = 0; i < TB_MAXA; i++)
#pragma GCC unroll 8
    for (int j = 0; j < TB_MAXB; j++) acc[i][j] = _mm256_setzero_ps();
  const float *next[TB_MAXB];
#pragma GCC unroll 8
  for (int j = 0; j < NB; j++) next[j] = pf ? b + (int64_t)(NB + (j < npf ? j : npf - 1)) * ldb : b;
  int l = 0;
  for (; l + 8 <= k; l += 8) {
    if (pf && l % 16 == 0)
#pragma GCC unroll 8
      for (int j = 0; j < NB; j++) _mm_prefetch((const char *)(next[j] + l), _MM_HINT_T0);
    __m256 bv[TB_MAXB];
#pragma GCC unroll 8
    for (int j = 0; j < NB; j++) bv[j] = _mm256_loadu_ps(br[j] + l);
#pragma GCC unroll 4
    for (int i = 0; i < ma; i++) {
      __m256 av = _mm256_loadu_ps(a + (int64_t)i * lda + l);
#pragma GCC unroll 8
      for (int j = 0; j < NB; j++) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  if (l < k) { /* the last k % 8 lanes, zeros past k */
    __m256i m = lanes8(k - l);
    __m256 bv[TB_MAXB];
#pragma GCC unroll 8
    for (int j = 0; j < NB; j++) bv[j] = _mm256_maskload_ps(br[j] + l, m);
#pragma GCC unroll 4
    for (int i = 0; i < ma; i++) {
      __m256 av = _mm256_maskload_ps(a + (int64_t)i * lda + l, m);
#pragma GCC unroll 8
      for (int j = 0; j < NB; j++) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  __m128 va = _mm_set1_ps(alpha), vb = _mm_set1_ps(beta);
#pragma GCC unroll 4
  for (int i = 0; i < ma; i++) {
#pragma GCC unroll 2
    for (int j = 0; j < NB; j += 4) { /* columns j..j+3 of the tile */
      float *cij = c + (int64_t)i * ldc + j;
      __m128 r = _mm_mul_ps(va, hsum4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]));
      if (nb - j >= 4) {
        if (beta != 0) r = _mm_fmadd_ps(vb, _mm_loadu_ps(cij), r);
        _mm_storeu_ps(cij, r);
      } else if (nb > j) {
        __m128i m4 = lanes4(nb - j);
        if (beta != 0) r = _mm_fmadd_ps(vb, _mm_maskload_ps(cij, m4), r);
        _mm_maskstore_ps(cij, m4, r);
      }
    }
  }
}

/* Rows 0..m of C, columns n0..n1, in tiles of MA rows of A x NB rows of B
 * (constants): for each tile of B (NB x k floats, in L1), the row tiles of
 * A (m x k floats, in L1 or L2) in turn, so B is read from memory once;
 * the first row tile prefetches the next tile of B. */
TILE void tb_cols(int MA, int NB, const RtGemm *g, const float *a, const float *b, float *c, int n0, int n1) {
  int m = g->m, k = g->k, lda = g->lda, ldb = g->ldb, ldc = g->ldc;
  float alpha = g->alpha, beta = g->beta;
  for (int j = n0; j < n1; j += NB) {
    int nb = n1 - j < NB ? n1 - j : NB;
    const float *bj = b + (int64_t)j * ldb;
    int npf = n1 - j - NB < NB ? n1 - j - NB : NB; /* rows of the next tile */
    int i = 0;
    for (; i + MA <= m; i += MA) {
      const float *ai = a + (int64_t)i * lda;
      float *ci = c + (int64_t)i * ldc + j;
      if (i == 0 && npf > 0) tb_tile(MA, NB, true, npf, nb, ai, lda, bj, ldb, k, ci, ldc, alpha, beta);
      else tb_tile(MA, NB, false, 0, nb, ai, lda, bj, ldb, k, ci, ldc, alpha, beta);
    }
    const float *ai = a + (int64_t)i * lda;
    float *ci = c + (int64_t)i * ldc + j;
    switch (m - i) { /* the last rows (MA <= 4) */
    case 3: tb_tile(3, NB, false, 0, nb, ai, lda, bj, ldb, k, ci, ldc, alpha, beta); break;
    case 2: tb_tile(2, NB, false, 0, nb, ai, lda, bj, ldb, k, ci, ldc, alpha, beta); break;
    case 1: tb_tile(1, NB, false, 0, nb, ai, lda, bj, ldb, k, ci, ldc, alpha, beta); break;
    }
  }
}

AVX2 static void gemm_tb(const RtGemm *g, const float *a, const float *b, float *c, int n0, int n1) {
  if (g->m == 1) tb_cols(1, 8, g, a, b, c, n0, n1);
  else tb_cols(TB_MA, TB_NB, g, a, b, c, n0, n1);
}

/* ---- trans_b 0 ---- */

/* C[0:ma, 0:w] (ldc) = alpha A[0:ma, :] B[:, 0:w] + beta C, for ma <= TN_MA
 * and w = 8 TN_NV (masked false) or 1 <= w < 8 TN_NV (masked true: lanes
 * past w load zeros and are not stored). With pf, the next band's first
 * pfw (>= 1) columns of each row of B are prefetched on the way. */
TILE void tn_tile(int ma, bool masked, bool pf, int pfw, int w, const float *a, int lda, const float *b, int ldb,
                  int k, float *c, int ldc, float alpha, float beta) {
  __m256i mk[TN_NV];
#pragma GCC unroll 4
  for (int v = 0; v < TN_NV; v++) mk[v] = lanes8(w - 8 * v);
  __m256 acc[TN_MA][TN_NV];
#pragma GCC unroll 4
  for (int i = 0; i < TN_MA; i++)
#pragma GCC unroll 4
    for (int v = 0; v < TN_NV; v++) acc[i][v] = _mm256_setzero_ps();
  for (int l = 0; l < k; l++) {
    const float *bl = b + (int64_t)l * ldb;
    if (pf) { /* two cache lines' worth of the next band */
      _mm_prefetch((const char *)(bl + 8 * TN_NV), _MM_HINT_T0);
      if (pfw > 16) _mm_prefetch((const char *)(bl + 8 * TN_NV + 16), _MM_HINT_T0);
    }
    __m256 bv[TN_NV];
#pragma GCC unroll 4
    for (int v = 0; v < TN_NV; v++)
      bv[v] = masked ? _mm256_maskload_ps(bl + 8 * v, mk[v]) : _mm256_loadu_ps(bl + 8 * v);
#pragma GCC unroll 4
    for (int i = 0; i < ma; i++) {
      __m256 av = _mm256_broadcast_ss(a + (int64_t)i * lda + l);
#pragma GCC unroll 4
      for (int v = 0; v < TN_NV; v++) acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
    }
  }
  __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 4
  for (int i = 0; i < ma; i++) {
    float *ci = c + (int64_t)i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < TN_NV; v++) {
      __m256 r = _mm256_mul_ps(va, acc[i][v]);
      if (masked) {
        if (beta != 0) r = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci + 8 * v, mk[v]), r);
        _mm256_maskstore_ps(ci + 8 * v, mk[v], r);
      } else {
        if (beta != 0) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8 * v), r);
        _mm256_storeu_ps(ci + 8 * v, r);
      }
    }
  }
}

/* Every row of C, columns n0..n1 in bands of 32: for each band of B (k x
 * 32 floats), the row tiles of A in turn; the first prefetches the next
 * band. */
TILE void tn_band(bool masked, int pfw, int w, const RtGemm *g, const float *a, const float *b, float *c) {
  int m = g->m, k = g->k, lda = g->lda, ldb = g->ldb, ldc = g->ldc;
  float alpha = g->alpha, beta = g->beta;
  for (int i = 0; i < m; i += TN_MA) {
    const float *ai = a + (int64_t)i * lda;
    float *ci = c + (int64_t)i * ldc;
    int ma = m - i < TN_MA ? m - i : TN_MA;
    bool pf = i == 0 && pfw > 0;
    if (ma == 3 && pf) tn_tile(3, masked, true, pfw, w, ai, lda, b, ldb, k, ci, ldc, alpha, beta);
    else if (ma == 3) tn_tile(3, masked, false, 0, w, ai, lda, b, ldb, k, ci, ldc, alpha, beta);
    else if (ma == 2 && pf) tn_tile(2, masked, true, pfw, w, ai, lda, b, ldb, k, ci, ldc, alpha, beta);
    else if (ma == 2) tn_tile(2, masked, false, 0, w, ai, lda, b, ldb, k, ci, ldc, alpha, beta);
    else if (pf) tn_tile(1, masked, true, pfw, w, ai, lda, b, ldb, k, ci, ldc, alpha, beta);
    else tn_tile(1, masked, false, 0, w, ai, lda, b, ldb, k, ci, ldc, alpha, beta);
  }
}

AVX2 static void gemm_tn(const RtGemm *g, const float *a, const float *b, float *c, int n0, int n1) {
  const int W = 8 * TN_NV;
  int j = n0;
  for (; j + W <= n1; j += W) {
    int pfw = n1 - j - W < W ? n1 - j - W : W; /* columns of the next band */
    tn_band(false, pfw, W, g, a, b + j, c + j);
  }
  if (j < n1) tn_band(true, 0, n1 - j, g, a, b + j, c + j);
}

void rt_gemm_small(const RtGemm *g, const float *a, const float *b, float *c, int n0, int n1) {
  if (n0 >= n1) return;
  if (g->trans_b) gemm_tb(g, a, b, c, n0, n1);
  else gemm_tn(g, a, b, c, n0, n1);
}
