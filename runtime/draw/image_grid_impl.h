/* image_grid_impl.h — what image_grid.c and caption_fit.c (and plot.c)
 * share: setting a caption with a given cairo context, writing a PNG.
 * Internal to the runtime. */
#ifndef DAL_RT_IMAGE_GRID_IMPL_H
#define DAL_RT_IMAGE_GRID_IMPL_H

#include <cairo.h>

#include "runtime/draw/image_grid.h"

/* A line's height at font size 'size' (the band holds two at
 * RT_CAPTION_PX). */
#define RT_CAPTION_LINE 1.2
/* The band's padding above and below the text, in pixels. */
#define RT_CAPTION_PAD 3

/* Selects the caption font (DejaVu Sans, or fontconfig's nearest sans) on cr. */
void rt_caption_font(cairo_t *cr, double size);
/* rt_caption_fit with cr's surface for measuring; cr's font is left set to
 * fit->size. The band's text area is 'width' x 'height' pixels. */
int rt_caption_fit_cr(cairo_t *cr, const char *caption, int width, int height, RtCaptionFit *fit, RtErr *e);
/* The text area of a band (band_h minus the padding). */
int rt_caption_text_height(void);

/* Writes surface s as a PNG at 'path', atomically (fileio.h); -1 with a
 * message naming 'path'. Also used by plot.c. */
int rt_cairo_write_png(const char *path, cairo_surface_t *s, RtErr *e);

#endif
