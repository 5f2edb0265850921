/* optim.c - the optimizer updates of the C target, one routine per kind: the generated
 * update calls it once per parameter instead of spelling the loop out each time. Each
 * reads a parameter, its gradient and its state once and writes them in place; the
 * per-element arithmetic is the op's (compiler/ops/ops_optim.c, targets/shared/optim.c
 * for CUDA), in the same order, so C and CUDA agree to rounding. */
#include "mlc_kernels.h"

/* The generated code's threshold for an OpenMP team (targets/c/c_emitters.h). The if
 * clauses name the parallel construct: a bare one also applies to simd, and below the
 * threshold the loops would run one element at a time (6x slower). */
#define MLC_OPTIM_MIN_WORK 32768

void mlc_sgd_update(long n, float *restrict p, float *restrict v, const float *restrict g, float lr, float mom,
                    float wd, int nesterov) {
    if (nesterov) {
#pragma omp parallel for simd if (parallel : n > MLC_OPTIM_MIN_WORK)
        for (long i = 0; i < n; i++) {
            const float gi = g[i] + wd * p[i];
            v[i] = mom * v[i] + gi;
            p[i] -= lr * (gi + mom * v[i]);
        }
    } else {
#pragma omp parallel for simd if (parallel : n > MLC_OPTIM_MIN_WORK)
        for (long i = 0; i < n; i++) {
            const float gi = g[i] + wd * p[i];
            v[i] = mom * v[i] + gi;
            p[i] -= lr * v[i];
        }
    }
}

void mlc_adam_update(long n, float *restrict p, float *restrict m1, float *restrict m2, const float *restrict g,
                     const mlc_adam_step *s) {
    const float step = s->step, inv_bc2 = s->inv_bc2, b1 = s->b1, b2 = s->b2, eps = s->eps, wd = s->wd;
    if (s->decoupled) { /* adamw: p *= 1 - lr * wd before the step */
        const float decay = s->decay;
#pragma omp parallel for simd if (parallel : n > MLC_OPTIM_MIN_WORK)
        for (long i = 0; i < n; i++) {
            const float gi = g[i];
            m1[i] = b1 * m1[i] + (1.0f - b1) * gi;
            m2[i] = b2 * m2[i] + (1.0f - b2) * gi * gi;
            p[i] = p[i] * decay - step * m1[i] / (sqrtf(m2[i] * inv_bc2) + eps);
        }
    } else { /* adam: L2 weight decay folded into the gradient */
#pragma omp parallel for simd if (parallel : n > MLC_OPTIM_MIN_WORK)
        for (long i = 0; i < n; i++) {
            const float gi = g[i] + wd * p[i];
            m1[i] = b1 * m1[i] + (1.0f - b1) * gi;
            m2[i] = b2 * m2[i] + (1.0f - b2) * gi * gi;
            p[i] -= step * m1[i] / (sqrtf(m2[i] * inv_bc2) + eps);
        }
    }
}
