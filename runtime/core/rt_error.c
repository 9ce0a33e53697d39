/* rt_error.c — the runtime's error messages (see rt_error.h). */
#include "runtime/core/rt_error.h"

#include <stdarg.h>
#include <stdio.h>

int rt_err(RtErr *e, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}
