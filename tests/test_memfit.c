/* test_memfit.c — runtime/sched/memfit.h: what a program needs from its
 * state rows and a plan, the check against DAL_MEMORY_LIMIT (standing in
 * for the machine's figures), its message, --force, and the taking of
 * "--force" out of a command line. */
#include <stdlib.h>
#include <string.h>

#include "runtime/sched/memfit.h"
#include "tests/util.h"

/* 1 MiB of parameters, 2 MiB of moments, a 0.5 MiB KV cache. */
static const RtStateSpec STATE[] = {
    {"w", RT_F32, 2, {512, 512}, true, false, RT_INIT_ZEROS, 0, 0},
    {"opt.m.w", RT_F32, 2, {512, 512}, false, false, RT_INIT_ZEROS, 0, 0},
    {"opt.v.w", RT_F32, 2, {512, 512}, false, false, RT_INIT_ZEROS, 0, 0},
    {"cache", RT_F32, 1, {131072}, false, true, RT_INIT_ZEROS, 0, 0},
};
static const RtBuffer USES_CACHE[] = {{.kind = RT_BUF_STATE, .name = "cache"}};

START_TEST(test_needs) {
  RtMemNeed n;
  rt_mem_need_params(STATE, 4, &n);
  ck_assert_int_eq(n.param, 1 << 20);
  ck_assert_int_eq(n.optim + n.cache + n.arena, 0);
  RtPlan pl = {.name = "step", .arena_bytes = 100};
  rt_mem_need_plan(STATE, 4, &pl, true, 3 << 20, &n); /* a training step: the moments, not the cache */
  ck_assert_int_eq(n.optim, 2 << 20);
  ck_assert_int_eq(n.cache, 0);
  ck_assert_int_eq(n.arena, 3 << 20);
  ck_assert(n.train);
  ck_assert_int_eq(rt_mem_total(&n), 6 << 20);
  char buf[400];
  ck_assert_str_eq(rt_mem_need_str(&n, buf, sizeof buf), "6.0 MiB (parameters 1.0 MiB + optimizer state 2.0 MiB + "
                                                         "arena (intermediates and gradients) 3.0 MiB)");
  pl = (RtPlan){.name = "decode", .nbuf = 1, .buf = USES_CACHE};
  rt_mem_need_plan(STATE, 4, &pl, false, 0, &n); /* sampling: the cache it names */
  ck_assert_int_eq(n.optim, 0);
  ck_assert_int_eq(n.cache, 512 << 10);
  ck_assert(!n.train);
  ck_assert_str_eq(rt_mem_need_str(&n, buf, sizeof buf),
                   "1.5 MiB (parameters 1.0 MiB + KV cache and other transient state 0.5 MiB)");
}
END_TEST

START_TEST(test_check) {
  RtMemNeed n = {.param = 3LL << 30, .arena = 1LL << 29};
  RtErr e;
  setenv("DAL_MEMORY_LIMIT", "2G", 1);
  rt_mem_set_force(false);
  ck_assert_int_eq(rt_mem_check(&n, "m.dal", &e), -1);
  ck_assert_msg(strstr(e.msg, "m.dal needs about 3.50 GiB (parameters 3.00 GiB + arena (intermediates) 0.50 GiB), "
                              "more than the 2.00 GiB (MemAvailable ") &&
                    strstr(e.msg, "DAL_MEMORY_LIMIT 2.00 GiB) available; --force runs it anyway"),
                "%s", e.msg);
  setenv("DAL_MEMORY_LIMIT", "4GiB", 1);
  ck_assert_int_eq(rt_mem_check(&n, "m.dal", &e), 0);
  setenv("DAL_MEMORY_LIMIT", "3584M", 1); /* exactly 3.5 GiB: fits */
  ck_assert_int_eq(rt_mem_check(&n, "m.dal", &e), 0);
  setenv("DAL_MEMORY_LIMIT", "3583M", 1);
  ck_assert_int_eq(rt_mem_check(&n, "m.dal", &e), -1);
  rt_mem_set_force(true);
  ck_assert_int_eq(rt_mem_check(&n, "m.dal", &e), 0);
  rt_mem_set_force(false);
  setenv("DAL_MEMORY_LIMIT", "2X", 1);
  ck_assert_int_eq(rt_mem_check(&n, "m.dal", &e), -1);
  ck_assert_msg(strstr(e.msg, "DAL_MEMORY_LIMIT must be a size"), "%s", e.msg);
  unsetenv("DAL_MEMORY_LIMIT");
  RtMemHave h;
  rt_mem_have(&h);
  ck_assert(h.avail > 0 && h.self > 0 && h.have >= h.self); /* Linux: /proc/meminfo and VmRSS */
  ck_assert_int_eq(h.env_limit, -1);
}
END_TEST

START_TEST(test_take_force) {
  char *argv[] = {"exe", "run", "--force", "--fn", "x", "--", "--force", NULL};
  rt_mem_set_force(false);
  int argc = rt_mem_take_force(7, argv);
  ck_assert(rt_mem_force());
  ck_assert_int_eq(argc, 6);
  ck_assert_str_eq(argv[2], "--fn");
  ck_assert_str_eq(argv[5], "--force"); /* after "--": not ours */
  ck_assert_ptr_null(argv[6]);
  char *none[] = {"exe", "info", NULL};
  rt_mem_set_force(false);
  ck_assert_int_eq(rt_mem_take_force(2, none), 2);
  ck_assert(!rt_mem_force());
}
END_TEST

int main(void) {
  Suite *s = suite_create("memfit");
  TCase *tc = tcase_create("memfit");
  tcase_add_test(tc, test_needs);
  tcase_add_test(tc, test_check);
  tcase_add_test(tc, test_take_force);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
