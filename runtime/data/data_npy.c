/* data_npy.c — the `npy:NAME=FILE.npy,...` dataset: fixed arrays whose
 * rows are served in order, wrapping around (see data.h). */
#include <stdlib.h>
#include <string.h>

#include "runtime/data/data_impl.h"
#include "runtime/io/npy.h"

typedef struct {
  int n;             /* arrays */
  int *input;        /* (n) the entry input each array fills */
  RtTensor **array;  /* (n) [N, ...row] */
  int64_t rows;      /* N, the same for every array */
} NpyData;

static void npy_free(void *impl) {
  NpyData *nd = impl;
  if (!nd) return;
  for (int i = 0; i < nd->n; i++) rt_tensor_free(nd->array[i]);
  free(nd->array);
  free(nd->input);
  free(nd);
}

static int npy_fill(RtDataset *d, uint64_t step, RtTensor *const *inputs, RtErr *e) {
  (void)e;
  const NpyData *nd = d->impl;
  for (int k = 0; k < nd->n; k++) {
    const RtTensor *a = nd->array[k];
    RtTensor *out = inputs[nd->input[k]];
    size_t row = rt_tensor_bytes(a) / (size_t)nd->rows;
    for (int64_t j = 0; j < d->batch; j++) {
      uint64_t r = (step * (uint64_t)d->batch + (uint64_t)j) % (uint64_t)nd->rows;
      memcpy((char *)out->data + (size_t)j * row, (const char *)a->data + r * row, row);
    }
  }
  return 0;
}

/* Checks that array a (from 'file') can feed input 'in': the same dtype,
 * one more leading axis of any size >= 1, the same row shape. */
static int check_array(const RtTensor *a, const RtArgSpec *in, const char *file, RtErr *e) {
  char want[160], got[160];
  rt_shape_str(a->rank, a->dim, got, sizeof got);
  rt_shape_str(in->rank - 1, in->dim + 1, want, sizeof want);
  if (in->rank < 1) return rt_err(e, "%s: input '%s' is a scalar, not a batch of rows", file, in->name);
  bool ok = a->dtype == in->dtype && a->rank == in->rank && a->dim[0] >= 1;
  for (int i = 1; ok && i < in->rank; i++) ok = a->dim[i] == in->dim[i];
  if (!ok)
    return rt_err(e, "%s: input '%s' needs an array %s[N, rows of shape %s], got %s%s", file, in->name,
                  rt_dtype_name(in->dtype), want, rt_dtype_name(a->dtype), got);
  return 0;
}

int rt_data_open_npy(RtDataset *d, const char *args, RtErr *e) {
  const RtEntrySpec *en = d->entry;
  NpyData *nd = calloc(1, sizeof *nd);
  size_t len = strlen(args);
  char *text = malloc(len + 1);
  int cap = 1;
  for (const char *c = args; *c; c++) cap += *c == ',';
  if (nd) {
    nd->input = calloc((size_t)cap, sizeof *nd->input);
    nd->array = calloc((size_t)cap, sizeof *nd->array);
  }
  d->impl = nd;
  d->free_impl = npy_free;
  d->fill = npy_fill;
  if (!nd || !text || !nd->input || !nd->array) {
    free(text);
    return rt_err(e, "dataset npy: out of memory");
  }
  memcpy(text, args, len + 1);
  int rc = 0;
  char *save = NULL;
  for (char *item = strtok_r(text, ",", &save); item && rc == 0; item = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(item, '=');
    if (!eq || eq == item || !eq[1]) {
      rc = rt_err(e, "dataset npy: '%s' is not NAME=FILE.npy", item);
      break;
    }
    *eq = 0;
    const char *file = eq + 1;
    int i = rt_entry_input(en, item);
    if (i < 0) {
      rc = rt_err(e, "dataset npy: entry '%s' has no input '%s'", en->name, item);
      break;
    }
    if (d->fills[i]) {
      rc = rt_err(e, "dataset npy: input '%s' is given twice", item);
      break;
    }
    RtTensor *a = NULL;
    if (rt_npy_read(file, &a, e)) {
      rc = -1;
      break;
    }
    nd->array[nd->n] = a;
    nd->input[nd->n++] = i;
    if (check_array(a, &en->input[i], file, e)) {
      rc = -1;
      break;
    }
    if (nd->n > 1 && a->dim[0] != nd->rows) {
      rc = rt_err(e, "%s: has %lld rows but the dataset's other arrays have %lld (their rows must pair up)", file,
                  (long long)a->dim[0], (long long)nd->rows);
      break;
    }
    if (nd->n > 1 && en->input[i].dim[0] != d->batch) {
      rc = rt_err(e, "dataset npy: inputs '%s' and '%s' have different batch sizes", item,
                  en->input[nd->input[0]].name);
      break;
    }
    nd->rows = a->dim[0];
    d->batch = en->input[i].dim[0];
    d->fills[i] = true;
  }
  free(text);
  if (rc == 0 && nd->n == 0) rc = rt_err(e, "dataset npy: give at least one NAME=FILE.npy (npy:NAME=FILE.npy,...)");
  return rc;
}
