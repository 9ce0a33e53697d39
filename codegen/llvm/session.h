/* session.h — the LLVM session's internals, shared by llvm_session.c and
 * llvm_module.c (internal to codegen/llvm). */
#ifndef DAL_CODEGEN_LLVM_SESSION_H
#define DAL_CODEGEN_LLVM_SESSION_H

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/TargetMachine.h>

#include <stdbool.h>
#include <stdint.h>

#include "codegen/llvm/cg_llvm.h"
#include "codegen/llvm/obj_cache.h"

struct CgSession {
  char *triple, *cpu, *features;  /* LLVM-owned strings */
  LLVMTargetRef target;
  LLVMTargetMachineRef tm;        /* for the pass pipeline and object/asm emission */
  LLVMOrcLLJITRef jit;            /* has its own target machine, built the same way */
  int nmodules;                   /* numbers modules, so kernel names never clash */
  char pipeline[1024];            /* the LLVMRunPasses pipeline */
  char jit_error[512];            /* what the JIT's error reporter last said */
  char *datalayout;               /* the host TM's, for every module (LLVM-owned) */
  /* Kernels in the JIT, by key (obj_cache.h): their code lives as long as
   * the session, and a kernel met again (another entry, another layer's
   * copy) reuses it. */
  struct CgLoaded {
    CgCacheKey key;
    uint64_t addr;
  } *loaded;
  int nloaded, caploaded;
  /* The same code by the kernel's lowering signature (lower.h), which
   * spares emitting and keying a kernel seen before; valid for the current
   * pipeline (cleared when it changes). */
  struct CgKnown {
    char *signature;               /* malloc'd */
    uint64_t hash;
    uint64_t addr;
  } *known;
  int nknown, capknown;
  bool use_cache;                 /* the on-disk cache (cache_dir) is on */
  char cache_dir[4096];
  char key_salt[128];             /* $DAL_CACHE_KEY_SALT: a test hook, an extra key part */
  int compile_threads;            /* kernels compiled at once */
  CgCompileCounts counts;
};

/* Empties the signature table (known). */
void cg_session_forget_signatures(CgSession *s);
/* A new module in ctx with the session's triple and data layout. */
LLVMModuleRef cg_llvm_new_module(const CgSession *s, LLVMContextRef ctx, const char *name);
/* Emits kernels k[0 .. nk) of low into mod (in ctx). -1 with e set. */
int cg_llvm_emit(const CgSession *s, LLVMContextRef ctx, LLVMModuleRef mod, const CgLowered *low, const CgKernel *k,
                 int nk, RtErr *e);
/* Verifies mod (what: for the message). -1 with e set if it is invalid. */
int cg_llvm_verify(LLVMModuleRef mod, const char *what, RtErr *e);
/* A target machine for the host, as the session's (one per thread). */
LLVMTargetMachineRef cg_llvm_host_tm(const CgSession *s);
/* Runs the session's pipeline over mod with tm. -1 with e set. */
int cg_llvm_optimise(const CgSession *s, LLVMTargetMachineRef tm, LLVMModuleRef mod, RtErr *e);
/* The cache key of a module's IR text (obj_cache.h): the text, pipeline,
 * triple, CPU, features, LLVM version, cache format and test salt. */
CgCacheKey cg_llvm_key(const CgSession *s, const char *ir_text);

/* ---- jit_kernels.c ---- */
/* Compiles (or finds in the session or the cache) kernels low->kernel[0 ..
 * nkernel) and puts their JIT'd addresses in low->fn. Times go to t. */
int cg_jit_kernels(CgSession *s, CgLowered *low, CgTimes *t, RtErr *e);

/* Formats an LLVM error (consuming it) into e; returns -1. */
int cg_llvm_err(RtErr *e, LLVMErrorRef err, const char *what);
/* Drops LLVM's diagnostics (e.g. "loop not vectorized" remarks) for ctx:
 * kernels are checked by tests, not by compiler chatter. */
void cg_llvm_quiet(LLVMContextRef ctx);

#endif
