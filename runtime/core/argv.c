/* argv.c — process-wide flags out of a command line (see argv.h). */
#include "runtime/core/argv.h"

#include <stddef.h>
#include <string.h>

bool rt_argv_take(int *argc, char **argv, int first, const char *flag) {
  int out = first;
  bool rest = false, found = false;
  for (int i = first; i < *argc; i++) {
    rest |= strcmp(argv[i], "--") == 0;
    if (!rest && strcmp(argv[i], flag) == 0) found = true;
    else argv[out++] = argv[i];
  }
  for (int i = out; i < *argc; i++) argv[i] = NULL;
  *argc = out;
  return found;
}
