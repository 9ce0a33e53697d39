/* data_fashion.c — the `fashion-mnist[:test]` dataset: Zalando's
 * Fashion-MNIST from Debian's dataset-fashion-mnist package (see data.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "runtime/data/data_impl.h"

#define FASHION_SIDE 28
#define FASHION_CLASSES 10

static const char *const class_caption[FASHION_CLASSES] = {
    "a t-shirt", "a pair of trousers", "a pullover", "a dress", "a coat",
    "a sandal",  "a shirt",            "a sneaker",  "a bag",   "an ankle boot",
};

const char *rt_fashion_caption(int label) {
  return label >= 0 && label < FASHION_CLASSES ? class_caption[label] : NULL;
}

typedef struct {
  int input;              /* the image input */
  int label_input;        /* an i32 [B] input "label" filled with the class, or -1 */
  int size;               /* S */
  int64_t n;              /* examples of the split */
  int64_t first;          /* the split's first example in the file */
  unsigned char *pixels;  /* (file's examples, 28, 28) */
  unsigned char *labels;  /* (n) */
} Fashion;

static void fashion_free(void *impl) {
  Fashion *f = impl;
  if (!f) return;
  free(f->pixels);
  free(f->labels);
  free(f);
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The whole gzip'd file in memory. */
static unsigned char *read_gz(const char *path, size_t *size, RtErr *e) {
  gzFile z = gzopen(path, "rb");
  if (!z) {
    rt_err(e, "dataset fashion-mnist: %s: cannot open (install Debian's dataset-fashion-mnist, or set "
              "DAL_FASHION_MNIST to the folder holding its idx files)", path);
    return NULL;
  }
  size_t cap = 1 << 20, n = 0;
  unsigned char *buf = malloc(cap);
  for (int got = 1; buf && got > 0;) {
    if (n == cap) {
      unsigned char *more = realloc(buf, cap *= 2);
      if (!more) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = more;
    }
    got = gzread(z, buf + n, (unsigned)(cap - n));
    if (got < 0) {
      int code;
      rt_err(e, "dataset fashion-mnist: %s: not a readable gzip file (%s)", path, gzerror(z, &code));
      free(buf);
      gzclose(z);
      return NULL;
    }
    n += (size_t)got;
  }
  gzclose(z);
  if (!buf) rt_err(e, "dataset fashion-mnist: %s: out of memory", path);
  *size = n;
  return buf;
}

/* An idx file: magic 0x00000800 | (dtype unsigned byte) << 0 | rank, then
 * the rank sizes as big-endian u32, then the bytes. Checks the rank and
 * the size of every dimension given (0: any) and that the data is there. */
static unsigned char *read_idx(const char *path, int rank, const uint32_t *want, uint32_t *dims, RtErr *e) {
  size_t size;
  unsigned char *buf = read_gz(path, &size, e);
  if (!buf) return NULL;
  size_t head = 4 + 4 * (size_t)rank;
  if (size < head || be32(buf) != (0x0800u | (uint32_t)rank)) {
    rt_err(e, "dataset fashion-mnist: %s: not an idx file of unsigned bytes with %d dimensions (magic 0x%08x)", path,
           rank, size >= 4 ? be32(buf) : 0u);
    free(buf);
    return NULL;
  }
  uint64_t count = 1;
  for (int k = 0; k < rank; k++) {
    dims[k] = be32(buf + 4 + 4 * k);
    count *= dims[k];
    if (want[k] && dims[k] != want[k]) {
      rt_err(e, "dataset fashion-mnist: %s: dimension %d is %u, expected %u", path, k, dims[k], want[k]);
      free(buf);
      return NULL;
    }
  }
  if (size - head < count) {
    rt_err(e, "dataset fashion-mnist: %s: truncated: the header promises %llu bytes of data, the file holds %zu",
           path, (unsigned long long)count, size - head);
    free(buf);
    return NULL;
  }
  memmove(buf, buf + head, count);
  return buf;
}

/* Example 'k' of the file as f32 [3, S, S] in [-1, 1] (grey in all three). */
static int render(const Fashion *f, int64_t k, float *img, RtErr *e) {
  k += f->first;
  if (rt_image_resize(f->pixels + k * FASHION_SIDE * FASHION_SIDE, FASHION_SIDE, FASHION_SIDE, 1, f->size, img, e))
    return -1;
  int64_t plane = (int64_t)f->size * f->size;
  memcpy(img + plane, img, sizeof *img * (size_t)plane);
  memcpy(img + 2 * plane, img, sizeof *img * (size_t)plane);
  return 0;
}

static int fashion_load(RtDataset *d, int64_t j, uint64_t k, RtTensor *const *inputs, RtErr *e) {
  const Fashion *f = d->impl;
  if (render(f, (int64_t)k, rt_f32(inputs[f->input]) + j * 3 * (int64_t)f->size * f->size, e)) return -1;
  int label = f->labels[f->first + (int64_t)k];
  snprintf(d->caption[j], 32, "%s", class_caption[label]);
  if (f->label_input >= 0) rt_i32(inputs[f->label_input])[j] = label;
  return 0;
}

static int fashion_check_text(RtDataset *d, RtTextEncoder *t, RtErr *e) {
  (void)d;
  for (int c = 0; c < FASHION_CLASSES; c++)
    if (rt_text_check(t, class_caption[c], e)) return -1;
  return 0;
}

int rt_data_open_fashion(RtDataset *d, const char *args, RtErr *e) {
  bool test = strcmp(args, "test") == 0, train = strcmp(args, "train") == 0, val = strcmp(args, "val") == 0;
  if (*args && !test && !train && !val)
    return rt_err(e, "dataset fashion-mnist takes nothing (the training file's %d images), 'train' (its first %d), "
                     "'val' (its last %d, for tuning) or 'test' (the test split), not '%s'",
                  RT_FASHION_TRAIN + RT_FASHION_VAL, RT_FASHION_TRAIN, RT_FASHION_VAL, args);
  int in = rt_data_image_input(d, "fashion-mnist", e);
  if (in < 0) return -1;
  int S = (int)d->entry->input[in].dim[2];
  const char *dir = getenv("DAL_FASHION_MNIST");
  if (!dir || !*dir) dir = "/usr/share/datasets/fashion-mnist";
  const char *split = test ? "t10k" : "train";
  char images[1024], labels[1024];
  snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", dir, split);
  snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", dir, split);
  Fashion *f = calloc(1, sizeof *f);
  if (!f) return rt_err(e, "dataset fashion-mnist: out of memory");
  d->impl = f;
  d->free_impl = fashion_free;
  d->load = fashion_load;
  d->check_text = fashion_check_text;
  uint32_t idim[3], ldim[1];
  f->pixels = read_idx(images, 3, (const uint32_t[]){0, FASHION_SIDE, FASHION_SIDE}, idim, e);
  if (!f->pixels) return -1;
  f->labels = read_idx(labels, 1, (const uint32_t[]){idim[0]}, ldim, e);
  if (!f->labels) return -1;
  f->n = idim[0];
  if (f->n == 0) return rt_err(e, "dataset fashion-mnist: %s holds no images", images);
  if ((train || val) && f->n != RT_FASHION_TRAIN + RT_FASHION_VAL)
    return rt_err(e, "dataset fashion-mnist:%s: %s holds %lld images, not the %d the split is cut from", args, images,
                  (long long)f->n, RT_FASHION_TRAIN + RT_FASHION_VAL);
  for (int64_t k = 0; k < f->n; k++)
    if (f->labels[k] >= FASHION_CLASSES)
      return rt_err(e, "dataset fashion-mnist: %s: label %lld is %d (classes are 0..9)", labels, (long long)k,
                    f->labels[k]);
  f->input = in;
  f->size = S;
  f->label_input = rt_entry_input(d->entry, "label");
  if (f->label_input >= 0) {
    const RtArgSpec *l = &d->entry->input[f->label_input];
    if (l->dtype != RT_I32 || l->rank != 1 || l->dim[0] != d->batch)
      return rt_err(e, "dataset fashion-mnist fills input 'label' with the class 0..9: it must be i32[%lld], not %s%s",
                    (long long)d->batch, rt_dtype_name(l->dtype), l->rank ? "[...]" : " (a scalar)");
    d->fills[f->label_input] = true;
  }
  if (train) f->n = RT_FASHION_TRAIN;
  if (val) f->first = RT_FASHION_TRAIN, f->n = RT_FASHION_VAL;
  d->size = f->n;
  return rt_data_captions(d, 32, e);
}
