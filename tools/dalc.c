/* dalc.c — the dal compiler's command line: parses options and hands them
 * to a subcommand (tools/cmd_*.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower.h"
#include "passes/plugin.h"
#include "runtime/exe/exe.h"
#include "runtime/io/fileio.h"
#include "runtime/sched/blas_core.h"
#include "runtime/sched/memfit.h"
#include "runtime/core/numerics.h"
#include "tools/cli.h"

static const char usage[] =
    "usage: dalc info FILE.dal [--config C] [--batch N]\n"
    "       dalc run FILE.dal --fn NAME [--config C] [--batch N] [--params P.safetensors]\n"
    "                [--in NAME=FILE.npy|NAME=NUMBER]... [--out NAME=FILE.npy]...\n"
    "                [--seed N] [--save-params P.safetensors]\n"
    "       dalc run FILE.dal [--config C] [--batch N] -- train --steps N [train options]\n"
    "       dalc run FILE.dal --fn LOSS ... --grad-out G.safetensors\n"
    "       dalc FILE.dal --emit=ir|dot|llvm|asm|obj [--fn NAME] [--grad] [--config C] [--batch N] [-o OUT]\n"
    "       dalc FILE.dal [--config C] [--batch N] [-fno-fuse] -o EXE\n"
    "       dalc bpe train|encode|decode ...   the BPE tokenizer for captions (dalc bpe: its usage)\n"
    "       dalc generate --model FILE.safetensors CAPTION... [--n N] [--out grid.png] ...\n"
    "                images from captions: compiles the model the file names (`-- generate` options)\n"
    "       dalc judge shapes (--images IMAGES.npy --captions CAPTIONS.txt [--n N] | --data SPEC [--count N])\n"
    "                [--holdout[=SPEC]] [--json]   caption accuracy of shapes images, read by rule\n"
    "       dalc plot LOG.tsv [--columns A,B]... [--log-y] [--smooth F] [-o PLOT.png]\n"
    "                a training log's columns against the step, as a PNG (dalc plot --help)\n"
    "       dalc passes [--plugin=FILE.so]...   the passes --passes can name, plugins' included,\n"
    "                and the fusion rules --fuse-rule can switch\n"
    "       dalc fuse-rules                     the fusion rules alone\n"
    "       dalc tune-conv FILE.dal [--config C] [--batch N] [--fn NAME] [-o TABLE]\n"
    "                times every conv shape of the model (or of entry NAME) under each algorithm\n"
    "                on this machine, into the table -fconv=auto reads (in the cache directory)\n"
    "\n"
    "  info   configuration, entry functions, the parameter table and the memory each entry needs\n"
    "  run    run an entry function on .npy inputs (native code; --backend=ref: the reference executor)\n"
    "         (an image output may be written as a PNG grid: --out NAME=FILE.png);\n"
    "         parameters come from --params, or from their initialisers (--seed)\n"
    "         --grad-out writes the gradient of a training entry's loss with respect to\n"
    "         every parameter, under the parameter's name\n"
    "  run -- the model as an executable: `train`, `run --fn`, `bench`, `info`, `data`\n"
    "         (`bench ... --compare '' '--fuse-rule=-epilogue' ...`: variants of these flags side by side)\n"
    "         (the same command line as an AOT-built executable; `-- train --help`)\n"
    "  --emit print the graph IR of an entry (or of every entry) as text or Graphviz,\n"
    "         or its kernels as LLVM IR, assembly or an object file (-o);\n"
    "         --grad appends the backward graph to training entries\n"
    "  -o EXE (without --emit) a standalone executable with the command line of `run --`\n"
    "         (`EXE train ...`, `EXE run --fn ...`, `EXE info`); it needs only OpenBLAS, not LLVM,\n"
    "         but is built for this machine's CPU (not portable to older CPUs)\n"
    "\n"
    "  --backend=jit|ref  native code through LLVM (default, or $DAL_BACKEND) or the reference executor\n"
    "  --passes=a,b   the graph passes to run (default: " CLI_DEFAULT_PASSES ", then remat on training\n"
    "                 steps unless --fuse-rule=-remat; empty: none)\n"
    "  --plugin=FILE.so  load a pass plugin first (repeatable): its passes can then be named\n"
    "                 in --passes (docs/writing-a-pass.md)\n"
    "  --stats        node counts before and after each pass, on stderr; without --emit:\n"
    "                 each entry's passes, fused kernels and memory plan (arena, lower\n"
    "                 bound, no-reuse sum), training entries as whole training steps\n"
    "  --print-after=PASS, --print-after-all   the IR after a pass (or every pass), on stderr\n"
    "  --time-passes  the time of each phase (parse, lower, each pass, codegen), on stderr;\n"
    "                 with run --, every entry is compiled up front (else each at its first use)\n"
    "                 and the kernel counts: compiled, deduplicated, cache hits and misses\n"
    "  --force        run even when the memory estimate (parameters, optimizer state, arena, KV cache;\n"
    "                 dalc info shows it) exceeds what the machine has available (MemAvailable, a\n"
    "                 cgroup memory limit, $DAL_MEMORY_LIMIT); without it such a run stops before allocating\n"
    "  --no-cache     neither read nor write the compiled-object cache ($DAL_CACHE_DIR, else\n"
    "                 $XDG_CACHE_HOME/dal, else ~/.cache/dal)\n"
    "  -fno-fuse      one kernel per op (--emit=dot then shows no fusion clusters)\n"
    "  --fuse-rule=-NAME,+NAME  switch single fusion rules off (-) or on (+), left to right,\n"
    "                 repeatable (dalc fuse-rules lists them); after -fno-fuse, +NAME fuses by NAME alone\n"
    "  -fconv=auto|im2col|winograd|direct|winograd4  how convolutions are computed: im2col + GEMM,\n"
    "                 Winograd F(2x2,3x3) or F(4x4,3x3) (3x3 stride 1, and their weight gradients),\n"
    "                 direct (1x1 stride 1 without im2col; stride-s kernels that are multiples of s on\n"
    "                 phase grids); auto picks per conv: the fastest that dalc tune-conv\n"
    "                 measured, else Winograd when C, O >= 16 and >= 64 output positions (F(2x2,3x3)\n"
    "                 in training steps, F(4x4,3x3) in entries that do not train), direct where it\n"
    "                 measured faster; --explain-fusion and --stats list the choices\n"
    "  --explain-fusion  why each producer was not fused into its consumer and which rule\n"
    "                 refused it, then how many nodes each rule fused, on stderr (with --emit)\n"
    "  --check-numerics  (any command that runs the model, compiled programs' commands too) after\n"
    "                 every step of a run, check the values it wrote: the first NaN or Inf stops\n"
    "                 the run with the op, its .dal file:line:col, the buffer and the element\n"
    "  --allow-nonfinite  accept NaN or Inf in loaded parameters (--params, --init, --resume)\n"
    "                 and inputs (--in), which are otherwise errors naming the tensor\n";

void cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("dalc: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* Splits "name=path" (or a bare "path") into a binding. */
static int add_binding(CliBinding *list, int *n, const char *arg, const char *flag) {
  if (*n == CLI_MAX_BINDINGS) {
    cli_error("too many %s options (at most %d)", flag, CLI_MAX_BINDINGS);
    return -1;
  }
  CliBinding *b = &list[(*n)++];
  const char *eq = strchr(arg, '=');
  if (eq) {
    b->name = strndup(arg, (size_t)(eq - arg));
    b->path = eq + 1;
  } else {
    b->name = NULL;
    b->path = arg;
  }
  if (!*b->path || (b->name && !*b->name)) {
    cli_error("%s expects NAME=FILE, got '%s'", flag, arg);
    return -1;
  }
  return 0;
}

/* The runtime's number and option helpers (runtime/exe/exe.h), so dalc
 * and the executables word the same mistakes the same way. */
static int parse_uint(const char *s, const char *flag, uint64_t *out) {
  RtErr e;
  if (rt_exe_u64(flag, s, out, &e) == 0) return 0;
  cli_error("%s", e.msg);
  return -1;
}

/* Options take their value as "--opt VALUE" or "--opt=VALUE". */
static const char *option_value(int argc, char **argv, int *i, const char *name) {
  const char *v = NULL;
  RtErr e;
  int m = rt_exe_flag(argc, argv, i, name, &v, &e);
  if (m < 0) {
    cli_error("%s", e.msg);
    exit(1);
  }
  return m ? v : NULL;
}

/* --plugin=FILE.so: loads it now, so the passes it registers exist before
 * any pipeline runs. */
static int load_plugin(const char *path) {
  char why[512];
  if (pass_plugin_load(path, why, sizeof why) == 0) return 0;
  cli_error("%s", why);
  return -1;
}

/* Every registered pass with its help, and the plugin that added it. */
static void print_passes(FILE *out) {
  int n;
  const Pass *p = pass_list(&n);
  int width = 0;
  for (int i = 0; i < n; i++)
    if ((int)strlen(p[i].name) > width) width = (int)strlen(p[i].name);
  fprintf(out, "passes (--passes=a,b,...):\n");
  for (int i = 0; i < n; i++) {
    const char *plugin = pass_plugin_of(p[i].name);
    fprintf(out, "  %-*s  %s", width, p[i].name, p[i].help);
    if (plugin) fprintf(out, "  [plugin %s]", plugin);
    fputc('\n', out);
  }
}

/* `dalc passes [--plugin=FILE.so]...` */
static int cmd_passes(int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    const char *v = option_value(argc, argv, &i, "--plugin");
    if (!v) {
      cli_error("dalc passes takes only --plugin=FILE.so, not '%s'", argv[i]);
      return 1;
    }
    if (load_plugin(v)) return 1;
  }
  print_passes(stdout);
  putchar('\n');
  fuse_rule_print(stdout);
  return 0;
}

static int parse_args(int argc, char **argv, int first, DalcArgs *a) {
  for (int i = first; i < argc; i++) {
    const char *v;
    uint64_t u;
    if ((v = option_value(argc, argv, &i, "--config"))) a->config = v;
    else if ((v = option_value(argc, argv, &i, "--fn"))) a->fn = v;
    else if ((v = option_value(argc, argv, &i, "--params"))) a->params = v;
    else if ((v = option_value(argc, argv, &i, "--save-params"))) a->save_params = v;
    else if ((v = option_value(argc, argv, &i, "--emit"))) a->emit = v;
    else if ((v = option_value(argc, argv, &i, "-o"))) a->output = v;
    else if ((v = option_value(argc, argv, &i, "--passes"))) a->passes = v;
    else if ((v = option_value(argc, argv, &i, "--plugin"))) {
      if (load_plugin(v)) return -1;
    }
    else if ((v = option_value(argc, argv, &i, "--grad-out"))) a->grad_out = v;
    else if (!strcmp(argv[i], "--grad")) a->grad = true;
    else if (!strcmp(argv[i], "--stats")) a->stats = true;
    else if (!strcmp(argv[i], "--print-after-all")) a->print_after = "all";
    else if (!strcmp(argv[i], "-fno-fuse")) a->fuse.enabled = false;
    else if ((v = option_value(argc, argv, &i, "--fuse-rule"))) {
      if (cli_fuse_rule(&a->fuse, v)) return -1;
    }
    else if ((v = option_value(argc, argv, &i, "-fconv"))) {
      CgConvAlgo algo;
      if (!cg_conv_algo_parse(v, &algo)) {
        cli_error("-fconv must be auto, im2col, winograd, direct or winograd4, not '%s'", v);
        return -1;
      }
      a->fuse.conv_algo = (int)algo + 1; /* carried with the plan to lowering (codegen/lower.h) */
    }
    else if ((v = option_value(argc, argv, &i, "--backend"))) {
      if (strcmp(v, "jit") && strcmp(v, "ref")) {
        cli_error("--backend must be jit (native code, the default) or ref (the reference executor), not '%s'", v);
        return -1;
      }
      a->ref = !strcmp(v, "ref");
    }
    else if (!strcmp(argv[i], "--explain-fusion")) a->explain_fusion = true;
    else if ((v = option_value(argc, argv, &i, "--print-after"))) a->print_after = v;
    else if (!strcmp(argv[i], "--time-passes")) {
      static PassTimes times;
      static CgCompileCounts counts;
      a->times = &times;
      a->counts = &counts;
    }
    else if (!strcmp(argv[i], "--no-cache")) a->no_cache = true;
    else if (!strcmp(argv[i], "--force")) rt_mem_set_force(true);
    else if (!strcmp(argv[i], "--")) {
      a->rest_argc = argc - i - 1;
      a->rest_argv = argv + i + 1;
      break;
    }
    else if ((v = option_value(argc, argv, &i, "--in"))) {
      if (add_binding(a->in, &a->nin, v, "--in")) return -1;
    } else if ((v = option_value(argc, argv, &i, "--out"))) {
      if (add_binding(a->out, &a->nout, v, "--out")) return -1;
    } else if ((v = option_value(argc, argv, &i, "--seed"))) {
      if (parse_uint(v, "--seed", &a->seed)) return -1;
    } else if ((v = option_value(argc, argv, &i, "--batch"))) {
      if (parse_uint(v, "--batch", &u)) return -1;
      if (u == 0 || u > (1u << 20)) {
        cli_error("--batch must be between 1 and %u", 1u << 20);
        return -1;
      }
      a->batch = (int64_t)u;
    } else if (argv[i][0] == '-') {
      cli_error("unknown option '%s' (see dalc --help)", argv[i]);
      return -1;
    } else if (!*argv[i]) {
      cli_error("an empty argument where the .dal file goes (see dalc --help)");
      return -1;
    } else if (!a->file) {
      a->file = argv[i];
    } else {
      cli_error("unexpected argument '%s' (one .dal file at a time)", argv[i]);
      return -1;
    }
  }
  a->no_fuse = !a->fuse.enabled;
  if (!a->file) {
    cli_error("no .dal file given (see dalc --help)");
    return -1;
  }
  return 0;
}

static void free_args(DalcArgs *a) {
  for (int i = 0; i < a->nin; i++) free((char *)a->in[i].name);
  for (int i = 0; i < a->nout; i++) free((char *)a->out[i].name);
}

/* `dalc CMD --help`: the synopsis lines of the usage that name CMD (with
 * their continuation lines), then CMD's paragraph; the whole usage for
 * the compiler's own mode (dalc FILE.dal ...). */
static void command_usage(const char *cmd) {
  if (!cmd) {
    fputs(usage, stdout);
    return;
  }
  char synopsis[64], para[64];
  snprintf(synopsis, sizeof synopsis, "dalc %s ", cmd);
  snprintf(para, sizeof para, "  %s ", cmd);
  bool printing = false, first = true;
  for (const char *l = usage; *l;) {
    const char *nl = strchr(l, '\n');
    int len = nl ? (int)(nl - l) : (int)strlen(l), indent = (int)strspn(l, " ");
    bool syn = !strncmp(l, "usage: dalc ", 12) || (indent == 7 && !strncmp(l + 7, "dalc ", 5));
    if (syn) printing = !strncmp(l + 7, synopsis, strlen(synopsis));
    else if (indent == 2) printing = !strncmp(l, para, strlen(para));
    else if (indent < 2) printing = false; /* else a continuation line: as the line it continues */
    if (printing && syn) printf("%s%.*s\n", first ? "usage: " : "       ", len - 7, l + 7), first = false;
    else if (printing) printf("%.*s\n", len, l);
    l += len + (nl ? 1 : 0);
  }
  printf("(dalc --help: the compiler's options, every command)\n");
}

/* `dalc CMD ... --help` (or -h) for the commands whose arguments are
 * parsed here (bpe, generate, judge and plot answer it themselves): their
 * usage on stdout. False if no help was asked. */
static bool print_help(int argc, char **argv) {
  const char *cmd = argv[1];
  bool sub = !strcmp(cmd, "info") || !strcmp(cmd, "run") || !strcmp(cmd, "tune-conv");
  if (!strcmp(cmd, "bpe") || !strcmp(cmd, "generate") || !strcmp(cmd, "judge") || !strcmp(cmd, "plot") ||
      !cli_wants_help(argc - (sub ? 2 : 1), argv + (sub ? 2 : 1)))
    return false;
  if (!strcmp(cmd, "passes"))
    puts("usage: dalc passes [--plugin=FILE.so]...\n"
         "  the passes --passes can name (plugins' included) and the fusion rules");
  else if (!strcmp(cmd, "fuse-rules"))
    puts("usage: dalc fuse-rules\n  the fusion rules --fuse-rule=-NAME,+NAME can switch");
  else
    command_usage(sub ? cmd : NULL);
  return true;
}

static int dalc_main(int argc, char **argv) {
  rt_blas_fix_core(argv); /* OpenBLAS's fast kernels on CPUs it does not know */
  rt_numerics_take_flags(&argc, argv, 1); /* --check-numerics, --allow-nonfinite: for every command */
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    FILE *out = argc < 2 ? stderr : stdout;
    fputs(usage, out);
    fputc('\n', out);
    print_passes(out);
    return argc < 2 ? 1 : 0;
  }
  if (print_help(argc, argv)) return 0;
  if (!strcmp(argv[1], "passes")) {
    int status = cmd_passes(argc - 2, argv + 2);
    pass_plugin_unload_all();
    return status;
  }
  if (!strcmp(argv[1], "fuse-rules")) {
    if (argc > 2) {
      cli_error("dalc fuse-rules takes no arguments, not '%s'", argv[2]);
      return 1;
    }
    fuse_rule_print(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "bpe")) return cmd_bpe(argc - 2, argv + 2);
  if (!strcmp(argv[1], "generate")) return cmd_generate(argc - 2, argv + 2);
  if (!strcmp(argv[1], "judge")) return cmd_judge(argc - 2, argv + 2);
  if (!strcmp(argv[1], "plot")) return cmd_plot(argc - 2, argv + 2);
  DalcArgs args = {.fuse = {.enabled = true}};
  /* DAL_BACKEND=ref makes the reference executor the default (tests run
   * the same scripts through both backends this way). */
  const char *backend = getenv("DAL_BACKEND");
  args.ref = backend && !strcmp(backend, "ref");
  int (*cmd)(const DalcArgs *) = cmd_emit;
  int first = 1;
  if (!strcmp(argv[1], "info")) cmd = cmd_info, first = 2;
  else if (!strcmp(argv[1], "run")) cmd = cmd_run, first = 2;
  else if (!strcmp(argv[1], "tune-conv")) cmd = cmd_tune, first = 2;
  int status = parse_args(argc, argv, first, &args);
  if (status == 0 && cmd == cmd_run && args.rest_argc > 0) {
    cmd = cmd_program;
    if (args.fn || args.nin || args.nout || args.params || args.save_params || args.grad_out) {
      cli_error("--fn, --in, --out, --params, --save-params and --grad-out go after `--`, to the command "
                "(dalc run FILE.dal -- run --fn NAME --params P ...), not before it");
      status = -1;
    }
  }
  if (status == 0 && cmd == cmd_emit && !args.emit && args.output) cmd = cmd_build;
  if (status == 0 && cmd == cmd_emit && !args.emit && args.stats) cmd = cmd_stats;
  status = status ? 1 : cmd(&args);
  if (args.times) pass_times_print(args.times, stderr);
  if (args.counts && args.counts->kernels + args.counts->compiled > 0)
    fprintf(stderr,
            "kernels: %d compiled, %d deduplicated, %d cache hits, %d cache misses (%d bad entries rebuilt)%s\n",
            args.counts->compiled, args.counts->deduplicated, args.counts->cache_hits, args.counts->cache_misses,
            args.counts->cache_bad, args.no_cache ? ", cache off (--no-cache)" : "");
  free_args(&args);
  pass_plugin_unload_all();
  return status;
}

/* Every command's stdout (info, --emit, passes, ...) checked at the end: a
 * full disk or a closed pipe is an error, not a silent exit 0. */
int main(int argc, char **argv) {
  int status = dalc_main(argc, argv);
  RtErr e;
  if (status == 0 && rt_stream_check(stdout, "stdout", &e)) {
    cli_error("%s", e.msg);
    status = 1;
  }
  return status;
}
