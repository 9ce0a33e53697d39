/* train_log.c — the per-step TSV log of a training run (see train.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/io/fileio.h"
#include "runtime/train/train.h"

/* Whether 'line' (up to its newline) starts with a step number below 'first'. */
static bool keep_line(const char *line, uint64_t first) {
  if (*line < '0' || *line > '9') return false;
  char *end;
  unsigned long long s = strtoull(line, &end, 10);
  return *end == '\t' && s < first;
}

/* Rewrites 'path' to its first line and its complete lines for steps < first. */
static int cut_log(const char *path, const char *text, size_t size, uint64_t first, RtErr *e) {
  char *out = malloc(size + 1);
  if (!out) return rt_err(e, "%s: out of memory", path);
  size_t n = 0;
  bool header = true;
  for (const char *p = text; p < text + size;) {
    const char *nl = memchr(p, '\n', (size_t)(text + size - p));
    if (!nl) break; /* an unfinished last line (the run was killed while writing it) */
    if (header || keep_line(p, first)) {
      memcpy(out + n, p, (size_t)(nl + 1 - p));
      n += (size_t)(nl + 1 - p);
    }
    header = false;
    p = nl + 1;
  }
  RtChunk c = {out, n};
  int rc = rt_write_file_atomic(path, &c, 1, e);
  free(out);
  return rc;
}

FILE *rt_train_log_open(const char *path, const char *header, uint64_t first, RtErr *e) {
  FILE *old = first > 0 ? fopen(path, "rb") : NULL;
  if (old) {
    char *text = NULL;
    size_t size = 0, cap = 0;
    int rc = 0;
    for (;;) {
      if (size == cap) {
        cap = cap ? 2 * cap : 65536;
        char *t = realloc(text, cap);
        if (!t) {
          rc = rt_err(e, "%s: out of memory", path);
          break;
        }
        text = t;
      }
      size_t got = fread(text + size, 1, cap - size, old);
      size += got;
      if (got == 0) break;
    }
    if (rc == 0 && ferror(old)) rc = rt_err(e, "%s: read error: %s", path, strerror(errno));
    fclose(old);
    if (rc == 0) rc = cut_log(path, text, size, first, e);
    free(text);
    if (rc) return NULL;
    FILE *f = fopen(path, "a");
    if (!f) rt_err(e, "%s: cannot open for appending: %s", path, strerror(errno));
    return f;
  }
  struct stat st;
  bool fresh = stat(path, &st) != 0; /* created here: removed again if the header cannot be written */
  FILE *f = fopen(path, "w");
  if (!f) {
    rt_err(e, "%s: cannot create: %s", path, strerror(errno));
    return NULL;
  }
  fprintf(f, "%s\n", header);
  if (rt_stream_check(f, path, e)) {
    fclose(f);
    if (fresh) unlink(path);
    return NULL;
  }
  return f;
}
