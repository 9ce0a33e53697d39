/* util.c — helpers shared by dal's Check tests (see util.h). */
#include "tests/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];
static pid_t tmpdir_owner;

static void remove_tmpdir(void) {
  /* Only the process that made it removes it (Check forks per test). */
  if (tmpdir[0] && getpid() == tmpdir_owner) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
  }
}

const char *tu_tmpdir(void) {
  if (!tmpdir[0]) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/daltest.XXXXXX");
    if (!mkdtemp(tmpdir)) {
      perror("mkdtemp");
      exit(2);
    }
    tmpdir_owner = getpid();
    atexit(remove_tmpdir);
  }
  return tmpdir;
}

char *tu_path(const char *name) {
  const char *d = tu_tmpdir();
  size_t n = strlen(d) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", d, name);
  return p;
}

static int exit_status(int raw) {
  if (raw == -1) return -1;
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
}

int tu_sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  fflush(NULL);
  return exit_status(system(cmd));
}

char *tu_sh_output(int *status, const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(cmd, sizeof cmd - 8, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof cmd - 8) {
    *status = -1;
    return strdup("command too long");
  }
  strcat(cmd, " 2>&1");
  fflush(NULL);
  FILE *p = popen(cmd, "r");
  if (!p) {
    *status = -1;
    return strdup("popen failed");
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += got;
    if (cap - len < 2) buf = realloc(buf, cap *= 2);
  }
  buf[len] = 0;
  *status = exit_status(pclose(p));
  return buf;
}

char *tu_read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  buf[got] = 0;
  if (size) *size = got;
  return buf;
}

void tu_write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

double tu_rel_err(const float *a, const float *b, int64_t n) {
  double maxdiff = 0, maxref = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (d > maxdiff || isnan(d)) maxdiff = isnan(d) ? INFINITY : d;
    if (fabs((double)b[i]) > maxref) maxref = fabs((double)b[i]);
  }
  return maxdiff / (maxref > 1e-30 ? maxref : 1e-30);
}

const char *tu_dalc(void) {
  const char *d = getenv("DALC");
  return d && *d ? d : "build/dalc";
}

int tu_run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
