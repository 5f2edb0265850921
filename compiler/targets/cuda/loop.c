/* loop.c - the CUDA target's per-element loop (emit.h: ElemLoop): a grid-stride kernel
 * over the elements, a thread per element, the flat index split into the loop variables;
 * the constants and the buffers' short names inside it. Host scalars (values of the call:
 * lr, the step count, the seed) are computed in the call's preparation (e->prep) into
 * slots of the model's scalar table, which the kernel reads on the device (sc_), so that
 * a CUDA graph of the launches replays each call with its own values. */
#include <string.h>

#include "cuda_emitters.h"

/* The elements: the product of the sizes. */
static const char *loop_count(EmitCtx *e, const ElemLoop *l) {
    if (l->rank == 1) return l->size[0];
    const char *c = "";
    for (int d = 0; d < l->rank; d++) c = arena_printf(e->arena, "%s%s(%s)", c, d ? " * " : "", l->size[d]);
    return c;
}

/* The slot's member for a scalar of type `type` (union mlc_scalar, cuda_device.cuh). */
static const char *slot_member(const char *type) { return !strcmp(type, "float") ? "f" : "u"; }

/* The table slot holding `value` this call: one per distinct value and type in the
 * graph function (Adam's step is the same for every parameter of a group), computed
 * in the call's preparation. */
static int scalar_slot(EmitCtx *e, const LoopScalar *s) {
    for (int i = 0; i < e->nhost_slots; i++)
        if (!strcmp(e->host_slot[i].type, s->type) && !strcmp(e->host_slot[i].value, s->value))
            return e->host_slot[i].slot;
    int slot = e->nscalars++;
    fprintf(e->prep, "    self->scalars[%d].%s = %s; /* %s */\n", slot, slot_member(s->type), target_math(e, s->value),
            s->name);
    if (e->nhost_slots < (int)(sizeof e->host_slot / sizeof e->host_slot[0]))
        e->host_slot[e->nhost_slots++] = (struct HostSlot){s->type, s->value, slot};
    return slot;
}

/* The loop's scalars inside the kernel: host ones read from their slots, constants. */
static void emit_scalars(EmitCtx *e, const ElemLoop *l) {
    for (int i = 0; i < l->nscalar; i++) {
        const LoopScalar *s = &l->scalar[i];
        if (s->host) emit(e, "const %s %s = sc_[%d].%s;", s->type, s->name, scalar_slot(e, s), slot_member(s->type));
        else emit_math(e, "const %s %s = %s;", s->type, s->name, s->value);
    }
}

/* How many of the loop's scalars are the call's (host) values. */
static int host_scalars(const ElemLoop *l) {
    int host = 0;
    for (int i = 0; i < l->nscalar; i++) host += l->scalar[i].host;
    return host;
}

/* Member k's node for buffer b of the loop over e->multi[0]: the input in the same place. */
static int member_buf(EmitCtx *e, const LoopBuf *b, int k) {
    const Node *lead = &e->g->nodes[e->multi[0]], *n = &e->g->nodes[e->multi[k]];
    for (int i = 0; i < lead->nin; i++)
        if (lead->in[i] == b->node) return n->in[i];
    mlc_die("a multi-tensor update's buffer is not an input of its node");
}

static long long member_numel(EmitCtx *e, int k) { return shape_numel(&e->g->nodes[e->multi[k]].shape); }

/* The loop over a run of updates alike (e->multi): one kernel whose table (a struct passed
 * by value) holds each tensor's buffers and where its elements end in the run's flat
 * index; a thread finds its tensor by walking the ends, which its grid-stride index only
 * passes forward. */
static void multi_loop_begin(EmitCtx *e, int id, ElemLoop *l, int host) {
    if (l->rank != 1) mlc_die("a multi-tensor update over a loop of rank %d", l->rank);
    const char *name = arena_printf(e->arena, "k%d_%s", e->nkernels++, op_of(&e->g->nodes[id])->name);
    l->kernel_ = name;
    cuda_kernel_enter(e);
    for (int k = 0; k < e->nmulti; k++) emit_node_comment(e, e->multi[k]);
    emit(e, "struct %s_tab { /* each tensor's buffers, and where its elements end */", name);
    for (int i = 0; i < l->nbuf; i++)
        emit(e, "    %s%s *%s[%d];", l->buf[i].write ? "" : "const ", cuda_elem_type(e, l->buf[i].node), l->buf[i].name,
             e->nmulti);
    emit(e, "    long end[%d];", e->nmulti);
    emit(e, "};");
    emit(e, "static __global__ void %s(const long B, const %s_tab tab%s) {", name, name,
         host ? ", const mlc_scalar *sc_" : "");
    emit(e, "    (void)B;");
    emit(e, "    const long count_ = tab.end[%d];", e->nmulti - 1);
    emit(e, "    int j_ = 0;");
    cuda_grid_stride_loop(e, "k_");
    e->indent = 2;
    emit(e, "while (k_ >= tab.end[j_]) j_++;");
    emit(e, "const long %s = k_ - (j_ ? tab.end[j_ - 1] : 0);", l->var[0]);
    emit_scalars(e, l);
    for (int i = 0; i < l->nbuf; i++)
        emit(e, "%s%s *const %s = tab.%s[j_];", l->buf[i].write ? "" : "const ", cuda_elem_type(e, l->buf[i].node),
             l->buf[i].name, l->buf[i].name);
}

static void multi_loop_end(EmitCtx *e, ElemLoop *l, int host) {
    cuda_kernel_end(e);
    for (int k = 1; k < e->nmulti; k++) emit_node_comment(e, e->multi[k]);
    emit(e, "{ /* %d tensors, one launch */", e->nmulti);
    e->indent++;
    emit(e, "const %s_tab tab = {", l->kernel_);
    for (int i = 0; i < l->nbuf; i++) {
        char *row = arena_strdup(e->arena, "");
        for (int k = 0; k < e->nmulti; k++)
            row = arena_printf(e->arena, "%s%s%s", row, k ? ", " : "", emit_buf(e, member_buf(e, &l->buf[i], k)));
        emit(e, "    {%s}, /* %s */", row, l->buf[i].name);
    }
    long long end = 0;
    char *row = arena_strdup(e->arena, "");
    for (int k = 0; k < e->nmulti; k++) {
        end += member_numel(e, k);
        row = arena_printf(e->arena, "%s%s%lld", row, k ? ", " : "", end);
    }
    emit(e, "    {%s}}; /* end */", row);
    emit(e, "%s<<<mlc_grid(%lld), MLC_BLOCK, 0, stream>>>(B, tab%s);", l->kernel_, end,
         host ? ", self->dev_scalars" : "");
    emit(e, "MLC_LAUNCH_CHECK(stream);");
    e->indent--;
    emit(e, "}");
}

void cuda_loop_begin(EmitCtx *e, int id, ElemLoop *l) {
    int host = host_scalars(l);
    if (e->nmulti > 1) {
        multi_loop_begin(e, id, l, host);
        return;
    }
    const char *count = loop_count(e, l);
    const char *flat = l->rank == 1 ? l->var[0] : "k_";
    l->kernel_ = cuda_kernel_begin(e, id, count, flat, host ? "const mlc_scalar *sc_" : NULL);
    emit_scalars(e, l);
    for (int i = 0; i < l->nbuf; i++)
        emit(e, "%s%s *const %s = %s;", l->buf[i].write ? "" : "const ", cuda_elem_type(e, l->buf[i].node),
             l->buf[i].name, emit_buf(e, l->buf[i].node));
    if (l->rank > 1) {
        emit(e, "long r_ = %s;", flat);
        for (int d = l->rank - 1; d > 0; d--)
            emit(e, "const long %s = r_ %% (long)(%s); r_ /= (long)(%s);", l->var[d], l->size[d], l->size[d]);
        emit(e, "const long %s = r_;", l->var[0]);
    }
}

void cuda_loop_end(EmitCtx *e, int id, ElemLoop *l) {
    int host = host_scalars(l);
    if (e->nmulti > 1) {
        multi_loop_end(e, l, host);
        return;
    }
    cuda_kernel_end(e);
    cuda_launch(e, id, l->kernel_, loop_count(e, l), host ? "self->dev_scalars" : NULL);
}
