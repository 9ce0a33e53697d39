/* pool.h — one allocation pool per compilation: many small allocations,
 * freed together. Module prefix: cg_. */
#ifndef DAL_CODEGEN_POOL_H
#define DAL_CODEGEN_POOL_H

#include <stddef.h>

typedef struct CgPool CgPool;

CgPool *cg_pool_new(void);
/* n zeroed bytes, 64-byte aligned, alive until cg_pool_free. Never NULL
 * (aborts only if the machine is out of memory). */
void *cg_pool_alloc(CgPool *p, size_t n);
char *cg_pool_strdup(CgPool *p, const char *s);
/* Hands 'mem' (from malloc or realloc; may be NULL) to the pool: it is freed
 * by cg_pool_free. Lets a grown array become the pool's without a copy. */
void cg_pool_adopt(CgPool *p, void *mem);
void cg_pool_free(CgPool *p);

#endif
