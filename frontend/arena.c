/* arena.c — bump allocator and growable strings (see arena.h). */
#include "frontend/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Blocks hold at least this much; bigger requests get a block of their own. */
#define BLOCK_SIZE (64 * 1024)

struct FeArenaBlock {
  FeArenaBlock *next;
  size_t used, size;
  max_align_t data[]; /* 'size' bytes */
};

static void out_of_memory(void) {
  fputs("dal: out of memory\n", stderr);
  abort();
}

void fe_arena_init(FeArena *a) { a->head = NULL; }

void *fe_arena_alloc(FeArena *a, size_t size) {
  const size_t align = sizeof(max_align_t);
  size = (size + align - 1) / align * align;
  if (size == 0) size = align;
  FeArenaBlock *b = a->head;
  if (!b || b->size - b->used < size) {
    size_t cap = size > BLOCK_SIZE ? size : BLOCK_SIZE;
    b = malloc(sizeof *b + cap);
    if (!b) out_of_memory();
    b->used = 0;
    b->size = cap;
    /* A big private block goes behind the current one so the current
     * block's free space stays usable. */
    if (a->head && cap > BLOCK_SIZE) {
      b->next = a->head->next;
      a->head->next = b;
    } else {
      b->next = a->head;
      a->head = b;
    }
  }
  void *p = (char *)b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

char *fe_arena_strndup(FeArena *a, const char *s, size_t n) {
  char *p = fe_arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *fe_arena_strdup(FeArena *a, const char *s) { return fe_arena_strndup(a, s, strlen(s)); }

char *fe_arena_printf(FeArena *a, const char *fmt, ...) {
  FeBuf b = {0};
  va_list ap;
  va_start(ap, fmt);
  fe_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  char *text = fe_buf_take(&b);
  char *p = fe_arena_strdup(a, text);
  free(text);
  return p;
}

void *fe_arena_grow(FeArena *a, const void *old, size_t old_size, size_t new_size) {
  void *p = fe_arena_alloc(a, new_size);
  if (old && old_size) memcpy(p, old, old_size < new_size ? old_size : new_size);
  return p;
}

void fe_arena_free(FeArena *a) {
  for (FeArenaBlock *b = a->head, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  a->head = NULL;
}

void fe_buf_putn(FeBuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 128;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) out_of_memory();
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

void fe_buf_puts(FeBuf *b, const char *s) { fe_buf_putn(b, s, strlen(s)); }

void fe_buf_vprintf(FeBuf *b, const char *fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return;
  fe_buf_putn(b, "", 0); /* make sure b->s exists */
  if (b->n + (size_t)n + 1 > b->cap) {
    size_t cap = b->cap;
    while (cap < b->n + (size_t)n + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) out_of_memory();
    b->s = p;
    b->cap = cap;
  }
  vsnprintf(b->s + b->n, (size_t)n + 1, fmt, ap);
  b->n += (size_t)n;
}

void fe_buf_printf(FeBuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fe_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

char *fe_buf_take(FeBuf *b) {
  char *s = b->s;
  if (!s) {
    s = malloc(1);
    if (!s) out_of_memory();
    s[0] = 0;
  }
  b->s = NULL;
  b->n = b->cap = 0;
  return s;
}
