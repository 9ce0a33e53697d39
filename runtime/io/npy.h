/* npy.h — NumPy .npy files (format versions 1.0, 2.0 and 3.0).
 *
 * Reading accepts C-order arrays of rank <= RT_MAX_RANK in these
 * little-endian dtypes:
 *   <f4 (as is), <f8 and <f2 -> f32 (a finite f8 value too large for f32 is
 *   an error);
 *   <i4 (as is), <i8 <i2 |i1 <u8 <u4 <u2 |u1 |b1 -> i32 (a value outside the
 *   i32 range is an error).
 * Anything else (big-endian, Fortran order, structured or object arrays,
 * truncated or padded files) is an error whose message starts with the path.
 * Writing produces a version 1.0 file with dtype <f4 or <i4, atomically
 * (see fileio.h).
 * Module prefix: rt_.
 */
#ifndef DAL_RT_NPY_H
#define DAL_RT_NPY_H

#include "runtime/core/rt_error.h"
#include "runtime/core/tensor.h"

/* Reads 'path' into a new tensor (*out, owned by the caller). On failure *out
 * is NULL and -1 is returned. */
int rt_npy_read(const char *path, RtTensor **out, RtErr *e);
/* Writes 't' to 'path' (replacing any old file only once fully written). */
int rt_npy_write(const char *path, const RtTensor *t, RtErr *e);

#endif
