/* data.c — opening a dataset by its spec, the stream of examples each
 * step's batch holds, captions as text ids, and the calls common to every
 * kind (see data.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/data_impl.h"

#define FASHION_TAG 0x46415348u /* counter word 2 of fashion-mnist's shuffle ("FASH") */
#define FOLDER_TAG 0x464F4C44u  /* counter word 2 of folder's shuffle ("FOLD") */

typedef struct {
  const char *name;
  int (*open)(RtDataset *d, const char *args, RtErr *e);
  uint32_t tag; /* the epoch order's, for kinds with stored examples */
} DataKind;

static const DataKind kinds[] = {
    {"shapes", rt_data_open_shapes, 0},
    {"npy", rt_data_open_npy, 0},
    {"fashion-mnist", rt_data_open_fashion, FASHION_TAG},
    {"folder", rt_data_open_folder, FOLDER_TAG},
    {"tokens", rt_data_open_tokens, 0},
};

static const DataKind *find_kind(const char *spec) {
  const char *colon = strchr(spec, ':');
  size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strlen(kinds[i].name) == len && strncmp(kinds[i].name, spec, len) == 0) return &kinds[i];
  return NULL;
}

uint32_t rt_data_kind_tag(const char *spec) {
  const DataKind *k = find_kind(spec);
  return k ? k->tag : 0;
}

RtDataset *rt_data_open(const char *spec, const RtEntrySpec *entry, uint64_t seed, RtErr *e) {
  const DataKind *k = find_kind(spec);
  if (!k) {
    rt_err(e, "unknown dataset '%s' (known: shapes[:test][:holdout=SPEC|:novel=SPEC], fashion-mnist[:test], folder:PATH, "
              "npy:NAME=FILE.npy[,NAME=FILE.npy...], tokens:FILE)", spec);
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
  d->order_tag = k->tag;
  d->text_input = -1;
  const char *colon = strchr(spec, ':');
  if (k->open(d, colon ? colon + 1 : "", e) ||
      (d->size > 0 && rt_epoch_order_init(&d->order, d->size, d->order_tag, e))) {
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
  rt_epoch_order_free(&d->order);
  rt_text_encoder_free(d->text);
  free(d);
}

bool rt_data_fills(const RtDataset *d, int i) { return i >= 0 && i < d->entry->ninput && d->fills[i]; }

int64_t rt_data_batch(const RtDataset *d) { return d->batch; }

int64_t rt_data_size(const RtDataset *d) { return d->size; }

bool rt_data_has_captions(const RtDataset *d) { return d->caption != NULL; }

const RtTextEncoder *rt_data_text(const RtDataset *d) { return d->text; }

/* The captions of the batch just loaded into the text input. */
static int encode_text(RtDataset *d, RtTensor *const *inputs, RtErr *e) {
  if (!d->text) return 0;
  int64_t len = d->entry->input[d->text_input].dim[1];
  int32_t *ids = rt_i32(inputs[d->text_input]);
  for (int64_t j = 0; j < d->batch; j++)
    if (rt_text_encode(d->text, d->caption[j], ids + j * len, e)) return -1;
  return 0;
}

int rt_data_fill_examples(RtDataset *d, const uint64_t *k, RtTensor *const *inputs, RtErr *e) {
  if (!d->load) return rt_err(e, "this dataset serves whole batches only, not chosen examples");
  for (int64_t j = 0; j < d->batch; j++) {
    if (d->size > 0 && k[j] >= (uint64_t)d->size)
      return rt_err(e, "dataset: example %llu does not exist (it has %lld)", (unsigned long long)k[j],
                    (long long)d->size);
    if (d->load(d, j, k[j], inputs, e)) return -1;
  }
  return encode_text(d, inputs, e);
}

int rt_data_fill(RtDataset *d, uint64_t step, RtTensor *const *inputs, RtErr *e) {
  if (d->fill) return d->fill(d, step, inputs, e) ? -1 : encode_text(d, inputs, e);
  uint64_t B = (uint64_t)d->batch;
  if (step > (UINT64_MAX - B) / B) return rt_err(e, "dataset: step %llu is too large", (unsigned long long)step);
  for (uint64_t j = 0; j < B; j++) {
    uint64_t i = step * B + j;
    uint64_t k = d->size > 0 ? (uint64_t)rt_epoch_order_pick(&d->order, d->seed, i) : i;
    if (d->load(d, (int64_t)j, k, inputs, e)) {
      if (e) {
        char msg[sizeof e->msg];
        memcpy(msg, e->msg, sizeof msg);
        rt_err(e, "step %llu: %s", (unsigned long long)step, msg);
      }
      return -1;
    }
  }
  return encode_text(d, inputs, e);
}

int rt_data_check_text(RtDataset *d, RtTextEncoder *t, RtErr *e) {
  return d->check_text ? d->check_text(d, t, e) : 0;
}

int rt_data_check_steps(RtDataset *d, uint64_t first, uint64_t last, RtErr *e) {
  return d->check_steps && first < last ? d->check_steps(d, first, last, e) : 0;
}

const char *rt_data_caption(const RtDataset *d, int64_t j) {
  return d->caption && j >= 0 && j < d->batch ? d->caption[j] : NULL;
}

const char *rt_data_input_names(const RtEntrySpec *en, char *buf, size_t size) {
  buf[0] = 0;
  for (int k = 0; k < en->ninput; k++) {
    size_t at = strlen(buf);
    snprintf(buf + at, size - at, "%s%s", k ? ", " : "", en->input[k].name);
  }
  if (en->ninput == 0) snprintf(buf, size, "none");
  return buf;
}

int rt_data_set_tokenizer(RtDataset *d, const char *path, RtErr *e) {
  const RtEntrySpec *en = d->entry;
  int i = rt_entry_input(en, "text");
  char names[512];
  if (d->check_tokenizer) {
    RtBpe *b = rt_bpe_load(path, e);
    if (!b) return -1;
    int rc = d->check_tokenizer(d, b, path, e);
    rt_bpe_free(b);
    return rc;
  }
  if (i < 0)
    return rt_err(e, "--tokenizer %s: entry '%s' has no input 'text' for the captions' ids (its inputs: %s)", path,
                  en->name, rt_data_input_names(en, names, sizeof names));
  const RtArgSpec *a = &en->input[i];
  if (a->dtype != RT_I32 || a->rank != 2 || a->dim[0] != d->batch || a->dim[1] < 1) {
    char buf[160];
    return rt_err(e, "--tokenizer %s: input 'text' of entry '%s' must be i32[B, Lt] with B = %lld (the batch of "
                     "its images), not %s%s", path, en->name, (long long)d->batch, rt_dtype_name(a->dtype),
                  rt_shape_str(a->rank, a->dim, buf, sizeof buf));
  }
  if (d->fills[i]) return rt_err(e, "--tokenizer %s: input 'text' already comes from the dataset", path);
  if (!d->caption) return rt_err(e, "--tokenizer %s: this dataset has no captions to encode", path);
  rt_text_encoder_free(d->text);
  d->text = rt_text_encoder_new(path, a->dim[1], e);
  if (!d->text || rt_data_check_text(d, d->text, e)) return -1;
  d->text_input = i;
  d->fills[i] = true;
  return 0;
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
    char names[512];
    rt_err(e, "dataset %s makes images f32[B, 3, S, S] (S >= 8), but entry '%s' has no such input (its inputs: %s)",
           kind, en->name, rt_data_input_names(en, names, sizeof names));
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
