/* obj_cache.c — the on-disk cache of compiled kernel objects (see
 * obj_cache.h): key hashing, the entry header, atomic stores, checked
 * loads. */
#include "codegen/llvm/obj_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The entry header, all 64-bit words in host order (an entry is only ever
 * read by the machine whose CPU is in its key). */
typedef struct {
  char magic[8];         /* ENTRY_MAGIC */
  uint64_t format;       /* CG_CACHE_FORMAT */
  uint64_t key[2];       /* the entry's own key (its file name, again) */
  uint64_t size;         /* payload bytes */
  uint64_t checksum;     /* payload_checksum of the payload */
} EntryHeader;

static const char ENTRY_MAGIC[8] = {'d', 'a', 'l', 'o', 'b', 'j', '\n', 0};

/* Two independent 64-bit FNV-1a style streams (different offsets and
 * primes) make the 128-bit key. */
#define FNV_PRIME_A 0x100000001b3ull
#define FNV_PRIME_B 0x00000100000001b5ull

void cg_cache_key_init(CgCacheKey *k) {
  k->h[0] = 0xcbf29ce484222325ull;
  k->h[1] = 0x6c62272e07bb0142ull;
}

static void mix_bytes(CgCacheKey *k, const unsigned char *p, size_t n) {
  uint64_t a = k->h[0], b = k->h[1];
  for (size_t i = 0; i < n; i++) {
    a = (a ^ p[i]) * FNV_PRIME_A;
    b = (b ^ p[i]) * FNV_PRIME_B;
    b ^= b >> 29;
  }
  k->h[0] = a;
  k->h[1] = b;
}

void cg_cache_key_part(CgCacheKey *k, const char *bytes, size_t n) {
  uint64_t len = n;
  mix_bytes(k, (const unsigned char *)&len, sizeof len);
  mix_bytes(k, (const unsigned char *)bytes, n);
}

void cg_cache_key_str(CgCacheKey *k, const char *s) {
  if (!s) s = "";
  cg_cache_key_part(k, s, strlen(s));
}

void cg_cache_key_hex(const CgCacheKey *k, char hex[33]) {
  snprintf(hex, 33, "%016llx%016llx", (unsigned long long)k->h[0], (unsigned long long)k->h[1]);
}

int cg_cache_dir(char *dir, size_t size) {
  const char *v = getenv("DAL_CACHE_DIR");
  int n;
  if (v && *v) n = snprintf(dir, size, "%s", v);
  else if ((v = getenv("XDG_CACHE_HOME")) && *v) n = snprintf(dir, size, "%s/dal", v);
  else if ((v = getenv("HOME")) && *v) n = snprintf(dir, size, "%s/.cache/dal", v);
  else return -1;
  return n > 0 && (size_t)n < size ? 0 : -1;
}

void cg_cache_path(const char *dir, const CgCacheKey *k, char *path, size_t size) {
  char hex[33];
  cg_cache_key_hex(k, hex);
  snprintf(path, size, "%s/%s.o", dir, hex);
}

static uint64_t payload_checksum(const void *bytes, size_t n) {
  CgCacheKey k;
  cg_cache_key_init(&k);
  mix_bytes(&k, bytes, n);
  return k.h[0] ^ (k.h[1] * 0x9e3779b97f4a7c15ull);
}

CgCacheLookup cg_cache_load(const char *dir, const CgCacheKey *k, void **bytes, size_t *size, char *why,
                            size_t why_size) {
  char path[4096];
  cg_cache_path(dir, k, path, sizeof path);
  *bytes = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return CG_CACHE_MISS;
  EntryHeader h;
  const char *bad = NULL;
  void *payload = NULL;
  if (fread(&h, sizeof h, 1, f) != 1) bad = "shorter than its header";
  else if (memcmp(h.magic, ENTRY_MAGIC, sizeof h.magic)) bad = "not a dal cache entry";
  else if (h.format != CG_CACHE_FORMAT) bad = "written by another cache format";
  else if (h.key[0] != k->h[0] || h.key[1] != k->h[1]) bad = "its header names another key";
  else if (h.size == 0 || h.size > ((uint64_t)1 << 32)) bad = "implausible size";
  else if (!(payload = malloc(h.size))) bad = "out of memory";
  else if (fread(payload, 1, h.size, f) != h.size) bad = "truncated";
  else if (fgetc(f) != EOF) bad = "longer than its header says";
  else if (payload_checksum(payload, h.size) != h.checksum) bad = "checksum mismatch";
  fclose(f);
  if (bad) {
    free(payload);
    snprintf(why, why_size, "%s: %s", path, bad);
    return CG_CACHE_BAD;
  }
  *bytes = payload;
  *size = h.size;
  return CG_CACHE_HIT;
}

/* mkdir -p */
static int make_dirs(const char *dir) {
  char p[4096];
  int n = snprintf(p, sizeof p, "%s", dir);
  if (n <= 0 || (size_t)n >= sizeof p) return -1;
  for (char *c = p + 1; *c; c++) {
    if (*c != '/') continue;
    *c = 0;
    if (mkdir(p, 0755) && errno != EEXIST) return -1;
    *c = '/';
  }
  return mkdir(p, 0755) && errno != EEXIST ? -1 : 0;
}

int cg_cache_store(const char *dir, const CgCacheKey *k, const void *bytes, size_t size) {
  if (make_dirs(dir)) return -1;
  char path[4096], tmp[4200];
  cg_cache_path(dir, k, path, sizeof path);
  static unsigned serial; /* several stores of one process never share a temporary */
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), __atomic_fetch_add(&serial, 1, __ATOMIC_RELAXED));
  FILE *f = fopen(tmp, "wb");
  if (!f) return -1;
  EntryHeader h = {.format = CG_CACHE_FORMAT, .key = {k->h[0], k->h[1]}, .size = size,
                   .checksum = payload_checksum(bytes, size)};
  memcpy(h.magic, ENTRY_MAGIC, sizeof h.magic);
  int ok = fwrite(&h, sizeof h, 1, f) == 1 && fwrite(bytes, 1, size, f) == size;
  if (fclose(f)) ok = 0;
  if (!ok || rename(tmp, path)) {
    unlink(tmp);
    return -1;
  }
  return 0;
}
