/* data.h — datasets: where a training step's batches come from.
 *
 * A dataset is opened for one entry (usually the training step) and fills
 * some of its inputs, by name, with the batch of a given step. The batch of
 * step s is a pure function of (seed, s): examples s*B .. s*B+B-1 of a
 * stream in which example i depends only on (seed, i). So a run resumed at
 * step s needs nothing but the seed to see the same data again, and no
 * dataset has state worth saving.
 *
 * Specs (what --data takes):
 *   shapes                         the built-in generator below; fills the
 *                                  entry's image input, the f32 [B, 3, S, S]
 *                                  one (named x or image if there are several)
 *   fashion-mnist[:test]           Zalando's Fashion-MNIST (Debian's
 *                                  dataset-fashion-mnist: the idx files in
 *                                  /usr/share/datasets/fashion-mnist, or in
 *                                  $DAL_FASHION_MNIST), the training split
 *                                  (60000) or the test split (10000); fills
 *                                  the image input like shapes: the 28x28
 *                                  grey image resized to S x S (area average
 *                                  when shrinking, bilinear when enlarging)
 *                                  in all three channels, in [-1, 1]; the
 *                                  caption names the class ("an ankle
 *                                  boot"). Each epoch visits every image
 *                                  once, in an order shuffled from (seed,
 *                                  epoch)
 *   folder:PATH                    your own images: PATH/captions.tsv lists
 *                                  FILE<TAB>CAPTION per line (FILE relative
 *                                  to PATH; blank lines and lines starting
 *                                  with # are skipped); any format
 *                                  stb_image reads (PNG, JPEG, BMP, ...);
 *                                  the centred square of each, resized to
 *                                  S x S, in RGB, in [-1, 1]. All images are
 *                                  decoded when the dataset opens (a bad
 *                                  file is an error naming it and its
 *                                  line); epochs are shuffled as above
 *   npy:NAME=FILE.npy[,NAME=FILE.npy...]
 *                                  fixed arrays [N, ...]: input NAME gets rows
 *                                  (s*B + j) mod N, j = 0..B-1; every array
 *                                  has the same N, and the row shape and
 *                                  dtype of its input
 * Module prefix: rt_.
 */
#ifndef DAL_RT_DATA_H
#define DAL_RT_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "program.h"

typedef struct RtDataset RtDataset;

/* Opens 'spec' for 'entry' (which must outlive the dataset). NULL with a
 * message naming the spec, file or input on error. */
RtDataset *rt_data_open(const char *spec, const RtEntrySpec *entry, uint64_t seed, RtErr *e);
void rt_data_free(RtDataset *d); /* NULL is a no-op */

/* Whether the dataset fills entry input i. */
bool rt_data_fills(const RtDataset *d, int i);
/* The batch size B (dim 0 of the inputs it fills). */
int64_t rt_data_batch(const RtDataset *d);
/* Writes the batch of 'step' into inputs[i] for every input i it fills
 * (tensors of the entry's dtype and shape; the others are not touched). */
int rt_data_fill(RtDataset *d, uint64_t step, RtTensor *const *inputs, RtErr *e);
/* The caption of example j of the last batch filled, or NULL if the
 * dataset has none. */
const char *rt_data_caption(const RtDataset *d, int64_t j);

/* ---- shapes: coloured circles, squares and triangles (data_shapes.c) ----
 *
 * A scene is one or two objects on a plain dark background, placed in the
 * cells of a 3x3 grid, with a caption from a small grammar:
 *   one object:   "a SIZE COLOUR SHAPE PLACE"          "a small red circle at the top left"
 *                 PLACE: at the top left | at the top | at the top right | on the left |
 *                        in the center | on the right | at the bottom left | at the bottom |
 *                        at the bottom right
 *   two objects:  "a COLOUR SHAPE RELATION a COLOUR SHAPE"   (both small)
 *                 RELATION: above | below | to the left of | to the right of
 *                 (the first object is in the same column, resp. row, as the
 *                 second, and above / below / left / right of it)
 * Example i of seed s draws everything from Philox4x32-10 (rng.h) with key
 * s and counters {i lo, i hi, RT_SHAPES_TAG, n}, n = 0, 1, ...; images are
 * rendered with 4x4 supersampling and scaled to [-1, 1]. */
#define RT_SHAPES_TAG 0x5A4E5053u /* counter word 2 of the shapes stream */

typedef enum { RT_SHAPE_CIRCLE, RT_SHAPE_SQUARE, RT_SHAPE_TRIANGLE, RT_SHAPE_KINDS } RtShapeKind;
#define RT_SHAPES_COLOURS 5

typedef struct {
  RtShapeKind kind;
  int colour;      /* 0 .. RT_SHAPES_COLOURS-1 */
  bool large;
  int row, col;    /* grid cell, 0..2 each (row 0 at the top) */
  float cx, cy, r; /* centre and half-size in pixels (x to the right, y down) */
} RtShapesObject;

typedef struct {
  int nobj;
  RtShapesObject obj[2];
  char caption[96];
} RtShapesScene;

/* Scene of example 'index' of the stream 'seed' for images of side 'size'
 * (>= 8; cells scale with it, the scene is otherwise the same at any size). */
void rt_shapes_scene(uint64_t seed, uint64_t index, int size, RtShapesScene *sc);
/* Draws sc into img, f32 [3, size, size] in [-1, 1]. */
void rt_shapes_render(const RtShapesScene *sc, int size, float *img);
const char *rt_shapes_colour_name(int colour);
/* The colour's RGB in [0, 1]; the background's for colour -1. */
void rt_shapes_colour_rgb(int colour, float rgb[3]);
const char *rt_shapes_kind_name(RtShapeKind kind);

/* ---- fashion-mnist (data_fashion.c) ---- */

/* The caption of class 'label' (0..9: "a t-shirt", "a pair of trousers",
 * ...), NULL outside. */
const char *rt_fashion_caption(int label);

/* ---- PNG output (data_png.c) ---- */

/* Writes images, f32 [B, 3, S, S] in [-1, 1] (clamped), as one PNG grid of
 * 'cols' columns (<= 0: about square), each image enlarged 'scale' times
 * (nearest neighbour, >= 1), 2-pixel grey gaps. Atomic, like every file the
 * runtime writes. */
int rt_png_write_grid(const char *path, const RtTensor *images, int cols, int scale, RtErr *e);

#endif
