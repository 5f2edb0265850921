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

/* Thread count for both OpenBLAS (GEMMs) and OpenMP (loops). */
static void mlc_c_set_threads(int n) {
    if (n < 1) return;
    openblas_set_num_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}
/* ---- end of prologue ---- */
