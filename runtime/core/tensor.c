/* tensor.c — dense tensors and named tensor lists (see tensor.h). */
#include "runtime/core/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_ALIGN 64

size_t rt_dtype_size(RtDType t) {
  switch (t) {
  case RT_F32: return 4;
  case RT_I32: return 4;
  }
  return 0;
}

const char *rt_dtype_name(RtDType t) {
  switch (t) {
  case RT_F32: return "f32";
  case RT_I32: return "i32";
  }
  return "?";
}

char *rt_shape_str(int rank, const int64_t *dim, char *buf, size_t size) {
  if (size == 0) return buf;
  size_t len = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < rank && len < size; i++)
    len += (size_t)snprintf(buf + len, size - len, i ? ", %lld" : "%lld", (long long)dim[i]);
  if (len < size) snprintf(buf + len, size - len, "]");
  return buf;
}

/* Out-of-range ranks and negative or overflowing sizes are rejected here,
 * so every RtTensor in existence has numel * dtype size <= SIZE_MAX - 64. */
RtTensor *rt_tensor_new(RtDType t, int rank, const int64_t *dim, RtErr *e) {
  size_t esize = rt_dtype_size(t);
  if (esize == 0) {
    rt_err(e, "invalid tensor dtype %d", (int)t);
    return NULL;
  }
  if (rank < 0 || rank > RT_MAX_RANK) {
    rt_err(e, "tensor rank %d is outside 0..%d", rank, RT_MAX_RANK);
    return NULL;
  }
  char sbuf[160];
  size_t bytes = esize;
  for (int i = 0; i < rank; i++) {
    if (dim[i] < 0) {
      rt_err(e, "tensor shape %s has a negative dimension", rt_shape_str(rank, dim, sbuf, sizeof sbuf));
      return NULL;
    }
    if (dim[i] > 0 && bytes > (SIZE_MAX - RT_ALIGN) / (uint64_t)dim[i]) {
      rt_err(e, "tensor shape %s is too large (size overflows)", rt_shape_str(rank, dim, sbuf, sizeof sbuf));
      return NULL;
    }
    bytes *= (size_t)dim[i];
  }
  if (bytes > (size_t)INT64_MAX) {
    rt_err(e, "tensor shape %s is too large", rt_shape_str(rank, dim, sbuf, sizeof sbuf));
    return NULL;
  }
  RtTensor *x = calloc(1, sizeof *x);
  /* aligned_alloc wants a multiple of the alignment; an empty tensor still
   * gets a valid (one-block) pointer. */
  size_t alloc = (bytes + RT_ALIGN - 1) / RT_ALIGN * RT_ALIGN;
  if (alloc == 0) alloc = RT_ALIGN;
  void *data = x ? aligned_alloc(RT_ALIGN, alloc) : NULL;
  if (!data) {
    free(x);
    rt_err(e, "out of memory allocating a %s tensor of shape %s (%zu bytes)", rt_dtype_name(t),
           rt_shape_str(rank, dim, sbuf, sizeof sbuf), bytes);
    return NULL;
  }
  memset(data, 0, alloc);
  x->dtype = t;
  x->rank = rank;
  for (int i = 0; i < rank; i++) x->dim[i] = dim[i];
  x->data = data;
  return x;
}

void rt_tensor_free(RtTensor *t) {
  if (!t) return;
  free(t->data);
  free(t);
}

int64_t rt_tensor_numel(const RtTensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dim[i];
  return n;
}

size_t rt_tensor_bytes(const RtTensor *t) {
  return (size_t)rt_tensor_numel(t) * rt_dtype_size(t->dtype);
}

/* ---- named lists ---- */

/* rt_list_put cannot report failure, so running out of memory there is
 * fatal (it is not bad input). */
static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fprintf(stderr, "dal runtime: out of memory\n");
    abort();
  }
  return q;
}

RtTensorList *rt_list_new(void) {
  RtTensorList *l = xrealloc(NULL, sizeof *l);
  memset(l, 0, sizeof *l);
  return l;
}

static int list_find(const RtTensorList *l, const char *name) {
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->name[i], name) == 0) return i;
  return -1;
}

void rt_list_put(RtTensorList *l, const char *name, RtTensor *t) {
  int i = list_find(l, name);
  if (i >= 0) {
    if (l->tensor[i] != t) rt_tensor_free(l->tensor[i]);
    l->tensor[i] = t;
    return;
  }
  rt_list_append(l, name, t);
}

void rt_list_append(RtTensorList *l, const char *name, RtTensor *t) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 8;
    l->name = xrealloc(l->name, (size_t)l->cap * sizeof *l->name);
    l->tensor = xrealloc(l->tensor, (size_t)l->cap * sizeof *l->tensor);
  }
  size_t len = strlen(name) + 1;
  l->name[l->n] = memcpy(xrealloc(NULL, len), name, len);
  l->tensor[l->n] = t;
  l->n++;
}

RtTensor *rt_list_get(const RtTensorList *l, const char *name) {
  int i = list_find(l, name);
  return i >= 0 ? l->tensor[i] : NULL;
}

void rt_list_free(RtTensorList *l) {
  if (!l) return;
  for (int i = 0; i < l->n; i++) {
    free(l->name[i]);
    rt_tensor_free(l->tensor[i]);
  }
  free(l->name);
  free(l->tensor);
  free(l);
}

uint32_t rt_name_hash(const char *name) {
  uint32_t h = 2166136261u; /* FNV-1a offset basis */
  for (const unsigned char *s = (const unsigned char *)name; *s; s++) h = (h ^ *s) * 16777619u; /* FNV prime */
  return h;
}
