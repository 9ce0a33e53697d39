/* exe_eval_metrics.c — the arithmetic of the evaluations (exe_eval.h):
 * PSNR, the entropy of a histogram, log-sum-exp and the cross-entropy of
 * one target under a slice of logits, argmax. */
#include <math.h>

#include "runtime/exe/exe_eval.h"

double rt_eval_psnr(double mse) { return mse > 0 ? 10.0 * log10(1.0 / mse) : INFINITY; }

double rt_eval_entropy(const int64_t *counts, int64_t n, int64_t *used) {
  double total = 0;
  int64_t nz = 0;
  for (int64_t i = 0; i < n; i++) {
    total += (double)counts[i];
    nz += counts[i] > 0;
  }
  if (used) *used = nz;
  if (total <= 0) return 0;
  double h = 0;
  for (int64_t i = 0; i < n; i++)
    if (counts[i] > 0) {
      double q = (double)counts[i] / total;
      h -= q * log(q);
    }
  return h > 0 ? h : 0; /* one code: exactly 0, not -0 */
}

double rt_eval_lse(const float *row, int64_t lo, int64_t hi) {
  double m = row[lo];
  for (int64_t i = lo + 1; i < hi; i++)
    if (row[i] > m) m = row[i];
  if (isinf(m)) return m; /* every logit -inf (or one +inf) */
  double z = 0;
  for (int64_t i = lo; i < hi; i++) z += exp((double)row[i] - m);
  return m + log(z);
}

double rt_eval_lse2(double a, double b) {
  double m = a > b ? a : b;
  if (isinf(m)) return m;
  return m + log(exp(a - m) + exp(b - m));
}

double rt_eval_ce(const float *row, int64_t lo, int64_t hi, int64_t t) { return rt_eval_lse(row, lo, hi) - row[t]; }

int64_t rt_eval_argmax(const float *x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}
