/* blas_core.h — OpenBLAS's kernels for CPUs it does not know.
 *
 * OpenBLAS (0.3.21 in Debian 12) picks its kernels at load time from the
 * CPU model; a newer Intel CPU it does not recognise (a Sapphire Rapids
 * Xeon, say) falls back to "Prescott", SSE3 kernels at a quarter of the
 * speed its AVX-512 ones reach (measured on such a machine, sgemm 1024^3
 * on 2 threads: Prescott 51 GFLOP/s, Haswell 123, SkylakeX 209). The choice
 * is made in OpenBLAS's constructor, before main, and can only be changed
 * through the environment variable OPENBLAS_CORETYPE; so when OpenBLAS
 * chose Prescott on a CPU with AVX2 + FMA (or AVX-512), rt_blas_fix_core
 * sets it to the best core the CPU supports and executes the program again.
 * A user's own OPENBLAS_CORETYPE is always left alone.
 *
 * Module prefix: rt_. */
#ifndef DAL_RT_BLAS_CORE_H
#define DAL_RT_BLAS_CORE_H

/* The OpenBLAS core this CPU should use instead of the one OpenBLAS chose
 * ("SkylakeX" or "Haswell"), or NULL when its choice stands (it is not the
 * Prescott fallback, the CPU has neither AVX2 + FMA nor AVX-512, or
 * OPENBLAS_CORETYPE is set). */
const char *rt_blas_better_core(void);

/* Called first in main: if rt_blas_better_core names a core, sets
 * OPENBLAS_CORETYPE to it and re-executes /proc/self/exe with argv (the
 * same arguments, environment and open files). Returns only if there is
 * nothing to do or the re-execution failed (then OpenBLAS's choice stands:
 * slower, same results up to rounding). */
void rt_blas_fix_core(char **argv);

#endif
