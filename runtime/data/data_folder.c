/* data_folder.c — the `folder:PATH` dataset: the user's own images (PNG,
 * JPEG, BMP, ... whatever stb_image reads) listed with their captions in
 * PATH/captions.tsv (see data.h). Every image is decoded, checked and
 * resized when the dataset opens, so a bad file is reported before any
 * training starts, and batches cost a copy. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/data/data_impl.h"

/* stb's implementation is third-party code: it is not held to our warning
 * flags. Static, so nothing else sees its symbols. (Unused static functions
 * are reported at the end of the file, outside any push/pop: this stb
 * declares a thread-local setter it never defines.) */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wtype-limits"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
/* stb 2.27's PNM reader overflows int on a long number in the header
 * (found by AFL++, reported by UBSan): with wrapping arithmetic the size
 * is merely wrong, and stb's or our own size checks refuse it. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("wrapv")
#endif
/* It also copies 0 bytes to a NULL buffer (a PNG chunk of length 0),
 * which memcpy does not allow. */
static inline void *stb_memcpy(void *dst, const void *src, size_t n) { return n ? memcpy(dst, src, n) : dst; }
#define memcpy stb_memcpy
#include <stb/stb_image.h>
#undef memcpy
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
#pragma GCC diagnostic pop

#define CAPTION_MAX 256
#ifndef FOLDER_MAX_PIXELS /* the fuzz build (tests/fuzz) sets a smaller cap: decodes within it stay fast */
#define FOLDER_MAX_PIXELS (32 << 20) /* an image larger than 32 megapixels (8192 x 4096) is refused */
#endif

typedef struct {
  int input, size;   /* the image input, S */
  int64_t n;
  float *images;     /* (n, 3, S, S) in [-1, 1] */
  char (*caption)[CAPTION_MAX];
} Folder;

static void folder_free(void *impl) {
  Folder *f = impl;
  if (!f) return;
  free(f->images);
  free(f->caption);
  free(f);
}

static int folder_load(RtDataset *d, int64_t j, uint64_t k, RtTensor *const *inputs, RtErr *e) {
  (void)e;
  const Folder *f = d->impl;
  int64_t plane = 3 * (int64_t)f->size * f->size;
  memcpy(rt_f32(inputs[f->input]) + j * plane, f->images + (int64_t)k * plane, sizeof(float) * (size_t)plane);
  memcpy(d->caption[j], f->caption[k], CAPTION_MAX);
  return 0;
}

static int folder_check_text(RtDataset *d, RtTextEncoder *t, RtErr *e) {
  const Folder *f = d->impl;
  for (int64_t k = 0; k < f->n; k++)
    if (rt_text_check(t, f->caption[k], e)) return -1;
  return 0;
}

/* Strips a trailing newline / carriage return; returns the length. */
static size_t chomp(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
  return n;
}

/* The whole of regular file 'path' in memory (*n bytes; the caller frees
 * it), or NULL with a message. */
static unsigned char *read_image_file(const char *path, const char *where, size_t *n, RtErr *e) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    rt_err(e, "%s: %s: cannot open: %s", where, path, strerror(errno));
    return NULL;
  }
  struct stat st;
  unsigned char *buf = NULL;
  if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
    rt_err(e, "%s: %s: not a regular file", where, path);
  } else if (st.st_size > INT_MAX) { /* stb takes the length as an int */
    rt_err(e, "%s: %s: %lld bytes is too large for an image", where, path, (long long)st.st_size);
  } else if (!(buf = malloc((size_t)st.st_size + 1))) {
    rt_err(e, "%s: %s: out of memory", where, path);
  } else if ((*n = fread(buf, 1, (size_t)st.st_size, fp)) != (size_t)st.st_size) {
    rt_err(e, "%s: %s: cannot read: %s", where, path, strerror(errno));
    free(buf);
    buf = NULL;
  }
  fclose(fp);
  return buf;
}

/* The w x h image px of ch channels (grey, grey + alpha, RGB, RGBA) as
 * RGB: px itself if it is, else a new buffer (NULL if out of memory).
 * What stb's own conversion does (alpha dropped), done here because stb
 * 2.27 converts a 16-bit PNM's channels into a buffer half the size it
 * then reads (a heap overflow AFL++ found under ASan). */
static unsigned char *to_rgb(unsigned char *px, int w, int h, int ch) {
  if (ch == 3) return px;
  size_t n = (size_t)w * (size_t)h;
  unsigned char *rgb = malloc(3 * n);
  if (!rgb) return NULL;
  for (size_t i = 0; i < n; i++) {
    const unsigned char *p = px + i * (size_t)ch;
    rgb[3 * i] = p[0];
    rgb[3 * i + 1] = ch >= 3 ? p[1] : p[0];
    rgb[3 * i + 2] = ch >= 3 ? p[2] : p[0];
  }
  return rgb;
}

/* Decodes PATH/file into example k (3 channels, resized). The file is
 * decoded from memory: stb reading a FILE seeks and reads once per row
 * where a BMP row has padding, and reads zeros past the end of a short
 * file, so a 300-byte BMP claiming 1 x 16M pixels took 5 s. */
static int load_image(Folder *f, const char *dir, const char *file, const char *where, int64_t k, RtErr *e) {
  char *path = malloc(strlen(dir) + strlen(file) + 2);
  if (!path) return rt_err(e, "%s: out of memory", where);
  sprintf(path, "%s/%s", dir, file);
  size_t n = 0;
  unsigned char *bytes = read_image_file(path, where, &n, e);
  int w, h, ch, rc = -1;
  unsigned char *px = NULL, *rgb = NULL;
  if (!bytes) {
    /* the message is set */
  } else if (stbi_info_from_memory(bytes, (int)n, &w, &h, &ch) && /* stb 2.27 gives a top-down BMP's height < 0 */
             llabs((int64_t)w) * llabs((int64_t)h) > FOLDER_MAX_PIXELS) {
    rt_err(e, "%s: %s is %d x %d pixels, more than the %d megapixels dal reads", where, path, w, h,
           FOLDER_MAX_PIXELS >> 20);
  } else if (!(px = stbi_load_from_memory(bytes, (int)n, &w, &h, &ch, 0))) {
    rt_err(e, "%s: %s: not an image stb_image can read (%s)", where, path, stbi_failure_reason());
  } else if (w < 1 || h < 1 || ch < 1 || ch > 4) { /* stb 2.27 passes a PNM of width 0 */
    rt_err(e, "%s: %s: an image of %d x %d pixels and %d channels", where, path, w, h, ch);
  } else if (!(rgb = to_rgb(px, w, h, ch))) {
    rt_err(e, "%s: %s: out of memory", where, path);
  } else {
    rc = rt_image_resize(rgb, w, h, 3, f->size, f->images + k * 3 * (int64_t)f->size * f->size, e);
  }
  if (rgb != px) free(rgb);
  if (px) stbi_image_free(px);
  free(bytes);
  free(path);
  return rc;
}

int rt_data_open_folder(RtDataset *d, const char *args, RtErr *e) {
  if (!*args) return rt_err(e, "dataset folder needs a folder: folder:PATH (PATH/captions.tsv lists FILE<TAB>CAPTION)");
  int in = rt_data_image_input(d, "folder", e);
  if (in < 0) return -1;
  Folder *f = calloc(1, sizeof *f);
  if (!f) return rt_err(e, "dataset folder: out of memory");
  d->impl = f;
  d->free_impl = folder_free;
  d->load = folder_load;
  d->check_text = folder_check_text;
  f->input = in;
  f->size = (int)d->entry->input[in].dim[2];
  char tsv[4096];
  snprintf(tsv, sizeof tsv, "%s/captions.tsv", args);
  FILE *fp = fopen(tsv, "r");
  if (!fp) return rt_err(e, "dataset folder: %s: cannot open: %s (it lists FILE<TAB>CAPTION per line)", tsv,
                         strerror(errno));
  int64_t cap = 0, plane = 3 * (int64_t)f->size * f->size;
  int rc = 0;
  char line[8192], where[4200];
  for (int lineno = 1; rc == 0 && fgets(line, sizeof line, fp); lineno++) {
    snprintf(where, sizeof where, "%s:%d", tsv, lineno);
    size_t len = chomp(line);
    if (len == 0 || line[0] == '#') continue; /* blank lines and comments */
    char *tab = strchr(line, '\t');
    if (len == sizeof line - 1) rc = rt_err(e, "%s: line too long", where);
    else if (!tab || tab == line) rc = rt_err(e, "%s: expected FILE<TAB>CAPTION", where);
    else if (strlen(tab + 1) >= CAPTION_MAX)
      rc = rt_err(e, "%s: the caption is longer than %d bytes", where, CAPTION_MAX - 1);
    if (rc) break;
    *tab = 0;
    if (f->n == cap) {
      cap = cap ? 2 * cap : 64;
      float *im = realloc(f->images, sizeof *im * (size_t)(cap * plane));
      char(*cp)[CAPTION_MAX] = realloc(f->caption, sizeof *cp * (size_t)cap);
      if (im) f->images = im;
      if (cp) f->caption = cp;
      if (!im || !cp) rc = rt_err(e, "dataset folder: out of memory at %s", where);
    }
    if (rc == 0) rc = load_image(f, args, line, where, f->n, e);
    if (rc == 0) snprintf(f->caption[f->n++], CAPTION_MAX, "%s", tab + 1);
  }
  fclose(fp);
  if (rc) return -1;
  if (f->n == 0) return rt_err(e, "dataset folder: %s lists no images", tsv);
  d->size = f->n;
  return rt_data_captions(d, CAPTION_MAX, e);
}
