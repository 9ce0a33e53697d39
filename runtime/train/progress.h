/* progress.h — the training progress line on stderr.
 *
 *   step 120/300  loss 0.1234  avg 0.1300  [eval.x 0.1400]  12.3 steps/s  ETA 0:15
 *
 * On a terminal the line is redrawn in place (at most ~10 times a second,
 * and always for the last step); otherwise a line is printed for the first
 * step, about every 10% of the run and for the last step, so logs stay short.
 * "avg" is an exponential moving average of the loss (weight 0.1 on the new
 * value); the bracketed part is the last note given (the latest
 * evaluation), if any. Module prefix: rt_.
 */
#ifndef DAL_RT_PROGRESS_H
#define DAL_RT_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  FILE *out;
  bool tty, quiet;
  uint64_t first, total;    /* steps first .. total-1 are run */
  double t0, last_draw;     /* seconds (monotonic) */
  double avg;               /* smoothed loss */
  uint64_t every, next;     /* non-terminal: a line every 'every' steps; the next one due */
  bool drawn;               /* a terminal line is on screen (needs a newline before other output) */
  char note[64];            /* shown on the line from now on ("" for none) */
} RtProgress;

/* Starts the display for steps first .. total-1 on 'out' (stderr). */
void rt_progress_begin(RtProgress *pr, FILE *out, uint64_t first, uint64_t total, bool quiet);
/* Reports that step 'step' (0-based) ended with 'loss'. */
void rt_progress_step(RtProgress *pr, uint64_t step, double loss);
/* Shows 'text' (cut to fit) on the lines drawn from now on. */
void rt_progress_note(RtProgress *pr, const char *text);
/* Ends the line on a terminal so other messages start on their own. */
void rt_progress_end(RtProgress *pr);
/* The smoothed loss so far. */
double rt_progress_avg(const RtProgress *pr);

#endif
