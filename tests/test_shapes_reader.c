/* test_shapes_reader.c — the rule-based shapes judge
 * (runtime/data/shapes_reader.h): its accuracy on real renders at 16, 32 and 64
 * pixels, known answers (an empty image, a wrong colour, kind, cell, size,
 * relation or count fails just that attribute), caption parsing, and
 * `dalc judge shapes` on images and captions files and on a dataset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/io/npy.h"
#include "runtime/data/shapes_reader.h"
#include "tests/util.h"

/* ---- accuracy on real renders ---- */

/* Reads 2000 test-split scenes of seed 7 at 'size' and returns the
 * fraction read with every attribute right; each attribute's is checked
 * too. */
static void check_accuracy(int size) {
  enum { N = 2000 };
  float *img = malloc(sizeof *img * 3 * (size_t)size * (size_t)size);
  RtShapesTally t = {0};
  RtErr e;
  for (uint64_t i = 0; i < N; i++) {
    RtShapesScene sc;
    uint64_t scene;
    ck_assert(rt_shapes_index(RT_SHAPES_TEST, i, &scene));
    rt_shapes_scene(7, scene, size, &sc);
    rt_shapes_render(&sc, size, img);
    RtShapesRead r;
    RtShapesCaption c;
    ck_assert_int_eq(rt_shapes_read(img, size, &r, &e), 0);
    ck_assert_int_eq(rt_shapes_parse_caption(sc.caption, &c, &e), 0);
    rt_shapes_tally_add(&t, rt_shapes_match(&c, &r));
  }
  ck_assert_int_eq(t.images, N);
  int64_t v[] = {t.count, t.colour, t.kind, t.place, t.size};
  for (int k = 0; k < 5; k++) ck_assert_msg(v[k] >= t.all, "an attribute matched less often than all of them");
  ck_assert_msg(t.all >= 0.99 * N, "size %d: %lld of %d read right", size, (long long)t.all, N);
  printf("shapes reader at %dx%d: %.2f%% of %d real renders read right\n", size, size, 100.0 * (double)t.all / N, N);
  free(img);
}

START_TEST(test_accuracy_16) { check_accuracy(16); }
END_TEST
START_TEST(test_accuracy_32) { check_accuracy(32); }
END_TEST
START_TEST(test_accuracy_64) { check_accuracy(64); }
END_TEST

/* ---- known answers ---- */

static RtShapesObject object(RtShapeKind kind, int colour, bool large, int row, int col, int size) {
  float cell = (float)size / 3.0f;
  RtShapesObject o = {.kind = kind, .colour = colour, .large = large, .row = row, .col = col};
  o.r = cell * (large ? 0.42f : 0.26f);
  o.cx = ((float)col + 0.5f) * cell + 0.3f;
  o.cy = ((float)row + 0.5f) * cell - 0.2f;
  return o;
}

static RtShapesMatch judge(const float *img, int size, const char *caption) {
  RtShapesRead r;
  RtShapesCaption c;
  RtErr e;
  ck_assert_int_eq(rt_shapes_read(img, size, &r, &e), 0);
  ck_assert_msg(rt_shapes_parse_caption(caption, &c, &e) == 0, "%s", e.msg);
  return rt_shapes_match(&c, &r);
}

/* The attributes that match, as a string "count colour kind place size"
 * with '-' for each that fails, and "all" or "-" first. */
static const char *matched(RtShapesMatch m) {
  static char buf[64];
  snprintf(buf, sizeof buf, "%s %s %s %s %s %s", m.all ? "all" : "-", m.count ? "count" : "-",
           m.colour ? "colour" : "-", m.kind ? "kind" : "-", m.place ? "place" : "-", m.size ? "size" : "-");
  return buf;
}

START_TEST(test_empty_and_odd_images) {
  const int S = 32;
  float img[3 * 32 * 32];
  RtShapesScene none = {0};
  rt_shapes_render(&none, S, img);
  RtShapesRead r;
  RtErr e;
  ck_assert_int_eq(rt_shapes_read(img, S, &r, &e), 0);
  ck_assert_int_eq(r.nobj, 0);
  ck_assert_str_eq(matched(judge(img, S, "a small red circle in the center")), "- - - - - -");
  ck_assert_str_eq(matched(judge(img, S, "a red circle above a blue square")), "- - - - - -");
  /* All black, all NaN: nothing there, no crash. */
  for (int k = 0; k < 3 * S * S; k++) img[k] = -1.0f;
  ck_assert_int_eq(rt_shapes_read(img, S, &r, &e), 0);
  ck_assert_int_eq(r.nobj, 0);
  for (int k = 0; k < 3 * S * S; k++) img[k] = NAN;
  ck_assert_int_eq(rt_shapes_read(img, S, &r, &e), 0);
  ck_assert_int_eq(r.nobj, 0);
  /* All white: one object, the whole image (no palette colour, but read as
   * the nearest). */
  for (int k = 0; k < 3 * S * S; k++) img[k] = 1.0f;
  ck_assert_int_eq(rt_shapes_read(img, S, &r, &e), 0);
  ck_assert_int_eq(r.nobj, 1);
  /* A single bright pixel is noise, not an object. */
  rt_shapes_render(&none, S, img);
  for (int c = 0; c < 3; c++) img[c * S * S + 5 * S + 5] = 0.9f;
  ck_assert_int_eq(rt_shapes_read(img, S, &r, &e), 0);
  ck_assert_int_eq(r.nobj, 0);
  ck_assert_int_eq(rt_shapes_read(img, 7, &r, &e), -1);
  ck_assert_msg(strstr(e.msg, "side 7"), "%s", e.msg);
}
END_TEST

START_TEST(test_one_object_attributes) {
  for (int S = 16; S <= 64; S *= 2) {
    float *img = malloc(sizeof *img * 3 * (size_t)S * (size_t)S);
    RtShapesScene sc = {.nobj = 1};
    sc.obj[0] = object(RT_SHAPE_TRIANGLE, 3, true, 0, 2, S);
    rt_shapes_render(&sc, S, img);
    RtShapesRead r;
    RtErr e;
    ck_assert_int_eq(rt_shapes_read(img, S, &r, &e), 0);
    ck_assert_int_eq(r.nobj, 1);
    ck_assert_int_eq(r.obj[0].kind, RT_SHAPE_TRIANGLE);
    ck_assert_int_eq(r.obj[0].colour, 3);
    ck_assert(r.obj[0].large);
    ck_assert_int_eq(r.obj[0].row, 0);
    ck_assert_int_eq(r.obj[0].col, 2);
    /* The fitted centre is the renderer's, to a fraction of a pixel. */
    ck_assert_float_eq_tol(r.obj[0].cx, sc.obj[0].cx, 0.3f);
    ck_assert_float_eq_tol(r.obj[0].cy, sc.obj[0].cy, 0.3f);
    ck_assert_str_eq(matched(judge(img, S, "a large yellow triangle at the top right")),
                     "all count colour kind place size");
    ck_assert_str_eq(matched(judge(img, S, "a large red triangle at the top right")), "- count - kind place size");
    ck_assert_str_eq(matched(judge(img, S, "a large yellow square at the top right")), "- count colour - place size");
    ck_assert_str_eq(matched(judge(img, S, "a large yellow triangle at the top")), "- count colour kind - size");
    ck_assert_str_eq(matched(judge(img, S, "a small yellow triangle at the top right")), "- count colour kind place -");
    ck_assert_str_eq(matched(judge(img, S, "a yellow triangle above a red circle")), "- - - - - -");
    free(img);
  }
}
END_TEST

START_TEST(test_two_object_attributes) {
  const int S = 32;
  float img[3 * 32 * 32];
  RtShapesScene sc = {.nobj = 2};
  /* A green square above (same column) a purple circle. */
  sc.obj[0] = object(RT_SHAPE_SQUARE, 1, false, 0, 1, S);
  sc.obj[1] = object(RT_SHAPE_CIRCLE, 4, false, 2, 1, S);
  rt_shapes_render(&sc, S, img);
  ck_assert_str_eq(matched(judge(img, S, "a green square above a purple circle")), "all count colour kind place size");
  ck_assert_str_eq(matched(judge(img, S, "a purple circle below a green square")), "all count colour kind place size");
  ck_assert_str_eq(matched(judge(img, S, "a green square below a purple circle")), "- count colour kind - size");
  ck_assert_str_eq(matched(judge(img, S, "a green square to the left of a purple circle")),
                   "- count colour kind - size");
  ck_assert_str_eq(matched(judge(img, S, "a blue square above a purple circle")), "- count - kind place size");
  ck_assert_str_eq(matched(judge(img, S, "a green square above a purple triangle")), "- count colour - place size");
  ck_assert_str_eq(matched(judge(img, S, "a small green square at the top")), "- - colour kind place size");
  /* Not in the same column: not "above", as the dataset means it. */
  sc.obj[1] = object(RT_SHAPE_CIRCLE, 4, false, 2, 2, S);
  rt_shapes_render(&sc, S, img);
  ck_assert_str_eq(matched(judge(img, S, "a green square above a purple circle")), "- count colour kind - size");
  /* Side by side, same row: left and right. */
  sc.obj[0] = object(RT_SHAPE_TRIANGLE, 0, false, 1, 0, S);
  sc.obj[1] = object(RT_SHAPE_TRIANGLE, 2, false, 1, 2, S);
  rt_shapes_render(&sc, S, img);
  ck_assert_str_eq(matched(judge(img, S, "a red triangle to the left of a blue triangle")),
                   "all count colour kind place size");
  ck_assert_str_eq(matched(judge(img, S, "a blue triangle to the right of a red triangle")),
                   "all count colour kind place size");
  ck_assert_str_eq(matched(judge(img, S, "a blue triangle to the left of a red triangle")),
                   "- count colour kind - size");
  /* A large object where the relation wants small ones: size fails. */
  sc.obj[0] = object(RT_SHAPE_TRIANGLE, 0, true, 1, 0, S);
  rt_shapes_render(&sc, S, img);
  ck_assert_str_eq(matched(judge(img, S, "a red triangle to the left of a blue triangle")),
                   "- count colour kind place -");
  /* Three objects: count fails, the rest is judged on the best two. */
  sc.obj[0] = object(RT_SHAPE_TRIANGLE, 0, false, 1, 0, S);
  rt_shapes_render(&sc, S, img);
  RtShapesScene third = {.nobj = 1};
  third.obj[0] = object(RT_SHAPE_CIRCLE, 3, false, 0, 1, S);
  float extra[3 * 32 * 32];
  rt_shapes_render(&third, S, extra);
  for (int k = 0; k < 3 * S * S; k++)
    if (extra[k] != img[k] && k % (S * S) < S * S / 3) img[k] = extra[k];
  RtShapesRead r;
  RtErr e;
  ck_assert_int_eq(rt_shapes_read(img, S, &r, &e), 0);
  ck_assert_int_eq(r.nobj, 3);
  ck_assert_str_eq(matched(judge(img, S, "a red triangle to the left of a blue triangle")),
                   "- - colour kind place size");
}
END_TEST

START_TEST(test_parse_captions) {
  RtShapesCaption c;
  RtErr e;
  ck_assert_int_eq(rt_shapes_parse_caption("  a large blue square at the bottom left\n", &c, &e), 0);
  ck_assert_int_eq(c.nobj, 1);
  ck_assert(c.large);
  ck_assert_int_eq(c.colour[0], 2);
  ck_assert_int_eq(c.kind[0], RT_SHAPE_SQUARE);
  ck_assert_int_eq(c.row, 2);
  ck_assert_int_eq(c.col, 0);
  ck_assert_int_eq(rt_shapes_parse_caption("a small red circle at the top", &c, &e), 0);
  ck_assert(!c.large && c.row == 0 && c.col == 1);
  ck_assert_int_eq(rt_shapes_parse_caption("a purple triangle to the right of a green circle", &c, &e), 0);
  ck_assert_int_eq(c.nobj, 2);
  ck_assert_int_eq(c.relation, RT_SHAPES_RIGHT_OF);
  ck_assert(c.colour[0] == 4 && c.kind[0] == RT_SHAPE_TRIANGLE && c.colour[1] == 1 && c.kind[1] == RT_SHAPE_CIRCLE);
  ck_assert(rt_shapes_caption_uses_pair(&c, 1u << RT_SHAPES_PAIR(1, RT_SHAPE_CIRCLE)));
  ck_assert(!rt_shapes_caption_uses_pair(&c, 1u << RT_SHAPES_PAIR(1, RT_SHAPE_SQUARE)));
  /* Every caption the dataset makes parses. */
  for (uint64_t i = 0; i < 500; i++) {
    RtShapesScene sc;
    rt_shapes_scene(3, i, 32, &sc);
    ck_assert_msg(rt_shapes_parse_caption(sc.caption, &c, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(c.nobj, sc.nobj);
    ck_assert(!rt_shapes_caption_uses_pair(&c, 0));
  }
  static const char *const bad[] = {
      "",  "a",  "a big red circle at the top", "a small red circle", "a small red circle at the top middle",
      "a red circle above", "a red circle above a red", "a red circle near a blue square", "a small pink circle in the center",
      "a red circle above a blue square and more", "an ankle boot", "a small red circlex in the center",
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    ck_assert_msg(rt_shapes_parse_caption(bad[k], &c, &e) == -1, "'%s' parsed", bad[k]);
    ck_assert_msg(strstr(e.msg, "not of the shapes grammar"), "%s", e.msg);
  }
  /* rt_shapes_judge names the caption that is not in the grammar. */
  float img[3 * 16 * 16] = {0};
  RtShapesTally t[3] = {{0}};
  const char *caps[] = {"a small red circle in the center", "a dog"};
  ck_assert_int_eq(rt_shapes_judge(img, 16, caps, 2, 0, 0, t, &e), -1);
  ck_assert_msg(strstr(e.msg, "caption 2") && strstr(e.msg, "a dog"), "%s", e.msg);
}
END_TEST

/* ---- dalc judge shapes ---- */

/* Writes 3 captions x 2 images at 32x32 to images.npy and captions.txt:
 * every image shows its caption except the last, which shows the second
 * caption's scene. Returns the paths (static). */
static void write_judge_files(char **images, char **captions) {
  enum { S = 32, C = 3, N = 2 };
  RtErr e;
  RtTensor *t = rt_tensor_new(RT_F32, 4, (int64_t[]){C * N, 3, S, S}, &e);
  uint64_t idx[C] = {0, 1, 2}; /* seed 0: a relation, two single objects */
  RtShapesScene sc[C];
  for (int c = 0; c < C; c++) rt_shapes_scene(0, idx[c], S, &sc[c]);
  for (int c = 0; c < C; c++)
    for (int j = 0; j < N; j++) rt_shapes_render(&sc[c * N + j == C * N - 1 ? 1 : c], S, rt_f32(t) + (c * N + j) * 3 * S * S);
  *images = tu_path("images.npy");
  *captions = tu_path("captions.txt");
  ck_assert_int_eq(rt_npy_write(*images, t, &e), 0);
  char text[512];
  snprintf(text, sizeof text, "%s\n\n%s\n%s\n", sc[0].caption, sc[1].caption, sc[2].caption);
  tu_write_file(*captions, text);
  rt_tensor_free(t);
}

START_TEST(test_judge_command) {
  char *images, *captions;
  write_judge_files(&images, &captions);
  int st;
  char *out = tu_sh_output(&st, "%s judge shapes --images %s --captions %s --json", tu_dalc(), images, captions);
  ck_assert_msg(st == 0, "%s", out);
  /* 5 of 6 right; the wrong one (a large purple triangle at the bottom
   * right for "a small yellow triangle on the left") has count and kind. */
  ck_assert_msg(strstr(out, "\"images\":6,\"captions\":3,\"n\":2,\"size\":32,\"holdout\":null"), "%s", out);
  ck_assert_msg(strstr(out, "\"matched\":{\"all\":5,\"count\":6,\"colour\":5,\"kind\":6,\"place\":5,\"size\":5}"),
                "%s", out);
  free(out);
  /* The table, with --n given, and seen / novel rows with --holdout. */
  out = tu_sh_output(&st, "%s judge shapes --images %s --captions %s --n 2 --holdout=blue-square", tu_dalc(), images,
                     captions);
  ck_assert_msg(st == 0, "%s", out);
  ck_assert_msg(strstr(out, "6 images of 3 captions (2 each)") && strstr(out, "83.33%"), "%s", out);
  ck_assert_msg(strstr(out, "\nseen ") && strstr(out, "\nnovel ") && strstr(out, "held-out pairs blue-square"), "%s",
                out);
  free(out);
  /* Real renders from the dataset: every one read right. */
  out = tu_sh_output(&st, "%s judge shapes --data shapes:test:novel --count 100 --size 32 --holdout --json", tu_dalc());
  ck_assert_msg(st == 0, "%s", out);
  ck_assert_msg(strstr(out, "\"all\":{\"images\":100,\"accuracy\":{\"all\":1,"), "%s", out);
  ck_assert_msg(strstr(out, "\"seen\":{\"images\":0,") && strstr(out, "\"novel\":{\"images\":100,"), "%s", out);
  free(out);
  /* Errors: a clear message and a non-zero exit. */
  static const struct {
    const char *args, *msg;
  } bad[] = {
      {"", "usage: dalc judge"},
      {"cats", "unknown judge 'cats'"},
      {"shapes", "needs either --images"},
      {"shapes --images IMG", "needs either --images"},
      {"shapes --images IMG --captions CAP --n 4", "has 6 images, not 4 per caption for the 3 captions"},
      {"shapes --images IMG --captions /nonexistent.txt", "/nonexistent.txt: cannot open"},
      {"shapes --images /nonexistent.npy --captions CAP", "/nonexistent.npy"},
      {"shapes --images CAP --captions CAP", "--images"},
      {"shapes --data fashion-mnist:nope", "--data"},
      {"shapes --data shapes --holdout=red-cat", "'red-cat' is not COLOUR-KIND"},
      {"shapes --data shapes --size 4", "--size must be in 8 .. 4096, got '4'"},
      {"shapes --data shapes --count", "--count needs a value"},
      {"shapes --data shapes --frobnicate", "unknown option or argument '--frobnicate'"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    char args[512] = "";
    const char *a = bad[k].args;
    /* IMG and CAP stand for the files written above. */
    for (size_t at = 0; *a; ) {
      if (!strncmp(a, "IMG", 3)) at += (size_t)snprintf(args + at, sizeof args - at, "%s", images), a += 3;
      else if (!strncmp(a, "CAP", 3)) at += (size_t)snprintf(args + at, sizeof args - at, "%s", captions), a += 3;
      else args[at++] = *a++, args[at] = 0;
    }
    out = tu_sh_output(&st, "%s judge %s", tu_dalc(), args);
    ck_assert_msg(st != 0 && strstr(out, bad[k].msg), "judge %s: status %d: %s", args, st, out);
    free(out);
  }
  /* A caption outside the grammar names the file and the caption. */
  tu_write_file(captions, "a small red circle in the center\na dog\na cat\n");
  out = tu_sh_output(&st, "%s judge shapes --images %s --captions %s", tu_dalc(), images, captions);
  ck_assert_msg(st != 0 && strstr(out, captions) && strstr(out, "caption 2") && strstr(out, "'a dog'"), "%s", out);
  free(out);
  free(images);
  free(captions);
}
END_TEST

int main(void) {
  Suite *s = suite_create("shapes_reader");
  TCase *tc = tcase_create("shapes_reader");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_accuracy_16);
  tcase_add_test(tc, test_accuracy_32);
  tcase_add_test(tc, test_accuracy_64);
  tcase_add_test(tc, test_empty_and_odd_images);
  tcase_add_test(tc, test_one_object_attributes);
  tcase_add_test(tc, test_two_object_attributes);
  tcase_add_test(tc, test_parse_captions);
  tcase_add_test(tc, test_judge_command);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
