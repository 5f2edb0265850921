/* precision.c - `--precision bf16`: where values are rounded to bfloat16.
 *
 * The products run on bf16 values with FP32 sums, the way a GPU's tensor cores run them
 * and PyTorch's autocast(bfloat16) asks for them: every f32 input of a matmul, conv2d or
 * attention is rounded (weights included, from their FP32 master copy, which the
 * optimizer updates in FP32), and so is every output (conv_transpose2d's conv2d_bwd_data
 * likewise). Everything else computes in FP32 on the values it is given: batch norm's
 * statistics, softmax, log-sum-exp and the loss, the elementwise ops between the products
 * (bias, activation, residual add: a fused loop's registers), the optimizer's update and
 * its state.
 *
 * Runs before autodiff, so the backward follows by itself: round_bf16's gradient is its
 * upstream gradient rounded (ops_precision.c), so the gradient reaching a product's
 * output and the gradients it sends to its inputs (a weight's too) are bf16 values as
 * well. The rounded values are held in floats: the semantics are checked on the C
 * target against the same rounding in the CUDA target; storing them in 16 bits is a
 * target's business. */
#include "passes.h"

/* conv2d_bwd_data is a forward op too: conv_transpose2d */
static int is_product(Op op) {
    return op == OP_matmul || op == OP_conv2d || op == OP_conv2d_bwd_data || op == OP_attention;
}

int precision_bf16(Graph *g) {
    Arena *a = g->arena;
    Graph *out = graph_new(a, g->mode, g->batch);
    int *map = ARENA_ARRAY(a, int, g->n);
    int *rounded = ARENA_ARRAY(a, int, g->n); /* g's id -> its value rounded, in out; 0: not yet */
    int nround = 0;
    for (int id = 0; id < g->n; id++) rounded[id] = 0;
    for (int id = 0; id < g->n; id++) {
        Node n = g->nodes[id];
        for (int k = 0; k < n.nin; k++) {
            int x = n.in[k];
            n.in[k] = map[x];
            if (!is_product(n.op) || g->nodes[x].dtype != DT_F32 || out->nodes[map[x]].op == OP_round_bf16) continue;
            if (!rounded[x]) rounded[x] = ir_unary(out, OP_round_bf16, map[x], &n.loc), nround++;
            n.in[k] = rounded[x];
        }
        if (!is_product(n.op)) {
            map[id] = graph_push(out, &n);
            continue;
        }
        int role = n.role;
        n.role = 0;
        int p = graph_push(out, &n);
        map[id] = ir_unary(out, OP_round_bf16, p, &n.loc);
        out->nodes[map[id]].role = role; /* the output's or the loss's role moves with the value */
        nround++;
    }
    graph_adopt(g, out, map);
    return nround;
}
