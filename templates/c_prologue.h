/* ---- templates/c_prologue.h: the start of every C model mlc emits ---- */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mlcrt.h"

/* One thread pool: OpenMP's. OpenBLAS runs single-threaded inside it; a second pool of
 * spinning OpenBLAS threads would fight the OpenMP team for the same cores. */
static void mlc_c_set_threads(int n) {
    if (n < 1) return;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

/* Row-major C[M,N] = op(A)[M,K] op(B)[K,N]. Large products are split across the OpenMP
 * team along the longer of M and N, in blocks of 16; each thread runs one single-threaded
 * cblas_sgemm, so a block's result does not depend on the other blocks. */
static void mlc_sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc) {
    const enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    const int split_m = M >= N;
    const int len = split_m ? M : N;
#pragma omp parallel if ((long)M * N * K > (1L << 18) && len >= 32)
    {
        int nt = 1, id = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads();
        id = omp_get_thread_num();
#endif
        const int blocks = (len + 15) / 16;
        const int b0 = (int)((long)blocks * id / nt), b1 = (int)((long)blocks * (id + 1) / nt);
        const int lo = b0 * 16, hi = b1 * 16 < len ? b1 * 16 : len;
        if (hi > lo) {
            if (split_m)
                cblas_sgemm(CblasRowMajor, TA, TB, hi - lo, N, K, 1.0f, ta ? A + lo : A + (long)lo * lda, lda, B, ldb,
                            0.0f, C + (long)lo * ldc, ldc);
            else
                cblas_sgemm(CblasRowMajor, TA, TB, M, hi - lo, K, 1.0f, A, lda, tb ? B + (long)lo * ldb : B + lo, ldb,
                            0.0f, C + lo, ldc);
        }
    }
}
/* ---- end of prologue ---- */
