/* pipeline.c — the pass registry and the by-name pipeline runner. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "passes/autodiff.h"
#include "passes/passes.h"
#include "passes/simplify.h"

static const Pass passes[] = {
    {"dce", "drop nodes that no output depends on", pass_dce},
    {"grad", "append the gradient of a training entry's loss w.r.t. every parameter; outputs [loss, grad:<param>...]",
     ad_grad_pass},
    {"cse", "merge nodes with the same op, attributes and inputs", pass_cse},
    {"fold", "evaluate ops over constants into constant splats", pass_fold},
    {"algebra", "apply algebraic identities (x*1, x+0, permute/reshape chains...)", pass_algebra},
};

const Pass *pass_list(int *n) {
  *n = (int)(sizeof passes / sizeof passes[0]);
  return passes;
}

const Pass *pass_find(const char *name) {
  for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++)
    if (!strcmp(passes[i].name, name)) return &passes[i];
  return NULL;
}

/* One pass by name, verified afterwards. */
static int run_one(IrGraph *g, const char *name) {
  const Pass *p = pass_find(name);
  if (!p) {
    snprintf(g->error, sizeof g->error, "unknown pass '%s' (dalc --help lists them)", name);
    return -1;
  }
  if (p->run(g)) return -1;
  char why[400];
  if (!ir_verify(g, why, sizeof why)) {
    snprintf(g->error, sizeof g->error, "graph invalid after pass '%s': %s", name, why);
    return -1;
  }
  return 0;
}

int pass_run_pipeline_opts(IrGraph *g, const char *names, const PassRunOptions *o) {
  static const PassRunOptions none;
  if (!o) o = &none;
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", names);
  if (o->stats) pass_print_stats(g, "input", -1, o->stats);
  for (char *save = NULL, *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
    int before = g->n;
    double t0 = pass_now();
    if (run_one(g, name)) return -1;
    if (o->times) {
      char phase[48];
      snprintf(phase, sizeof phase, "pass %s", name);
      pass_times_add(o->times, phase, pass_now() - t0);
    }
    if (o->stats) {
      char label[64];
      snprintf(label, sizeof label, "after %s", name);
      pass_print_stats(g, label, before, o->stats);
    }
    if (o->print_after && (!strcmp(o->print_after, "all") || !strcmp(o->print_after, name))) {
      FILE *out = o->print_out ? o->print_out : stderr;
      fprintf(out, "; IR after pass '%s'\n", name);
      ir_print(g, out);
    }
  }
  return 0;
}

int pass_run_pipeline(IrGraph *g, const char *names) { return pass_run_pipeline_opts(g, names, NULL); }

double pass_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void pass_times_add(PassTimes *t, const char *name, double seconds) {
  for (int i = 0; i < t->n; i++)
    if (!strcmp(t->item[i].name, name)) {
      t->item[i].seconds += seconds;
      return;
    }
  if (t->n == (int)(sizeof t->item / sizeof t->item[0])) return; /* full: later phases go unlisted */
  snprintf(t->item[t->n].name, sizeof t->item[t->n].name, "%s", name);
  t->item[t->n++].seconds = seconds;
}

void pass_times_print(const PassTimes *t, FILE *out) {
  double total = 0;
  for (int i = 0; i < t->n; i++) total += t->item[i].seconds;
  fprintf(out, "===-- time per phase --===\n");
  for (int i = 0; i < t->n; i++)
    fprintf(out, "  %9.2f ms  %5.1f%%  %s\n", 1e3 * t->item[i].seconds,
            total > 0 ? 100 * t->item[i].seconds / total : 0, t->item[i].name);
  fprintf(out, "  %9.2f ms  100.0%%  total\n", 1e3 * total);
}
