/* sgemm.c — OpenBLAS sgemm GFLOP/s on this machine: the practical roof
 * for dal's benchmarks (MODELS.md section 3).
 *
 *   build/bench/sgemm [--threads N] [--quick]
 *
 * Times C = A B (row-major f32, alpha 1, beta 0) for the shapes in 'shapes'
 * below on N OpenBLAS threads (default 2, the benchmarks' count): two
 * warm-up calls, then calls until 0.5 s have passed (0.1 s with --quick)
 * and at least 5 (3) were made. GFLOP/s = 2 M N K / time, at the median
 * call and at the fastest. One element of every product is checked
 * against a plain dot product, so a broken BLAS cannot report a number.
 * Prints one JSON object on stdout; errors go to stderr with status 1.
 */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  const char *name, *what;
  int m, n, k;
} Shape;

/* GPT bench: B*N = 16*95 = 1520 rows, d = 256, V = 1024+32+512 = 1568.
 * dVAE bench: the 3x3 convs of the first stage as im2col GEMMs,
 * [C_out, C_in*9] x [C_in*9, B*S*S] with C = 64, B = 16, S = 64. */
static const Shape shapes[] = {
    {"square", "1024^3", 1024, 1024, 1024},
    {"gpt-mlp", "GPT bench mlp.fc: [B*N, d] x [d, 4d]", 1520, 1024, 256},
    {"gpt-head", "GPT bench head: [B*N, d] x [d, V]", 1520, 1568, 256},
    {"dvae-conv", "dVAE bench stage-0 3x3 conv as im2col: [C, 9C] x [9C, B*S*S]", 64, 65536, 576},
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Deterministic values in [-1, 1). */
static void fill(float *x, size_t n, uint32_t seed) {
  uint32_t s = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    x[i] = (float)(s >> 8) * (1.0f / 8388608.0f) - 1.0f;
  }
}

static float *alloc_floats(size_t n) {
  size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
  return aligned_alloc(64, bytes);
}

/* Whether C[i, j] of C = A B (A [m, k], B [k, n]) is right: within the
 * worst-case rounding of a k-term f32 dot product, k u sum|a b| (u = eps/2),
 * with a factor 2 to spare. */
static int check(const float *a, const float *b, const float *c, int n, int k, int i, int j) {
  double ref = 0, mag = 0;
  for (int p = 0; p < k; p++) {
    ref += (double)a[(size_t)i * k + p] * b[(size_t)p * n + j];
    mag += fabs((double)a[(size_t)i * k + p] * b[(size_t)p * n + j]);
  }
  return fabs(c[(size_t)i * n + j] - ref) <= k * FLT_EPSILON * mag + 1e-30;
}

/* Times one shape into o; -1 with a message on stderr. */
static int time_shape(const Shape *s, double min_seconds, int min_calls, cJSON *o) {
  size_t na = (size_t)s->m * s->k, nb = (size_t)s->k * s->n, nc = (size_t)s->m * s->n;
  float *a = alloc_floats(na), *b = alloc_floats(nb), *c = alloc_floats(nc);
  int max_calls = 10000, calls = 0, rc = -1;
  double *t = malloc((size_t)max_calls * sizeof *t);
  if (!a || !b || !c || !t) {
    fprintf(stderr, "sgemm: error: out of memory for %s (%d x %d x %d)\n", s->name, s->m, s->n, s->k);
    goto done;
  }
  fill(a, na, 1);
  fill(b, nb, 2);
  for (int w = 0; w < 2; w++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->m, s->n, s->k, 1.0f, a, s->k, b, s->n, 0.0f, c, s->n);
  double start = now_s();
  while (calls < max_calls && (calls < min_calls || now_s() - start < min_seconds)) {
    double t0 = now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->m, s->n, s->k, 1.0f, a, s->k, b, s->n, 0.0f, c, s->n);
    t[calls++] = now_s() - t0;
  }
  if (!check(a, b, c, s->n, s->k, 0, 0) || !check(a, b, c, s->n, s->k, s->m - 1, s->n - 1) ||
      !check(a, b, c, s->n, s->k, s->m / 2, s->n / 3)) {
    fprintf(stderr, "sgemm: error: cblas_sgemm gave a wrong product for %s (%d x %d x %d)\n", s->name, s->m, s->n,
            s->k);
    goto done;
  }
  qsort(t, (size_t)calls, sizeof *t, cmp_double);
  double median = calls % 2 ? t[calls / 2] : 0.5 * (t[calls / 2 - 1] + t[calls / 2]);
  double flops = 2.0 * s->m * s->n * s->k;
  cJSON_AddStringToObject(o, "name", s->name);
  cJSON_AddStringToObject(o, "what", s->what);
  cJSON_AddNumberToObject(o, "m", s->m);
  cJSON_AddNumberToObject(o, "n", s->n);
  cJSON_AddNumberToObject(o, "k", s->k);
  cJSON_AddNumberToObject(o, "calls", calls);
  cJSON_AddNumberToObject(o, "ms_median", median * 1e3);
  cJSON_AddNumberToObject(o, "gflops_median", flops / median * 1e-9);
  cJSON_AddNumberToObject(o, "gflops_best", flops / t[0] * 1e-9);
  rc = 0;
done:
  free(a);
  free(b);
  free(c);
  free(t);
  return rc;
}

int main(int argc, char **argv) {
  int threads = 2;
  int quick = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      quick = 1;
    } else if (strcmp(argv[i], "--threads") == 0) {
      if (i + 1 == argc) {
        fprintf(stderr, "sgemm: error: --threads needs a value\n");
        return 1;
      }
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || end == argv[i] || v < 1 || v > 256) {
        fprintf(stderr, "sgemm: error: --threads needs a count from 1 to 256, got '%s'\n", argv[i]);
        return 1;
      }
      threads = (int)v;
    } else {
      fprintf(stderr, "sgemm: error: unknown argument '%s' (usage: sgemm [--threads N] [--quick])\n", argv[i]);
      return 1;
    }
  }
  openblas_set_num_threads(threads);
  cJSON *root = cJSON_CreateObject(), *list = cJSON_CreateArray();
  if (!root || !list) {
    fprintf(stderr, "sgemm: error: out of memory\n");
    return 1;
  }
  cJSON_AddStringToObject(root, "bench", "sgemm");
  cJSON_AddNumberToObject(root, "threads", openblas_get_num_threads());
  cJSON_AddStringToObject(root, "openblas", openblas_get_config());
  cJSON_AddStringToObject(root, "core", openblas_get_corename());
  cJSON_AddItemToObject(root, "gemms", list);
  int status = 0;
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && !status; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(list, o);
    status = time_shape(&shapes[i], quick ? 0.1 : 0.5, quick ? 3 : 5, o) ? 1 : 0;
  }
  if (!status) {
    char *text = cJSON_PrintUnformatted(root);
    printf("%s\n", text);
    free(text);
  }
  cJSON_Delete(root);
  return status;
}
