/* rt_error.h — how runtime functions report failure.
 *
 * Functions that can fail on user input (files, shapes, data) take an
 * RtErr * as their last argument, return 0 on success and -1 on failure,
 * and on failure leave a one-line message in e->msg that names the file or
 * tensor and says what is wrong. e may be NULL (the message is dropped).
 * The runtime never exits on bad input.
 */
#ifndef DAL_RT_ERROR_H
#define DAL_RT_ERROR_H

typedef struct {
  char msg[1024];
} RtErr;

/* printf-style; always returns -1 so callers can `return rt_err(e, ...)`. */
int rt_err(RtErr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
