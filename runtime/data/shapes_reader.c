/* shapes_reader.c — reads the scene a `shapes` image shows: segmentation
 * by colour, connected components, and a fit of the renderer's shapes to
 * each (the method is in shapes_reader.h). */
#include "runtime/data/shapes_reader.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GROW_STEPS 2      /* how far a component claims the pixels around it */
#define NOISE_FRACTION 0.35f /* of the smallest object's area: less coverage is noise */

typedef struct {
  int size;
  float v[RT_SHAPES_COLOURS][3]; /* palette colour - background */
  float vv[RT_SHAPES_COLOURS];   /* |v|^2 */
  float *d;                      /* [3][S*S] pixel - background, in [0, 1] units */
  int *label;                    /* [S*S] owning component, -1 none */
  int *queue;                    /* [S*S] */
  int *depth;                    /* [S*S] BFS steps from the component's foreground */
  float *want;                   /* [S*S] the fitted component's coverage, -1 where another's pixel is */
} Work;

/* The coverage of palette colour c that best explains pixel p, in [0, 1]. */
static float coverage(const Work *w, int p, int c) {
  int64_t plane = (int64_t)w->size * w->size;
  float dot = 0.0f;
  for (int k = 0; k < 3; k++) dot += w->d[k * plane + p] * w->v[c][k];
  float t = dot / w->vv[c];
  return t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
}

/* |pixel - (background + t (palette c - background))|^2 at c's best t. */
static float residual(const Work *w, int p, int c) {
  int64_t plane = (int64_t)w->size * w->size;
  float t = coverage(w, p, c), r = 0.0f;
  for (int k = 0; k < 3; k++) {
    float x = w->d[k * plane + p] - t * w->v[c][k];
    r += x * x;
  }
  return r;
}

/* The palette colour that explains pixel p best. */
static int best_colour(const Work *w, int p) {
  int best = 0;
  float br = residual(w, p, 0);
  for (int c = 1; c < RT_SHAPES_COLOURS; c++) {
    float r = residual(w, p, c);
    if (r < br) best = c, br = r;
  }
  return best;
}

/* One component being fitted. */
typedef struct {
  int id, colour;
  int x0, y0, x1, y1; /* bounding box of its pixels */
  float mass, mx, my; /* total coverage and its centroid */
} Comp;

/* Sum of squared differences between the component's coverage and the
 * renderer's coverage of o, over the component's pixels, the unowned ones
 * and o's box (pixels of other components are not compared). */
static float fit_error(const Work *w, const Comp *c, const RtShapesObject *o) {
  int S = w->size;
  int tx0 = (int)floorf(o->cx - o->r), tx1 = (int)ceilf(o->cx + o->r);
  int ty0 = (int)floorf(o->cy - o->r), ty1 = (int)ceilf(o->cy + o->r);
  int x0 = c->x0 < tx0 ? c->x0 : tx0, x1 = c->x1 > tx1 ? c->x1 : tx1;
  int y0 = c->y0 < ty0 ? c->y0 : ty0, y1 = c->y1 > ty1 ? c->y1 : ty1;
  x0 = x0 < 0 ? 0 : x0;
  y0 = y0 < 0 ? 0 : y0;
  x1 = x1 > S - 1 ? S - 1 : x1;
  y1 = y1 > S - 1 ? S - 1 : y1;
  float err = 0.0f;
  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++) {
      float want = w->want[y * S + x];
      if (want < 0.0f) continue;
      float have = x >= tx0 && x <= tx1 && y >= ty0 && y <= ty1 ? (float)rt_shapes_hits(o, x, y) / 16.0f : 0.0f;
      err += (want - have) * (want - have);
    }
  return err;
}

/* Moves o's centre to a local minimum of fit_error, from steps of 1/4
 * pixel down to 1/16, one step along x or y at a time. */
static float fit_centre(const Work *w, const Comp *c, RtShapesObject *o) {
  float best = fit_error(w, c, o);
  for (float step = 0.25f; step >= 0.0625f; step *= 0.5f)
    for (int iter = 0; iter < 16; iter++) {
      float bx = o->cx, by = o->cy, be = best;
      static const int moves[4][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};
      for (int m = 0; m < 4; m++) {
        RtShapesObject t = *o;
        t.cx += (float)moves[m][0] * step;
        t.cy += (float)moves[m][1] * step;
        float err = fit_error(w, c, &t);
        if (err < be) be = err, bx = t.cx, by = t.cy;
      }
      if (be >= best) break;
      best = be;
      o->cx = bx;
      o->cy = by;
    }
  return best;
}

/* The renderer's object that fits component c best: each of the six
 * shapes (kind, size class) placed by the centroid, and the REFINE best
 * of them moved to their best centre. */
static RtShapesObject fit_object(const Work *w, const Comp *c) {
  enum { HYP = 2 * RT_SHAPE_KINDS, REFINE = 3 };
  float cell = (float)w->size / 3.0f, best = INFINITY;
  RtShapesObject hyp[HYP];
  float err[HYP];
  int order[HYP];
  for (int h = 0; h < HYP; h++) {
    RtShapesObject *o = &hyp[h];
    int k = h % RT_SHAPE_KINDS;
    *o = (RtShapesObject){.kind = (RtShapeKind)k, .colour = c->colour, .large = h >= RT_SHAPE_KINDS};
    o->r = cell * (o->large ? 0.42f : 0.26f); /* as data_shapes.c sizes them */
    /* A triangle's centroid is r/6 below its centre (apex at cy - r, base
     * at cy + 0.75 r); the others' is their centre. */
    o->cx = c->mx;
    o->cy = c->my - (k == RT_SHAPE_TRIANGLE ? o->r / 6.0f : 0.0f);
    err[h] = fit_error(w, c, o);
    int at = h;
    for (; at > 0 && err[order[at - 1]] > err[h]; at--) order[at] = order[at - 1];
    order[at] = h;
  }
  RtShapesObject out = hyp[order[0]];
  for (int i = 0; i < REFINE; i++) {
    RtShapesObject o = hyp[order[i]];
    float e = fit_centre(w, c, &o);
    if (e < best) best = e, out = o;
  }
  int row = (int)floorf(out.cy / cell), col = (int)floorf(out.cx / cell);
  out.row = row < 0 ? 0 : row > 2 ? 2 : row;
  out.col = col < 0 ? 0 : col > 2 ? 2 : col;
  return out;
}

/* Labels the 8-connected foreground components (label >= 0), then lets
 * each claim the pixels within GROW_STEPS of it, nearest first. Returns
 * the number of components. */
static int label_components(Work *w, const unsigned char *fg) {
  int S = w->size, n = 0, head = 0, tail = 0;
  for (int p = 0; p < S * S; p++) w->label[p] = -1;
  for (int p0 = 0; p0 < S * S; p0++) {
    if (!fg[p0] || w->label[p0] >= 0) continue;
    w->label[p0] = n;
    w->depth[p0] = 0;
    w->queue[tail++] = p0;
    while (head < tail) {
      int p = w->queue[head++], x = p % S, y = p / S;
      for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
          int qx = x + dx, qy = y + dy;
          if (qx < 0 || qy < 0 || qx >= S || qy >= S) continue;
          int q = qy * S + qx;
          if (fg[q] && w->label[q] < 0) {
            w->label[q] = n;
            w->depth[q] = 0;
            w->queue[tail++] = q;
          }
        }
    }
    n++;
  }
  /* Every foreground pixel is in the queue, in component order; a
   * breadth-first pass over it claims the rest, nearest first. */
  head = 0;
  while (head < tail) {
    int p = w->queue[head++], x = p % S, y = p / S;
    if (w->depth[p] >= GROW_STEPS) continue;
    for (int dy = -1; dy <= 1; dy++)
      for (int dx = -1; dx <= 1; dx++) {
        int qx = x + dx, qy = y + dy;
        if (qx < 0 || qy < 0 || qx >= S || qy >= S) continue;
        int q = qy * S + qx;
        if (w->label[q] < 0) {
          w->label[q] = w->label[p];
          w->depth[q] = w->depth[p] + 1;
          w->queue[tail++] = q;
        }
      }
  }
  return n;
}

/* w->want for component c: its colour's coverage on its pixels and the
 * unowned ones, -1 on other components' pixels. */
static void set_want(Work *w, const Comp *c) {
  for (int p = 0; p < w->size * w->size; p++)
    w->want[p] = w->label[p] == c->id || w->label[p] == -1 ? coverage(w, p, c->colour) : -1.0f;
}

static int by_mass(const void *a, const void *b) {
  float ma = ((const Comp *)a)->mass, mb = ((const Comp *)b)->mass;
  return ma > mb ? -1 : ma < mb ? 1 : ((const Comp *)a)->id - ((const Comp *)b)->id;
}

int rt_shapes_read(const float *img, int size, RtShapesRead *out, RtErr *e) {
  memset(out, 0, sizeof *out);
  if (size < 8 || size > 4096) return rt_err(e, "shapes reader: image side %d is outside 8 .. 4096", size);
  int64_t plane = (int64_t)size * size;
  Work w = {.size = size};
  float bg[3];
  rt_shapes_colour_rgb(-1, bg);
  for (int c = 0; c < RT_SHAPES_COLOURS; c++) {
    float rgb[3];
    rt_shapes_colour_rgb(c, rgb);
    for (int k = 0; k < 3; k++) w.v[c][k] = rgb[k] - bg[k];
    w.vv[c] = w.v[c][0] * w.v[c][0] + w.v[c][1] * w.v[c][1] + w.v[c][2] * w.v[c][2];
  }
  w.d = malloc(sizeof *w.d * (size_t)(3 * plane));
  w.label = malloc(sizeof *w.label * (size_t)plane);
  w.queue = malloc(sizeof *w.queue * (size_t)plane);
  w.depth = malloc(sizeof *w.depth * (size_t)plane);
  w.want = malloc(sizeof *w.want * (size_t)plane);
  unsigned char *fg = malloc((size_t)plane);
  Comp *comp = NULL;
  int rc = 0;
  if (!w.d || !w.label || !w.queue || !w.depth || !w.want || !fg) {
    rc = rt_err(e, "shapes reader: out of memory");
    goto done;
  }
  for (int k = 0; k < 3; k++)
    for (int64_t p = 0; p < plane; p++) {
      float x = img[k * plane + p];
      w.d[k * plane + p] = (isfinite(x) ? (x + 1.0f) * 0.5f : 0.0f) - bg[k];
    }
  for (int p = 0; p < plane; p++) fg[p] = coverage(&w, p, best_colour(&w, p)) >= 0.5f;
  int n = label_components(&w, fg);
  if (n == 0) goto done;
  if (!(comp = calloc((size_t)n, sizeof *comp))) {
    rc = rt_err(e, "shapes reader: out of memory");
    goto done;
  }
  /* Each component's colour: least squares over its pixels. */
  float (*res)[RT_SHAPES_COLOURS] = calloc((size_t)n, sizeof *res);
  if (!res) {
    rc = rt_err(e, "shapes reader: out of memory");
    goto done;
  }
  for (int i = 0; i < n; i++) comp[i] = (Comp){.id = i, .x0 = size, .y0 = size, .x1 = -1, .y1 = -1};
  for (int p = 0; p < plane; p++) {
    int l = w.label[p];
    if (l < 0) continue;
    for (int c = 0; c < RT_SHAPES_COLOURS; c++) res[l][c] += residual(&w, p, c);
  }
  for (int i = 0; i < n; i++)
    for (int c = 1; c < RT_SHAPES_COLOURS; c++)
      if (res[i][c] < res[i][comp[i].colour]) comp[i].colour = c;
  free(res);
  for (int p = 0; p < plane; p++) {
    int l = w.label[p];
    if (l < 0) continue;
    Comp *c = &comp[l];
    int x = p % size, y = p / size;
    float t = coverage(&w, p, c->colour);
    c->mass += t;
    c->mx += t * ((float)x + 0.5f);
    c->my += t * ((float)y + 0.5f);
    c->x0 = x < c->x0 ? x : c->x0;
    c->x1 = x > c->x1 ? x : c->x1;
    c->y0 = y < c->y0 ? y : c->y0;
    c->y1 = y > c->y1 ? y : c->y1;
  }
  float rs = (float)size / 3.0f * 0.26f, noise = NOISE_FRACTION * 1.75f * rs * rs;
  qsort(comp, (size_t)n, sizeof *comp, by_mass);
  for (int i = 0; i < n && comp[i].mass >= noise; i++) {
    comp[i].mx /= comp[i].mass;
    comp[i].my /= comp[i].mass;
    if (out->nobj < RT_SHAPES_READ_MAX) {
      set_want(&w, &comp[i]);
      out->obj[out->nobj] = fit_object(&w, &comp[i]);
    }
    out->nobj++;
  }
done:
  free(comp);
  free(fg);
  free(w.want);
  free(w.depth);
  free(w.queue);
  free(w.label);
  free(w.d);
  return rc;
}
