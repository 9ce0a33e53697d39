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
 *   shapes[:test|val][:FILTER]     the built-in generator below; fills the
 *                                  entry's image input, the f32 [B, 3, S, S]
 *                                  one (named x or image if there are several).
 *                                  Example i of `shapes` (the training split)
 *                                  is scene i of the seed's stream, for
 *                                  i < 2^40; example i of `shapes:test` (the
 *                                  held-out split) is scene 2^40 + i, of
 *                                  `shapes:val` (held out too, for tuning)
 *                                  scene 2^63 + i: no two splits share a
 *                                  scene index. FILTER
 *                                  (holdout[=SPEC], seen[=SPEC],
 *                                  novel[=SPEC]) leaves out or keeps only
 *                                  the scenes that use held-out (colour,
 *                                  kind) pairs: see "held-out pairs" below
 *   fashion-mnist[:train|val|test] Zalando's Fashion-MNIST (Debian's
 *                                  dataset-fashion-mnist: the idx files in
 *                                  /usr/share/datasets/fashion-mnist, or in
 *                                  $DAL_FASHION_MNIST): the training file
 *                                  (60000), its first 55000 (train) or last
 *                                  5000 (val: for tuning, never trained on
 *                                  with :train), or the test split (10000); fills
 *                                  the image input like shapes: the 28x28
 *                                  grey image resized to S x S (area average
 *                                  when shrinking, bilinear when enlarging)
 *                                  in all three channels, in [-1, 1]; the
 *                                  caption names the class ("an ankle
 *                                  boot"); an i32 [B] input called "label",
 *                                  if the entry has one, gets the class
 *                                  0..9 (a classifier's). Each epoch visits every image
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
 *                                  line, so is one of more than 32
 *                                  megapixels); epochs are shuffled as above
 *   npy:NAME=FILE.npy[,NAME=FILE.npy...]
 *                                  fixed arrays [N, ...]: input NAME gets rows
 *                                  (s*B + j) mod N, j = 0..B-1; every array
 *                                  has the same N, and the row shape and
 *                                  dtype of its input
 *   tokens:FILE                    a token cache (`EXE tokenize`, below):
 *                                  fills the entry's inputs "text" i32
 *                                  [B, Lt] and "image" i32 [B, g*g] (or
 *                                  [B, g, g]) with the rows of the examples
 *                                  the dataset it was made from would give
 *                                  at that step, so training from the cache
 *                                  sees the batches the images would have
 *                                  given: rows s*B .. s*B+B-1 for shapes
 *                                  (the run's seed must be the cache's),
 *                                  the (seed, epoch) shuffle of the source
 *                                  for fashion-mnist and folder. A step
 *                                  that needs an example the cache does not
 *                                  hold is an error.
 *
 * Captions as text (rt_data_set_tokenizer, `--tokenizer TOK.json`): a
 * captioned dataset (shapes, fashion-mnist, folder) also fills the entry's
 * input "text", i32 [B, Lt], with each example's caption BPE-encoded as
 * `dalc bpe encode --len Lt` does (bpe.h: cut at Lt, position p past the
 * caption holds Vt + p, Vt the vocabulary the tokenizer was made for).
 * A caption longer than Lt tokens is cut, with one warning on stderr per
 * distinct caption (for the first 10 such captions; later ones are only
 * counted); a caption with a byte the tokenizer never saw is an error
 * naming it (dal's BPE has no byte fallback: such bytes would all become
 * the unknown id 0), found when the tokenizer is set, before any batch.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_DATA_H
#define DAL_RT_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/data/bpe.h"
#include "runtime/sched/program.h"

typedef struct RtDataset RtDataset;
typedef struct RtTextEncoder RtTextEncoder;

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
/* Checks that steps first .. last-1 can all be filled (a token cache holds
 * only so many examples), so that a run fails before its first step
 * rather than at the step it runs out; the error names the step. */
int rt_data_check_steps(RtDataset *d, uint64_t first, uint64_t last, RtErr *e);
/* The caption of example j of the last batch filled, or NULL if the
 * dataset has none. */
const char *rt_data_caption(const RtDataset *d, int64_t j);
/* Whether the dataset's examples have captions (shapes, fashion-mnist,
 * folder). */
bool rt_data_has_captions(const RtDataset *d);

/* Encodes every example's caption into the entry's input "text" (i32
 * [B, Lt], B the dataset's batch) with the tokenizer at 'path' (see the
 * file comment). For a tokens dataset, which fills "text" itself, checks
 * instead that 'path' is the tokenizer the cache was made with. Errors:
 * no such input, no captions, an unreadable tokenizer. */
int rt_data_set_tokenizer(RtDataset *d, const char *path, RtErr *e);
/* Checks up front that 't' knows every byte of every caption the dataset
 * can give (folder, fashion-mnist: each stored caption; shapes: each word
 * of its grammar), so a bad caption stops a run before its first step;
 * rt_data_set_tokenizer does it itself. */
int rt_data_check_text(RtDataset *d, RtTextEncoder *t, RtErr *e);
/* The encoder set by rt_data_set_tokenizer, or NULL. */
const RtTextEncoder *rt_data_text(const RtDataset *d);

/* The number of stored examples of a dataset that has them (fashion-mnist,
 * folder, a tokens cache of those); 0 for a generated stream (shapes) and
 * for npy. */
int64_t rt_data_size(const RtDataset *d);
/* Fills the inputs (as rt_data_fill does, captions and text included)
 * with examples k[0 .. B) directly: stored example k[j] (k[j] < size) of a
 * dataset that has them, example k[j] of the stream of a generated one.
 * An error for npy. */
int rt_data_fill_examples(RtDataset *d, const uint64_t *k, RtTensor *const *inputs, RtErr *e);

/* ---- captions as GPT text ids (data_text.c) ---- */

/* Loads the tokenizer at 'path' for texts of 'len' ids. */
RtTextEncoder *rt_text_encoder_new(const char *path, int64_t len, RtErr *e);
void rt_text_encoder_free(RtTextEncoder *t); /* NULL is a no-op */
const RtBpe *rt_text_encoder_bpe(const RtTextEncoder *t);
const char *rt_text_encoder_path(const RtTextEncoder *t);
/* ids[0 .. len): 'caption' as `dalc bpe encode --len` encodes it
 * (rt_bpe_encode_padded with the tokenizer's vocabulary). A caption with a
 * byte the tokenizer never saw is an error naming the caption and the
 * byte; a caption longer than len tokens is cut, with a warning on stderr
 * the first time that caption is met (for the first 10 distinct captions
 * cut; rt_text_encoder_cut counts them all). */
int rt_text_encode(RtTextEncoder *t, const char *caption, int32_t *ids, RtErr *e);
/* rt_text_encode's check alone: an error if 'caption' has a byte the
 * tokenizer never saw; nothing is encoded or counted. */
int rt_text_check(RtTextEncoder *t, const char *caption, RtErr *e);
/* How many distinct captions have been cut so far. */
int64_t rt_text_encoder_cut(const RtTextEncoder *t);
/* A fingerprint of a tokenizer: FNV-1a (64 bits) over its vocabulary and
 * every id's bytes, as 16 hex digits in out. Equal for the same tokenizer
 * whatever its file looks like. */
void rt_bpe_fingerprint(const RtBpe *b, char out[17]);

/* ---- token caches (data_tokens.c) ----
 *
 * `EXE tokenize` writes, and `tokens:FILE` reads, a safetensors file with
 *   "text"   i32 [N, Lt]    row r: the caption of example r, encoded as above
 *   "image"  i32 [N, g*g]   row r: the image tokens of example r (row-major)
 * where example r is stored example r of a dataset that has them
 * (fashion-mnist, folder: dataset order, not a shuffled one) and example r
 * of the stream of a generated one (shapes, shapes:test), and string
 * metadata
 *   dal.kind             "token-cache"
 *   dal.data             the spec the examples came from ("fashion-mnist")
 *   dal.data.size        its stored examples (0: a generated stream)
 *   dal.count            N
 *   dal.seed             the seed of the stream (what shapes' scenes depend on)
 *   dal.tokenizer        the tokenizer's path, as given
 *   dal.tokenizer.vocab  the vocabulary Vt it pads from
 *   dal.tokenizer.hash   rt_bpe_fingerprint of it
 *   dal.model, dal.config, dal.fn, dal.params, dal.init
 *                        the program and entry that made the image tokens,
 *                        and where its parameters came from ("" if nowhere)
 */
typedef struct {
  const char *data;
  int64_t size;
  uint64_t seed;
  const RtTextEncoder *text;
  const char *model, *config, *fn, *params, *init;
} RtTokenCacheInfo;

/* Writes a token cache atomically: text i32 [N, Lt], image i32 [N, T]. */
int rt_token_cache_write(const char *path, const RtTensor *text, const RtTensor *image, const RtTokenCacheInfo *info,
                         RtErr *e);

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
 * Scene i of seed s draws everything from Philox4x32-10 (rng.h) with key
 * s and counters {i lo, i hi, RT_SHAPES_TAG, n}, n = 0, 1, ...; images are
 * rendered with 4x4 supersampling and scaled to [-1, 1]. The training split
 * is scenes [0, RT_SHAPES_TEST_BASE), the test split [RT_SHAPES_TEST_BASE,
 * RT_SHAPES_VAL_BASE), the validation split the scenes from
 * RT_SHAPES_VAL_BASE on. */
#define RT_SHAPES_TAG 0x5A4E5053u /* counter word 2 of the shapes stream */
#define RT_SHAPES_TEST_BASE ((uint64_t)1 << 40)
#define RT_SHAPES_VAL_BASE ((uint64_t)1 << 63)

/* fashion-mnist:train and :val cut the 60000 training images in two. */
#define RT_FASHION_TRAIN 55000
#define RT_FASHION_VAL 5000

typedef enum { RT_SHAPES_TRAIN, RT_SHAPES_TEST, RT_SHAPES_VAL } RtShapesSplit;

/* The scene index of example i of a split; false if there is no such
 * example (past the split's end). */
bool rt_shapes_index(RtShapesSplit split, uint64_t i, uint64_t *scene);

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
/* How many of the 4x4 samples of pixel (x, y) fall inside o (0 .. 16):
 * the renderer's coverage of that pixel is this / 16. */
int rt_shapes_hits(const RtShapesObject *o, int x, int y);
/* Retry 'attempt' of scene 'index': attempt 0 is rt_shapes_scene, attempt
 * a > 0 draws the same way from counter word 2 = RT_SHAPES_TAG + a. */
void rt_shapes_scene_attempt(uint64_t seed, uint64_t index, uint32_t attempt, int size, RtShapesScene *sc);
const char *rt_shapes_colour_name(int colour);
/* The colour's RGB in [0, 1]; the background's for colour -1. */
void rt_shapes_colour_rgb(int colour, float rgb[3]);
const char *rt_shapes_kind_name(RtShapeKind kind);
/* The caption's words for grid cell row * 3 + col ("at the top left") and
 * for a relation ("to the left of"); "?" outside. */
typedef enum { RT_SHAPES_ABOVE, RT_SHAPES_BELOW, RT_SHAPES_LEFT_OF, RT_SHAPES_RIGHT_OF, RT_SHAPES_RELATIONS } RtShapesRelation;
const char *rt_shapes_place_name(int cell);
const char *rt_shapes_relation_name(int rel);

/* ---- held-out pairs: never-seen compositions (shapes_holdout.c) ----
 *
 * A set of (colour, kind) pairs, as a bit mask: bit RT_SHAPES_PAIR(colour,
 * kind). Its SPEC names the pairs as COLOUR-KIND joined by '+'
 * ("purple-triangle+green-circle+blue-square"). A scene uses a pair if any
 * of its objects (the one of a single-object caption, either of a
 * relation) has that colour and kind.
 *
 * The filtered splits (dataset specs shapes[:test]:FILTER):
 *   shapes:holdout[=SPEC]        the training split without every scene that
 *                                uses a held-out pair (what to train on);
 *                                SPEC defaults to RT_SHAPES_HOLDOUT_DEFAULT
 *   shapes:test:seen[=SPEC]      the test split without them: held-out
 *                                examples of seen compositions
 *                                (shapes:test:holdout[=SPEC] is the same)
 *   shapes:test:novel[=SPEC]     the test scenes that do use a held-out pair:
 *                                the never-seen compositions
 * (holdout and seen are the same filter, on either split; novel is for the
 * test split only: the training split has none by design.)
 * Example i of a filtered split is the first of attempts a = 0, 1, 2, ...
 * (rt_shapes_scene_attempt of the split's scene index for i) that passes
 * the filter: a pure function of (seed, i), as cheap to reach for any i
 * (about 1.4 draws per example with the default SPEC), the unfiltered
 * scene whenever that passes, and distributed as the unfiltered split
 * conditioned on the filter. The training split's draws and the test
 * split's never share a counter (their scene indices differ), and seen and
 * novel never share a scene (a scene passes one filter or the other). */
#define RT_SHAPES_PAIR(colour, kind) ((colour) * RT_SHAPE_KINDS + (int)(kind))
#define RT_SHAPES_ALL_PAIRS ((1u << (RT_SHAPES_COLOURS * RT_SHAPE_KINDS)) - 1u)
/* The default held-out pairs: 3 of the 15, every colour and kind still
 * seen in training with other partners. */
#define RT_SHAPES_HOLDOUT_DEFAULT "purple-triangle+green-circle+blue-square"
/* Draws tried for one example of a filtered split before giving up (at
 * worst 1 in 30 scenes pass, so this never happens in practice). */
#define RT_SHAPES_MAX_ATTEMPTS 10000

typedef struct {
  uint32_t pairs; /* held-out pairs; 0: no filter */
  bool novel;     /* keep only the scenes that use one (else only those that do not) */
} RtShapesFilter;

/* Parses SPEC into *pairs; an error naming SPEC and the bad part, or if
 * every pair is held out. */
int rt_shapes_holdout_parse(const char *spec, uint32_t *pairs, RtErr *e);
/* The SPEC of 'pairs' (in colour, then kind order) into buf. */
const char *rt_shapes_holdout_str(uint32_t pairs, char *buf, size_t size);
/* Whether an object of sc has a (colour, kind) in 'pairs'. */
bool rt_shapes_uses_pair(const RtShapesScene *sc, uint32_t pairs);
/* The scene of an example at scene index 'scene' (rt_shapes_index) of a
 * split filtered by f: the first attempt that passes. */
int rt_shapes_example(uint64_t seed, uint64_t scene, RtShapesFilter f, int size, RtShapesScene *sc, RtErr *e);

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
