/* run_main.c — rt_main inside a test, output captured (see run_main.h). */
#include "tests/run_main.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/util.h"

int tu_run_main(RtProgram *p, char **out, char **err, const char *fmt, ...) {
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  char *argv[64];
  int argc = 0;
  argv[argc++] = "fake";
  for (char *t = strtok(line, " "); t && argc < 63; t = strtok(NULL, " ")) argv[argc++] = t;
  argv[argc] = NULL;
  bool one = out && out == err;
  char *po = tu_path("main.out"), *pe = tu_path("main.err");
  fflush(stdout);
  fflush(stderr);
  int save1 = dup(1), save2 = dup(2);
  FILE *fo = fopen(po, "w"), *fe = one ? fo : fopen(pe, "w");
  dup2(fileno(fo), 1);
  dup2(fileno(fe), 2);
  int rc = rt_main(p, argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(save1, 1);
  dup2(save2, 2);
  close(save1);
  close(save2);
  fclose(fo);
  if (!one) fclose(fe);
  char *o = tu_read_file(po, NULL), *x = one ? NULL : tu_read_file(pe, NULL);
  if (out) *out = o;
  else free(o);
  if (err && !one) *err = x;
  else free(x);
  free(po);
  free(pe);
  return rc;
}
