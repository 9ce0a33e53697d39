/* tsv_table.c — a training log's TSV into a table of numbers (see plot.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/draw/plot.h"

void rt_table_free(RtTable *t) {
  if (!t) return;
  for (int c = 0; t->name && c < t->ncol; c++) free(t->name[c]);
  free(t->name);
  free(t->v);
  free(t->numeric);
  free(t->bad_line);
  free(t);
}

int rt_table_column(const RtTable *t, const char *name) {
  for (int c = 0; c < t->ncol; c++)
    if (strcmp(t->name[c], name) == 0) return c;
  return -1;
}

/* The whole file, NUL-terminated. */
static char *read_all(const char *path, size_t *size, RtErr *e) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    rt_err(e, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 1 >= cap) {
      cap = cap ? 2 * cap : 65536;
      char *b = realloc(buf, cap);
      if (!b) {
        free(buf);
        fclose(f);
        rt_err(e, "%s: out of memory", path);
        return NULL;
      }
      buf = b;
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  bool bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    rt_err(e, "%s: read error", path);
    return NULL;
  }
  buf[n] = 0;
  *size = n;
  return buf;
}

/* A field [s, end) as a number: NAN if empty or "nan"; false if it is not a number. */
static bool parse_field(const char *s, const char *end, double *v) {
  if (s == end) {
    *v = NAN;
    return true;
  }
  char tmp[64];
  size_t n = (size_t)(end - s);
  if (n >= sizeof tmp) return false;
  memcpy(tmp, s, n);
  tmp[n] = 0;
  char *stop;
  double x = strtod(tmp, &stop);
  if (stop == tmp || *stop) return false;
  *v = isfinite(x) ? x : NAN;
  return true;
}

/* Splits the header line [s, end) into t's column names. */
static int read_header(RtTable *t, const char *s, const char *end, const char *path, RtErr *e) {
  if (end > s && end[-1] == '\r') end--;
  if (end <= s || !memchr(s, '\t', (size_t)(end - s)))
    return rt_err(e, "%s: not a TSV log: its first line has no tab-separated column names", path);
  int n = 1;
  for (const char *c = s; c < end; c++) n += *c == '\t';
  t->name = calloc((size_t)n, sizeof *t->name);
  t->numeric = calloc((size_t)n, sizeof *t->numeric);
  t->bad_line = calloc((size_t)n, sizeof *t->bad_line);
  if (!t->name || !t->numeric || !t->bad_line) return rt_err(e, "%s: out of memory", path);
  t->ncol = n;
  for (int c = 0; c < n; c++) {
    const char *tab = memchr(s, '\t', (size_t)(end - s));
    const char *stop = tab ? tab : end;
    if (stop == s) return rt_err(e, "%s: line 1: column %d has no name", path, c + 1);
    if (!(t->name[c] = strndup(s, (size_t)(stop - s)))) return rt_err(e, "%s: out of memory", path);
    t->numeric[c] = true;
    s = stop + 1;
  }
  return 0;
}

int rt_table_read_tsv(const char *path, RtTable **out, RtErr *e) {
  *out = NULL;
  size_t size;
  char *text = read_all(path, &size, e);
  if (!text) return -1;
  RtTable *t = calloc(1, sizeof *t);
  int rc = -1;
  if (!t) {
    rt_err(e, "%s: out of memory", path);
    goto done;
  }
  if (memchr(text, 0, size)) {
    rt_err(e, "%s: not a TSV log (it holds binary data)", path);
    goto done;
  }
  const char *nl = strchr(text, '\n');
  if (read_header(t, text, nl ? nl : text + size, path, e)) goto done;
  int64_t lines = 0;
  for (const char *c = nl; c && *c; c++) lines += *c == '\n';
  t->v = malloc(sizeof *t->v * (size_t)(lines * t->ncol + 1));
  if (!t->v) {
    rt_err(e, "%s: out of memory", path);
    goto done;
  }
  int64_t line = 1;
  for (const char *s = nl ? nl + 1 : text + size; *s;) {
    const char *end = strchr(s, '\n');
    line++;
    if (!end) break; /* an unfinished last line */
    const char *stop = end > s && end[-1] == '\r' ? end - 1 : end;
    if (stop == s) { /* a blank line */
      s = end + 1;
      continue;
    }
    double *row = t->v + t->nrow * t->ncol;
    int c = 0;
    for (const char *f = s;; c++) {
      const char *tab = memchr(f, '\t', (size_t)(stop - f));
      const char *fe = tab ? tab : stop;
      if (c < t->ncol && !parse_field(f, fe, &row[c])) {
        if (c == 0) {
          rt_err(e, "%s: line %lld: %s '%.*s' is not a number (is this a TSV log?)", path, (long long)line,
                 t->name[0], (int)(fe - f > 40 ? 40 : fe - f), f);
          goto done;
        }
        row[c] = NAN;
        if (t->numeric[c]) t->bad_line[c] = line;
        t->numeric[c] = false;
      }
      if (!tab) break;
      f = tab + 1;
    }
    if (c + 1 != t->ncol) {
      rt_err(e, "%s: line %lld has %d fields, but the header names %d columns", path, (long long)line, c + 1, t->ncol);
      goto done;
    }
    if (isnan(row[0])) {
      rt_err(e, "%s: line %lld: %s is empty", path, (long long)line, t->name[0]);
      goto done;
    }
    t->nrow++;
    s = end + 1;
  }
  if (t->nrow == 0) {
    rt_err(e, "%s has no data rows (only its header)", path);
    goto done;
  }
  *out = t;
  t = NULL;
  rc = 0;
done:
  rt_table_free(t);
  free(text);
  return rc;
}
