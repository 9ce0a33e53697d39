/* ref_reduce.c — reference kernels for reductions: sum and max over a set of
 * axes, argmax, softmax and log_softmax along one axis. Accumulation is in
 * double (int64 for i32 sums). */
#include <math.h>

#include "ir/ref/ref_kernels.h"

/* How a reduction walks x (dim): the kept and the reduced axes, each in
 * order, and x's row-major strides. Output element o is the kept axes'
 * multi-index of o; the elements reduced into it are base(o) + offset(r)
 * for every multi-index r over the reduced axes. */
typedef struct {
  int kept[IR_MAX_RANK], nkept;
  int red[IR_MAX_RANK], nred;
  int64_t stride[IR_MAX_RANK]; /* x's strides, (rank) */
  const int64_t *dim;          /* x's dims, (rank) */
  int64_t nout, nreduce;       /* element counts of the kept and reduced spaces */
} ReduceWalk;

static ReduceWalk walk_make(const int64_t *dim, int rank, uint32_t axes) {
  ReduceWalk w = {.dim = dim, .nout = 1, .nreduce = 1};
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    w.stride[i] = s;
    s *= dim[i];
  }
  for (int i = 0; i < rank; i++) {
    if (axes & (1u << i)) {
      w.red[w.nred++] = i;
      w.nreduce *= dim[i];
    } else {
      w.kept[w.nkept++] = i;
      w.nout *= dim[i];
    }
  }
  return w;
}

/* Offset in x of the flat position 'flat' of the space spanned by 'axes'. */
static int64_t walk_offset(const ReduceWalk *w, const int *axes, int naxes, int64_t flat) {
  int64_t off = 0;
  for (int k = naxes - 1; k >= 0; k--) {
    int64_t d = w->dim[axes[k]];
    off += (flat % d) * w->stride[axes[k]];
    flat /= d;
  }
  return off;
}

void ref_sum_f32(float *out, const float *x, const int64_t *dim, int rank, uint32_t axes) {
  ReduceWalk w = walk_make(dim, rank, axes);
  for (int64_t o = 0; o < w.nout; o++) {
    int64_t base = walk_offset(&w, w.kept, w.nkept, o);
    double acc = 0;
    for (int64_t r = 0; r < w.nreduce; r++) acc += (double)x[base + walk_offset(&w, w.red, w.nred, r)];
    out[o] = (float)acc;
  }
}

void ref_sum_i32(int32_t *out, const int32_t *x, const int64_t *dim, int rank, uint32_t axes) {
  ReduceWalk w = walk_make(dim, rank, axes);
  for (int64_t o = 0; o < w.nout; o++) {
    int64_t base = walk_offset(&w, w.kept, w.nkept, o);
    uint64_t acc = 0; /* unsigned: the sum wraps to 32 bits like numpy's int32 */
    for (int64_t r = 0; r < w.nreduce; r++)
      acc += (uint64_t)(int64_t)x[base + walk_offset(&w, w.red, w.nred, r)];
    out[o] = (int32_t)(uint32_t)acc;
  }
}

/* A NaN anywhere makes the maximum NaN (numpy's max, torch.amax). */
void ref_reduce_max_f32(float *out, const float *x, const int64_t *dim, int rank, uint32_t axes) {
  ReduceWalk w = walk_make(dim, rank, axes);
  for (int64_t o = 0; o < w.nout; o++) {
    int64_t base = walk_offset(&w, w.kept, w.nkept, o);
    double m = -INFINITY;
    for (int64_t r = 0; r < w.nreduce; r++) {
      double v = (double)x[base + walk_offset(&w, w.red, w.nred, r)];
      if (isnan(v) || v > m) m = v;
      if (isnan(m)) break;
    }
    out[o] = (float)m;
  }
}

void ref_reduce_max_i32(int32_t *out, const int32_t *x, const int64_t *dim, int rank, uint32_t axes) {
  ReduceWalk w = walk_make(dim, rank, axes);
  for (int64_t o = 0; o < w.nout; o++) {
    int64_t base = walk_offset(&w, w.kept, w.nkept, o);
    int32_t m = INT32_MIN;
    for (int64_t r = 0; r < w.nreduce; r++) {
      int32_t v = x[base + walk_offset(&w, w.red, w.nred, r)];
      if (v > m) m = v;
    }
    out[o] = m;
  }
}

/* x is (outer, n, inner), out (outer, inner). */
void ref_argmax_f32(int32_t *out, const float *x, int64_t outer, int64_t n, int64_t inner) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const float *row = x + o * n * inner + i;
      float best = row[0];
      int64_t at = 0;
      for (int64_t j = 1; j < n && !isnan(best); j++) {
        float v = row[j * inner];
        if (isnan(v) || v > best) { /* strictly greater: the first maximum wins */
          best = v;
          at = j;
        }
      }
      out[o * inner + i] = (int32_t)at;
    }
}

void ref_argmax_i32(int32_t *out, const int32_t *x, int64_t outer, int64_t n, int64_t inner) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const int32_t *row = x + o * n * inner + i;
      int64_t at = 0;
      for (int64_t j = 1; j < n; j++)
        if (row[j * inner] > row[at * inner]) at = j;
      out[o * inner + i] = (int32_t)at;
    }
}

/* Shared by softmax and log_softmax: for the row starting at 'row' with
 * stride 'inner', its maximum and sum_j exp(x_j - max). Subtracting the
 * maximum keeps exp from overflowing. */
static void row_stats(const float *row, int64_t n, int64_t inner, double *max, double *sumexp) {
  double m = -INFINITY;
  for (int64_t j = 0; j < n; j++)
    if ((double)row[j * inner] > m) m = (double)row[j * inner];
  double s = 0;
  for (int64_t j = 0; j < n; j++) s += exp((double)row[j * inner] - m);
  *max = m;
  *sumexp = s;
}

/* x, out are (outer, n, inner). */
void ref_softmax(float *out, const float *x, int64_t outer, int64_t n, int64_t inner) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t base = o * n * inner + i;
      double m, s;
      row_stats(x + base, n, inner, &m, &s);
      for (int64_t j = 0; j < n; j++) out[base + j * inner] = (float)(exp((double)x[base + j * inner] - m) / s);
    }
}

void ref_log_softmax(float *out, const float *x, int64_t outer, int64_t n, int64_t inner) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t base = o * n * inner + i;
      double m, s;
      row_stats(x + base, n, inner, &m, &s);
      double logs = log(s);
      for (int64_t j = 0; j < n; j++) out[base + j * inner] = (float)(((double)x[base + j * inner] - m) - logs);
    }
}
