/* pool.c — chunks carved from the front, one block per large allocation
 * (see pool.h). Under AddressSanitizer every allocation gets its own block
 * instead, so an overrun of one is still caught at the next. */
#include "codegen/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define POOL_CHUNK 0 /* every allocation its own block */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_CHUNK 0
#endif
#endif
#ifndef POOL_CHUNK
#define POOL_CHUNK (64 * 1024) /* bytes carved at a time; larger requests get a block of their own */
#endif

typedef struct Block {
  struct Block *next;
  void *mem;
} Block;

struct CgPool {
  Block *head;
  char *cur;   /* the free end of the current chunk */
  size_t left; /* bytes free there */
};

CgPool *cg_pool_new(void) {
  CgPool *p = calloc(1, sizeof *p);
  if (!p) {
    fprintf(stderr, "dal: out of memory\n");
    abort();
  }
  return p;
}

/* A new block of 'size' bytes (a multiple of 64), 64-byte aligned, not
 * zeroed. */
static void *new_block(CgPool *p, size_t size) {
  Block *b = malloc(sizeof *b);
  void *mem = aligned_alloc(64, size);
  if (!b || !mem) {
    fprintf(stderr, "dal: out of memory (%zu bytes)\n", size);
    abort();
  }
  b->mem = mem;
  b->next = p->head;
  p->head = b;
  return mem;
}

void *cg_pool_alloc(CgPool *p, size_t n) {
  size_t size = n ? (n + 63) / 64 * 64 : 64;
  void *mem;
  if (size > POOL_CHUNK / 4) {
    mem = new_block(p, size);
  } else {
    if (p->left < size) {
      p->cur = new_block(p, POOL_CHUNK);
      p->left = POOL_CHUNK;
    }
    mem = p->cur;
    p->cur += size;
    p->left -= size;
  }
  memset(mem, 0, size);
  return mem;
}

void cg_pool_adopt(CgPool *p, void *mem) {
  if (!mem) return;
  Block *b = malloc(sizeof *b);
  if (!b) {
    fprintf(stderr, "dal: out of memory\n");
    abort();
  }
  b->mem = mem;
  b->next = p->head;
  p->head = b;
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
