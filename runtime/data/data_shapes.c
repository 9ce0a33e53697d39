/* data_shapes.c — the built-in `shapes` dataset: coloured circles, squares
 * and triangles with captions (see data.h for the grammar and the stream),
 * and its splits filtered by held-out pairs (shapes_holdout.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/data_impl.h"
#include "runtime/core/rng.h"

static const char *const colour_names[RT_SHAPES_COLOURS] = {"red", "green", "blue", "yellow", "purple"};
static const float palette[RT_SHAPES_COLOURS][3] = {
    {0.90f, 0.15f, 0.15f}, {0.15f, 0.75f, 0.25f}, {0.20f, 0.35f, 0.95f},
    {0.95f, 0.85f, 0.15f}, {0.65f, 0.25f, 0.85f},
};
static const float background[3] = {0.08f, 0.08f, 0.10f};
static const char *const kind_names[RT_SHAPE_KINDS] = {"circle", "square", "triangle"};
/* Indexed by row * 3 + col. */
static const char *const places[9] = {
    "at the top left", "at the top",    "at the top right",    "on the left",        "in the center",
    "on the right",    "at the bottom left", "at the bottom", "at the bottom right",
};
enum { REL_ABOVE = RT_SHAPES_ABOVE, REL_BELOW = RT_SHAPES_BELOW, REL_LEFT = RT_SHAPES_LEFT_OF,
       REL_RIGHT = RT_SHAPES_RIGHT_OF, REL_COUNT = RT_SHAPES_RELATIONS };
static const char *const relations[REL_COUNT] = {"above", "below", "to the left of", "to the right of"};

const char *rt_shapes_colour_name(int c) { return c >= 0 && c < RT_SHAPES_COLOURS ? colour_names[c] : "background"; }

void rt_shapes_colour_rgb(int c, float rgb[3]) {
  memcpy(rgb, c >= 0 && c < RT_SHAPES_COLOURS ? palette[c] : background, 3 * sizeof(float));
}

const char *rt_shapes_kind_name(RtShapeKind k) { return (unsigned)k < RT_SHAPE_KINDS ? kind_names[k] : "?"; }

const char *rt_shapes_place_name(int cell) { return cell >= 0 && cell < 9 ? places[cell] : "?"; }

const char *rt_shapes_relation_name(int rel) { return rel >= 0 && rel < REL_COUNT ? relations[rel] : "?"; }

/* ---- the random stream of one example ---- */

typedef struct {
  uint32_t ctr[4], key[2];
  uint32_t buf[4];
  int left; /* unused words in buf */
} Draw;

/* Attempt 0 is the scene stream itself (counter word 2 RT_SHAPES_TAG);
 * attempt a > 0 (the retries of a filtered split) uses RT_SHAPES_TAG + a. */
static void draw_init(Draw *d, uint64_t seed, uint64_t index, uint32_t attempt) {
  *d = (Draw){.ctr = {(uint32_t)index, (uint32_t)(index >> 32), RT_SHAPES_TAG + attempt, 0},
              .key = {(uint32_t)seed, (uint32_t)(seed >> 32)}};
}

static uint32_t draw_u32(Draw *d) {
  if (d->left == 0) {
    rt_philox4x32_10(d->ctr, d->key, d->buf);
    d->ctr[3]++;
    d->left = 4;
  }
  return d->buf[4 - d->left--];
}

/* Uniform in 0 .. n-1. */
static int draw_int(Draw *d, int n) { return (int)(((uint64_t)draw_u32(d) * (uint64_t)n) >> 32); }

/* Uniform in [0, 1). */
static float draw_unit(Draw *d) { return (float)(draw_u32(d) >> 8) * (1.0f / 16777216.0f); }

/* Places o in its cell: half-size from its size class, centre jittered by
 * at most half the slack between the object and the cell's border. */
static void place(RtShapesObject *o, int size, Draw *d) {
  float cell = (float)size / 3.0f;
  o->r = cell * (o->large ? 0.42f : 0.26f);
  float jitter = 0.5f * (0.5f * cell - o->r);
  o->cx = ((float)o->col + 0.5f) * cell + (2.0f * draw_unit(d) - 1.0f) * jitter;
  o->cy = ((float)o->row + 0.5f) * cell + (2.0f * draw_unit(d) - 1.0f) * jitter;
}

void rt_shapes_scene(uint64_t seed, uint64_t index, int size, RtShapesScene *sc) {
  rt_shapes_scene_attempt(seed, index, 0, size, sc);
}

void rt_shapes_scene_attempt(uint64_t seed, uint64_t index, uint32_t attempt, int size, RtShapesScene *sc) {
  Draw d;
  draw_init(&d, seed, index, attempt);
  memset(sc, 0, sizeof *sc);
  RtShapesObject *a = &sc->obj[0], *b = &sc->obj[1];
  if (draw_int(&d, 2) == 0) {
    sc->nobj = 1;
    a->kind = (RtShapeKind)draw_int(&d, RT_SHAPE_KINDS);
    a->colour = draw_int(&d, RT_SHAPES_COLOURS);
    a->large = draw_int(&d, 2);
    a->row = draw_int(&d, 3);
    a->col = draw_int(&d, 3);
    place(a, size, &d);
    snprintf(sc->caption, sizeof sc->caption, "a %s %s %s %s", a->large ? "large" : "small",
             colour_names[a->colour], kind_names[a->kind], places[a->row * 3 + a->col]);
    return;
  }
  /* Two small objects that differ in kind or colour, in one row or column. */
  sc->nobj = 2;
  enum { COMBOS = RT_SHAPE_KINDS * RT_SHAPES_COLOURS };
  int ca = draw_int(&d, COMBOS), cb = draw_int(&d, COMBOS - 1);
  if (cb >= ca) cb++;
  a->kind = (RtShapeKind)(ca / RT_SHAPES_COLOURS);
  a->colour = ca % RT_SHAPES_COLOURS;
  b->kind = (RtShapeKind)(cb / RT_SHAPES_COLOURS);
  b->colour = cb % RT_SHAPES_COLOURS;
  int rel = draw_int(&d, REL_COUNT);
  int line = draw_int(&d, 3);                 /* the shared column or row */
  int lo = draw_int(&d, 3), hi = draw_int(&d, 2); /* two distinct positions lo < hi along it */
  if (hi >= lo) hi++;
  if (hi < lo) {
    int t = lo;
    lo = hi;
    hi = t;
  }
  int first = rel == REL_ABOVE || rel == REL_LEFT ? lo : hi, second = first == lo ? hi : lo;
  if (rel == REL_ABOVE || rel == REL_BELOW) {
    a->col = b->col = line;
    a->row = first;
    b->row = second;
  } else {
    a->row = b->row = line;
    a->col = first;
    b->col = second;
  }
  place(a, size, &d);
  place(b, size, &d);
  snprintf(sc->caption, sizeof sc->caption, "a %s %s %s a %s %s", colour_names[a->colour], kind_names[a->kind],
           relations[rel], colour_names[b->colour], kind_names[b->kind]);
}

/* ---- rendering ---- */

/* Whether point (x, y) is inside o. */
static bool inside(const RtShapesObject *o, float x, float y) {
  float dx = x - o->cx, dy = y - o->cy;
  switch (o->kind) {
  case RT_SHAPE_CIRCLE: return dx * dx + dy * dy <= o->r * o->r;
  case RT_SHAPE_SQUARE: return fabsf(dx) <= 0.85f * o->r && fabsf(dy) <= 0.85f * o->r;
  case RT_SHAPE_TRIANGLE: {
    /* Apex up at cy - r, base at cy + 0.75 r, half-width r at the base. */
    float t = (dy + o->r) / (1.75f * o->r);
    return t >= 0.0f && t <= 1.0f && fabsf(dx) <= t * o->r;
  }
  default: return false;
  }
}

/* Whether the pixel [x, x+1] x [y, y+1] lies wholly outside o. */
static bool pixel_outside(const RtShapesObject *o, float x, float y) {
  float x0 = x - o->cx, x1 = x0 + 1.0f, y0 = y - o->cy, y1 = y0 + 1.0f;
  switch (o->kind) {
  case RT_SHAPE_CIRCLE: {
    /* The pixel's point nearest the centre. */
    float nx = x0 > 0.0f ? x0 : x1 < 0.0f ? x1 : 0.0f, ny = y0 > 0.0f ? y0 : y1 < 0.0f ? y1 : 0.0f;
    return nx * nx + ny * ny > o->r * o->r;
  }
  case RT_SHAPE_SQUARE: {
    float h = 0.85f * o->r;
    return x0 > h || x1 < -h || y0 > h || y1 < -h;
  }
  case RT_SHAPE_TRIANGLE: {
    if (y1 < -o->r || y0 > 0.75f * o->r) return true;
    /* Beyond the right side (dx > (dy + r) / 1.75) or the left one at all
     * four corners. */
    float k = 1.0f / 1.75f;
    return x0 - (y1 + o->r) * k > 0.0f || -x1 - (y1 + o->r) * k > 0.0f;
  }
  default: return true;
  }
}

/* The 4x4 samples of a pixel sit 1/8 pixel or more inside it, so a pixel
 * whose corners are all inside o (o is convex) has every sample inside, and
 * one wholly outside has none, by margins no rounding reaches: the shortcuts
 * give the same count as testing the 16 samples. */
int rt_shapes_hits(const RtShapesObject *o, int x, int y) {
  float fx = (float)x, fy = (float)y;
  if (pixel_outside(o, fx, fy)) return 0;
  if (inside(o, fx, fy) && inside(o, fx + 1.0f, fy) && inside(o, fx, fy + 1.0f) && inside(o, fx + 1.0f, fy + 1.0f))
    return 16;
  int hits = 0;
  for (int sy = 0; sy < 4; sy++)
    for (int sx = 0; sx < 4; sx++)
      hits += inside(o, (float)x + ((float)sx + 0.5f) / 4.0f, (float)y + ((float)sy + 0.5f) / 4.0f);
  return hits;
}

void rt_shapes_render(const RtShapesScene *sc, int size, float *img) {
  int64_t plane = (int64_t)size * size;
  for (int c = 0; c < 3; c++)
    for (int64_t i = 0; i < plane; i++) img[c * plane + i] = 2.0f * background[c] - 1.0f;
  for (int k = 0; k < sc->nobj; k++) {
    const RtShapesObject *o = &sc->obj[k];
    int x0 = (int)floorf(o->cx - o->r), x1 = (int)ceilf(o->cx + o->r);
    int y0 = (int)floorf(o->cy - o->r), y1 = (int)ceilf(o->cy + o->r);
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > size - 1 ? size - 1 : x1;
    y1 = y1 > size - 1 ? size - 1 : y1;
    for (int y = y0; y <= y1; y++)
      for (int x = x0; x <= x1; x++) {
        /* Coverage of the pixel from 4x4 samples; objects never overlap
         * (they sit in different cells), so blending with what is there is
         * blending with the background. */
        int hits = rt_shapes_hits(o, x, y);
        if (!hits) continue;
        float cov = (float)hits / 16.0f;
        for (int c = 0; c < 3; c++) {
          float *px = &img[c * plane + (int64_t)y * size + x];
          float under = (*px + 1.0f) * 0.5f;
          *px = 2.0f * (under * (1.0f - cov) + palette[o->colour][c] * cov) - 1.0f;
        }
      }
  }
}

/* ---- the dataset ---- */

bool rt_shapes_index(RtShapesSplit split, uint64_t i, uint64_t *scene) {
  static const uint64_t base[] = {0, RT_SHAPES_TEST_BASE, RT_SHAPES_VAL_BASE};
  static const uint64_t last[] = {RT_SHAPES_TEST_BASE - 1, RT_SHAPES_VAL_BASE - 1, UINT64_MAX};
  if ((unsigned)split > RT_SHAPES_VAL || i > last[split] - base[split]) return false;
  *scene = base[split] + i;
  return true;
}

static const char *const split_suffix[] = {"", ":test", ":val"};

typedef struct {
  int input;        /* the image input */
  int size;         /* S */
  RtShapesSplit split;
  RtShapesFilter f; /* held-out pairs left out or kept (f.pairs 0: none) */
} Shapes;

static int shapes_load(RtDataset *d, int64_t j, uint64_t k, RtTensor *const *inputs, RtErr *e) {
  const Shapes *s = d->impl;
  uint64_t scene;
  if (!rt_shapes_index(s->split, k, &scene))
    return rt_err(e, "dataset shapes%s: example %llu is past the end of the split (the training split is scenes "
                     "0 .. 2^40-1, the test split 2^40 .. 2^63-1, the validation split the ones after)",
                  split_suffix[s->split], (unsigned long long)k);
  RtShapesScene sc;
  if (!s->f.pairs) rt_shapes_scene(d->seed, scene, s->size, &sc);
  else if (rt_shapes_example(d->seed, scene, s->f, s->size, &sc, e)) return -1;
  rt_shapes_render(&sc, s->size, rt_f32(inputs[s->input]) + j * 3 * (int64_t)s->size * s->size);
  memcpy(d->caption[j], sc.caption, strlen(sc.caption) + 1);
  return 0;
}

/* Every word and phrase of the caption grammar. */
static int shapes_check_text(RtDataset *d, RtTextEncoder *t, RtErr *e) {
  (void)d;
  const char *const *lists[] = {colour_names, kind_names, places, relations, (const char *const[]){"a small large"}};
  const int sizes[] = {RT_SHAPES_COLOURS, RT_SHAPE_KINDS, 9, REL_COUNT, 1};
  for (int l = 0; l < 5; l++)
    for (int i = 0; i < sizes[l]; i++)
      if (rt_text_check(t, lists[l][i], e)) return -1;
  return 0;
}

/* args: [test|val][:]FILTER, FILTER one of holdout[=SPEC], seen[=SPEC],
 * novel[=SPEC] (data.h). */
static int parse_args(const char *args, RtShapesSplit *split, RtShapesFilter *f, RtErr *e) {
  static const char usage[] = "dataset shapes takes nothing (the training split), 'test' (the test split) or 'val' "
                              "(the validation split), and then a filter of held-out pairs, holdout[=SPEC], "
                              "seen[=SPEC] or novel[=SPEC] (held-out splits only): "
                              "shapes:holdout=purple-triangle+green-circle, shapes:test:novel";
  *split = RT_SHAPES_TRAIN;
  const char *filter = args;
  for (int sp = RT_SHAPES_TEST; sp <= RT_SHAPES_VAL; sp++) {
    size_t n = strlen(split_suffix[sp] + 1);
    if (strncmp(args, split_suffix[sp] + 1, n) == 0 && (args[n] == 0 || args[n] == ':'))
      *split = (RtShapesSplit)sp, filter = args + n + (args[n] == ':');
  }
  *f = (RtShapesFilter){0};
  if (!*filter)
    return !*args || !strcmp(args, split_suffix[*split] + 1) ? 0 : rt_err(e, "%s; not '%s'", usage, args);
  const char *eq = strchr(filter, '=');
  size_t len = eq ? (size_t)(eq - filter) : strlen(filter);
  bool keep = (len == 7 && !strncmp(filter, "holdout", 7)) || (len == 4 && !strncmp(filter, "seen", 4));
  f->novel = len == 5 && !strncmp(filter, "novel", 5);
  if (!keep && !f->novel) return rt_err(e, "%s; not '%s'", usage, args);
  if (f->novel && *split == RT_SHAPES_TRAIN)
    return rt_err(e, "dataset shapes:%s: the training split has no never-seen compositions by design; they are "
                     "shapes:test:%s", args, args);
  if (eq && !eq[1]) return rt_err(e, "dataset shapes:%s: '=' with no pairs after it", args);
  return rt_shapes_holdout_parse(eq ? eq + 1 : RT_SHAPES_HOLDOUT_DEFAULT, &f->pairs, e);
}

int rt_data_open_shapes(RtDataset *d, const char *args, RtErr *e) {
  const RtEntrySpec *en = d->entry;
  RtShapesSplit split;
  RtShapesFilter f;
  if (parse_args(args, &split, &f, e)) return -1;
  int i = rt_data_image_input(d, "shapes", e);
  if (i < 0) return -1;
  Shapes *s = malloc(sizeof *s);
  if (!s) return rt_err(e, "dataset shapes: out of memory");
  s->input = i;
  s->size = (int)en->input[i].dim[2];
  s->split = split;
  s->f = f;
  d->impl = s;
  d->free_impl = free;
  d->load = shapes_load;
  d->check_text = shapes_check_text;
  return rt_data_captions(d, sizeof ((RtShapesScene *)0)->caption, e);
}
