/* jit_kernels.c — a lowered graph's kernels into the JIT, each compiled at
 * most once: a kernel whose lowering signature (lower.h) the session has
 * met before takes that code without being emitted; every other is emitted into a module of its own (its own
 * thread-safe context) under a fixed placeholder name, and keyed by that
 * module's text (cg_llvm_key: text, pipeline, target, CPU, features, LLVM
 * version). A kernel whose key the session has already loaded (another
 * entry's copy, another layer's) reuses that code; else the on-disk cache
 * (obj_cache.h) may have its object; else it is optimised and compiled to
 * an object (stored in the cache). Its symbol is named after the key
 * (dalk_<hex>), so identical kernels are one symbol and objects from the
 * cache load as they are.
 *
 * Emission and compilation run on up to compile_threads threads, each
 * with its own target machine (a TargetMachine is not thread-safe; each
 * kernel's context is its own). Deciding what to reuse, loading objects
 * and JIT lookups happen on the calling thread. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <llvm-c/Orc.h>

#include "codegen/llvm/session.h"

#define PLACEHOLDER "dal.kernel"

typedef enum {
  JOB_NEW,     /* not yet resolved */
  JOB_KNOWN,   /* addr is known by the kernel's signature (nothing emitted) */
  JOB_LOADED,  /* addr is known by the kernel's key (already in the session's JIT) */
  JOB_SAME,    /* the same code as job 'same' of this batch */
  JOB_CACHED,  /* obj (malloc'd) came from the on-disk cache */
  JOB_COMPILE, /* to be compiled; then buf holds the object */
} JobState;

typedef struct {
  const CgKernel *k;
  LLVMOrcThreadSafeContextRef tsc;
  LLVMModuleRef mod;           /* until compiled or found elsewhere */
  CgCacheKey key;
  char sym[48];                /* dalk_<hex of key> */
  JobState state;
  int same;
  uint64_t addr;
  void *obj;                   /* JOB_CACHED */
  size_t nobj;
  LLVMMemoryBufferRef buf;     /* JOB_COMPILE, once compiled */
  bool failed;
  RtErr err;
} Job;

typedef struct {
  CgSession *s;
  const CgLowered *low;
  Job *job;
  int njob;
  bool compile;                /* the phase: emit (false) or compile (true) */
  int next;                    /* the next job to take (atomic) */
} Work;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void drop_module(Job *j) {
  if (j->mod) LLVMDisposeModule(j->mod);
  if (j->tsc) LLVMOrcDisposeThreadSafeContext(j->tsc);
  j->mod = NULL;
  j->tsc = NULL;
}

/* Job j's kernel, alone in a module under PLACEHOLDER, and its key. */
static void emit_job(const CgSession *s, const CgLowered *low, Job *j) {
  j->tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(j->tsc);
  cg_llvm_quiet(ctx);
  j->mod = cg_llvm_new_module(s, ctx, PLACEHOLDER);
  CgKernel k = *j->k;
  snprintf(k.name, sizeof k.name, "%s", PLACEHOLDER);
  if (cg_llvm_emit(s, ctx, j->mod, low, &k, 1, &j->err) < 0) {
    char msg[sizeof j->err.msg];
    snprintf(msg, sizeof msg, "%s", j->err.msg);
    rt_err(&j->err, "%s (kernel %s)", msg, j->k->name);
    j->failed = true;
    return;
  }
  char *text = LLVMPrintModuleToString(j->mod);
  j->key = cg_llvm_key(s, text);
  LLVMDisposeMessage(text);
  char hex[33];
  cg_cache_key_hex(&j->key, hex);
  snprintf(j->sym, sizeof j->sym, "dalk_%s", hex);
}

/* Job j's module optimised and compiled (with tm) into j->buf, and stored
 * in the cache. */
static void compile_job(const CgSession *s, LLVMTargetMachineRef tm, Job *j) {
  if (cg_llvm_verify(j->mod, j->k->name, &j->err) < 0) { /* only what is compiled: cached code was verified */
    j->failed = true;
    return;
  }
  LLVMValueRef fn = LLVMGetNamedFunction(j->mod, PLACEHOLDER);
  LLVMSetValueName2(fn, j->sym, strlen(j->sym));
  if (cg_llvm_optimise(s, tm, j->mod, &j->err) < 0) {
    j->failed = true;
    return;
  }
  char *msg = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, j->mod, LLVMObjectFile, &msg, &j->buf)) {
    rt_err(&j->err, "llvm: compiling kernel %s: %s", j->k->name, msg ? msg : "?");
    LLVMDisposeMessage(msg);
    j->buf = NULL;
    j->failed = true;
    return;
  }
  drop_module(j);
  if (s->use_cache) cg_cache_store(s->cache_dir, &j->key, LLVMGetBufferStart(j->buf), LLVMGetBufferSize(j->buf));
}

static void *worker(void *arg) {
  Work *w = arg;
  LLVMTargetMachineRef tm = NULL;
  for (;;) {
    int i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
    if (i >= w->njob) break;
    Job *j = &w->job[i];
    if (!w->compile) {
      if (j->state == JOB_NEW) emit_job(w->s, w->low, j);
    } else if (j->state == JOB_COMPILE) {
      if (!tm) tm = cg_llvm_host_tm(w->s);
      compile_job(w->s, tm, j);
    }
  }
  if (tm) LLVMDisposeTargetMachine(tm);
  return NULL;
}

static int thread_count(const CgSession *s, int work) {
  int n = s->compile_threads;
  if (n <= 0) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    n = cores < 1 ? 1 : cores > 8 ? 8 : (int)cores;
  }
  return n < work ? n : work;
}

/* Runs one phase over every job on up to thread_count threads (the
 * calling thread is one of them). */
static void run_phase(Work *w, bool compile, int work) {
  w->compile = compile;
  w->next = 0;
  int n = thread_count(w->s, work);
  pthread_t th[8];
  int started = 0;
  for (int t = 1; t < n; t++)
    if (pthread_create(&th[started], NULL, worker, w) == 0) started++;
  worker(w);
  for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
}

static bool same_key(const CgCacheKey *a, const CgCacheKey *b) { return a->h[0] == b->h[0] && a->h[1] == b->h[1]; }

static const struct CgLoaded *find_loaded(const CgSession *s, const CgCacheKey *k) {
  for (int i = 0; i < s->nloaded; i++)
    if (same_key(&s->loaded[i].key, k)) return &s->loaded[i];
  return NULL;
}

/* What each job reuses: the session's code, an earlier job of the batch,
 * or a cached object; the rest are to compile. Returns how many. */
static int resolve(CgSession *s, Job *job, int n) {
  int compile = 0;
  for (int i = 0; i < n; i++) {
    Job *j = &job[i];
    if (j->state == JOB_KNOWN) continue;
    const struct CgLoaded *l = find_loaded(s, &j->key);
    j->state = JOB_COMPILE;
    for (int p = 0; p < i && !l && j->state == JOB_COMPILE; p++)
      if (job[p].state != JOB_SAME && job[p].state != JOB_KNOWN && same_key(&job[p].key, &j->key)) {
        j->state = JOB_SAME;
        j->same = p;
      }
    if (l) {
      j->state = JOB_LOADED;
      j->addr = l->addr;
    }
    if (j->state != JOB_COMPILE) {
      s->counts.deduplicated++;
    } else if (s->use_cache) {
      char why[4200];
      CgCacheLookup got = cg_cache_load(s->cache_dir, &j->key, &j->obj, &j->nobj, why, sizeof why);
      if (got == CG_CACHE_HIT) {
        j->state = JOB_CACHED;
        s->counts.cache_hits++;
      } else {
        s->counts.cache_misses++;
        if (got == CG_CACHE_BAD) {
          s->counts.cache_bad++;
          fprintf(stderr, "note: dal cache: %s; rebuilding it\n", why);
        }
      }
    }
    if (j->state == JOB_COMPILE) compile++;
    else drop_module(j);
  }
  s->counts.compiled += compile;
  return compile;
}

static uint64_t signature_hash(const char *sig) {
  uint64_t h = 1469598103934665603ull;
  for (const char *c = sig; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
  return h;
}

/* Jobs whose kernel signature the session knows take that code (no
 * emission); returns how many. */
static int find_known(CgSession *s, Job *job, int n) {
  int found = 0;
  for (int i = 0; i < n; i++) {
    const char *sig = job[i].k->signature;
    if (!sig) continue;
    uint64_t h = signature_hash(sig);
    for (int q = 0; q < s->nknown; q++)
      if (s->known[q].hash == h && !strcmp(s->known[q].signature, sig)) {
        job[i].state = JOB_KNOWN;
        job[i].addr = s->known[q].addr;
        found++;
        break;
      }
  }
  s->counts.deduplicated += found;
  return found;
}

static void remember(CgSession *s, const char *sig, uint64_t addr) {
  if (s->nknown == s->capknown) {
    s->capknown = s->capknown ? 2 * s->capknown : 64;
    s->known = realloc(s->known, sizeof *s->known * (size_t)s->capknown);
  }
  s->known[s->nknown++] = (struct CgKnown){strdup(sig), signature_hash(sig), addr};
}

/* Adds job j's object to the JIT and looks its symbol up. */
static int load_job(CgSession *s, Job *j, RtErr *e) {
  LLVMMemoryBufferRef buf = j->buf;
  j->buf = NULL;
  if (j->state == JOB_CACHED) {
    buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(j->obj, j->nobj, j->sym);
    free(j->obj);
    j->obj = NULL;
  }
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(s->jit);
  LLVMErrorRef err = LLVMOrcLLJITAddObjectFile(s->jit, jd, buf); /* takes buf */
  if (err) return cg_llvm_err(e, err, "llvm: adding a kernel object to the JIT");
  s->jit_error[0] = 0;
  LLVMOrcExecutorAddress addr = 0;
  err = LLVMOrcLLJITLookup(s->jit, &addr, j->sym);
  if (err) return cg_llvm_err(e, err, "llvm: loading the kernels");
  j->addr = addr;
  if (s->nloaded == s->caploaded) {
    s->caploaded = s->caploaded ? 2 * s->caploaded : 64;
    s->loaded = realloc(s->loaded, sizeof *s->loaded * (size_t)s->caploaded);
  }
  s->loaded[s->nloaded++] = (struct CgLoaded){j->key, addr};
  return 0;
}

int cg_jit_kernels(CgSession *s, CgLowered *low, CgTimes *t, RtErr *e) {
  int n = low->nkernel;
  Job *job = calloc((size_t)n + 1, sizeof *job);
  for (int i = 0; i < n; i++) job[i].k = &low->kernel[i];
  Work w = {.s = s, .low = low, .job = job, .njob = n};
  s->counts.kernels += n;
  double t0 = now_ms();
  int known = find_known(s, job, n);
  if (known < n) run_phase(&w, false, n - known);
  double t1 = now_ms();
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++)
    if (job[i].failed) rc = rt_err(e, "%s", job[i].err.msg);
  int compile = rc == 0 ? resolve(s, job, n) : 0;
  double t2 = now_ms();
  if (compile) run_phase(&w, true, compile);
  double t3 = now_ms();
  for (int i = 0; i < n && rc == 0; i++)
    if (job[i].failed) rc = rt_err(e, "%s", job[i].err.msg);
  for (int i = 0; i < n && rc == 0; i++)
    if (job[i].state == JOB_CACHED || job[i].state == JOB_COMPILE) rc = load_job(s, &job[i], e);
  for (int i = 0; i < n && rc == 0; i++) {
    Job *j = &job[i];
    uint64_t addr = j->state == JOB_SAME ? job[j->same].addr : j->addr;
    low->fn[i] = (RtKernelFn)(uintptr_t)addr;
    if (j->state != JOB_KNOWN && j->k->signature) remember(s, j->k->signature, addr);
  }
  for (int i = 0; i < n; i++) {
    drop_module(&job[i]);
    free(job[i].obj);
    if (job[i].buf) LLVMDisposeMemoryBuffer(job[i].buf);
  }
  free(job);
  t->emit_ms += t1 - t0;
  t->cache_ms += t2 - t1;
  t->opt_ms += t3 - t2;
  t->jit_ms += now_ms() - t3;
  return rc;
}
