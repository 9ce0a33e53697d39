/* data_image.c — what the image datasets share (data_impl.h): 8-bit
 * images cropped and resampled to the model's S x S, and the per-epoch
 * shuffled order of each epoch. */
#include <stdlib.h>
#include <string.h>

#include "runtime/data/data_impl.h"
#include "runtime/core/rng.h"

/* Row r of the (out, in) resampling matrix: each output pixel the average
 * of the source pixels it covers when shrinking (area), bilinear between
 * pixel centres when enlarging. Rows sum to 1. */
static void resize_weights(int out, int in, float *w) {
  double scale = (double)in / out;
  memset(w, 0, sizeof *w * (size_t)out * (size_t)in);
  for (int r = 0; r < out; r++) {
    float *row = w + (size_t)r * in;
    if (scale > 1) {
      double lo = r * scale, hi = lo + scale;
      for (int k = (int)lo; k < in && k < hi; k++) {
        double a = k < lo ? lo : k, b = k + 1 > hi ? hi : k + 1;
        row[k] = (float)((b - a) / scale);
      }
    } else {
      double x = (r + 0.5) * scale - 0.5;
      x = x < 0 ? 0 : x > in - 1 ? in - 1 : x;
      int k = (int)x;
      double t = x - k;
      row[k] += (float)(1 - t);
      if (t > 0) row[k + 1] += (float)t;
    }
  }
}

int rt_image_resize(const unsigned char *src, int w, int h, int channels, int S, float *dst, RtErr *e) {
  int side = w < h ? w : h, x0 = (w - side) / 2, y0 = (h - side) / 2; /* the centred square */
  float *wt = malloc(sizeof *wt * (size_t)S * (size_t)side);
  float *tmp = malloc(sizeof *tmp * (size_t)side * (size_t)S);
  if (!wt || !tmp) {
    free(wt);
    free(tmp);
    return rt_err(e, "out of memory resizing a %dx%d image", w, h);
  }
  resize_weights(S, side, wt);
  int64_t plane = (int64_t)S * S;
  for (int c = 0; c < channels; c++) {
    for (int y = 0; y < side; y++) { /* columns first: tmp (side, S) */
      const unsigned char *row = src + ((size_t)(y0 + y) * w + x0) * channels + c;
      for (int x = 0; x < S; x++) {
        const float *wx = wt + (size_t)x * side;
        float acc = 0;
        for (int k = 0; k < side; k++)
          if (wx[k] != 0) acc += wx[k] * row[(size_t)k * channels];
        tmp[(size_t)y * S + x] = acc;
      }
    }
    for (int y = 0; y < S; y++) {
      const float *wy = wt + (size_t)y * side;
      for (int x = 0; x < S; x++) {
        float acc = 0;
        for (int k = 0; k < side; k++)
          if (wy[k] != 0) acc += wy[k] * tmp[(size_t)k * S + x];
        float v = acc / 127.5f - 1.0f;
        dst[c * plane + (int64_t)y * S + x] = v < -1 ? -1 : v > 1 ? 1 : v;
      }
    }
  }
  free(wt);
  free(tmp);
  return 0;
}

int rt_epoch_order_init(RtEpochOrder *o, int64_t n, uint32_t tag, RtErr *e) {
  *o = (RtEpochOrder){.n = n, .tag = tag, .order = malloc(sizeof *o->order * (size_t)(n > 0 ? n : 1))};
  return o->order ? 0 : rt_err(e, "dataset: out of memory");
}

void rt_epoch_order_free(RtEpochOrder *o) { free(o->order); }

int64_t rt_epoch_order_pick(RtEpochOrder *o, uint64_t seed, uint64_t i) {
  uint64_t epoch = i / (uint64_t)o->n;
  if (!o->have || o->epoch != epoch) {
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    for (int64_t k = 0; k < o->n; k++) o->order[k] = (uint32_t)k;
    for (int64_t k = o->n - 1; k > 0; k--) {
      uint32_t ctr[4] = {(uint32_t)epoch, (uint32_t)(epoch >> 32), o->tag, (uint32_t)k}, out[4];
      rt_philox4x32_10(ctr, key, out);
      uint64_t r = ((uint64_t)out[0] << 32 | out[1]) % (uint64_t)(k + 1);
      uint32_t t = o->order[k];
      o->order[k] = o->order[r];
      o->order[r] = t;
    }
    o->epoch = epoch;
    o->have = true;
  }
  return o->order[i % (uint64_t)o->n];
}
