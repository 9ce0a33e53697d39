/* sample.c — temperature / top-k sampling of a token: Gumbel-max and the
 * inverse CDF (see sample.h). */
#include "runtime/sample/sample.h"

#include <math.h>
#include <stdbool.h>

#include "runtime/core/rng.h"

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

/* ---- shared: greedy, top-k cut --------------------------------------------- */

/* The first largest drawable logit's index (-1 if none); *drawn gets the
 * count of drawable logits. */
static int first_largest(const float *l, int n, int *drawn) {
  int best = -1, m = 0;
  for (int i = 0; i < n; i++)
    if (drawable(l[i])) {
      m++;
      if (best < 0 || l[i] > l[best]) best = i;
    }
  *drawn = m;
  return best;
}

/* The top-k cut: *cut_index = n (keep all) unless 0 < k < drawn. */
static void top_k_cut(const float *l, int n, int k, int drawn, float *scratch, float *cut, int *cut_index) {
  *cut = -INFINITY;
  *cut_index = n;
  if (k > 0 && k < drawn) kth(l, n, k - 1, scratch, cut, cut_index);
}

/* Whether logit l[i] is kept: drawable and ranking no later than the cut. */
static bool kept(float x, int i, float cut, int cut_index, int n) {
  return drawable(x) && (cut_index == n || before(x, i, cut, cut_index) || i == cut_index);
}

/* ---- Gumbel-max ---------------------------------------------------------------- */

#define GUMBEL_TAG 0x474D424Cu /* counter word 2 of the Gumbel stream ("GMBL") */
#define LN2 0.69314718055994530942
/* The largest noise: U <= 1 - 2^-33 gives G <= 33 ln 2 (plus a margin for rounding). */
#define GUMBEL_MAX (33 * LN2 + 1e-9)

/* Class i's Philox word: block i / 4 of the stream, word i % 4 (one
 * class at a time; rt_sample_gumbel computes 4 blocks at once). */
typedef struct {
  uint32_t key[2], ctr[4], word[4];
  int64_t block; /* the block in word[], -1: none yet */
} Noise;

static void noise_init(Noise *s, uint64_t seed, uint64_t row, uint64_t position) {
  uint32_t ph = (uint32_t)(position >> 32);
  *s = (Noise){.key = {(uint32_t)seed, (uint32_t)(seed >> 32)},
               .ctr = {0, (uint32_t)row, GUMBEL_TAG ^ (uint32_t)(row >> 32) ^ (ph << 16 | ph >> 16), (uint32_t)position},
               .block = -1};
}

static uint32_t noise_word(Noise *s, int i) {
  if (i >> 2 != s->block) {
    s->block = i >> 2;
    s->ctr[0] = (uint32_t)(i >> 2);
    rt_philox4x32_10(s->ctr, s->key, s->word);
  }
  return s->word[i & 3];
}

/* G = -log(-log U), U = (w + 0.5) 2^-32 strictly inside (0, 1). */
static double gumbel_of(uint32_t w) { return -log(-log(((double)w + 0.5) * 0x1p-32)); }

/* An upper bound of gumbel_of(w) without a logarithm. With q = 2^32 - w in
 * [1, 2^32], 1 - U = (q - 0.5) 2^-32 >= 2^(floor(log2 q) - 33), and
 * -log U >= 1 - U, so G <= -log(1 - U) <= (33 - floor(log2 q)) ln 2
 * = (clz64(q) - 30) ln 2. Slack: at least (1 - U) / 2, well above rounding. */
static double gumbel_bound(uint32_t w) { return (__builtin_clzll((1ull << 32) - w) - 30) * LN2 + 1e-9; }

double rt_sample_gumbel_noise(uint64_t seed, uint64_t row, uint64_t position, int cls) {
  Noise s;
  noise_init(&s, seed, row, position);
  return gumbel_of(noise_word(&s, cls));
}

int rt_sample_gumbel(const float *logits, int n, const RtSampleOptions *o, uint64_t seed, uint64_t row,
                     uint64_t position, float *scratch) {
  int drawn, best = first_largest(logits, n, &drawn);
  if (best < 0 || !(o->temperature > 0) || isinf(logits[best])) return best; /* +inf takes all the mass */
  float cut;
  int cut_index;
  top_k_cut(logits, n, o->top_k, drawn, scratch, &cut, &cut_index);
  double inv_t = 1.0 / o->temperature;
  Noise s;
  noise_init(&s, seed, row, position);
  /* The largest logit first: its score prunes the most (seen again in
   * its chunk, it ties with itself and changes nothing). */
  int win = best;
  double top = logits[best] * inv_t + gumbel_of(noise_word(&s, best));
  /* Then chunks of 16 classes: 4 Philox blocks computed together when a
   * class of the chunk could still win with the largest noise. Rounding
   * is monotone, so a + G <= a + bound: skipping when that is below the
   * best never skips a winner (nor a tie). Without top-k every class is a
   * candidate: -inf fails the bound, NaN compares false and never wins. */
  bool cut_all = cut_index == n;
  for (int c = 0; c < n; c += 16) {
    int end = n - c < 16 ? n : c + 16;
    float most = -INFINITY;
    for (int i = c; i < end; i++)
      if (logits[i] > most && (cut_all || kept(logits[i], i, cut, cut_index, n))) most = logits[i];
    if (most == -INFINITY || most * inv_t + GUMBEL_MAX < top) continue;
    uint32_t word[4][4];
    s.ctr[0] = (uint32_t)(c >> 2);
    rt_philox4x32_10_x4(s.ctr, s.key, word);
    for (int i = c; i < end; i++) {
      double a = logits[i] * inv_t;
      uint32_t w = word[(i - c) >> 2][i & 3];
      if (a + gumbel_bound(w) < top || !(cut_all || kept(logits[i], i, cut, cut_index, n))) continue;
      double score = a + gumbel_of(w);
      if (score > top || (score == top && i < win)) {
        top = score;
        win = i;
      }
    }
  }
  return win;
}

/* ---- inverse CDF --------------------------------------------------------------- */

#define SAMPLE_TAG 0x534D504Cu /* counter word 2 of the sampling stream ("SMPL") */

double rt_sample_uniform(uint64_t seed, uint64_t row, uint64_t step) {
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  uint32_t ctr[4] = {(uint32_t)row, (uint32_t)(row >> 32), SAMPLE_TAG ^ (uint32_t)(step >> 32), (uint32_t)step},
           out[4];
  rt_philox4x32_10(ctr, key, out);
  /* 53 random bits */
  return (double)(((uint64_t)out[0] << 21) ^ (out[1] >> 11)) / 9007199254740992.0;
}

int rt_sample_token(const float *logits, int n, const RtSampleOptions *o, double u, float *scratch) {
  int drawn, best = first_largest(logits, n, &drawn);
  if (best < 0 || !(o->temperature > 0) || isinf(logits[best])) return best; /* +inf takes all the mass */
  float cut;
  int cut_index;
  top_k_cut(logits, n, o->top_k, drawn, scratch, &cut, &cut_index);
  double total = 0, inv_t = 1.0 / o->temperature, top = logits[best];
  for (int i = 0; i < n; i++) {
    double p = kept(logits[i], i, cut, cut_index, n) ? exp(((double)logits[i] - top) * inv_t) : 0;
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

int rt_sample_draw(const float *logits, int n, const RtSampleOptions *o, uint64_t seed, uint64_t row,
                   uint64_t position, float *scratch) {
  if (o->sampler == RT_SAMPLER_CDF)
    return rt_sample_token(logits, n, o, rt_sample_uniform(seed, row, position), scratch);
  return rt_sample_gumbel(logits, n, o, seed, row, position, scratch);
}
