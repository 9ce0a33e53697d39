/* llvm_session.c — the native target, the host target machines and the
 * LLJIT, with the runtime helpers JIT'd code may call registered as
 * absolute symbols (no process symbol search, no -rdynamic needed); the
 * session's cache settings, compile counts and the cache key of a module. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm/Config/llvm-config.h>

#include "codegen/llvm/session.h"
#include "runtime/core/rng.h"
#include "runtime/sched/attention.h"

int cg_llvm_err(RtErr *e, LLVMErrorRef err, const char *what) {
  char *msg = LLVMGetErrorMessage(err);
  rt_err(e, "%s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
  return -1;
}

static void drop_diagnostic(LLVMDiagnosticInfoRef di, void *ctx) {
  (void)di;
  (void)ctx;
}

void cg_llvm_quiet(LLVMContextRef ctx) { LLVMContextSetDiagnosticHandler(ctx, drop_diagnostic, NULL); }

/* Session errors (unresolved symbols, ...) are kept for the caller rather
 * than printed to stderr. */
static void report_jit_error(void *ctx, LLVMErrorRef err) {
  CgSession *s = ctx;
  char *msg = LLVMGetErrorMessage(err);
  snprintf(s->jit_error, sizeof s->jit_error, "%s", msg);
  LLVMDisposeErrorMessage(msg);
}

/* At CodeGenLevelAggressive, position-independent (objects go into PIE
 * executables), for the host CPU name and its feature string (the name
 * alone would turn on AVX-512 where the host has none). */
LLVMTargetMachineRef cg_llvm_host_tm(const CgSession *s) {
  return LLVMCreateTargetMachine(s->target, s->triple, s->cpu, s->features, LLVMCodeGenLevelAggressive,
                                 LLVMRelocPIC, LLVMCodeModelDefault);
}

static int define_helpers(CgSession *s, RtErr *e) {
  /* LLVM itself turns copy and fill loops into memcpy / memset calls */
  static const struct {
    const char *name;
    uintptr_t addr;
  } helper[] = {
      {"pow", (uintptr_t)&pow},
      {"rt_gumbel_fill_range", (uintptr_t)&rt_gumbel_fill_range},
      {"rt_attn_forward", (uintptr_t)&rt_attn_forward},
      {"rt_attn_backward", (uintptr_t)&rt_attn_backward},
      {"memcpy", (uintptr_t)&memcpy},
      {"memmove", (uintptr_t)&memmove},
      {"memset", (uintptr_t)&memset},
  };
  enum { NHELPER = sizeof helper / sizeof helper[0] };
  LLVMOrcCSymbolMapPair pairs[NHELPER];
  for (int i = 0; i < NHELPER; i++) {
    pairs[i].Name = LLVMOrcLLJITMangleAndIntern(s->jit, helper[i].name);
    pairs[i].Sym.Address = (LLVMOrcExecutorAddress)helper[i].addr;
    pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    pairs[i].Sym.Flags.TargetFlags = 0;
  }
  LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, NHELPER);
  LLVMErrorRef err = LLVMOrcJITDylibDefine(LLVMOrcLLJITGetMainJITDylib(s->jit), mu);
  if (err) {
    LLVMOrcDisposeMaterializationUnit(mu);
    return cg_llvm_err(e, err, "llvm: registering runtime helpers");
  }
  return 0;
}

CgSession *cg_session_new(RtErr *e) {
  static int initialised;
  if (!initialised) {
    if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter()) {
      rt_err(e, "llvm: this machine's target is not available in the LLVM library");
      return NULL;
    }
    initialised = 1;
  }
  CgSession *s = calloc(1, sizeof *s);
  cg_session_set_pipeline(s, NULL);
  s->triple = LLVMGetDefaultTargetTriple();
  s->cpu = LLVMGetHostCPUName();
  s->features = LLVMGetHostCPUFeatures();
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(s->triple, &s->target, &msg)) {
    rt_err(e, "llvm: no target for %s: %s", s->triple, msg ? msg : "?");
    LLVMDisposeMessage(msg);
    cg_session_free(s);
    return NULL;
  }
  s->tm = cg_llvm_host_tm(s);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(s->tm);
  s->datalayout = LLVMCopyStringRepOfTargetData(td);
  LLVMDisposeTargetData(td);
  s->use_cache = cg_cache_dir(s->cache_dir, sizeof s->cache_dir) == 0;
  const char *salt = getenv("DAL_CACHE_KEY_SALT");
  snprintf(s->key_salt, sizeof s->key_salt, "%s", salt ? salt : "");
  LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
  LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(cg_llvm_host_tm(s));
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, jtmb);
  LLVMErrorRef err = LLVMOrcCreateLLJIT(&s->jit, jb); /* consumes jb */
  if (err) {
    s->jit = NULL;
    cg_llvm_err(e, err, "llvm: creating the JIT");
    cg_session_free(s);
    return NULL;
  }
  LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(s->jit), report_jit_error, s);
  if (define_helpers(s, e) < 0) {
    cg_session_free(s);
    return NULL;
  }
  return s;
}

void cg_session_free(CgSession *s) {
  if (!s) return;
  if (s->jit) {
    LLVMErrorRef err = LLVMOrcDisposeLLJIT(s->jit);
    if (err) LLVMConsumeError(err);
  }
  if (s->tm) LLVMDisposeTargetMachine(s->tm);
  LLVMDisposeMessage(s->triple);
  LLVMDisposeMessage(s->cpu);
  LLVMDisposeMessage(s->features);
  LLVMDisposeMessage(s->datalayout);
  free(s->loaded);
  cg_session_forget_signatures(s);
  free(s->known);
  free(s);
}

void cg_session_forget_signatures(CgSession *s) {
  for (int i = 0; i < s->nknown; i++) free(s->known[i].signature);
  s->nknown = 0;
}

void cg_session_set_pipeline(CgSession *s, const char *passes) {
  cg_session_forget_signatures(s); /* the same kernel compiles to other code now */
  snprintf(s->pipeline, sizeof s->pipeline, "%s", passes ? passes : CG_DEFAULT_PIPELINE);
}

const char *cg_session_pipeline(const CgSession *s) { return s->pipeline; }

const char *cg_session_cpu(const CgSession *s) { return s->cpu; }
const char *cg_session_features(const CgSession *s) { return s->features; }

void cg_session_set_cache(CgSession *s, bool enabled) {
  s->use_cache = enabled && cg_cache_dir(s->cache_dir, sizeof s->cache_dir) == 0;
}

void cg_session_set_compile_threads(CgSession *s, int n) { s->compile_threads = n > 0 ? n : 0; }

const CgCompileCounts *cg_session_counts(const CgSession *s) { return &s->counts; }

void cg_compile_counts_add(CgCompileCounts *a, const CgCompileCounts *b) {
  a->kernels += b->kernels;
  a->deduplicated += b->deduplicated;
  a->cache_hits += b->cache_hits;
  a->cache_misses += b->cache_misses;
  a->cache_bad += b->cache_bad;
  a->compiled += b->compiled;
}

CgCacheKey cg_llvm_key(const CgSession *s, const char *ir_text) {
  CgCacheKey k;
  cg_cache_key_init(&k);
  char format[32];
  snprintf(format, sizeof format, "dal-obj-%d", CG_CACHE_FORMAT);
  cg_cache_key_str(&k, format);
  cg_cache_key_str(&k, "llvm " LLVM_VERSION_STRING);
  cg_cache_key_str(&k, s->triple);
  cg_cache_key_str(&k, s->cpu);
  cg_cache_key_str(&k, s->features);
  cg_cache_key_str(&k, s->pipeline);
  cg_cache_key_str(&k, s->key_salt);
  cg_cache_key_str(&k, ir_text);
  return k;
}
