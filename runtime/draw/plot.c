/* plot.c — a training log's columns against the step, as a PNG drawn with
 * cairo (see plot.h): panels stacked over a shared x axis, each with its y
 * axis, ticks, grid and legend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/draw/image_grid_impl.h"
#include "runtime/draw/plot.h"

/* Layout, in pixels. */
#define TITLE_H 34   /* the title band at the top */
#define XLABEL_H 30  /* the x axis' name at the bottom */
#define LEFT 80      /* room for the y tick labels */
#define RIGHT 24
#define PAD_TOP 8    /* inside a panel, above its plot area */
#define PAD_BOTTOM 24 /* below it: the x tick labels */
#define TICK_PX 11.0
#define LEGEND_PX 12.0
#define TITLE_PX 14.0

/* tab10, the colours of the columns in panel order. */
static const double palette[][3] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
    {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
    {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812},
};
#define NCOLOURS ((int)(sizeof palette / sizeof *palette))

/* One axis: its range and whether it is logarithmic (then lo, hi > 0). */
typedef struct {
  double lo, hi;
  bool log;
} Axis;

/* Where v falls on an axis drawn from pixel a (at lo) to pixel b (at hi). */
static double to_px(const Axis *ax, double v, double a, double b) {
  double t = ax->log ? (log10(v) - log10(ax->lo)) / (log10(ax->hi) - log10(ax->lo)) : (v - ax->lo) / (ax->hi - ax->lo);
  return a + t * (b - a);
}

/* The 1-2-5 step that cuts 'span' into about n intervals. */
static double nice_step(double span, int n) {
  double raw = span / n, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* Widens [lo, hi] for drawing: linear to multiples of its tick step, log to
 * whole decades; a single value gets room around it. */
static void fit_axis(Axis *ax, double lo, double hi) {
  if (ax->log) {
    if (hi <= lo) lo /= 2, hi *= 2;
    ax->lo = pow(10, floor(log10(lo) + 1e-9));
    ax->hi = pow(10, ceil(log10(hi) - 1e-9));
    if (ax->hi <= ax->lo) ax->hi = ax->lo * 10;
    return;
  }
  if (hi <= lo) {
    double d = lo != 0 ? fabs(lo) * 0.1 : 1;
    lo -= d, hi += d;
  }
  double st = nice_step(hi - lo, 5);
  ax->lo = floor(lo / st + 1e-9) * st;
  ax->hi = ceil(hi / st - 1e-9) * st;
}

/* The ticks of an axis into v[0 .. return) (at most n). */
static int ticks(const Axis *ax, bool fitted, double *v, int n) {
  int k = 0;
  if (ax->log) {
    int d0 = (int)floor(log10(ax->lo) + 1e-9), d1 = (int)ceil(log10(ax->hi) - 1e-9);
    int every = (d1 - d0 + 7) / 8; /* at most ~8 decade labels */
    bool fine = d1 - d0 <= 1;      /* one decade: 1, 2, 5 within it */
    for (int d = d0; d <= d1 && k < n; d++) {
      if ((d - d0) % (every ? every : 1) == 0) v[k++] = pow(10, d);
      if (fine && d < d1 && k + 2 <= n) v[k++] = 2 * pow(10, d), v[k++] = 5 * pow(10, d);
    }
    return k;
  }
  double st = nice_step(ax->hi - ax->lo, fitted ? 5 : 6);
  for (double t = ceil(ax->lo / st - 1e-9) * st; t <= ax->hi + st * 1e-9 && k < n; t += st)
    v[k++] = fabs(t) < st * 1e-9 ? 0 : t;
  return k;
}

static void text_at(cairo_t *cr, const char *s, double x, double y, double ax, double ay) {
  cairo_text_extents_t te;
  cairo_text_extents(cr, s, &te);
  cairo_move_to(cr, x - ax * te.x_advance - te.x_bearing * (ax == 0), y + ay * te.height);
  cairo_show_text(cr, s);
}

typedef struct {
  int col;
  double *x, *y; /* (n) the present values (positive ones on a log axis) */
  int n;
} Series;

/* The series of column c: the rows where it has a value (> 0 if 'positive'). */
static int series_of(const RtTable *t, int c, bool positive, Series *s) {
  s->col = c;
  s->x = malloc(sizeof *s->x * (size_t)t->nrow);
  s->y = malloc(sizeof *s->y * (size_t)t->nrow);
  s->n = 0;
  if (!s->x || !s->y) return -1;
  for (int64_t r = 0; r < t->nrow; r++) {
    double v = t->v[r * t->ncol + c];
    if (isnan(v) || (positive && v <= 0)) continue;
    s->x[s->n] = t->v[r * t->ncol];
    s->y[s->n++] = v;
  }
  return 0;
}

/* Exponential smoothing with factor f, debiased (y / (1 - f^k)), in place into out. */
static void smooth(const Series *s, double f, double *out) {
  double acc = 0, w = 0;
  for (int i = 0; i < s->n; i++) {
    acc = f * acc + (1 - f) * s->y[i];
    w = f * w + (1 - f);
    out[i] = acc / w;
  }
}

typedef struct {
  double x0, y0, x1, y1; /* the plot area */
} Rect;

static void draw_line(cairo_t *cr, const Series *s, const double *y, const Axis *xa, const Axis *ya, Rect r) {
  for (int i = 0; i < s->n; i++) {
    double px = to_px(xa, s->x[i], r.x0, r.x1), py = to_px(ya, y[i], r.y1, r.y0);
    if (i == 0) cairo_move_to(cr, px, py);
    else cairo_line_to(cr, px, py);
  }
  if (s->n == 1) cairo_line_to(cr, to_px(xa, s->x[0], r.x0, r.x1) + 0.01, to_px(ya, y[0], r.y1, r.y0));
  cairo_stroke(cr);
}

/* Draws one panel's axes, grid, series and legend. */
static int draw_panel(cairo_t *cr, const RtTable *t, Series *ser, int n, const Axis *xa, bool log_y, double sm,
                      Rect r, bool xlabels) {
  Axis ya = {.log = log_y};
  double lo = INFINITY, hi = -INFINITY;
  for (int k = 0; k < n; k++)
    for (int i = 0; i < ser[k].n; i++) lo = fmin(lo, ser[k].y[i]), hi = fmax(hi, ser[k].y[i]);
  fit_axis(&ya, lo, hi);
  double tv[64];
  char label[32];
  cairo_set_line_width(cr, 1);
  rt_caption_font(cr, TICK_PX);
  /* grid and y tick labels */
  int nt = ticks(&ya, true, tv, 64);
  for (int i = 0; i < nt; i++) {
    double py = round(to_px(&ya, tv[i], r.y1, r.y0)) + 0.5;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, r.x0, py);
    cairo_line_to(cr, r.x1, py);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    snprintf(label, sizeof label, "%.4g", tv[i]);
    text_at(cr, label, r.x0 - 6, py, 1, 0.5);
  }
  nt = ticks(xa, false, tv, 64);
  for (int i = 0; i < nt; i++) {
    double px = round(to_px(xa, tv[i], r.x0, r.x1)) + 0.5;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, px, r.y0);
    cairo_line_to(cr, px, r.y1);
    cairo_stroke(cr);
    if (!xlabels) continue;
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    snprintf(label, sizeof label, "%.6g", tv[i]);
    text_at(cr, label, px, r.y1 + 6 + TICK_PX * 0.8, 0.5, 0);
  }
  cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
  cairo_rectangle(cr, r.x0 + 0.5, r.y0 + 0.5, r.x1 - r.x0 - 1, r.y1 - r.y0 - 1);
  cairo_stroke(cr);
  /* the series, clipped to the plot area */
  cairo_save(cr);
  cairo_rectangle(cr, r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (int k = 0; k < n; k++) {
    const double *c = palette[k % NCOLOURS];
    Series *s = &ser[k];
    bool sparse = s->n <= RT_PLOT_DOTS, smoothed = sm > 0 && !sparse;
    cairo_set_source_rgba(cr, c[0], c[1], c[2], smoothed ? 0.3 : 1);
    cairo_set_line_width(cr, smoothed ? 1 : 1.6);
    draw_line(cr, s, s->y, xa, &ya, r);
    if (smoothed) {
      double *y = malloc(sizeof *y * (size_t)(s->n + 1));
      if (!y) {
        cairo_restore(cr);
        return -1;
      }
      smooth(s, sm, y);
      cairo_set_source_rgb(cr, c[0], c[1], c[2]);
      cairo_set_line_width(cr, 2);
      draw_line(cr, s, y, xa, &ya, r);
      free(y);
    }
    if (sparse) {
      cairo_set_source_rgb(cr, c[0], c[1], c[2]);
      for (int i = 0; i < s->n; i++) {
        cairo_arc(cr, to_px(xa, s->x[i], r.x0, r.x1), to_px(&ya, s->y[i], r.y1, r.y0), 2.5, 0, 2 * M_PI);
        cairo_fill(cr);
      }
    }
  }
  cairo_restore(cr);
  /* the legend, top right inside the plot area */
  rt_caption_font(cr, LEGEND_PX);
  double w = 0, row = LEGEND_PX * 1.4;
  for (int k = 0; k < n; k++) {
    cairo_text_extents_t te;
    cairo_text_extents(cr, t->name[ser[k].col], &te);
    w = fmax(w, te.x_advance);
  }
  double bw = w + 40, bh = n * row + 8, bx = r.x1 - bw - 8, by = r.y0 + 8;
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_rectangle(cr, bx, by, bw, bh);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  for (int k = 0; k < n; k++) {
    const double *c = palette[k % NCOLOURS];
    double cy = by + 4 + row * (k + 0.5);
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    cairo_set_line_width(cr, 2.5);
    cairo_move_to(cr, bx + 6, cy);
    cairo_line_to(cr, bx + 28, cy);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, t->name[ser[k].col], bx + 34, cy, 0, 0.5);
  }
  return 0;
}

/* The default panels: loss with the eval.* columns, then each other numeric one. */
static void default_panels(const RtTable *t, RtPlotOptions *o) {
  o->npanel = 0;
  RtPlotPanel first = {0};
  for (int c = 1; c < t->ncol; c++)
    if (t->numeric[c] && (strcmp(t->name[c], "loss") == 0 || strncmp(t->name[c], "eval.", 5) == 0) &&
        first.n < RT_PLOT_MAX_SERIES)
      first.name[first.n++] = t->name[c];
  if (first.n) o->panel[o->npanel++] = first;
  for (int c = 1; c < t->ncol && o->npanel < RT_PLOT_MAX_PANELS; c++) {
    if (!t->numeric[c] || strcmp(t->name[c], "loss") == 0 || strncmp(t->name[c], "eval.", 5) == 0) continue;
    o->panel[o->npanel] = (RtPlotPanel){.n = 1};
    o->panel[o->npanel++].name[0] = t->name[c];
  }
}

/* The column names of t, "step, loss, ..." into buf. */
static const char *column_list(const RtTable *t, char *buf, size_t size) {
  size_t at = 0;
  buf[0] = 0;
  for (int c = 0; c < t->ncol && at < size; c++) at += (size_t)snprintf(buf + at, size - at, "%s%s", c ? ", " : "", t->name[c]);
  return buf;
}

/* Panel p's plot area when panels are ph pixels high. */
static Rect panel_rect(int width, double ph, int p) {
  double top = TITLE_H + p * ph;
  return (Rect){LEFT, top + PAD_TOP, width - RIGHT, top + ph - PAD_BOTTOM};
}

void rt_plot_area(int width, int height, int npanel, int p, int *x0, int *y0, int *x1, int *y1) {
  Rect r = panel_rect(width, (double)(height - TITLE_H - XLABEL_H) / npanel, p);
  *x0 = (int)ceil(r.x0), *y0 = (int)ceil(r.y0), *x1 = (int)floor(r.x1), *y1 = (int)floor(r.y1);
}

int rt_plot_height(int npanel) { return TITLE_H + XLABEL_H + npanel * RT_PLOT_PANEL_H; }

int rt_plot_table(const RtTable *t, const char *src, const char *png, const RtPlotOptions *opt, RtErr *e) {
  RtPlotOptions o = *opt;
  char list[1024];
  if (o.npanel == 0) default_panels(t, &o);
  if (o.npanel == 0) return rt_err(e, "%s: no numeric column to plot besides %s", src, t->name[0]);
  if (o.npanel > RT_PLOT_MAX_PANELS) return rt_err(e, "%s: at most %d panels", png, RT_PLOT_MAX_PANELS);
  if (!(o.smooth >= 0 && o.smooth < 1)) return rt_err(e, "the smoothing factor must be in [0, 1), not %g", o.smooth);
  /* check every column before drawing anything */
  for (int p = 0; p < o.npanel; p++) {
    if (o.panel[p].n < 1 || o.panel[p].n > RT_PLOT_MAX_SERIES)
      return rt_err(e, "panel %d: 1 to %d columns, not %d", p + 1, RT_PLOT_MAX_SERIES, o.panel[p].n);
    for (int k = 0; k < o.panel[p].n; k++) {
      const char *name = o.panel[p].name[k];
      int c = rt_table_column(t, name);
      if (c < 0) return rt_err(e, "%s has no column '%s' (its columns: %s)", src, name, column_list(t, list, sizeof list));
      if (!t->numeric[c])
        return rt_err(e, "%s: column '%s' is not numeric (line %lld)", src, name, (long long)t->bad_line[c]);
      int64_t present = 0;
      for (int64_t r = 0; r < t->nrow; r++) present += !isnan(t->v[r * t->ncol + c]);
      if (present == 0) return rt_err(e, "%s: column '%s' has no value to plot", src, name);
    }
  }
  int width = o.width ? o.width : RT_PLOT_WIDTH;
  int height = o.height ? o.height : rt_plot_height(o.npanel);
  if (width < 200 || height < 150 || width > 8000 || height > 8000)
    return rt_err(e, "%s: a plot of %d x %d pixels: the size must be from 200 x 150 to 8000 x 8000", png, width, height);
  double ph = (double)(height - TITLE_H - XLABEL_H) / o.npanel;
  if (ph < 60) return rt_err(e, "%s: %d panels do not fit in %d pixels of height", png, o.npanel, height);

  Axis xa = {0};
  double xlo = t->v[0], xhi = t->v[0];
  for (int64_t r = 0; r < t->nrow; r++) xlo = fmin(xlo, t->v[r * t->ncol]), xhi = fmax(xhi, t->v[r * t->ncol]);
  if (xhi <= xlo) xlo -= 0.5, xhi += 0.5;
  xa.lo = xlo, xa.hi = xhi;

  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  cairo_t *cr = cairo_create(surf);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  int rc = 0;
  Series ser[RT_PLOT_MAX_SERIES];
  for (int p = 0; rc == 0 && p < o.npanel; p++) {
    int n = 0;
    bool log_y = o.log_y;
    for (int pass = 0; pass < 2 && rc == 0; pass++) { /* a second pass on a linear axis if nothing is > 0 */
      int total = 0;
      for (n = 0; n < o.panel[p].n; n++) {
        if (series_of(t, rt_table_column(t, o.panel[p].name[n]), log_y, &ser[n])) {
          free(ser[n].x);
          free(ser[n].y);
          rc = rt_err(e, "%s: out of memory", png);
          break;
        }
        total += ser[n].n;
      }
      if (rc || !log_y || total > 0) break;
      fprintf(stderr, "plot: panel %d (%s...) has no value > 0: drawn on a linear axis\n", p + 1, o.panel[p].name[0]);
      for (int k = 0; k < n; k++) free(ser[k].x), free(ser[k].y);
      log_y = false;
    }
    for (int k = 0; rc == 0 && k < n; k++) {
      int c = ser[k].col;
      int64_t present = 0;
      for (int64_t r = 0; r < t->nrow; r++) present += !isnan(t->v[r * t->ncol + c]);
      if (log_y && present > ser[k].n)
        fprintf(stderr, "plot: column '%s': %lld values <= 0 left out of the log scale\n", t->name[c],
                (long long)(present - ser[k].n));
    }
    Rect r = panel_rect(width, ph, p);
    if (rc == 0 && draw_panel(cr, t, ser, n, &xa, log_y, o.smooth, r, true)) rc = rt_err(e, "%s: out of memory", png);
    for (int k = 0; k < n; k++) free(ser[k].x), free(ser[k].y);
  }
  if (rc == 0) {
    const char *title = o.title;
    if (!title) {
      const char *slash = strrchr(src, '/');
      title = slash ? slash + 1 : src;
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    rt_caption_font(cr, TITLE_PX);
    text_at(cr, title, width / 2.0, TITLE_H / 2.0, 0.5, 0.5);
    rt_caption_font(cr, LEGEND_PX);
    text_at(cr, t->name[0], (LEFT + width - RIGHT) / 2.0, height - XLABEL_H / 2.0, 0.5, 0.5);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
      rc = rt_err(e, "%s: drawing failed: %s", png, cairo_status_to_string(cairo_status(cr)));
  }
  if (rc == 0) rc = rt_cairo_write_png(png, surf, e);
  cairo_destroy(cr);
  cairo_surface_destroy(surf);
  return rc;
}
