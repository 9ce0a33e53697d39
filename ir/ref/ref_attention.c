/* ref_attention.c — the fused attention op and its backward, as the
 * definition reads: every score of a row, then softmax, in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ref/ref_kernels.h"
#include "ir/ref/ref_step.h"

/* p [n, m] = softmax rows of where(mask, scale q k^T, -inf) of one item
 * and lse [n] their log-sum-exp; a row that sees no key is NaN, lse -inf. */
static void probs(double *p, double *lse, const float *q, const float *k, const int32_t *mask, int64_t n, int64_t m,
                  int64_t d, double scale) {
  for (int64_t i = 0; i < n; i++) {
    double *row = p + i * m, mx = -INFINITY;
    for (int64_t j = 0; j < m; j++) {
      double s = 0;
      for (int64_t c = 0; c < d; c++) s += (double)q[i * d + c] * k[j * d + c];
      row[j] = mask[i * m + j] ? s * scale : -INFINITY;
      if (row[j] > mx) mx = row[j];
    }
    double sum = 0;
    for (int64_t j = 0; j < m; j++) sum += row[j] == -INFINITY ? 0 : exp(row[j] - mx);
    for (int64_t j = 0; j < m; j++) row[j] = mx == -INFINITY ? NAN : row[j] == -INFINITY ? 0 : exp(row[j] - mx) / sum;
    lse[i] = mx == -INFINITY ? -INFINITY : mx + log(sum);
  }
}

void ref_attention(float *y, const float *q, const float *k, const float *v, const int32_t *mask, int64_t B, int64_t n,
                   int64_t m, int64_t d, double scale) {
  double *p = malloc(sizeof(double) * (size_t)(n * m + n));
  double *lse = p + n * m;
  for (int64_t b = 0; b < B; b++) {
    const float *qb = q + b * n * d, *kb = k + b * m * d, *vb = v + b * m * d;
    float *yb = y + b * n * (d + 1);
    probs(p, lse, qb, kb, mask, n, m, d, scale);
    for (int64_t i = 0; i < n; i++) {
      for (int64_t c = 0; c < d; c++) {
        double acc = 0;
        for (int64_t j = 0; j < m; j++) acc += p[i * m + j] * vb[j * d + c];
        yb[i * (d + 1) + c] = (float)acc;
      }
      yb[i * (d + 1) + d] = (float)lse[i];
    }
  }
  free(p);
}

void ref_attention_backward(float *grad, const float *q, const float *k, const float *v, const int32_t *mask,
                            const float *dy, int64_t B, int64_t n, int64_t m, int64_t d, double scale) {
  double *p = malloc(sizeof(double) * (size_t)(2 * n * m + n));
  double *ds = p + n * m, *lse = ds + n * m;
  for (int64_t b = 0; b < B; b++) {
    const float *qb = q + b * n * d, *kb = k + b * m * d, *vb = v + b * m * d, *dyb = dy + b * n * (d + 1);
    float *dq = grad + b * (n + 2 * m) * d, *dk = dq + n * d, *dv = dk + m * d;
    probs(p, lse, qb, kb, mask, n, m, d, scale);
    for (int64_t i = 0; i < n; i++) /* a row that sees no key passes no gradient on */
      if (lse[i] == -INFINITY)
        for (int64_t j = 0; j < m; j++) p[i * m + j] = 0;
    /* dP_ij = dy_i . v_j; dS_ij = P_ij (dP_ij - sum_l P_il dP_il + dlse_i) */
    for (int64_t i = 0; i < n; i++) {
      double sum = 0;
      for (int64_t j = 0; j < m; j++) {
        double dp = 0;
        for (int64_t c = 0; c < d; c++) dp += (double)dyb[i * (d + 1) + c] * vb[j * d + c];
        ds[i * m + j] = dp;
        sum += p[i * m + j] * dp;
      }
      for (int64_t j = 0; j < m; j++) ds[i * m + j] = p[i * m + j] * (ds[i * m + j] - sum + dyb[i * (d + 1) + d]);
    }
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = 0; c < d; c++) {
        double acc = 0;
        for (int64_t j = 0; j < m; j++) acc += ds[i * m + j] * kb[j * d + c];
        dq[i * d + c] = (float)(scale * acc);
      }
    for (int64_t j = 0; j < m; j++)
      for (int64_t c = 0; c < d; c++) {
        double gk = 0, gv = 0;
        for (int64_t i = 0; i < n; i++) {
          gk += ds[i * m + j] * qb[i * d + c];
          gv += p[i * m + j] * dyb[i * (d + 1) + c];
        }
        dk[j * d + c] = (float)(scale * gk);
        dv[j * d + c] = (float)gv;
      }
  }
  free(p);
}

/* q [..., n, d] viewed as (B, n, d); k, v (B, m, d); mask [n, m]. */
static void dims(const RefStep *s, int64_t *B, int64_t *n, int64_t *m, int64_t *d) {
  const RtTensor *q = s->in[0], *k = s->in[1];
  *n = q->dim[q->rank - 2];
  *d = q->dim[q->rank - 1];
  *m = k->dim[k->rank - 2];
  *B = rt_tensor_numel(q) / (*n * *d);
}

int ref_exec_ATTENTION(RefStep *s, RtErr *e) {
  (void)e;
  int64_t B, n, m, d;
  dims(s, &B, &n, &m, &d);
  ref_attention(rt_f32(s->out), rt_f32(s->in[0]), rt_f32(s->in[1]), rt_f32(s->in[2]), rt_i32(s->in[3]), B, n, m, d,
                s->node->attr.value);
  return 0;
}

int ref_exec_ATTENTION_BACKWARD(RefStep *s, RtErr *e) {
  (void)e;
  int64_t B, n, m, d;
  dims(s, &B, &n, &m, &d);
  ref_attention_backward(rt_f32(s->out), rt_f32(s->in[0]), rt_f32(s->in[1]), rt_f32(s->in[2]), rt_i32(s->in[3]),
                         rt_f32(s->in[5]), B, n, m, d, s->node->attr.value);
  return 0;
}
