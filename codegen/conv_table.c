/* conv_table.c — the measured convolution table (conv_table.h): reading,
 * writing, and the lookup cg_conv_pick makes under -fconv=auto. */
#include "codegen/conv_table.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/llvm/obj_cache.h"
#include "codegen/lower_impl.h"
#include "runtime/core/threadpool.h"

#define TABLE_MAGIC "# dal conv table 1"
#define TABLE_FILE "conv-table.tsv"


static CgConvTableRow *table;
static int ntable;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static bool table_set; /* cg_conv_table_set was called: no default file */

void cg_conv_table_key(const IrGraph *g, int v, CgConvTableRow *row) {
  CgConv cv = cg_low_conv_geom(g, v);
  *row = (CgConvTableRow){.op = g->node[v].op, .N = cv.N, .C = cv.C, .H = cv.H, .W = cv.W, .O = cv.O,
                          .KH = cv.KH, .KW = cv.KW, .stride = cv.stride, .pad = cv.pad};
  for (int a = 0; a < CG_CONV_TABLE_NALGO; a++) row->ms[a] = -1;
}

bool cg_conv_table_same(const CgConvTableRow *a, const CgConvTableRow *b) {
  return a->op == b->op && a->N == b->N && a->C == b->C && a->H == b->H && a->W == b->W && a->O == b->O &&
         a->KH == b->KH && a->KW == b->KW && a->stride == b->stride && a->pad == b->pad;
}

int cg_conv_table_path(char *path, size_t size) {
  char dir[4096];
  if (cg_cache_dir(dir, sizeof dir)) return -1;
  return (size_t)snprintf(path, size, "%s/%s", dir, TABLE_FILE) < size ? 0 : -1;
}

void cg_conv_table_machine(char *buf, size_t size) {
  char model[256] = "unknown";
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[512];
    while (fgets(line, sizeof line, f))
      if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
        const char *s = strchr(line, ':') + 1;
        while (*s == ' ' || *s == '\t') s++;
        snprintf(model, sizeof model, "%.*s", (int)strcspn(s, "\n"), s);
        break;
      }
    fclose(f);
  }
  RtErr e;
  int threads = rt_threads_default(&e);
  snprintf(buf, size, "%s; threads: %d", model, threads);
}

static bool op_parse(const char *s, IrOp *op) {
  static const IrOp ops[] = {OP_CONV2D, OP_CONV_TRANSPOSE2D, OP_CONV2D_BACKWARD_WEIGHT};
  for (int i = 0; i < 3; i++)
    if (!strcmp(s, ir_op_name(ops[i]))) return *op = ops[i], true;
  return false;
}

/* One row's line: op and geometry, then name=ms (or name=-) per algorithm. */
static bool row_parse(char *line, CgConvTableRow *r) {
  char op[64];
  long long d[7];
  int st, pad, used = 0;
  if (sscanf(line, "%63s %lld %lld %lld %lld %lld %lld %lld %d %d%n", op, &d[0], &d[1], &d[2], &d[3], &d[4], &d[5],
             &d[6], &st, &pad, &used) != 10 ||
      !op_parse(op, &r->op))
    return false;
  r->N = d[0], r->C = d[1], r->H = d[2], r->W = d[3], r->O = d[4], r->KH = d[5], r->KW = d[6];
  r->stride = st, r->pad = pad;
  for (int a = 0; a < CG_CONV_TABLE_NALGO; a++) r->ms[a] = -1;
  for (char *tok = strtok(line + used, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
    char *eq = strchr(tok, '=');
    if (!eq) return false;
    *eq = 0;
    int a = 1;
    while (a < CG_CONV_TABLE_NALGO && strcmp(tok, cg_conv_algo_flag((CgConvAlgo)a))) a++;
    if (a == CG_CONV_TABLE_NALGO) return false;
    if (strcmp(eq + 1, "-")) {
      char *end;
      r->ms[a] = strtod(eq + 1, &end);
      if (*end || end == eq + 1 || !(r->ms[a] >= 0)) return false;
    }
  }
  return true;
}

int cg_conv_table_read(const char *path, CgConvTableRow **rows, int *n, char *why, size_t size) {
  *rows = NULL;
  *n = 0;
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(why, size, "%s: no table", path);
    return 0;
  }
  char line[1024], machine[512], want[600];
  cg_conv_table_machine(machine, sizeof machine);
  snprintf(want, sizeof want, "# cpu: %s\n", machine);
  int status = 1, lineno = 0, cap = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (lineno == 1 && strncmp(line, TABLE_MAGIC, strlen(TABLE_MAGIC))) {
      snprintf(why, size, "%s:1: not a dal conv table (its first line is not '%s')", path, TABLE_MAGIC);
      status = -1;
      break;
    }
    if (lineno == 2 && strcmp(line, want)) {
      snprintf(why, size, "%s: measured on another machine (%.*s), not this one (%s): ignored", path,
               (int)strcspn(line, "\n"), line, machine);
      status = 0;
      break;
    }
    if (line[0] == '#' || line[0] == '\n') continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 64;
      CgConvTableRow *more = realloc(*rows, sizeof *more * (size_t)cap);
      if (!more) {
        snprintf(why, size, "%s: out of memory", path);
        status = -1;
        break;
      }
      *rows = more;
    }
    if (!row_parse(line, &(*rows)[*n])) {
      snprintf(why, size, "%s:%d: malformed row (want: op N C H W O KH KW stride pad algo=ms|-...)", path, lineno);
      status = -1;
      break;
    }
    (*n)++;
  }
  fclose(f);
  if (status == 1 && lineno < 2) {
    snprintf(why, size, "%s: empty or truncated table", path);
    status = -1;
  }
  if (status != 1) {
    free(*rows);
    *rows = NULL;
    *n = 0;
  }
  return status;
}

int cg_conv_table_write(const char *path, const CgConvTableRow *rows, int n, char *why, size_t size) {
  char tmp[4200], machine[512];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
    snprintf(why, size, "%s: path too long", path);
    return -1;
  }
  FILE *f = fopen(tmp, "w");
  if (!f) {
    snprintf(why, size, "cannot write %s", tmp);
    return -1;
  }
  cg_conv_table_machine(machine, sizeof machine);
  fprintf(f, "%s\n# cpu: %s\n", TABLE_MAGIC, machine);
  fprintf(f, "# op N C H W O KH KW stride pad, then ms per algorithm (dalc tune-conv; '-': does not apply)\n");
  for (int i = 0; i < n; i++) {
    const CgConvTableRow *r = &rows[i];
    fprintf(f, "%s %lld %lld %lld %lld %lld %lld %lld %d %d", ir_op_name(r->op), (long long)r->N, (long long)r->C,
            (long long)r->H, (long long)r->W, (long long)r->O, (long long)r->KH, (long long)r->KW, r->stride, r->pad);
    for (int a = 1; a < CG_CONV_TABLE_NALGO; a++)
      if (r->ms[a] >= 0) fprintf(f, " %s=%.4f", cg_conv_algo_flag((CgConvAlgo)a), r->ms[a]);
      else fprintf(f, " %s=-", cg_conv_algo_flag((CgConvAlgo)a));
    fputc('\n', f);
  }
  bool ok = !ferror(f);
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp, path)) {
    remove(tmp);
    snprintf(why, size, "cannot write %s", path);
    return -1;
  }
  return 0;
}

void cg_conv_table_set(const CgConvTableRow *rows, int n) {
  table_set = true;
  free(table);
  table = NULL;
  ntable = 0;
  if (n <= 0 || !(table = malloc(sizeof *table * (size_t)n))) return;
  memcpy(table, rows, sizeof *table * (size_t)n);
  ntable = n;
}

static void load_default(void) {
  if (table_set) return;
  char path[4200], why[1024];
  if (cg_conv_table_path(path, sizeof path)) return;
  int st = cg_conv_table_read(path, &table, &ntable, why, sizeof why);
  if (st < 0) fprintf(stderr, "dal: note: conv table ignored: %s\n", why);
  else if (st == 0 && strstr(why, "another machine")) fprintf(stderr, "dal: note: %s\n", why);
}

const CgConvTableRow *cg_conv_table_find(const IrGraph *g, int v) {
  pthread_once(&default_once, load_default);
  if (!ntable) return NULL;
  CgConvTableRow key;
  cg_conv_table_key(g, v, &key);
  for (int i = 0; i < ntable; i++)
    if (cg_conv_table_same(&table[i], &key)) return &table[i];
  return NULL;
}
