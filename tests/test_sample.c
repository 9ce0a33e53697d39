/* test_sample.c — drawing tokens from logits (runtime/sample/sample.h), both
 * samplers: chi-square goodness of fit of 100,000 draws against
 * softmax(logits / T) with and without top-k (ties at the cut), greedy and
 * T -> 0, the Gumbel-max sampler against a plain argmax over all its noise
 * (its pruning must not change a draw), the noise's range and moments,
 * determinism of the streams (seed, row, position; any call order), and
 * NaN / infinite logits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sample/sample.h"
#include "tests/util.h"

enum { DRAWS = 100000 };

/* The chi-square distribution's upper 1e-4 quantile for 'df' degrees of
 * freedom (from the regularized incomplete gamma function). The draws come
 * from fixed seeds, so each check below is deterministic; a correct
 * sampler would fail one with probability 1e-4 over the choice of seed. */
static double chi2_critical(int df) {
  switch (df) {
  case 1: return 15.14;
  case 2: return 18.42;
  case 5: return 25.74;
  case 49: return 94.60;
  case 99: return 160.06;
  default: ck_abort_msg("no critical value for %d degrees of freedom", df);
  }
  return 0;
}

/* Draws DRAWS tokens with o (seed 1, row 3, positions 0, 1, ...) and
 * checks them against the probabilities p by a chi-square test at
 * p < 1e-4: classes with probability 0 are never drawn, every other class
 * expects at least 5 draws (so the test is valid), and the statistic
 * sum (observed - expected)^2 / expected is below the critical value for
 * (#classes with p > 0) - 1 degrees of freedom. */
static void check_fit(const char *what, const float *logits, int n, RtSampleOptions o, const double *p) {
  int *count = calloc((size_t)n, sizeof *count);
  float *scratch = malloc(sizeof *scratch * (size_t)n);
  for (int s = 0; s < DRAWS; s++) {
    int t = rt_sample_draw(logits, n, &o, 1, 3, (uint64_t)s, scratch);
    if (t < 0 || t >= n) ck_abort_msg("%s: drew %d", what, t);
    count[t]++;
  }
  double stat = 0;
  int classes = 0;
  for (int i = 0; i < n; i++) {
    double want = p[i] * DRAWS;
    if (p[i] == 0) {
      ck_assert_msg(count[i] == 0, "%s: class %d (probability 0) drawn %d times", what, i, count[i]);
      continue;
    }
    ck_assert_msg(want >= 5, "%s: class %d expects %g draws (too few for the test)", what, i, want);
    stat += (count[i] - want) * (count[i] - want) / want;
    classes++;
  }
  double crit = chi2_critical(classes - 1);
  ck_assert_msg(stat < crit, "%s (%s sampler): chi-square %g >= %g (%d degrees of freedom, p < 1e-4)", what,
                o.sampler == RT_SAMPLER_CDF ? "CDF" : "Gumbel", stat, crit, classes - 1);
  free(count);
  free(scratch);
}

/* softmax(logits / t) over the indices in keep[] (NULL: all). */
static void softmax_of(const float *logits, int n, double t, const bool *keep, double *p) {
  double m = -INFINITY, z = 0;
  for (int i = 0; i < n; i++)
    if (!keep || keep[i]) m = fmax(m, logits[i]);
  for (int i = 0; i < n; i++) z += p[i] = !keep || keep[i] ? exp((logits[i] - m) / t) : 0;
  for (int i = 0; i < n; i++) p[i] /= z;
}

/* Which classes top-k keeps: drawable, and fewer than k drawable logits
 * rank before it (larger, or equal at a lower index); k = 0: all drawable. */
static void top_k_keep(const float *l, int n, int k, bool *keep) {
  for (int i = 0; i < n; i++) {
    int larger = 0;
    for (int j = 0; j < n && k > 0; j++) larger += !isnan(l[j]) && (l[j] > l[i] || (l[j] == l[i] && j < i));
    keep[i] = !isnan(l[i]) && l[i] != -INFINITY && (k == 0 || larger < k);
  }
}

static RtSampleOptions opts(double t, int k, RtSamplerKind kind) {
  return (RtSampleOptions){.temperature = (float)t, .top_k = k, .sampler = kind};
}

START_TEST(greedy) {
  const float l[5] = {0.5f, 2, -1, 2, 1};
  float scratch[5];
  RtSampleOptions o = opts(0, 0, RT_SAMPLER_CDF);
  for (int k = 0; k < 10; k++) ck_assert_int_eq(rt_sample_token(l, 5, &o, k / 10.0, scratch), 1); /* first of the 2s */
  o.temperature = -1;
  ck_assert_int_eq(rt_sample_token(l, 5, &o, 0.5, scratch), 1);
  /* Gumbel-max: T <= 0 (and NaN) greedy, ties to the first */
  for (int ti = 0; ti < 3; ti++) {
    o = opts((double[]){0, -1, NAN}[ti], 0, RT_SAMPLER_GUMBEL);
    for (uint64_t s = 0; s < 100; s++)
      if (rt_sample_gumbel(l, 5, &o, 9, 0, s, scratch) != 1) ck_abort_msg("T %g, position %llu: not greedy", o.temperature, (unsigned long long)s);
  }
}
END_TEST

/* T -> 0: distinct logits (at least 0.01 apart) give the largest at
 * T = 1e-6 (the scores differ by >= 1e4, the noise by < 26), and at 0. */
START_TEST(cold_is_greedy) {
  enum { N = 200 };
  float l[N], scratch[N];
  for (int i = 0; i < N; i++) l[i] = (float)((i * 73) % N) * 0.01f; /* a permutation of 0, 0.01, ... */
  int arg = 0;
  for (int i = 0; i < N; i++) arg = l[i] > l[arg] ? i : arg;
  for (int ti = 0; ti < 2; ti++)
    for (int k = 0; k < 3; k++) {
      RtSampleOptions o = opts((double[]){1e-6, 0}[ti], (int[]){0, 1, 17}[k], RT_SAMPLER_GUMBEL);
      for (uint64_t s = 0; s < 2000; s++)
        if (rt_sample_gumbel(l, N, &o, 5, s % 8, s, scratch) != arg)
          ck_abort_msg("T %g, top-%d, position %llu: not greedy", o.temperature, o.top_k, (unsigned long long)s);
    }
}
END_TEST

/* Both samplers: frequencies against softmax(logits / T) at T = 0.5, 1, 2,
 * with top-k (ties at the cut: of equal logits the lower indices are
 * kept), and k at least the count (all kept). */
START_TEST(frequencies) {
  const float l[6] = {0, 1, 2, 3, -1, 0.5f};
  double p[6];
  for (int kind = 0; kind < 2; kind++) {
    RtSamplerKind sk = kind ? RT_SAMPLER_CDF : RT_SAMPLER_GUMBEL;
    for (int ti = 0; ti < 3; ti++) {
      double t = (double[]){1.0, 0.5, 2.0}[ti];
      softmax_of(l, 6, t, NULL, p);
      check_fit(t == 1 ? "T = 1" : t < 1 ? "T = 0.5" : "T = 2", l, 6, opts(t, 0, sk), p);
    }
    /* top-3: only 3, 2, 1 (indices 3, 2, 1), renormalised */
    bool keep[6] = {false, true, true, true, false, false};
    softmax_of(l, 6, 1.0, keep, p);
    check_fit("top-3", l, 6, opts(1, 3, sk), p);
    softmax_of(l, 6, 2.0, keep, p);
    check_fit("top-3, T = 2", l, 6, opts(2, 3, sk), p);
    /* ties at the cut: indices 1, 0, 2 kept; 3 (equal to 0 and 2) never */
    const float tie[5] = {1, 3, 1, 1, 0};
    bool keep2[5] = {true, true, true, false, false};
    softmax_of(tie, 5, 1.0, keep2, p);
    check_fit("top-3 with ties at the cut", tie, 5, opts(1, 3, sk), p);
    /* k at least the count: all of them */
    softmax_of(l, 6, 1.0, NULL, p);
    check_fit("top-6 of 6", l, 6, opts(1, 6, sk), p);
    check_fit("top-60 of 6", l, 6, opts(1, 60, sk), p);
  }
}
END_TEST

/* Gumbel-max over a wider row (100 classes, logits in [-1, 1]: 6 full
 * chunks of 16 and a partial one): all of them, and the top 50. */
START_TEST(frequencies_wide) {
  enum { N = 100, K = 50 };
  float l[N];
  double p[N];
  bool keep[N];
  for (int i = 0; i < N; i++) l[i] = (float)sin(i * 1.7); /* irregular, in [-1, 1] */
  softmax_of(l, N, 1.0, NULL, p);
  check_fit("100 classes", l, N, opts(1, 0, RT_SAMPLER_GUMBEL), p);
  top_k_keep(l, N, K, keep);
  softmax_of(l, N, 0.5, keep, p);
  check_fit("top-50 of 100, T = 0.5", l, N, opts(0.5, K, RT_SAMPLER_GUMBEL), p);
}
END_TEST

/* The plain Gumbel-max draw: noise for every kept class, the largest
 * score, ties to the lower index. */
static int plain_gumbel(const float *l, int n, double t, const bool *keep, uint64_t seed, uint64_t row, uint64_t pos) {
  int win = -1;
  double top = -INFINITY;
  for (int i = 0; i < n; i++) {
    if (!keep[i]) continue;
    double s = l[i] / t + rt_sample_gumbel_noise(seed, row, pos, i);
    if (win < 0 || s > top) {
      top = s;
      win = i;
    }
  }
  return win;
}

/* rt_sample_gumbel skips classes that cannot win; the result must be the
 * plain argmax's: flat, spread and tied logits, NaN / -inf among them,
 * several temperatures (and T = inf: uniform) and k. */
START_TEST(pruning_is_exact) {
  enum { N = 103 };
  float l[N], scratch[N];
  for (int shape = 0; shape < 4; shape++) {
    for (int i = 0; i < N; i++) {
      double x = sin(i * 12.9898 + shape) * 43758.5453;
      x -= floor(x); /* irregular in [0, 1) */
      l[i] = (float)(shape == 0 ? 0.01 * x : shape == 1 ? 20 * x : shape == 2 ? floor(4 * x) : 3 * x);
      if (shape == 3 && i % 7 == 0) l[i] = i % 14 ? NAN : -INFINITY;
    }
    for (int ti = 0; ti < 4; ti++)
      for (int ki = 0; ki < 4; ki++) {
        double t = (double[]){0.25, 1, 4, INFINITY}[ti];
        int k = (int[]){0, 1, 9, 60}[ki];
        RtSampleOptions o = opts(t, k, RT_SAMPLER_GUMBEL);
        bool keep[N];
        top_k_keep(l, N, k, keep);
        for (uint64_t s = 0; s < 150; s++) {
          int want = plain_gumbel(l, N, t, keep, 77, s % 5, s * 31);
          if (rt_sample_gumbel(l, N, &o, 77, s % 5, s * 31, scratch) != want)
            ck_abort_msg("shape %d, T %g, top-%d, position %llu: not the plain argmax %d", shape, t, k,
                        (unsigned long long)s * 31, want);
        }
      }
  }
}
END_TEST

/* Gumbel(0, 1): mean Euler's gamma, variance pi^2 / 6 (standard errors
 * over 100,000 draws: 0.004 and 0.013), finite and inside its range. */
START_TEST(gumbel_noise) {
  double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < DRAWS; i++) {
    double g = rt_sample_gumbel_noise(4, 1, (uint64_t)i / 64, i % 64);
    if (!isfinite(g)) ck_abort_msg("noise %d not finite: %g", i, g);
    sum += g;
    sq += g * g;
    lo = fmin(lo, g);
    hi = fmax(hi, g);
  }
  double mean = sum / DRAWS, var = sq / DRAWS - mean * mean;
  ck_assert_double_eq_tol(mean, 0.5772156649, 0.02);
  ck_assert_double_eq_tol(var, M_PI * M_PI / 6, 0.07);
  ck_assert(lo > -3.2 && hi < 23);
  ck_assert(lo < -2 && hi > 8); /* both tails reached */
}
END_TEST

/* A draw is a function of (seed, row, position): the same again and in
 * reverse call order; another seed, row or position (also in the high
 * words) gives another stream. */
START_TEST(gumbel_determinism) {
  enum { N = 512, P = 300 };
  float l[N], scratch[N];
  for (int i = 0; i < N; i++) l[i] = (float)cos(i * 0.37) * 0.1f; /* nearly flat: 1/512 chance of a match */
  RtSampleOptions o = opts(1, 0, RT_SAMPLER_GUMBEL);
  int first[P];
  for (int s = 0; s < P; s++) first[s] = rt_sample_gumbel(l, N, &o, 11, 2, (uint64_t)s, scratch);
  for (int s = P - 1; s >= 0; s--)
    if (rt_sample_gumbel(l, N, &o, 11, 2, (uint64_t)s, scratch) != first[s]) ck_abort_msg("position %d drew another token", s);
  int same_seed = 0, same_row = 0, same_pos = 0, same_hi = 0, same_rowhi = 0;
  for (int s = 0; s < P; s++) {
    same_seed += rt_sample_gumbel(l, N, &o, 12, 2, (uint64_t)s, scratch) == first[s];
    same_row += rt_sample_gumbel(l, N, &o, 11, 3, (uint64_t)s, scratch) == first[s];
    same_pos += rt_sample_gumbel(l, N, &o, 11, 2, (uint64_t)s + P, scratch) == first[s];
    same_hi += rt_sample_gumbel(l, N, &o, 11, 2, (uint64_t)s + (1ull << 32), scratch) == first[s];
    same_rowhi += rt_sample_gumbel(l, N, &o, 11, 2 + (1ull << 32), (uint64_t)s, scratch) == first[s];
  }
  /* ~0.6 matches expected by chance each */
  ck_assert_msg(same_seed < 10 && same_row < 10 && same_pos < 10 && same_hi < 10 && same_rowhi < 10,
                "matches: seed %d, row %d, position %d, high words %d / %d", same_seed, same_row, same_pos, same_hi,
                same_rowhi);
  /* the noise is its own stream, not the inverse CDF's uniform */
  ck_assert(rt_sample_gumbel_noise(11, 2, 5, 0) == rt_sample_gumbel_noise(11, 2, 5, 0));
  ck_assert(rt_sample_gumbel_noise(11, 2, 5, 0) != rt_sample_gumbel_noise(11, 2, 5, 1));
  ck_assert(rt_sample_gumbel_noise(11, 2, 5, 3) != rt_sample_gumbel_noise(11, 2, 5, 4));
  /* rt_sample_draw: the default (zero) is Gumbel-max; CDF is the uniform's */
  RtSampleOptions z = {.temperature = 1};
  RtSampleOptions c = opts(1, 0, RT_SAMPLER_CDF);
  for (uint64_t s = 0; s < 50; s++) {
    ck_assert_int_eq(rt_sample_draw(l, N, &z, 11, 2, s, scratch), first[s]);
    ck_assert_int_eq(rt_sample_draw(l, N, &c, 11, 2, s, scratch),
                     rt_sample_token(l, N, &c, rt_sample_uniform(11, 2, s), scratch));
  }
}
END_TEST

START_TEST(uniform_stream) {
  double sum = 0, lo = 1, hi = 0;
  for (uint64_t s = 0; s < 100000; s++) {
    double u = rt_sample_uniform(7, 3, s);
    if (!(u >= 0 && u < 1)) ck_abort_msg("uniform %g outside [0, 1)", u);
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
  RtSampleOptions o = opts(1, 0, RT_SAMPLER_CDF);
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

/* Gumbel-max: NaN and -inf never drawn (the two 0s half each: checked by
 * chi-square), nothing drawable gives -1, the first +inf always wins. */
START_TEST(gumbel_odd_logits) {
  float scratch[6];
  const float l[5] = {-INFINITY, 0, NAN, 0, -INFINITY};
  const double p[5] = {0, 0.5, 0, 0.5, 0};
  check_fit("NaN and -inf", l, 5, opts(1, 0, RT_SAMPLER_GUMBEL), p);
  RtSampleOptions o = opts(1, 1, RT_SAMPLER_GUMBEL);
  for (uint64_t s = 0; s < 200; s++)
    if (rt_sample_gumbel(l, 5, &o, 1, 0, s, scratch) != 1) ck_abort_msg("top-1 drew another than index 1");
  const float none[3] = {NAN, -INFINITY, NAN};
  for (int k = 0; k < 2; k++) {
    o = opts(1, k, RT_SAMPLER_GUMBEL);
    ck_assert_int_eq(rt_sample_gumbel(none, 3, &o, 1, 0, 0, scratch), -1);
    ck_assert_int_eq(rt_sample_gumbel(none, 0, &o, 1, 0, 0, scratch), -1);
  }
  const float inf[6] = {1, NAN, INFINITY, 2e38f, INFINITY, -INFINITY};
  for (int ti = 0; ti < 4; ti++)
    for (int k = 0; k < 3; k++) {
      o = opts((double[]){1, 1e-6, 1e6, 0}[ti], k, RT_SAMPLER_GUMBEL);
      for (uint64_t s = 0; s < 50; s++)
        if (rt_sample_gumbel(inf, 6, &o, 1, 0, s, scratch) != 2) ck_abort_msg("T %g, top-%d: not the first +inf", o.temperature, k);
    }
  /* the largest finite float at a tiny temperature stays finite in the score */
  const float big[3] = {-3e38f, 3e38f, 2.9e38f};
  o = opts(1e-30, 0, RT_SAMPLER_GUMBEL);
  for (uint64_t s = 0; s < 50; s++)
    if (rt_sample_gumbel(big, 3, &o, 1, 0, s, scratch) != 1) ck_abort_msg("3e38 at T = 1e-30: not greedy");
}
END_TEST

int main(void) {
  Suite *s = suite_create("sample");
  TCase *tc = tcase_create("sample");
  tcase_add_test(tc, greedy);
  tcase_add_test(tc, cold_is_greedy);
  tcase_add_test(tc, frequencies);
  tcase_add_test(tc, frequencies_wide);
  tcase_add_test(tc, pruning_is_exact);
  tcase_add_test(tc, gumbel_noise);
  tcase_add_test(tc, gumbel_determinism);
  tcase_add_test(tc, uniform_stream);
  tcase_add_test(tc, ends_and_odd_logits);
  tcase_add_test(tc, gumbel_odd_logits);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
