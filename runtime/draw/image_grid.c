/* image_grid.c — a PNG grid of images with a caption band under each row
 * (image_grid.h): the images are copied into a cairo image surface, the
 * captions are set by caption_fit.c and drawn with cairo, and cairo's PNG
 * encoder writes the file atomically through fileio.h. */
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "runtime/io/fileio.h"
#include "runtime/draw/image_grid_impl.h"

#define GAP 4          /* pixels around and between images and rows */
#define TEXT_MARGIN 2  /* pixels kept free at each end of a caption line */
#define CAIRO_MAX 32767 /* cairo's largest image surface side */
static const double BACKGROUND = 240 / 255.0, INK = 20 / 255.0;

int rt_captioned_grid_layout(int64_t h, int64_t w, int rows, int cols, int scale, RtGridLayout *l, RtErr *e) {
  if (rows < 1 || cols < 1) return rt_err(e, "a grid needs at least one row and one column, not %d x %d", rows, cols);
  if (scale < 1) return rt_err(e, "the scale must be at least 1, not %d", scale);
  if (h < 1 || w < 1) return rt_err(e, "the images are empty (%lld x %lld)", (long long)h, (long long)w);
  int band = rt_caption_text_height() + 2 * RT_CAPTION_PAD;
  if (h > CAIRO_MAX || w > CAIRO_MAX || scale > CAIRO_MAX || rows > CAIRO_MAX || cols > CAIRO_MAX)
    return rt_err(e, "a grid of %d x %d images of %lld x %lld pixels at scale %d is too large for one PNG", rows, cols,
                  (long long)h, (long long)w, scale);
  int64_t cw = w * scale, ch = h * scale;
  int64_t W = GAP + cols * (cw + GAP), H = GAP + rows * (ch + band + GAP);
  if (W > CAIRO_MAX || H > CAIRO_MAX)
    return rt_err(e, "a %lld x %lld pixel grid is too large for one PNG (at most %d a side)", (long long)W,
                  (long long)H, CAIRO_MAX);
  *l = (RtGridLayout){.width = (int)W, .height = (int)H, .cell_w = (int)cw, .cell_h = (int)ch, .gap = GAP,
                      .band_h = band};
  return 0;
}

static uint32_t to_byte(float v) {
  float x = (v + 1.0f) * 127.5f;
  return x <= 0.0f || x != x ? 0 : x >= 255.0f ? 255 : (uint32_t)(x + 0.5f);
}

/* Image k of images (f32 [n, 3, h, w]) into the surface at (x0, y0),
 * each pixel a scale x scale block. */
static void copy_image(cairo_surface_t *s, const RtTensor *images, int64_t k, int x0, int y0, int scale) {
  int64_t h = images->dim[2], w = images->dim[3], plane = h * w;
  const float *src = rt_f32(images) + k * 3 * plane;
  uint32_t *px = (uint32_t *)(void *)cairo_image_surface_get_data(s);
  int stride = cairo_image_surface_get_stride(s) / 4;
  for (int64_t y = 0; y < h * scale; y++)
    for (int64_t x = 0; x < w * scale; x++) {
      int64_t i = (y / scale) * w + x / scale;
      px[(y0 + y) * stride + x0 + x] = to_byte(src[i]) << 16 | to_byte(src[plane + i]) << 8 | to_byte(src[2 * plane + i]);
    }
}

/* The caption in the band at (x, y), width x height pixels: its lines
 * centred, from the top (right under the row's images), in ink; nothing is
 * drawn outside the band. */
static int draw_caption(cairo_t *cr, const char *caption, int x, int y, int width, int height, RtErr *e) {
  RtCaptionFit fit;
  if (rt_caption_fit_cr(cr, caption, width - 2 * TEXT_MARGIN, height - 2 * RT_CAPTION_PAD, &fit, e) != 0) return -1;
  rt_caption_font(cr, fit.size);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  double lh = fit.size * RT_CAPTION_LINE, top = y + RT_CAPTION_PAD;
  cairo_save(cr);
  cairo_rectangle(cr, x, y, width, height);
  cairo_clip(cr);
  cairo_set_source_rgb(cr, INK, INK, INK);
  for (int i = 0; i < fit.lines; i++) {
    cairo_text_extents_t t;
    cairo_text_extents(cr, fit.line[i], &t);
    double left = fmin(0.0, t.x_bearing), right = fmax(t.x_advance, t.x_bearing + t.width);
    double lx = round(x + (width - (right - left)) / 2 - left);
    double base = round(top + i * lh + (lh - (fe.ascent + fe.descent)) / 2 + fe.ascent);
    cairo_move_to(cr, lx, base);
    cairo_show_text(cr, fit.line[i]);
  }
  cairo_restore(cr);
  rt_caption_fit_free(&fit);
  return 0;
}

/* cairo's PNG output into the atomic file. */
typedef struct {
  RtAtomicFile *f;
  RtErr *e;
  int failed;
} PngSink;

static cairo_status_t png_out(void *closure, const unsigned char *data, unsigned int n) {
  PngSink *sink = closure;
  if (rt_atomic_write(sink->f, data, n, sink->e) == 0) return CAIRO_STATUS_SUCCESS;
  sink->failed = 1;
  return CAIRO_STATUS_WRITE_ERROR;
}

int rt_cairo_write_png(const char *path, cairo_surface_t *s, RtErr *e) {
  RtAtomicFile *f = rt_atomic_open(path, e);
  if (!f) return -1;
  PngSink sink = {f, e, 0};
  cairo_status_t st = cairo_surface_write_to_png_stream(s, png_out, &sink);
  if (st == CAIRO_STATUS_SUCCESS) return rt_atomic_commit(f, e);
  rt_atomic_abort(f);
  return sink.failed ? -1 : rt_err(e, "%s: PNG encoding failed: %s", path, cairo_status_to_string(st));
}

int rt_png_write_captioned_grid(const char *path, const RtTensor *images, int rows, int cols,
                                const char *const *captions, int scale, RtErr *e) {
  char shape[96];
  if (!images || images->dtype != RT_F32 || images->rank != 4 || images->dim[1] != 3)
    return rt_err(e, "%s: the images must be f32[rows*cols, 3, H, W], not %s%s", path,
                  images ? rt_dtype_name(images->dtype) : "nothing",
                  images ? rt_shape_str(images->rank, images->dim, shape, sizeof shape) : "");
  RtErr le;
  RtGridLayout l;
  if (rt_captioned_grid_layout(images->dim[2], images->dim[3], rows, cols, scale, &l, &le) != 0)
    return rt_err(e, "%s: %s", path, le.msg);
  if ((int64_t)rows * cols != images->dim[0])
    return rt_err(e, "%s: %d rows x %d columns are %lld images, but there are %lld", path, rows, cols,
                  (long long)rows * cols, (long long)images->dim[0]);
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, l.width, l.height);
  cairo_t *cr = cairo_create(s);
  cairo_set_source_rgb(cr, BACKGROUND, BACKGROUND, BACKGROUND);
  cairo_paint(cr);
  if (cairo_status(cr) == CAIRO_STATUS_SUCCESS) { /* else no pixels to copy into: reported below */
    cairo_surface_flush(s);
    for (int64_t k = 0; k < images->dim[0]; k++)
      copy_image(s, images, k, GAP + (int)(k % cols) * (l.cell_w + GAP),
                 GAP + (int)(k / cols) * (l.cell_h + l.band_h + GAP), scale);
    cairo_surface_mark_dirty(s);
  }
  int rc = 0;
  for (int r = 0; rc == 0 && captions && r < rows; r++) {
    int y = GAP + r * (l.cell_h + l.band_h + GAP) + l.cell_h;
    RtErr ce;
    if (captions[r] && captions[r][0] && draw_caption(cr, captions[r], GAP, y, l.width - 2 * GAP, l.band_h, &ce) != 0)
      rc = rt_err(e, "%s: row %d's %s", path, r, ce.msg);
  }
  if (rc == 0 && cairo_status(cr) != CAIRO_STATUS_SUCCESS)
    rc = rt_err(e, "%s: drawing failed: %s", path, cairo_status_to_string(cairo_status(cr)));
  if (rc == 0) rc = rt_cairo_write_png(path, s, e);
  cairo_destroy(cr);
  cairo_surface_destroy(s);
  return rc;
}

void rt_image_grid_release(void) {
  cairo_debug_reset_static_data(); /* first: it lets go of fontconfig's patterns */
  FcFini();
}
