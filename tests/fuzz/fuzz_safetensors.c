/* fuzz_safetensors.c — a .safetensors file (tensors and "__metadata__").
 *
 * Input: the file. What the reader accepts it must be able to write back
 * unchanged: the harness writes the tensors and metadata it read and reads
 * them again, and aborts if anything differs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/io/safetensors.h"
#include "tests/fuzz/fuzz.h"

#define ST_MAX_INPUT 65536

static bool same_tensor(const RtTensor *a, const RtTensor *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return memcmp(a->data, b->data, rt_tensor_bytes(a)) == 0;
}

/* Writes l and m, reads them back and checks they are the same. */
static void round_trip(const RtTensorList *l, const RtMeta *m) {
  RtErr e;
  const char *path = fuzz_path("back.safetensors");
  if (rt_safetensors_write_meta(path, l, m, &e)) return; /* a name the writer refuses ("__metadata__") */
  RtTensorList *l2 = NULL;
  RtMeta *m2 = NULL;
  if (rt_safetensors_read_meta(path, &l2, &m2, &e)) {
    fprintf(stderr, "fuzz_safetensors: cannot read back what was written: %s\n", e.msg);
    abort();
  }
  bool same = l2->n == l->n;
  for (int i = 0; same && i < l->n; i++)
    same = strcmp(l->name[i], l2->name[i]) == 0 && same_tensor(l->tensor[i], l2->tensor[i]);
  for (int i = 0; same && i < m->n; i++) {
    const char *v = rt_meta_get(m2, m->key[i]);
    same = v && strcmp(v, m->value[i]) == 0;
  }
  if (!same) {
    fputs("fuzz_safetensors: the file written back differs from the one read\n", stderr);
    abort();
  }
  rt_list_free(l2);
  rt_meta_free(m2);
}

int fuzz_safetensors(const uint8_t *data, size_t n) {
  if (n > ST_MAX_INPUT) return FUZZ_SKIPPED;
  const char *path = fuzz_write("in.safetensors", data, n);
  if (!path) return FUZZ_SKIPPED;
  RtTensorList *l = NULL;
  RtMeta *m = NULL;
  RtErr e = {{0}};
  if (rt_safetensors_read_meta(path, &l, &m, &e)) {
    if (l || m) abort(); /* the header promises both NULL on failure */
    return fuzz_refused(e.msg);
  }
  round_trip(l, m);
  rt_list_free(l);
  rt_meta_free(m);
  return FUZZ_ACCEPTED;
}
