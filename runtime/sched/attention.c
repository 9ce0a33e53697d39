/* attention.c — the fused attention kernels of attention.h: blocks of QB
 * query rows against the span of keys they see, on GCC vector types (one
 * 8-float vector = one AVX register). Each item's code is compiled twice,
 * for AVX2 + FMA and for the baseline, and picked at run time from the
 * CPU's features (target_clones' "arch=haswell" would test the CPU model,
 * and miss AMD's AVX2 cores). */
#include "runtime/sched/attention.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The helpers taking and returning vectors are static and always inlined:
 * no call ever passes one, so the psABI note about AVX arguments is moot. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
/* The same, for loads and stores at any float alignment. */
typedef float v8u __attribute__((vector_size(32), aligned(4)));
typedef int32_t v8iu __attribute__((vector_size(32), aligned(4)));

#define INLINE static inline __attribute__((always_inline))
#define AVX2 __attribute__((target("avx2,fma")))

/* Query rows per block: 4 rows x 16 columns = 8 vector accumulators. */
#define QB 4
/* Columns of the micro-kernel; the packed K^T and V^T rows are padded to it. */
#define NC 16
/* Keys per chunk of the forward's online softmax (a multiple of NC): a
 * block's score rows hold one chunk, whatever the sequence length. */
#define KB 128

typedef struct {
  int64_t lo, hi; /* visible keys of a row lie in [lo, hi); lo == hi: none */
} Span;

INLINE v8 ld(const float *p) { return *(const v8u *)p; }
INLINE void st(float *p, v8 x) { *(v8u *)p = x; }
/* (a scalar operand of a vector op is broadcast: one vbroadcastss) */
INLINE v8 splat(float x) { return (v8){0} + x; }

/* c[r][0..16) = sum over t in [t0, t1) of a[r][t] b[t][0..16), r < QB;
 * a[r] are row pointers, b's rows are ldb floats apart. */
INLINE void mk(float *const c[QB], const float *const a[QB], const float *b, int64_t ldb, int64_t t0, int64_t t1) {
  v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
  for (int64_t t = t0; t < t1; t++) {
    v8 b0 = ld(b + t * ldb), b1 = ld(b + t * ldb + 8);
    v8 x0 = splat(a[0][t]), x1 = splat(a[1][t]), x2 = splat(a[2][t]), x3 = splat(a[3][t]);
    c00 += x0 * b0, c01 += x0 * b1, c10 += x1 * b0, c11 += x1 * b1;
    c20 += x2 * b0, c21 += x2 * b1, c30 += x3 * b0, c31 += x3 * b1;
  }
  st(c[0], c00), st(c[0] + 8, c01), st(c[1], c10), st(c[1] + 8, c11);
  st(c[2], c20), st(c[2] + 8, c21), st(c[3], c30), st(c[3] + 8, c31);
}

/* c[r][0..w) = sum over t in [t0, t1) of a[r][t] b[t][0..w), for a narrow
 * remainder of columns (w < NC). */
INLINE void mk_tail(float *const c[QB], const float *const a[QB], const float *b, int64_t ldb, int64_t t0, int64_t t1,
                    int64_t w) {
  for (int r = 0; r < QB; r++)
    for (int64_t x = 0; x < w; x++) {
      float acc = 0;
      for (int64_t t = t0; t < t1; t++) acc += a[r][t] * b[t * ldb + x];
      c[r][x] = acc;
    }
}

/* C [QB rows, ldc apart][cols] = A B over t in [t0, t1), B [t][cols] with
 * rows ldb apart. Column blocks of NC, then the remainder. */
INLINE void gemm_rows(float *c, int64_t ldc, const float *const a[QB], const float *b, int64_t ldb, int64_t cols,
                      int64_t t0, int64_t t1) {
  int64_t x = 0;
  for (; x + NC <= cols; x += NC) {
    float *cr[QB] = {c + x, c + ldc + x, c + 2 * ldc + x, c + 3 * ldc + x};
    mk(cr, a, b + x, ldb, t0, t1);
  }
  if (x < cols) {
    float *cr[QB] = {c + x, c + ldc + x, c + 2 * ldc + x, c + 3 * ldc + x};
    mk_tail(cr, a, b + x, ldb, t0, t1, cols - x);
  }
}

/* exp(x) for x <= 0 (x may be -inf), as 2^n e^r with |r| <= ln2 / 2 and a
 * degree-6 Taylor polynomial (relative error under 2e-7); results below
 * 2^-126 come out as about 2^-126 (callers zero masked entries). */
INLINE v8 exp8(v8 x) {
  const v8 lo = splat(-87.0f);
  v8i small = x < lo;
  x = (v8)(((v8i)x & ~small) | ((v8i)lo & small));
  const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer in the low bits */
  v8 t = x * splat(1.44269504088896341f) + splat(magic);
  v8 n = t - splat(magic);
  v8 r = x - n * splat(0.693145751953125f) - n * splat(1.42860682030941723e-06f);
  v8 p = splat(1.0f / 720);
  p = p * r + splat(1.0f / 120);
  p = p * r + splat(1.0f / 24);
  p = p * r + splat(1.0f / 6);
  p = p * r + splat(0.5f);
  p = p * r + splat(1.0f);
  p = p * r + splat(1.0f);
  v8i bits;
  memcpy(&bits, &t, sizeof bits);
  v8i magic_bits;
  v8 mv = splat(magic);
  memcpy(&magic_bits, &mv, sizeof magic_bits);
  v8i e = (bits - magic_bits + 127) << 23;
  v8 scale2;
  memcpy(&scale2, &e, sizeof scale2);
  return p * scale2;
}

/* Each row's span of visible keys. */
static void row_spans(Span *sp, const int32_t *mask, int64_t n, int64_t m) {
  for (int64_t i = 0; i < n; i++) {
    const int32_t *row = mask + i * m;
    int64_t lo = 0, hi = m;
    while (lo < m && !row[lo]) lo++;
    while (hi > lo && !row[hi - 1]) hi--;
    sp[i].lo = lo;
    sp[i].hi = hi;
  }
}

/* The 8 x 8 block at src (rows ls floats apart) transposed into dst (rows
 * ld floats apart): unpack pairs of rows, then pairs of pairs, then swap
 * the 128-bit halves. */
INLINE void transpose8(float *dst, int64_t ld_, const float *src, int64_t ls) {
  v8 r[8], t[8], u[8];
  for (int i = 0; i < 8; i++) r[i] = ld(src + i * ls);
  const v8i lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
  const v8i q0 = {0, 1, 8, 9, 4, 5, 12, 13}, q1 = {2, 3, 10, 11, 6, 7, 14, 15};
  const v8i h0 = {0, 1, 2, 3, 8, 9, 10, 11}, h1 = {4, 5, 6, 7, 12, 13, 14, 15};
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shuffle(r[i], r[i + 1], lo);
    t[i + 1] = __builtin_shuffle(r[i], r[i + 1], hi);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = __builtin_shuffle(t[i], t[i + 2], q0);
    u[i + 1] = __builtin_shuffle(t[i], t[i + 2], q1);
    u[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], q0);
    u[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], q1);
  }
  for (int i = 0; i < 4; i++) {
    st(dst + i * ld_, __builtin_shuffle(u[i], u[i + 4], h0));
    st(dst + (i + 4) * ld_, __builtin_shuffle(u[i], u[i + 4], h1));
  }
}

/* dst [d][mp] = src [m][d] transposed, zero columns past m: 8 x 8 blocks,
 * then the edges one float at a time. */
INLINE void pack_t(float *dst, const float *src, int64_t m, int64_t d, int64_t mp) {
  int64_t m8 = m / 8 * 8, d8 = d / 8 * 8;
  for (int64_t j = 0; j < m8; j += 8)
    for (int64_t c = 0; c < d8; c += 8) transpose8(dst + c * mp + j, mp, src + j * d + c, d);
  for (int64_t c = 0; c < d; c++) {
    float *row = dst + c * mp;
    for (int64_t j = c < d8 ? m8 : 0; j < m; j++) row[j] = src[j * d + c];
    for (int64_t j = m; j < mp; j++) row[j] = 0;
  }
}

/* The key span of rows [i0, i0 + nb): [lo, hi) over the rows that see any key. */
static void block_span(const Span *sp, int64_t i0, int nb, int64_t *lo, int64_t *hi) {
  *lo = INT64_MAX;
  *hi = 0;
  for (int r = 0; r < nb; r++) {
    if (sp[i0 + r].lo >= sp[i0 + r].hi) continue;
    if (sp[i0 + r].lo < *lo) *lo = sp[i0 + r].lo;
    if (sp[i0 + r].hi > *hi) *hi = sp[i0 + r].hi;
  }
  if (*lo >= *hi) *lo = *hi = 0;
}

typedef struct {
  int64_t n, m, d, mp;
  float scale;
  const int32_t *mask;
  const Span *sp;
} Shape;

/* Block rows [i0, i0 + nb) of one item: the masked scaled scores of keys
 * j in [c0, c1) (rounded out to NC; -inf outside the block's span [lo, hi)
 * and where masked), from q rows and K^T packed kt [d][mp], row r's score j
 * at s[r * ls + j - base]. Rows past nb repeat row i0 (computed, never
 * used). */
INLINE void block_scores(float *s, int64_t ls, int64_t base, const Shape *S, const float *q, const float *kt,
                         int64_t i0, int nb, int64_t lo, int64_t hi, int64_t c0, int64_t c1) {
  const float *qa[QB];
  for (int r = 0; r < QB; r++) qa[r] = q + (i0 + (r < nb ? r : 0)) * S->d;
  gemm_rows(s + c0 - base, ls, qa, kt + c0, S->mp, c1 - c0, 0, S->d);
  if (lo < c0) lo = c0;
  if (hi > c1) hi = c1;
  if (hi < lo) hi = lo;
  for (int r = 0; r < nb; r++) {
    float *row = s + r * ls + (c0 - base); /* score c0 + t at row[t] */
    const int32_t *mrow = S->mask + (i0 + r) * S->m + c0;
    int64_t a = lo - c0, b = hi - c0, t = 0;
    for (; t < a; t++) row[t] = -INFINITY;
    const v8 ninf = splat(-INFINITY), sc = splat(S->scale);
    for (; t + 8 <= b; t += 8) {
      v8i hidden = *(const v8iu *)(mrow + t) == (v8i){0};
      v8 x = ld(row + t) * sc;
      st(row + t, (v8)(((v8i)x & ~hidden) | ((v8i)ninf & hidden)));
    }
    for (; t < b; t++) row[t] = mrow[t] ? row[t] * S->scale : -INFINITY;
    for (; t < c1 - c0; t++) row[t] = -INFINITY;
  }
}

/* row[j] = exp(row[j] - shift) over [c0, c1) (a multiple of 8 wide), 0
 * where row[j] is -inf; returns their sum. */
INLINE float exp_row(float *row, int64_t c0, int64_t c1, float shift) {
  v8 sum = {0};
  const v8 ninf = splat(-INFINITY);
  for (int64_t j = c0; j < c1; j += 8) {
    v8 x = ld(row + j);
    v8i live = x > ninf;
    v8 p = exp8(x - splat(shift));
    p = (v8)((v8i)p & live);
    st(row + j, p);
    sum += p;
  }
  float t = 0;
  for (int i = 0; i < 8; i++) t += sum[i];
  return t;
}

static void round_span(const Shape *S, int64_t lo, int64_t hi, int64_t *c0, int64_t *c1) {
  *c0 = lo / NC * NC;
  *c1 = (hi + NC - 1) / NC * NC;
  if (*c1 > S->mp) *c1 = S->mp;
  if (*c0 > *c1) *c0 = *c1;
}

/* a . b over d floats. */
INLINE float dot(const float *a, const float *b, int64_t d) {
  v8 acc = {0};
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) acc += ld(a + c) * ld(b + c);
  float t = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; c < d; c++) t += a[c] * b[c];
  return t;
}

/* Row i's masked scaled scores of keys [c0, c1) (key c0 + t at row[t]),
 * -inf outside [lo, hi) and where masked, as dot products with k's rows
 * (for fewer query rows than a block: packing K^T would cost as much as
 * the scores themselves, as in a decode step). */
INLINE void row_scores_direct(float *row, const Shape *S, const float *qi, const float *k, int64_t i, int64_t lo,
                              int64_t hi, int64_t c0, int64_t c1) {
  const int32_t *mrow = S->mask + i * S->m;
  for (int64_t j = c0; j < c1; j++)
    row[j - c0] = j >= lo && j < hi && mrow[j] ? dot(qi, k + j * S->d, S->d) * S->scale : -INFINITY;
}

/* o [d] = sum over j in [lo, hi) of p[j] v[j]. */
INLINE void row_pv_direct(float *o, const float *p, const float *v, int64_t d, int64_t lo, int64_t hi) {
  memset(o, 0, sizeof(float) * (size_t)d);
  for (int64_t j = lo; j < hi; j++) {
    if (p[j] == 0) continue;
    v8 w = splat(p[j]);
    const float *vj = v + j * d;
    int64_t c = 0;
    for (; c + 8 <= d; c += 8) st(o + c, ld(o + c) + w * ld(vj + c));
    for (; c < d; c++) o[c] += p[j] * vj[c];
  }
}

/* x[0..d) *= f. */
INLINE void scale_row(float *x, float f, int64_t d) {
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) st(x + c, ld(x + c) * f);
  for (; c < d; c++) x[c] *= f;
}

/* x[0..d) += y[0..d). */
INLINE void add_row(float *x, const float *y, int64_t d) {
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) st(x + c, ld(x + c) + ld(y + c));
  for (; c < d; c++) x[c] += y[c];
}

/* The largest of row[0..w) (w a multiple of 8), -inf if none is larger;
 * NaN never wins (x > max is false), as in the scalar max it replaces. */
INLINE float row_max(const float *row, int64_t w) {
  v8 mv = splat(-INFINITY);
  for (int64_t t = 0; t < w; t += 8) {
    v8 x = ld(row + t);
    v8i gt = x > mv;
    mv = (v8)(((v8i)x & gt) | ((v8i)mv & ~gt));
  }
  float cm = -INFINITY;
  for (int i = 0; i < 8; i++) cm = mv[i] > cm ? mv[i] : cm;
  return cm;
}

/* The forward of one item, online over chunks of KB keys: a block's score
 * rows hold one chunk; each row keeps its running max mx, the sum l of
 * exp(score - mx) so far and its unnormalised output o, rescaled by
 * exp(old mx - new mx) when a chunk raises the max. */
INLINE void forward_item(float *y, const float *q, const float *k, const float *v, const Shape *S, float *kt,
                         float *s, float *o, float *po) {
  int64_t n = S->n, m = S->m, d = S->d, mp = S->mp;
  bool direct = n < QB;
  if (!direct) pack_t(kt, k, m, d, mp);
  for (int64_t i0 = 0; i0 < n; i0 += QB) {
    int nb = n - i0 < QB ? (int)(n - i0) : QB;
    int64_t lo, hi, c0, c1;
    block_span(S->sp, i0, nb, &lo, &hi);
    round_span(S, lo, hi, &c0, &c1);
    float mx[QB], l[QB];
    for (int r = 0; r < QB; r++) mx[r] = -INFINITY, l[r] = 0;
    memset(o, 0, sizeof(float) * (size_t)(QB * d));
    for (int64_t k0 = c0; k0 < c1; k0 += KB) {
      int64_t k1 = k0 + KB < c1 ? k0 + KB : c1, w = k1 - k0;
      int64_t klo = lo > k0 ? lo : k0, khi = hi < k1 ? hi : k1; /* the block's visible keys in the chunk */
      if (klo >= khi) continue;
      if (direct)
        for (int r = 0; r < nb; r++) row_scores_direct(s + r * KB, S, q + (i0 + r) * d, k, i0 + r, lo, hi, k0, k1);
      else
        block_scores(s, KB, k0, S, q, kt, i0, nb, lo, hi, k0, k1);
      const float *pa[QB];
      for (int r = 0; r < QB; r++) {
        float *row = s + (r < nb ? r : 0) * KB;
        pa[r] = row;
        if (r >= nb) continue;
        float cm = row_max(row, w);
        if (cm <= mx[r]) { /* the max stands (or the row has seen no key yet, nor here) */
          if (mx[r] == -INFINITY) memset(row, 0, sizeof(float) * (size_t)w);
          else l[r] += exp_row(row, 0, w, mx[r]);
          continue;
        }
        float alpha = mx[r] == -INFINITY ? 0 : expf(mx[r] - cm);
        scale_row(o + r * d, alpha, d);
        l[r] = l[r] * alpha + exp_row(row, 0, w, cm);
        mx[r] = cm;
      }
      /* o += P V over the chunk's visible keys (po: the chunk's product) */
      if (direct)
        for (int r = 0; r < nb; r++) row_pv_direct(po + r * d, pa[r], v + k0 * d, d, klo - k0, khi - k0);
      else
        gemm_rows(po, d, pa, v + k0 * d, d, d, klo - k0, khi - k0);
      for (int r = 0; r < nb; r++) add_row(o + r * d, po + r * d, d);
    }
    for (int r = 0; r < nb; r++) {
      float *dst = y + (i0 + r) * (d + 1);
      float inv = l[r] > 0 ? 1.0f / l[r] : NAN; /* no visible key: NaN, like the unfused softmax */
      memcpy(dst, o + r * d, sizeof(float) * (size_t)d);
      scale_row(dst, inv, d);
      dst[d] = l[r] > 0 ? mx[r] + logf(l[r]) : -INFINITY;
    }
  }
}

/* dst[j][0..d) += sum over r < nb of a[r][j] b[r][0..d), for j in [lo, hi)
 * (dk from dS and q, dv from P and dy): tiles of 4 rows j by 16 columns
 * held in registers over the nb terms (half the loads of updating one
 * row at a time: each b vector serves four rows). */
INLINE void rank_update(float *dst, const float *const a[QB], const float *const b[QB], int nb, int64_t d,
                        int64_t lo, int64_t hi) {
  int64_t j = lo;
  int64_t dv = d / NC * NC;
  for (; j + 4 <= hi; j += 4) {
    float *r0 = dst + j * d, *r1 = r0 + d, *r2 = r1 + d, *r3 = r2 + d;
    for (int64_t c = 0; c < dv; c += NC) {
      v8 c00 = ld(r0 + c), c01 = ld(r0 + c + 8), c10 = ld(r1 + c), c11 = ld(r1 + c + 8);
      v8 c20 = ld(r2 + c), c21 = ld(r2 + c + 8), c30 = ld(r3 + c), c31 = ld(r3 + c + 8);
      for (int r = 0; r < nb; r++) {
        v8 b0 = ld(b[r] + c), b1 = ld(b[r] + c + 8);
        const float *ar = a[r] + j;
        v8 x0 = splat(ar[0]), x1 = splat(ar[1]), x2 = splat(ar[2]), x3 = splat(ar[3]);
        c00 += x0 * b0, c01 += x0 * b1, c10 += x1 * b0, c11 += x1 * b1;
        c20 += x2 * b0, c21 += x2 * b1, c30 += x3 * b0, c31 += x3 * b1;
      }
      st(r0 + c, c00), st(r0 + c + 8, c01), st(r1 + c, c10), st(r1 + c + 8, c11);
      st(r2 + c, c20), st(r2 + c + 8, c21), st(r3 + c, c30), st(r3 + c + 8, c31);
    }
    for (int64_t c = dv; c < d; c++)
      for (int64_t jj = j; jj < j + 4; jj++) {
        float acc = dst[jj * d + c];
        for (int r = 0; r < nb; r++) acc += a[r][jj] * b[r][c];
        dst[jj * d + c] = acc;
      }
  }
  for (; j < hi; j++) {
    float *row = dst + j * d;
    for (int64_t c = 0; c < d; c++) {
      float acc = row[c];
      for (int r = 0; r < nb; r++) acc += a[r][j] * b[r][c];
      row[c] = acc;
    }
  }
}

typedef double v4d __attribute__((vector_size(32)));
typedef float v4u __attribute__((vector_size(16), aligned(4)));

/* a . b over d floats, the products summed in double (four lanes). */
INLINE double dot_f64(const float *a, const float *b, int64_t d) {
  v4d acc = {0};
  int64_t c = 0;
  for (; c + 4 <= d; c += 4)
    acc += __builtin_convertvector(*(const v4u *)(a + c), v4d) * __builtin_convertvector(*(const v4u *)(b + c), v4d);
  double t = (acc[0] + acc[2]) + (acc[1] + acc[3]);
  for (; c < d; c++) t += (double)a[c] * b[c];
  return t;
}

INLINE void backward_item(float *grad, const float *q, const float *k, const float *v, const float *y,
                                 const float *dy, const Shape *S, float *kt, float *vt, float *s, float *dp,
                                 float *dyc) {
  int64_t n = S->n, m = S->m, d = S->d, mp = S->mp;
  float *dq = grad, *dk = grad + n * d, *dv = grad + (n + m) * d;
  memset(dk, 0, sizeof(float) * (size_t)(2 * m * d));
  pack_t(kt, k, m, d, mp);
  pack_t(vt, v, m, d, mp);
  for (int64_t i0 = 0; i0 < n; i0 += QB) {
    int nb = n - i0 < QB ? (int)(n - i0) : QB;
    int64_t lo, hi, c0, c1;
    block_span(S->sp, i0, nb, &lo, &hi);
    round_span(S, lo, hi, &c0, &c1);
    block_scores(s, mp, 0, S, q, kt, i0, nb, lo, hi, c0, c1);
    /* dy rows without their lse column, contiguous for the products */
    const float *da[QB], *qa[QB];
    float D[QB];
    for (int r = 0; r < QB; r++) {
      int rr = r < nb ? r : 0;
      const float *src = dy + (i0 + rr) * (d + 1), *yr = y + (i0 + rr) * (d + 1);
      float *dst = dyc + r * d;
      memcpy(dst, src, sizeof(float) * (size_t)d);
      D[r] = (float)(dot_f64(src, yr, d) - src[d]);
      da[r] = dst;
      qa[r] = q + (i0 + rr) * d;
    }
    /* P = exp(s - lse), masked */
    const float *pa[QB], *sa[QB];
    for (int r = 0; r < QB; r++) {
      float *row = s + (r < nb ? r : 0) * mp;
      pa[r] = sa[r] = row;
      if (r >= nb) continue;
      float lse = y[(i0 + r) * (d + 1) + d];
      if (lse == -INFINITY) { /* sees no key: passes no gradient on (y's row is NaN) */
        for (int64_t j = c0; j < c1; j++) row[j] = 0;
        D[r] = 0;
        continue;
      }
      exp_row(row, c0, c1, lse);
    }
    /* dv[j] += sum_r P[r][j] dy[r] */
    rank_update(dv, pa, da, nb, d, lo, hi);
    /* dP = dy V^T over the span, then dS = scale P (dP - D) into s */
    gemm_rows(dp + c0, mp, da, vt + c0, mp, c1 - c0, 0, d);
    for (int r = 0; r < nb; r++) {
      float *p = s + r * mp;
      const float *g = dp + r * mp;
      v8 sc = splat(S->scale), dr = splat(D[r]);
      for (int64_t j = c0; j < c1; j += 8) st(p + j, sc * ld(p + j) * (ld(g + j) - dr));
    }
    /* dq = dS k over the span (rows of k), dk[j] += sum_r dS[r][j] q[r] */
    float *dqr = dp; /* dP is consumed: its first QB * d floats hold the block's dq */
    gemm_rows(dqr, d, sa, k, d, d, lo, hi);
    for (int r = 0; r < nb; r++) memcpy(dq + (i0 + r) * d, dqr + r * d, sizeof(float) * (size_t)d);
    rank_update(dk, sa, qa, nb, d, lo, hi);
  }
}

/* The two builds of each item's code. */
AVX2 static void forward_avx2(float *y, const float *q, const float *k, const float *v, const Shape *S, float *kt,
                              float *s, float *o, float *po) {
  forward_item(y, q, k, v, S, kt, s, o, po);
}
static void forward_base(float *y, const float *q, const float *k, const float *v, const Shape *S, float *kt, float *s,
                         float *o, float *po) {
  forward_item(y, q, k, v, S, kt, s, o, po);
}
AVX2 static void backward_avx2(float *grad, const float *q, const float *k, const float *v, const float *y,
                               const float *dy, const Shape *S, float *kt, float *vt, float *s, float *dp, float *dyc) {
  backward_item(grad, q, k, v, y, dy, S, kt, vt, s, dp, dyc);
}
static void backward_base(float *grad, const float *q, const float *k, const float *v, const float *y, const float *dy,
                          const Shape *S, float *kt, float *vt, float *s, float *dp, float *dyc) {
  backward_item(grad, q, k, v, y, dy, S, kt, vt, s, dp, dyc);
}

static bool have_avx2(void) {
  static atomic_int known = -1; /* -1: not asked yet */
  int v = atomic_load(&known);
  if (v < 0) {
    __builtin_cpu_init();
    v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    atomic_store(&known, v);
  }
  return v;
}

/* The backward's scratch: K^T and V^T [d][mp], QB score rows and QB rows
 * of dP [mp], and QB rows of d (the block's dy rows). */
static float *scratch(int64_t d, int64_t mp) {
  return malloc(sizeof(float) * (size_t)(2 * d * mp + 2 * QB * mp + 2 * QB * d));
}

static int64_t padded(int64_t m) { return (m + NC - 1) / NC * NC; }

void rt_attn_forward(float *y, const float *q, const float *k, const float *v, const int32_t *mask, int64_t n,
                     int64_t m, int64_t d, float scale, int64_t begin, int64_t end) {
  if (begin >= end) return;
  int64_t mp = padded(m);
  /* K^T [d][mp], QB score rows of one chunk [KB], the block's output
   * rows and one chunk's product [QB][d] */
  float *buf = malloc(sizeof(float) * (size_t)(d * mp + QB * KB + 2 * QB * d));
  Span *sp = malloc(sizeof(Span) * (size_t)n);
  if (!buf || !sp) abort(); /* a few KiB to a few MiB: out of memory here is fatal */
  row_spans(sp, mask, n, m);
  Shape S = {n, m, d, mp, scale, mask, sp};
  float *kt = buf, *s = kt + d * mp, *o = s + QB * KB, *po = o + QB * d;
  bool avx2 = have_avx2();
  for (int64_t b = begin; b < end; b++)
    (avx2 ? forward_avx2 : forward_base)(y + b * n * (d + 1), q + b * n * d, k + b * m * d, v + b * m * d, &S, kt, s,
                                         o, po);
  free(sp);
  free(buf);
}

void rt_attn_backward(float *grad, const float *q, const float *k, const float *v, const int32_t *mask,
                      const float *y, const float *dy, int64_t n, int64_t m, int64_t d, float scale, int64_t begin,
                      int64_t end) {
  if (begin >= end) return;
  int64_t mp = padded(m) > d ? padded(m) : padded(d); /* dP's rows also hold the block's dq */
  float *buf = scratch(d, mp);
  Span *sp = malloc(sizeof(Span) * (size_t)n);
  if (!buf || !sp) abort();
  row_spans(sp, mask, n, m);
  Shape S = {n, m, d, mp, scale, mask, sp};
  float *kt = buf, *vt = kt + d * mp, *s = vt + d * mp, *dp = s + QB * mp, *dyc = dp + QB * mp;
  bool avx2 = have_avx2();
  for (int64_t b = begin; b < end; b++)
    (avx2 ? backward_avx2 : backward_base)(grad + b * (n + 2 * m) * d, q + b * n * d, k + b * m * d, v + b * m * d,
                                           y + b * n * (d + 1), dy + b * n * (d + 1), &S, kt, vt, s, dp, dyc);
  free(sp);
  free(buf);
}
