/* attention.c - the C target's attention ops (ops/ops_attention.c): one call each into
 * the kernel library (runtime/kernels/c/attention.c), which blocks over queries and
 * keys so that no T x S matrix is stored. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"
#include "ops_attrs.h"

void emit_attention_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    AttnGeom a = attn_node_geom(e->g, n);
    const char *bh, *rows, *width;
    emit_axis_split(e, n->in[0], e->g->nodes[n->in[0]].shape.rank - 2, &bh, &rows, &width);
    const char *in[5] = {0};
    for (int k = 0; k < n->nin; k++) in[k] = emit_buf(e, n->in[k]);
    const char *out = emit_buf(e, id);
    emit(e, "{");
    e->indent++;
    emit(e,
         "static const mlc_attn_geom geom = {.T = %lld, .S = %lld, .D = %lld, .E = %lld, .scale = %s, .causal = %d};",
         (long long)a.T, (long long)a.S, (long long)a.D, (long long)a.E, emit_float(e, a.scale), a.causal);
    switch (n->op) {
    case OP_attention: emit(e, "mlc_attention_fwd(&geom, %s, %s, %s, %s, %s);", bh, in[0], in[1], in[2], out); break;
    case OP_attention_stats:
        emit(e, "mlc_attention_stats(&geom, %s, %s, %s, %s, %s, %s);", bh, in[0], in[1], in[2], in[3], out);
        break;
    case OP_attention_bwd_q:
        emit(e, "mlc_attention_bwd_q(&geom, %s, %s, %s, %s, %s, %s, %s);", bh, in[0], in[1], in[2], in[3], in[4], out);
        break;
    default: /* attention_bwd_kv */
        emit(e, "mlc_attention_bwd_kv(&geom, %s, %s, %s, %s, %s, %s, %s);", bh, in[0], in[1], in[2], in[3], in[4], out);
    }
    e->indent--;
    emit(e, "}");
}
