/* test_plot.c — training logs as plots (runtime/draw/plot.h, `dalc plot`): the
 * TSV reader (missing values, an unfinished last line, every malformed
 * file an error naming it and the line); the PNG decoded with stb_image
 * has the asked-for size, each column's colour inside its panel's plot
 * area where the data puts it (a falling loss high on the left, low on the
 * right) and nothing of it outside; bad columns, sizes and paths are
 * errors, and no temporary file is left. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/draw/image_grid.h"
#include "runtime/draw/plot.h"
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

/* The first two colours of the plot's palette (tab10). */
static const int BLUE[3] = {31, 119, 180}, ORANGE[3] = {255, 127, 14};

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

static bool is(const Png *p, int x, int y, const int c[3]) {
  const unsigned char *q = p->px + ((size_t)y * p->w + x) * 3;
  return abs(q[0] - c[0]) < 12 && abs(q[1] - c[1]) < 12 && abs(q[2] - c[2]) < 12;
}

/* Pixels of colour c in [x0, x1) x [y0, y1); their mean y in *mean_y. */
static int count(const Png *p, int x0, int y0, int x1, int y1, const int c[3], double *mean_y) {
  int n = 0;
  double sy = 0;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++)
      if (is(p, x, y, c)) n++, sy += y;
  if (mean_y) *mean_y = n ? sy / n : NAN;
  return n;
}

/* A log of 200 steps: loss falling from 2 to about 0.1, tau falling
 * linearly, opt.lr constant, eval.heldout every 50 steps (empty fields
 * otherwise). The last line is unfinished. */
static char *write_log(const char *name) {
  char *path = tu_path(name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "step\tloss\ttau\topt.lr\teval.heldout\n");
  for (int s = 0; s < 200; s++) {
    fprintf(f, "%d\t%.9g\t%.9g\t0.001\t", s, 0.1 + 1.9 * exp(-s / 30.0), 1.0 - s / 400.0);
    if ((s + 1) % 50 == 0) fprintf(f, "%.9g", 0.2 + 1.0 * exp(-s / 30.0));
    fprintf(f, "\n");
  }
  fprintf(f, "200\t0.1"); /* a run killed while writing */
  fclose(f);
  return path;
}

START_TEST(test_read_tsv) {
  char *log = write_log("read.tsv");
  RtTable *t;
  RtErr e;
  ck_assert_msg(rt_table_read_tsv(log, &t, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(t->ncol, 5);
  ck_assert_int_eq(t->nrow, 200);
  ck_assert_str_eq(t->name[4], "eval.heldout");
  ck_assert_int_eq(rt_table_column(t, "tau"), 2);
  ck_assert_int_eq(rt_table_column(t, "nope"), -1);
  ck_assert_double_eq(t->v[199 * 5], 199);
  ck_assert_double_eq_tol(t->v[1 * 5 + 2], 1 - 1 / 400.0, 1e-9);
  ck_assert(isnan(t->v[0 * 5 + 4]));
  ck_assert(!isnan(t->v[49 * 5 + 4]));
  for (int c = 0; c < 5; c++) ck_assert(t->numeric[c]);
  rt_table_free(t);
  /* "nan" is a missing value; a word makes its column non-numeric (with its line). */
  tu_write_file(log, "step\ta\tb\r\n0\tnan\tx\r\n1\t2\t3\r\n\n2\t\t4\n");
  ck_assert_msg(rt_table_read_tsv(log, &t, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(t->nrow, 3);
  ck_assert(isnan(t->v[1]) && t->v[4] == 2 && isnan(t->v[7]));
  ck_assert(t->numeric[1] && !t->numeric[2]);
  ck_assert_int_eq(t->bad_line[2], 2);
  rt_table_free(t);
  free(log);
}
END_TEST

START_TEST(test_read_errors) {
  char *path = tu_path("bad.tsv");
  struct {
    const char *text, *want;
  } bad[] = {
      {"step loss\n0 1\n", "no tab-separated column names"},
      {"", "no tab-separated column names"},
      {"step\tloss\n", "no data rows"},
      {"step\tloss\nzero\t1\n", "line 2: step 'zero' is not a number"},
      {"step\tloss\n0\t1\n1\t2\t3\n", "line 3 has 3 fields"},
      {"step\tloss\n0\t1\n1\n", "line 3 has 1 fields"},
      {"step\tloss\n\t1\n", "line 2: step is empty"},
      {"step\t\tloss\n0\t1\t2\n", "column 2 has no name"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    tu_write_file(path, bad[i].text);
    RtTable *t = (RtTable *)1;
    RtErr e;
    ck_assert_int_eq(rt_table_read_tsv(path, &t, &e), -1);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(e.msg, bad[i].want) && strstr(e.msg, path), "%zu: %s", i, e.msg);
  }
  /* binary data, a missing file */
  FILE *f = fopen(path, "wb");
  fwrite("step\tx\n\0\x89PNG\n", 1, 13, f);
  fclose(f);
  RtTable *t;
  RtErr e;
  ck_assert_int_eq(rt_table_read_tsv(path, &t, &e), -1);
  ck_assert_msg(strstr(e.msg, "binary"), "%s", e.msg);
  ck_assert_int_eq(rt_table_read_tsv("/nonexistent/log.tsv", &t, &e), -1);
  ck_assert_msg(strstr(e.msg, "/nonexistent/log.tsv") && strstr(e.msg, "cannot open"), "%s", e.msg);
  free(path);
}
END_TEST

START_TEST(test_default_plot) {
  char *log = write_log("def.tsv"), *png = tu_path("def.png");
  RtTable *t;
  RtErr e;
  ck_assert_int_eq(rt_table_read_tsv(log, &t, &e), 0);
  RtPlotOptions o = {0};
  ck_assert_msg(rt_plot_table(t, log, png, &o, &e) == 0, "%s", e.msg);
  /* Panels: loss with eval.heldout, tau, opt.lr. */
  Png p = load_png(png);
  ck_assert_int_eq(p.w, RT_PLOT_WIDTH);
  ck_assert_int_eq(p.h, rt_plot_height(3));
  int x0, y0, x1, y1;
  rt_plot_area(p.w, p.h, 3, 0, &x0, &y0, &x1, &y1);
  ck_assert(x0 > 0 && y0 > 0 && x1 < p.w && y1 < p.h && x1 - x0 > 400 && y1 - y0 > 150);
  /* The loss, blue, is high on the left of its panel and low on the right;
   * the legend (top right) is left out of the count. */
  int lx1 = x0 + (x1 - x0) / 5, rx0 = x1 - (x1 - x0) / 5;
  double left_y, right_y;
  ck_assert_int_gt(count(&p, x0, y0, lx1, y1, BLUE, &left_y), 20);
  ck_assert_int_gt(count(&p, rx0, y0 + (y1 - y0) / 2, x1, y1, BLUE, &right_y), 20);
  ck_assert_msg(left_y < y0 + (y1 - y0) * 0.6 && right_y > y0 + (y1 - y0) * 0.8, "left %g right %g in [%d, %d)", left_y,
                right_y, y0, y1);
  /* eval.heldout, orange, in the same panel (its dots and line). */
  ck_assert_int_gt(count(&p, x0, y0 + 40, x1, y1, ORANGE, NULL), 30);
  /* tau: blue inside panel 2, falling from its top-left to its bottom-right. */
  int a0, b0, a1, b1;
  rt_plot_area(p.w, p.h, 3, 1, &a0, &b0, &a1, &b1);
  ck_assert_int_gt(count(&p, a0, b0, a0 + 40, b1, BLUE, &left_y), 5);
  ck_assert_int_gt(count(&p, a1 - 40, b0 + 30, a1, b1, BLUE, &right_y), 5);
  ck_assert_msg(left_y < right_y - (b1 - b0) / 2, "tau: left %g right %g", left_y, right_y);
  /* No colour of a column between the panels or in the margins. */
  ck_assert_int_eq(count(&p, 0, y1 + 2, p.w, b0 - 1, BLUE, NULL), 0);
  ck_assert_int_eq(count(&p, 0, 0, x0 - 1, p.h, BLUE, NULL), 0);
  ck_assert_int_eq(count(&p, 0, 0, p.w, y0 - 1, BLUE, NULL), 0);
  /* Ticks and labels: dark pixels left of the plot area (the y labels). */
  int dark = 0;
  for (int y = y0; y < y1; y++)
    for (int x = 0; x < x0 - 4; x++) {
      const unsigned char *q = p.px + ((size_t)y * p.w + x) * 3;
      dark += q[0] < 100 && q[1] < 100 && q[2] < 100;
    }
  ck_assert_int_gt(dark, 50);
  stbi_image_free(p.px);
  /* Atomic: nothing but the files made here is left in the folder. */
  ck_assert_int_eq(tu_sh("ls -A '%s' | grep -v -e '\\.tsv$' -e '\\.png$' >&2", tu_tmpdir()), 1);
  rt_table_free(t);
  free(log);
  free(png);
}
END_TEST

START_TEST(test_chosen_columns) {
  char *log = write_log("cols.tsv"), *png = tu_path("cols.png");
  RtTable *t;
  RtErr e;
  ck_assert_int_eq(rt_table_read_tsv(log, &t, &e), 0);
  /* One panel, two columns, log y, a given size, smoothed. */
  RtPlotOptions o = {.npanel = 1, .log_y = true, .width = 640, .height = 400, .smooth = 0.9, .title = "run 7"};
  o.panel[0] = (RtPlotPanel){.n = 2, .name = {"eval.heldout", "tau"}};
  ck_assert_msg(rt_plot_table(t, log, png, &o, &e) == 0, "%s", e.msg);
  Png p = load_png(png);
  ck_assert_int_eq(p.w, 640);
  ck_assert_int_eq(p.h, 400);
  int x0, y0, x1, y1;
  rt_plot_area(p.w, p.h, 1, 0, &x0, &y0, &x1, &y1);
  ck_assert_int_gt(count(&p, x0, y0 + 60, x1, y1, BLUE, NULL), 20);   /* eval.heldout: first colour */
  ck_assert_int_gt(count(&p, x0, y0 + 60, x1, y1, ORANGE, NULL), 20); /* tau: second */
  stbi_image_free(p.px);
  /* Errors: a column the log lacks (listing its columns), a non-numeric
   * one, no value at all, a size out of range, an unwritable path. */
  o.panel[0] = (RtPlotPanel){.n = 2, .name = {"loss", "eval.x"}};
  ck_assert_int_eq(rt_plot_table(t, log, png, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "no column 'eval.x'") && strstr(e.msg, "step, loss, tau, opt.lr, eval.heldout"), "%s",
                e.msg);
  o.panel[0] = (RtPlotPanel){.n = 1, .name = {"loss"}};
  o.width = 100;
  ck_assert_int_eq(rt_plot_table(t, log, png, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "100 x 400"), "%s", e.msg);
  o.width = 0;
  o.height = 0;
  ck_assert_int_eq(rt_plot_table(t, log, "/nonexistent/dir/p.png", &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "/nonexistent/dir/p.png"), "%s", e.msg);
  rt_table_free(t);
  tu_write_file(log, "step\tloss\tnote\tempty\n0\t1\tok\t\n1\t0.5\tgood\t\n");
  ck_assert_int_eq(rt_table_read_tsv(log, &t, &e), 0);
  o.panel[0] = (RtPlotPanel){.n = 1, .name = {"note"}};
  ck_assert_int_eq(rt_plot_table(t, log, png, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "'note' is not numeric (line 2)"), "%s", e.msg);
  o.panel[0] = (RtPlotPanel){.n = 1, .name = {"empty"}};
  ck_assert_int_eq(rt_plot_table(t, log, png, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "'empty' has no value"), "%s", e.msg);
  /* Log y on a column with no positive value: drawn on a linear axis. */
  tu_write_file(log, "step\tbeta\n0\t0\n1\t0\n");
  rt_table_free(t);
  ck_assert_int_eq(rt_table_read_tsv(log, &t, &e), 0);
  o = (RtPlotOptions){.log_y = true};
  ck_assert_msg(rt_plot_table(t, log, png, &o, &e) == 0, "%s", e.msg);
  rt_table_free(t);
  free(log);
  free(png);
}
END_TEST

/* Through dalc: success, a missing column, a file that is not a log. */
START_TEST(test_dalc_plot) {
  char *log = write_log("cli.tsv"), *png = tu_path("cli.png"), *bin = tu_path("cli-bad.tsv");
  int status;
  char *out = tu_sh_output(&status, "'%s' plot '%s' --columns loss,eval.heldout --columns tau --log-y -o '%s'",
                           tu_dalc(), log, png);
  ck_assert_msg(status == 0 && strstr(out, "plot written to"), "%d: %s", status, out);
  free(out);
  Png p = load_png(png);
  ck_assert_int_eq(p.h, rt_plot_height(2));
  stbi_image_free(p.px);
  /* The default output name: LOG with .png for .tsv. */
  out = tu_sh_output(&status, "'%s' plot '%s'", tu_dalc(), log);
  ck_assert_msg(status == 0, "%s", out);
  free(out);
  ck_assert_int_eq(tu_sh("test -s '%s/cli.png'", tu_tmpdir()), 0);
  out = tu_sh_output(&status, "'%s' plot '%s' --columns loss,nope -o '%s'", tu_dalc(), log, png);
  ck_assert_msg(status == 1 && strstr(out, "no column 'nope'"), "%d: %s", status, out);
  free(out);
  tu_write_file(bin, "\x89PNG\r\n\x1a\n");
  out = tu_sh_output(&status, "'%s' plot '%s' -o '%s'", tu_dalc(), bin, png);
  ck_assert_msg(status == 1 && strstr(out, "not a TSV log"), "%d: %s", status, out);
  free(out);
  out = tu_sh_output(&status, "'%s' plot '%s' --smooth 1 -o '%s'", tu_dalc(), log, png);
  ck_assert_msg(status == 1 && strstr(out, "--smooth"), "%d: %s", status, out);
  free(out);
  out = tu_sh_output(&status, "'%s' plot", tu_dalc());
  ck_assert_msg(status == 1 && strstr(out, "needs a log file"), "%d: %s", status, out);
  free(out);
  free(log);
  free(png);
  free(bin);
}
END_TEST

int main(void) {
  /* cairo's and fontconfig's caches would be reported as leaks at the exit
   * of each forked test (and of the suite). */
  atexit(rt_image_grid_release);
  Suite *s = suite_create("plot");
  TCase *tc = tcase_create("plot");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_read_tsv);
  tcase_add_test(tc, test_read_errors);
  tcase_add_test(tc, test_default_plot);
  tcase_add_test(tc, test_chosen_columns);
  tcase_add_test(tc, test_dalc_plot);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
