/* check.c - --check-finite's scan of a whole tensor (the per-element check of fused
 * loops, mlc_nonfinite, is inline in mlc_kernels.h), and the line both print. */
#include "mlc_kernels.h"

static const char *msg_prefix = "";

void mlc_kernels_set_msg_prefix(const char *prefix) { msg_prefix = prefix ? prefix : ""; }

void mlc_report_nonfinite(float v, long at, const char *node, const char *where) {
    fprintf(stderr, "%serror: %s (%s) produced %s at element %ld\n", msg_prefix, node, where, isnan(v) ? "NaN" : "Inf",
            at);
}

int mlc_check_finite(const float *p, long n, const char *node, const char *where) {
    for (long i = 0; i < n; i++)
        if (!isfinite(p[i])) {
            mlc_report_nonfinite(p[i], i, node, where);
            return 1;
        }
    return 0;
}
