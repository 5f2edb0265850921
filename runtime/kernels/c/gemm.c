/* gemm.c - row-major SGEMM split across the OpenMP team (mlc_kernels.h says how), each
 * thread's block one single-threaded cblas_sgemm. */
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mlc_kernels.h"

/* The fewest rows (or columns) of `len` any of nb blocks gets, cut as mlc_sgemm_block
 * cuts them: units of 16, the last one short. */
static long smallest_block(int len, int blocks, int nb) {
    long least = len;
    for (int id = 0; id < nb; id++) {
        long lo = (long)blocks * id / nb * 16, hi = (long)blocks * (id + 1) / nb * 16;
        if (hi > len) hi = len;
        if (hi - lo < least) least = hi - lo;
    }
    return least;
}

void mlc_sgemm_block(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                     int ldc, long *r0, long *r1, long *c0, long *c1) {
    const enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    const int split_m = M >= N;
    const int len = split_m ? M : N;
    int nt = 1, id = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads();
    id = omp_get_thread_num();
#endif
    const int blocks = (len + 15) / 16;
    /* as many blocks as threads while the smallest stays above MLC_SGEMM_SMALL (the
     * header says why); threads past them have nothing to do */
    const long other = (long)(split_m ? N : M) * K;
    int nb = nt < blocks ? nt : blocks;
    while (nb > 1 && smallest_block(len, blocks, nb) * other <= MLC_SGEMM_SMALL) nb--;
    if (id >= nb) {
        *r0 = *r1 = *c0 = *c1 = 0;
        return;
    }
    const int b0 = (int)((long)blocks * id / nb), b1 = (int)((long)blocks * (id + 1) / nb);
    const int lo = b0 * 16 < len ? b0 * 16 : len, hi = b1 * 16 < len ? b1 * 16 : len;
    *r0 = split_m ? lo : 0, *r1 = split_m ? hi : M;
    *c0 = split_m ? 0 : lo, *c1 = split_m ? N : hi;
    if (hi <= lo) return;
    if (split_m)
        cblas_sgemm(CblasRowMajor, TA, TB, hi - lo, N, K, 1.0f, ta ? A + lo : A + (long)lo * lda, lda, B, ldb, 0.0f,
                    C + (long)lo * ldc, ldc);
    else
        cblas_sgemm(CblasRowMajor, TA, TB, M, hi - lo, K, 1.0f, A, lda, tb ? B + (long)lo * ldb : B + lo, ldb, 0.0f,
                    C + lo, ldc);
}

void mlc_sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
               int ldc) {
#pragma omp parallel if (mlc_sgemm_parallel(M, N, K))
    {
        long r0, r1, c0, c1;
        mlc_sgemm_block(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, &r0, &r1, &c0, &c1);
    }
}

void mlc_sgemm_batched(int ta, int tb, int M, int N, int K, const float *A, int lda, long sa, const float *B, int ldb,
                       long sb, float *C, int ldc, long sc, long count) {
    const enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    const long rows = count * M < (1L << 30) ? count * M : 1L << 30; /* as one GEMM of count*M rows */
#pragma omp parallel for schedule(static) if (mlc_sgemm_parallel((int)rows, N, K))
    for (long i = 0; i < count; i++)
        cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, 1.0f, A + i * sa, lda, B + i * sb, ldb, 0.0f, C + i * sc, ldc);
}
