/* test_fuzz_corpus.c — every input of the fuzz campaigns, replayed: the
 * minimised corpus (tests/fuzz/NAME/corpus) and every input that ever
 * crashed or hung a harness (tests/fuzz/NAME/crashes) go through the same
 * harness functions AFL++ ran (tests/fuzz/fuzz_NAME.c), built normally,
 * so `make test` replays them and `make test-san` under ASan and UBSan.
 *
 * Each input must come back accepted or refused with a message (a harness
 * abort()s on a broken invariant or an empty message); a crash file must
 * also be one the harness runs (not skipped), so it keeps testing the fix
 * it came with, and one named *.refused* must be refused (what its fix
 * guarantees: a clean error instead of the crash, hang or blow-up). */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util.h"

/* The harnesses, compiled into this test as they are into the AFL++
 * programs (the Makefile links a test only with the helpers in tests/). */
#include "tests/fuzz/fuzz_bpe.c"
#include "tests/fuzz/fuzz_dal.c"
#include "tests/fuzz/fuzz_data.c"
#include "tests/fuzz/fuzz_fashion.c"
#include "tests/fuzz/fuzz_folder.c"
#include "tests/fuzz/fuzz_model.c"
#include "tests/fuzz/fuzz_npy.c"
#include "tests/fuzz/fuzz_safetensors.c"
#include "tests/fuzz/fuzz_util.c"

static const struct {
  const char *name;
  FuzzFn fn;
} targets[] = {{"dal", fuzz_dal},   {"safetensors", fuzz_safetensors}, {"npy", fuzz_npy},     {"bpe", fuzz_bpe},
               {"folder", fuzz_folder}, {"fashion", fuzz_fashion},       {"model", fuzz_model}};
#define NTARGETS (int)(sizeof targets / sizeof targets[0])

static uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f, "%s: cannot open", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc((size_t)len + 1);
  ck_assert_ptr_nonnull(buf);
  *n = fread(buf, 1, (size_t)len, f);
  fclose(f);
  return buf;
}

/* Replays every file of tests/fuzz/NAME/sub; returns how many. */
static int replay(int t, const char *sub, int *ran) {
  char dir[256];
  snprintf(dir, sizeof dir, "tests/fuzz/%s/%s", targets[t].name, sub);
  DIR *d = opendir(dir);
  if (!d) return 0;
  int count = 0;
  struct dirent *ent;
  while ((ent = readdir(d))) {
    if (ent->d_name[0] == '.' || strcmp(ent->d_name, "README") == 0) continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
    size_t n;
    uint8_t *data = slurp(path, &n);
    int rc = targets[t].fn(data, n);
    ck_assert_msg(rc == FUZZ_ACCEPTED || rc == FUZZ_REFUSED || rc == FUZZ_SKIPPED, "%s: harness returned %d", path, rc);
    if (strcmp(sub, "crashes") == 0)
      ck_assert_msg(rc != FUZZ_SKIPPED, "%s: a crash input the harness no longer runs", path);
    if (strstr(ent->d_name, ".refused"))
      ck_assert_msg(rc == FUZZ_REFUSED, "%s: the fix made this input an error, but it was not refused", path);
    *ran += rc != FUZZ_SKIPPED;
    free(data);
    count++;
  }
  closedir(d);
  return count;
}

START_TEST(corpus_replays) {
  int ran = 0;
  int corpus = replay(_i, "corpus", &ran), crashes = replay(_i, "crashes", &ran);
  printf("fuzz %-12s %4d corpus inputs, %3d crash inputs, %4d run\n", targets[_i].name, corpus, crashes, ran);
  ck_assert_msg(corpus > 0, "tests/fuzz/%s/corpus is empty", targets[_i].name);
}
END_TEST

/* The harnesses themselves: a valid input is accepted and a broken one
 * refused, so a replay that passes is not a harness that runs nothing. */
START_TEST(harnesses_tell_good_from_bad) {
  static const char good_bpe[] = "{\"format\":\"dal-bpe\",\"version\":1,\"bytes\":[97,98],\"merges\":[[1,2]]}";
  ck_assert_int_eq(fuzz_bpe((const uint8_t *)good_bpe, strlen(good_bpe)), FUZZ_ACCEPTED);
  ck_assert_int_eq(fuzz_bpe((const uint8_t *)good_bpe, 20), FUZZ_REFUSED);
  static const char good_dal[] = "config c { batch = 2 }\n@infer\ndef f(x: f32[B, 3]) -> f32[B, 3] { return x * 2.0 }\n";
  ck_assert_int_eq(fuzz_dal((const uint8_t *)good_dal, strlen(good_dal)), FUZZ_ACCEPTED);
  ck_assert_int_eq(fuzz_dal((const uint8_t *)good_dal, 30), FUZZ_REFUSED);
  static const char escape[] = "import \"/etc/passwd\"\n";
  ck_assert_int_eq(fuzz_dal((const uint8_t *)escape, strlen(escape)), FUZZ_SKIPPED);
  static const uint8_t npy_bad[] = "\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}";
  ck_assert_int_eq(fuzz_npy(npy_bad, sizeof npy_bad - 1), FUZZ_REFUSED);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fuzz_corpus");
  TCase *tc = tcase_create("fuzz_corpus");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, corpus_replays, 0, NTARGETS);
  tcase_add_test(tc, harnesses_tell_good_from_bad);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
