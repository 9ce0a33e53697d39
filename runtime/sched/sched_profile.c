/* sched_profile.c — DAL_PROFILE=1: the wall time of every step a plan runs,
 * accumulated per step and printed on stderr at exit (see rt_sched.h).
 *
 * A row is one (plan, kind, name) — for kernels the kernel's function name,
 * so chunked repeats and deduplicated kernels add into one row; for GEMMs
 * the step name and the shape, so each shape gets its own GFLOP/s; for
 * copies the reason. A summary by category (kernel names without their
 * "prefix + kN_" head, GEMM names, "copy") comes first, then the rows, each
 * table sorted by total time. Rows are few (one per distinct kernel or
 * GEMM shape); a hash of the row's key finds it. Rows copy their names, so
 * a plan may be freed before exit. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sched/rt_sched.h"

typedef struct {
  uint64_t hash;      /* of the key: plan name, kind, name, GEMM shape */
  RtStepKind kind;
  char plan[48], name[64];
  char label[128];    /* the row's text */
  char category[64];
  RtGemm gemm;
  long calls;
  double ns;
  double flops;       /* GEMM: multiply-adds x 2 over all calls */
} ProfRow;

static pthread_mutex_t prof_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int prof_state = -1; /* -1: DAL_PROFILE not read yet, 0 off, 1 on */
static ProfRow *rows;
static int nrow, caprow;
static int *slot;  /* open addressing: row index + 1, 0 = empty; nslot a power of 2 */
static int nslot;
static double run_ns;
static long nrun;

/* The category of a kernel name: "prefix" + "k" + digits + "_" dropped. */
static void kernel_category(const char *name, char *out, size_t size) {
  const char *s = name, *p;
  for (p = name; *p; p++)
    if (*p == 'k' && isdigit((unsigned char)p[1])) {
      const char *q = p + 1;
      while (isdigit((unsigned char)*q)) q++;
      if (*q == '_') s = q + 1;
    }
  snprintf(out, size, "%s", s);
}

static int by_ns(const void *a, const void *b) {
  double x = ((const ProfRow *)a)->ns, y = ((const ProfRow *)b)->ns;
  return x < y ? 1 : x > y ? -1 : 0;
}

static void print_row(FILE *f, const char *label, const char *kind, long calls, double ns, double flops,
                      double total) {
  fprintf(f, "  %10.1f %5.1f%% %8ld %9.3f", ns / 1e6, total > 0 ? 100 * ns / total : 0, calls,
          ns / 1e6 / (double)calls);
  if (flops > 0) fprintf(f, " %7.1f", flops / ns);
  else fprintf(f, " %7s", "");
  fprintf(f, "  %-6s %s\n", kind, label);
}

static const char *kind_name(RtStepKind k) {
  return k == RT_STEP_KERNEL ? "kernel" : k == RT_STEP_GEMM ? "gemm" : "copy";
}

/* Forgets every row and run (under prof_mu). */
static void clear_locked(void) {
  free(rows);
  free(slot);
  rows = NULL;
  slot = NULL;
  nrow = caprow = nslot = 0;
  nrun = 0;
  run_ns = 0;
}

void rt_prof_report(FILE *f) {
  pthread_mutex_lock(&prof_mu);
  if (nrow == 0) {
    fprintf(f, "DAL_PROFILE: no plan steps ran\n");
    pthread_mutex_unlock(&prof_mu);
    return;
  }
  double total = 0;
  for (int i = 0; i < nrow; i++) total += rows[i].ns;
  fprintf(f, "\nDAL_PROFILE: %ld plan run(s), %.1f ms in plans, %.1f ms in steps (%d rows)\n", nrun, run_ns / 1e6,
          total / 1e6, nrow);
  fprintf(f, "  %10s %6s %8s %9s %7s  %s\n", "total ms", "share", "calls", "ms/call", "GFLOP/s", "kind   step");
  /* the summary: rows merged by (kind, category) */
  ProfRow *cat = calloc((size_t)nrow + 1, sizeof *cat);
  int ncat = 0;
  for (int i = 0; i < nrow; i++) {
    int c = 0;
    while (c < ncat && !(cat[c].kind == rows[i].kind && strcmp(cat[c].category, rows[i].category) == 0)) c++;
    if (c == ncat) {
      cat[ncat].kind = rows[i].kind;
      memcpy(cat[ncat].category, rows[i].category, sizeof cat->category);
      ncat++;
    }
    cat[c].calls += rows[i].calls;
    cat[c].ns += rows[i].ns;
    cat[c].flops += rows[i].flops;
  }
  qsort(cat, (size_t)ncat, sizeof *cat, by_ns);
  fprintf(f, "  by category:\n");
  for (int c = 0; c < ncat; c++)
    print_row(f, cat[c].category, kind_name(cat[c].kind), cat[c].calls, cat[c].ns, cat[c].flops, total);
  free(cat);
  qsort(rows, (size_t)nrow, sizeof *rows, by_ns);
  fprintf(f, "  by step:\n");
  for (int i = 0; i < nrow; i++)
    print_row(f, rows[i].label, kind_name(rows[i].kind), rows[i].calls, rows[i].ns, rows[i].flops, total);
  clear_locked();
  pthread_mutex_unlock(&prof_mu);
}

void rt_prof_clear(void) {
  pthread_mutex_lock(&prof_mu);
  clear_locked();
  pthread_mutex_unlock(&prof_mu);
}

static void report_at_exit(void) { rt_prof_report(stderr); }

/* Registers the exit report once (under prof_mu). */
static void ensure_exit_report(void) {
  static int registered;
  if (!registered) atexit(report_at_exit);
  registered = 1;
}

void rt_sched_set_profile(int on) {
  pthread_mutex_lock(&prof_mu);
  if (on) ensure_exit_report();
  atomic_store(&prof_state, on != 0);
  pthread_mutex_unlock(&prof_mu);
}

int rt_prof_enabled(void) {
  int s = atomic_load(&prof_state);
  if (s >= 0) return s;
  pthread_mutex_lock(&prof_mu);
  if (prof_state < 0) {
    const char *env = getenv("DAL_PROFILE");
    int on = env && *env && strcmp(env, "0") != 0;
    if (on) ensure_exit_report();
    atomic_store(&prof_state, on);
  }
  pthread_mutex_unlock(&prof_mu);
  return atomic_load(&prof_state);
}

static int same_gemm(const RtGemm *a, const RtGemm *b) {
  return a->batch == b->batch && a->m == b->m && a->n == b->n && a->k == b->k && a->trans_a == b->trans_a &&
         a->trans_b == b->trans_b && a->beta == b->beta;
}

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *c = data;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

static uint64_t step_hash(const char *plan, RtStepKind kind, const char *name, const RtGemm *g) {
  uint64_t h = fnv(14695981039346656037ull, plan, strlen(plan));
  h = fnv(h, &kind, sizeof kind);
  h = fnv(h, name, strlen(name));
  if (kind == RT_STEP_GEMM) {
    int d[6] = {g->batch, g->m, g->n, g->k, g->trans_a, g->trans_b};
    h = fnv(h, d, sizeof d);
  }
  return h;
}

static int row_matches(const ProfRow *r, uint64_t h, const char *plan, const RtStep *st, const char *name) {
  return r->hash == h && r->kind == st->kind && strncmp(r->plan, plan, sizeof r->plan - 1) == 0 &&
         strncmp(r->name, name, sizeof r->name - 1) == 0 &&
         (st->kind != RT_STEP_GEMM || same_gemm(&r->gemm, &st->gemm));
}

/* Doubles the hash table (or makes its first 256 slots). */
static void grow_slots(void) {
  free(slot);
  nslot = nslot ? 2 * nslot : 256;
  slot = calloc((size_t)nslot, sizeof *slot);
  for (int i = 0; i < nrow; i++) {
    size_t at = rows[i].hash & (size_t)(nslot - 1);
    while (slot[at]) at = (at + 1) & (size_t)(nslot - 1);
    slot[at] = i + 1;
  }
}

/* A new row for step st of plan p. */
static ProfRow *new_row(const RtPlan *p, const RtStep *st, const char *name, uint64_t h) {
  if (nrow == caprow) {
    caprow = caprow ? 2 * caprow : 64;
    rows = realloc(rows, (size_t)caprow * sizeof *rows);
  }
  ProfRow *r = &rows[nrow++];
  memset(r, 0, sizeof *r);
  const char *pn = p->name ? p->name : "?";
  r->hash = h;
  r->kind = st->kind;
  snprintf(r->plan, sizeof r->plan, "%s", pn);
  snprintf(r->name, sizeof r->name, "%s", name);
  if (st->kind == RT_STEP_GEMM) {
    const RtGemm *g = &st->gemm;
    r->gemm = *g;
    snprintf(r->label, sizeof r->label, "%s: %s %dx%dx%d%s%s x%d%s", pn, name, g->m, g->n, g->k,
             g->trans_a ? " ta" : "", g->trans_b ? " tb" : "", g->batch, g->beta != 0 ? " +=" : "");
    snprintf(r->category, sizeof r->category, "%s", name);
  } else if (st->kind == RT_STEP_KERNEL) {
    snprintf(r->label, sizeof r->label, "%s: %s [%lld]", pn, name, (long long)st->range);
    kernel_category(name, r->category, sizeof r->category);
  } else {
    snprintf(r->label, sizeof r->label, "%s: copy %s (%lld bytes)", pn, name, (long long)p->buf[st->arg[0]].bytes);
    snprintf(r->category, sizeof r->category, "copy");
  }
  return r;
}

void rt_prof_step(const RtPlan *p, int s, double ns) {
  const RtStep *st = &p->step[s];
  const char *name = st->kind == RT_STEP_KERNEL && p->kernel_name ? p->kernel_name[st->kernel] : st->name;
  const char *pn = p->name ? p->name : "?";
  if (!name) name = "?";
  uint64_t h = step_hash(pn, st->kind, name, &st->gemm);
  pthread_mutex_lock(&prof_mu);
  if (2 * (nrow + 1) > nslot) grow_slots();
  size_t at = h & (size_t)(nslot - 1);
  while (slot[at] && !row_matches(&rows[slot[at] - 1], h, pn, st, name)) at = (at + 1) & (size_t)(nslot - 1);
  if (!slot[at]) {
    new_row(p, st, name, h);
    slot[at] = nrow;
  }
  ProfRow *r = &rows[slot[at] - 1];
  r->calls++;
  r->ns += ns;
  if (st->kind == RT_STEP_GEMM) r->flops += 2.0 * st->gemm.m * st->gemm.n * (double)st->gemm.k * st->gemm.batch;
  pthread_mutex_unlock(&prof_mu);
}

void rt_prof_run(double ns) {
  pthread_mutex_lock(&prof_mu);
  nrun++;
  run_ns += ns;
  pthread_mutex_unlock(&prof_mu);
}
