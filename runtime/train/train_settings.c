/* train_settings.c — the settings a resumed run must share with the run
 * its checkpoint came from (see train.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "runtime/exe/exe.h"
#include "runtime/train/train.h"

/* Appends the line "KEY=VALUE\n" (printf-style value) to buf. */
__attribute__((format(printf, 4, 5))) static void put(char *buf, size_t size, const char *key, const char *fmt, ...) {
  size_t at = strlen(buf);
  if (at >= size) return;
  at += (size_t)snprintf(buf + at, size - at, "%s=", key);
  if (at >= size) return;
  va_list ap;
  va_start(ap, fmt);
  at += (size_t)vsnprintf(buf + at, size - at, fmt, ap);
  va_end(ap);
  if (at + 1 < size) strcat(buf, "\n");
}

/* FNV-1a of a text, for the tokenizer's JSON. */
static uint64_t fnv1a(const char *s) {
  uint64_t h = 14695981039346656037u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
  return h;
}

static const char *decay_name(RtLrDecay d) { return d == RT_LR_COS ? "cos" : d == RT_LR_LINEAR ? "linear" : "none"; }

void rt_train_settings(const RtProgram *p, const RtTrainOptions *o, const RtEntrySpec *en, double lr,
                       const char *tokenizer, char *buf, size_t size) {
  buf[0] = 0;
  put(buf, size, "--fn", "%s", en->name);
  if (p->source_hash) put(buf, size, "model source", "%s", p->source_hash);
  put(buf, size, "--data", "%s", o->data ? o->data : "shapes");
  if (tokenizer) put(buf, size, "--tokenizer", "fnv1a64:%016" PRIx64, fnv1a(tokenizer));
  put(buf, size, "--lr", "%.17g", lr);
  put(buf, size, "--warmup", "%" PRIu64, o->warmup);
  put(buf, size, "--lr-decay", "%s", decay_name(o->lr_decay));
  if (o->lr_decay != RT_LR_CONSTANT) put(buf, size, "--lr-min", "%.17g", o->lr_min);
  /* --steps only where a schedule spans the run: otherwise a longer run
   * computes the same first steps, so extending one is a true continuation. */
  bool spans = o->lr_decay != RT_LR_CONSTANT;
  for (int k = 0; k < o->nscalar; k++) spans |= o->scalar[k].anneal && o->scalar[k].over == 0;
  if (spans) put(buf, size, "--steps", "%" PRIu64, o->steps);
  char key[160], type[128];
  for (int i = 0; i < en->ninput; i++) {
    const RtArgSpec *a = &en->input[i];
    snprintf(key, sizeof key, "input %s", a->name);
    int k = 0;
    while (k < o->nscalar && strcmp(o->scalar[k].name, a->name) != 0) k++;
    if (k == o->nscalar) {
      if (strcmp(a->name, RT_LR_INPUT) == 0) continue;
      const char *t = rt_exe_arg_str(a, type, sizeof type), *colon = strstr(t, ": ");
      put(buf, size, key, "%s", colon ? colon + 2 : t); /* "f32[4, 3, 16, 16]" without the name */
      continue;
    }
    const RtTrainScalar *sc = &o->scalar[k];
    if (!sc->anneal) put(buf, size, key, "--set %.17g", sc->from);
    else
      put(buf, size, key, "--anneal %.17g:%.17g:%s:%" PRIu64, sc->from, sc->to, rt_anneal_shape_name(sc->shape),
          sc->over);
  }
}

/* The value of 'key' in settings text s (KEY=VALUE lines) into buf; false if absent. */
static bool lookup(const char *s, const char *key, char *buf, size_t size) {
  size_t n = strlen(key);
  for (const char *line = s; *line;) {
    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    if (len > n && strncmp(line, key, n) == 0 && line[n] == '=') {
      snprintf(buf, size, "%.*s", (int)(len - n - 1), line + n + 1);
      return true;
    }
    line += len + (nl ? 1 : 0);
  }
  return false;
}

/* Appends "KEY OLD -> NEW" for each key of 'a' whose value in 'b' differs
 * (or which 'b' lacks); with 'reverse', the keys only 'a' has, from b to a. */
static void diff_keys(const char *a, const char *b, bool reverse, char *out, size_t size) {
  char key[256], va[1024], vb[1024];
  for (const char *line = a; *line;) {
    const char *nl = strchr(line, '\n'), *eq = strchr(line, '=');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    if (eq && eq < line + len && (size_t)(eq - line) < sizeof key) {
      snprintf(key, sizeof key, "%.*s", (int)(eq - line), line);
      lookup(a, key, va, sizeof va);
      bool in_b = lookup(b, key, vb, sizeof vb);
      /* a fingerprint one side lacks (a backend without one) is no change */
      bool skip = strcmp(key, "model source") == 0 && !in_b;
      if (!skip && (reverse ? !in_b : !in_b || strcmp(va, vb) != 0)) {
        size_t at = strlen(out);
        /* "--lr 0.001 -> 0.002", "input x: f32[1, 3] -> f32[2, 3]" */
        snprintf(out + at, size > at ? size - at : 0, "%s%s%s %s -> %s", at ? "; " : "", key, key[0] == '-' ? "" : ":",
                 reverse ? "(none)" : va, reverse ? va : in_b ? vb : "(none)");
      }
    }
    line += len + (nl ? 1 : 0);
  }
}

bool rt_train_settings_diff(const char *then, const char *now, char *changes, size_t size) {
  changes[0] = 0;
  if (!then[0]) return false; /* a checkpoint from before dal.run: nothing to compare with */
  diff_keys(then, now, false, changes, size);
  diff_keys(now, then, true, changes, size);
  /* an input's type changes with the batch size a model is compiled for */
  if (strstr(changes, "input ") && strstr(changes, "]")) {
    size_t at = strlen(changes);
    snprintf(changes + at, size > at ? size - at : 0, " (compiled with another --batch?)");
  }
  return changes[0] != 0;
}
