/* tensor.h — the runtime's dense tensors and named tensor lists.
 *
 * A tensor is row-major and contiguous, its data 64-byte aligned. The
 * runtime has its own dtype enum (it never includes the compiler's IR);
 * the values match IrDType so conversions are trivial.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_TENSOR_H
#define DAL_RT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/core/rt_error.h"

#define RT_MAX_RANK 6

typedef enum { RT_F32, RT_I32 } RtDType;

typedef struct {
  RtDType dtype;
  int rank;
  int64_t dim[RT_MAX_RANK];
  void *data; /* numel * rt_dtype_size(dtype) bytes, 64-byte aligned */
} RtTensor;

size_t rt_dtype_size(RtDType t);
const char *rt_dtype_name(RtDType t); /* "f32", "i32" */

/* A zero-filled tensor; NULL (with a message) if rank or size is invalid or
 * memory runs out. */
RtTensor *rt_tensor_new(RtDType t, int rank, const int64_t *dim, RtErr *e);
void rt_tensor_free(RtTensor *t);
int64_t rt_tensor_numel(const RtTensor *t);
size_t rt_tensor_bytes(const RtTensor *t);
/* Writes "[2, 3, 4]" into buf; returns buf. */
char *rt_shape_str(int rank, const int64_t *dim, char *buf, size_t size);

static inline float *rt_f32(const RtTensor *t) { return (float *)t->data; }
static inline int32_t *rt_i32(const RtTensor *t) { return (int32_t *)t->data; }

/* An ordered list of named tensors (what a safetensors file holds). The
 * list owns its names and tensors. */
typedef struct {
  int n, cap;
  char **name;
  RtTensor **tensor;
} RtTensorList;

RtTensorList *rt_list_new(void);
/* Appends (takes ownership of t); replaces an existing entry of that name. */
void rt_list_put(RtTensorList *l, const char *name, RtTensor *t);
/* Appends without looking for an entry of that name (the caller vouches
 * there is none): N appends cost O(N), N puts O(N^2). */
void rt_list_append(RtTensorList *l, const char *name, RtTensor *t);
/* The tensor of that name, or NULL. */
RtTensor *rt_list_get(const RtTensorList *l, const char *name);
void rt_list_free(RtTensorList *l);

/* FNV-1a (32 bits) of a tensor name: the key of name indexes, and of each
 * parameter's initialisation stream (init.h). */
uint32_t rt_name_hash(const char *name);

#endif
