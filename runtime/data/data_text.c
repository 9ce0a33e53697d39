/* data_text.c — captions as the GPT's text ids: a BPE tokenizer applied as
 * `dalc bpe encode --len` applies it, with an error for bytes it never saw
 * and one warning per distinct caption that is cut (see data.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/data.h"

#define WARN_MAX 10 /* captions named one by one; then a single line says more are cut */

struct RtTextEncoder {
  RtBpe *bpe;
  char *path;
  int64_t len;    /* Lt */
  int32_t *buf;   /* (bufcap) a whole caption's ids */
  int64_t bufcap;
  char **warned;  /* (cap) open addressing: the captions already reported as cut */
  size_t cap, n;
  int64_t cut;
};

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

#define FNV_START 0xcbf29ce484222325ull

void rt_bpe_fingerprint(const RtBpe *b, char out[17]) {
  char head[48];
  int n = snprintf(head, sizeof head, "%d %d", rt_bpe_vocab(b), rt_bpe_size(b));
  uint64_t h = fnv1a(FNV_START, head, (size_t)n + 1);
  for (int id = 0; id < rt_bpe_size(b); id++) {
    const char *s = rt_bpe_symbol(b, id);
    h = fnv1a(h, s, strlen(s) + 1);
  }
  snprintf(out, 17, "%016llx", (unsigned long long)h);
}

RtTextEncoder *rt_text_encoder_new(const char *path, int64_t len, RtErr *e) {
  RtTextEncoder *t = calloc(1, sizeof *t);
  if (!t || !(t->path = strdup(path))) {
    free(t);
    rt_err(e, "%s: out of memory", path);
    return NULL;
  }
  t->len = len;
  if (!(t->bpe = rt_bpe_load(path, e))) {
    rt_text_encoder_free(t);
    return NULL;
  }
  return t;
}

void rt_text_encoder_free(RtTextEncoder *t) {
  if (!t) return;
  rt_bpe_free(t->bpe);
  for (size_t i = 0; i < t->cap; i++) free(t->warned[i]);
  free(t->warned);
  free(t->buf);
  free(t->path);
  free(t);
}

const RtBpe *rt_text_encoder_bpe(const RtTextEncoder *t) { return t->bpe; }

const char *rt_text_encoder_path(const RtTextEncoder *t) { return t->path; }

int64_t rt_text_encoder_cut(const RtTextEncoder *t) { return t->cut; }

/* Adds 'caption' to the set of captions reported; false if it was there
 * (or memory ran out: then it is reported again, which is harmless). */
static bool first_time(RtTextEncoder *t, const char *caption) {
  if (2 * (t->n + 1) > t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 64;
    char **w = calloc(cap, sizeof *w);
    if (!w) return true;
    for (size_t i = 0; i < t->cap; i++)
      if (t->warned[i]) {
        size_t s = fnv1a(FNV_START, t->warned[i], strlen(t->warned[i])) & (cap - 1);
        while (w[s]) s = (s + 1) & (cap - 1);
        w[s] = t->warned[i];
      }
    free(t->warned);
    t->warned = w;
    t->cap = cap;
  }
  size_t s = fnv1a(FNV_START, caption, strlen(caption)) & (t->cap - 1);
  for (; t->warned[s]; s = (s + 1) & (t->cap - 1))
    if (strcmp(t->warned[s], caption) == 0) return false;
  if ((t->warned[s] = strdup(caption))) t->n++;
  return true;
}

/* The error for a caption with a byte the tokenizer never saw. */
static int unknown_byte(const RtTextEncoder *t, const char *caption, RtErr *e) {
  for (const char *c = caption; *c; c++) {
    if (*c == ' ' || (*c >= '\t' && *c <= '\r')) continue;
    char one[2] = {*c, 0};
    int32_t id = -1;
    if (rt_bpe_encode(t->bpe, one, &id, 1) == 1 && id == 0) {
      unsigned char u = (unsigned char)*c;
      char shown[16];
      if (u >= 0x20 && u < 0x7f) snprintf(shown, sizeof shown, "'%c' ", *c);
      else shown[0] = 0;
      return rt_err(e, "caption \"%s\": the tokenizer %s never saw the character %s(byte 0x%02x) and has no byte "
                       "fallback: train one on these captions (dalc bpe train --data SPEC)",
                    caption, t->path, shown, u);
    }
  }
  return rt_err(e, "caption \"%s\": the tokenizer %s never saw one of its characters (whitespace) and has no byte "
                   "fallback: train one on these captions (dalc bpe train --data SPEC)", caption, t->path);
}

/* The ids of a whole caption into t->buf; their count, or -1 (memory). */
static int64_t encode_all(RtTextEncoder *t, const char *caption, RtErr *e) {
  int64_t n = rt_bpe_encode(t->bpe, caption, NULL, 0);
  if (n > t->bufcap) {
    int32_t *b = realloc(t->buf, sizeof *b * (size_t)n);
    if (!b) return rt_err(e, "out of memory encoding a caption");
    t->buf = b;
    t->bufcap = n;
  }
  rt_bpe_encode(t->bpe, caption, t->buf, n);
  for (int64_t i = 0; i < n; i++)
    if (t->buf[i] == 0) return unknown_byte(t, caption, e);
  return n;
}

int rt_text_check(RtTextEncoder *t, const char *caption, RtErr *e) {
  return encode_all(t, caption, e) < 0 ? -1 : 0;
}

int rt_text_encode(RtTextEncoder *t, const char *caption, int32_t *ids, RtErr *e) {
  int64_t n = encode_all(t, caption, e);
  if (n < 0) return -1;
  if (rt_bpe_encode_padded(t->bpe, caption, rt_bpe_vocab(t->bpe), ids, t->len) > 0 && first_time(t, caption)) {
    if (++t->cut <= WARN_MAX)
      fprintf(stderr, "warning: caption \"%s\" is %lld tokens, more than the %lld of the text input: cut%s\n", caption,
              (long long)n, (long long)t->len,
              t->cut == WARN_MAX ? " (more captions may be cut: they are not named, only counted)" : "");
  }
  return 0;
}
