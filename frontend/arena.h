/* arena.h — the frontend's memory: a bump allocator and a growable string.
 *
 * Everything the frontend makes for one program (AST, interned names, global
 * values) lives in the program's arena; everything made while tracing one
 * entry lives in that lowering's arena. Each is freed in one call, which is
 * also what keeps error paths (that unwind with longjmp) leak-free.
 *
 * Prefix: fe_arena_ and fe_buf_.
 */
#ifndef DAL_FRONTEND_ARENA_H
#define DAL_FRONTEND_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct FeArenaBlock FeArenaBlock;

typedef struct {
  FeArenaBlock *head; /* newest block first */
} FeArena;

void fe_arena_init(FeArena *a);
/* 'size' zeroed bytes, aligned for any type. Aborts only if the machine is
 * out of memory. */
void *fe_arena_alloc(FeArena *a, size_t size);
char *fe_arena_strdup(FeArena *a, const char *s);
char *fe_arena_strndup(FeArena *a, const char *s, size_t n);
char *fe_arena_printf(FeArena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A copy of 'old' (old_size bytes) in a new block of new_size bytes. */
void *fe_arena_grow(FeArena *a, const void *old, size_t old_size, size_t new_size);
void fe_arena_free(FeArena *a);

/* Arrays in an arena grow by doubling: capacity is 4, 8, 16, ... so it is
 * full exactly when the count is 0 or a power of two >= 4. */
#define FE_PUSH(arena, arr, n, item)                                                            \
  do {                                                                                          \
    if ((n) == 0 || ((n) >= 4 && ((n) & ((n)-1)) == 0))                                         \
      (arr) = fe_arena_grow((arena), (arr), (size_t)(n) * sizeof *(arr),                        \
                            (size_t)((n) == 0 ? 4 : 2 * (n)) * sizeof *(arr));                  \
    (arr)[(n)++] = (item);                                                                      \
  } while (0)

/* A malloc'd string that grows as text is appended. */
typedef struct {
  char *s; /* NUL-terminated (NULL until the first append) */
  size_t n, cap;
} FeBuf;

void fe_buf_puts(FeBuf *b, const char *s);
void fe_buf_putn(FeBuf *b, const char *s, size_t n);
void fe_buf_printf(FeBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fe_buf_vprintf(FeBuf *b, const char *fmt, va_list ap);
/* Hands the string to the caller (never NULL: "" if nothing was appended)
 * and resets b. */
char *fe_buf_take(FeBuf *b);

#endif
