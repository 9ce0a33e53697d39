/* ref_nn.c — reference kernels for the compute-heavy ops: matmul, direct
 * conv2d and conv_transpose2d, group_norm, layer_norm and cross_entropy.
 * Every sum is accumulated in double; variances are two-pass (mean first),
 * which is exact enough to serve as an oracle. */
#include <math.h>

#include "ir/ref/ref_kernels.h"

/* out (B, M, N); a (B, M, K) or (B, K, M) if trans_a; b (K, N) or (N, K) if
 * trans_b, per batch unless b_shared. */
void ref_matmul(float *out, const float *a, const float *b, int64_t B, int64_t M, int64_t K, int64_t N,
                int trans_a, int trans_b, int b_shared) {
  for (int64_t bt = 0; bt < B; bt++) {
    const float *ab = a + bt * M * K;
    const float *bb = b_shared ? b : b + bt * K * N;
    float *ob = out + bt * M * N;
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++) {
          double av = trans_a ? ab[k * M + i] : ab[i * K + k];
          double bv = trans_b ? bb[j * K + k] : bb[k * N + j];
          acc += av * bv;
        }
        ob[i * N + j] = (float)acc;
      }
  }
}

/* out (N, O, OH, OW), x (N, C, H, W), w (O, C, KH, KW):
 * out[n,o,y,x'] = sum_{c,ky,kx} x[n, c, y*s - p + ky, x'*s - p + kx] * w[o, c, ky, kx],
 * reading zero outside x. */
void ref_conv2d(float *out, const float *x, const float *w, int64_t N, int64_t C, int64_t H, int64_t W,
                int64_t O, int64_t KH, int64_t KW, int s, int p) {
  int64_t OH = (H + 2 * p - KH) / s + 1, OW = (W + 2 * p - KW) / s + 1;
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
          double acc = 0;
          for (int64_t c = 0; c < C; c++)
            for (int64_t ky = 0; ky < KH; ky++) {
              int64_t iy = oy * s - p + ky;
              if (iy < 0 || iy >= H) continue;
              for (int64_t kx = 0; kx < KW; kx++) {
                int64_t ix = ox * s - p + kx;
                if (ix < 0 || ix >= W) continue;
                acc += (double)x[((n * C + c) * H + iy) * W + ix] * (double)w[((o * C + c) * KH + ky) * KW + kx];
              }
            }
          out[((n * O + o) * OH + oy) * OW + ox] = (float)acc;
        }
}

/* dw (O, C, KH, KW), x (N, C, H, W), dy (N, O, OH, OW):
 * dw[o,c,ky,kx] = sum_{n,y,x'} dy[n,o,y,x'] * x[n, c, y*s - p + ky, x'*s - p + kx],
 * the taps that read padding contributing nothing. */
void ref_conv2d_backward_weight(float *dw, const float *x, const float *dy, int64_t N, int64_t C, int64_t H,
                                int64_t W, int64_t O, int64_t KH, int64_t KW, int s, int p) {
  int64_t OH = (H + 2 * p - KH) / s + 1, OW = (W + 2 * p - KW) / s + 1;
  for (int64_t o = 0; o < O; o++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t ky = 0; ky < KH; ky++)
        for (int64_t kx = 0; kx < KW; kx++) {
          double acc = 0;
          for (int64_t n = 0; n < N; n++)
            for (int64_t oy = 0; oy < OH; oy++) {
              int64_t iy = oy * s - p + ky;
              if (iy < 0 || iy >= H) continue;
              for (int64_t ox = 0; ox < OW; ox++) {
                int64_t ix = ox * s - p + kx;
                if (ix < 0 || ix >= W) continue;
                acc += (double)dy[((n * O + o) * OH + oy) * OW + ox] * (double)x[((n * C + c) * H + iy) * W + ix];
              }
            }
          dw[((o * C + c) * KH + ky) * KW + kx] = (float)acc;
        }
}

/* The input position that tap k of a transposed conv sends to output
 * position 'o' (the transposed conv scatters x[i] to o = i*s - p + k), or -1
 * if there is none inside [0, size). */
static int64_t tconv_source(int64_t o, int64_t k, int s, int p, int64_t size) {
  int64_t t = o + p - k;
  if (t < 0 || t % s != 0) return -1;
  return t / s < size ? t / s : -1;
}

/* out (N, O, OH, OW), x (N, C, H, W), w (C, O, KH, KW). Written as a gather
 * over the taps that land on each output, so each output has one double sum. */
void ref_conv_transpose2d(float *out, const float *x, const float *w, int64_t N, int64_t C, int64_t H,
                          int64_t W, int64_t O, int64_t KH, int64_t KW, int s, int p) {
  int64_t OH = (H - 1) * s - 2 * p + KH, OW = (W - 1) * s - 2 * p + KW;
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
          double acc = 0;
          for (int64_t c = 0; c < C; c++)
            for (int64_t ky = 0; ky < KH; ky++) {
              int64_t iy = tconv_source(oy, ky, s, p, H);
              if (iy < 0) continue;
              for (int64_t kx = 0; kx < KW; kx++) {
                int64_t ix = tconv_source(ox, kx, s, p, W);
                if (ix < 0) continue;
                acc += (double)x[((n * C + c) * H + iy) * W + ix] * (double)w[((c * O + o) * KH + ky) * KW + kx];
              }
            }
          out[((n * O + o) * OH + oy) * OW + ox] = (float)acc;
        }
}

/* Mean and biased variance of x[0 .. count). */
static void mean_var(const float *x, int64_t count, double *mean, double *var) {
  double m = 0, v = 0;
  for (int64_t i = 0; i < count; i++) m += (double)x[i];
  m /= (double)count;
  for (int64_t i = 0; i < count; i++) v += ((double)x[i] - m) * ((double)x[i] - m);
  *mean = m;
  *var = v / (double)count;
}

/* out, x (N, C, S), gamma, beta (C); G groups of C/G consecutive channels,
 * each group of one sample normalised over its (C/G)*S values. */
void ref_group_norm(float *out, const float *x, const float *gamma, const float *beta, int64_t N, int64_t C,
                    int64_t S, int G, float eps) {
  int64_t cg = C / G;
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < G; g++) {
      int64_t base = (n * C + g * cg) * S; /* a group's channels are contiguous */
      double mean, var;
      mean_var(x + base, cg * S, &mean, &var);
      double rstd = 1.0 / sqrt(var + (double)eps);
      for (int64_t c = g * cg; c < (g + 1) * cg; c++)
        for (int64_t i = 0; i < S; i++) {
          int64_t at = (n * C + c) * S + i;
          out[at] = (float)(((double)x[at] - mean) * rstd * (double)gamma[c] + (double)beta[c]);
        }
    }
}

/* out, x (R, C), gamma, beta (C). */
void ref_layer_norm(float *out, const float *x, const float *gamma, const float *beta, int64_t R, int64_t C,
                    float eps) {
  for (int64_t r = 0; r < R; r++) {
    const float *row = x + r * C;
    double mean, var;
    mean_var(row, C, &mean, &var);
    double rstd = 1.0 / sqrt(var + (double)eps);
    for (int64_t c = 0; c < C; c++)
      out[r * C + c] = (float)(((double)row[c] - mean) * rstd * (double)gamma[c] + (double)beta[c]);
  }
}

/* out (R), logits (R, V), target (R): -log_softmax(logits[r])[target[r]]. */
int64_t ref_cross_entropy(float *out, const float *logits, const int32_t *target, int64_t R, int64_t V) {
  for (int64_t r = 0; r < R; r++) {
    const float *row = logits + r * V;
    if (target[r] < 0 || target[r] >= V) return r;
    double m = -INFINITY, s = 0;
    for (int64_t v = 0; v < V; v++)
      if ((double)row[v] > m) m = (double)row[v];
    for (int64_t v = 0; v < V; v++) s += exp((double)row[v] - m);
    out[r] = (float)(log(s) - ((double)row[target[r]] - m));
  }
  return -1;
}
