/* fuzz_data.c — opening and filling a dataset for the dataset harnesses. */
#include <stdlib.h>

#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_data.h"

static const RtArgSpec inputs[] = {
    {.name = "image", .dtype = RT_F32, .rank = 4, .dim = {2, 3, 8, 8}},
    {.name = "label", .dtype = RT_I32, .rank = 1, .dim = {2}},
};
static const RtEntrySpec entry = {.name = "fuzz", .train = true, .ninput = 2, .input = inputs};

int fuzz_data_open_fill(const char *spec) {
  RtErr e = {{0}};
  RtDataset *d = rt_data_open(spec, &entry, 1, &e);
  if (!d) return fuzz_refused(e.msg);
  RtTensor *t[2] = {rt_tensor_new(RT_F32, 4, inputs[0].dim, &e), rt_tensor_new(RT_I32, 1, inputs[1].dim, &e)};
  if (!t[0] || !t[1]) abort();
  int rc = FUZZ_ACCEPTED;
  for (uint64_t step = 0; step < 2 && rc == FUZZ_ACCEPTED; step++)
    if (rt_data_fill(d, step, t, &e)) rc = fuzz_refused(e.msg);
  if (rc == FUZZ_ACCEPTED)
    for (int64_t i = 0; i < 2 * 3 * 8 * 8; i++) /* images in [-1, 1] */
      if (!(rt_f32(t[0])[i] >= -1 && rt_f32(t[0])[i] <= 1)) abort();
  rt_tensor_free(t[0]);
  rt_tensor_free(t[1]);
  rt_data_free(d);
  return rc;
}
