/* test_obj_cache.c — the compiled-object cache's files
 * (codegen/llvm/obj_cache.h): keys, the cache directory's name, stores and
 * loads, and every kind of bad entry detected (never returned as a hit).
 * The JIT's use of it is tested end to end by tests/scripts/obj_cache.sh. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/llvm/obj_cache.h"

static char dir[256];

static void make_dir(void) {
  snprintf(dir, sizeof dir, "%s/dal-obj-cache-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static CgCacheKey key_of(const char *a, const char *b) {
  CgCacheKey k;
  cg_cache_key_init(&k);
  cg_cache_key_str(&k, a);
  cg_cache_key_str(&k, b);
  return k;
}

static int same(CgCacheKey a, CgCacheKey b) { return a.h[0] == b.h[0] && a.h[1] == b.h[1]; }

START_TEST(keys) {
  ck_assert(same(key_of("define void @k()", "znver4"), key_of("define void @k()", "znver4")));
  /* parts are length-prefixed: moving a byte between parts changes the key */
  ck_assert(!same(key_of("ab", "c"), key_of("a", "bc")));
  /* every part counts, e.g. the CPU name or the feature string */
  ck_assert(!same(key_of("ir", "+avx2,+fma"), key_of("ir", "+avx2,-fma")));
  ck_assert(!same(key_of("ir", "znver3"), key_of("ir", "znver4")));
  ck_assert(same(key_of("ir", ""), key_of("ir", NULL))); /* NULL counts as "" */
  char hex[33];
  CgCacheKey k = key_of("x", "y");
  cg_cache_key_hex(&k, hex);
  ck_assert_int_eq(strlen(hex), 32);
  ck_assert_int_eq(strspn(hex, "0123456789abcdef"), 32);
}
END_TEST

START_TEST(directory) {
  char d[512];
  setenv("DAL_CACHE_DIR", "/x/dal-cache", 1);
  setenv("XDG_CACHE_HOME", "/y", 1);
  ck_assert_int_eq(cg_cache_dir(d, sizeof d), 0);
  ck_assert_str_eq(d, "/x/dal-cache");
  unsetenv("DAL_CACHE_DIR");
  ck_assert_int_eq(cg_cache_dir(d, sizeof d), 0);
  ck_assert_str_eq(d, "/y/dal");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/someone", 1);
  ck_assert_int_eq(cg_cache_dir(d, sizeof d), 0);
  ck_assert_str_eq(d, "/home/someone/.cache/dal");
  unsetenv("HOME");
  ck_assert_int_eq(cg_cache_dir(d, sizeof d), -1);
  setenv("DAL_CACHE_DIR", "/a/long/path", 1);
  ck_assert_int_eq(cg_cache_dir(d, 4), -1); /* does not fit */
}
END_TEST

static const char payload[] = "\177ELF pretend object bytes, long enough to cut in places";

/* Stores payload under k in dir (a fresh subdirectory, created by the
 * store) and returns the entry's path in path. */
static void store(const CgCacheKey *k, char *path, size_t size) {
  ck_assert_int_eq(cg_cache_store(dir, k, payload, sizeof payload), 0);
  cg_cache_path(dir, k, path, size);
  ck_assert_int_eq(access(path, R_OK), 0);
}

static CgCacheLookup load(const CgCacheKey *k, char *why, size_t why_size) {
  void *bytes = NULL;
  size_t n = 0;
  CgCacheLookup got = cg_cache_load(dir, k, &bytes, &n, why, why_size);
  if (got == CG_CACHE_HIT) {
    ck_assert_uint_eq(n, sizeof payload);
    ck_assert_int_eq(memcmp(bytes, payload, n), 0);
  } else {
    ck_assert_ptr_null(bytes);
  }
  free(bytes);
  return got;
}

START_TEST(store_and_load) {
  make_dir();
  strcat(dir, "/nested/dal"); /* created by the store */
  CgCacheKey k = key_of("kernel", "cpu"), other = key_of("kernel", "other cpu");
  char why[4300], path[4200];
  ck_assert_int_eq(load(&k, why, sizeof why), CG_CACHE_MISS);
  store(&k, path, sizeof path);
  ck_assert_int_eq(load(&k, why, sizeof why), CG_CACHE_HIT);
  ck_assert_int_eq(load(&other, why, sizeof why), CG_CACHE_MISS);
  /* a store over an entry replaces it whole; no temporary is left */
  store(&k, path, sizeof path);
  ck_assert_int_eq(load(&k, why, sizeof why), CG_CACHE_HIT);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "test $(ls '%s' | wc -l) -eq 1", dir);
  ck_assert_int_eq(system(cmd), 0);
  *strstr(dir, "/nested") = 0;
  remove_dir();
}
END_TEST

/* Rewrites the entry at path with fn applied to its bytes. */
static void damage(const char *path, void (*fn)(unsigned char *b, long *n)) {
  FILE *f = fopen(path, "rb");
  unsigned char b[4096];
  long n = (long)fread(b, 1, sizeof b - 16, f);
  fclose(f);
  fn(b, &n);
  f = fopen(path, "wb");
  ck_assert_int_eq(fwrite(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
}

static void flip_payload_byte(unsigned char *b, long *n) { b[*n - 5] ^= 0x40; }
static void truncate_payload(unsigned char *b, long *n) { (void)b; *n -= 10; }
static void truncate_header(unsigned char *b, long *n) { (void)b; *n = 20; }
static void add_byte(unsigned char *b, long *n) { b[(*n)++] = 0; }
static void bad_magic(unsigned char *b, long *n) { (void)n; b[0] = 'X'; }
static void other_format(unsigned char *b, long *n) { (void)n; b[8] += 1; } /* the format word follows the magic */

START_TEST(bad_entries) {
  make_dir();
  static const struct {
    void (*fn)(unsigned char *, long *);
    const char *why;
  } cases[] = {
      {flip_payload_byte, "checksum mismatch"},
      {truncate_payload, "truncated"},
      {truncate_header, "shorter than its header"},
      {add_byte, "longer than its header says"},
      {bad_magic, "not a dal cache entry"},
      {other_format, "written by another cache format"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CgCacheKey k = key_of("kernel", cases[i].why);
    char why[4300], path[4200];
    store(&k, path, sizeof path);
    damage(path, cases[i].fn);
    ck_assert_int_eq(load(&k, why, sizeof why), CG_CACHE_BAD);
    ck_assert_msg(strstr(why, cases[i].why) && strstr(why, path), "'%s' lacks '%s'", why, cases[i].why);
    store(&k, path, sizeof path); /* rebuilt */
    ck_assert_int_eq(load(&k, why, sizeof why), CG_CACHE_HIT);
  }
  /* an entry under another key's name (renamed, or a hash collision of names) */
  CgCacheKey a = key_of("kernel", "a"), b = key_of("kernel", "b");
  char why[4300], pa[4200], pb[4200];
  store(&a, pa, sizeof pa);
  cg_cache_path(dir, &b, pb, sizeof pb);
  ck_assert_int_eq(rename(pa, pb), 0);
  ck_assert_int_eq(load(&b, why, sizeof why), CG_CACHE_BAD);
  ck_assert_ptr_nonnull(strstr(why, "another key"));
  remove_dir();
}
END_TEST

START_TEST(unwritable) {
  make_dir();
  char file[300];
  snprintf(file, sizeof file, "%s/file", dir);
  FILE *f = fopen(file, "w");
  fclose(f);
  CgCacheKey k = key_of("kernel", "cpu");
  ck_assert_int_eq(cg_cache_store(file, &k, payload, sizeof payload), -1); /* a file where the directory goes */
  remove_dir();
}
END_TEST

int main(void) {
  Suite *s = suite_create("obj_cache");
  TCase *tc = tcase_create("files");
  tcase_add_test(tc, keys);
  tcase_add_test(tc, directory);
  tcase_add_test(tc, store_and_load);
  tcase_add_test(tc, bad_entries);
  tcase_add_test(tc, unwritable);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
