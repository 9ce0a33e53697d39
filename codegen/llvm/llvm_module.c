/* llvm_module.c — one compiled graph: lower it, emit every kernel into a
 * module of its own thread-safe context, verify, optimise with
 * default<O3> and the host target machine (without the TM the vectoriser
 * has no cost model and does nothing), then print it, emit it, or hand it
 * to the JIT under a resource tracker so freeing the module frees its code. */
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
  LLVMOrcThreadSafeContextRef tsc;
  LLVMModuleRef mod;             /* NULL once the JIT has it */
  LLVMOrcResourceTrackerRef rt;  /* the JIT'd code, once there is some */
  CgTimes times;
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int emit_all(CgModule *m, LLVMContextRef ctx, RtErr *e) {
  const CgLowered *low = m->low;
  Emit E = {.ctx = ctx, .mod = m->mod, .g = low->g, .cpu = m->s->cpu, .features = m->s->features};
  E.b = LLVMCreateBuilderInContext(ctx);
  E.f32 = LLVMFloatTypeInContext(ctx);
  E.f64 = LLVMDoubleTypeInContext(ctx);
  E.i1 = LLVMInt1TypeInContext(ctx);
  E.i32 = LLVMInt32TypeInContext(ctx);
  E.i64 = LLVMInt64TypeInContext(ctx);
  E.ptr = LLVMPointerTypeInContext(ctx, 0);
  E.vd = LLVMVoidTypeInContext(ctx);
  E.load_arg = malloc(sizeof(int) * (size_t)(low->g->n + 1));
  int rc = 0;
  for (int i = 0; i < low->nkernel && rc == 0; i++)
    if (em_kernel(&E, &low->kernel[i]) < 0) rc = rt_err(e, "codegen: kernel %s: %s", low->kernel[i].name, E.err);
  free(E.load_arg);
  free(E.cache);
  LLVMDisposeBuilder(E.b);
  return rc;
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
  double t1 = now_ms();
  m->tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(m->tsc);
  cg_llvm_quiet(ctx);
  m->mod = LLVMModuleCreateWithNameInContext(g->name ? g->name : "entry", ctx);
  LLVMSetTarget(m->mod, s->triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(s->tm);
  char *dl = LLVMCopyStringRepOfTargetData(td);
  LLVMSetDataLayout(m->mod, dl);
  LLVMDisposeMessage(dl);
  LLVMDisposeTargetData(td);
  if (emit_all(m, ctx, e) < 0) {
    cg_module_free(m);
    return NULL;
  }
  char *msg = NULL;
  if (LLVMVerifyModule(m->mod, LLVMReturnStatusAction, &msg)) {
    rt_err(e, "codegen: internal error, invalid LLVM module for %s: %.600s", g->name ? g->name : "?", msg);
    LLVMDisposeMessage(msg);
    cg_module_free(m);
    return NULL;
  }
  LLVMDisposeMessage(msg);
  double t2 = now_ms();
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  /* No loop unrolling: kernels have many loops with small constant trip
   * counts, which O3 would unroll completely, multiplying compile time for
   * no gain; the vectoriser still interleaves its vector loops. */
  LLVMPassBuilderOptionsSetLoopUnrolling(po, 0);
  LLVMPassBuilderOptionsSetLoopInterleaving(po, 0);
  LLVMErrorRef err = LLVMRunPasses(m->mod, s->pipeline, s->tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (err) {
    cg_llvm_err(e, err, "llvm: optimising");
    cg_module_free(m);
    return NULL;
  }
  double t3 = now_ms();
  m->times = (CgTimes){.lower_ms = t1 - t0, .emit_ms = t2 - t1, .opt_ms = t3 - t2};
  return m;
}

void cg_module_free(CgModule *m) {
  if (!m) return;
  if (m->rt) {
    LLVMErrorRef err = LLVMOrcResourceTrackerRemove(m->rt);
    if (err) LLVMConsumeError(err);
    LLVMOrcReleaseResourceTracker(m->rt);
  }
  if (m->mod) LLVMDisposeModule(m->mod);
  if (m->tsc) LLVMOrcDisposeThreadSafeContext(m->tsc);
  cg_lowered_free(m->low);
  free(m);
}

const CgLowered *cg_module_lowered(const CgModule *m) { return m->low; }
const CgTimes *cg_module_times(const CgModule *m) { return &m->times; }
const RtPlan *cg_module_plan(const CgModule *m) { return &m->low->plan; }

static int need_module(const CgModule *m, RtErr *e) {
  if (m->mod) return 0;
  return rt_err(e, "codegen: the module of %s was handed to the JIT; print or emit it before cg_module_jit",
                m->low->plan.name);
}

int cg_module_print_llvm(CgModule *m, FILE *out, RtErr *e) {
  if (need_module(m, e) < 0) return -1;
  char *text = LLVMPrintModuleToString(m->mod);
  fputs(text, out);
  LLVMDisposeMessage(text);
  return 0;
}

/* LLVMTargetMachineEmitTo* changes the module it is given, so each
 * emission works on a clone. */
int cg_module_print_asm(CgModule *m, FILE *out, RtErr *e) {
  if (need_module(m, e) < 0) return -1;
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

int cg_module_emit_object(CgModule *m, const char *path, RtErr *e) {
  if (need_module(m, e) < 0) return -1;
  LLVMModuleRef clone = LLVMCloneModule(m->mod);
  char *file = strdup(path); /* the API takes a non-const name */
  char *msg = NULL;
  int rc = 0;
  if (LLVMTargetMachineEmitToFile(m->s->tm, clone, file, LLVMObjectFile, &msg)) {
    rc = rt_err(e, "%s: cannot write the object file: %s", path, msg ? msg : "?");
    LLVMDisposeMessage(msg);
  }
  free(file);
  LLVMDisposeModule(clone);
  return rc;
}

int cg_module_jit(CgModule *m, RtErr *e) {
  if (need_module(m, e) < 0) return -1;
  double t0 = now_ms();
  CgSession *s = m->s;
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(s->jit);
  m->rt = LLVMOrcJITDylibCreateResourceTracker(jd);
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m->mod, m->tsc);
  m->mod = NULL;
  LLVMErrorRef err = LLVMOrcLLJITAddLLVMIRModuleWithRT(s->jit, m->rt, tsm);
  if (err) {
    LLVMOrcDisposeThreadSafeModule(tsm);
    return cg_llvm_err(e, err, "llvm: adding the module to the JIT");
  }
  CgLowered *low = m->low;
  for (int i = 0; i < low->nkernel; i++) {
    LLVMOrcExecutorAddress addr = 0;
    s->jit_error[0] = 0;
    err = LLVMOrcLLJITLookup(s->jit, &addr, low->kernel[i].name); /* the first lookup compiles the module */
    if (err) return cg_llvm_err(e, err, "llvm: JIT-compiling the kernels");
    low->fn[i] = (RtKernelFn)(uintptr_t)addr;
  }
  m->times.jit_ms = now_ms() - t0;
  return 0;
}
