/* diag.c — formatting diagnostics with the source line and a caret (see
 * diag.h), and fe_format_diag from frontend.h. */
#include "frontend/diag.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/frontend.h"

typedef struct {
  const char *file, *text;
  const void *owner;
} Source;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Source *sources;
static int nsources, capsources;

void fe_diag_register(const char *file, const char *text, const void *owner) {
  pthread_mutex_lock(&lock);
  if (nsources == capsources) {
    int cap = capsources ? 2 * capsources : 16;
    Source *s = realloc(sources, (size_t)cap * sizeof *s);
    if (!s) {
      /* Diagnostics then fall back to reading the file from disk. */
      pthread_mutex_unlock(&lock);
      return;
    }
    sources = s;
    capsources = cap;
  }
  sources[nsources++] = (Source){file, text, owner};
  pthread_mutex_unlock(&lock);
}

void fe_diag_unregister(const void *owner) {
  pthread_mutex_lock(&lock);
  int k = 0;
  for (int i = 0; i < nsources; i++)
    if (sources[i].owner != owner) sources[k++] = sources[i];
  nsources = k;
  if (nsources == 0) {
    free(sources);
    sources = NULL;
    capsources = 0;
  }
  pthread_mutex_unlock(&lock);
}

/* Copies line 'line' (1-based, without its newline) of 'text' into b.
 * False if the text has fewer lines. */
static bool copy_line(FeBuf *b, const char *text, int line) {
  const char *p = text;
  for (int i = 1; i < line; i++) {
    p = strchr(p, '\n');
    if (!p) return false;
    p++;
  }
  size_t n = strcspn(p, "\n");
  if (n && p[n - 1] == '\r') n--;
  fe_buf_putn(b, p, n);
  return true;
}

/* The registered text of 'file' (by pointer, then by name), copied into b. */
static bool registered_line(FeBuf *b, const char *file, int line) {
  bool found = false;
  pthread_mutex_lock(&lock);
  const Source *hit = NULL;
  for (int i = nsources - 1; i >= 0 && !hit; i--)
    if (sources[i].file == file) hit = &sources[i];
  for (int i = nsources - 1; i >= 0 && !hit; i--)
    if (strcmp(sources[i].file, file) == 0) hit = &sources[i];
  if (hit) found = copy_line(b, hit->text, line);
  pthread_mutex_unlock(&lock);
  return found;
}

/* Line 'line' of a file on disk, only if it is a regular file (opened
 * without blocking, so a FIFO named in a location cannot hang a message). */
static bool disk_line(FeBuf *b, const char *file, int line) {
  int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  FILE *f = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? fdopen(fd, "rb") : NULL;
  if (!f) {
    close(fd);
    return false;
  }
  int c, at = 1;
  while (at < line && (c = getc(f)) != EOF)
    if (c == '\n') at++;
  bool ok = at == line;
  if (ok) {
    char chunk[256];
    size_t n = 0;
    bool any = false;
    while ((c = getc(f)) != EOF && c != '\n') {
      any = true;
      if (c == '\r') continue;
      chunk[n++] = (char)c;
      if (n == sizeof chunk) {
        fe_buf_putn(b, chunk, n);
        n = 0;
      }
    }
    fe_buf_putn(b, chunk, n);
    ok = any || c == '\n' || line == 1;
  }
  fclose(f);
  return ok;
}

void fe_diag_vappend(FeBuf *b, const char *kind, SrcLoc loc, const char *fmt, va_list ap) {
  if (loc.file && loc.line > 0)
    fe_buf_printf(b, "%s:%d:%d: %s: ", loc.file, loc.line, loc.col > 0 ? loc.col : 1, kind);
  else if (loc.file)
    fe_buf_printf(b, "%s: %s: ", loc.file, kind);
  else
    fe_buf_printf(b, "%s: ", kind);
  fe_buf_vprintf(b, fmt, ap);
  fe_buf_puts(b, "\n");
  if (!loc.file || loc.line <= 0) return;

  FeBuf src = {0};
  bool have = registered_line(&src, loc.file, loc.line) || disk_line(&src, loc.file, loc.line);
  char *text = fe_buf_take(&src);
  if (have) {
    fe_buf_printf(b, "    %s\n    ", text);
    /* The caret goes under column 'col': copy tabs so it lines up however
     * the terminal expands them. */
    size_t len = strlen(text);
    for (int i = 0; i + 1 < loc.col; i++) fe_buf_puts(b, (size_t)i < len && text[i] == '\t' ? "\t" : " ");
    fe_buf_puts(b, "^\n");
  }
  free(text);
}

void fe_diag_append(FeBuf *b, const char *kind, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fe_diag_vappend(b, kind, loc, fmt, ap);
  va_end(ap);
}

char *fe_format_diag(SrcLoc loc, const char *fmt, ...) {
  FeBuf b = {0};
  va_list ap;
  va_start(ap, fmt);
  fe_diag_vappend(&b, "error", loc, fmt, ap);
  va_end(ap);
  return fe_buf_take(&b);
}
