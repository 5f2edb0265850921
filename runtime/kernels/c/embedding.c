/* embedding.c - the embedding lookup (rows of a table [V, D] at int32 ids) and its
 * gradient (the rows of dy added at their ids). Ids outside [0, V) are clamped to the
 * first or last row. The gradient's threads own blocks of columns and add the rows in the
 * order of the ids: no atomics, the same bits whatever the thread count. */
#include <string.h>

#include "mlc_kernels.h"

enum { COLS = 16 }; /* columns per block of the gradient: one cache line */

static inline long clamp_id(int32_t id, long V) { return id < 0 ? 0 : id >= V ? V - 1 : (long)id; }

void mlc_gather_rows(long n, long V, long D, const int32_t *ids, const float *table, float *y) {
#pragma omp parallel for schedule(static) if (n * D > 32768)
    for (long i = 0; i < n; i++) memcpy(y + i * D, table + clamp_id(ids[i], V) * D, sizeof(float) * (size_t)D);
}

void mlc_scatter_rows(long n, long V, long D, const int32_t *ids, const float *dy, float *out) {
    const long blocks = (D + COLS - 1) / COLS;
#pragma omp parallel for schedule(static) if (n * D > 32768)
    for (long blk = 0; blk < blocks; blk++) {
        const long j0 = blk * COLS, m = D - j0 < COLS ? D - j0 : COLS;
        for (long v = 0; v < V; v++)
            for (long j = 0; j < m; j++) out[v * D + j0 + j] = 0.0f;
        for (long i = 0; i < n; i++) {
            float *o = out + clamp_id(ids[i], V) * D + j0;
            const float *d = dy + i * D + j0;
            for (long j = 0; j < m; j++) o[j] += d[j];
        }
    }
}
