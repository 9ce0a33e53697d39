/* fuzz_npy.c — a NumPy .npy file.
 *
 * Input: the file. An accepted array is written back (as <f4 or <i4) and
 * read again; the harness aborts if the data or shape changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/io/npy.h"
#include "tests/fuzz/fuzz.h"

#define NPY_MAX_INPUT 65536

int fuzz_npy(const uint8_t *data, size_t n) {
  if (n > NPY_MAX_INPUT) return FUZZ_SKIPPED;
  const char *path = fuzz_write("in.npy", data, n);
  if (!path) return FUZZ_SKIPPED;
  RtTensor *t = NULL;
  RtErr e = {{0}};
  if (rt_npy_read(path, &t, &e)) {
    if (t) abort(); /* the header promises NULL on failure */
    return fuzz_refused(e.msg);
  }
  RtTensor *back = NULL;
  path = fuzz_path("back.npy");
  if (rt_npy_write(path, t, &e) || rt_npy_read(path, &back, &e)) {
    fprintf(stderr, "fuzz_npy: cannot write and read back an array that was read: %s\n", e.msg);
    abort();
  }
  bool same = back->dtype == t->dtype && back->rank == t->rank;
  for (int i = 0; same && i < t->rank; i++) same = back->dim[i] == t->dim[i];
  if (!same || memcmp(back->data, t->data, rt_tensor_bytes(t)) != 0) {
    fputs("fuzz_npy: the array written back differs from the one read\n", stderr);
    abort();
  }
  rt_tensor_free(back);
  rt_tensor_free(t);
  return FUZZ_ACCEPTED;
}
