/* exe_eval.c — `eval KIND ...` (exe_eval.h): picks the kind, and the
 * options and entry calls every kind shares. */
#include <stdlib.h>
#include <string.h>

#include "runtime/exe/exe.h"
#include "runtime/exe/exe_eval.h"

/* --params, --init, --init-partial, --seed, --json into c: 1 if argv[*i]
 * was one of them, 0 if not, -1 on a bad value. */
static int common_flag(int argc, char **argv, int *i, RtEvalCommon *c, RtErr *e) {
  const RtExeOpt opts[] = {{"--json", .on = &c->json}, {"--params", .str = &c->params}, {"--seed", .num = &c->seed}};
  int m = rt_exe_init_flag(argc, argv, i, &c->init, e);
  return m ? m : rt_exe_opts(argc, argv, i, opts, (int)(sizeof opts / sizeof *opts), e);
}

int rt_eval_parse(int argc, char **argv, RtEvalCommon *c, const RtExeOpt *opts, int n, const char *what,
                  const char *options, RtErr *e) {
  for (int i = 0; i < argc; i++) {
    int m = common_flag(argc, argv, &i, c, e);
    if (m == 0) m = rt_exe_opts(argc, argv, &i, opts, n, e);
    if (m < 0) return -1;
    if (m == 0)
      return rt_err(e,
                    "%s: unknown option '%s' (options: %s --params P --init PREFIX=FILE --init-partial --seed S "
                    "--json)",
                    what, argv[i], options);
  }
  return 0;
}

int rt_eval_state(RtProgram *p, const RtEvalCommon *c, RtErr *e) {
  if (!c->params && c->init.n == 0)
    fprintf(stderr, "eval: note: no --params or --init: %s's parameters come from its initialisers (seed %llu), "
                    "an untrained model\n", p->model, (unsigned long long)c->seed);
  return rt_exe_state_start(p, c->params, &c->init, c->seed, e);
}

const char *rt_eval_params_str(const RtEvalCommon *c, char *buf, size_t size) {
  char init[1024];
  rt_init_from_describe(&c->init, init, sizeof init);
  if (c->params && *init) snprintf(buf, size, "%s, --init %s", c->params, init);
  else if (c->params) snprintf(buf, size, "%s", c->params);
  else if (*init) snprintf(buf, size, "--init %s", init);
  else snprintf(buf, size, "the initialisers (seed %llu)", (unsigned long long)c->seed);
  return buf;
}

int rt_eval_entry(const RtProgram *p, const char *name, const char *what, RtErr *e) {
  int i = rt_program_entry(p, name);
  if (i < 0) return rt_err(e, "%s needs the entry '%s', which %s does not have (`info` lists its entries)", what, name,
                           p->model);
  if (p->entry[i].train) return rt_err(e, "%s: entry '%s' of %s is a training step, not an @infer entry", what, name, p->model);
  return i;
}

void rt_eval_outputs_free(const RtProgram *p, int entry, RtTensor **out) {
  if (!out) return;
  for (int i = 0; i < p->entry[entry].noutput; i++) rt_tensor_free(out[i]);
  free(out);
}

int rt_eval_run(RtProgram *p, int entry, RtTensor *const *in, RtTensor ***out, uint64_t seed, RtErr *e) {
  const RtEntrySpec *en = &p->entry[entry];
  *out = calloc((size_t)en->noutput + 1, sizeof **out);
  if (!*out) return rt_err(e, "out of memory");
  if (p->run(p, entry, in, *out, seed, 0, e)) {
    rt_eval_outputs_free(p, entry, *out);
    *out = NULL;
    return -1;
  }
  const RtArgSpec *o = &en->output[0];
  int64_t want = 1;
  for (int k = 0; k < o->rank; k++) want *= o->dim[k];
  if ((*out)[0]->dtype != o->dtype || rt_tensor_numel((*out)[0]) != want) {
    rt_eval_outputs_free(p, entry, *out);
    *out = NULL;
    return rt_err(e, "entry '%s' of %s returned a tensor of another type than its signature's", en->name, p->model);
  }
  return 0;
}

RtTensor **rt_eval_inputs_new(const RtEntrySpec *en, RtErr *e) {
  RtTensor **in = calloc((size_t)en->ninput + 1, sizeof *in);
  if (!in) {
    rt_err(e, "out of memory");
    return NULL;
  }
  for (int i = 0; i < en->ninput; i++)
    if (!(in[i] = rt_tensor_new(en->input[i].dtype, en->input[i].rank, en->input[i].dim, e))) {
      rt_eval_inputs_free(en, in);
      return NULL;
    }
  return in;
}

void rt_eval_inputs_free(const RtEntrySpec *en, RtTensor **in) {
  if (!in) return;
  for (int i = 0; i < en->ninput; i++) rt_tensor_free(in[i]);
  free(in);
}

int rt_exe_eval(RtProgram *p, int argc, char **argv, RtErr *e) {
  const char *kinds = "dvae (reconstruction and codebook), gpt (held-out cross-entropy), classify (accuracy)";
  if (argc < 1) return rt_err(e, "eval needs a kind: eval dvae|gpt|classify ... (%s)", kinds);
  if (strcmp(argv[0], "dvae") == 0) return rt_eval_dvae(p, argc - 1, argv + 1, e);
  if (strcmp(argv[0], "gpt") == 0) return rt_eval_gpt(p, argc - 1, argv + 1, e);
  if (strcmp(argv[0], "classify") == 0) return rt_eval_classify(p, argc - 1, argv + 1, e);
  return rt_err(e, "eval: unknown kind '%s' (kinds: %s)", argv[0], kinds);
}
