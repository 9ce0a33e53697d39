/* test_fuse_jit.c — test_fuse.c's plans, each also compiled by the code
 * generator, run, and compared with the reference executor
 * (tests/jit_check.h). test_fuse checks the plans alone, so the fusion
 * pass's own test links no code generator; this one is codegen's. */
#define FUSE_TEST_RUN 1
#include "tests/test_fuse.c"
