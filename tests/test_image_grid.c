/* test_image_grid.c — captioned PNG grids (runtime/draw/image_grid.h): the PNG
 * decoded with stb_image has the layout's size, every image's solid colour
 * where the layout puts it, dark text in the band under a captioned row
 * and none under an uncaptioned one, nothing drawn outside the bands;
 * captions wrapped, shrunk and cut only with an ellipsis, each line as
 * wide as the band at most (measured again with cairo); every bad input
 * (shape, counts, scale, size, an unwritable folder) a -1 with a message. */
#include <cairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/draw/image_grid.h"
#include "tests/util.h"

/* stb's implementation is third-party code: it is not held to our warning
 * flags. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

#define BG 240 /* the grid's background grey */
static const unsigned char COLOUR[6][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 0}, {0, 255, 255}, {255, 0, 255}};

/* n solid s x s images, image k in COLOUR[k % 6] (bytes b as b / 127.5 - 1). */
static RtTensor *solid_images(int n, int s) {
  RtErr e;
  RtTensor *t = rt_tensor_new(RT_F32, 4, (int64_t[]){n, 3, s, s}, &e);
  ck_assert_ptr_nonnull(t);
  for (int k = 0; k < n; k++)
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < s * s; i++) rt_f32(t)[(k * 3 + c) * s * s + i] = COLOUR[k % 6][c] / 127.5f - 1.0f;
  return t;
}

typedef struct {
  unsigned char *px; /* RGB */
  int w, h;
} Png;

static Png load_png(const char *path) {
  Png p;
  int n;
  p.px = stbi_load(path, &p.w, &p.h, &n, 3);
  ck_assert_msg(p.px != NULL, "stb_image cannot read %s: %s", path, stbi_failure_reason());
  return p;
}

static const unsigned char *at(const Png *p, int x, int y) { return p->px + ((size_t)y * p->w + x) * 3; }

/* Pixels in [x0, x1) x [y0, y1) darker than mid grey (text), and pixels
 * that differ from the background at all. */
static void count_ink(const Png *p, int x0, int y0, int x1, int y1, int *dark, int *not_bg) {
  *dark = *not_bg = 0;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) {
      const unsigned char *q = at(p, x, y);
      if (q[0] < 128 && q[1] < 128 && q[2] < 128) ++*dark;
      if (q[0] != BG || q[1] != BG || q[2] != BG) ++*not_bg;
    }
}

/* Whether (x, y) lies in image (r, c)'s cell. */
static bool in_cell(const RtGridLayout *l, int x, int y, int *r, int *c) {
  int px = x - l->gap, py = y - l->gap;
  if (px < 0 || py < 0) return false;
  *c = px / (l->cell_w + l->gap);
  *r = py / (l->cell_h + l->band_h + l->gap);
  return px % (l->cell_w + l->gap) < l->cell_w && py % (l->cell_h + l->band_h + l->gap) < l->cell_h;
}

/* Whether (x, y) lies in row r's band's text area. */
static bool in_band(const RtGridLayout *l, int x, int y, int *r) {
  int py = y - l->gap;
  if (py < 0 || x < l->gap || x >= l->width - l->gap) return false;
  *r = py / (l->cell_h + l->band_h + l->gap);
  int off = py % (l->cell_h + l->band_h + l->gap);
  return off >= l->cell_h && off < l->cell_h + l->band_h;
}

/* Every pixel of p is where the layout says: each image's colour in its
 * cell, the background or text in the bands of captioned rows, the
 * background everywhere else. Returns the dark (text) pixels per row. */
static void check_grid(const Png *p, const RtGridLayout *l, int rows, int cols, const bool *captioned, int *dark) {
  ck_assert_int_eq(p->w, l->width);
  ck_assert_int_eq(p->h, l->height);
  for (int r = 0; r < rows; r++) dark[r] = 0;
  for (int y = 0; y < p->h; y++)
    for (int x = 0; x < p->w; x++) {
      const unsigned char *q = at(p, x, y);
      int r, c;
      if (in_cell(l, x, y, &r, &c) && r < rows && c < cols) {
        const unsigned char *want = COLOUR[(r * cols + c) % 6];
        ck_assert_msg(!memcmp(q, want, 3), "pixel (%d, %d) of image (%d, %d) is %d,%d,%d", x, y, r, c, q[0], q[1],
                      q[2]);
      } else if (in_band(l, x, y, &r) && captioned[r]) {
        if (q[0] < 128 && q[1] < 128 && q[2] < 128) dark[r]++;
      } else {
        ck_assert_msg(q[0] == BG && q[1] == BG && q[2] == BG, "pixel (%d, %d) outside images and bands is %d,%d,%d",
                      x, y, q[0], q[1], q[2]);
      }
    }
}

START_TEST(test_grid_pixels) {
  RtErr e;
  RtTensor *x = solid_images(6, 8);
  const char *captions[2] = {"a red, a green and a blue square", ""};
  char *path = tu_path("grid.png");
  ck_assert_msg(rt_png_write_captioned_grid(path, x, 2, 3, captions, 3, &e) == 0, "%s", e.msg);
  RtGridLayout l;
  ck_assert_int_eq(rt_captioned_grid_layout(8, 8, 2, 3, 3, &l, &e), 0);
  ck_assert_int_eq(l.cell_w, 24);
  ck_assert_int_eq(l.cell_h, 24);
  ck_assert_int_eq(l.width, l.gap + 3 * (24 + l.gap));
  ck_assert_int_eq(l.height, l.gap + 2 * (24 + l.band_h + l.gap));
  ck_assert_int_ge(l.band_h, 2 * 14); /* two lines of the base size */
  Png p = load_png(path);
  int dark[2];
  check_grid(&p, &l, 2, 3, (bool[]){true, false}, dark);
  ck_assert_msg(dark[0] > 40, "the first row's band has only %d text pixels", dark[0]);
  stbi_image_free(p.px);

  /* No captions at all: the same layout, every band empty; the file is
   * replaced in place and no temporary file is left. */
  ck_assert_msg(rt_png_write_captioned_grid(path, x, 2, 3, NULL, 3, &e) == 0, "%s", e.msg);
  p = load_png(path);
  check_grid(&p, &l, 2, 3, (bool[]){false, false}, dark);
  stbi_image_free(p.px);
  int status;
  char *list = tu_sh_output(&status, "ls -A '%s' | wc -l", tu_tmpdir());
  ck_assert_int_eq(atoi(list), 1);
  free(list);

  /* One column, one row per caption. */
  const char *three[3] = {"one", NULL, "three"};
  RtTensor *y = solid_images(3, 16);
  ck_assert_msg(rt_png_write_captioned_grid(path, y, 3, 1, three, 4, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(rt_captioned_grid_layout(16, 16, 3, 1, 4, &l, &e), 0);
  p = load_png(path);
  int dark3[3];
  check_grid(&p, &l, 3, 1, (bool[]){true, false, true}, dark3);
  ck_assert_int_gt(dark3[0], 10);
  ck_assert_int_gt(dark3[2], dark3[0]); /* "three" has more ink than "one" */
  stbi_image_free(p.px);
  rt_tensor_free(y);
  rt_tensor_free(x);
  free(path);
}
END_TEST

/* How wide cairo draws s at 'size' (as the grid measures it). */
static double drawn_width(const char *s, double size) {
  cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
  cairo_t *cr = cairo_create(sf);
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t t;
  cairo_text_extents(cr, s, &t);
  cairo_destroy(cr);
  cairo_surface_destroy(sf);
  double right = t.x_advance > t.x_bearing + t.width ? t.x_advance : t.x_bearing + t.width;
  return right - (t.x_bearing < 0 ? t.x_bearing : 0);
}

/* The fit's lines joined by spaces (the ellipsis kept). */
static char *joined(const RtCaptionFit *f) {
  size_t n = 1;
  for (int i = 0; i < f->lines; i++) n += strlen(f->line[i]) + 1;
  char *s = calloc(1, n);
  for (int i = 0; i < f->lines; i++) {
    if (i) strcat(s, " ");
    strcat(s, f->line[i]);
  }
  return s;
}

static void check_widths(const RtCaptionFit *f, int width) {
  for (int i = 0; i < f->lines; i++)
    ck_assert_msg(drawn_width(f->line[i], f->size) <= width, "line %d '%s' at %g px is %g wide, over %d", i,
                  f->line[i], f->size, drawn_width(f->line[i], f->size), width);
}

static const char ELLIPSIS[] = "\xe2\x80\xa6";

START_TEST(test_caption_fit) {
  RtErr e;
  RtCaptionFit f;
  /* Fits: one line at the base size. */
  ck_assert_int_eq(rt_caption_fit("a red circle", 400, &f, &e), 0);
  ck_assert_int_eq(f.lines, 1);
  ck_assert(f.size == RT_CAPTION_PX && !f.ellipsis);
  ck_assert_str_eq(f.line[0], "a red circle");
  rt_caption_fit_free(&f);

  /* Two lines at the base size, broken at a space, nothing lost. */
  const char *two = "a red circle above a blue square";
  ck_assert(drawn_width(two, RT_CAPTION_PX) > 150);
  ck_assert_int_eq(rt_caption_fit(two, 150, &f, &e), 0);
  ck_assert_int_eq(f.lines, 2);
  ck_assert(f.size == RT_CAPTION_PX && !f.ellipsis);
  char *j = joined(&f);
  ck_assert_str_eq(j, two);
  free(j);
  check_widths(&f, 150);
  rt_caption_fit_free(&f);

  /* Too long for two lines at the base size: smaller, still all there. */
  const char *three = "a small red circle to the left of a large blue square below a green triangle";
  ck_assert_int_eq(rt_caption_fit(three, 200, &f, &e), 0);
  ck_assert_msg(f.size < RT_CAPTION_PX && f.size >= RT_CAPTION_MIN_PX && !f.ellipsis, "size %g", f.size);
  j = joined(&f);
  ck_assert_str_eq(j, three);
  free(j);
  check_widths(&f, 200);
  rt_caption_fit_free(&f);

  /* Far too long: the smallest size, three lines, the last one cut with an
   * ellipsis after a prefix of the caption; every line within the width. */
  char long_caption[2000] = "";
  for (int i = 0; i < 60; i++) strcat(long_caption, i % 2 ? "green triangle " : "red circle ");
  ck_assert_int_eq(rt_caption_fit(long_caption, 120, &f, &e), 0);
  ck_assert(f.size == RT_CAPTION_MIN_PX && f.ellipsis);
  ck_assert_int_eq(f.lines, RT_CAPTION_MAX_LINES);
  const char *last = f.line[f.lines - 1];
  size_t n = strlen(last);
  ck_assert(n >= 3 && !strcmp(last + n - 3, ELLIPSIS));
  j = joined(&f);
  j[strlen(j) - 3] = 0;
  ck_assert_msg(!strncmp(long_caption, j, strlen(j)), "'%s' is not how the caption starts", j);
  free(j);
  check_widths(&f, 120);
  rt_caption_fit_free(&f);

  /* One word wider than the band: broken between characters. */
  ck_assert_int_eq(rt_caption_fit("abcdefghijklmnopqrstuvwxyz", 60, &f, &e), 0);
  ck_assert_int_ge(f.lines, 2);
  check_widths(&f, 60);
  rt_caption_fit_free(&f);

  /* Invalid UTF-8 and control characters; UTF-8 kept; blank: no lines. */
  ck_assert_int_eq(rt_caption_fit("  a\tb\xff c\n caf\xc3\xa9 ", 400, &f, &e), 0);
  ck_assert_int_eq(f.lines, 1);
  ck_assert_str_eq(f.line[0], "a b? c  caf\xc3\xa9");
  rt_caption_fit_free(&f);
  ck_assert_int_eq(rt_caption_fit(" \t ", 400, &f, &e), 0);
  ck_assert_int_eq(f.lines, 0);
  ck_assert_int_eq(rt_caption_fit(NULL, 400, &f, &e), 0);
  ck_assert_int_eq(f.lines, 0);
}
END_TEST

/* A very long caption in a narrow grid: drawn (text in the band), and
 * nothing outside the band: not in the images, the border columns, or the
 * gap under the band. */
START_TEST(test_long_caption_in_grid) {
  RtErr e;
  RtTensor *x = solid_images(2, 16);
  char long_caption[4000] = "";
  for (int i = 0; i < 100; i++) strcat(long_caption, "a very long caption that cannot fit ");
  const char *captions[1] = {long_caption};
  char *path = tu_path("long.png");
  ck_assert_msg(rt_png_write_captioned_grid(path, x, 1, 2, captions, 2, &e) == 0, "%s", e.msg);
  RtGridLayout l;
  ck_assert_int_eq(rt_captioned_grid_layout(16, 16, 1, 2, 2, &l, &e), 0);
  Png p = load_png(path);
  int dark[1];
  check_grid(&p, &l, 1, 2, (bool[]){true}, dark);
  ck_assert_int_gt(dark[0], 40);
  /* Text reaches across most of the band (three lines, shrunk), within it. */
  int d, nb;
  count_ink(&p, l.gap, l.gap + l.cell_h, l.gap + 10, l.gap + l.cell_h + l.band_h, &d, &nb);
  ck_assert_msg(nb > 0, "nothing drawn at the band's left end");
  count_ink(&p, l.width - l.gap - 10, l.gap + l.cell_h, l.width - l.gap, l.gap + l.cell_h + l.band_h, &d, &nb);
  ck_assert_msg(nb > 0, "nothing drawn at the band's right end");
  stbi_image_free(p.px);
  rt_tensor_free(x);
  free(path);
}
END_TEST

START_TEST(test_errors) {
  RtErr e;
  RtTensor *x = solid_images(4, 8);
  char *path = tu_path("bad.png");
  const char *caps[2] = {"a", "b"};
  struct {
    const RtTensor *t;
    int rows, cols, scale;
    const char *msg;
  } bad[] = {
      {x, 2, 3, 1, "2 rows x 3 columns are 6 images, but there are 4"},
      {x, 4, 2, 1, "4 rows x 2 columns are 8 images, but there are 4"},
      {x, 0, 4, 1, "at least one row and one column"},
      {x, 2, -1, 1, "at least one row and one column"},
      {x, 2, 2, 0, "scale must be at least 1"},
      {x, 2, 2, 5000, "too large"},
      {NULL, 2, 2, 1, "must be f32[rows*cols, 3, H, W], not nothing"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_int_eq(rt_png_write_captioned_grid(path, bad[i].t, bad[i].rows, bad[i].cols, caps, bad[i].scale, &e), -1);
    ck_assert_msg(strstr(e.msg, bad[i].msg) && strstr(e.msg, path), "case %zu: %s", i, e.msg);
  }
  /* Not an image batch: rank, channels, dtype. */
  RtTensor *rank3 = rt_tensor_new(RT_F32, 3, (int64_t[]){4, 8, 8}, &e);
  RtTensor *grey = rt_tensor_new(RT_F32, 4, (int64_t[]){4, 1, 8, 8}, &e);
  RtTensor *ints = rt_tensor_new(RT_I32, 4, (int64_t[]){4, 3, 8, 8}, &e);
  ck_assert_int_eq(rt_png_write_captioned_grid(path, rank3, 2, 2, caps, 1, &e), -1);
  ck_assert_msg(strstr(e.msg, "must be f32[rows*cols, 3, H, W], not f32[4, 8, 8]"), "%s", e.msg);
  ck_assert_int_eq(rt_png_write_captioned_grid(path, grey, 2, 2, caps, 1, &e), -1);
  ck_assert_msg(strstr(e.msg, "not f32[4, 1, 8, 8]"), "%s", e.msg);
  ck_assert_int_eq(rt_png_write_captioned_grid(path, ints, 2, 2, caps, 1, &e), -1);
  ck_assert_msg(strstr(e.msg, "not i32[4, 3, 8, 8]"), "%s", e.msg);
  struct stat st;
  ck_assert_int_ne(stat(path, &st), 0); /* nothing written */
  /* A folder that does not exist. */
  char *nodir = tu_path("no-such-dir/grid.png");
  ck_assert_int_eq(rt_png_write_captioned_grid(nodir, x, 2, 2, caps, 1, &e), -1);
  ck_assert_msg(strstr(e.msg, nodir) && strstr(e.msg, "No such file or directory"), "%s", e.msg);
  rt_tensor_free(rank3);
  rt_tensor_free(grey);
  rt_tensor_free(ints);
  rt_tensor_free(x);
  free(nodir);
  free(path);
}
END_TEST


int main(void) {
  /* cairo's and fontconfig's font caches, which LeakSanitizer would
   * report at the exit of each forked test (and of the suite). */
  atexit(rt_image_grid_release);
  Suite *s = suite_create("image_grid");
  TCase *tc = tcase_create("image_grid");
  tcase_add_test(tc, test_grid_pixels);
  tcase_add_test(tc, test_caption_fit);
  tcase_add_test(tc, test_long_caption_in_grid);
  tcase_add_test(tc, test_errors);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
