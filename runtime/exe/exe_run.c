/* exe_run.c — `run`: one entry function on .npy inputs (or numbers for
 * scalars, or a dataset's batch: --data SPEC [--tokenizer TOK.json] fills
 * the inputs it provides with its batch of --step), with parameters from a
 * safetensors file or the seed's initialisers, and --init files on top
 * (checkpoint.h); outputs go to .npy files and a summary to stdout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/core/numerics.h"
#include "runtime/io/checkpoint.h"
#include "runtime/data/data.h"
#include "runtime/exe/exe.h"
#include "runtime/io/npy.h"

#define MAX_BINDINGS 64

typedef struct {
  char name[128];   /* "" when given as a bare path */
  const char *path; /* file or number */
} Binding;

typedef struct {
  const char *fn, *params, *save_state, *data, *tokenizer;
  uint64_t seed, step;
  Binding in[MAX_BINDINGS], out[MAX_BINDINGS];
  int nin, nout;
  RtInitFrom init;
} RunArgs;

static int add_binding(Binding *b, int *n, const char *flag, const char *v, RtErr *e) {
  if (*n == MAX_BINDINGS) return rt_err(e, "too many %s flags (at most %d)", flag, MAX_BINDINGS);
  const char *eq = strchr(v, '=');
  Binding *nb = &b[*n];
  memset(nb, 0, sizeof *nb);
  nb->path = eq ? eq + 1 : v;
  if (eq && (eq == v || !eq[1] || eq - v >= (long)sizeof nb->name))
    return rt_err(e, "%s needs NAME=FILE, got '%s'", flag, v);
  if (eq) memcpy(nb->name, v, (size_t)(eq - v));
  (*n)++;
  return 0;
}

/* Whether binding b names 'name'. */
static bool names(const Binding *b, const char *name) { return strcmp(b->name, name) == 0; }

/* The index of the argument in spec[0..n) that b names (a bare path: the
 * only one), or -1 with "entry 'E' has no input 'x' (its inputs: a, b)";
 * 'what' is "input" or "output". */
static int bound_index(const char *entry, const RtArgSpec *spec, int n, const char *what, const Binding *b, RtErr *e) {
  for (int i = 0; i < n; i++)
    if (names(b, spec[i].name) || (!b->name[0] && n == 1)) return i;
  char list[512] = "";
  for (int i = 0; i < n; i++) {
    size_t at = strlen(list);
    snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", spec[i].name);
  }
  if (!b->name[0]) /* a bare path: the entry has more than one */
    return rt_err(e, "--%s %s: name the %s: the form is --%s NAME=FILE.npy (the %ss of '%s': %s)",
                  what[0] == 'i' ? "in" : "out", b->path, what, what[0] == 'i' ? "in" : "out", what, entry, list);
  return rt_err(e, "entry '%s' has no %s '%s' (its %ss: %s)", entry, what, b->name, what, list);
}

/* Every binding of b[0..n) names an argument of spec[0..nspec), each a different one. */
static int check_bindings(const char *entry, const RtArgSpec *spec, int nspec, const char *what, const Binding *b,
                          int n, RtErr *e) {
  for (int k = 0; k < n; k++) {
    int at = bound_index(entry, spec, nspec, what, &b[k], e);
    if (at < 0) return -1;
    for (int j = 0; j < k; j++)
      if (bound_index(entry, spec, nspec, what, &b[j], e) == at)
        return rt_err(e, "--%s: two values for %s '%s' ('%s' and '%s')", what[0] == 'i' ? "in" : "out", what,
                      spec[at].name, b[j].path, b[k].path);
  }
  return 0;
}

static int parse(int argc, char **argv, RunArgs *a, RtErr *e) {
  memset(a, 0, sizeof *a);
  const RtExeOpt opts[] = {{"--fn", .str = &a->fn},
                           {"--params", .str = &a->params},
                           {"--data", .str = &a->data},
                           {"--tokenizer", .str = &a->tokenizer},
                           {"--save-state", .str = &a->save_state},
                           {"--seed", .num = &a->seed},
                           {"--step", .num = &a->step}};
  for (int i = 0; i < argc; i++) {
    const char *v;
    int m;
    if ((m = rt_exe_flag(argc, argv, &i, "--in", &v, e))) {
      if (m < 0 || add_binding(a->in, &a->nin, "--in", v, e)) return -1;
    } else if ((m = rt_exe_flag(argc, argv, &i, "--out", &v, e))) {
      if (m < 0 || add_binding(a->out, &a->nout, "--out", v, e)) return -1;
    } else if ((m = rt_exe_init_flag(argc, argv, &i, &a->init, e))) {
      if (m < 0) return -1;
    } else if ((m = rt_exe_opts(argc, argv, &i, opts, (int)(sizeof opts / sizeof *opts), e))) {
      if (m < 0) return -1;
    } else {
      return rt_err(e, "run: unknown option '%s' (options: --fn NAME --in NAME=FILE.npy --out NAME=FILE.npy "
                    "--data SPEC --tokenizer TOK.json --params P --init PREFIX=FILE --init-partial --save-state P --seed S "
                    "--step K)", argv[i]);
    }
  }
  if (a->tokenizer && !a->data) return rt_err(e, "run: --tokenizer goes with --data SPEC (it encodes the captions)");
  return 0;
}

RtTensor *rt_exe_number_tensor(const RtArgSpec *s, const char *text, RtErr *e) {
  char *end;
  double v = strtod(text, &end);
  if (end == text || *end) return NULL;
  RtTensor *t = rt_tensor_new(s->dtype, s->rank, s->dim, e);
  if (!t) return NULL;
  if (rt_tensor_numel(t) != 1) {
    rt_tensor_free(t);
    return NULL;
  }
  if (t->dtype == RT_I32) rt_i32(t)[0] = (int32_t)llround(v);
  else rt_f32(t)[0] = (float)v;
  return t;
}

static bool fits(const RtTensor *t, const RtArgSpec *s) {
  if (t->dtype != s->dtype || t->rank != s->rank) return false;
  for (int i = 0; i < s->rank; i++)
    if (t->dim[i] != s->dim[i]) return false;
  return true;
}

/* The inputs --in gives (and the learning rate), around those the dataset
 * filled (in[i] already set). */
static int load_inputs(const RtProgram *p, const RtEntrySpec *en, const RunArgs *a, RtTensor **in, RtErr *e) {
  char buf[256];
  if (check_bindings(en->name, en->input, en->ninput, "input", a->in, a->nin, e)) return -1;
  for (int i = 0; i < en->ninput; i++) {
    const RtArgSpec *s = &en->input[i];
    const Binding *b = NULL;
    for (int k = 0; k < a->nin && !b; k++)
      if (names(&a->in[k], s->name) || (!a->in[k].name[0] && en->ninput == 1)) b = &a->in[k];
    if (in[i]) {
      if (b) return rt_err(e, "--in %s: input '%s' comes from --data %s", b->path, s->name, a->data);
      continue;
    }
    if (!b && strcmp(s->name, RT_LR_INPUT) == 0 && s->rank == 0) {
      in[i] = rt_tensor_new(RT_F32, 0, NULL, e);
      if (!in[i]) return -1;
      rt_f32(in[i])[0] = (float)p->lr;
      continue;
    }
    if (!b) return rt_err(e, "entry '%s' needs --in %s=FILE.npy (%s)", en->name, s->name, rt_exe_arg_str(s, buf, sizeof buf));
    in[i] = rt_exe_number_tensor(s, b->path, e);
    if (in[i]) continue;
    if (!b->name[0] && access(b->path, F_OK) != 0)
      return rt_err(e, "--in %s: cannot open: no such file (the form is --in NAME=FILE.npy or NAME=NUMBER; "
                       "FILE.npy alone for an entry of one input)", b->path);
    if (rt_npy_read(b->path, &in[i], e)) return -1;
    if (rt_numerics_check_input(s->name, b->path, in[i], e)) return -1;
    if (!fits(in[i], s)) {
      char got[160];
      return rt_err(e, "%s: input '%s' of %s must be %s, got %s%s", b->path, s->name, en->name,
                    rt_exe_arg_str(s, buf, sizeof buf) + strlen(s->name) + 2, rt_dtype_name(in[i]->dtype),
                    in[i]->rank ? rt_shape_str(in[i]->rank, in[i]->dim, got, sizeof got) : "");
    }
  }
  return 0;
}

/* The dataset's batch of --step for every input it fills. */
static int fill_from_data(const RtEntrySpec *en, const RunArgs *a, RtTensor **in, RtErr *e) {
  RtDataset *d = rt_data_open(a->data, en, a->seed, e);
  int rc = d && (!a->tokenizer || rt_data_set_tokenizer(d, a->tokenizer, e) == 0) ? 0 : -1;
  for (int i = 0; rc == 0 && i < en->ninput; i++)
    if (rt_data_fills(d, i) && !(in[i] = rt_tensor_new(en->input[i].dtype, en->input[i].rank, en->input[i].dim, e)))
      rc = -1;
  if (rc == 0) rc = rt_data_fill(d, a->step, in, e);
  for (int64_t j = 0; rc == 0 && j < rt_data_batch(d); j++)
    if (rt_data_caption(d, j)) printf("caption %lld: %s\n", (long long)j, rt_data_caption(d, j));
  rt_data_free(d);
  return rc;
}

/* Writes the outputs named by --out; every --out must name an output. */
static int write_outputs(const RtEntrySpec *en, const RunArgs *a, RtTensor **out, RtErr *e) {
  for (int k = 0; k < a->nout; k++) {
    int found = bound_index(en->name, en->output, en->noutput, "output", &a->out[k], e);
    if (found < 0) return -1;
    if (rt_npy_write(a->out[k].path, out[found], e)) return -1;
    printf("%s written to %s\n", en->output[found].name, a->out[k].path);
  }
  return 0;
}

int rt_exe_run(RtProgram *p, int argc, char **argv, RtErr *e) {
  RunArgs a;
  if (parse(argc, argv, &a, e)) return -1;
  int entry = -1;
  if (a.fn) entry = rt_program_entry(p, a.fn);
  else if (p->nentry == 1) entry = 0;
  if (entry < 0) {
    char list[512] = "";
    for (int i = 0; i < p->nentry; i++) {
      size_t at = strlen(list);
      snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", p->entry[i].name);
    }
    return a.fn ? rt_err(e, "%s has no entry '%s' (its entries: %s)", p->model, a.fn, list)
                : rt_err(e, "run needs --fn NAME (entries: %s)", list);
  }
  const RtEntrySpec *en = &p->entry[entry];
  RtTensor **in = calloc((size_t)en->ninput + 1, sizeof *in);
  RtTensor **out = calloc((size_t)en->noutput + 1, sizeof *out);
  int rc = -1;
  if (!in || !out) {
    rt_err(e, "out of memory");
    goto done;
  }
  if (check_bindings(en->name, en->output, en->noutput, "output", a.out, a.nout, e)) goto done;
  if (a.data && fill_from_data(en, &a, in, e)) goto done;
  if (load_inputs(p, en, &a, in, e)) goto done;
  if (rt_exe_state_start(p, a.params, &a.init, a.seed, e)) goto done;
  if (p->run(p, entry, in, out, a.seed, a.step, e)) goto done;
  for (int i = 0; i < en->noutput; i++) rt_exe_summarise(stdout, en->output[i].name, out[i]);
  if (write_outputs(en, &a, out, e)) goto done;
  if (a.save_state) {
    RtCheckpointInfo info = {.step = a.step + (en->train ? 1 : 0), .seed = a.seed, .steps = 0};
    if (rt_checkpoint_save(a.save_state, p, &info, e)) goto done;
    printf("state written to %s\n", a.save_state);
  }
  rc = 0;
done:
  for (int i = 0; in && i < en->ninput; i++) rt_tensor_free(in[i]);
  for (int i = 0; out && i < en->noutput; i++) rt_tensor_free(out[i]);
  free(in);
  free(out);
  return rc;
}
