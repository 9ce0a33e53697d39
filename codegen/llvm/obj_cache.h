/* obj_cache.h — the content-addressed cache of compiled kernel objects
 * (internal to codegen/llvm; plain C, no LLVM types).
 *
 * Where: $DAL_CACHE_DIR, else $XDG_CACHE_HOME/dal, else ~/.cache/dal.
 * What: one file per key, NAME = 32 hex digits of the key, holding a header
 * (magic, cache-format version, the key, the payload's size and checksum)
 * and the payload (an ELF object). The key is a 128-bit hash of every
 * input the object depends on: the kernel's LLVM IR text, the pass
 * pipeline, the target triple, CPU name and feature string, the LLVM
 * version and CG_CACHE_FORMAT, so different CPUs or LLVM versions never
 * share an entry. Entries are written to a temporary file and renamed into
 * place (readers never see half an entry); an entry whose header or
 * checksum disagrees (corrupt, truncated, written by another format) is
 * reported as a note and rebuilt by the caller. Module prefix: cg_cache_.
 */
#ifndef DAL_CODEGEN_LLVM_OBJ_CACHE_H
#define DAL_CODEGEN_LLVM_OBJ_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* Bump when the layout of an entry or the meaning of a key changes. */
#define CG_CACHE_FORMAT 1

typedef struct {
  uint64_t h[2];
} CgCacheKey;

/* Incremental key: feed every part with cg_cache_key_part (length-prefixed,
 * so "ab"+"c" and "a"+"bc" differ). */
void cg_cache_key_init(CgCacheKey *k);
void cg_cache_key_part(CgCacheKey *k, const char *bytes, size_t n);
void cg_cache_key_str(CgCacheKey *k, const char *s); /* NULL counts as "" */
/* The 32 hex digits of k into hex[33]. */
void cg_cache_key_hex(const CgCacheKey *k, char hex[33]);

/* The cache directory (see above) into dir[size]; -1 if none can be named
 * (no variable set and no HOME) or it does not fit. */
int cg_cache_dir(char *dir, size_t size);

typedef enum {
  CG_CACHE_MISS,    /* no entry */
  CG_CACHE_HIT,     /* *bytes (malloc'd, *size bytes) is the payload */
  CG_CACHE_BAD,     /* an entry exists but is corrupt or stale: rebuild it */
} CgCacheLookup;

/* Looks up key k under dir. On CG_CACHE_BAD, why[why_size] says what is
 * wrong with the entry. */
CgCacheLookup cg_cache_load(const char *dir, const CgCacheKey *k, void **bytes, size_t *size, char *why,
                            size_t why_size);
/* Stores the payload under key k (creating dir), atomically. 0, or -1 if
 * it could not be written (the caller goes on without the cache). */
int cg_cache_store(const char *dir, const CgCacheKey *k, const void *bytes, size_t size);
/* The entry's path, for notes and tests. */
void cg_cache_path(const char *dir, const CgCacheKey *k, char *path, size_t size);

#endif
