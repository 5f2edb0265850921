/* threads.c - the kernel library's one thread pool, OpenMP's: how its threads wait, its
 * size, and the scratch slots a model keeps per thread for its convolutions. */
#include <cblas.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mlc_kernels.h"

/* OpenBLAS runs single-threaded inside the OpenMP team: a second pool of spinning
 * OpenBLAS threads would fight the team for the same cores. */
void mlc_kernels_init(void) { openblas_set_num_threads(1); }

void mlc_c_set_threads(int n) {
    if (n < 1) return;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

int mlc_scratch_slots(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int mlc_conv_team(const mlc_conv_plan *pl, long work) {
    long n = 1;
#ifdef _OPENMP
    n = omp_get_max_threads();
#endif
    if (n > pl->slots) n = pl->slots;
    if (n > work) n = work;
    return n < 1 ? 1 : (int)n;
}

#if defined(_OPENMP) && defined(__GLIBC__)
/* How the team's threads wait at the end of each parallel loop (docs/trainer.md,
 * "Threads under load"). libgomp's default spins about 3 ms before sleeping: on a busy
 * machine a thread whose partner was descheduled burns its time slices spinning, and an
 * epoch took several times longer than the cores taken by others explain. Passive
 * waiting (a futex sleep at once) measured best on a busy machine, also against a bounded
 * spin of 1,000 rounds (bench/results/load.md). Results do not depend on it. The user's
 * OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
 *
 * libgomp reads them once, in its constructor, and setenv cannot reach it: the only
 * code that runs earlier, an executable's .preinit_array, runs before libc's own
 * initialisation, which resets the environment to the one the process started with. So
 * the hook starts the program again, before any of it has run, with
 * OMP_WAIT_POLICY=passive added (same pid, same arguments); where exec fails, it runs on
 * with libgomp's default. libmlckernels links into executables only, as every trainer is: a shared object may
 * not have a .preinit_array. */
#include <string.h>
#include <unistd.h>

static void mlc_default_wait_policy(int argc, char **argv, char **envp)
{
    (void)argc;
    static char *env[4096 + 2];
    size_t n = 0;
    for (; envp[n]; n++)
        if (!strncmp(envp[n], "OMP_WAIT_POLICY=", 16) || !strncmp(envp[n], "GOMP_SPINCOUNT=", 15) ||
            n == 4096)
            return; /* set by the user (or by this hook, in the program started again) */
        else if (!strncmp(envp[n], "LD_PRELOAD=", 11) && strstr(envp[n], "vgpreload"))
            return; /* under valgrind, /proc/self/exe is valgrind's, not the program */
    memcpy(env, envp, n * sizeof *env);
    env[n] = "OMP_WAIT_POLICY=passive";
    env[n + 1] = NULL;
    execve("/proc/self/exe", argv, env);
}

/* glibc calls .preinit_array entries with (argc, argv, envp) */
__attribute__((section(".preinit_array"), used)) static void (*const mlc_wait_policy_hook)(
    int, char **, char **) = mlc_default_wait_policy;
#endif
