/* shapes_match.c — captions of the shapes grammar: parsing one, and
 * judging whether a read scene shows it, attribute by attribute (see
 * shapes_reader.h). */
#include <ctype.h>
#include <string.h>

#include "runtime/data/shapes_reader.h"

/* Consumes 'word' (which may hold spaces) at *p if it is there followed by
 * a space or the end. */
static bool eat(const char **p, const char *word) {
  size_t n = strlen(word);
  if (strncmp(*p, word, n) != 0 || ((*p)[n] != ' ' && (*p)[n] != 0)) return false;
  *p += n + ((*p)[n] == ' ');
  return true;
}

/* "COLOUR KIND" at *p. */
static bool eat_object(const char **p, int *colour, RtShapeKind *kind) {
  *colour = -1;
  for (int c = 0; c < RT_SHAPES_COLOURS && *colour < 0; c++)
    if (eat(p, rt_shapes_colour_name(c))) *colour = c;
  if (*colour < 0) return false;
  for (int k = 0; k < RT_SHAPE_KINDS; k++)
    if (eat(p, rt_shapes_kind_name((RtShapeKind)k))) {
      *kind = (RtShapeKind)k;
      return true;
    }
  return false;
}

int rt_shapes_parse_caption(const char *caption, RtShapesCaption *c, RtErr *e) {
  memset(c, 0, sizeof *c);
  char buf[256];
  const char *s = caption;
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  if (n >= sizeof buf) return rt_err(e, "caption '%.60s...' is not of the shapes grammar (too long)", s);
  memcpy(buf, s, n);
  buf[n] = 0;
  const char *p = buf;
  bool ok = eat(&p, "a");
  if (ok && (eat(&p, "small") || (c->large = eat(&p, "large")))) {
    /* "a SIZE COLOUR SHAPE PLACE" */
    c->nobj = 1;
    ok = eat_object(&p, &c->colour[0], &c->kind[0]);
    int cell = -1;
    for (int k = 0; k < 9 && ok && cell < 0; k++)
      if (!strcmp(p, rt_shapes_place_name(k))) cell = k;
    ok = ok && cell >= 0;
    c->row = cell / 3;
    c->col = cell % 3;
  } else if (ok) {
    /* "a COLOUR SHAPE RELATION a COLOUR SHAPE" */
    c->nobj = 2;
    ok = eat_object(&p, &c->colour[0], &c->kind[0]);
    c->relation = -1;
    for (int r = 0; r < RT_SHAPES_RELATIONS && ok && c->relation < 0; r++)
      if (eat(&p, rt_shapes_relation_name(r))) c->relation = r;
    ok = ok && c->relation >= 0 && eat(&p, "a") && eat_object(&p, &c->colour[1], &c->kind[1]) && !*p;
  }
  if (!ok) return rt_err(e, "caption '%s' is not of the shapes grammar (\"a SIZE COLOUR SHAPE PLACE\" or \"a COLOUR "
                            "SHAPE RELATION a COLOUR SHAPE\", data.h)", buf);
  return 0;
}

bool rt_shapes_caption_uses_pair(const RtShapesCaption *c, uint32_t pairs) {
  for (int k = 0; k < c->nobj; k++)
    if (pairs & (1u << RT_SHAPES_PAIR(c->colour[k], c->kind[k]))) return true;
  return false;
}

/* Whether a (first) and b (second) stand in relation 'rel'. */
static bool related(const RtShapesObject *a, const RtShapesObject *b, int rel) {
  switch (rel) {
  case RT_SHAPES_ABOVE: return a->col == b->col && a->row < b->row;
  case RT_SHAPES_BELOW: return a->col == b->col && a->row > b->row;
  case RT_SHAPES_LEFT_OF: return a->row == b->row && a->col < b->col;
  case RT_SHAPES_RIGHT_OF: return a->row == b->row && a->col > b->col;
  default: return false;
  }
}

static int score(RtShapesMatch m) {
  return 16 * m.all + m.colour + m.kind + m.place + m.size;
}

RtShapesMatch rt_shapes_match(const RtShapesCaption *c, const RtShapesRead *r) {
  RtShapesMatch best = {.count = r->nobj == c->nobj};
  int stored = r->nobj < RT_SHAPES_READ_MAX ? r->nobj : RT_SHAPES_READ_MAX;
  if (c->nobj == 1) {
    for (int i = 0; i < stored; i++) {
      const RtShapesObject *o = &r->obj[i];
      RtShapesMatch m = {.count = best.count,
                         .colour = o->colour == c->colour[0],
                         .kind = o->kind == c->kind[0],
                         .place = o->row == c->row && o->col == c->col,
                         .size = o->large == c->large};
      m.all = m.count && m.colour && m.kind && m.place && m.size;
      if (score(m) > score(best)) best = m;
    }
    return best;
  }
  /* Two named objects: every ordered pair of distinct read objects (with
   * fewer than two, every attribute but count fails). */
  for (int i = 0; i < stored; i++)
    for (int j = 0; j < stored; j++) {
      if (i == j) continue;
      const RtShapesObject *a = &r->obj[i], *b = &r->obj[j];
      RtShapesMatch m = {.count = best.count,
                         .colour = a->colour == c->colour[0] && b->colour == c->colour[1],
                         .kind = a->kind == c->kind[0] && b->kind == c->kind[1],
                         .place = related(a, b, c->relation),
                         .size = !a->large && !b->large};
      m.all = m.count && m.colour && m.kind && m.place && m.size;
      if (score(m) > score(best)) best = m;
    }
  return best;
}

void rt_shapes_tally_add(RtShapesTally *t, RtShapesMatch m) {
  t->images++;
  t->count += m.count;
  t->colour += m.colour;
  t->kind += m.kind;
  t->place += m.place;
  t->size += m.size;
  t->all += m.all;
}

int rt_shapes_judge(const float *images, int size, const char *const *captions, int64_t ncaption, int64_t n,
                    uint32_t holdout, RtShapesTally tally[3], RtErr *e) {
  int64_t image = 3 * (int64_t)size * size;
  for (int64_t i = 0; i < ncaption; i++) {
    RtShapesCaption c;
    if (rt_shapes_parse_caption(captions[i], &c, e)) {
      if (!e) return -1;
      char msg[sizeof e->msg];
      memcpy(msg, e->msg, sizeof msg);
      return rt_err(e, "caption %lld: %s", (long long)i + 1, msg);
    }
    bool novel = rt_shapes_caption_uses_pair(&c, holdout);
    for (int64_t j = 0; j < n; j++) {
      RtShapesRead r;
      if (rt_shapes_read(images + (i * n + j) * image, size, &r, e)) return -1;
      RtShapesMatch m = rt_shapes_match(&c, &r);
      rt_shapes_tally_add(&tally[0], m);
      if (holdout) rt_shapes_tally_add(&tally[novel ? 2 : 1], m);
    }
  }
  return 0;
}
