/* test_conv_table.c — the measured conv table (codegen/conv_table.h): its
 * file round trip, the errors a bad file gets, a table of another machine
 * ignored, and -fconv=auto taking the fastest measured algorithm its
 * accuracy rule allows (no F(4x4,3x3) in a training step), in the choice
 * and in the lowered plan, while an explicit -fconv ignores the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/conv_table.h"
#include "codegen/lower.h"
#include "passes/fuse.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_conv_table.c", __LINE__, 1})

static char dir[] = "/tmp/dal-conv-table-XXXXXX";

static void setup(void) { ck_assert(mkdtemp(dir) != NULL); }
static void teardown(void) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
  strcpy(dir, "/tmp/dal-conv-table-XXXXXX");
  cg_conv_table_set(NULL, 0);
}

static void path_of(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", dir, name); }

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert(f != NULL);
  fputs(text, f);
  fclose(f);
}

/* x [2, 32, 16, 16] conv2d w [32, 32, 3, 3] pad 1 (Winograd under the
 * rules); a training step returns the sum of y as its loss first. The
 * conv is node *conv. */
static IrGraph *one_conv(bool train, int *conv) {
  IrGraph *g = ir_graph_new("one_conv");
  int x = ir_input(g, "x", IR_F32, (IrShape){.rank = 4, .d = {2, 32, 16, 16}}, LOC);
  int w = ir_input(g, "w", IR_F32, (IrShape){.rank = 4, .d = {32, 32, 3, 3}}, LOC);
  int y = ir_build(g, OP_CONV2D, (int[]){x, w}, 2, &(IrAttr){.stride = 1, .pad = 1}, LOC);
  int loss = ir_build(g, OP_SUM, &y, 1, &(IrAttr){.axes = 0xf}, LOC);
  ck_assert_msg(x >= 0 && w >= 0 && y >= 0 && loss >= 0, "%s", g->error);
  ir_set_outputs(g, (int[]){loss, y}, NULL, 2);
  g->train = train;
  *conv = y;
  return g;
}

START_TEST(round_trip) {
  int y;
  IrGraph *g = one_conv(false, &y);
  CgConvTableRow rows[2];
  cg_conv_table_key(g, y, &rows[0]);
  ck_assert(rows[0].op == OP_CONV2D && rows[0].N == 2 && rows[0].C == 32 && rows[0].O == 32 && rows[0].KH == 3 &&
            rows[0].pad == 1 && rows[0].ms[CG_CONV_IM2COL] < 0);
  rows[0].ms[CG_CONV_IM2COL] = 1.5, rows[0].ms[CG_CONV_WINOGRAD] = 0.75, rows[0].ms[CG_CONV_WINOGRAD4] = 0.5;
  rows[1] = rows[0];
  rows[1].op = OP_CONV2D_BACKWARD_WEIGHT;
  rows[1].ms[CG_CONV_WINOGRAD4] = -1;
  char path[512], why[1024];
  path_of(path, sizeof path, "t.tsv");
  ck_assert_msg(cg_conv_table_write(path, rows, 2, why, sizeof why) == 0, "%s", why);
  CgConvTableRow *back;
  int n;
  ck_assert_msg(cg_conv_table_read(path, &back, &n, why, sizeof why) == 1, "%s", why);
  ck_assert_int_eq(n, 2);
  for (int i = 0; i < 2; i++) {
    ck_assert(cg_conv_table_same(&back[i], &rows[i]));
    for (int a = 1; a < CG_CONV_TABLE_NALGO; a++) ck_assert(back[i].ms[a] == rows[i].ms[a]);
  }
  ck_assert(!cg_conv_table_same(&back[0], &back[1]));
  free(back);
  ir_graph_free(g);
}
END_TEST

START_TEST(bad_files) {
  char path[512], why[1024], machine[512], text[2048];
  CgConvTableRow *rows;
  int n;
  path_of(path, sizeof path, "missing.tsv");
  ck_assert_int_eq(cg_conv_table_read(path, &rows, &n, why, sizeof why), 0);
  ck_assert(rows == NULL && n == 0);
  path_of(path, sizeof path, "bad.tsv");
  write_text(path, "hello\n");
  ck_assert_int_eq(cg_conv_table_read(path, &rows, &n, why, sizeof why), -1);
  ck_assert_msg(strstr(why, ":1: not a dal conv table"), "%s", why);
  cg_conv_table_machine(machine, sizeof machine);
  snprintf(text, sizeof text, "# dal conv table 1\n# cpu: %s\nconv2d 2 32 16 16 32 3 3 1 1 im2col=1\nconv2d 2 x\n",
           machine);
  write_text(path, text);
  ck_assert_int_eq(cg_conv_table_read(path, &rows, &n, why, sizeof why), -1);
  ck_assert_msg(strstr(why, ":4: malformed row"), "%s", why);
  snprintf(text, sizeof text, "# dal conv table 1\n# cpu: %s\nconv2d 2 32 16 16 32 3 3 1 1 fft=1\n", machine);
  write_text(path, text);
  ck_assert_int_eq(cg_conv_table_read(path, &rows, &n, why, sizeof why), -1);
  snprintf(text, sizeof text, "# dal conv table 1\n# cpu: %s\nconv2d 2 32 16 16 32 3 3 1 1 im2col=-3\n", machine);
  write_text(path, text);
  ck_assert_int_eq(cg_conv_table_read(path, &rows, &n, why, sizeof why), -1);
  write_text(path, "# dal conv table 1\n# cpu: Some Other CPU; threads: 64\nconv2d 2 32 16 16 32 3 3 1 1 im2col=1\n");
  ck_assert_int_eq(cg_conv_table_read(path, &rows, &n, why, sizeof why), 0);
  ck_assert_msg(strstr(why, "another machine"), "%s", why);
  ck_assert(rows == NULL && n == 0);
}
END_TEST

/* The algorithm AUTO picks for the one conv with a table giving im2col,
 * F(2x2) and F(4x4) these times; and what the lowered plan counts. */
static CgConvAlgo pick_with(bool train, double im2col, double wino, double wino4, int *lowered_wino) {
  int y;
  IrGraph *g = one_conv(train, &y);
  CgConvTableRow row;
  cg_conv_table_key(g, y, &row);
  row.ms[CG_CONV_IM2COL] = im2col, row.ms[CG_CONV_WINOGRAD] = wino, row.ms[CG_CONV_WINOGRAD4] = wino4;
  cg_conv_table_set(&row, 1);
  const char *why = NULL;
  CgConvAlgo a = cg_conv_pick(g, y, CG_CONV_AUTO, &why);
  ck_assert_msg(why && strstr(why, "conv table"), "%s", why ? why : "(null)");
  /* an explicit -fconv ignores the table */
  ck_assert_int_eq(cg_conv_pick(g, y, CG_CONV_IM2COL, NULL), CG_CONV_IM2COL);
  ck_assert_int_eq(cg_conv_pick(g, y, CG_CONV_WINOGRAD, NULL), CG_CONV_WINOGRAD);
  FusePlan *p = fuse_plan(g, &(FuseOptions){.enabled = true});
  RtErr e;
  CgLowered *l = cg_lower(g, p, NULL, &e);
  ck_assert_msg(l != NULL, "%s", e.msg);
  *lowered_wino = l->conv_winograd * 10 + l->winograd4;
  cg_lowered_free(l);
  fuse_plan_free(p);
  ir_graph_free(g);
  return a;
}

START_TEST(auto_takes_the_fastest_allowed) {
  int w;
  /* the rules would take Winograd: a table measuring im2col faster wins */
  ck_assert_int_eq(pick_with(true, 1.0, 2.0, 3.0, &w), CG_CONV_IM2COL);
  ck_assert_int_eq(w, 0);
  ck_assert_int_eq(pick_with(true, 3.0, 2.0, -1, &w), CG_CONV_WINOGRAD);
  ck_assert_int_eq(w, 10);
  /* F(4x4,3x3) fastest: taken in an inference entry, not in a training step */
  ck_assert_int_eq(pick_with(false, 3.0, 2.0, 1.0, &w), CG_CONV_WINOGRAD4);
  ck_assert_int_eq(w, 11);
  ck_assert_int_eq(pick_with(true, 3.0, 2.0, 1.0, &w), CG_CONV_WINOGRAD);
  ck_assert_int_eq(w, 10);
  /* no row for the shape: the rules */
  cg_conv_table_set(NULL, 0);
  int y;
  IrGraph *g = one_conv(true, &y);
  const char *why = NULL;
  ck_assert_int_eq(cg_conv_pick(g, y, CG_CONV_AUTO, &why), CG_CONV_WINOGRAD);
  ck_assert(why && !strstr(why, "conv table"));
  ir_graph_free(g);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("conv_table");
  TCase *t = tcase_create("table");
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, round_trip);
  tcase_add_test(t, bad_files);
  tcase_add_test(t, auto_takes_the_fastest_allowed);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return tu_run_suite(suite()); }
