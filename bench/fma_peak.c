/* fma_peak.c — the cores' float32 FMA peak, the hard roof of dal's
 * benchmarks (MODELS.md section 3), measured and from the data sheet.
 *
 *   build/bench/fma_peak [--threads N] [--quick]
 *
 * Measured: N threads (default 2, the benchmarks' count) each run a tight
 * loop of 12 independent FMA chains (enough to hide the FMA latency on two
 * FMA ports), 16-wide AVX-512 where the CPU has it (OpenBLAS's SkylakeX
 * kernels use it, so it is the GEMMs' roof), else 8-wide AVX2, for 0.5 s
 * (0.1 s with --quick), three times; the best of the three counts (a
 * shared machine only ever lowers the figure). GFLOP/s = 2 x width x 12 x
 * iterations / seconds, summed over the threads. Nominal: cores x GHz x
 * 4 x width flops/cycle (two FMA units), with cores the thread count and
 * GHz the first "cpu MHz" of /proc/cpuinfo.
 * Prints one JSON object on stdout; a CPU without AVX2 and FMA is an error
 * (status 1, message on stderr).
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS 12
#define INNER 1000 /* iterations between clock reads */

typedef struct {
  double seconds;    /* how long to run */
  double flops;      /* done */
  double elapsed;    /* wall seconds taken */
  float sink;        /* keeps the result alive */
} Worker;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One worker loop per vector width: twelve named accumulators (not an
 * array) so that they stay in registers. T is the vector type, W its
 * float lanes, SET1 and FMADD its intrinsics, ISA the target attribute. */
#define FMA_LOOP(name, ISA, T, W, SET1, FMADD)                                                                 \
  __attribute__((target(ISA))) static void *name(void *arg) {                                                  \
    Worker *w = arg;                                                                                           \
    T c0 = SET1(0.0f), c1 = SET1(0.01f), c2 = SET1(0.02f), c3 = SET1(0.03f), c4 = SET1(0.04f);               \
    T c5 = SET1(0.05f), c6 = SET1(0.06f), c7 = SET1(0.07f), c8 = SET1(0.08f), c9 = SET1(0.09f);              \
    T c10 = SET1(0.10f), c11 = SET1(0.11f);                                                                    \
    const T m = SET1(0.999999f), a = SET1(1e-7f);                                                              \
    uint64_t rounds = 0;                                                                                       \
    double start = now_s(), t = start;                                                                         \
    while (t - start < w->seconds) {                                                                           \
      for (int i = 0; i < INNER; i++) {                                                                        \
        c0 = FMADD(c0, m, a), c1 = FMADD(c1, m, a), c2 = FMADD(c2, m, a), c3 = FMADD(c3, m, a);                \
        c4 = FMADD(c4, m, a), c5 = FMADD(c5, m, a), c6 = FMADD(c6, m, a), c7 = FMADD(c7, m, a);                \
        c8 = FMADD(c8, m, a), c9 = FMADD(c9, m, a), c10 = FMADD(c10, m, a), c11 = FMADD(c11, m, a);            \
      }                                                                                                        \
      rounds++;                                                                                                \
      t = now_s();                                                                                             \
    }                                                                                                          \
    T all[12] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};                                            \
    float lanes[12 * W], sum = 0;                                                                              \
    memcpy(lanes, all, sizeof lanes);                                                                          \
    for (int i = 0; i < 12 * W; i++) sum += lanes[i];                                                          \
    w->sink = sum;                                                                                             \
    w->elapsed = t - start;                                                                                    \
    w->flops = (double)rounds * INNER * CHAINS * W * 2;                                                        \
    return NULL;                                                                                               \
  }

FMA_LOOP(fma_loop_avx2, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps)
FMA_LOOP(fma_loop_avx512, "avx512f", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps)

/* The widest loop this CPU runs (set in main). */
static void *(*fma_loop)(void *) = fma_loop_avx2;

/* GFLOP/s of one attempt on n threads; -1 if a thread could not start. */
static double attempt(int n, double seconds) {
  pthread_t tid[256];
  Worker w[256];
  int started = 0;
  for (int i = 0; i < n; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].seconds = seconds;
    if (pthread_create(&tid[i], NULL, fma_loop, &w[i]) != 0) break;
    started++;
  }
  double gflops = 0;
  for (int i = 0; i < started; i++) {
    pthread_join(tid[i], NULL);
    gflops += w[i].flops / w[i].elapsed * 1e-9;
  }
  return started == n ? gflops : -1;
}

/* The first "cpu MHz" of /proc/cpuinfo, or 0. */
static double cpuinfo_mhz(void) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return 0;
  char line[512];
  double mhz = 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "cpu MHz", 7) == 0) {
      const char *colon = strchr(line, ':');
      if (colon) mhz = strtod(colon + 1, NULL);
      break;
    }
  fclose(f);
  return mhz;
}

int main(int argc, char **argv) {
  int threads = 2, quick = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      quick = 1;
    } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || end == argv[i] || v < 1 || v > 256) {
        fprintf(stderr, "fma_peak: error: --threads needs a count from 1 to 256, got '%s'\n", argv[i]);
        return 1;
      }
      threads = (int)v;
    } else {
      fprintf(stderr, "fma_peak: error: unknown argument '%s' (usage: fma_peak [--threads N] [--quick])\n", argv[i]);
      return 1;
    }
  }
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    fprintf(stderr, "fma_peak: error: this CPU has no AVX2 FMA\n");
    return 1;
  }
  int width = 8;
  if (__builtin_cpu_supports("avx512f")) fma_loop = fma_loop_avx512, width = 16;
  double best = 0;
  for (int k = 0; k < 3; k++) {
    double g = attempt(threads, quick ? 0.1 : 0.5);
    if (g < 0) {
      fprintf(stderr, "fma_peak: error: could not start %d threads\n", threads);
      return 1;
    }
    if (g > best) best = g;
  }
  double mhz = cpuinfo_mhz();
  printf("{\"bench\": \"fma_peak\", \"isa\": \"%s\", \"threads\": %d, \"gflops_measured\": %.2f, "
         "\"cpu_mhz\": %.1f, \"flops_per_cycle\": %d, \"gflops_nominal\": %.2f}\n",
         width == 16 ? "avx512" : "avx2", threads, best, mhz, 4 * width, threads * mhz * 1e-3 * 4 * width);
  return 0;
}
