/* memfit.c — a program's memory needs against the machine's (see memfit.h). */
#include "runtime/sched/memfit.h"

#include "runtime/core/argv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool force;

void rt_mem_set_force(bool on) { force = on; }
bool rt_mem_force(void) { return force; }

int rt_mem_take_force(int argc, char **argv) {
  if (argc > 0 && rt_argv_take(&argc, argv, 1, "--force")) force = true;
  return argc;
}

/* ---- what there is ---- */

/* The first number after 'key' in the file at path (e.g. "MemAvailable:"
 * in /proc/meminfo, or the whole of a one-number file with key ""), times
 * 'unit'; -1 if there is none ("max" in memory.max gives -1: no limit). */
static int64_t read_number(const char *path, const char *key, int64_t unit) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[512];
  int64_t v = -1;
  size_t k = strlen(key);
  while (v < 0 && fgets(line, sizeof line, f)) {
    if (strncmp(line, key, k) != 0) continue;
    char *end;
    unsigned long long x = strtoull(line + k, &end, 10);
    if (end != line + k && x < (1ull << 60) / (unsigned long long)unit) v = (int64_t)x * unit;
    if (!*key) break;
  }
  fclose(f);
  return v;
}

/* The tightest limit - usage over the cgroup at 'dir' + path and its
 * ancestors, of one cgroup version's file names; sets h's cgroup figures. */
static void cgroup_walk(RtMemHave *h, const char *dir, const char *path, const char *max_file, const char *used_file) {
  char cg[1024], file[1200];
  snprintf(cg, sizeof cg, "%s", path);
  for (;;) {
    snprintf(file, sizeof file, "%s%s/%s", dir, cg, max_file);
    int64_t limit = read_number(file, "", 1);
    if (limit >= 0) {
      snprintf(file, sizeof file, "%s%s/%s", dir, cg, used_file);
      int64_t used = read_number(file, "", 1);
      if (used < 0) used = 0;
      if (h->cgroup_limit < 0 || limit - used < h->cgroup_limit - h->cgroup_used)
        h->cgroup_limit = limit, h->cgroup_used = used;
    }
    char *slash = strrchr(cg, '/');
    if (!slash || !cg[0] || !strcmp(cg, "/")) break;
    slash[slash == cg ? 1 : 0] = 0; /* "/a/b" -> "/a" -> "/" */
  }
}

/* The cgroups of /proc/self/cgroup: v2's "0::PATH" under /sys/fs/cgroup
 * (or /sys/fs/cgroup/unified), v1's "N:...memory...:PATH" under
 * /sys/fs/cgroup/memory. */
static void read_cgroups(RtMemHave *h) {
  FILE *f = fopen("/proc/self/cgroup", "r");
  if (!f) return;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c2 = 0;
    const char *ctrl = c1 + 1, *path = c2 + 1;
    if (!*ctrl) {
      cgroup_walk(h, "/sys/fs/cgroup", path, "memory.max", "memory.current");
      cgroup_walk(h, "/sys/fs/cgroup/unified", path, "memory.max", "memory.current");
    } else if (strstr(ctrl, "memory")) {
      cgroup_walk(h, "/sys/fs/cgroup/memory", path, "memory.limit_in_bytes", "memory.usage_in_bytes");
    }
  }
  fclose(f);
}

/* DAL_MEMORY_LIMIT: bytes, or a number with K, M, G or T (powers of
 * 1024); -1 if unset, -2 if not a size. */
static int64_t env_limit(void) {
  const char *s = getenv("DAL_MEMORY_LIMIT");
  if (!s || !*s) return -1;
  char *end;
  double v = strtod(s, &end);
  const char *units = "KMGT";
  const char *u = *end ? strchr(units, *end) : NULL;
  if (*end && (!u || (end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B")))) return -2;
  for (const char *p = units; u && p <= u; p++) v *= 1024;
  return end == s || !(v >= 0) || v > 1e18 ? -2 : (int64_t)v;
}

void rt_mem_have(RtMemHave *h) {
  *h = (RtMemHave){.cgroup_limit = -1, .cgroup_used = -1};
  h->avail = read_number("/proc/meminfo", "MemAvailable:", 1024);
  h->self = read_number("/proc/self/status", "VmRSS:", 1024);
  if (h->self < 0) h->self = 0;
  read_cgroups(h);
  h->env_limit = env_limit();
  int64_t room = h->avail;
  if (h->cgroup_limit >= 0 && (room < 0 || h->cgroup_limit - h->cgroup_used < room))
    room = h->cgroup_limit > h->cgroup_used ? h->cgroup_limit - h->cgroup_used : 0;
  h->have = room < 0 ? -1 : room + h->self;
  if (h->env_limit >= 0 && (h->have < 0 || h->env_limit < h->have)) h->have = h->env_limit;
}

/* ---- what is needed ---- */

static int64_t spec_bytes(const RtStateSpec *s) {
  int64_t b = (int64_t)rt_dtype_size(s->dtype);
  for (int i = 0; i < s->rank; i++) b *= s->dim[i];
  return b;
}

void rt_mem_need_params(const RtStateSpec *s, int n, RtMemNeed *need) {
  *need = (RtMemNeed){0};
  for (int i = 0; i < n; i++)
    if (s[i].param) need->param += spec_bytes(&s[i]);
}

void rt_mem_need_plan(const RtStateSpec *s, int n, const RtPlan *pl, bool train, int64_t arena, RtMemNeed *need) {
  rt_mem_need_params(s, n, need);
  need->arena = arena;
  for (int i = 0; i < n; i++) {
    if (s[i].param) continue;
    bool used = !s[i].transient && train;
    for (int b = 0; b < pl->nbuf && !used && s[i].transient; b++)
      used = pl->buf[b].kind == RT_BUF_STATE && pl->buf[b].name && !strcmp(pl->buf[b].name, s[i].name);
    if (used) *(s[i].transient ? &need->cache : &need->optim) += spec_bytes(&s[i]);
  }
  need->train = train && need->optim > 0; /* a training step, not a training entry's forward alone */
}

int64_t rt_mem_total(const RtMemNeed *n) { return n->param + n->optim + n->cache + n->arena; }

/* "45.80 GiB", or "12.5 MiB" below a tenth of a GiB. */
static const char *size_str(int64_t bytes, char *buf, size_t size) {
  double gib = (double)bytes / (1024.0 * 1024 * 1024);
  if (gib >= 0.1) snprintf(buf, size, "%.2f GiB", gib);
  else snprintf(buf, size, "%.1f MiB", gib * 1024);
  return buf;
}

/* Appends to buf (o characters in it so far); returns the new length. */
static size_t put(char *buf, size_t size, size_t o, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static size_t put(char *buf, size_t size, size_t o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + (o < size ? o : size), o < size ? size - o : 0, fmt, ap);
  va_end(ap);
  return o + (size_t)(n > 0 ? n : 0);
}

const char *rt_mem_have_str(const RtMemHave *h, char *buf, size_t size) {
  char a[32], b[32];
  if (h->have < 0) return snprintf(buf, size, "unknown (no MemAvailable in /proc/meminfo)"), buf;
  size_t o = put(buf, size, 0, "%s (", size_str(h->have, a, sizeof a));
  if (h->avail >= 0) o = put(buf, size, o, "MemAvailable %s", size_str(h->avail, a, sizeof a));
  if (h->self > 0) o = put(buf, size, o, " + %s this process holds", size_str(h->self, a, sizeof a));
  if (h->cgroup_limit >= 0)
    o = put(buf, size, o, "; cgroup limit %s, %s used", size_str(h->cgroup_limit, a, sizeof a),
            size_str(h->cgroup_used, b, sizeof b));
  else
    o = put(buf, size, o, "; no cgroup memory limit");
  if (h->env_limit >= 0) o = put(buf, size, o, "; DAL_MEMORY_LIMIT %s", size_str(h->env_limit, a, sizeof a));
  put(buf, size, o, ")");
  return buf;
}

const char *rt_mem_need_str(const RtMemNeed *n, char *buf, size_t size) {
  const struct { const char *what; int64_t bytes; } part[] = {
      {"parameters", n->param},
      {"optimizer state", n->optim},
      {"KV cache and other transient state", n->cache},
      {n->train ? "arena (intermediates and gradients)" : "arena (intermediates)", n->arena}};
  char s[32];
  size_t o = put(buf, size, 0, "%s (", size_str(rt_mem_total(n), s, sizeof s));
  int k = 0;
  for (int i = 0; i < 4; i++)
    if (part[i].bytes > 0)
      o = put(buf, size, o, "%s%s %s", k++ ? " + " : "", part[i].what, size_str(part[i].bytes, s, sizeof s));
  put(buf, size, o, "%s)", k ? "" : "nothing");
  return buf;
}

int rt_mem_check(const RtMemNeed *n, const char *what, RtErr *e) {
  if (force) return 0;
  RtMemHave h;
  rt_mem_have(&h);
  if (h.env_limit == -2)
    return rt_err(e, "DAL_MEMORY_LIMIT must be a size in bytes, or with K, M, G or T (e.g. 16G), got '%s'",
                  getenv("DAL_MEMORY_LIMIT"));
  if (h.have < 0 || rt_mem_total(n) <= h.have) return 0;
  char need[400], have[300];
  return rt_err(e, "%s needs about %s, more than the %s available; --force runs it anyway", what,
                rt_mem_need_str(n, need, sizeof need), rt_mem_have_str(&h, have, sizeof have));
}
