/* test_sample.c — drawing tokens from logits (runtime/sample.h): greedy
 * and its ties, empirical frequencies against softmax(logits / T) with and
 * without top-k (ties at the cut), the uniform stream's determinism and
 * range, the ends of [0, 1), and NaN / infinite logits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sample.h"
#include "tests/util.h"

enum { DRAWS = 100000 };

/* Frequencies of DRAWS tokens drawn with the stream of seed 1 (row 0,
 * steps 0, 1, ...) against probabilities 'want'; the largest difference. */
static double frequency_error(const float *logits, int n, RtSampleOptions o, const double *want) {
  int *count = calloc((size_t)n, sizeof *count);
  float *scratch = malloc(sizeof *scratch * (size_t)n);
  for (int s = 0; s < DRAWS; s++) {
    int t = rt_sample_token(logits, n, &o, rt_sample_uniform(1, 0, (uint64_t)s), scratch);
    ck_assert(t >= 0 && t < n);
    count[t]++;
  }
  double worst = 0;
  for (int i = 0; i < n; i++) worst = fmax(worst, fabs((double)count[i] / DRAWS - want[i]));
  free(count);
  free(scratch);
  return worst;
}

/* softmax(logits / t) over the indices in keep[] (NULL: all). */
static void softmax_of(const float *logits, int n, double t, const bool *keep, double *p) {
  double m = -INFINITY, z = 0;
  for (int i = 0; i < n; i++)
    if (!keep || keep[i]) m = fmax(m, logits[i]);
  for (int i = 0; i < n; i++) z += p[i] = !keep || keep[i] ? exp((logits[i] - m) / t) : 0;
  for (int i = 0; i < n; i++) p[i] /= z;
}

START_TEST(greedy) {
  const float l[5] = {0.5f, 2, -1, 2, 1};
  float scratch[5];
  RtSampleOptions o = {0, 0};
  for (int k = 0; k < 10; k++) ck_assert_int_eq(rt_sample_token(l, 5, &o, k / 10.0, scratch), 1); /* first of the 2s */
  o.temperature = -1;
  ck_assert_int_eq(rt_sample_token(l, 5, &o, 0.5, scratch), 1);
}
END_TEST

/* With 100000 draws the frequencies are within 0.006 of the probabilities
 * (their standard error is below 0.0016). */
START_TEST(frequencies) {
  const float l[6] = {0, 1, 2, 3, -1, 0.5f};
  double p[6];
  for (int ti = 0; ti < 3; ti++) {
    double t = (double[]){1.0, 0.5, 2.0}[ti];
    softmax_of(l, 6, t, NULL, p);
    double err = frequency_error(l, 6, (RtSampleOptions){(float)t, 0}, p);
    ck_assert_msg(err < 0.006, "temperature %g: frequency off by %g", t, err);
  }
  /* top-3: only 3, 2, 1 (indices 3, 2, 1), renormalised */
  bool keep[6] = {false, true, true, true, false, false};
  softmax_of(l, 6, 1.0, keep, p);
  double err = frequency_error(l, 6, (RtSampleOptions){1, 3}, p);
  ck_assert_msg(err < 0.006, "top-3: frequency off by %g", err);
  /* ties at the cut: of the equal logits the lower indices are kept */
  const float tie[5] = {1, 3, 1, 1, 0};
  bool keep2[5] = {true, true, true, false, false};
  softmax_of(tie, 5, 1.0, keep2, p);
  err = frequency_error(tie, 5, (RtSampleOptions){1, 3}, p);
  ck_assert_msg(err < 0.006, "top-3 with ties: frequency off by %g", err);
  /* k at least the count: all of them */
  softmax_of(l, 6, 1.0, NULL, p);
  ck_assert(frequency_error(l, 6, (RtSampleOptions){1, 6}, p) < 0.006);
  ck_assert(frequency_error(l, 6, (RtSampleOptions){1, 60}, p) < 0.006);
}
END_TEST

START_TEST(uniform_stream) {
  double sum = 0, lo = 1, hi = 0;
  for (uint64_t s = 0; s < 100000; s++) {
    double u = rt_sample_uniform(7, 3, s);
    ck_assert(u >= 0 && u < 1);
    sum += u;
    lo = fmin(lo, u);
    hi = fmax(hi, u);
  }
  ck_assert_double_eq_tol(sum / 100000, 0.5, 0.005);
  ck_assert(lo < 1e-3 && hi > 1 - 1e-3);
  ck_assert(rt_sample_uniform(7, 3, 9) == rt_sample_uniform(7, 3, 9));
  ck_assert(rt_sample_uniform(7, 3, 9) != rt_sample_uniform(8, 3, 9));
  ck_assert(rt_sample_uniform(7, 3, 9) != rt_sample_uniform(7, 4, 9));
  ck_assert(rt_sample_uniform(7, 3, 9) != rt_sample_uniform(7, 3, 10));
  ck_assert(rt_sample_uniform(7, 3, 9) != rt_sample_uniform(7, 3, 9 + (1ull << 32)));
}
END_TEST

START_TEST(ends_and_odd_logits) {
  float scratch[5];
  RtSampleOptions o = {1, 0};
  const float l[5] = {-INFINITY, 0, NAN, 0, -INFINITY};
  /* u = 0: the first drawable; u just below 1: the last drawable */
  ck_assert_int_eq(rt_sample_token(l, 5, &o, 0, scratch), 1);
  ck_assert_int_eq(rt_sample_token(l, 5, &o, 1 - 1e-12, scratch), 3);
  ck_assert_int_eq(rt_sample_token(l, 5, &o, 0.49, scratch), 1);
  ck_assert_int_eq(rt_sample_token(l, 5, &o, 0.51, scratch), 3);
  o.top_k = 1;
  ck_assert_int_eq(rt_sample_token(l, 5, &o, 0.99, scratch), 1); /* NaN and -inf do not count */
  const float none[3] = {NAN, -INFINITY, NAN};
  ck_assert_int_eq(rt_sample_token(none, 3, &o, 0.5, scratch), -1);
  ck_assert_int_eq(rt_sample_token(none, 0, &o, 0.5, scratch), -1);
  const float inf[4] = {1, INFINITY, 2, INFINITY};
  o.top_k = 0;
  for (int k = 0; k < 10; k++) ck_assert_int_eq(rt_sample_token(inf, 4, &o, k / 10.0, scratch), 1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("sample");
  TCase *tc = tcase_create("sample");
  tcase_add_test(tc, greedy);
  tcase_add_test(tc, frequencies);
  tcase_add_test(tc, uniform_stream);
  tcase_add_test(tc, ends_and_odd_logits);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
