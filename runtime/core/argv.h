/* argv.h — process-wide flags taken out of a command line before it is
 * parsed (--force, --check-numerics, --allow-nonfinite: any command takes
 * them, so no command's own parser needs to know them). */
#ifndef DAL_RUNTIME_CORE_ARGV_H
#define DAL_RUNTIME_CORE_ARGV_H

#include <stdbool.h>

/* Removes every 'flag' from argv[first .. *argc) before a "--" (what
 * follows it belongs to another command line), moving the rest down and
 * NULL-filling the freed slots; true if there was one. */
bool rt_argv_take(int *argc, char **argv, int first, const char *flag);

#endif
