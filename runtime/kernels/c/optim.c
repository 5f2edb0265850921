/* optim.c - the optimizer updates of the C target, one routine per kind: the generated
 * update calls it once per parameter instead of spelling the loop out each time. Each
 * reads a parameter, its gradient and its state once and writes them in place; the
 * per-element arithmetic is the op's (compiler/ops/ops_optim.c, targets/shared/optim.c
 * for CUDA), in the same order, so C and CUDA agree to rounding.
 *
 * Each loop is a worksharing loop without a barrier (orphaned `omp for nowait`): the
 * generated update opens one team around a run of these calls (targets/c/optim.c), so the
 * team forks and joins once for all the parameters, not once for each, and the small ones
 * are split too; a thread goes on to the next parameter as soon as its share of this one
 * is done, which is safe because no two calls touch the same memory. Called outside a
 * team, the calling thread does all of it. The split changes no bit: each element's
 * arithmetic is its own. */
#include "mlc_kernels.h"

void mlc_sgd_update(long n, float *restrict p, float *restrict v, const float *restrict g, float lr, float mom,
                    float wd, int nesterov) {
    if (nesterov) {
#pragma omp for simd schedule(static) nowait
        for (long i = 0; i < n; i++) {
            const float gi = g[i] + wd * p[i];
            v[i] = mom * v[i] + gi;
            p[i] -= lr * (gi + mom * v[i]);
        }
    } else {
#pragma omp for simd schedule(static) nowait
        for (long i = 0; i < n; i++) {
            const float gi = g[i] + wd * p[i];
            v[i] = mom * v[i] + gi;
            p[i] -= lr * v[i];
        }
    }
}

void mlc_sgd_plain_update(long n, float *restrict p, const float *restrict g, float lr, float wd) {
#pragma omp for simd schedule(static) nowait
    for (long i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
}

void mlc_adam_update(long n, float *restrict p, float *restrict m1, float *restrict m2, const float *restrict g,
                     const mlc_adam_step *s) {
    const float step = s->step, inv_bc2 = s->inv_bc2, b1 = s->b1, b2 = s->b2, w1 = s->w1, w2 = s->w2, eps = s->eps,
                wd = s->wd;
    if (s->decoupled) { /* adamw: p *= 1 - lr * wd before the step */
        const float decay = s->decay;
#pragma omp for simd schedule(static) nowait
        for (long i = 0; i < n; i++) {
            const float gi = g[i];
            m1[i] = b1 * m1[i] + w1 * gi;
            m2[i] = b2 * m2[i] + w2 * gi * gi;
            p[i] = p[i] * decay - step * m1[i] / (sqrtf(m2[i] * inv_bc2) + eps);
        }
    } else { /* adam: L2 weight decay folded into the gradient */
#pragma omp for simd schedule(static) nowait
        for (long i = 0; i < n; i++) {
            const float gi = g[i] + wd * p[i];
            m1[i] = b1 * m1[i] + w1 * gi;
            m2[i] = b2 * m2[i] + w2 * gi * gi;
            p[i] -= step * m1[i] / (sqrtf(m2[i] * inv_bc2) + eps);
        }
    }
}
