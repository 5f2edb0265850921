/* loop.c - the CUDA target's per-element loop (emit.h: ElemLoop): a grid-stride kernel
 * over the elements, a thread per element, the flat index split into the loop variables;
 * the constants and the buffers' short names inside it; the host scalars computed on the
 * host and passed in. */
#include <string.h>

#include "cuda_emitters.h"

/* The elements: the product of the sizes. */
static const char *loop_count(EmitCtx *e, const ElemLoop *l) {
    if (l->rank == 1) return l->size[0];
    const char *c = "";
    for (int d = 0; d < l->rank; d++) c = arena_printf(e->arena, "%s%s(%s)", c, d ? " * " : "", l->size[d]);
    return c;
}

void cuda_loop_begin(EmitCtx *e, int id, ElemLoop *l) {
    const char *count = loop_count(e, l), *params = NULL;
    for (int i = 0; i < l->nscalar; i++)
        if (l->scalar[i].host)
            params = arena_printf(e->arena, "%s%sconst %s %s", params ? params : "", params ? ", " : "",
                                  l->scalar[i].type, l->scalar[i].name);
    const char *flat = l->rank == 1 ? l->var[0] : "k_";
    l->kernel_ = cuda_kernel_begin(e, id, count, flat, params);
    for (int i = 0; i < l->nscalar; i++)
        if (!l->scalar[i].host)
            emit_math(e, "const %s %s = %s;", l->scalar[i].type, l->scalar[i].name, l->scalar[i].value);
    for (int i = 0; i < l->nbuf; i++)
        emit(e, "%sfloat *const %s = %s;", l->buf[i].write ? "" : "const ", l->buf[i].name,
             emit_buf(e, l->buf[i].node));
    if (l->rank > 1) {
        emit(e, "long r_ = %s;", flat);
        for (int d = l->rank - 1; d > 0; d--)
            emit(e, "const long %s = r_ %% (long)(%s); r_ /= (long)(%s);", l->var[d], l->size[d], l->size[d]);
        emit(e, "const long %s = r_;", l->var[0]);
    }
}

void cuda_loop_end(EmitCtx *e, int id, ElemLoop *l) {
    cuda_kernel_end(e);
    const char *count = loop_count(e, l), *args = NULL;
    int block = 0; /* host scalars other than the function's own values get names in a block */
    for (int i = 0; i < l->nscalar; i++) {
        const LoopScalar *s = &l->scalar[i];
        if (!s->host) continue;
        args = arena_printf(e->arena, "%s%s%s", args ? args : "", args ? ", " : "", s->name);
        if (!strcmp(s->name, s->value)) continue;
        if (!block++) emit(e, "{"), e->indent++;
        emit_math(e, "const %s %s = %s;", s->type, s->name, s->value);
    }
    cuda_launch(e, id, l->kernel_, count, args);
    if (block) e->indent--, emit(e, "}");
}
