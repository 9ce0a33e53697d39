/* exe_bench_compare.c — `bench ... --compare FLAGS FLAGS ...`: one entry
 * compiled under several variants of compiler flags and timed side by
 * side (the fusion experiments of docs/writing-a-pass.md section 8).
 *
 * Each variant is the host's compile flags followed by its own argument
 * ('' is the host's flags alone), compiled by the compiler that hosts the
 * program (rt_exe_set_compiler: dalc run FILE.dal -- bench ... --compare).
 * Every variant starts from the same initial state (--seed) and gets the
 * same batches. The steps are interleaved: warm-up round w runs step w of
 * every variant, timed round r step W + r of every variant, each round
 * starting one variant later than the one before, so a slow spell of the
 * machine hits every variant alike. --max-seconds ends the timed rounds
 * early (after one at least).
 *
 * Reported per variant: ms/step (median, min-max over the timed rounds)
 * and its ratio to the first variant's median (above 1: slower), the
 * plan's fused kernels and code-running steps, its arena and the bytes it
 * moves per step (rt_exe_plan_figures), and the last loss of a training
 * entry (the variants compute the same function, so the losses agree to
 * rounding). --json: one object with a "variants" array instead. The
 * process's peak memory is not reported: the variants share one process.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/exe/exe_bench_impl.h"

static RtExeCompiler host_compiler;
static bool have_compiler;

void rt_exe_set_compiler(const RtExeCompiler *c) {
  have_compiler = c != NULL;
  if (c) host_compiler = *c;
}

const RtExeCompiler *rt_exe_compiler(void) { return have_compiler ? &host_compiler : NULL; }

/* Bytes of a GEMM operand: rows x cols, once or per batch. */
static int64_t gemm_bytes(int64_t rows, int64_t cols, int64_t stride, int batch) {
  return rows * cols * (stride ? batch : 1) * (int64_t)sizeof(float);
}

void rt_exe_plan_figures(const RtPlan *pl, RtExePlanFigures *f) {
  f->steps = 0;
  f->arena_bytes = pl->arena_bytes;
  f->bytes_moved = 0;
  /* seen[k * nbuf + b]: kernel function k's steps have counted buffer b */
  bool *seen = calloc((size_t)pl->nkernel * (size_t)pl->nbuf + 1, sizeof *seen);
  for (int i = 0; i < pl->nstep; i++) {
    const RtStep *s = &pl->step[i];
    if (s->kind == RT_STEP_GEMM) {
      const RtGemm *g = &s->gemm;
      f->steps++;
      f->bytes_moved += gemm_bytes(g->m, g->k, g->stride_a, g->batch) + gemm_bytes(g->k, g->n, g->stride_b, g->batch) +
                        gemm_bytes(g->m, g->n, g->stride_c, g->batch) * (g->beta != 0 ? 2 : 1);
    } else if (s->kind == RT_STEP_COPY) {
      f->bytes_moved += 2 * pl->buf[s->arg[0]].bytes;
    } else {
      f->steps++;
      for (int a = 0; a < s->narg; a++) {
        int b = s->arg[a];
        bool *mark = seen ? &seen[(size_t)s->kernel * (size_t)pl->nbuf + (size_t)b] : NULL;
        if (mark && *mark) continue;
        if (mark) *mark = true;
        f->bytes_moved += pl->buf[b].bytes;
      }
    }
  }
  free(seen);
}

typedef struct {
  const char *flags;
  RtProgram *p;
  int entry;
  RtExePlanFigures fig;
  double *ms;   /* the timed steps' wall times */
  int n;
  double loss;  /* the last step's (NaN for an inference entry) */
  double median, min, max;
} Variant;

static void summarise(Variant *v) {
  qsort(v->ms, (size_t)v->n, sizeof *v->ms, rt_bench_cmp_double);
  v->median = v->n % 2 ? v->ms[v->n / 2] : 0.5 * (v->ms[v->n / 2 - 1] + v->ms[v->n / 2]);
  v->min = v->ms[0];
  v->max = v->ms[v->n - 1];
}

static double mib(int64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* What the variant's flags say, for the table ('' is the default). */
static const char *label(const Variant *v) { return *v->flags ? v->flags : "(default)"; }

static void report_text(const RtProgram *host, const RtEntrySpec *en, const Variant *v, int n, int64_t batch,
                        uint64_t warmup, int rounds) {
  printf("bench --compare %s (%s), entry %s%s, batch %lld: %llu warm-up + %d timed rounds, variants interleaved\n",
         host->model, host->config, en->name, en->train ? " [train]" : "", (long long)batch,
         (unsigned long long)warmup, rounds);
  int w = 9;
  for (int i = 0; i < n; i++)
    if ((int)strlen(label(&v[i])) > w) w = (int)strlen(label(&v[i]));
  printf("  %-*s  %28s  %7s  %7s  %6s  %9s  %10s  %s\n", w, "variant", "ms/step median (min-max)", "x first", "kernels",
         "steps", "arena MiB", "moved MiB", en->train ? "loss" : "");
  for (int i = 0; i < n; i++) {
    char ms[64];
    snprintf(ms, sizeof ms, "%.2f (%.2f-%.2f)", v[i].median, v[i].min, v[i].max);
    printf("  %-*s  %28s  %7.3f  %7d  %6d  %9.2f  %10.2f", w, label(&v[i]), ms, v[i].median / v[0].median,
           v[i].fig.kernels, v[i].fig.steps, mib(v[i].fig.arena_bytes), mib(v[i].fig.bytes_moved));
    if (en->train) printf("  %.6g", v[i].loss);
    putchar('\n');
  }
  printf("  (moved MiB: bytes read + written per step by the plan's kernels, GEMMs and copies, an estimate)\n");
}

static void json_number(cJSON *o, const char *key, double x) {
  if (isfinite(x)) cJSON_AddNumberToObject(o, key, x);
  else cJSON_AddNullToObject(o, key);
}

static int report_json(const RtProgram *host, const RtEntrySpec *en, const Variant *v, int n, int64_t batch,
                       uint64_t warmup, int rounds, RtErr *e) {
  cJSON *o = cJSON_CreateObject(), *list = cJSON_CreateArray();
  if (!o || !list) {
    cJSON_Delete(o);
    cJSON_Delete(list);
    return rt_err(e, "out of memory");
  }
  rt_bench_json_head(o, "dal-compare", host, en, batch, (int)warmup);
  cJSON_AddNumberToObject(o, "rounds", rounds);
  for (int i = 0; i < n; i++) {
    cJSON *x = cJSON_CreateObject();
    if (!x) break;
    cJSON_AddStringToObject(x, "flags", v[i].flags);
    json_number(x, "ms_median", v[i].median);
    json_number(x, "ms_min", v[i].min);
    json_number(x, "ms_max", v[i].max);
    json_number(x, "ratio", v[i].median / v[0].median);
    cJSON_AddNumberToObject(x, "kernels", v[i].fig.kernels);
    cJSON_AddNumberToObject(x, "steps", v[i].fig.steps);
    cJSON_AddNumberToObject(x, "arena_bytes", (double)v[i].fig.arena_bytes);
    cJSON_AddNumberToObject(x, "bytes_moved", (double)v[i].fig.bytes_moved);
    json_number(x, "loss", v[i].loss);
    cJSON_AddItemToArray(list, x);
  }
  cJSON_AddItemToObject(o, "variants", list);
  char *text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!text) return rt_err(e, "out of memory");
  printf("%s\n", text);
  free(text);
  return 0;
}

/* One round: step s of every variant, starting with variant 'first'.
 * Timed rounds store each variant's time at index 'slot' (< 0: warm-up). */
static int round_of(Variant *v, int n, int first, const RtBenchArgs *a, RtTensor **in, RtDataset *data,
                    RtTensor **out, uint64_t s, int slot, RtErr *e) {
  for (int k = 0; k < n; k++) {
    Variant *x = &v[(first + k) % n];
    double ms, cpu;
    if (rt_bench_one_step(x->p, x->entry, a, in, data, out, s, &ms, &cpu, &x->loss, e)) {
      char why[sizeof e->msg];
      snprintf(why, sizeof why, "%s", e->msg);
      return rt_err(e, "variant '%s': %s", x->flags, why);
    }
    fprintf(stderr, "%s %d, %s: %.3f ms\n", slot < 0 ? "warm-up" : "round", slot < 0 ? (int)s + 1 : slot + 1,
            label(x), ms);
    if (slot >= 0) x->ms[slot] = ms, x->n = slot + 1;
  }
  return 0;
}

int rt_bench_compare(RtProgram *host, const RtBenchArgs *a, RtErr *e) {
  const RtExeCompiler *c = rt_exe_compiler();
  if (!c)
    return rt_err(e, "bench --compare compiles the model again under each variant's flags, and this executable was "
                     "built ahead of time without the compiler: run it from the source instead, as "
                     "`dalc run MODEL.dal --config C -- bench [options] --compare FLAGS...`");
  int entry = rt_bench_pick_entry(host, a->fn, e);
  if (entry < 0) return -1;
  const RtEntrySpec *hen = &host->entry[entry];
  int n = a->ncompare, rc = -1;
  Variant *v = calloc((size_t)n, sizeof *v);
  RtTensor **in = calloc((size_t)hen->ninput + 1, sizeof *in);
  RtTensor **out = calloc((size_t)hen->noutput + 1, sizeof *out);
  RtDataset *data = NULL;
  if (!v || !in || !out) {
    rt_err(e, "out of memory");
    goto done;
  }
  for (int i = 0; i < n; i++) {
    v[i].flags = a->compare[i];
    v[i].loss = NAN;
    if (!(v[i].ms = calloc((size_t)a->steps, sizeof *v[i].ms))) {
      rt_err(e, "out of memory");
      goto done;
    }
    char why[sizeof e->msg];
    if (!(v[i].p = c->compile(c->ctx, v[i].flags, hen->name, &v[i].fig, e))) {
      snprintf(why, sizeof why, "%s", e->msg);
      rt_err(e, "variant '%s': %s", v[i].flags, why);
      goto done;
    }
    v[i].entry = rt_program_entry(v[i].p, hen->name);
    if (v[i].entry < 0) {
      rt_err(e, "variant '%s' has no entry '%s'", v[i].flags, hen->name);
      goto done;
    }
    /* compiling on demand is not a step: it happens before the warm-up */
    if (v[i].p->init(v[i].p, a->seed, e) || rt_program_prepare(v[i].p, v[i].entry, e)) {
      snprintf(why, sizeof why, "%s", e->msg);
      rt_err(e, "variant '%s': %s", v[i].flags, why);
      goto done;
    }
    fprintf(stderr, "variant %d, %s: %d kernels, %d steps, arena %.2f MiB, %.2f MiB moved per step\n", i + 1,
            label(&v[i]), v[i].fig.kernels, v[i].fig.steps, mib(v[i].fig.arena_bytes), mib(v[i].fig.bytes_moved));
  }
  if (rt_bench_prepare_inputs(v[0].p, &v[0].p->entry[v[0].entry], a, in, &data, e)) goto done;
  uint64_t s = 0;
  for (; s < a->warmup; s++)
    if (round_of(v, n, (int)(s % (uint64_t)n), a, in, data, out, s, -1, e)) goto done;
  double budget = a->max_seconds * 1e3, start = rt_bench_now_ms();
  int rounds = 0;
  while ((uint64_t)rounds < a->steps && !(rounds > 0 && budget > 0 && rt_bench_now_ms() - start >= budget)) {
    if (round_of(v, n, (int)((s + (uint64_t)rounds) % (uint64_t)n), a, in, data, out, s + (uint64_t)rounds, rounds, e))
      goto done;
    rounds++;
  }
  for (int i = 0; i < n; i++) summarise(&v[i]);
  int64_t batch = data ? rt_data_batch(data) : 1;
  if (a->json) rc = report_json(host, hen, v, n, batch, a->warmup, rounds, e);
  else {
    report_text(host, hen, v, n, batch, a->warmup, rounds);
    rc = 0;
  }
done:
  for (int i = 0; in && i < hen->ninput; i++) rt_tensor_free(in[i]);
  for (int i = 0; out && i < hen->noutput; i++) rt_tensor_free(out[i]);
  free(in);
  free(out);
  rt_data_free(data);
  for (int i = 0; v && i < n; i++) {
    free(v[i].ms);
    rt_program_free(v[i].p);
  }
  free(v);
  return rc;
}
