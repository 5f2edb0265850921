/* report_attention.c - `--report`'s lines about fused attention (ops/ops_attention.c):
 * what each attention of the train step keeps for the backward and what the backward
 * makes, next to the T x S matrix an unfused softmax(q k^T) v would have to keep. */
#include "ops.h"
#include "ops_attrs.h"
#include "report.h"

void attention_report(FILE *out, const Graph *g) {
    int n = 0;
    for (int id = 0; id < g->n; id++) n += g->nodes[id].op == OP_attention;
    if (!n) return;
    fprintf(out,
            "attention: %d fused, no T x S matrix stored, forward or backward; each keeps nothing for the backward but "
            "its output (its row statistics, logsumexp and do.o, are computed again there); bytes:\n",
            n);
    fprintf(out, "  %-6s %-22s %6s %6s %-6s %12s %16s %18s\n", "node", "output", "T", "S", "causal", "saved extra",
            "backward stats", "unfused T x S");
    for (int id = 0; id < g->n; id++) {
        const Node *nd = &g->nodes[id];
        if (nd->op != OP_attention) continue;
        AttnGeom a = attn_node_geom(g, nd);
        char sh[64];
        shape_str(&nd->shape, nd->dtype, sh, sizeof sh);
        fprintf(out, "  %%%-5d %-22s %6lld %6lld %-6s %12s %16lld %18lld\n", id, sh, (long long)a.T, (long long)a.S,
                a.causal ? "yes" : "no", "0", (long long)(4 * 2 * a.BH * a.T), (long long)(4 * a.BH * a.T * a.S));
    }
}
