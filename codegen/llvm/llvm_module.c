/* llvm_module.c — one compiled graph: lower it; for printing and object
 * files, emit every kernel into one module of its own thread-safe context,
 * verify, optimise with the session's pipeline and the host target machine
 * (without the TM the vectoriser has no cost model and does nothing), then
 * print it or emit it (an object through the compiled-object cache); for
 * the JIT, hand the kernels to jit_kernels.c. Also the helpers both paths
 * share: new modules, emission, optimisation. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen/llvm/emit.h"
#include "codegen/llvm/session.h"

struct CgModule {
  CgSession *s;
  CgLowered *low;
  LLVMOrcThreadSafeContextRef tsc; /* the whole module's, once built */
  LLVMModuleRef mod;               /* every kernel, built on demand, optimised once 'optimised' */
  bool optimised;
  bool jitted;                     /* the kernels are in the JIT; no more printing */
  CgTimes times;
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

LLVMModuleRef cg_llvm_new_module(const CgSession *s, LLVMContextRef ctx, const char *name) {
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(name, ctx);
  LLVMSetTarget(mod, s->triple);
  LLVMSetDataLayout(mod, s->datalayout);
  return mod;
}

int cg_llvm_emit(const CgSession *s, LLVMContextRef ctx, LLVMModuleRef mod, const CgLowered *low, const CgKernel *k,
                 int nk, RtErr *e) {
  Emit E = {.ctx = ctx, .mod = mod, .g = low->g, .cpu = s->cpu, .features = s->features};
  E.b = LLVMCreateBuilderInContext(ctx);
  E.f32 = LLVMFloatTypeInContext(ctx);
  E.f64 = LLVMDoubleTypeInContext(ctx);
  E.i1 = LLVMInt1TypeInContext(ctx);
  E.i32 = LLVMInt32TypeInContext(ctx);
  E.i64 = LLVMInt64TypeInContext(ctx);
  E.ptr = LLVMPointerTypeInContext(ctx, 0);
  E.vd = LLVMVoidTypeInContext(ctx);
  E.load_arg = malloc(sizeof(int) * (size_t)(low->g->n + 1));
  for (int v = 0; v < low->g->n; v++) E.load_arg[v] = -1;
  int rc = 0;
  for (int i = 0; i < nk && rc == 0; i++) {
    if (em_kernel(&E, &k[i]) < 0) rc = rt_err(e, "codegen: kernel %s: %s", k[i].name, E.err);
    for (int j = 0; j < k[i].nload; j++) E.load_arg[k[i].load[j].node] = -1; /* per kernel, not per node */
  }
  free(E.load_arg);
  free(E.cache);
  LLVMDisposeBuilder(E.b);
  return rc;
}

int cg_llvm_verify(LLVMModuleRef mod, const char *what, RtErr *e) {
  char *msg = NULL;
  int rc = 0;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg))
    rc = rt_err(e, "codegen: internal error, invalid LLVM module for %s: %.600s", what, msg);
  LLVMDisposeMessage(msg);
  return rc;
}

int cg_llvm_optimise(const CgSession *s, LLVMTargetMachineRef tm, LLVMModuleRef mod, RtErr *e) {
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  /* No loop unrolling: kernels have many loops with small constant trip
   * counts, which O3 would unroll completely, multiplying compile time for
   * no gain; the vectoriser still interleaves its vector loops. */
  LLVMPassBuilderOptionsSetLoopUnrolling(po, 0);
  LLVMPassBuilderOptionsSetLoopInterleaving(po, 0);
  LLVMErrorRef err = LLVMRunPasses(mod, s->pipeline, tm, po);
  LLVMDisposePassBuilderOptions(po);
  return err ? cg_llvm_err(e, err, "llvm: optimising") : 0;
}

CgModule *cg_module_new(CgSession *s, const IrGraph *g, const FusePlan *p, RtErr *e) {
  CgModule *m = calloc(1, sizeof *m);
  m->s = s;
  double t0 = now_ms();
  char prefix[32];
  snprintf(prefix, sizeof prefix, "dal%d_", s->nmodules++);
  m->low = cg_lower(g, p, prefix, e);
  if (!m->low) {
    free(m);
    return NULL;
  }
  m->times.lower_ms = now_ms() - t0;
  return m;
}

/* The module with every kernel, emitted at the first call and optimised
 * when 'optimise' (printing, object files; the JIT compiles each kernel
 * in a module of its own, jit_kernels.c). */
static int whole_module(CgModule *m, bool optimise, RtErr *e) {
  if (m->jitted)
    return rt_err(e, "codegen: the kernels of %s were handed to the JIT; print or emit them before cg_module_jit",
                  m->low->plan.name);
  if (!m->mod) {
    double t0 = now_ms();
    m->tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(m->tsc);
    cg_llvm_quiet(ctx);
    m->mod = cg_llvm_new_module(m->s, ctx, m->low->g->name ? m->low->g->name : "entry");
    if (cg_llvm_emit(m->s, ctx, m->mod, m->low, m->low->kernel, m->low->nkernel, e) < 0 ||
        cg_llvm_verify(m->mod, m->low->g->name ? m->low->g->name : "?", e) < 0)
      return -1;
    m->times.emit_ms += now_ms() - t0;
  }
  if (optimise && !m->optimised) {
    double t0 = now_ms();
    if (cg_llvm_optimise(m->s, m->s->tm, m->mod, e) < 0) return -1;
    m->optimised = true;
    m->times.opt_ms += now_ms() - t0;
  }
  return 0;
}

void cg_module_free(CgModule *m) {
  if (!m) return;
  if (m->mod) LLVMDisposeModule(m->mod);
  if (m->tsc) LLVMOrcDisposeThreadSafeContext(m->tsc);
  cg_lowered_free(m->low);
  free(m);
}

const CgLowered *cg_module_lowered(const CgModule *m) { return m->low; }
const CgTimes *cg_module_times(const CgModule *m) { return &m->times; }
const RtPlan *cg_module_plan(const CgModule *m) { return &m->low->plan; }

int cg_module_print_llvm(CgModule *m, FILE *out, RtErr *e) {
  if (whole_module(m, true, e) < 0) return -1;
  char *text = LLVMPrintModuleToString(m->mod);
  fputs(text, out);
  LLVMDisposeMessage(text);
  return 0;
}

/* LLVMTargetMachineEmitTo* changes the module it is given, so each
 * emission works on a clone. */
int cg_module_print_asm(CgModule *m, FILE *out, RtErr *e) {
  if (whole_module(m, true, e) < 0) return -1;
  LLVMModuleRef clone = LLVMCloneModule(m->mod);
  LLVMMemoryBufferRef buf = NULL;
  char *msg = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(m->s->tm, clone, LLVMAssemblyFile, &msg, &buf)) {
    rt_err(e, "llvm: emitting assembly: %s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(clone);
    return -1;
  }
  fwrite(LLVMGetBufferStart(buf), 1, LLVMGetBufferSize(buf), out);
  LLVMDisposeMemoryBuffer(buf);
  LLVMDisposeModule(clone);
  return 0;
}

/* Writes n bytes to path. */
static int write_file(const char *path, const void *bytes, size_t n, RtErr *e) {
  FILE *f = fopen(path, "wb");
  if (!f) return rt_err(e, "%s: cannot write the object file: %s", path, strerror(errno));
  bool ok = fwrite(bytes, 1, n, f) == n;
  if (fclose(f)) ok = false;
  return ok ? 0 : rt_err(e, "%s: cannot write the object file", path);
}

/* The object is looked up in the cache under the key of the unoptimised
 * module's text (kernel names included: the AOT tables refer to them). */
int cg_module_emit_object(CgModule *m, const char *path, RtErr *e) {
  if (whole_module(m, false, e) < 0) return -1;
  CgSession *s = m->s;
  int nk = m->low->nkernel; /* counted per kernel, like the JIT's */
  s->counts.kernels += nk;
  CgCacheKey key = {{0, 0}};
  if (s->use_cache && !m->optimised) {
    double t0 = now_ms();
    char *text = LLVMPrintModuleToString(m->mod);
    key = cg_llvm_key(s, text);
    LLVMDisposeMessage(text);
    void *bytes;
    size_t n;
    char why[4200];
    CgCacheLookup got = cg_cache_load(s->cache_dir, &key, &bytes, &n, why, sizeof why);
    m->times.cache_ms += now_ms() - t0;
    if (got == CG_CACHE_HIT) {
      s->counts.cache_hits += nk;
      int rc = write_file(path, bytes, n, e);
      free(bytes);
      return rc;
    }
    s->counts.cache_misses += nk;
    if (got == CG_CACHE_BAD) {
      s->counts.cache_bad++; /* entries, not kernels */
      fprintf(stderr, "note: dal cache: %s; rebuilding it\n", why);
    }
  }
  bool store = s->use_cache && !m->optimised;
  if (whole_module(m, true, e) < 0) return -1;
  double t0 = now_ms();
  s->counts.compiled += nk;
  LLVMModuleRef clone = LLVMCloneModule(m->mod);
  LLVMMemoryBufferRef buf = NULL;
  char *msg = NULL;
  int rc = 0;
  if (LLVMTargetMachineEmitToMemoryBuffer(s->tm, clone, LLVMObjectFile, &msg, &buf)) {
    rc = rt_err(e, "%s: cannot emit the object file: %s", path, msg ? msg : "?");
    LLVMDisposeMessage(msg);
  } else {
    rc = write_file(path, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf), e);
    if (rc == 0 && store) cg_cache_store(s->cache_dir, &key, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
    LLVMDisposeMemoryBuffer(buf);
  }
  LLVMDisposeModule(clone);
  m->times.jit_ms += now_ms() - t0;
  return rc;
}

int cg_module_jit(CgModule *m, RtErr *e) {
  if (m->jitted) return rt_err(e, "codegen: the kernels of %s are already in the JIT", m->low->plan.name);
  m->jitted = true;
  return cg_jit_kernels(m->s, m->low, &m->times, e);
}
