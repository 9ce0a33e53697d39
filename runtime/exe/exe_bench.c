/* exe_bench.c — `bench`: how fast one entry of the program runs.
 *
 *   bench [--fn NAME] [--steps N] [--warmup W] [--data SPEC (data.h)]
 *         [--tokenizer TOK.json] [--set NAME=V]... [--seed S] [--max-seconds T] [--json]
 *         [--compare FLAGS FLAGS ...]
 *
 * Initialises the state from the seed, then runs W warm-up steps (default
 * 2) and N timed steps (default 10) of the entry (default: the training
 * entry, as `train` picks it; --fn names any entry, inference entries
 * included); --max-seconds cuts both short (see measure()). Step s gets the
 * dataset's batch of step s (data.h; default "shapes"; with --tokenizer its
 * captions' ids fill the input "text"), the model's
 * learning rate for "opt.lr", and --set values for the other scalar
 * inputs; the noise of step s is drawn for (seed, s) as in training. Only
 * the entry's run is timed: filling the batch and freeing the outputs are
 * not.
 *
 * Reported: milliseconds per step (median, mean, min, max over the timed
 * steps), throughput, the cores kept busy (process CPU time / wall time over
 * the timed steps), the last loss of a training entry, and the process's
 * peak resident memory (VmHWM of /proc/self/status: the whole process,
 * compiler included when a compiler hosts the program). Throughput counts
 *   images/s  when an input or output is f32 [B, 3, H, W]: B per step;
 *   tokens/s  otherwise, when there are i32 inputs of rank >= 2: all their
 *             elements per step (the GPT's B x (Lt + g*g));
 *   examples/s otherwise: dim 0 of the first non-scalar input.
 * With DAL_PROFILE set, the profile printed at exit covers the timed steps
 * only (it is cleared after the warm-up).
 * --json prints one JSON object on stdout instead of the text summary;
 * the per-step lines always go to stderr. A non-finite training loss is an
 * error (the timing of a broken step means nothing).
 *
 * --compare (the rest of the command line, one argument per variant of
 * compiler flags) times the entry compiled under each variant instead,
 * side by side: exe_bench_compare.c. It needs the compiler that hosts the
 * program (dalc run FILE.dal -- bench --compare ...).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "runtime/data/data.h"
#include "runtime/exe/exe.h"
#include "runtime/exe/exe_bench_impl.h"
#include "runtime/sched/rt_sched.h"

/* What one step counts for the throughput. */
typedef struct {
  const char *unit; /* "images", "tokens", "examples" */
  int64_t per_step;
} Work;

/* "NAME=V" of --set. */
static int add_set(RtBenchArgs *a, const char *arg, RtErr *e) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || eq - arg >= (long)sizeof a->set[0].name)
    return rt_err(e, "--set needs NAME=VALUE, got '%s'", arg);
  if (a->nset == RT_BENCH_MAX_SETS) return rt_err(e, "too many --set flags (at most %d)", RT_BENCH_MAX_SETS);
  RtBenchSet *s = &a->set[a->nset];
  memset(s->name, 0, sizeof s->name);
  memcpy(s->name, arg, (size_t)(eq - arg));
  for (int i = 0; i < a->nset; i++)
    if (strcmp(a->set[i].name, s->name) == 0) return rt_err(e, "input '%s' is given twice by --set", s->name);
  if (rt_exe_f64("--set", eq + 1, &s->value, e)) return -1;
  a->nset++;
  return 0;
}

static int parse(int argc, char **argv, RtBenchArgs *a, RtErr *e) {
  memset(a, 0, sizeof *a);
  a->steps = 10;
  a->warmup = 2;
  const RtExeOpt opts[] = {{"--json", .on = &a->json},
                           {"--steps", .num = &a->steps, .lo = 1, .hi = 1000000},
                           {"--warmup", .num = &a->warmup, .lo = 0, .hi = 1000000},
                           {"--fn", .str = &a->fn},
                           {"--data", .str = &a->data},
                           {"--tokenizer", .str = &a->tokenizer},
                           {"--seed", .num = &a->seed}};
  for (int i = 0; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "--compare") == 0) {
      /* the rest of the command line: one argument per variant */
      a->compare = argv + i + 1;
      a->ncompare = argc - i - 1;
      if (a->ncompare < 1)
        return rt_err(e, "--compare needs at least one variant: the compiler flags of each as one argument "
                         "('' is the default), e.g. --compare '' -fno-fuse '--fuse-rule=-epilogue'");
      if (a->ncompare > RT_BENCH_MAX_VARIANTS)
        return rt_err(e, "--compare takes at most %d variants, got %d", RT_BENCH_MAX_VARIANTS, a->ncompare);
      break;
    }
    int m = rt_exe_opts(argc, argv, &i, opts, (int)(sizeof opts / sizeof *opts), e);
    if (m < 0) return -1;
    if (m) continue;
    if ((m = rt_exe_flag(argc, argv, &i, "--set", &v, e))) {
      if (m < 0 || add_set(a, v, e)) return -1;
    } else if ((m = rt_exe_flag(argc, argv, &i, "--max-seconds", &v, e))) {
      if (m < 0 || rt_exe_f64("--max-seconds", v, &a->max_seconds, e)) return -1;
      if (a->max_seconds < 0) return rt_err(e, "--max-seconds must not be negative, got '%s'", v);
    } else {
      return rt_err(e,
                    "bench: unknown option '%s' (options: --fn NAME --steps N --warmup W --data SPEC "
                    "--tokenizer TOK.json --set NAME=V --seed S --max-seconds T --json --compare FLAGS...)",
                    argv[i]);
    }
  }
  return 0;
}

static bool is_scalar(const RtArgSpec *a) {
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != 1) return false;
  return true;
}

static bool is_image(const RtArgSpec *a) { return a->dtype == RT_F32 && a->rank == 4 && a->dim[1] == 3; }

/* The entry to time: --fn, else the training entry `train` would use. */
int rt_bench_pick_entry(const RtProgram *p, const char *fn, RtErr *e) {
  if (!fn) return rt_exe_train_entry(p, NULL, e);
  int i = rt_program_entry(p, fn);
  if (i >= 0) return i;
  char list[512] = "";
  for (int k = 0; k < p->nentry; k++) {
    size_t at = strlen(list);
    snprintf(list + at, sizeof list - at, "%s%s", k ? ", " : "", p->entry[k].name);
  }
  return rt_err(e, "%s has no entry '%s' (its entries: %s)", p->model, fn, list);
}

static Work work_of(const RtEntrySpec *en) {
  for (int i = 0; i < en->ninput; i++)
    if (is_image(&en->input[i])) return (Work){"images", en->input[i].dim[0]};
  for (int i = 0; i < en->noutput; i++)
    if (is_image(&en->output[i])) return (Work){"images", en->output[i].dim[0]};
  int64_t tokens = 0;
  for (int i = 0; i < en->ninput; i++) {
    const RtArgSpec *a = &en->input[i];
    if (a->dtype != RT_I32 || a->rank < 2) continue;
    int64_t n = 1;
    for (int d = 0; d < a->rank; d++) n *= a->dim[d];
    tokens += n;
  }
  if (tokens > 0) return (Work){"tokens", tokens};
  for (int i = 0; i < en->ninput; i++)
    if (!is_scalar(&en->input[i])) return (Work){"examples", en->input[i].rank ? en->input[i].dim[0] : 1};
  return (Work){"examples", 1};
}

/* Allocates the inputs and fills the constant ones (opt.lr, --set); opens
 * the dataset for the others. */
int rt_bench_prepare_inputs(RtProgram *p, const RtEntrySpec *en, const RtBenchArgs *a, RtTensor **in,
                          RtDataset **data, RtErr *e) {
  char buf[256];
  bool needs_data = a->data != NULL;
  for (int i = 0; i < en->ninput; i++) {
    in[i] = rt_tensor_new(en->input[i].dtype, en->input[i].rank, en->input[i].dim, e);
    if (!in[i]) return -1;
    needs_data |= !is_scalar(&en->input[i]);
  }
  const char *spec = a->data ? a->data : "shapes";
  if (needs_data) {
    RtErr de;
    *data = rt_data_open(spec, en, a->seed, &de);
    if (!*data)
      return rt_err(e, "%s%s", de.msg, a->data ? "" : " (choose the inputs with --data npy:NAME=FILE.npy,...)");
    if (a->tokenizer && rt_data_set_tokenizer(*data, a->tokenizer, e)) return -1;
  }
  for (int k = 0; k < a->nset; k++) {
    int i = rt_entry_input(en, a->set[k].name);
    if (i < 0) {
      char names[512] = "";
      for (int j = 0; j < en->ninput; j++) {
        size_t at = strlen(names);
        snprintf(names + at, sizeof names - at, "%s%s", j ? ", " : "", en->input[j].name);
      }
      return rt_err(e, "--set %s: entry '%s' has no input '%s' (its inputs: %s)", a->set[k].name, en->name,
                    a->set[k].name, names);
    }
    if (!is_scalar(&en->input[i]))
      return rt_err(e, "--set %s: input %s is not a scalar", a->set[k].name,
                    rt_exe_arg_str(&en->input[i], buf, sizeof buf));
    if (*data && rt_data_fills(*data, i))
      return rt_err(e, "--set %s: input '%s' comes from the dataset", a->set[k].name, a->set[k].name);
  }
  for (int i = 0; i < en->ninput; i++) {
    const RtArgSpec *s = &en->input[i];
    if (*data && rt_data_fills(*data, i)) continue;
    double v = p->lr;
    int k = 0;
    while (k < a->nset && strcmp(a->set[k].name, s->name) != 0) k++;
    if (k < a->nset) v = a->set[k].value;
    else if (!(strcmp(s->name, RT_LR_INPUT) == 0 && is_scalar(s))) {
      if (is_scalar(s))
        return rt_err(e, "input %s of entry '%s' has no value: give --set %s=VALUE", rt_exe_arg_str(s, buf, sizeof buf),
                      en->name, s->name);
      return rt_err(e, "input %s of entry '%s' is not filled by dataset '%s': choose a --data that provides it "
                    "(e.g. npy:%s=FILE.npy)", rt_exe_arg_str(s, buf, sizeof buf), en->name, spec, s->name);
    }
    if (in[i]->dtype == RT_I32) rt_i32(in[i])[0] = (int32_t)llround(v);
    else rt_f32(in[i])[0] = (float)v;
  }
  return 0;
}

double rt_bench_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* User + system CPU time of the whole process (every thread), in ms. */
static double cpu_ms(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru)) return NAN;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-3;
}

/* VmHWM of /proc/self/status in KiB, or -1 where there is none. */
long long rt_exe_peak_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long long kib = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

int rt_bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void rt_bench_json_head(cJSON *o, const char *kind, const RtProgram *p, const RtEntrySpec *en, int64_t batch,
                        int warmup) {
  cJSON_AddStringToObject(o, "bench", kind);
  cJSON_AddStringToObject(o, "model", p->model ? p->model : "");
  cJSON_AddStringToObject(o, "config", p->config ? p->config : "");
  cJSON_AddStringToObject(o, "entry", en->name);
  cJSON_AddBoolToObject(o, "train", en->train);
  cJSON_AddNumberToObject(o, "batch", (double)batch);
  cJSON_AddNumberToObject(o, "warmup", (double)warmup);
}

typedef struct {
  double median, mean, min, max; /* ms per step, over the timed steps */
  double busy;                   /* CPU time / wall time over the timed steps */
  double loss;                   /* the last step's (NaN for an inference entry) */
  uint64_t warmup, steps;        /* steps run: warm-up and timed */
  bool cold;                     /* the one timed step was the first step (see the budget) */
} Timing;

/* Runs step s: fills its batch, runs the entry (timed: *ms wall, *cpu CPU
 * time), frees the outputs, checks the loss of a training entry. */
int rt_bench_one_step(RtProgram *p, int entry, const RtBenchArgs *a, RtTensor **in, RtDataset *data, RtTensor **out,
                    uint64_t s, double *ms, double *cpu, double *loss, RtErr *e) {
  const RtEntrySpec *en = &p->entry[entry];
  if (data && rt_data_fill(data, s, in, e)) return -1;
  double c0 = cpu_ms(), t0 = rt_bench_now_ms();
  int rc = p->run(p, entry, in, out, a->seed, s, e);
  *ms = rt_bench_now_ms() - t0;
  *cpu = cpu_ms() - c0;
  if (rc) return -1;
  if (en->train) *loss = rt_f32(out[0])[0];
  for (int k = 0; k < en->noutput; k++) {
    rt_tensor_free(out[k]);
    out[k] = NULL;
  }
  if (en->train && !isfinite(*loss))
    return rt_err(e, "step %llu: the loss of '%s' is %s; no timing reported", (unsigned long long)s, en->name,
                  isnan(*loss) ? "NaN" : *loss > 0 ? "+inf" : "-inf");
  return 0;
}

/* Runs the warm-up and timed steps; fills t from the timed ones.
 *
 * With a budget (--max-seconds T > 0) the run stops early once it has
 * taken T seconds: no more warm-up steps, and no more timed steps once
 * there is one. If the first warm-up step alone took T, it becomes the one
 * timed step, flagged cold: at that speed the one-time costs a warm-up
 * hides are lost in the noise, and another step would only double a run
 * that is already over budget (the reference executor's steps take
 * minutes). */
static int measure(RtProgram *p, int entry, const RtBenchArgs *a, RtTensor **in, RtDataset *data, Timing *t,
                   RtErr *e) {
  const RtEntrySpec *en = &p->entry[entry];
  double *ms = calloc((size_t)a->steps, sizeof *ms);
  RtTensor **out = calloc((size_t)en->noutput + 1, sizeof *out);
  int rc = -1;
  if (!ms || !out) {
    rt_err(e, "out of memory");
    goto done;
  }
  memset(t, 0, sizeof *t);
  t->loss = NAN;
  double budget = a->max_seconds * 1e3, start = rt_bench_now_ms(), sum = 0, cpu_sum = 0, dt, cpu;
  uint64_t s = 0, n = 0;
  while (s < a->warmup) {
    if (rt_bench_one_step(p, entry, a, in, data, out, s, &dt, &cpu, &t->loss, e)) goto done;
    fprintf(stderr, "warm-up %llu/%llu: %.3f ms\n", (unsigned long long)s + 1, (unsigned long long)a->warmup, dt);
    s++;
    if (budget > 0 && rt_bench_now_ms() - start >= budget) {
      if (s == 1) {
        fprintf(stderr, "(over the --max-seconds budget: this first step is the timed one)\n");
        t->cold = true;
        ms[n++] = dt;
        sum += dt;
        cpu_sum += cpu;
      }
      break;
    }
  }
  t->warmup = t->cold ? 0 : s;
  /* the profile times what the median does: the warm-up's one-time costs
   * (first-touch page faults of the arena and the optimizer moments) would
   * otherwise inflate the rows of the kernels that pay them */
  if (t->warmup > 0 && rt_prof_enabled()) rt_prof_clear();
  while (n < a->steps && !(n > 0 && budget > 0 && rt_bench_now_ms() - start >= budget)) {
    if (rt_bench_one_step(p, entry, a, in, data, out, s, &dt, &cpu, &t->loss, e)) goto done;
    fprintf(stderr, "step %llu/%llu: %.3f ms\n", (unsigned long long)n + 1, (unsigned long long)a->steps, dt);
    ms[n++] = dt;
    sum += dt;
    cpu_sum += cpu;
    s++;
  }
  t->steps = n;
  t->busy = sum > 0 ? cpu_sum / sum : NAN;
  t->mean = sum / (double)n;
  qsort(ms, (size_t)n, sizeof *ms, rt_bench_cmp_double);
  t->median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  t->min = ms[0];
  t->max = ms[n - 1];
  rc = 0;
done:
  for (int k = 0; out && k < en->noutput; k++) rt_tensor_free(out[k]);
  free(out);
  free(ms);
  return rc;
}

/* A number, or null for NaN (JSON has no NaN). */
static void json_number(cJSON *o, const char *key, double v) {
  if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
  else cJSON_AddNullToObject(o, key);
}

static int report_json(const RtProgram *p, const RtEntrySpec *en, const RtBenchArgs *a, const Work *w, int64_t batch,
                       const Timing *t, long long rss, RtErr *e) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return rt_err(e, "out of memory");
  rt_bench_json_head(o, "dal", p, en, batch, (int)t->warmup);
  cJSON_AddNumberToObject(o, "steps", (double)t->steps);
  cJSON_AddBoolToObject(o, "cold", t->cold);
  cJSON_AddNumberToObject(o, "max_seconds", a->max_seconds);
  json_number(o, "ms_median", t->median);
  json_number(o, "ms_mean", t->mean);
  json_number(o, "ms_min", t->min);
  json_number(o, "ms_max", t->max);
  cJSON_AddStringToObject(o, "unit", w->unit);
  cJSON_AddNumberToObject(o, "per_step", (double)w->per_step);
  json_number(o, "per_s", t->median > 0 ? (double)w->per_step * 1e3 / t->median : NAN);
  json_number(o, "cores_busy", t->busy);
  json_number(o, "loss", t->loss);
  if (rss >= 0) cJSON_AddNumberToObject(o, "peak_rss_kib", (double)rss);
  else cJSON_AddNullToObject(o, "peak_rss_kib");
  char *text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!text) return rt_err(e, "out of memory");
  printf("%s\n", text);
  free(text);
  return 0;
}

static void report_text(const RtProgram *p, const RtEntrySpec *en, const RtBenchArgs *a, const Work *w, int64_t batch,
                        const Timing *t, long long rss) {
  printf("bench %s (%s), entry %s%s, batch %lld: %llu warm-up + %llu timed steps", p->model, p->config, en->name,
         en->train ? " [train]" : "", (long long)batch, (unsigned long long)t->warmup, (unsigned long long)t->steps);
  if (a->max_seconds > 0) printf(" (budget %g s%s)", a->max_seconds, t->cold ? ", over it: the one step is cold" : "");
  printf("\n");
  printf("  ms/step     median %.3f  mean %.3f  min %.3f  max %.3f\n", t->median, t->mean, t->min, t->max);
  printf("  throughput  %.1f %s/s (%lld %s/step at the median)\n", (double)w->per_step * 1e3 / t->median, w->unit,
         (long long)w->per_step, w->unit);
  printf("  cores busy  %.2f\n", t->busy);
  if (en->train) printf("  loss        %.6g (last step)\n", t->loss);
  if (rss >= 0) printf("  peak RSS    %.1f MiB (VmHWM)\n", (double)rss / 1024.0);
  else printf("  peak RSS    unknown (no /proc/self/status)\n");
}

int rt_exe_bench(RtProgram *p, int argc, char **argv, RtErr *e) {
  RtBenchArgs a;
  if (parse(argc, argv, &a, e)) return -1;
  if (a.ncompare) return rt_bench_compare(p, &a, e);
  int entry = rt_bench_pick_entry(p, a.fn, e);
  if (entry < 0) return -1;
  const RtEntrySpec *en = &p->entry[entry];
  RtTensor **in = calloc((size_t)en->ninput + 1, sizeof *in);
  RtDataset *data = NULL;
  int rc = -1;
  if (!in) {
    rt_err(e, "out of memory");
    goto done;
  }
  /* compiling on demand is not a step: it happens before the warm-up */
  if (p->init(p, a.seed, e) || rt_program_prepare(p, entry, e) || rt_bench_prepare_inputs(p, en, &a, in, &data, e)) goto done;
  Timing t;
  if (measure(p, entry, &a, in, data, &t, e)) goto done;
  long long rss = rt_exe_peak_rss_kib();
  Work w = work_of(en);
  int64_t batch = data ? rt_data_batch(data) : 1;
  if (a.json) rc = report_json(p, en, &a, &w, batch, &t, rss, e);
  else {
    report_text(p, en, &a, &w, batch, &t, rss);
    rc = 0;
  }
done:
  for (int i = 0; in && i < en->ninput; i++) rt_tensor_free(in[i]);
  free(in);
  rt_data_free(data);
  return rc;
}
