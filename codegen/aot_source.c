/* aot_source.c — the C file of an AOT executable (aot_impl.h): the plans
 * as static tables, the entry and state specs, and main().
 *
 * Every number is written so that the compiler reads back exactly the value
 * the plan holds: integers in decimal, floating-point values as C99 hex
 * floats, constant data as its 32-bit words in hex. Constant buffers whose
 * words are all equal (a CONST node is one value repeated) are left to
 * zero-initialised storage and filled at startup, so a large constant costs
 * no source text. Strings are escaped, so any tensor or step name is fine. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "codegen/aot_impl.h"

/* s as a C string literal. */
static void put_str(FILE *f, const char *s) {
  if (!s) {
    fputs("NULL", f);
    return;
  }
  fputc('"', f);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
    else if (*c < 32 || *c >= 127) fprintf(f, "\\%03o", *c); /* always 3 digits: never eats a following digit */
    else fputc(*c, f);
  }
  fputc('"', f);
}

/* x exactly: a hex float, or the macro for a non-finite value. */
static void put_double(FILE *f, double x) {
  if (isnan(x)) fputs("NAN", f);
  else if (isinf(x)) fputs(x > 0 ? "INFINITY" : "-INFINITY", f);
  else fprintf(f, "%a", x);
}

static void put_dims(FILE *f, int rank, const int64_t *dim) {
  fputc('{', f);
  for (int i = 0; i < rank; i++) fprintf(f, "%s%lld", i ? ", " : "", (long long)dim[i]);
  fputc('}', f);
}

static const char *dtype_enum(RtDType t) { return t == RT_I32 ? "RT_I32" : "RT_F32"; }

static bool is_identifier(const char *s) {
  if (!s || !(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))) return false;
  for (; *s; s++)
    if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9'))) return false;
  return true;
}

void cg_aot_write_prologue(FILE *f, const char *model, const char *config, const char *cpu, const char *features) {
  fprintf(f, "/* Written by dalc: the compiled model ");
  put_str(f, model);
  fprintf(f, ", config ");
  put_str(f, config);
  fprintf(f, ".\n * Kernels built for CPU %s (features %s).\n * Do not edit: rebuild with dalc. */\n", cpu, features);
  fputs("#include <math.h>\n#include <stdint.h>\n#include <stdio.h>\n\n#include \"runtime/sched/blas_core.h\"\n#include \"runtime/sched/memfit.h\"\n#include \"runtime/sched/plan_program.h\"\n\n", f);
  fputs("static inline void aot_fill(uint32_t *p, int64_t n, uint32_t word) {\n"
        "  for (int64_t i = 0; i < n; i++) p[i] = word;\n}\n",
        f);
}

/* Whether buffer b's words are all the same (its first word in *w). */
static bool uniform(const RtBuffer *b, uint32_t *w) {
  const unsigned char *p = b->data;
  int64_t n = b->bytes / 4;
  memcpy(w, p, 4);
  for (int64_t i = 1; i < n; i++) {
    uint32_t x;
    memcpy(&x, p + 4 * i, 4);
    if (x != *w) return false;
  }
  return true;
}

/* Constant data: e<i>_c<b>, explicit words or filled at startup by e<i>_fill. */
static void write_consts(FILE *f, int i, const RtPlan *pl) {
  for (int b = 0; b < pl->nbuf; b++) {
    const RtBuffer *B = &pl->buf[b];
    uint32_t w;
    if (B->kind != RT_BUF_CONST || B->bytes == 0) continue;
    fprintf(f, "static _Alignas(64) uint32_t e%d_c%d[%lld]", i, b, (long long)(B->bytes / 4));
    if (uniform(B, &w)) {
      fputs(";\n", f);
      continue;
    }
    fputs(" = {", f);
    const unsigned char *p = B->data;
    for (int64_t k = 0; k < B->bytes / 4; k++) {
      uint32_t x;
      memcpy(&x, p + 4 * k, 4);
      fprintf(f, "%s0x%08xu", k % 8 ? ", " : k ? ",\n  " : "", (unsigned)x);
    }
    fputs("};\n", f);
  }
  fprintf(f, "static void e%d_fill(void) {\n", i);
  for (int b = 0; b < pl->nbuf; b++) {
    const RtBuffer *B = &pl->buf[b];
    uint32_t w;
    if (B->kind == RT_BUF_CONST && B->bytes > 0 && uniform(B, &w) && w != 0)
      fprintf(f, "  aot_fill(e%d_c%d, %lld, 0x%08xu);\n", i, b, (long long)(B->bytes / 4), (unsigned)w);
  }
  fputs("}\n", f);
}

static void write_buffers(FILE *f, int i, const RtPlan *pl) {
  static const char *kind[] = {"RT_BUF_ARENA", "RT_BUF_INPUT", "RT_BUF_OUTPUT", "RT_BUF_STATE", "RT_BUF_CONST"};
  fprintf(f, "static const RtBuffer e%d_buf[] = {\n", i);
  for (int b = 0; b < pl->nbuf; b++) {
    const RtBuffer *B = &pl->buf[b];
    fprintf(f, "  {.kind = %s, .dtype = %s, .rank = %d, .dim = ", kind[B->kind], dtype_enum(B->dtype), B->rank);
    put_dims(f, B->rank, B->dim);
    fprintf(f, ", .bytes = %lld, .offset = %lld, .index = %d, .name = ", (long long)B->bytes, (long long)B->offset,
            B->index);
    put_str(f, B->name);
    if (B->kind == RT_BUF_CONST && B->bytes > 0) fprintf(f, ", .data = e%d_c%d", i, b);
    fputs("},\n", f);
  }
  fputs("};\n", f);
}

static void write_steps(FILE *f, int i, const RtPlan *pl) {
  static const char *kind[] = {"RT_STEP_KERNEL", "RT_STEP_GEMM", "RT_STEP_COPY"};
  int nargs = 0;
  for (int s = 0; s < pl->nstep; s++) nargs += pl->step[s].narg;
  if (nargs > 0) {
    fprintf(f, "static const int e%d_arg[] = {", i);
    int k = 0;
    for (int s = 0; s < pl->nstep; s++)
      for (int a = 0; a < pl->step[s].narg; a++, k++)
        fprintf(f, "%s%d", k % 16 ? ", " : k ? ",\n  " : "", pl->step[s].arg[a]);
    fputs("};\n", f);
  }
  int nwrites = 0;
  for (int s = 0; s < pl->nstep; s++) nwrites += pl->step[s].nwrite;
  if (nwrites > 0) { /* every step's written buffers, in turn (--check-numerics) */
    fprintf(f, "static const int e%d_write[] = {", i);
    int k = 0;
    for (int s = 0; s < pl->nstep; s++)
      for (int a = 0; a < pl->step[s].nwrite; a++, k++)
        fprintf(f, "%s%d", k % 16 ? ", " : k ? ",\n  " : "", pl->step[s].write[a]);
    fputs("};\n", f);
  }
  fprintf(f, "static const RtStep e%d_step[] = {\n", i);
  int at = 0, wat = 0;
  for (int s = 0; s < pl->nstep; s++) {
    const RtStep *S = &pl->step[s];
    fprintf(f, "  {.kind = %s, .name = ", kind[S->kind]);
    put_str(f, S->name);
    fprintf(f, ", .kernel = %d, .range = %lld, .narg = %d, .arg = ", S->kernel, (long long)S->range, S->narg);
    if (S->narg > 0) fprintf(f, "e%d_arg + %d", i, at);
    else fputs("NULL", f);
    at += S->narg;
    if (S->src) {
      fputs(", .src = ", f);
      put_str(f, S->src);
    }
    if (S->calls) {
      fputs(", .calls = ", f);
      put_str(f, S->calls);
    }
    if (S->backward) fputs(", .backward = 1", f);
    if (S->nwrite > 0) fprintf(f, ", .nwrite = %d, .write = e%d_write + %d", S->nwrite, i, wat);
    wat += S->nwrite;
    if (S->kind == RT_STEP_GEMM) {
      const RtGemm *g = &S->gemm;
      fprintf(f,
              ",\n   .gemm = {.batch = %d, .trans_a = %d, .trans_b = %d, .m = %d, .n = %d, .k = %d, .lda = %d, "
              ".ldb = %d, .ldc = %d, .stride_a = %lld, .stride_b = %lld, .stride_c = %lld, .off_a = %lld, "
              ".off_b = %lld, .off_c = %lld, .alpha = ",
              g->batch, g->trans_a, g->trans_b, g->m, g->n, g->k, g->lda, g->ldb, g->ldc, (long long)g->stride_a,
              (long long)g->stride_b, (long long)g->stride_c, (long long)g->off_a, (long long)g->off_b,
              (long long)g->off_c);
      put_double(f, g->alpha);
      fputs(", .beta = ", f);
      put_double(f, g->beta);
      if (g->ln) {
        fputs(", .ln = 1, .ln_eps = ", f);
        put_double(f, g->ln_eps);
      }
      fputc('}', f);
    }
    fputs("},\n", f);
  }
  fputs("};\n", f);
}

int cg_aot_write_plan(FILE *f, int i, const RtPlan *pl, RtErr *e) {
  for (int k = 0; k < pl->nkernel; k++)
    if (!is_identifier(pl->kernel_name[k]))
      return rt_err(e, "plan '%s': kernel name '%s' is not a C identifier", pl->name, pl->kernel_name[k]);
  fprintf(f, "\n/* ---- entry %d: ", i);
  put_str(f, pl->name);
  fprintf(f, " (%d buffers, %d steps, %d kernels, an arena of %lld bytes) ---- */\n", pl->nbuf, pl->nstep,
          pl->nkernel, (long long)pl->arena_bytes);
  for (int k = 0; k < pl->nkernel; k++)
    fprintf(f, "void %s(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end);\n", pl->kernel_name[k]);
  if (pl->nkernel > 0) {
    fprintf(f, "static const RtKernelFn e%d_kernel[] = {", i);
    for (int k = 0; k < pl->nkernel; k++) fprintf(f, "%s%s", k ? ", " : "", pl->kernel_name[k]);
    fprintf(f, "};\nstatic const char *const e%d_kernel_name[] = {", i);
    for (int k = 0; k < pl->nkernel; k++) {
      fputs(k ? ", " : "", f);
      put_str(f, pl->kernel_name[k]);
    }
    fputs("};\n", f);
  }
  write_consts(f, i, pl);
  if (pl->nbuf > 0) write_buffers(f, i, pl);
  if (pl->nstep > 0) write_steps(f, i, pl);
  if (pl->ncheck > 0) {
    fprintf(f, "static const RtIndexCheck e%d_check[] = {\n", i);
    for (int c = 0; c < pl->ncheck; c++) {
      fprintf(f, "  {%d, %lld, ", pl->check[c].input, (long long)pl->check[c].limit);
      put_str(f, pl->check[c].what);
      fputs("},\n", f);
    }
    fputs("};\n", f);
  }
  fprintf(f, "static const RtPlan e%d_plan = {.name = ", i);
  put_str(f, pl->name);
  fprintf(f, ", .nbuf = %d, .buf = ", pl->nbuf);
  fprintf(f, pl->nbuf > 0 ? "e%d_buf" : "NULL", i);
  fprintf(f, ", .nstep = %d, .step = ", pl->nstep);
  fprintf(f, pl->nstep > 0 ? "e%d_step" : "NULL", i);
  fprintf(f, ",\n  .nkernel = %d, .kernel = ", pl->nkernel);
  fprintf(f, pl->nkernel > 0 ? "e%d_kernel" : "NULL", i);
  fputs(", .kernel_name = ", f);
  fprintf(f, pl->nkernel > 0 ? "e%d_kernel_name" : "NULL", i);
  fprintf(f, ", .arena_bytes = %lld, .ninput = %d, .noutput = %d,\n  .ncheck = %d, .check = ",
          (long long)pl->arena_bytes, pl->ninput, pl->noutput, pl->ncheck);
  fprintf(f, pl->ncheck > 0 ? "e%d_check};\n" : "NULL};\n", i);
  return 0;
}

static void write_args(FILE *f, const char *name, int n, const RtArgSpec *a) {
  if (n == 0) return;
  fprintf(f, "static const RtArgSpec %s[] = {\n", name);
  for (int k = 0; k < n; k++) {
    fputs("  {.name = ", f);
    put_str(f, a[k].name);
    fprintf(f, ", .dtype = %s, .rank = %d, .dim = ", dtype_enum(a[k].dtype), a[k].rank);
    put_dims(f, a[k].rank, a[k].dim);
    fputs("},\n", f);
  }
  fputs("};\n", f);
}

static void write_state(FILE *f, const RtPlanProgramDesc *d) {
  static const char *init[] = {"RT_INIT_ZEROS", "RT_INIT_ONES", "RT_INIT_NORMAL", "RT_INIT_UNIFORM"};
  if (d->nstate == 0) return;
  fputs("static const RtStateSpec state[] = {\n", f);
  for (int i = 0; i < d->nstate; i++) {
    const RtStateSpec *s = &d->state[i];
    fputs("  {.name = ", f);
    put_str(f, s->name);
    fprintf(f, ", .dtype = %s, .rank = %d, .dim = ", dtype_enum(s->dtype), s->rank);
    put_dims(f, s->rank, s->dim);
    if (s->param) {
      fprintf(f, ", .param = true, .init = %s, .init_a = ", init[s->init]);
      put_double(f, s->init_a);
      fputs(", .init_b = ", f);
      put_double(f, s->init_b);
    }
    if (s->transient) fputs(", .transient = true", f);
    fputs("},\n", f);
  }
  fputs("};\n", f);
}

void cg_aot_write_main(FILE *f, const RtPlanProgramDesc *d) {
  fputs("\n/* ---- the program ---- */\n", f);
  for (int i = 0; i < d->nentry; i++) {
    char name[32];
    snprintf(name, sizeof name, "e%d_in", i);
    write_args(f, name, d->entry[i].ninput, d->entry[i].input);
    snprintf(name, sizeof name, "e%d_out", i);
    write_args(f, name, d->entry[i].noutput, d->entry[i].output);
  }
  fputs("static const RtEntrySpec entry[] = {\n", f);
  for (int i = 0; i < d->nentry; i++) {
    const RtEntrySpec *en = &d->entry[i];
    fputs("  {.name = ", f);
    put_str(f, en->name);
    fprintf(f, ", .train = %s, .ninput = %d, .input = ", en->train ? "true" : "false", en->ninput);
    fprintf(f, en->ninput ? "e%d_in" : "NULL", i);
    fprintf(f, ", .noutput = %d, .output = ", en->noutput);
    fprintf(f, en->noutput ? "e%d_out" : "NULL", i);
    fputs("},\n", f);
  }
  fputs("};\nstatic const RtPlan *const plan[] = {", f);
  for (int i = 0; i < d->nentry; i++) fprintf(f, "%s&e%d_plan", i ? ", " : "", i);
  fputs("};\n", f);
  write_state(f, d);
  fputs("\nint main(int argc, char **argv) {\n  rt_blas_fix_core(argv);\n", f);
  for (int i = 0; i < d->nentry; i++) fprintf(f, "  e%d_fill();\n", i);
  fputs("  const RtPlanProgramDesc d = {.model = ", f);
  put_str(f, d->model);
  fputs(", .config = ", f);
  put_str(f, d->config);
  fputs(", .lr = ", f);
  put_double(f, d->lr);
  if (d->source_hash) {
    fputs(", .source_hash = ", f);
    put_str(f, d->source_hash);
  }
  fprintf(f, ",\n    .nstate = %d, .state = %s, .nentry = %d, .entry = entry, .plan = plan};\n", d->nstate,
          d->nstate ? "state" : "NULL", d->nentry);
  fputs("  RtErr e;\n"
        "  argc = rt_mem_take_force(argc, argv); /* before the state is allocated */\n"
        "  RtProgram *p = rt_plan_program_new(&d, 0, &e);\n"
        "  if (!p) {\n"
        "    fprintf(stderr, \"%s: error: %s\\n\", argv[0], e.msg);\n"
        "    return 1;\n"
        "  }\n"
        "  int status = rt_main(p, argc, argv);\n"
        "  rt_program_free(p);\n"
        "  return status;\n"
        "}\n",
        f);
}
