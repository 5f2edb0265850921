/* threads.c - the kernel library's one thread pool, OpenMP's: its size, and the scratch
 * slots a model keeps per thread for its convolutions. */
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mlc_kernels.h"

/* OpenBLAS runs single-threaded inside the OpenMP team: a second pool of spinning
 * OpenBLAS threads would fight the team for the same cores. */
void mlc_kernels_init(void) { openblas_set_num_threads(1); }

int mlc_blas_enter(void) {
    int threads = openblas_get_num_threads();
    if (threads != 1) openblas_set_num_threads(1);
    return threads;
}

void mlc_blas_leave(int threads) {
    if (threads != 1) openblas_set_num_threads(threads);
}

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
