/* image_grid.h — a PNG grid of images with a caption under each row, drawn
 * with cairo (Debian's libcairo2-dev) in a sans font found by fontconfig
 * (DejaVu Sans from fonts-dejavu-core).
 *
 * Layout, in pixels (RtGridLayout): a light background; image (r, c),
 * enlarged 'scale' times (nearest neighbour), has its top-left corner at
 *   x = gap + c * (cell_w + gap),   y = gap + r * (cell_h + band_h + gap);
 * row r's caption band lies right under its images, rows y + cell_h ..
 * y + cell_h + band_h - 1 and columns gap .. width - gap - 1 (the row's
 * width), with the caption in dark text, its lines centred, from the
 * band's top. A caption that does not
 * fit on one line is wrapped onto a second, then set smaller (down to
 * RT_CAPTION_MIN_PX, where three lines fit); if even that is not enough
 * the last line ends in an ellipsis ("…"): nothing is cut silently, and
 * nothing is drawn outside the band.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_IMAGE_GRID_H
#define DAL_RT_IMAGE_GRID_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/core/rt_error.h"
#include "runtime/core/tensor.h"

#define RT_CAPTION_PX 14.0    /* the caption's font size when it fits */
#define RT_CAPTION_MIN_PX 8.0 /* the smallest size it is shrunk to */
#define RT_CAPTION_MAX_LINES 3

typedef struct {
  int width, height;  /* of the whole PNG */
  int cell_w, cell_h; /* one enlarged image */
  int gap;            /* the border, and between images and rows */
  int band_h;         /* the caption band under each row */
} RtGridLayout;

/* The layout of a rows x cols grid of h x w images enlarged 'scale'
 * times; -1 (with a message) if a count is < 1 or the PNG would be too
 * large for cairo (32767 pixels a side). */
int rt_captioned_grid_layout(int64_t h, int64_t w, int rows, int cols, int scale, RtGridLayout *l, RtErr *e);

/* Writes images, f32 [rows*cols, 3, H, W] in [-1, 1] (clamped), row-major
 * (row r holds images r*cols .. r*cols + cols - 1), as one PNG with
 * captions[r] under row r (captions may be NULL, and any caption NULL or
 * "": an empty band). Captions are UTF-8 (invalid bytes and control
 * characters are shown as '?' and spaces). The file is written atomically.
 * -1 with a message naming 'path' and the problem (shape, counts, an
 * unwritable folder). */
int rt_png_write_captioned_grid(const char *path, const RtTensor *images, int rows, int cols,
                                const char *const *captions, int scale, RtErr *e);

/* Frees cairo's and fontconfig's font caches (kept for the next grid):
 * call it once at the end of a program that drew grids, after the last
 * one, so that LeakSanitizer does not report them. A later grid still
 * works (the caches are rebuilt). */
void rt_image_grid_release(void);

/* How a caption is set in a band 'width' pixels wide (what the grid
 * draws): the font size, its lines (each at most 'width' pixels wide at
 * that size, malloc'd) and whether the last one ends in an ellipsis
 * because the caption did not fit. */
typedef struct {
  double size;
  int lines;
  char *line[RT_CAPTION_MAX_LINES];
  bool ellipsis;
} RtCaptionFit;

int rt_caption_fit(const char *caption, int width, RtCaptionFit *fit, RtErr *e);
void rt_caption_fit_free(RtCaptionFit *fit);

#endif
