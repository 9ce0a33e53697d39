/* plot.h — line plots of a training log as a PNG (`dalc plot`), drawn with
 * cairo.
 *
 * The log is a TSV file (train.h's --log): a header line of column names,
 * then one line per row; the first column (normally "step") is the x axis
 * and must be a number on every row; any other field may be a number
 * (strtod's syntax), empty or "nan" (a missing value: eval.* columns have
 * values only on evaluation steps). An unfinished last line (no newline:
 * a run killed while writing it) is ignored. A column is numeric when every
 * field of it that is not missing is a number.
 *
 * The plot (plot.c) stacks panels, one above the other, sharing the x
 * axis; each panel draws its columns against x, each a line through its
 * present values (a missing value leaves no gap: sparse columns stay
 * lines), with dots where a column has at most RT_PLOT_DOTS values, its
 * own y axis (ticks at 1-2-5 steps, or decades with --log-y) with labels, a
 * legend naming the columns in their colours, and a light grid. Default
 * panels: "loss" with every eval.* column, then one panel per other numeric
 * column. Module prefix: rt_.
 */
#ifndef DAL_RT_PLOT_H
#define DAL_RT_PLOT_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/core/rt_error.h"

/* ---- the TSV table (tsv_table.c) ---- */

typedef struct {
  int ncol;
  char **name;         /* (ncol) */
  int64_t nrow;
  double *v;           /* (nrow, ncol) row-major; NAN for a missing value */
  bool *numeric;       /* (ncol) */
  int64_t *bad_line;   /* (ncol) for a column that is not numeric, the file line (1-based) of its first non-number */
} RtTable;

/* Reads a TSV log (see the file comment). Errors name the file and line:
 * no such file, no tab-separated header, a row with another number of
 * fields than the header, an x value that is not a number, no rows. */
int rt_table_read_tsv(const char *path, RtTable **out, RtErr *e);
void rt_table_free(RtTable *t); /* NULL is a no-op */
/* The column called 'name', or -1. */
int rt_table_column(const RtTable *t, const char *name);

/* ---- the plot (plot.c) ---- */

#define RT_PLOT_MAX_PANELS 16
#define RT_PLOT_MAX_SERIES 16 /* columns in one panel */
#define RT_PLOT_DOTS 60
#define RT_PLOT_WIDTH 900     /* default width */
#define RT_PLOT_PANEL_H 260   /* default height of one panel */

typedef struct {
  int n;
  const char *name[RT_PLOT_MAX_SERIES];
} RtPlotPanel;

typedef struct {
  int npanel;          /* 0: the default panels */
  RtPlotPanel panel[RT_PLOT_MAX_PANELS];
  bool log_y;          /* logarithmic y axes (values <= 0 left out, a note on stderr) */
  double smooth;       /* 0 <= F < 1: also draw each column of more than RT_PLOT_DOTS values exponentially
                          smoothed (s = F s + (1-F) x over its values, debiased), the raw line faint */
  int width, height;   /* pixels; 0: RT_PLOT_WIDTH, and rt_plot_height(panels) */
  const char *title;   /* NULL: the log's file name */
} RtPlotOptions;

/* Draws t (read from 'src', named in the title and messages) as a PNG at
 * 'png', written atomically. Errors: a column the table does not have (the
 * message lists the ones it has) or that is not numeric (naming the line),
 * a column without any value, too many panels or columns, a size below
 * 200 x 150 or above 8000 x 8000 pixels, an unwritable file. */
int rt_plot_table(const RtTable *t, const char *src, const char *png, const RtPlotOptions *o, RtErr *e);

/* The default height of a plot of n panels (a title band, the panels, the
 * x axis' name). */
int rt_plot_height(int npanel);
/* The plot area (inside the frame: where the columns are drawn) of panel p
 * of npanel in a width x height plot: pixels [x0, x1) x [y0, y1). */
void rt_plot_area(int width, int height, int npanel, int p, int *x0, int *y0, int *x1, int *y1);

#endif
