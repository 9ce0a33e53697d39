/* afl_main.c — the AFL++ driver of one harness (FUZZ_FN, set by the
 * Makefile): persistent mode, the test case in shared memory, 10000 inputs
 * per process. With file arguments it runs each file once instead (to
 * reproduce a crash under a debugger). Built with afl-clang-fast only. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"

__AFL_FUZZ_INIT();

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: cannot open\n", path);
    return 1;
  }
  static uint8_t buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  int rc = FUZZ_FN(buf, n);
  printf("%s: %s\n", path, rc == FUZZ_ACCEPTED ? "accepted" : rc == FUZZ_REFUSED ? "refused" : "skipped");
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1) {
    int rc = 0;
    for (int i = 1; i < argc; i++) rc |= run_file(argv[i]);
    return rc;
  }
  __AFL_INIT();
  const uint8_t *buf = __AFL_FUZZ_TESTCASE_BUF;
  while (__AFL_LOOP(10000)) FUZZ_FN(buf, (size_t)__AFL_FUZZ_TESTCASE_LEN);
  return 0;
}
