/* pool.c — a list of aligned blocks, one per allocation (see pool.h). */
#include "codegen/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Block {
  struct Block *next;
  void *mem;
} Block;

struct CgPool {
  Block *head;
};

CgPool *cg_pool_new(void) {
  CgPool *p = calloc(1, sizeof *p);
  if (!p) {
    fprintf(stderr, "dal: out of memory\n");
    abort();
  }
  return p;
}

void *cg_pool_alloc(CgPool *p, size_t n) {
  size_t size = (n + 63) / 64 * 64;
  Block *b = malloc(sizeof *b);
  void *mem = aligned_alloc(64, size ? size : 64);
  if (!b || !mem) {
    fprintf(stderr, "dal: out of memory (%zu bytes)\n", n);
    abort();
  }
  memset(mem, 0, size ? size : 64);
  b->mem = mem;
  b->next = p->head;
  p->head = b;
  return mem;
}

char *cg_pool_strdup(CgPool *p, const char *s) {
  size_t n = strlen(s) + 1;
  char *d = cg_pool_alloc(p, n);
  memcpy(d, s, n);
  return d;
}

void cg_pool_free(CgPool *p) {
  if (!p) return;
  for (Block *b = p->head, *next; b; b = next) {
    next = b->next;
    free(b->mem);
    free(b);
  }
  free(p);
}
