/* session.h — the LLVM session's internals, shared by llvm_session.c and
 * llvm_module.c (internal to codegen/llvm). */
#ifndef DAL_CODEGEN_LLVM_SESSION_H
#define DAL_CODEGEN_LLVM_SESSION_H

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/llvm/cg_llvm.h"

struct CgSession {
  char *triple, *cpu, *features;  /* LLVM-owned strings */
  LLVMTargetRef target;
  LLVMTargetMachineRef tm;        /* for the pass pipeline and object/asm emission */
  LLVMOrcLLJITRef jit;            /* has its own target machine, built the same way */
  int nmodules;                   /* numbers modules, so kernel names never clash */
  char pipeline[1024];            /* the LLVMRunPasses pipeline */
  char jit_error[512];            /* what the JIT's error reporter last said */
};

/* Formats an LLVM error (consuming it) into e; returns -1. */
int cg_llvm_err(RtErr *e, LLVMErrorRef err, const char *what);
/* Drops LLVM's diagnostics (e.g. "loop not vectorized" remarks) for ctx:
 * kernels are checked by tests, not by compiler chatter. */
void cg_llvm_quiet(LLVMContextRef ctx);

#endif
