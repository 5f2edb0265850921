/* check.c - --check-finite's scan of a whole tensor (the per-element check of fused
 * loops, mlc_nonfinite, is inline in mlc_kernels.h). */
#include "mlc_kernels.h"

int mlc_check_finite(const float *p, long n, const char *node, const char *where) {
    for (long i = 0; i < n; i++)
        if (!isfinite(p[i])) {
            fprintf(stderr, "error: %s (%s) produced %s at element %ld\n", node, where, isnan(p[i]) ? "NaN" : "Inf", i);
            return 1;
        }
    return 0;
}
