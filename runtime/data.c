/* data.c — opening a dataset by its spec and the calls common to every
 * kind (see data.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"

typedef struct {
  const char *name;
  int (*open)(RtDataset *d, const char *args, RtErr *e);
} DataKind;

static const DataKind kinds[] = {
    {"shapes", rt_data_open_shapes},
    {"npy", rt_data_open_npy},
    {"fashion-mnist", rt_data_open_fashion},
    {"folder", rt_data_open_folder},
};

RtDataset *rt_data_open(const char *spec, const RtEntrySpec *entry, uint64_t seed, RtErr *e) {
  const char *colon = strchr(spec, ':');
  size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
  const DataKind *k = NULL;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strlen(kinds[i].name) == len && strncmp(kinds[i].name, spec, len) == 0) k = &kinds[i];
  if (!k) {
    rt_err(e, "unknown dataset '%s' (known: shapes, fashion-mnist[:test], folder:PATH, "
              "npy:NAME=FILE.npy[,NAME=FILE.npy...])", spec);
    return NULL;
  }
  RtDataset *d = calloc(1, sizeof *d);
  if (d) d->fills = calloc((size_t)entry->ninput + 1, sizeof *d->fills);
  if (!d || !d->fills) {
    free(d);
    rt_err(e, "dataset %s: out of memory", spec);
    return NULL;
  }
  d->entry = entry;
  d->seed = seed;
  if (k->open(d, colon ? colon + 1 : "", e)) {
    rt_data_free(d);
    return NULL;
  }
  return d;
}

void rt_data_free(RtDataset *d) {
  if (!d) return;
  if (d->free_impl) d->free_impl(d->impl);
  if (d->caption)
    for (int64_t j = 0; j < d->batch; j++) free(d->caption[j]);
  free(d->caption);
  free(d->fills);
  free(d);
}

bool rt_data_fills(const RtDataset *d, int i) { return i >= 0 && i < d->entry->ninput && d->fills[i]; }

int64_t rt_data_batch(const RtDataset *d) { return d->batch; }

int rt_data_fill(RtDataset *d, uint64_t step, RtTensor *const *inputs, RtErr *e) {
  return d->fill(d, step, inputs, e);
}

const char *rt_data_caption(const RtDataset *d, int64_t j) {
  return d->caption && j >= 0 && j < d->batch ? d->caption[j] : NULL;
}

int rt_data_image_input(RtDataset *d, const char *kind, RtErr *e) {
  const RtEntrySpec *en = d->entry;
  int found = -1;
  for (int i = 0; i < en->ninput; i++) {
    const RtArgSpec *a = &en->input[i];
    if (a->dtype != RT_F32 || a->rank != 4 || a->dim[1] != 3 || a->dim[2] != a->dim[3] || a->dim[2] < 8 ||
        a->dim[0] < 1)
      continue;
    if (found < 0 || strcmp(a->name, "x") == 0 || strcmp(a->name, "image") == 0) found = i;
  }
  if (found < 0) {
    char names[512] = "";
    for (int k = 0; k < en->ninput; k++) {
      size_t at = strlen(names);
      snprintf(names + at, sizeof names - at, "%s%s", k ? ", " : "", en->input[k].name);
    }
    rt_err(e, "dataset %s makes images f32[B, 3, S, S] (S >= 8), but entry '%s' has no such input (its inputs: %s)",
           kind, en->name, en->ninput ? names : "none");
    return -1;
  }
  d->fills[found] = true;
  d->batch = en->input[found].dim[0];
  return found;
}

int rt_data_captions(RtDataset *d, size_t len, RtErr *e) {
  d->caption = calloc((size_t)d->batch, sizeof *d->caption);
  if (!d->caption) return rt_err(e, "dataset: out of memory");
  for (int64_t j = 0; j < d->batch; j++)
    if (!(d->caption[j] = calloc(1, len))) return rt_err(e, "dataset: out of memory");
  return 0;
}
