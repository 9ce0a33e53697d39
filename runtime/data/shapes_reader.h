/* shapes_reader.h — reading `shapes` images back, and judging them against
 * captions: the rule-based judge of text -> image on the shapes dataset.
 *
 * rt_shapes_read (shapes_reader.c) recovers the scene an image f32
 * [3, S, S] in [-1, 1] shows, knowing how the renderer draws (data.h):
 *   - each pixel's colour is split into background and a palette colour
 *     (the least-squares palette colour and its coverage in [0, 1]);
 *     pixels at least half covered are foreground;
 *   - 8-connected foreground components are the objects; each takes the
 *     pixels within 2 steps of it (nearest first), and one whose total
 *     coverage is under 0.35 of the smallest object's area is noise;
 *   - an object's colour is the palette colour that explains its pixels
 *     best (least squares over them);
 *   - its kind and size class are the renderer's shape (circle, square,
 *     triangle; small or large, i.e. half-size S/3 * 0.26 or 0.42) whose
 *     coverage, rendered as data_shapes.c does (rt_shapes_hits) at the
 *     best centre (searched around the coverage centroid), is nearest
 *     (sum of squared coverage differences) to the object's;
 *   - its grid cell is the cell of that fitted centre.
 * Objects are listed by total coverage, largest first.
 *
 * rt_shapes_parse_caption reads a caption of the grammar of data.h, and
 * rt_shapes_match (shapes_match.c) decides whether a read scene shows it:
 *   count     as many objects as the caption names
 *   colour    each named object's colour
 *   kind      each named object's kind
 *   place     one object: its grid cell; two: the relation, as the
 *             dataset means it ("A above B": same column, A's row above
 *             B's; "A to the left of B": same row, A's column left of B's)
 *   size      one object: small or large as named; two: both small
 * each attribute judged on the assignment of read objects to the named
 * ones that matches the most attributes (read objects beyond the
 * caption's are ignored there, but fail count); 'all' is every attribute.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_SHAPES_READER_H
#define DAL_RT_SHAPES_READER_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/data/data.h"

#define RT_SHAPES_READ_MAX 8 /* objects stored per image (more are counted) */

typedef struct {
  int nobj;                               /* objects found */
  RtShapesObject obj[RT_SHAPES_READ_MAX]; /* the first min(nobj, max), largest first */
} RtShapesRead;

/* Reads img, f32 [3, size, size] in [-1, 1] (size >= 8). Errors: a bad
 * size, out of memory. */
int rt_shapes_read(const float *img, int size, RtShapesRead *out, RtErr *e);

typedef struct {
  int nobj;          /* 1 or 2 */
  int colour[2];     /* per named object */
  RtShapeKind kind[2];
  bool large;        /* one object */
  int row, col;      /* one object: its cell */
  int relation;      /* two objects: RtShapesRelation */
} RtShapesCaption;

/* Parses a caption of the shapes grammar (surrounding white space
 * ignored). An error quoting it if it is not in the grammar. */
int rt_shapes_parse_caption(const char *caption, RtShapesCaption *c, RtErr *e);
/* Whether the caption names an object with a (colour, kind) in 'pairs'
 * (data.h's held-out pairs). */
bool rt_shapes_caption_uses_pair(const RtShapesCaption *c, uint32_t pairs);

typedef struct {
  bool count, colour, kind, place, size, all;
} RtShapesMatch;

RtShapesMatch rt_shapes_match(const RtShapesCaption *c, const RtShapesRead *r);

/* Counts of images judged and of matches per attribute. */
typedef struct {
  int64_t images, count, colour, kind, place, size, all;
} RtShapesTally;

void rt_shapes_tally_add(RtShapesTally *t, RtShapesMatch m);

/* Judges images f32 [ncaption * n, 3, size, size] in [-1, 1], caption
 * i's n images being rows i*n .. i*n+n-1 (as `generate --out-npy` writes
 * them), adding each to tally[0] and, when 'holdout' (data.h's held-out
 * pairs) is not 0, to tally[1] if its caption uses none of them (a seen
 * composition) or tally[2] if it does (never seen). Errors: a caption not
 * in the grammar (naming it and its index), those of rt_shapes_read. */
int rt_shapes_judge(const float *images, int size, const char *const *captions, int64_t ncaption, int64_t n,
                    uint32_t holdout, RtShapesTally tally[3], RtErr *e);

#endif
