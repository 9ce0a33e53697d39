/* data_png.c — a batch of images as one PNG grid (see data.h). The PNG
 * encoder is stb_image_write (Debian's libstb-dev), compiled into this file
 * alone with static linkage, so nothing else needs to link libstb. */
#include <stdlib.h>
#include <string.h>

#include "runtime/data/data.h"
#include "runtime/io/fileio.h"

/* stb's implementation is third-party code: it is not held to our warning
 * flags. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

/* stbi_write_png_to_func's sink: appends to a growing buffer. */
typedef struct {
  unsigned char *data;
  size_t size, cap;
  bool oom;
} PngBuf;

static void png_sink(void *ctx, void *data, int size) {
  PngBuf *b = ctx;
  if (b->oom || size <= 0) return;
  if (b->size + (size_t)size > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->size + (size_t)size) cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d) {
      b->oom = true;
      return;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->size, data, (size_t)size);
  b->size += (size_t)size;
}

static unsigned char to_byte(float v) {
  float x = (v + 1.0f) * 127.5f;
  return x <= 0.0f ? 0 : x >= 255.0f ? 255 : (unsigned char)(x + 0.5f);
}

int rt_png_write_grid(const char *path, const RtTensor *images, int cols, int scale, RtErr *e) {
  if (images->dtype != RT_F32 || images->rank != 4 || images->dim[1] != 3 || images->dim[0] < 1)
    return rt_err(e, "%s: images must be f32[B, 3, H, W]", path);
  int64_t n = images->dim[0], h = images->dim[2], w = images->dim[3];
  if (scale < 1) scale = 1;
  if (cols <= 0) {
    cols = 1;
    while ((int64_t)cols * cols < n) cols++;
  }
  int64_t rows = (n + cols - 1) / cols, gap = 2;
  int64_t cw = w * scale, ch = h * scale;
  int64_t W = cols * cw + (cols + 1) * gap, H = rows * ch + (rows + 1) * gap;
  if (W > 65535 || H > 65535) return rt_err(e, "%s: a %lldx%lld grid is too large for one PNG", path, (long long)W, (long long)H);
  unsigned char *px = malloc((size_t)(W * H * 3));
  if (!px) return rt_err(e, "%s: out of memory", path);
  memset(px, 96, (size_t)(W * H * 3));
  const float *src = rt_f32(images);
  for (int64_t k = 0; k < n; k++) {
    int64_t x0 = gap + (k % cols) * (cw + gap), y0 = gap + (k / cols) * (ch + gap);
    for (int64_t y = 0; y < ch; y++)
      for (int64_t x = 0; x < cw; x++)
        for (int c = 0; c < 3; c++)
          px[((y0 + y) * W + x0 + x) * 3 + c] = to_byte(src[((k * 3 + c) * h + y / scale) * w + x / scale]);
  }
  PngBuf b = {0};
  int ok = stbi_write_png_to_func(png_sink, &b, (int)W, (int)H, 3, px, (int)(W * 3));
  free(px);
  if (!ok || b.oom) {
    free(b.data);
    return rt_err(e, "%s: PNG encoding failed", path);
  }
  RtChunk chunk = {b.data, b.size};
  int rc = rt_write_file_atomic(path, &chunk, 1, e);
  free(b.data);
  return rc;
}
