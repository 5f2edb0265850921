/* loop.c - the C target's per-element loop (emit.h: ElemLoop): the scalars and the
 * buffers' restrict pointers in a block, then nested loops, the outermost an OpenMP one
 * (with `simd` for straight-line bodies) when the loop asks for it and is large. */
#include <string.h>

#include "c_emitters.h"

static int has_block(const ElemLoop *l) {
    for (int i = 0; i < l->nscalar; i++)
        if (!l->scalar[i].host || strcmp(l->scalar[i].name, l->scalar[i].value)) return 1;
    return l->nbuf > 0;
}

void c_loop_begin(EmitCtx *e, int id, ElemLoop *l) {
    (void)id;
    if (has_block(l)) {
        emit(e, "{");
        e->indent++;
    }
    for (int i = 0; i < l->nscalar; i++) {
        const LoopScalar *s = &l->scalar[i];
        if (!s->host || strcmp(s->name, s->value)) emit_math(e, "const %s %s = %s;", s->type, s->name, s->value);
    }
    for (int i = 0; i < l->nbuf; i++)
        emit(e, "%sfloat *restrict %s = %s;", l->buf[i].write ? "" : "const ", l->buf[i].name,
             emit_buf(e, l->buf[i].node));
    if (l->par != LOOP_SERIAL && l->rank > 1)
        mlc_die("a parallel loop nest of rank %d", l->rank); /* no collapse() yet */
    /* if (parallel: ...): a bare if clause also applies to the simd construct, and when
     * false, OpenMP runs the loop one iteration at a time (GCC keeps a scalar copy for it),
     * so every loop below the threshold would lose its vectors */
    if (l->par == LOOP_PARALLEL_SIMD)
        emit(e, "#pragma omp parallel for simd if (parallel: (%s) > " OMP_MIN_WORK ")", l->size[0]);
    else if (l->par != LOOP_SERIAL) emit(e, "#pragma omp parallel for if ((%s) > " OMP_MIN_WORK ")", l->size[0]);
    for (int d = 0; d < l->rank; d++) {
        const char *v = l->var[d];
        emit(e, "for (long %s = 0; %s < (long)(%s); %s++)%s", v, v, l->size[d], v, d == l->rank - 1 ? " {" : "");
        e->indent++;
    }
}

void c_loop_end(EmitCtx *e, int id, ElemLoop *l) {
    (void)id;
    e->indent--;
    emit(e, "}");
    e->indent -= l->rank - 1;
    if (has_block(l)) {
        e->indent--;
        emit(e, "}");
    }
}
