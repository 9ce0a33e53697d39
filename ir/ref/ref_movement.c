/* ref_movement.c — reference kernels that move data: permute, broadcast,
 * slice, concat, gather, onehot, and the generators iota and fill. Each
 * output element is found by its multi-index, so every kernel reads as the
 * definition of its op. Elements are copied as 'es' bytes, whatever the dtype. */
#include <string.h>

#include "ir/ref/ref_kernels.h"

/* Row-major strides of dim (rank). */
static void strides_of(int64_t *stride, const int64_t *dim, int rank) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    stride[i] = s;
    s *= dim[i];
  }
}

static int64_t numel_of(const int64_t *dim, int rank) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= dim[i];
  return n;
}

/* The multi-index idx (rank) of row-major position 'flat' in dim. */
static void unravel(int64_t *idx, int64_t flat, const int64_t *dim, int rank) {
  for (int i = rank - 1; i >= 0; i--) {
    idx[i] = flat % dim[i];
    flat /= dim[i];
  }
}

static void copy_elem(void *out, int64_t o, const void *x, int64_t i, size_t es) {
  memcpy((char *)out + (size_t)o * es, (const char *)x + (size_t)i * es, es);
}

/* x is (dim), out is (dim[perm[0]], ..., dim[perm[rank-1]]). */
void ref_permute(void *out, const void *x, const int64_t *dim, const int *perm, int rank, size_t es) {
  int64_t xstride[IR_MAX_RANK], odim[IR_MAX_RANK], idx[IR_MAX_RANK];
  strides_of(xstride, dim, rank);
  for (int i = 0; i < rank; i++) odim[i] = dim[perm[i]];
  int64_t n = numel_of(odim, rank);
  for (int64_t o = 0; o < n; o++) {
    unravel(idx, o, odim, rank);
    int64_t at = 0;
    for (int i = 0; i < rank; i++) at += idx[i] * xstride[perm[i]];
    copy_elem(out, o, x, at, es);
  }
}

/* x is (xdim), out is (odim); an axis of size 1 in x is read at index 0. */
void ref_broadcast(void *out, const void *x, const int64_t *xdim, const int64_t *odim, int rank, size_t es) {
  int64_t xstride[IR_MAX_RANK], idx[IR_MAX_RANK];
  strides_of(xstride, xdim, rank);
  int64_t n = numel_of(odim, rank);
  for (int64_t o = 0; o < n; o++) {
    unravel(idx, o, odim, rank);
    int64_t at = 0;
    for (int i = 0; i < rank; i++) at += (xdim[i] == 1 ? 0 : idx[i]) * xstride[i];
    copy_elem(out, o, x, at, es);
  }
}

/* x is (dim), out is (stop[i] - start[i] for each axis i). */
void ref_slice(void *out, const void *x, const int64_t *dim, const int64_t *start, const int64_t *stop,
               int rank, size_t es) {
  int64_t xstride[IR_MAX_RANK], odim[IR_MAX_RANK], idx[IR_MAX_RANK];
  strides_of(xstride, dim, rank);
  for (int i = 0; i < rank; i++) odim[i] = stop[i] - start[i];
  int64_t n = numel_of(odim, rank);
  for (int64_t o = 0; o < n; o++) {
    unravel(idx, o, odim, rank);
    int64_t at = 0;
    for (int i = 0; i < rank; i++) at += (start[i] + idx[i]) * xstride[i];
    copy_elem(out, o, x, at, es);
  }
}

/* a (outer, na, inner), b (outer, nb, inner) -> out (outer, na+nb, inner). */
void ref_concat(void *out, const void *a, const void *b, int64_t outer, int64_t na, int64_t nb,
                int64_t inner, size_t es) {
  size_t abytes = (size_t)(na * inner) * es, bbytes = (size_t)(nb * inner) * es;
  char *o = out;
  for (int64_t i = 0; i < outer; i++) {
    /* An empty part's buffer may be NULL, which memcpy must not see. */
    if (abytes) memcpy(o, (const char *)a + (size_t)i * abytes, abytes);
    o += abytes;
    if (bbytes) memcpy(o, (const char *)b + (size_t)i * bbytes, bbytes);
    o += bbytes;
  }
}

/* table (V, row), idx (n) -> out (n, row). */
int64_t ref_gather(void *out, const void *table, const int32_t *idx, int64_t n, int64_t V, int64_t row,
                   size_t es) {
  size_t rbytes = (size_t)row * es;
  for (int64_t i = 0; i < n; i++) {
    if (idx[i] < 0 || idx[i] >= V) return i;
    memcpy((char *)out + (size_t)i * rbytes, (const char *)table + (size_t)idx[i] * rbytes, rbytes);
  }
  return -1;
}

/* idx (n), grad (n, row) -> table (V, row). The table is zeroed here (not
 * left to the caller) so the kernel stands alone. */
int64_t ref_gather_backward(float *table, const int32_t *idx, const float *grad, int64_t n, int64_t V, int64_t row) {
  for (int64_t i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= V) return i;
  for (int64_t i = 0; i < V * row; i++) table[i] = 0.0f;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < row; j++) table[idx[i] * row + j] += grad[i * row + j];
  return -1;
}

/* idx (outer, inner) -> out (outer, depth, inner). */
int64_t ref_onehot(float *out, const int32_t *idx, int64_t outer, int64_t depth, int64_t inner) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int32_t k = idx[o * inner + i];
      if (k < 0 || k >= depth) return o * inner + i;
      for (int64_t d = 0; d < depth; d++) out[(o * depth + d) * inner + i] = d == k ? 1.0f : 0.0f;
    }
  return -1;
}

/* out (outer, n, inner). */
void ref_iota(int32_t *out, int64_t outer, int64_t n, int64_t inner) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < n; j++)
      for (int64_t i = 0; i < inner; i++) out[(o * n + j) * inner + i] = (int32_t)j;
}

void ref_fill_f32(float *out, float value, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = value;
}

void ref_fill_i32(int32_t *out, int32_t value, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = value;
}
