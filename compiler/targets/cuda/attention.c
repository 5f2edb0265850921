/* attention.c - the CUDA target's attention ops (ops/ops_attention.c): a kernel per node
 * calling the device template's block function (templates/cuda_attention.cuh) with the
 * node's sizes as constants and its widths as template arguments, launched with a block
 * per MLC_ATTN_THREADS rows of each head. */
#include <string.h>

#include "cuda_emitters.h"
#include "emit.h"
#include "ops.h"
#include "ops_attrs.h"

/* Per op: the device function, whether it takes a bool template argument after the widths
 * (and which), what its inputs are called in the kernel, and the buffers the function
 * takes after the sizes: (q, k, v, o, dout, out) for mlc_attention_rows, else
 * (q, k, v, dout, st, out); "out" is the node's output. A buffer it does not read is a
 * null float pointer (the function deduces each input's element type from its pointer:
 * float, or mlc_bf16 for a tensor stored as bfloat16). */
typedef struct AttnCall {
    Op op;
    const char *fn, *flag;
    const char *in[5];
    const char *call[6];
} AttnCall;
// clang-format off
static const AttnCall attn_calls[] = {
    {OP_attention, "mlc_attention_rows", "true", {"q", "k", "v"}, {"q", "k", "v", "(const float *)NULL", "(const float *)NULL", "out"}},
    {OP_attention_stats, "mlc_attention_rows", "false", {"q", "k", "o", "dout"}, {"q", "k", "(const float *)NULL", "o", "dout", "out"}},
    {OP_attention_bwd_q, "mlc_attention_bwd_q_rows", NULL, {"q", "k", "v", "dout", "st"}, {"q", "k", "v", "dout", "st", "out"}},
    {OP_attention_bwd_kv, "mlc_attention_bwd_kv_rows", NULL, {"q", "k", "v", "dout", "st"}, {"q", "k", "v", "dout", "st", "out"}},
};
// clang-format on

void emit_attention_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    AttnGeom a = attn_node_geom(e->g, n);
    const AttnCall *c = attn_calls;
    while (c->op != n->op) c++;
    const char *bh, *rows, *width;
    emit_axis_split(e, n->in[0], e->g->nodes[n->in[0]].shape.rank - 2, &bh, &rows, &width);
    const char *name = arena_printf(e->arena, "k%d_%s", e->nkernels++, op_of(n)->name);

    /* the kernel, into the kernel section */
    FILE *host = e->body;
    int host_indent = e->indent;
    e->body = e->decls, e->indent = 0;
    emit_node_comment(e, id);
    /* the signature on one line when it fits, else a parameter a line (as emit_cuda.c's) */
    const char *line = arena_printf(e->arena, "static __global__ void %s(const long BH", name);
    for (int k = 0; k < n->nin; k++)
        line = arena_printf(e->arena, "%s, const %s *%s", line, cuda_elem_type(e, n->in[k]), c->in[k]);
    if (strlen(line) + strlen(", float *out) {") <= 110) {
        emit(e, "%s, float *out) {", line);
    } else {
        emit(e, "static __global__ void %s(const long BH,", name);
        for (int k = 0; k < n->nin; k++) emit(e, "        const %s *%s,", cuda_elem_type(e, n->in[k]), c->in[k]);
        emit(e, "        float *out) {");
    }
    line = arena_printf(e->arena, "%s<%lld, %lld%s%s>(BH, %lld, %lld, %s, %d", c->fn, (long long)a.D, (long long)a.E,
                        c->flag ? ", " : "", c->flag ? c->flag : "", (long long)a.T, (long long)a.S,
                        emit_float(e, a.scale), a.causal);
    for (int k = 0; k < 6; k++) line = arena_printf(e->arena, "%s, %s", line, c->call[k]);
    emit(e, "    %s);", line);
    emit(e, "}");
    emit(e, "%s", "");
    e->decls = e->body, e->body = host, e->indent = host_indent;

    /* its launch: a block per MLC_ATTN_THREADS rows (queries; keys for dk, dv) of each head */
    const char *args = "";
    for (int k = 0; k < n->nin; k++) args = arena_printf(e->arena, "%s, %s", args, emit_buf(e, n->in[k]));
    int by_keys = n->op == OP_attention_bwd_kv;
    emit(e, "%s<<<mlc_attn_grid(%s, %lld), MLC_ATTN_THREADS, 0, stream>>>(%s%s, %s);", name, bh,
         (long long)(by_keys ? a.S : a.T), bh, args, emit_buf(e, id));
    emit(e, "MLC_LAUNCH_CHECK(stream);");
}
