/* data_impl.h — what a dataset kind implements (internal to runtime/data*.c). */
#ifndef DAL_RT_DATA_IMPL_H
#define DAL_RT_DATA_IMPL_H

#include "data.h"

struct RtDataset {
  const RtEntrySpec *entry;
  uint64_t seed;
  int64_t batch;  /* B */
  bool *fills;    /* (entry->ninput) */
  char **caption; /* (batch) the last batch's captions, or NULL for a dataset without */
  /* The kind's: fill the inputs marked in 'fills' for 'step'; free impl. */
  int (*fill)(RtDataset *d, uint64_t step, RtTensor *const *inputs, RtErr *e);
  void (*free_impl)(void *impl);
  void *impl;
};

/* The entry's image input, f32 [B, 3, S, S] with S >= 8 ("x" or "image"
 * if there are several): marks it filled and sets the batch size from it.
 * Returns its index, or -1 with a message naming dataset 'kind' and the
 * entry's inputs. */
int rt_data_image_input(RtDataset *d, const char *kind, RtErr *e);
/* Allocates d->caption: batch strings of 'len' bytes each. */
int rt_data_captions(RtDataset *d, size_t len, RtErr *e);

/* ---- data_image.c ---- */
/* The centred square of an 8-bit image (w x h, 'channels' interleaved)
 * resampled to S x S (area average when shrinking, bilinear when
 * enlarging) into dst, f32 [channels, S, S] in [-1, 1]. */
int rt_image_resize(const unsigned char *src, int w, int h, int channels, int S, float *dst, RtErr *e);
/* Example i of a stream over n stored examples: epoch i / n visits each
 * once, in a Fisher-Yates shuffle drawn from Philox (key: seed; counter:
 * epoch lo, epoch hi, tag, position); the current epoch's order is cached. */
typedef struct {
  int64_t n;
  uint32_t tag;
  uint32_t *order; /* (n) */
  uint64_t epoch;
  bool have;
} RtEpochOrder;
int rt_epoch_order_init(RtEpochOrder *o, int64_t n, uint32_t tag, RtErr *e);
void rt_epoch_order_free(RtEpochOrder *o);
/* The stored example that example i of stream 'seed' is. */
int64_t rt_epoch_order_pick(RtEpochOrder *o, uint64_t seed, uint64_t i);

/* Each kind's opener: sets fills, batch, fill, free_impl, impl (and caption)
 * on a dataset whose entry and seed are set; 'args' is the spec after the
 * kind's name and colon ("" if none). */
int rt_data_open_shapes(RtDataset *d, const char *args, RtErr *e);
int rt_data_open_npy(RtDataset *d, const char *args, RtErr *e);
int rt_data_open_fashion(RtDataset *d, const char *args, RtErr *e);
int rt_data_open_folder(RtDataset *d, const char *args, RtErr *e);

#endif
