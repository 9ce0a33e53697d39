/* exe_main.c — rt_main, the executables' command line (see program.h):
 * dispatch to the subcommands, `info`, `help`, and the flag helpers the
 * subcommands share (exe.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/data.h"
#include "runtime/exe/exe.h"
#include "runtime/io/fileio.h"
#include "runtime/sched/memfit.h"
#include "runtime/core/numerics.h"
#include "runtime/train/train.h"

int rt_exe_flag(int argc, char **argv, int *i, const char *flag, const char **val, RtErr *e) {
  const char *a = argv[*i];
  size_t n = strlen(flag);
  if (strncmp(a, flag, n) != 0) return 0;
  if (a[n] == '=') {
    *val = a + n + 1;
    return 1;
  }
  if (a[n] != 0) return 0;
  if (*i + 1 >= argc) return rt_err(e, "%s needs a value", flag);
  *val = argv[++*i];
  return 1;
}

int rt_exe_opts(int argc, char **argv, int *i, const RtExeOpt *opts, int n, RtErr *e) {
  for (int k = 0; k < n; k++) {
    const RtExeOpt *o = &opts[k];
    if (o->on) {
      if (strcmp(argv[*i], o->flag) != 0) continue;
      *o->on = true;
      return 1;
    }
    const char *v;
    int m = rt_exe_flag(argc, argv, i, o->flag, &v, e);
    if (m <= 0) {
      if (m < 0) return -1;
      continue;
    }
    if (o->str) *o->str = v;
    else if (o->hi ? rt_exe_u64_in(o->flag, v, o->lo, o->hi, o->num, e) : rt_exe_u64(o->flag, v, o->num, e)) return -1;
    return 1;
  }
  return 0;
}

int rt_exe_u64(const char *flag, const char *s, uint64_t *out, RtErr *e) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (*s < '0' || *s > '9' || *end || errno == ERANGE)
    return rt_err(e, "%s needs a non-negative integer, got '%s'", flag, s);
  *out = v;
  return 0;
}

/* n as text: "2^k" for a power of two from 2^16 up, else its digits. */
static const char *bound_str(uint64_t n, char *buf, size_t size) {
  int k = 0;
  while (k < 63 && (1ull << k) < n) k++;
  if (n >= (1u << 16) && n == (1ull << k))
    snprintf(buf, size, "2^%d", k);
  else
    snprintf(buf, size, "%llu", (unsigned long long)n);
  return buf;
}

int rt_exe_u64_in(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out, RtErr *e) {
  if (rt_exe_u64(flag, s, out, e)) return -1;
  if (*out >= lo && *out <= hi) return 0;
  char a[32], b[32];
  if (hi == UINT64_MAX) return rt_err(e, "%s must be at least %s, got '%s'", flag, bound_str(lo, a, sizeof a), s);
  return rt_err(e, "%s must be in %s .. %s, got '%s'", flag, bound_str(lo, a, sizeof a), bound_str(hi, b, sizeof b), s);
}

int rt_exe_f64(const char *flag, const char *s, double *out, RtErr *e) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || v != v || v - v != 0) return rt_err(e, "%s needs a finite number, got '%s'", flag, s);
  *out = v;
  return 0;
}

int rt_exe_init_flag(int argc, char **argv, int *i, RtInitFrom *l, RtErr *e) {
  const char *v;
  if (strcmp(argv[*i], "--init-partial") == 0) {
    l->partial = true;
    return 1;
  }
  int m = rt_exe_flag(argc, argv, i, "--init", &v, e);
  if (m <= 0) return m;
  return rt_init_from_add(l, v, e) ? -1 : 1;
}

int rt_exe_state_start(RtProgram *p, const char *params, const RtInitFrom *l, uint64_t seed, RtErr *e) {
  if (params ? rt_checkpoint_load_params(params, p, e) : p->init(p, seed, e)) return -1;
  if (l && l->partial && l->n == 0) return rt_err(e, "--init-partial goes with --init PREFIX=FILE");
  return l ? rt_init_from_apply(p, l, e) : 0;
}

const char *rt_exe_arg_str(const RtArgSpec *a, char *buf, size_t size) {
  char shape[160] = "";
  if (a->rank > 0) rt_shape_str(a->rank, a->dim, shape, sizeof shape);
  snprintf(buf, size, "%s: %s%s", a->name, rt_dtype_name(a->dtype), shape);
  return buf;
}

int rt_exe_train_entry(const RtProgram *p, const char *fn, RtErr *e) {
  if (fn) {
    int i = rt_program_entry(p, fn);
    if (i < 0) return rt_err(e, "%s has no entry '%s' (`info` lists them)", p->model, fn);
    if (!p->entry[i].train) return rt_err(e, "entry '%s' of %s is not a training entry", fn, p->model);
    return i;
  }
  int found = -1, count = 0;
  for (int i = 0; i < p->nentry; i++)
    if (p->entry[i].train) {
      found = found < 0 ? i : found;
      count++;
    }
  if (count == 0) return rt_err(e, "%s has no training entry", p->model);
  if (count == 1) return found;
  /* MODELS.md calls every model's training step "loss"; other training
   * entries (the dVAE's loss_given_noise) are for tests. */
  int loss = rt_program_entry(p, "loss");
  if (loss >= 0 && p->entry[loss].train) return loss;
  return rt_err(e, "%s has %d training entries and none is called 'loss': choose one with --fn NAME", p->model, count);
}

/* "name(x: f32[4, 3, 16, 16], tau: f32) -> loss: f32". */
static void print_signature(FILE *f, const RtEntrySpec *en) {
  char buf[256];
  fprintf(f, "%s(", en->name);
  for (int i = 0; i < en->ninput; i++) fprintf(f, "%s%s", i ? ", " : "", rt_exe_arg_str(&en->input[i], buf, sizeof buf));
  fprintf(f, ") -> ");
  for (int i = 0; i < en->noutput; i++) fprintf(f, "%s%s", i ? ", " : "", rt_exe_arg_str(&en->output[i], buf, sizeof buf));
}

static int cmd_info(const RtProgram *p, int argc, RtErr *e) {
  if (argc > 0) return rt_err(e, "info takes no options");
  int64_t nvalues[2] = {0, 0};
  for (int i = 0; i < p->state->n; i++) nvalues[i >= p->nparam] += rt_tensor_numel(p->state->tensor[i]);
  printf("model: %s\nconfig: %s\nlearning rate: %g\n", p->model, p->config, p->lr);
  printf("parameters: %d tensors, %lld values\n", p->nparam, (long long)nvalues[0]);
  printf("other state: %d tensors, %lld values\n", p->state->n - p->nparam, (long long)nvalues[1]);
  printf("entries:\n");
  for (int i = 0; i < p->nentry; i++) {
    printf("  ");
    print_signature(stdout, &p->entry[i]);
    printf("%s\n", p->entry[i].train ? "   [train]" : "");
  }
  return 0;
}

static void usage(FILE *f, const char *prog) {
  fprintf(f,
          "usage: %s COMMAND [options]\n"
          "  info                                the model, its entries and state\n"
          "  train --steps N [--fn NAME] [--data SPEC] [--tokenizer TOK.json] [--seed S] [--lr X]\n"
          "        [--warmup K] [--lr-decay none|cos|linear] [--lr-min X]\n"
          "        [--set NAME=V]... [--anneal NAME=FROM:TO[:geom|linear|cos[:STEPS]]]... [--params P.safetensors]\n"
          "        [--init PREFIX=FILE.safetensors]... [--init-partial]\n"
          "        [--checkpoint PATH] [--every K|none] [--resume PATH [--resume-changed]] [--log FILE.tsv]\n"
          "        [--ema D] [--quiet]\n"
          "        [--eval-every K --eval-fn NAME... --eval-data SPEC [--eval-batches M] [--eval-ema]]\n"
          "        [--stop-on-divergence]\n"
          "  run --fn NAME [--in NAME=FILE.npy|NAME=NUMBER]... [--out NAME=FILE.npy]...\n"
          "        [--data SPEC [--tokenizer TOK.json]] [--params P.safetensors]\n"
          "        [--init PREFIX=FILE]... [--init-partial] [--save-state P.safetensors] [--seed S] [--step K]\n"
          "  data [--data SPEC] [--tokenizer TOK.json] [--out grid.png] [--batch B] [--size S] [--step K]\n"
          "        [--seed S] [--scale N]\n"
          "  tokenize --data SPEC [--count N] --tokenizer TOK.json --out FILE.safetensors [--fn tokens]\n"
          "        [--len L] [--params P.safetensors] [--init PREFIX=FILE]... [--init-partial] [--seed S]\n"
          "                                      a token cache for --data tokens:FILE\n"
          "  sample (--in text=FILE.npy | --captions FILE.txt --tokenizer TOK.json | --bench)\n"
          "        [--params P.safetensors] [--temperature T] [--top-k K] [--sample-seed S]\n"
          "        [--sampler gumbel|cdf] [--no-cache] [--out FILE.npy] [--json]\n"
          "                                      image tokens drawn with the KV cache\n"
          "  generate --model FILE.safetensors [CAPTION...] [--captions FILE.txt] [--n N] [--temperature T]\n"
          "        [--top-k K] [--seed S] [--out grid.png] [--out-npy F] [--out-tokens F] [--out-dir DIR]\n"
          "                                      images from captions, from one model file\n"
          "  bench [--fn NAME] [--steps N] [--warmup W] [--data SPEC] [--tokenizer TOK.json] [--set NAME=V]...\n"
          "        [--seed S] [--max-seconds T] [--json] [--compare FLAGS FLAGS ...]\n"
          "                                      ms/step, throughput and peak memory of an entry; --compare\n"
          "                                      (last; under dalc run only): the entry under each variant of\n"
          "                                      dalc flags ('' -fno-fuse --fuse-rule=-epilogue ...), side by side\n"
          "  eval dvae|gpt|classify --data SPEC [--count N] [--params P.safetensors] [--init PREFIX=FILE]... [--json]\n"
          "        dvae: [--codes K] [--out-recon RECON.npy] [--out-captions CAPTIONS.txt];\n"
          "        gpt: [--tokenizer TOK.json] [--train-data SPEC [--train-count N]] [--codes K];\n"
          "        classify: (--data SPEC | --images IMAGES.npy) [--labels FILE.npy|FILE.txt [--repeat R]]\n"
          "                                      held-out measures: reconstruction and codebook, cross-entropy, accuracy\n"
          "  help                                this text\n"
          "options of every command that runs the model:\n"
          "  --check-numerics                    check the values every step of a run writes: the first NaN\n"
          "                                      or Inf stops it, naming the op, its .dal file:line:col, the\n"
          "                                      buffer, the element (and in training the step)\n"
          "  --allow-nonfinite                   accept NaN or Inf in loaded parameters (--params, --init,\n"
          "                                      --resume) and inputs (--in), otherwise errors naming them\n"
          "options of every command: --help (its usage); --force: run even when the memory estimate\n"
          "        (parameters, optimizer state, arena, KV cache) exceeds what is available (MemAvailable,\n"
          "        a cgroup memory limit, $DAL_MEMORY_LIMIT)\n"
          "datasets (SPEC): shapes[:test] | fashion-mnist[:test] | folder:PATH (PATH/captions.tsv: FILE<TAB>CAPTION)\n"
          "                 | npy:NAME=FILE.npy[,NAME=FILE.npy...] | tokens:FILE (a token cache)\n"
          "                 shapes:holdout[=PAIRS] trains without held-out colour-kind pairs (default\n"
          "                 " RT_SHAPES_HOLDOUT_DEFAULT "); shapes:test:seen[=PAIRS] and\n"
          "                 shapes:test:novel[=PAIRS] are the test scenes without and with them\n",
          prog);
}

/* The part of the usage about 'cmd': its lines (from "  cmd" to the next
 * command), then the datasets if it takes a SPEC, then the options of every
 * command. False if there is no such command. */
bool rt_exe_usage(FILE *f, const char *prog, const char *cmd) {
  char *text = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&text, &len);
  if (!m) return false;
  usage(m, prog);
  fclose(m);
  size_t n = strlen(cmd);
  char *start = NULL;
  for (char *l = text; l && *l && !start; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
    if (!strncmp(l, "  ", 2) && !strncmp(l + 2, cmd, n) && (l[2 + n] == ' ' || l[2 + n] == '\n')) start = l + 2;
  if (start) {
    char *end = strchr(start, '\n'); /* its continuation lines are indented further */
    while (end && !strncmp(end + 1, "   ", 3)) end = strchr(end + 1, '\n');
    if (end) *end = 0;
    fprintf(f, "usage: %s %s\n", prog, start);
    const char *all = end ? strstr(end + 1, "\noptions of every command") : NULL;
    const char *data = all ? strstr(all, "\ndatasets (SPEC)") : NULL;
    if (data && strstr(start, "SPEC")) fputs(data + 1, f);
    if (data) fprintf(f, "%.*s", (int)(data - all), all + 1);
  }
  free(text);
  return start != NULL;
}

/* --help or -h among a command's arguments. */
static bool wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
  return false;
}

static int cmd_train(RtProgram *p, int argc, char **argv, RtErr *e) {
  RtTrainOptions o;
  if (rt_train_parse(argc, argv, &o, e)) return -1;
  RtTrainResult res;
  if (rt_train(p, &o, &res, e)) return -1;
  return res.signal ? 128 + res.signal : 0;
}

int rt_main(RtProgram *p, int argc, char **argv) {
  const char *prog = argc > 0 && argv[0] ? argv[0] : "dal";
  const char *slash = strrchr(prog, '/');
  if (slash && !strchr(prog, ' ')) prog = slash + 1; /* not in dalc's "dalc run DIR/m.dal --" */
  argc = rt_mem_take_force(argc, argv); /* --force, anywhere: memfit.h */
  if (argc < 2) {
    usage(stderr, prog);
    return 1;
  }
  rt_numerics_take_flags(&argc, argv, 1); /* --check-numerics, --allow-nonfinite: any command */
  if (argc < 2) {
    usage(stderr, prog);
    return 1;
  }
  const char *cmd = argv[1];
  RtErr e = {{0}};
  int rc;
  if (strcmp(cmd, "help") && wants_help(argc - 2, argv + 2) && rt_exe_usage(stdout, prog, cmd)) rc = 0;
  else if (rt_exe_check_outputs(argc - 1, argv + 1, &e)) rc = -1; /* before any work */
  else if (strcmp(cmd, "info") == 0) rc = cmd_info(p, argc - 2, &e);
  else if (strcmp(cmd, "train") == 0) rc = cmd_train(p, argc - 2, argv + 2, &e);
  else if (strcmp(cmd, "run") == 0) rc = rt_exe_run(p, argc - 2, argv + 2, &e);
  else if (strcmp(cmd, "data") == 0) rc = rt_exe_data(p, argc - 2, argv + 2, &e);
  else if (strcmp(cmd, "bench") == 0) rc = rt_exe_bench(p, argc - 2, argv + 2, &e);
  else if (strcmp(cmd, "sample") == 0) rc = rt_exe_sample(p, argc - 2, argv + 2, &e);
  else if (strcmp(cmd, "tokenize") == 0) rc = rt_exe_tokenize(p, argc - 2, argv + 2, &e);
  else if (strcmp(cmd, "generate") == 0) rc = rt_exe_generate(p, argc - 2, argv + 2, &e);
  else if (strcmp(cmd, "eval") == 0) rc = rt_exe_eval(p, argc - 2, argv + 2, &e);
  else if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout, prog);
    rc = 0;
  } else {
    rc = rt_err(&e, "unknown command '%s' (commands: info, train, run, data, tokenize, bench, sample, generate, eval, help)",
                cmd);
  }
  if (rt_stream_check(stdout, "stdout", rc == 0 ? &e : NULL) && rc == 0) rc = -1; /* a full disk under `> FILE` */
  if (rc < 0) {
    fprintf(stderr, "%s: error: %s\n", prog, e.msg);
    return 1;
  }
  return rc;
}
