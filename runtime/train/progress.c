/* progress.c — the training progress line (see progress.h). */
#include "runtime/train/progress.h"

#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void rt_progress_begin(RtProgress *pr, FILE *out, uint64_t first, uint64_t total, bool quiet) {
  *pr = (RtProgress){.out = out, .quiet = quiet, .first = first, .total = total};
  pr->tty = isatty(fileno(out));
  pr->t0 = now_s();
  uint64_t n = total > first ? total - first : 1;
  pr->every = n >= 10 ? (n + 9) / 10 : 1;
  pr->next = first;
}

/* "1:02:03" or "2:03". */
static void fmt_duration(double s, char *buf, size_t size) {
  if (!(s >= 0) || s > 1e8) {
    snprintf(buf, size, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

void rt_progress_step(RtProgress *pr, uint64_t step, double loss) {
  pr->avg = step == pr->first ? loss : 0.9 * pr->avg + 0.1 * loss;
  if (pr->quiet) return;
  double t = now_s();
  bool last = step + 1 >= pr->total;
  if (pr->tty ? !last && t - pr->last_draw < 0.1 && step != pr->first : !last && step < pr->next) return;
  pr->last_draw = t;
  while (pr->next <= step) pr->next += pr->every;
  uint64_t done = step + 1 - pr->first;
  double rate = t > pr->t0 ? (double)done / (t - pr->t0) : 0;
  char eta[32];
  fmt_duration(rate > 0 ? (double)(pr->total - step - 1) / rate : -1, eta, sizeof eta);
  fprintf(pr->out, "%sstep %llu/%llu  loss %.4g  avg %.4g  %s%s%s%.3g steps/s  ETA %s%s", pr->tty ? "\r" : "",
          (unsigned long long)(step + 1), (unsigned long long)pr->total, loss, pr->avg, pr->note[0] ? "[" : "",
          pr->note, pr->note[0] ? "]  " : "", rate, eta, pr->tty ? "\033[K" : "\n");
  fflush(pr->out);
  pr->drawn = pr->tty;
}

void rt_progress_note(RtProgress *pr, const char *text) { snprintf(pr->note, sizeof pr->note, "%s", text); }

void rt_progress_end(RtProgress *pr) {
  if (pr->drawn) fputc('\n', pr->out);
  pr->drawn = false;
  fflush(pr->out);
}

double rt_progress_avg(const RtProgress *pr) { return pr->avg; }
