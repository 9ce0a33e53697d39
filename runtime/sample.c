/* sample.c — temperature / top-k sampling of a token (see sample.h). */
#include "sample.h"

#include <math.h>
#include <stdbool.h>

#include "rng.h"

#define SAMPLE_TAG 0x534D504Cu /* counter word 2 of the sampling stream ("SMPL") */

double rt_sample_uniform(uint64_t seed, uint64_t row, uint64_t step) {
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  uint32_t ctr[4] = {(uint32_t)row, (uint32_t)(row >> 32), SAMPLE_TAG ^ (uint32_t)(step >> 32), (uint32_t)step},
           out[4];
  rt_philox4x32_10(ctr, key, out);
  /* 53 random bits */
  return (double)(((uint64_t)out[0] << 21) ^ (out[1] >> 11)) / 9007199254740992.0;
}

static bool drawable(float x) { return !isnan(x) && x != -INFINITY; }

/* Whether logit a (at index i) ranks before b (at index j): larger first,
 * then the lower index. */
static bool before(float a, int i, float b, int j) { return a > b || (a == b && i < j); }

/* The logit ranked k-th (0-based: larger first, then the lower index)
 * among the drawable ones: its value and index. A selection on copies
 * finds the value in expected linear time; the index is then the
 * (k - #larger)-th of the logits equal to it. */
static void kth(const float *l, int n, int k, float *scratch, float *value, int *index) {
  int m = 0;
  for (int i = 0; i < n; i++)
    if (drawable(l[i])) scratch[m++] = l[i];
  int lo = 0, hi = m - 1;
  while (lo < hi) { /* quickselect: scratch[k] becomes the k-th largest */
    float pivot = scratch[(lo + hi) / 2];
    int a = lo, b = hi;
    while (a <= b) {
      while (scratch[a] > pivot) a++;
      while (scratch[b] < pivot) b--;
      if (a <= b) {
        float t = scratch[a];
        scratch[a++] = scratch[b];
        scratch[b--] = t;
      }
    }
    if (k <= b) hi = b;
    else if (k >= a) lo = a;
    else break;
  }
  float v = scratch[k];
  int larger = 0;
  for (int i = 0; i < n; i++) larger += drawable(l[i]) && l[i] > v;
  *value = v;
  *index = -1;
  for (int i = 0, seen = 0; i < n && *index < 0; i++)
    if (l[i] == v && seen++ == k - larger) *index = i;
}

int rt_sample_token(const float *logits, int n, const RtSampleOptions *o, double u, float *scratch) {
  int best = -1;
  for (int i = 0; i < n; i++)
    if (drawable(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
  if (best < 0 || o->temperature <= 0 || isinf(logits[best])) return best; /* +inf takes all the mass */
  int drawn = 0;
  for (int i = 0; i < n; i++) drawn += drawable(logits[i]);
  float cut = -INFINITY;
  int cut_index = n;
  if (o->top_k > 0 && o->top_k < drawn) kth(logits, n, o->top_k - 1, scratch, &cut, &cut_index);
  /* kept: drawable and ranking no later than the k-th */
  double total = 0, inv_t = 1.0 / o->temperature, top = logits[best];
  for (int i = 0; i < n; i++) {
    bool keep = drawable(logits[i]) && (cut_index == n || before(logits[i], i, cut, cut_index) || i == cut_index);
    double p = keep ? exp(((double)logits[i] - top) * inv_t) : 0;
    scratch[i] = (float)p;
    total += p;
  }
  double target = u * total, acc = 0;
  int last = best;
  for (int i = 0; i < n; i++) {
    if (scratch[i] <= 0) continue;
    acc += scratch[i];
    last = i;
    if (acc > target) return i;
  }
  return last; /* u so close to 1 that rounding ran past the end */
}
