/* random.c - dropout_mask (ops/ops_random.c) on every target: each element drawn from
 * Philox at (the model's seed, the op's stream, step << 32 | element) by one function,
 * mlc_philox_uniform (runtime/kernels/mlc_philox.h: inlined into C, compiled for the
 * device on CUDA), so the masks are the same bits on both. The element is counted in the
 * step's whole batch (self->sample0 samples precede this call's: set_sample_offset), so
 * a data-parallel rank draws for its samples what one process draws for them. */
#include "shared_emitters.h"

void emit_dropout(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    ElemLoop l = {.rank = 1, .size = {emit_numel(e, id)}, .var = {"i"}, .par = LOOP_PARALLEL};
    l.scalar[l.nscalar++] = (LoopScalar){"unsigned long long", "seed", "self->seed", 1};
    l.scalar[l.nscalar++] = (LoopScalar){"unsigned long long", "step", "(unsigned long long)t", 1};
    int64_t fixed, per_sample;
    shape_numel_affine(&n->shape, e->g->batch, &fixed, &per_sample);
    l.scalar[l.nscalar++] =
        (LoopScalar){"unsigned long long", "first",
                     arena_printf(e->arena, "(unsigned long long)self->sample0 * %lldull", (long long)per_sample), 1};
    l.scalar[l.nscalar++] = (LoopScalar){"float", "p", emit_float(e, attr_f(n, A_P)), 0};
    l.scalar[l.nscalar++] = (LoopScalar){"float", "scale", emit_float(e, 1.0 / (1.0 - attr_f(n, A_P))), 0};
    l.buf[l.nbuf++] = (LoopBuf){"mask", id, 1};
    loop_begin(e, id, &l);
    emit_math(
        e, "mask[i] = rng_uniform(seed, %lluull, (step << 32) | (first + (unsigned long long)i)) >= p ? scale : 0.0f;",
        (unsigned long long)attr_i(n, A_STREAM));
    loop_end(e, id, &l);
}
