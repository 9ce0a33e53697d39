/* shapes_holdout.c — never-seen compositions for `shapes`: held-out
 * (colour, kind) pairs, and the filtered splits that leave them out of
 * training or keep only them (see data.h, "held-out pairs"). */
#include <stdio.h>
#include <string.h>

#include "runtime/data/data.h"

/* The pair named by "COLOUR-KIND" in s[0 .. len), or -1. */
static int pair_index(const char *s, size_t len) {
  for (int c = 0; c < RT_SHAPES_COLOURS; c++) {
    const char *cn = rt_shapes_colour_name(c);
    size_t cl = strlen(cn);
    if (len <= cl + 1 || strncmp(s, cn, cl) != 0 || s[cl] != '-') continue;
    for (int k = 0; k < RT_SHAPE_KINDS; k++) {
      const char *kn = rt_shapes_kind_name((RtShapeKind)k);
      if (strlen(kn) == len - cl - 1 && strncmp(s + cl + 1, kn, len - cl - 1) == 0) return RT_SHAPES_PAIR(c, k);
    }
  }
  return -1;
}

int rt_shapes_holdout_parse(const char *spec, uint32_t *pairs, RtErr *e) {
  *pairs = 0;
  const char *p = spec;
  for (;;) {
    const char *plus = strchr(p, '+');
    size_t len = plus ? (size_t)(plus - p) : strlen(p);
    int k = pair_index(p, len);
    if (k < 0)
      return rt_err(e, "held-out pairs '%s': '%.*s' is not COLOUR-KIND (colours: red, green, blue, yellow, purple; "
                       "kinds: circle, square, triangle; pairs joined by '+', e.g. %s)",
                    spec, (int)len, p, RT_SHAPES_HOLDOUT_DEFAULT);
    *pairs |= 1u << k;
    if (!plus) break;
    p = plus + 1;
  }
  if (*pairs == RT_SHAPES_ALL_PAIRS)
    return rt_err(e, "held-out pairs '%s' hold out every (colour, kind) pair: nothing is left to train on", spec);
  return 0;
}

const char *rt_shapes_holdout_str(uint32_t pairs, char *buf, size_t size) {
  buf[0] = 0;
  for (int c = 0; c < RT_SHAPES_COLOURS; c++)
    for (int k = 0; k < RT_SHAPE_KINDS; k++)
      if (pairs & (1u << RT_SHAPES_PAIR(c, k))) {
        size_t at = strlen(buf);
        snprintf(buf + at, size - at, "%s%s-%s", at ? "+" : "", rt_shapes_colour_name(c),
                 rt_shapes_kind_name((RtShapeKind)k));
      }
  return buf;
}

bool rt_shapes_uses_pair(const RtShapesScene *sc, uint32_t pairs) {
  for (int k = 0; k < sc->nobj; k++)
    if (pairs & (1u << RT_SHAPES_PAIR(sc->obj[k].colour, sc->obj[k].kind))) return true;
  return false;
}

int rt_shapes_example(uint64_t seed, uint64_t scene, RtShapesFilter f, int size, RtShapesScene *sc, RtErr *e) {
  for (uint32_t a = 0; a < RT_SHAPES_MAX_ATTEMPTS; a++) {
    rt_shapes_scene_attempt(seed, scene, a, size, sc);
    if (!f.pairs || rt_shapes_uses_pair(sc, f.pairs) == f.novel) return 0;
  }
  char buf[256];
  return rt_err(e, "shapes: no scene %s held-out pairs %s in %d draws for scene %llu", f.novel ? "using" : "without",
                rt_shapes_holdout_str(f.pairs, buf, sizeof buf), RT_SHAPES_MAX_ATTEMPTS, (unsigned long long)scene);
}
