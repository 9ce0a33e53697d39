/* data_impl.h — what a dataset kind implements (internal to runtime/data*.c). */
#ifndef DAL_RT_DATA_IMPL_H
#define DAL_RT_DATA_IMPL_H

#include "runtime/data/data.h"

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

struct RtDataset {
  const RtEntrySpec *entry;
  uint64_t seed;
  int64_t batch;  /* B */
  bool *fills;    /* (entry->ninput) */
  char **caption; /* (batch) the last batch's captions, or NULL for a dataset without */
  /* A kind fills a batch in one of two ways. Either 'fill': the inputs
   * marked in 'fills' for 'step', all by itself (npy). Or 'load': example
   * k into row j of the inputs (and caption[j]), with data.c choosing the
   * examples: example i = step * B + j of the stream is k = i for a
   * generated stream (size 0: shapes) or, for a dataset of 'size' stored
   * examples, the one the epoch order (tag 'order_tag', from the kind
   * table in data.c unless the kind sets another) picks. */
  int (*fill)(RtDataset *d, uint64_t step, RtTensor *const *inputs, RtErr *e);
  int (*load)(RtDataset *d, int64_t j, uint64_t k, RtTensor *const *inputs, RtErr *e);
  int64_t size;
  uint32_t order_tag;
  RtEpochOrder order;
  /* A tokens dataset's check of a --tokenizer against the one its ids
   * were made with (NULL: the kind fills no text itself). */
  int (*check_tokenizer)(RtDataset *d, const RtBpe *tok, const char *path, RtErr *e);
  /* rt_data_check_text: every caption the kind can give, or every word of
   * them, through rt_text_check (NULL: nothing to check). */
  int (*check_text)(RtDataset *d, RtTextEncoder *t, RtErr *e);
  /* rt_data_check_steps for a kind that may run out (NULL: none does). */
  int (*check_steps)(RtDataset *d, uint64_t first, uint64_t last, RtErr *e);
  void (*free_impl)(void *impl);
  void *impl;
  /* Captions encoded into the entry's "text" input (rt_data_set_tokenizer). */
  RtTextEncoder *text;
  int text_input; /* -1: none */
};

/* The entry's image input, f32 [B, 3, S, S] with S >= 8 ("x" or "image"
 * if there are several): marks it filled and sets the batch size from it.
 * Returns its index, or -1 with a message naming dataset 'kind' and the
 * entry's inputs. */
int rt_data_image_input(RtDataset *d, const char *kind, RtErr *e);
/* Allocates d->caption: batch strings of 'len' bytes each. */
int rt_data_captions(RtDataset *d, size_t len, RtErr *e);
/* "a, b, c": the entry's input names into buf. */
const char *rt_data_input_names(const RtEntrySpec *en, char *buf, size_t size);
/* The order tag of the dataset kind that 'spec' names (0 for a generated
 * stream or an unknown kind): what a tokens dataset made from 'spec'
 * shuffles with. */
uint32_t rt_data_kind_tag(const char *spec);

/* ---- data_image.c ---- */
/* The centred square of an 8-bit image (w x h, 'channels' interleaved)
 * resampled to S x S (area average when shrinking, bilinear when
 * enlarging) into dst, f32 [channels, S, S] in [-1, 1]. */
int rt_image_resize(const unsigned char *src, int w, int h, int channels, int S, float *dst, RtErr *e);
int rt_epoch_order_init(RtEpochOrder *o, int64_t n, uint32_t tag, RtErr *e);
void rt_epoch_order_free(RtEpochOrder *o);
/* The stored example that example i of stream 'seed' is. */
int64_t rt_epoch_order_pick(RtEpochOrder *o, uint64_t seed, uint64_t i);

/* Each kind's opener: sets fills, batch, fill or load (and size),
 * free_impl, impl (and caption) on a dataset whose entry, seed and
 * order_tag are set; 'args' is the spec after the kind's name and colon
 * ("" if none). */
int rt_data_open_shapes(RtDataset *d, const char *args, RtErr *e);
int rt_data_open_npy(RtDataset *d, const char *args, RtErr *e);
int rt_data_open_fashion(RtDataset *d, const char *args, RtErr *e);
int rt_data_open_folder(RtDataset *d, const char *args, RtErr *e);
int rt_data_open_tokens(RtDataset *d, const char *args, RtErr *e);

#endif
