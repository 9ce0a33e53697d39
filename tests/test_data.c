/* test_data.c — datasets (runtime/data/data.h): the shapes generator's
 * determinism, value range and caption/image correspondence, the npy
 * dataset's row order and errors, shapes' stream kept as it was, its
 * disjoint test split and its held-out pairs (never-seen compositions:
 * no training batch or tokenizer text has one, the novel split only
 * those), fashion-mnist (a small fake copy: epochs
 * as shuffled permutations, captions, resizing, every bad-file class; and
 * the real files when Debian's package is installed), and PNG grids. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/data/data.h"
#include "runtime/io/npy.h"
#include "runtime/data/shapes_reader.h"
#include "tests/util.h"

/* ---- reading a rendered scene back from its pixels ---- */

/* What the test finds in one grid cell: the palette colour whose exact
 * value its fully covered pixels have, and their count and bounding box. */
typedef struct {
  int colour; /* -1: nothing there */
  int count;
  int x0, y0, x1, y1;
} Found;

/* The palette colour that pixel (x, y) has exactly (full coverage), or -1. */
static int pixel_colour(const float *img, int size, int x, int y) {
  int64_t plane = (int64_t)size * size;
  for (int c = 0; c < RT_SHAPES_COLOURS; c++) {
    float rgb[3];
    rt_shapes_colour_rgb(c, rgb);
    bool same = true;
    for (int k = 0; k < 3 && same; k++) same = fabsf(img[k * plane + (int64_t)y * size + x] - (2 * rgb[k] - 1)) < 1e-5f;
    if (same) return c;
  }
  return -1;
}

static void scan_cells(const float *img, int size, Found cell[3][3]) {
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 3; c++) cell[r][c] = (Found){.colour = -1, .x0 = size, .y0 = size, .x1 = -1, .y1 = -1};
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++) {
      int colour = pixel_colour(img, size, x, y);
      if (colour < 0) continue;
      Found *f = &cell[y * 3 / size][x * 3 / size];
      ck_assert_msg(f->colour < 0 || f->colour == colour, "two colours in one cell");
      f->colour = colour;
      f->count++;
      f->x0 = x < f->x0 ? x : f->x0;
      f->x1 = x > f->x1 ? x : f->x1;
      f->y0 = y < f->y0 ? y : f->y0;
      f->y1 = y > f->y1 ? y : f->y1;
    }
}

/* The kind of shape a cell holds, from how much of its bounding box it
 * fills: squares ~1, circles ~pi/4, triangles ~1/2. */
static int kind_of(const Found *f) {
  double fill = (double)f->count / ((f->x1 - f->x0 + 1) * (f->y1 - f->y0 + 1));
  return fill > 0.88 ? RT_SHAPE_SQUARE : fill > 0.64 ? RT_SHAPE_CIRCLE : RT_SHAPE_TRIANGLE;
}

static int word_index(const char *const *list, int n, const char *w) {
  for (int i = 0; i < n; i++)
    if (strcmp(list[i], w) == 0) return i;
  return -1;
}

static const char *const colours[] = {"red", "green", "blue", "yellow", "purple"};
static const char *const kinds[] = {"circle", "square", "triangle"};
static const char *const places[] = {"at the top left",    "at the top",    "at the top right",
                                     "on the left",        "in the center", "on the right",
                                     "at the bottom left", "at the bottom", "at the bottom right"};

/* Finds the cell holding (colour, kind); asserts there is exactly one. */
static void locate(Found cell[3][3], int colour, int kind, int *row, int *col, const char *caption) {
  int hits = 0;
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 3; c++)
      if (cell[r][c].colour == colour && kind_of(&cell[r][c]) == kind) {
        *row = r;
        *col = c;
        hits++;
      }
  ck_assert_msg(hits == 1, "'%s': %d cells hold a %s %s", caption, hits, colours[colour], kinds[kind]);
}

/* Checks that the image shows what the caption says, reading the caption
 * with the grammar of data.h and the image with scan_cells. */
static void check_caption(const char *caption, const float *img, int size) {
  Found cell[3][3];
  scan_cells(img, size, cell);
  int objects = 0;
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 3; c++) objects += cell[r][c].colour >= 0;
  char size_w[16], col1[16], kind1[16], rest[64];
  if (sscanf(caption, "a %15s %15s %15s %63[a-z ]", size_w, col1, kind1, rest) == 4 &&
      (strcmp(size_w, "small") == 0 || strcmp(size_w, "large") == 0)) {
    /* "a SIZE COLOUR SHAPE PLACE" */
    ck_assert_msg(objects == 1, "'%s': %d objects", caption, objects);
    int colour = word_index(colours, 5, col1), kind = word_index(kinds, 3, kind1), place = word_index(places, 9, rest);
    ck_assert_msg(colour >= 0 && kind >= 0 && place >= 0, "'%s' is not in the grammar", caption);
    int row, col;
    locate(cell, colour, kind, &row, &col, caption);
    ck_assert_msg(row * 3 + col == place, "'%s': the object is in cell (%d, %d)", caption, row, col);
    /* Large objects cover about 2.6 times the area of small ones. */
    double cellpx = size / 3.0, r = cellpx * (strcmp(size_w, "large") == 0 ? 0.42 : 0.26);
    double area = kind == RT_SHAPE_CIRCLE ? M_PI * r * r : kind == RT_SHAPE_SQUARE ? 2.89 * r * r : 1.75 * r * r;
    ck_assert_msg(cell[row][col].count > 0.75 * area && cell[row][col].count < 1.1 * area,
                  "'%s': %d pixels, expected about %.0f", caption, cell[row][col].count, area);
    return;
  }
  /* "a COLOUR SHAPE RELATION a COLOUR SHAPE" */
  char col2[16], kind2[16], rel[32];
  const char *second = strstr(caption + 2, " a ");
  ck_assert_msg(second != NULL, "'%s' is not in the grammar", caption);
  ck_assert_int_eq(sscanf(second, " a %15s %15s", col2, kind2), 2);
  int n = 0;
  ck_assert_int_eq(sscanf(caption, "a %15s %15s %n", col1, kind1, &n), 2);
  snprintf(rel, sizeof rel, "%.*s", (int)(second - caption - n), caption + n);
  ck_assert_msg(objects == 2, "'%s': %d objects", caption, objects);
  int c1 = word_index(colours, 5, col1), k1 = word_index(kinds, 3, kind1);
  int c2 = word_index(colours, 5, col2), k2 = word_index(kinds, 3, kind2);
  ck_assert_msg(c1 >= 0 && k1 >= 0 && c2 >= 0 && k2 >= 0, "'%s' is not in the grammar", caption);
  int r1, q1, r2, q2;
  locate(cell, c1, k1, &r1, &q1, caption);
  locate(cell, c2, k2, &r2, &q2, caption);
  bool ok = strcmp(rel, "above") == 0            ? q1 == q2 && r1 < r2
            : strcmp(rel, "below") == 0          ? q1 == q2 && r1 > r2
            : strcmp(rel, "to the left of") == 0 ? r1 == r2 && q1 < q2
            : strcmp(rel, "to the right of") == 0 ? r1 == r2 && q1 > q2
                                                  : false;
  ck_assert_msg(ok, "'%s' (relation '%s'): first object in (%d, %d), second in (%d, %d)", caption, rel, r1, q1, r2, q2);
}

/* ---- shapes ---- */

START_TEST(test_shapes_captions_match_images) {
  const int size = 96;
  float *img = malloc(3 * size * size * sizeof *img);
  int singles = 0, pairs = 0, large = 0;
  bool kinds_seen[3] = {0}, rel_seen[4] = {0};
  for (uint64_t seed = 0; seed < 3; seed++)
    for (uint64_t i = 0; i < 60; i++) {
      RtShapesScene sc;
      rt_shapes_scene(seed, i, size, &sc);
      rt_shapes_render(&sc, size, img);
      check_caption(sc.caption, img, size);
      singles += sc.nobj == 1;
      pairs += sc.nobj == 2;
      large += sc.nobj == 1 && sc.obj[0].large;
      kinds_seen[sc.obj[0].kind] = true;
      rel_seen[0] |= strstr(sc.caption, " above ") != NULL;
      rel_seen[1] |= strstr(sc.caption, " below ") != NULL;
      rel_seen[2] |= strstr(sc.caption, " left of ") != NULL;
      rel_seen[3] |= strstr(sc.caption, " right of ") != NULL;
    }
  /* Both scene forms, both sizes, every kind and relation occur. */
  ck_assert_msg(singles > 40 && pairs > 40 && large > 10 && large < singles, "%d %d %d", singles, pairs, large);
  for (int k = 0; k < 3; k++) ck_assert(kinds_seen[k]);
  for (int k = 0; k < 4; k++) ck_assert(rel_seen[k]);
  free(img);
}
END_TEST

START_TEST(test_shapes_deterministic_and_in_range) {
  const int size = 16;
  float *a = malloc(3 * size * size * sizeof *a), *b = malloc(3 * size * size * sizeof *b);
  int differ = 0;
  for (uint64_t i = 0; i < 20; i++) {
    RtShapesScene s1, s2, s3;
    rt_shapes_scene(42, i, size, &s1);
    rt_shapes_scene(42, i, size, &s2);
    ck_assert_str_eq(s1.caption, s2.caption);
    rt_shapes_render(&s1, size, a);
    rt_shapes_render(&s2, size, b);
    ck_assert(memcmp(a, b, 3 * size * size * sizeof *a) == 0);
    rt_shapes_scene(43, i, size, &s3);
    differ += strcmp(s1.caption, s3.caption) != 0;
    /* In [-1, 1]; the corner pixel is the background, which no object reaches. */
    int bg = 0;
    for (int k = 0; k < 3 * size * size; k++) ck_assert(a[k] >= -1.0f && a[k] <= 1.0f);
    float rgb[3];
    rt_shapes_colour_rgb(-1, rgb);
    for (int c = 0; c < 3; c++) bg += a[c * size * size] == 2 * rgb[c] - 1;
    ck_assert_int_eq(bg, 3);
  }
  ck_assert_msg(differ >= 15, "seeds 42 and 43 give the same captions %d times of 20", 20 - differ);
  /* The scene does not depend on the image size, only its pixels do. */
  RtShapesScene small, big;
  rt_shapes_scene(5, 7, 16, &small);
  rt_shapes_scene(5, 7, 64, &big);
  ck_assert_str_eq(small.caption, big.caption);
  ck_assert_float_eq_tol(big.obj[0].cx, 4 * small.obj[0].cx, 1e-3);
  free(a);
  free(b);
}
END_TEST

/* An entry x: f32[4, 3, 16, 16], tau: f32. */
static const RtArgSpec dvae_inputs[] = {
    {.name = "x", .dtype = RT_F32, .rank = 4, .dim = {4, 3, 16, 16}},
    {.name = "tau", .dtype = RT_F32, .rank = 0},
};
static const RtEntrySpec dvae_entry = {.name = "loss", .train = true, .ninput = 2, .input = dvae_inputs};

START_TEST(test_shapes_dataset) {
  RtErr e;
  RtDataset *d = rt_data_open("shapes", &dvae_entry, 9, &e);
  ck_assert_msg(d != NULL, "%s", e.msg);
  ck_assert(rt_data_fills(d, 0) && !rt_data_fills(d, 1));
  ck_assert_int_eq(rt_data_batch(d), 4);
  RtTensor *x = rt_tensor_new(RT_F32, 4, dvae_inputs[0].dim, &e);
  RtTensor *in[2] = {x, NULL};
  float img[3 * 16 * 16];
  /* Batch s holds examples 4s .. 4s+3 of the stream, captions included. */
  for (uint64_t step = 0; step < 3; step++) {
    ck_assert_int_eq(rt_data_fill(d, step * 5, in, &e), 0);
    for (int j = 0; j < 4; j++) {
      RtShapesScene sc;
      rt_shapes_scene(9, step * 5 * 4 + (uint64_t)j, 16, &sc);
      rt_shapes_render(&sc, 16, img);
      ck_assert_str_eq(rt_data_caption(d, j), sc.caption);
      ck_assert(memcmp(rt_f32(x) + j * 3 * 16 * 16, img, sizeof img) == 0);
    }
  }
  ck_assert_ptr_null(rt_data_caption(d, 4));
  rt_data_free(d);
  rt_tensor_free(x);
  /* Errors: no image input; unknown kinds; arguments. */
  static const RtArgSpec tokens[] = {{.name = "text", .dtype = RT_I32, .rank = 2, .dim = {4, 8}}};
  static const RtEntrySpec gpt = {.name = "loss", .train = true, .ninput = 1, .input = tokens};
  ck_assert_ptr_null(rt_data_open("shapes", &gpt, 0, &e));
  ck_assert_msg(strstr(e.msg, "f32[B, 3, S, S]") && strstr(e.msg, "text"), "%s", e.msg);
  ck_assert_ptr_null(rt_data_open("imagenet", &dvae_entry, 0, &e));
  ck_assert_msg(strstr(e.msg, "unknown dataset 'imagenet'"), "%s", e.msg);
  ck_assert_ptr_null(rt_data_open("shapes:big", &dvae_entry, 0, &e));
  ck_assert_msg(strstr(e.msg, "takes nothing (the training split), 'test'"), "%s", e.msg);
}
END_TEST

/* `shapes` is the stream it always was (checkpoints and logs of earlier
 * runs depend on it): seed 0's first ten captions and an FNV-1a hash of
 * their 16x16 images, recorded before the test split existed. */
START_TEST(test_shapes_stream_unchanged) {
  static const char *const want[10] = {
      "a green circle to the right of a blue square", "a large purple triangle at the bottom right",
      "a small yellow triangle on the left",          "a small green circle in the center",
      "a green square to the right of a green triangle", "a large blue circle on the left",
      "a blue triangle below a green square",         "a large purple square at the top right",
      "a red square to the right of a red circle",    "a large red square in the center",
  };
  static const uint32_t hash[2] = {3780183995u, 3502336029u};
  RtErr e;
  RtArgSpec x = {.name = "x", .dtype = RT_F32, .rank = 4, .dim = {5, 3, 16, 16}};
  RtEntrySpec en = {.name = "loss", .train = true, .ninput = 1, .input = &x};
  RtDataset *d = rt_data_open("shapes", &en, 0, &e);
  RtTensor *t = rt_tensor_new(RT_F32, 4, x.dim, &e);
  for (int s = 0; s < 2; s++) {
    ck_assert_int_eq(rt_data_fill(d, (uint64_t)s, &t, &e), 0);
    uint32_t h = 2166136261u;
    const unsigned char *p = t->data;
    for (size_t i = 0; i < rt_tensor_bytes(t); i++) h = (h ^ p[i]) * 16777619u;
    ck_assert_uint_eq(h, hash[s]);
    for (int j = 0; j < 5; j++) ck_assert_str_eq(rt_data_caption(d, j), want[s * 5 + j]);
  }
  rt_tensor_free(t);
  rt_data_free(d);
}
END_TEST

/* `shapes:test`: example i is scene 2^40 + i, `shapes:val` scene 2^63 + i,
 * training examples are scenes below 2^40: the splits never share a scene. */
START_TEST(test_shapes_test_split) {
  const RtShapesSplit TR = RT_SHAPES_TRAIN, TE = RT_SHAPES_TEST, VA = RT_SHAPES_VAL;
  uint64_t sc;
  ck_assert(rt_shapes_index(TR, 0, &sc) && sc == 0);
  ck_assert(rt_shapes_index(TR, RT_SHAPES_TEST_BASE - 1, &sc) && sc == RT_SHAPES_TEST_BASE - 1);
  ck_assert(!rt_shapes_index(TR, RT_SHAPES_TEST_BASE, &sc));
  ck_assert(rt_shapes_index(TE, 0, &sc) && sc == RT_SHAPES_TEST_BASE);
  ck_assert(rt_shapes_index(TE, 12345, &sc) && sc == RT_SHAPES_TEST_BASE + 12345);
  ck_assert(rt_shapes_index(TE, RT_SHAPES_VAL_BASE - RT_SHAPES_TEST_BASE - 1, &sc) && sc == RT_SHAPES_VAL_BASE - 1);
  ck_assert(!rt_shapes_index(TE, RT_SHAPES_VAL_BASE - RT_SHAPES_TEST_BASE, &sc));
  ck_assert(rt_shapes_index(VA, 0, &sc) && sc == RT_SHAPES_VAL_BASE);
  ck_assert(rt_shapes_index(VA, UINT64_MAX - RT_SHAPES_VAL_BASE, &sc) && sc == UINT64_MAX);
  ck_assert(!rt_shapes_index(VA, UINT64_MAX - RT_SHAPES_VAL_BASE + 1, &sc));
  /* Every training index maps below every test index, every test index
   * below every validation one (the maps are increasing, so comparing the
   * ends suffices), and each is one-to-one. */
  uint64_t train_max, test_min, test_max, val_min;
  ck_assert(rt_shapes_index(TR, RT_SHAPES_TEST_BASE - 1, &train_max) && rt_shapes_index(TE, 0, &test_min));
  ck_assert(train_max < test_min);
  ck_assert(rt_shapes_index(TE, RT_SHAPES_VAL_BASE - RT_SHAPES_TEST_BASE - 1, &test_max));
  ck_assert(rt_shapes_index(VA, 0, &val_min) && test_max < val_min);
  /* shapes:val:seen and :novel parse; the training split has no novel */
  RtErr e0;
  RtDataset *vs = rt_data_open("shapes:val:seen", &dvae_entry, 9, &e0);
  ck_assert_msg(vs != NULL, "%s", e0.msg);
  rt_data_free(vs);
  ck_assert_ptr_null(rt_data_open("shapes:novel", &dvae_entry, 9, &e0));
  ck_assert_ptr_null(rt_data_open("shapes:valid", &dvae_entry, 9, &e0));
  ck_assert_msg(strstr(e0.msg, "'val'"), "%s", e0.msg);
  /* The datasets: shapes:test's batch s holds scenes 2^40 + sB + j. */
  RtErr e;
  RtDataset *tr = rt_data_open("shapes", &dvae_entry, 9, &e), *te = rt_data_open("shapes:test", &dvae_entry, 9, &e);
  ck_assert_msg(tr && te, "%s", e.msg);
  RtTensor *x = rt_tensor_new(RT_F32, 4, dvae_inputs[0].dim, &e), *y = rt_tensor_new(RT_F32, 4, dvae_inputs[0].dim, &e);
  RtTensor *in[2] = {x, NULL}, *tin[2] = {y, NULL};
  float img[3 * 16 * 16];
  int same = 0;
  for (uint64_t step = 0; step < 3; step++) {
    ck_assert_int_eq(rt_data_fill(tr, step, in, &e), 0);
    ck_assert_int_eq(rt_data_fill(te, step, tin, &e), 0);
    for (int j = 0; j < 4; j++) {
      RtShapesScene scn;
      rt_shapes_scene(9, RT_SHAPES_TEST_BASE + step * 4 + (uint64_t)j, 16, &scn);
      rt_shapes_render(&scn, 16, img);
      ck_assert_str_eq(rt_data_caption(te, j), scn.caption);
      ck_assert(memcmp(rt_f32(y) + j * 3 * 16 * 16, img, sizeof img) == 0);
      same += memcmp(rt_f32(x) + j * 3 * 16 * 16, img, sizeof img) == 0;
    }
  }
  ck_assert_int_lt(same, 12); /* not the training stream */
  /* Training steps that would reach the test scenes are refused. */
  ck_assert_int_eq(rt_data_fill(tr, RT_SHAPES_TEST_BASE / 4, in, &e), -1);
  ck_assert_msg(strstr(e.msg, "past the end of the split") && strstr(e.msg, "2^40"), "%s", e.msg);
  ck_assert_int_eq(rt_data_fill(tr, RT_SHAPES_TEST_BASE / 4 - 1, in, &e), 0);
  ck_assert_int_eq(rt_data_fill(te, RT_SHAPES_TEST_BASE / 4, tin, &e), 0);
  ck_assert_int_eq(rt_data_fill(tr, UINT64_MAX / 2, in, &e), -1);
  ck_assert_msg(strstr(e.msg, "too large"), "%s", e.msg);
  /* Chosen examples: shapes:test example k is scene 2^40 + k. */
  uint64_t k[4] = {7, 0, 7, 100};
  ck_assert_int_eq(rt_data_fill_examples(te, k, tin, &e), 0);
  RtShapesScene scn;
  rt_shapes_scene(9, RT_SHAPES_TEST_BASE + 100, 16, &scn);
  ck_assert_str_eq(rt_data_caption(te, 3), scn.caption);
  ck_assert_str_eq(rt_data_caption(te, 0), rt_data_caption(te, 2));
  ck_assert_int_eq(rt_data_size(te), 0);
  rt_tensor_free(x);
  rt_tensor_free(y);
  rt_data_free(tr);
  rt_data_free(te);
}
END_TEST

/* ---- held-out pairs ---- */

/* Whether a caption names a held-out pair of "purple-triangle+green-circle
 * +blue-square", read from its words alone ("COLOUR KIND" is adjacent in
 * both caption forms). */
static bool names_default_pair(const char *caption) {
  return strstr(caption, "purple triangle") || strstr(caption, "green circle") || strstr(caption, "blue square");
}

START_TEST(test_shapes_holdout_spec) {
  uint32_t pairs, other;
  RtErr e;
  ck_assert_int_eq(rt_shapes_holdout_parse(RT_SHAPES_HOLDOUT_DEFAULT, &pairs, &e), 0);
  ck_assert_int_eq(__builtin_popcount(pairs), 3);
  ck_assert(pairs & (1u << RT_SHAPES_PAIR(4, RT_SHAPE_TRIANGLE)));
  ck_assert(pairs & (1u << RT_SHAPES_PAIR(1, RT_SHAPE_CIRCLE)));
  ck_assert(pairs & (1u << RT_SHAPES_PAIR(2, RT_SHAPE_SQUARE)));
  char buf[256];
  ck_assert_str_eq(rt_shapes_holdout_str(pairs, buf, sizeof buf), "green-circle+blue-square+purple-triangle");
  ck_assert_int_eq(rt_shapes_holdout_parse(buf, &other, &e), 0);
  ck_assert_uint_eq(other, pairs);
  ck_assert_int_eq(rt_shapes_holdout_parse("red-circle+red-circle", &other, &e), 0);
  ck_assert_uint_eq(other, 1u);
  static const char *const bad[] = {"", "red", "red-", "-circle", "red-circles", "pink-circle", "red-circle+",
                                    "red-circle++blue-square", "red circle", "Red-circle"};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    ck_assert_msg(rt_shapes_holdout_parse(bad[k], &other, &e) == -1, "'%s' parsed", bad[k]);
    ck_assert_msg(strstr(e.msg, "is not COLOUR-KIND"), "%s", e.msg);
  }
  /* Holding out all 15 pairs leaves nothing. */
  char all[512] = "";
  for (int c = 0; c < RT_SHAPES_COLOURS; c++)
    for (int k = 0; k < RT_SHAPE_KINDS; k++)
      snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s-%s", *all ? "+" : "", rt_shapes_colour_name(c),
               rt_shapes_kind_name((RtShapeKind)k));
  ck_assert_int_eq(rt_shapes_holdout_parse(all, &other, &e), -1);
  ck_assert_msg(strstr(e.msg, "every (colour, kind) pair"), "%s", e.msg);
  /* Scenes: rt_shapes_uses_pair looks at both objects of a relation. */
  RtShapesScene sc = {.nobj = 2};
  sc.obj[0] = (RtShapesObject){.kind = RT_SHAPE_SQUARE, .colour = 0};
  sc.obj[1] = (RtShapesObject){.kind = RT_SHAPE_CIRCLE, .colour = 1};
  ck_assert(rt_shapes_uses_pair(&sc, pairs));
  sc.nobj = 1;
  ck_assert(!rt_shapes_uses_pair(&sc, pairs));
  ck_assert(!rt_shapes_uses_pair(&sc, 0));
}
END_TEST

/* A stand-in entry with one image input of 'batch' images at 'size'. */
typedef struct {
  RtArgSpec x;
  RtEntrySpec en;
} OneImage;

static void one_image(OneImage *o, int64_t batch, int64_t size) {
  o->x = (RtArgSpec){.name = "x", .dtype = RT_F32, .rank = 4, .dim = {batch, 3, size, size}};
  o->en = (RtEntrySpec){.name = "loss", .train = true, .ninput = 1, .input = &o->x};
}

/* No training batch of shapes:holdout has a held-out pair, over many
 * steps; the images show their captions; the batch of a step is the same
 * whenever it is asked for; an example is the unfiltered one whenever
 * that passes; the default SPEC is RT_SHAPES_HOLDOUT_DEFAULT. */
START_TEST(test_shapes_holdout_training) {
  RtErr e;
  OneImage o;
  one_image(&o, 16, 16);
  RtDataset *h = rt_data_open("shapes:holdout", &o.en, 5, &e);
  ck_assert_msg(h != NULL, "%s", e.msg);
  RtDataset *h2 = rt_data_open("shapes:holdout=blue-square+purple-triangle+green-circle", &o.en, 5, &e);
  RtDataset *plain = rt_data_open("shapes", &o.en, 5, &e);
  ck_assert(h2 && plain);
  RtTensor *x = rt_tensor_new(RT_F32, 4, o.x.dim, &e), *y = rt_tensor_new(RT_F32, 4, o.x.dim, &e);
  char (*first)[96] = calloc(16, sizeof *first);
  int kept = 0, single = 0, pair = 0;
  for (uint64_t step = 0; step < 300; step++) {
    ck_assert_int_eq(rt_data_fill(h, step, &x, &e), 0);
    ck_assert_int_eq(rt_data_fill(plain, step, &y, &e), 0);
    for (int j = 0; j < 16; j++) {
      const char *c = rt_data_caption(h, j), *u = rt_data_caption(plain, j);
      ck_assert_msg(!names_default_pair(c), "step %llu: '%s'", (unsigned long long)step, c);
      if (!names_default_pair(u)) {
        /* The unfiltered example passes, so it is the example. */
        ck_assert_str_eq(c, u);
        ck_assert(memcmp(rt_f32(x) + j * 3 * 16 * 16, rt_f32(y) + j * 3 * 16 * 16, 3 * 16 * 16 * sizeof(float)) == 0);
        kept++;
      }
      single += strstr(c, " small ") || strstr(c, " large ");
      pair += !(strstr(c, " small ") || strstr(c, " large "));
      if (step == 7) memcpy(first[j], c, strlen(c) + 1);
    }
  }
  /* About 71% of unfiltered scenes pass; both caption forms remain. */
  ck_assert_msg(kept > 0.6 * 4800 && kept < 0.8 * 4800, "%d", kept);
  ck_assert_msg(single > 1500 && pair > 1500, "%d %d", single, pair);
  /* Step 7 again, from a fresh dataset and from the one with the SPEC
   * spelt out: the same batch. */
  ck_assert_int_eq(rt_data_fill(h2, 7, &y, &e), 0);
  for (int j = 0; j < 16; j++) ck_assert_str_eq(rt_data_caption(h2, j), first[j]);
  ck_assert_int_eq(rt_data_fill(h, 7, &x, &e), 0);
  ck_assert(memcmp(rt_f32(x), rt_f32(y), rt_tensor_bytes(x)) == 0);
  /* Images show their captions (read back by the test's own reader at 96). */
  OneImage big;
  one_image(&big, 8, 96);
  RtDataset *hb = rt_data_open("shapes:holdout", &big.en, 5, &e);
  RtTensor *b = rt_tensor_new(RT_F32, 4, big.x.dim, &e);
  /* Batch 8's step 14 holds examples 112 .. 119, which batch 16's step 7
   * began with: an example does not depend on the batch size. */
  ck_assert_int_eq(rt_data_fill(hb, 14, &b, &e), 0);
  for (int j = 0; j < 8; j++) {
    check_caption(rt_data_caption(hb, j), rt_f32(b) + j * 3 * 96 * 96, 96);
    ck_assert_str_eq(rt_data_caption(hb, j), first[j]);
  }
  /* Chosen examples (what a token cache stores): example k of the stream. */
  uint64_t k[16];
  for (int j = 0; j < 16; j++) k[j] = 7 * 16 + (uint64_t)j;
  ck_assert_int_eq(rt_data_fill_examples(h2, k, &y, &e), 0);
  for (int j = 0; j < 16; j++) ck_assert_str_eq(rt_data_caption(h2, j), first[j]);
  free(first);
  rt_tensor_free(b);
  rt_tensor_free(x);
  rt_tensor_free(y);
  rt_data_free(hb);
  rt_data_free(h);
  rt_data_free(h2);
  rt_data_free(plain);
}
END_TEST

/* The tokenizer's training text: `dalc bpe train --data SPEC` reads the
 * captions of the first N examples through the dataset (a stand-in entry of
 * 64 16x16 images, as tools/cmd_bpe.c opens it); none has a held-out pair.
 * And the command itself takes the spec. */
START_TEST(test_shapes_holdout_tokenizer_text) {
  RtErr e;
  OneImage o;
  one_image(&o, 64, 16);
  RtDataset *d = rt_data_open("shapes:holdout=red-circle+yellow-square", &o.en, 0, &e);
  ck_assert_msg(d != NULL, "%s", e.msg);
  RtTensor *x = rt_tensor_new(RT_F32, 4, o.x.dim, &e);
  int red_other = 0;
  for (uint64_t step = 0; step * 64 < 10000; step++) {
    ck_assert_int_eq(rt_data_fill(d, step, &x, &e), 0);
    for (int j = 0; j < 64; j++) {
      const char *c = rt_data_caption(d, j);
      ck_assert_msg(!strstr(c, "red circle") && !strstr(c, "yellow square"), "'%s'", c);
      red_other += strstr(c, "red square") != NULL;
    }
  }
  ck_assert_int_gt(red_other, 100); /* the colour and the kind themselves stay */
  rt_tensor_free(x);
  rt_data_free(d);
  char *tok = tu_path("holdout-tok.json");
  int st;
  char *out = tu_sh_output(&st, "%s bpe train --data shapes:holdout=red-circle --examples 2000 --vocab 200 -o %s",
                           tu_dalc(), tok);
  ck_assert_msg(st == 0 && strstr(out, "learned from 2000 texts"), "%s", out);
  free(out);
  out = tu_sh_output(&st, "%s bpe train --data shapes:holdout=red-circel --vocab 200 -o %s", tu_dalc(), tok);
  ck_assert_msg(st != 0 && strstr(out, "'red-circel' is not COLOUR-KIND"), "%s", out);
  free(out);
  free(tok);
}
END_TEST

/* shapes:test:novel holds only scenes with a held-out pair, every one of
 * them met; shapes:test:seen (= shapes:test:holdout) none; example i of
 * the test split is example i of exactly one of them. */
START_TEST(test_shapes_holdout_test_splits) {
  RtErr e;
  OneImage o;
  one_image(&o, 32, 16);
  RtDataset *te = rt_data_open("shapes:test", &o.en, 3, &e), *nv = rt_data_open("shapes:test:novel", &o.en, 3, &e),
            *sn = rt_data_open("shapes:test:seen", &o.en, 3, &e),
            *ho = rt_data_open("shapes:test:holdout=" RT_SHAPES_HOLDOUT_DEFAULT, &o.en, 3, &e),
            *tr = rt_data_open("shapes:holdout", &o.en, 3, &e);
  ck_assert_msg(te && nv && sn && ho && tr, "%s", e.msg);
  RtTensor *t[5];
  for (int k = 0; k < 5; k++) t[k] = rt_tensor_new(RT_F32, 4, o.x.dim, &e);
  uint32_t pairs;
  ck_assert_int_eq(rt_shapes_holdout_parse(RT_SHAPES_HOLDOUT_DEFAULT, &pairs, &e), 0);
  uint32_t met = 0;
  int novel_first = 0, overlap = 0;
  for (uint64_t step = 0; step < 40; step++) {
    RtDataset *ds[5] = {te, nv, sn, ho, tr};
    for (int k = 0; k < 5; k++) ck_assert_int_eq(rt_data_fill(ds[k], step, &t[k], &e), 0);
    for (int j = 0; j < 32; j++) {
      const char *c = rt_data_caption(te, j), *n = rt_data_caption(nv, j), *s = rt_data_caption(sn, j);
      RtShapesCaption pc;
      ck_assert_int_eq(rt_shapes_parse_caption(n, &pc, &e), 0);
      ck_assert_msg(names_default_pair(n) && rt_shapes_caption_uses_pair(&pc, pairs), "novel: '%s'", n);
      for (int k = 0; k < pc.nobj; k++)
        if (pairs & (1u << RT_SHAPES_PAIR(pc.colour[k], pc.kind[k]))) met |= 1u << RT_SHAPES_PAIR(pc.colour[k], pc.kind[k]);
      ck_assert_msg(!names_default_pair(s), "seen: '%s'", s);
      ck_assert_str_eq(s, rt_data_caption(ho, j));
      ck_assert_int_eq(!strcmp(c, n) + !strcmp(c, s), 1);
      novel_first += !strcmp(c, n);
      overlap += !strcmp(rt_data_caption(tr, j), s);
    }
    ck_assert(memcmp(rt_f32(t[2]), rt_f32(t[3]), rt_tensor_bytes(t[2])) == 0);
  }
  ck_assert_uint_eq(met, pairs);
  /* About 29% of test scenes use a held-out pair. */
  ck_assert_msg(novel_first > 0.2 * 1280 && novel_first < 0.38 * 1280, "%d", novel_first);
  ck_assert_int_lt(overlap, 100); /* training and test draws differ */
  for (int k = 0; k < 5; k++) rt_tensor_free(t[k]);
  rt_data_free(te);
  rt_data_free(nv);
  rt_data_free(sn);
  rt_data_free(ho);
  rt_data_free(tr);
  /* Bad specs. */
  static const struct {
    const char *spec, *msg;
  } bad[] = {
      {"shapes:novel", "the training split has no never-seen compositions"},
      {"shapes:holdout=", "'=' with no pairs"},
      {"shapes:holdout=red-cat", "'red-cat' is not COLOUR-KIND"},
      {"shapes:test:", "not 'test:'"},
      {"shapes:val:", "not 'val:'"},
      {"shapes:val:nope", "not 'val:nope'"},
      {"shapes:test:nope", "not 'test:nope'"},
      {"shapes:testing", "not 'testing'"},
      {"shapes:holdouts", "not 'holdouts'"},
      {"shapes:seen:test", "not 'seen:test'"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    ck_assert_ptr_null(rt_data_open(bad[k].spec, &o.en, 0, &e));
    ck_assert_msg(strstr(e.msg, bad[k].msg), "%s: %s", bad[k].spec, e.msg);
  }
}
END_TEST

/* ---- npy ---- */

static const RtArgSpec gpt_inputs[] = {
    {.name = "text", .dtype = RT_I32, .rank = 2, .dim = {3, 2}},
    {.name = "image", .dtype = RT_I32, .rank = 2, .dim = {3, 4}},
};
static const RtEntrySpec gpt_entry = {.name = "loss", .train = true, .ninput = 2, .input = gpt_inputs};

/* Writes an i32 array [rows, cols] with element (r, c) = 100 r + c + base. */
static char *write_rows(const char *name, int rows, int cols, int base) {
  RtErr e;
  RtTensor *t = rt_tensor_new(RT_I32, 2, (int64_t[]){rows, cols}, &e);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) rt_i32(t)[r * cols + c] = 100 * r + c + base;
  char *path = tu_path(name);
  ck_assert_int_eq(rt_npy_write(path, t, &e), 0);
  rt_tensor_free(t);
  return path;
}

START_TEST(test_npy_dataset) {
  char *text = write_rows("text.npy", 5, 2, 0), *image = write_rows("image.npy", 5, 4, 50000);
  char spec[1024];
  snprintf(spec, sizeof spec, "npy:text=%s,image=%s", text, image);
  RtErr e;
  RtDataset *d = rt_data_open(spec, &gpt_entry, 0, &e);
  ck_assert_msg(d != NULL, "%s", e.msg);
  ck_assert(rt_data_fills(d, 0) && rt_data_fills(d, 1));
  ck_assert_int_eq(rt_data_batch(d), 3);
  RtTensor *in[2] = {rt_tensor_new(RT_I32, 2, gpt_inputs[0].dim, &e), rt_tensor_new(RT_I32, 2, gpt_inputs[1].dim, &e)};
  /* Step s, row j: source row (3s + j) mod 5, the same for both arrays. */
  for (uint64_t step = 0; step < 4; step++) {
    ck_assert_int_eq(rt_data_fill(d, step, in, &e), 0);
    for (int j = 0; j < 3; j++) {
      int r = (int)((step * 3 + (uint64_t)j) % 5);
      ck_assert_int_eq(rt_i32(in[0])[j * 2 + 1], 100 * r + 1);
      ck_assert_int_eq(rt_i32(in[1])[j * 4 + 3], 100 * r + 3 + 50000);
    }
  }
  ck_assert_ptr_null(rt_data_caption(d, 0));
  ck_assert_int_eq(rt_data_fill_examples(d, (uint64_t[]){0, 1, 2}, in, &e), -1);
  ck_assert_msg(strstr(e.msg, "whole batches only"), "%s", e.msg);
  rt_data_free(d);
  /* Errors name the file or input. */
  char *short_rows = write_rows("short.npy", 4, 4, 0), *wide = write_rows("wide.npy", 5, 3, 0);
  snprintf(spec, sizeof spec, "npy:text=%s,image=%s", text, short_rows);
  ck_assert_ptr_null(rt_data_open(spec, &gpt_entry, 0, &e));
  ck_assert_msg(strstr(e.msg, short_rows) && strstr(e.msg, "rows"), "%s", e.msg);
  snprintf(spec, sizeof spec, "npy:image=%s", wide);
  ck_assert_ptr_null(rt_data_open(spec, &gpt_entry, 0, &e));
  ck_assert_msg(strstr(e.msg, wide) && strstr(e.msg, "'image'") && strstr(e.msg, "[5, 3]"), "%s", e.msg);
  snprintf(spec, sizeof spec, "npy:txt=%s", text);
  ck_assert_ptr_null(rt_data_open(spec, &gpt_entry, 0, &e));
  ck_assert_msg(strstr(e.msg, "no input 'txt'"), "%s", e.msg);
  ck_assert_ptr_null(rt_data_open("npy:text=/nonexistent.npy", &gpt_entry, 0, &e));
  ck_assert_msg(strstr(e.msg, "/nonexistent.npy"), "%s", e.msg);
  ck_assert_ptr_null(rt_data_open("npy:text", &gpt_entry, 0, &e));
  ck_assert_msg(strstr(e.msg, "NAME=FILE.npy"), "%s", e.msg);
  ck_assert_ptr_null(rt_data_open("npy:", &gpt_entry, 0, &e));
  /* A float array for integer tokens. */
  RtTensor *f = rt_tensor_new(RT_F32, 2, (int64_t[]){5, 2}, &e);
  char *fpath = tu_path("float.npy");
  ck_assert_int_eq(rt_npy_write(fpath, f, &e), 0);
  snprintf(spec, sizeof spec, "npy:text=%s", fpath);
  ck_assert_ptr_null(rt_data_open(spec, &gpt_entry, 0, &e));
  ck_assert_msg(strstr(e.msg, "i32[N,") && strstr(e.msg, "f32[5, 2]"), "%s", e.msg);
  rt_tensor_free(f);
  rt_tensor_free(in[0]);
  rt_tensor_free(in[1]);
  free(text);
  free(image);
  free(short_rows);
  free(wide);
  free(fpath);
}
END_TEST

/* ---- PNG ---- */

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

START_TEST(test_png_grid) {
  RtErr e;
  RtTensor *x = rt_tensor_new(RT_F32, 4, dvae_inputs[0].dim, &e);
  RtTensor *in[2] = {x, NULL};
  RtDataset *d = rt_data_open("shapes", &dvae_entry, 1, &e);
  ck_assert_int_eq(rt_data_fill(d, 0, in, &e), 0);
  char *path = tu_path("grid.png");
  ck_assert_msg(rt_png_write_grid(path, x, 0, 4, &e) == 0, "%s", e.msg);
  size_t n;
  unsigned char *png = (unsigned char *)tu_read_file(path, &n);
  ck_assert(png && n > 33);
  ck_assert(memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(png + 12, "IHDR", 4) == 0);
  /* 2x2 images of 64 pixels with 2-pixel gaps: 2*64 + 3*2 = 134. */
  ck_assert_uint_eq(be32(png + 16), 134);
  ck_assert_uint_eq(be32(png + 20), 134);
  /* Its image data inflates to 134 rows of a filter byte and 134 RGB pixels. */
  ck_assert_int_eq(tu_sh("/usr/bin/python3 - '%s' <<'EOF'\n"
                         "import sys, zlib, struct\n"
                         "d = open(sys.argv[1], 'rb').read()\n"
                         "i, idat = 8, b''\n"
                         "while i < len(d):\n"
                         "    n, t = struct.unpack('>I4s', d[i:i+8]); i += 8\n"
                         "    if t == b'IDAT': idat += d[i:i+n]\n"
                         "    i += n + 4\n"
                         "raw = zlib.decompress(idat)\n"
                         "w = 134; stride = 1 + 3 * w\n"
                         "assert len(raw) == stride * 134, len(raw)\n"
                         "EOF",
                         path),
                   0);
  /* Not an image batch. */
  RtTensor *bad = rt_tensor_new(RT_F32, 2, (int64_t[]){2, 3}, &e);
  ck_assert_int_eq(rt_png_write_grid(path, bad, 0, 1, &e), -1);
  ck_assert_msg(strstr(e.msg, path), "%s", e.msg);
  rt_tensor_free(bad);
  free(png);
  free(path);
  rt_tensor_free(x);
  rt_data_free(d);
}
END_TEST

/* ---- fashion-mnist ---- */

/* Writes BASE-images-idx3-ubyte.gz (n images of 28x28, image k all of
 * value 40 k) and BASE-labels-idx1-ubyte.gz (label of k: (3 k) % 10) into
 * dir; 'magic' and 'truncate' (bytes cut from the image data) damage them. */
static void write_fake_fashion(const char *dir, const char *base, int n, uint32_t magic, int truncate, int label0) {
  char path[600];
  unsigned char head[16];
  uint32_t words[4] = {magic, (uint32_t)n, 28, 28};
  for (int i = 0; i < 4; i++)
    for (int b = 0; b < 4; b++) head[4 * i + b] = (unsigned char)(words[i] >> (24 - 8 * b));
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, base);
  gzFile z = gzopen(path, "wb");
  ck_assert_ptr_nonnull(z);
  gzwrite(z, head, 16);
  unsigned char img[28 * 28];
  for (int k = 0; k < n; k++) {
    memset(img, 40 * k, sizeof img);
    gzwrite(z, img, k == n - 1 ? (unsigned)(sizeof img - (unsigned)truncate) : (unsigned)sizeof img);
  }
  gzclose(z);
  snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, base);
  z = gzopen(path, "wb");
  uint32_t lw[2] = {0x801, (uint32_t)n};
  for (int i = 0; i < 2; i++)
    for (int b = 0; b < 4; b++) head[4 * i + b] = (unsigned char)(lw[i] >> (24 - 8 * b));
  gzwrite(z, head, 8);
  for (int k = 0; k < n; k++) {
    unsigned char l = (unsigned char)(k ? (3 * k) % 10 : label0);
    gzwrite(z, &l, 1);
  }
  gzclose(z);
}

/* An entry with an image input x: f32[B, 3, S, S]. */
static RtEntrySpec image_entry(RtArgSpec *x, int64_t B, int64_t S) {
  *x = (RtArgSpec){.name = "x", .dtype = RT_F32, .rank = 4, .dim = {B, 3, S, S}};
  return (RtEntrySpec){.name = "loss", .train = true, .ninput = 1, .input = x};
}

/* Which fake image (value 40 k, resized) example j of the batch is. */
static int fake_index(const RtTensor *x, int64_t j, int S) {
  const float *p = rt_f32(x) + j * 3 * S * S;
  float v = p[0];
  for (int i = 1; i < 3 * S * S; i++) ck_assert_msg(fabsf(p[i] - v) < 1e-5f, "fake image %lld is not flat", (long long)j);
  float k = (v + 1.0f) * 127.5f / 40.0f;
  ck_assert_msg(fabsf(k - roundf(k)) < 1e-3f, "value %g is no fake image's", v);
  return (int)roundf(k);
}

START_TEST(test_fashion_fake) {
  char *dir = tu_path("fashion");
  ck_assert_int_eq(tu_sh("mkdir -p '%s'", dir), 0);
  write_fake_fashion(dir, "train", 6, 0x803, 0, 0);
  setenv("DAL_FASHION_MNIST", dir, 1);
  RtErr e;
  for (int S = 8; S <= 32; S += 24) { /* shrinking and enlarging keep a flat image flat */
    RtArgSpec xs;
    RtEntrySpec en = image_entry(&xs, 6, S);
    RtDataset *d = rt_data_open("fashion-mnist", &en, 5, &e), *same = rt_data_open("fashion-mnist", &en, 5, &e);
    ck_assert_msg(d && same, "%s", e.msg);
    ck_assert(rt_data_fills(d, 0));
    RtTensor *x = rt_tensor_new(RT_F32, 4, xs.dim, &e), *y = rt_tensor_new(RT_F32, 4, xs.dim, &e);
    int first[6], differs = 0;
    for (uint64_t step = 0; step < 3; step++) { /* B = n: every step is one epoch */
      ck_assert_int_eq(rt_data_fill(d, step, &x, &e), 0);
      bool seen[6] = {false};
      for (int j = 0; j < 6; j++) {
        int k = fake_index(x, j, S);
        ck_assert_msg(k >= 0 && k < 6 && !seen[k], "step %d: image %d twice or unknown", (int)step, k);
        seen[k] = true;
        ck_assert_str_eq(rt_data_caption(d, j), rt_fashion_caption((3 * k) % 10));
        if (step == 0) first[j] = k;
        else differs += first[j] != k;
      }
      ck_assert_int_eq(rt_data_fill(same, step, &y, &e), 0);
      ck_assert(memcmp(rt_f32(x), rt_f32(y), rt_tensor_bytes(x)) == 0); /* (seed, step) decides */
    }
    ck_assert_msg(differs > 0, "epochs 1 and 2 kept epoch 0's order");
    /* Chosen stored examples, in dataset order (what `tokenize` reads). */
    ck_assert_int_eq(rt_data_size(d), 6);
    uint64_t k[6] = {5, 0, 3, 3, 1, 2};
    ck_assert_int_eq(rt_data_fill_examples(d, k, &x, &e), 0);
    for (int j = 0; j < 6; j++) ck_assert_int_eq(fake_index(x, j, S), (int)k[j]);
    k[4] = 6;
    ck_assert_int_eq(rt_data_fill_examples(d, k, &x, &e), -1);
    ck_assert_msg(strstr(e.msg, "example 6 does not exist (it has 6)"), "%s", e.msg);
    rt_tensor_free(x);
    rt_tensor_free(y);
    rt_data_free(d);
    rt_data_free(same);
  }

  /* A classifier's i32 [B] "label" input gets each image's class. */
  {
    RtArgSpec args[2] = {{.name = "x", .dtype = RT_F32, .rank = 4, .dim = {6, 3, 8, 8}},
                         {.name = "label", .dtype = RT_I32, .rank = 1, .dim = {6}}};
    RtEntrySpec cls = {.name = "loss", .train = true, .ninput = 2, .input = args};
    RtDataset *d = rt_data_open("fashion-mnist", &cls, 5, &e);
    ck_assert_msg(d, "%s", e.msg);
    ck_assert(rt_data_fills(d, 0) && rt_data_fills(d, 1));
    RtTensor *in[2] = {rt_tensor_new(RT_F32, 4, args[0].dim, &e), rt_tensor_new(RT_I32, 1, args[1].dim, &e)};
    ck_assert_int_eq(rt_data_fill(d, 1, in, &e), 0);
    for (int j = 0; j < 6; j++) ck_assert_int_eq(rt_i32(in[1])[j], (3 * fake_index(in[0], j, 8)) % 10);
    rt_tensor_free(in[0]), rt_tensor_free(in[1]);
    rt_data_free(d);
    args[1].dtype = RT_F32; /* a label input of the wrong type is named */
    ck_assert_ptr_null(rt_data_open("fashion-mnist", &cls, 5, &e));
    ck_assert_msg(strstr(e.msg, "fills input 'label' with the class 0..9: it must be i32[6]"), "%s", e.msg);
  }

  /* every bad-file class names the file and what is wrong */
  RtArgSpec xs;
  RtEntrySpec en = image_entry(&xs, 2, 16);
  static const struct {
    uint32_t magic;
    int truncate, label0;
    const char *msg;
  } bad[] = {
      {0x801, 0, 0, "not an idx file of unsigned bytes with 3 dimensions (magic 0x00000801)"},
      {0x803, 5, 0, "truncated: the header promises 4704 bytes of data, the file holds 4699"},
      {0x803, 0, 12, "label 0 is 12 (classes are 0..9)"},
  };
  for (int b = 0; b < 3; b++) {
    write_fake_fashion(dir, "t10k", 6, bad[b].magic, bad[b].truncate, bad[b].label0);
    ck_assert_ptr_null(rt_data_open("fashion-mnist:test", &en, 0, &e));
    ck_assert_msg(strstr(e.msg, bad[b].msg) && strstr(e.msg, "t10k-"), "case %d: %s", b, e.msg);
  }
  ck_assert_ptr_null(rt_data_open("fashion-mnist:valid", &en, 0, &e));
  ck_assert_msg(strstr(e.msg, "takes nothing") && strstr(e.msg, "'val'"), "%s", e.msg);
  /* :train and :val cut the real file's 60000 images; a file of 6 is refused */
  ck_assert_ptr_null(rt_data_open("fashion-mnist:val", &en, 0, &e));
  ck_assert_msg(strstr(e.msg, "holds 6 images, not the 60000"), "%s", e.msg);
  setenv("DAL_FASHION_MNIST", "/nonexistent-fashion", 1);
  ck_assert_ptr_null(rt_data_open("fashion-mnist", &en, 0, &e));
  ck_assert_msg(strstr(e.msg, "/nonexistent-fashion/train-images-idx3-ubyte.gz: cannot open") &&
                    strstr(e.msg, "dataset-fashion-mnist"),
                "%s", e.msg);
  unsetenv("DAL_FASHION_MNIST");
  free(dir);
}
END_TEST

/* The real files (Debian's dataset-fashion-mnist, which tools/deps.sh
 * installs): both splits open; images are in [-1, 1] with a dark border
 * and something in the middle; captions name classes. */
START_TEST(test_fashion_real) {
  if (tu_sh("test -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") != 0) {
    printf("fashion-mnist is not installed: only the fake copy was tested\n");
    return;
  }
  RtErr e;
  RtArgSpec xs;
  RtEntrySpec en = image_entry(&xs, 8, 16);
  for (int split = 0; split < 2; split++) {
    RtDataset *d = rt_data_open(split ? "fashion-mnist:test" : "fashion-mnist", &en, 1, &e);
    ck_assert_msg(d != NULL, "%s", e.msg);
    RtTensor *x = rt_tensor_new(RT_F32, 4, xs.dim, &e);
    ck_assert_int_eq(rt_data_fill(d, 7, &x, &e), 0);
    for (int j = 0; j < 8; j++) {
      const float *p = rt_f32(x) + j * 3 * 256;
      float lo = 1, hi = -1;
      for (int i = 0; i < 3 * 256; i++) {
        lo = fminf(lo, p[i]);
        hi = fmaxf(hi, p[i]);
      }
      ck_assert(lo >= -1 && hi <= 1 && hi - lo > 0.5f);
      ck_assert(p[0] < -0.9f); /* the corner is background */
      bool known = false;
      for (int c = 0; c < 10; c++) known |= strcmp(rt_data_caption(d, j), rt_fashion_caption(c)) == 0;
      ck_assert_msg(known, "caption '%s'", rt_data_caption(d, j));
    }
    rt_tensor_free(x);
    rt_data_free(d);
  }
  /* :train is the file's first 55000 images, :val the last 5000: val's
   * example k is the whole file's example 55000 + k, train's k is k. */
  RtDataset *all = rt_data_open("fashion-mnist", &en, 1, &e), *tr = rt_data_open("fashion-mnist:train", &en, 1, &e),
            *va = rt_data_open("fashion-mnist:val", &en, 1, &e);
  ck_assert_msg(all && tr && va, "%s", e.msg);
  ck_assert_int_eq(rt_data_size(all), 60000);
  ck_assert_int_eq(rt_data_size(tr), RT_FASHION_TRAIN);
  ck_assert_int_eq(rt_data_size(va), RT_FASHION_VAL);
  RtTensor *a = rt_tensor_new(RT_F32, 4, xs.dim, &e), *b = rt_tensor_new(RT_F32, 4, xs.dim, &e);
  uint64_t ka[8], kb[8];
  for (int j = 0; j < 8; j++) ka[j] = RT_FASHION_TRAIN + 613 * (uint64_t)j, kb[j] = 613 * (uint64_t)j;
  ck_assert_int_eq(rt_data_fill_examples(all, ka, &a, &e), 0);
  ck_assert_int_eq(rt_data_fill_examples(va, kb, &b, &e), 0);
  ck_assert(memcmp(rt_f32(a), rt_f32(b), 8 * 3 * 256 * sizeof(float)) == 0);
  for (int j = 0; j < 8; j++) ck_assert_str_eq(rt_data_caption(all, j), rt_data_caption(va, j));
  ck_assert_int_eq(rt_data_fill_examples(tr, kb, &a, &e), 0);
  ck_assert_int_eq(rt_data_fill_examples(all, kb, &b, &e), 0);
  ck_assert(memcmp(rt_f32(a), rt_f32(b), 8 * 3 * 256 * sizeof(float)) == 0);
  rt_tensor_free(a);
  rt_tensor_free(b);
  rt_data_free(all);
  rt_data_free(tr);
  rt_data_free(va);
}
END_TEST

/* ---- folder:PATH ---- */

/* A w x h binary PPM: left third red, middle third grey of value 'mid',
 * right third blue. */
static void write_ppm(const char *dir, const char *name, int w, int h, int mid) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "P6\n%d %d\n255\n", w, h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int third = 3 * x / w;
      unsigned char p[3] = {third == 0 ? 255 : third == 1 ? (unsigned char)mid : 0, third == 1 ? (unsigned char)mid : 0,
                            third == 2 ? 255 : third == 1 ? (unsigned char)mid : 0};
      fwrite(p, 1, 3, f);
    }
  fclose(f);
}

/* Images and captions come back as listed (each epoch a permutation); a
 * wide image is centre-cropped to its middle (grey) third; a PNG (written
 * by rt_png_write_grid: one flat 4x4 image inside a 2-pixel border) loads
 * at S = 8 pixel for pixel; every bad input names the file, and the line
 * of captions.tsv. */
START_TEST(test_folder_dataset) {
  char *dir = tu_path("folder");
  ck_assert_int_eq(tu_sh("mkdir -p '%s/sub'", dir), 0);
  write_ppm(dir, "a.ppm", 30, 10, 0); /* the centred 10x10 square is the grey third: value 0 */
  write_ppm(dir, "sub/b.ppm", 60, 20, 255);
  RtErr e;
  RtTensor *flat = rt_tensor_new(RT_F32, 4, (int64_t[]){1, 3, 4, 4}, &e);
  for (int i = 0; i < 48; i++) rt_f32(flat)[i] = 102 / 127.5f - 1;
  char png[600];
  snprintf(png, sizeof png, "%s/c.png", dir);
  ck_assert_int_eq(rt_png_write_grid(png, flat, 1, 1, &e), 0);
  rt_tensor_free(flat);
  char tsv[600];
  snprintf(tsv, sizeof tsv, "%s/captions.tsv", dir);
  tu_write_file(tsv, "# file\tcaption\n\na.ppm\ta black square\nsub/b.ppm\ta white square\r\nc.png\ta grey square\n");
  RtArgSpec xs;
  RtEntrySpec en = image_entry(&xs, 3, 8);
  char spec[700];
  snprintf(spec, sizeof spec, "folder:%s", dir);
  RtDataset *d = rt_data_open(spec, &en, 3, &e);
  ck_assert_msg(d != NULL, "%s", e.msg);
  RtTensor *x = rt_tensor_new(RT_F32, 4, xs.dim, &e);
  static const char *const want[3] = {"a black square", "a white square", "a grey square"};
  static const float value[3] = {-1.0f, 1.0f, 102 / 127.5f - 1};
  for (uint64_t step = 0; step < 2; step++) {
    ck_assert_int_eq(rt_data_fill(d, step, &x, &e), 0);
    bool seen[3] = {false};
    for (int j = 0; j < 3; j++) {
      int k = 0;
      while (k < 3 && strcmp(rt_data_caption(d, j), want[k])) k++;
      ck_assert_msg(k < 3 && !seen[k], "caption '%s'", rt_data_caption(d, j));
      seen[k] = true;
      const float *p = rt_f32(x) + j * 3 * 64;
      for (int i = 0; i < 3 * 64; i++) {
        int y = i / 8 % 8, xx = i % 8;
        if (k == 2 && (y < 2 || y > 5 || xx < 2 || xx > 5)) continue; /* the PNG's border */
        ck_assert_msg(fabsf(p[i] - value[k]) < 1e-5f, "image '%s' element %d is %g, expected %g", want[k], i, p[i],
                      value[k]);
      }
    }
  }
  rt_tensor_free(x);
  rt_data_free(d);

  static const struct {
    const char *tsv, *msg;
  } bad[] = {
      {"a.ppm\tok\nno tab here\n", "captions.tsv:2: expected FILE<TAB>CAPTION"},
      {"a.ppm\tok\nmissing.png\tx\n", "captions.tsv:2: "},
      {"a.ppm\tok\ncaptions.tsv\tnot an image\n", "not an image stb_image can read"},
      {"# nothing\n\n", "lists no images"},
  };
  for (int b = 0; b < 4; b++) {
    tu_write_file(tsv, bad[b].tsv);
    ck_assert_ptr_null(rt_data_open(spec, &en, 0, &e));
    ck_assert_msg(strstr(e.msg, bad[b].msg), "case %d: %s", b, e.msg);
  }
  ck_assert_msg(strstr(e.msg, tsv), "%s", e.msg);
  tu_write_file(tsv, "a.ppm\tok\nmissing.png\tx\n");
  ck_assert_ptr_null(rt_data_open(spec, &en, 0, &e));
  ck_assert_msg(strstr(e.msg, "missing.png: cannot open"), "%s", e.msg);
  unlink(tsv);
  ck_assert_ptr_null(rt_data_open(spec, &en, 0, &e));
  ck_assert_msg(strstr(e.msg, "captions.tsv: cannot open"), "%s", e.msg);
  ck_assert_ptr_null(rt_data_open("folder", &en, 0, &e));
  ck_assert_msg(strstr(e.msg, "needs a folder"), "%s", e.msg);
  free(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("data");
  TCase *tc = tcase_create("data");
  tcase_add_test(tc, test_shapes_captions_match_images);
  tcase_add_test(tc, test_shapes_deterministic_and_in_range);
  tcase_add_test(tc, test_shapes_dataset);
  tcase_add_test(tc, test_shapes_stream_unchanged);
  tcase_add_test(tc, test_shapes_test_split);
  tcase_add_test(tc, test_shapes_holdout_spec);
  tcase_add_test(tc, test_shapes_holdout_training);
  tcase_add_test(tc, test_shapes_holdout_tokenizer_text);
  tcase_add_test(tc, test_shapes_holdout_test_splits);
  tcase_add_test(tc, test_npy_dataset);
  tcase_add_test(tc, test_fashion_fake);
  tcase_add_test(tc, test_fashion_real);
  tcase_add_test(tc, test_folder_dataset);
  tcase_add_test(tc, test_png_grid);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
