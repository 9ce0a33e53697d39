/* safetensors.h — checkpoints in the safetensors format.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"format": "pt"},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
 * then the data buffer; offsets are relative to the buffer's start.
 *
 * dal reads and writes the dtypes F32 and I32 only. Reading validates what
 * the reference implementation validates: the header length against the
 * file size, the JSON, each tensor's dtype, shape and offsets (inside the
 * buffer, size equal to shape * dtype size), unique names, and that the
 * tensors tile the buffer exactly (no gaps, no overlaps). "__metadata__" must
 * be a string-to-string map and is otherwise ignored. Every error message
 * starts with the path and names the tensor where there is one.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_SAFETENSORS_H
#define DAL_RT_SAFETENSORS_H

#include "runtime/core/rt_error.h"
#include "runtime/core/tensor.h"

/* Reads 'path' into a new list (*out, owned by the caller) in data-buffer
 * order, which is the order rt_safetensors_write wrote them in. On failure
 * *out is NULL and -1 is returned. */
int rt_safetensors_read(const char *path, RtTensorList **out, RtErr *e);
/* Writes 'l' in list order, with the header padded with spaces to a multiple
 * of 8 bytes, atomically (see fileio.h). Names must be unique and not
 * "__metadata__". */
int rt_safetensors_write(const char *path, const RtTensorList *l, RtErr *e);

/* ---- string metadata (the "__metadata__" map) ----
 * Keys keep their insertion order; rt_meta_set replaces the value of an
 * existing key. The map owns copies of its strings. */
typedef struct {
  int n;
  char **key, **value; /* (n) */
} RtMeta;

RtMeta *rt_meta_new(void);
void rt_meta_set(RtMeta *m, const char *key, const char *value);
/* The value of 'key', or NULL (also when m is NULL). */
const char *rt_meta_get(const RtMeta *m, const char *key);
void rt_meta_free(RtMeta *m); /* NULL is a no-op */

/* rt_safetensors_read that also returns the header's metadata in *meta
 * (a new map the caller frees; meta may be NULL). On failure both *out and
 * *meta are NULL. */
int rt_safetensors_read_meta(const char *path, RtTensorList **out, RtMeta **meta, RtErr *e);
/* rt_safetensors_write with metadata: "format" is "pt" unless meta sets it,
 * then meta's other keys in order. meta may be NULL. */
int rt_safetensors_write_meta(const char *path, const RtTensorList *l, const RtMeta *meta, RtErr *e);

#endif
