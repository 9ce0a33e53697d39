/* exe_eval_data.c — the examples an evaluation visits: the first N of a
 * dataset in dataset order, one entry batch at a time (exe_eval.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/exe/exe_eval.h"
#include "runtime/io/safetensors.h"

/* The rows a token cache holds (its dal.count), or -1 with a message. */
static int64_t cache_rows(const char *path, RtErr *e) {
  RtTensorList *l = NULL;
  RtMeta *m = NULL;
  if (rt_safetensors_read_meta(path, &l, &m, e)) return -1;
  const char *v = rt_meta_get(m, "dal.count");
  char *end = NULL;
  long long n = v ? strtoll(v, &end, 10) : -1;
  int64_t rows = v && *end == 0 && n >= 0 ? n : -1;
  rt_list_free(l);
  rt_meta_free(m);
  if (rows < 0) rt_err(e, "%s: a token cache without a valid dal.count", path);
  return rows;
}

int rt_eval_stream_open(RtEvalStream *s, const char *spec, const RtEntrySpec *en, uint64_t seed, uint64_t count,
                        const char *count_flag, RtErr *e) {
  memset(s, 0, sizeof *s);
  s->spec = spec;
  if (!(s->d = rt_data_open(spec, en, seed, e))) return -1;
  s->B = rt_data_batch(s->d);
  s->by_step = strncmp(spec, "npy:", 4) == 0;
  int64_t have = rt_data_size(s->d);
  if (strncmp(spec, "tokens:", 7) == 0) {
    int64_t rows = cache_rows(spec + 7, e);
    if (rows < 0) goto fail;
    have = rows;
  }
  if (count == 0 && have <= 0) {
    rt_err(e, "--data %s needs %s N: the dataset has no end or no known size", spec, count_flag);
    goto fail;
  }
  if (have > 0 && count > (uint64_t)have) {
    rt_err(e, "%s %llu: dataset '%s' has %lld examples", count_flag, (unsigned long long)count, spec, (long long)have);
    goto fail;
  }
  if (count > ((uint64_t)1 << 40)) {
    rt_err(e, "%s must be in 1 .. 2^40", count_flag);
    goto fail;
  }
  s->count = count ? (int64_t)count : have;
  if (!(s->k = malloc(sizeof *s->k * (size_t)s->B))) {
    rt_err(e, "out of memory");
    goto fail;
  }
  return 0;
fail:
  rt_data_free(s->d);
  s->d = NULL;
  return -1;
}

int64_t rt_eval_stream_next(RtEvalStream *s, RtTensor *const *inputs, RtErr *e) {
  if (s->done >= s->count) return 0;
  int64_t rows = s->count - s->done < s->B ? s->count - s->done : s->B;
  if (s->by_step) {
    /* npy: batch s->done / B holds rows done .. done + B - 1 (mod its rows) */
    if (rt_data_fill(s->d, (uint64_t)(s->done / s->B), inputs, e)) return -1;
  } else {
    for (int64_t j = 0; j < s->B; j++) s->k[j] = (uint64_t)(s->done + (j < rows ? j : rows - 1));
    if (rt_data_fill_examples(s->d, s->k, inputs, e)) return -1;
  }
  s->done += rows;
  return rows;
}

void rt_eval_stream_close(RtEvalStream *s) {
  rt_data_free(s->d);
  free(s->k);
  memset(s, 0, sizeof *s);
}
