/* pipeline.c — the pass registry (built-ins plus passes added at run time
 * by pass_register, e.g. from a plugin) and the by-name pipeline runner. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "passes/autodiff.h"
#include "passes/passes.h"
#include "passes/remat.h"
#include "passes/simplify.h"

/* The built-ins first, in this order; pass_register appends after them. */
static const Pass builtin[] = {
    {"dce", "drop nodes that no output depends on", pass_dce},
    {"grad", "append the gradient of a training entry's loss w.r.t. every parameter; outputs [loss, grad:<param>...]",
     ad_grad_pass},
    {"cse", "merge nodes with the same op, attributes and inputs", pass_cse},
    {"fold", "evaluate ops over constants into constant splats", pass_fold},
    {"algebra", "apply algebraic identities (x*1, x+0, permute/reshape chains...)", pass_algebra},
    {"remat", "recompute cheap values after the memory peak instead of keeping them, where that lowers the peak",
     pass_remat},
};
#define NBUILTIN ((int)(sizeof builtin / sizeof builtin[0]))

static Pass registry[PASS_MAX];
static int nregistered; /* 0 until the first use copies the built-ins in */

static void ensure_builtins(void) {
  if (nregistered) return;
  memcpy(registry, builtin, sizeof builtin);
  nregistered = NBUILTIN;
}

const Pass *pass_list(int *n) {
  ensure_builtins();
  *n = nregistered;
  return registry;
}

const Pass *pass_find(const char *name) {
  ensure_builtins();
  for (int i = 0; i < nregistered; i++)
    if (!strcmp(registry[i].name, name)) return &registry[i];
  return NULL;
}

/* 1 to 31 characters of [a-z0-9_], a letter first. */
static bool valid_name(const char *s) {
  size_t len = strlen(s);
  if (len == 0 || len > 31 || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return false;
  return true;
}

int pass_register(const Pass *p, char *why, size_t size) {
  ensure_builtins();
  if (!p || !p->name) {
    snprintf(why, size, "a pass needs a name");
    return -1;
  }
  if (!valid_name(p->name)) {
    snprintf(why, size, "invalid pass name '%s': use 1 to 31 characters of a-z, 0-9 and _, starting with a letter",
             p->name);
    return -1;
  }
  if (!strcmp(p->name, "all")) {
    snprintf(why, size, "invalid pass name 'all': it is reserved (--print-after=all)");
    return -1;
  }
  if (pass_find(p->name)) {
    snprintf(why, size, "a pass named '%s' is already registered", p->name);
    return -1;
  }
  if (!p->run) {
    snprintf(why, size, "pass '%s' has no run function", p->name);
    return -1;
  }
  if (nregistered == PASS_MAX) {
    snprintf(why, size, "cannot register pass '%s': the registry is full (%d passes)", p->name, PASS_MAX);
    return -1;
  }
  registry[nregistered] = *p;
  if (!registry[nregistered].help) registry[nregistered].help = "";
  nregistered++;
  return 0;
}

void pass_registry_reset(void) { nregistered = 0; }

/* One pass by name, verified afterwards. */
static int run_one(IrGraph *g, const char *name) {
  const Pass *p = pass_find(name);
  if (!p) {
    snprintf(g->error, sizeof g->error,
             "unknown pass '%s' (dalc passes lists them; a plugin's passes need its --plugin=FILE.so)", name);
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
