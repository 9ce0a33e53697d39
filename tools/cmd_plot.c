/* cmd_plot.c — `dalc plot`: a training log's columns against the step as a
 * PNG (runtime/draw/plot.h).
 *
 *   dalc plot LOG.tsv [--columns A,B]... [--log-y] [--smooth F] [--width W] [--height H]
 *             [--title T] [-o PLOT.png]
 *
 * Each --columns flag is one panel holding the columns it names (sharing
 * its y axis and legend); without any, the default panels: "loss" with
 * every eval.* column, then one per other numeric column. -o defaults to
 * LOG with ".tsv" replaced by ".png" (or ".png" appended). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/draw/image_grid.h"
#include "runtime/draw/plot.h"
#include "runtime/exe/exe.h"
#include "tools/cli.h"

static const char plot_usage[] =
    "usage: dalc plot LOG.tsv [--columns A,B]... [--log-y] [--smooth F] [--width W] [--height H] [--title T]\n"
    "                 [-o PLOT.png]\n"
    "  each --columns is one panel (its columns share the y axis); default: loss with the eval.* columns,\n"
    "  then one panel per other numeric column; --smooth F (0 <= F < 1) adds an exponentially smoothed line\n";

/* "A,B,C" into a panel; the names point into 'list' (cut at the commas). */
static int add_panel(RtPlotOptions *o, char *list) {
  if (o->npanel == RT_PLOT_MAX_PANELS) {
    cli_error("too many --columns panels (at most %d)", RT_PLOT_MAX_PANELS);
    return -1;
  }
  RtPlotPanel *p = &o->panel[o->npanel++];
  p->n = 0;
  for (char *s = strtok(list, ","); s; s = strtok(NULL, ",")) {
    if (p->n == RT_PLOT_MAX_SERIES) {
      cli_error("--columns: at most %d columns in one panel", RT_PLOT_MAX_SERIES);
      return -1;
    }
    p->name[p->n++] = s;
  }
  if (p->n == 0) {
    cli_error("--columns needs column names, e.g. --columns loss,eval.loss");
    return -1;
  }
  return 0;
}

int cmd_plot(int argc, char **argv) {
  RtPlotOptions o = {0};
  const char *log = NULL, *out = NULL, *columns = NULL, *smooth = NULL;
  uint64_t width = 0, height = 0;
  char *lists[RT_PLOT_MAX_PANELS + 1] = {0};
  int nlists = 0, status = 1;
  const RtExeOpt opts[] = {{"--columns", .str = &columns},
                           {"--smooth", .str = &smooth},
                           {"--width", .num = &width, .lo = 0, .hi = 100000},
                           {"--height", .num = &height, .lo = 0, .hi = 100000},
                           {"--title", .str = &o.title},
                           {"-o", .str = &out},
                           {"--log-y", .on = &o.log_y}};
  for (int i = 0; i < argc; i++) {
    RtErr e;
    int m = rt_exe_opts(argc, argv, &i, opts, (int)(sizeof opts / sizeof *opts), &e);
    if (m < 0) {
      cli_error("plot: %s", e.msg);
      goto done;
    }
    if (m == 0 && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
      fputs(plot_usage, stdout);
      status = 0;
      goto done;
    }
    if (m == 0 && argv[i][0] == '-') {
      cli_error("plot: unknown option '%s'\n%s", argv[i], plot_usage);
      goto done;
    }
    if (m == 0 && log) {
      cli_error("plot: one log at a time ('%s' and '%s')", log, argv[i]);
      goto done;
    }
    if (m == 0) log = argv[i];
    /* --columns and --smooth are checked as they come. */
    if (columns) {
      if (nlists == RT_PLOT_MAX_PANELS) {
        cli_error("too many --columns panels (at most %d)", RT_PLOT_MAX_PANELS);
        goto done;
      }
      if (!(lists[nlists] = strdup(columns)) || add_panel(&o, lists[nlists++])) goto done;
      columns = NULL;
    }
    if (smooth && (rt_exe_f64("--smooth", smooth, &o.smooth, &e) || !(o.smooth >= 0 && o.smooth < 1))) {
      cli_error("--smooth needs a factor in [0, 1) (e.g. 0.9), got '%s'", smooth);
      goto done;
    }
    smooth = NULL;
  }
  o.width = (int)width;
  o.height = (int)height;
  if (!log) {
    cli_error("plot needs a log file (a TSV from `train --log`)\n%s", plot_usage);
    goto done;
  }
  char def[4096];
  if (!out) {
    size_t n = strlen(log);
    if (n > 4 && !strcmp(log + n - 4, ".tsv")) n -= 4;
    snprintf(def, sizeof def, "%.*s.png", (int)n, log);
    out = def;
  }
  RtErr e;
  RtTable *t = NULL;
  if (rt_table_read_tsv(log, &t, &e) || rt_plot_table(t, log, out, &o, &e)) {
    cli_error("%s", e.msg);
  } else {
    printf("plot written to %s\n", out);
    status = 0;
  }
  rt_table_free(t);
  rt_image_grid_release();
done:
  for (int k = 0; k < nlists; k++) free(lists[k]);
  return status;
}
