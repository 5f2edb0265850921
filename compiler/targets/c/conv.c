/* conv.c - the C target's conv2d, conv2d_bwd_data and conv2d_bwd_filter: one call into
 * the kernel library's conv routines (runtime/kernels/c/conv_*.c), their work plan and
 * the scratch it needs. The op's semantics are in ops/ops_conv.c. */
#include "c_emitters.h"
#include "conv_algo.h"
#include "kernels/mlc_conv_layout.h"
#include "kernels/mlc_winograd_layout.h"
#include "emit.h"
#include "ops.h"
#include "ops_attrs.h"

/* The kernels' geometry and plan (runtime/kernels/mlc_geom.h, mlc_conv_layout.h,
 * mlc_winograd_layout.h): the compiler sizes the workspace with the functions the kernels
 * lay out their scratch with, so the two cannot disagree. A scratch slot per thread (a
 * slot holds a whole padded sample; the trainer allocates one per thread of its team when
 * it creates the model, so the count is not fixed here), then a part the threads share.
 * The algorithm (conv_algo.c) picks the kernels, their plan and their workspace. */
static mlc_conv_plan kernel_plan(const mlc_conv_geom *kg, int op, int algo, long batch) {
    return algo != MLC_CONV_DIRECT ? mlc_wino_plan_for(kg, op, batch, algo) : mlc_conv_plan_for(kg, op, batch);
}

static int kernel_op(Op op) {
    return op == OP_conv2d ? MLC_CONV_FWD : op == OP_conv2d_bwd_data ? MLC_CONV_BWD_DATA : MLC_CONV_BWD_FILTER;
}

/* The plan's shared part and a scratch slot per thread, independent of the batch size. */
void ws_conv_c(const Graph *g, const Node *n, Workspace *w) {
    Geom q = conv_node_geom(g, n);
    const mlc_conv_geom kg = conv_kernel_geom(&q);
    const int op = kernel_op(n->op), algo = conv_algo_c(g, n);
    const mlc_conv_plan p = kernel_plan(&kg, op, algo, g->batch);
    w->c = algo != MLC_CONV_DIRECT ? mlc_wino_shared_floats(&kg, &p, op, algo) : mlc_conv_shared_floats(&kg, &p, op);
    w->per_thread = p.slot;
}

/* ---- C emission: one call into the kernel library's conv routines (libmlckernels) ---- */

void emit_conv_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    Geom q = conv_node_geom(e->g, n);
    const int algo = conv_algo_c(e->g, n);
    /* the Winograd kernels take the same arguments under the prefixes mlc_wino_ (F(2x2,
     * 3x3)) and mlc_wino4_ (F(4x4, 3x3)) */
    const char *pfx = algo == MLC_CONV_WINOGRAD4  ? "mlc_wino4_conv2d"
                      : algo == MLC_CONV_WINOGRAD ? "mlc_wino_conv2d"
                                                  : "mlc_conv2d";
    const char *fn = arena_printf(e->arena, "%s_%s", pfx,
                                  n->op == OP_conv2d            ? "fwd"
                                  : n->op == OP_conv2d_bwd_data ? "bwd_data"
                                                                : "bwd_filter");
    const mlc_conv_geom kg = conv_kernel_geom(&q);
    const int op = kernel_op(n->op);
    const mlc_conv_plan p = kernel_plan(&kg, op, algo, e->g->batch);
    const mlc_conv_geom run = mlc_wino_run_geom(&kg, op);
    /* F(4x4, 3x3) on small outputs: sample groups or a sample a piece of work, chosen for
     * the batch and threads when the step runs (the same bits either way) */
    const int grouped = algo == MLC_CONV_WINOGRAD4 && op != MLC_CONV_BWD_FILTER && mlc_wino_groupable(&run, algo);
    emit(e, "{");
    e->indent++;
    emit_conv_geom(e, &q);
    /* self->slots: the scratch slots the model was created with (a thread each) */
    const char *spt = grouped ? arena_printf(e->arena, "mlc_wino_spt(&geom, %s, MLC_CONV_WINOGRAD4, B, self->slots)",
                                             op == MLC_CONV_FWD ? "MLC_CONV_FWD" : "MLC_CONV_BWD_DATA")
                              : arena_printf(e->arena, "%d", p.spt);
    emit(e, "const mlc_conv_plan plan = {.spt = %s, .slots = self->slots, .red = %d, .slot = %ld};", spt, p.red,
         p.slot);
    const char *x = emit_buf(e, n->in[0]), *w = emit_buf(e, n->in[1]), *y = emit_buf(e, id),
               *ws = e->ws ? e->ws : "NULL";
    const char *call = arena_printf(e->arena, "%s(&geom, &plan, B, %s, %s, %s, %s)", fn, x, w, y, ws);
    if (emit_epilogue_of(e, id) >= 0) { /* sample by sample, each finished by the epilogue */
        const char *pre = fn;
        c_sample_epilogue(e, id, arena_printf(e->arena, "%s_prepare(&geom, &plan, %s, %s)", pre, w, ws),
                          grouped ? "mlc_conv_team(&plan, pieces)" : "mlc_conv_team(&plan, B)",
                          arena_printf(e->arena, "%s_sample(&geom, &plan, B, %%0, %s, %s, %s)", pre, x, y, ws), call,
                          grouped ? "plan.spt" : NULL);
    } else emit(e, "%s;", call);
    e->indent--;
    emit(e, "}");
}

/* ---- --report: what the kernels do for one convolution ---- */

/* In words, for node n with the kernel library's vw-float vectors: the layout functions
 * above decide it, as they do in the kernels. */
void c_conv_variant(const Graph *g, const Node *n, int vw, char *buf, size_t cap) {
    Geom q = conv_node_geom(g, n);
    const mlc_conv_geom kg = conv_kernel_geom(&q);
    const int algo = conv_algo_c(g, n);
    if (algo != MLC_CONV_DIRECT && n->op == OP_conv2d_bwd_filter) {
        const mlc_conv_plan p = mlc_wino_plan_for(&kg, MLC_CONV_BWD_FILTER, g->batch, algo);
        const int m = mlc_wino_tile(mlc_wino_dw_algo(algo, p.spt));
        snprintf(buf, cap,
                 "Winograd F(%dx%d, 3x3): %d products of %dx%d tiles, 6 input channels x %d output channels (2 "
                 "vectors of %d), %d partial sums%s",
                 m, m, (m + 2) * (m + 2), m + 2, m + 2, 2 * vw, vw, p.red, p.spt > 1 ? " of groups of 8 samples" : "");
        return;
    }
    if (algo != MLC_CONV_DIRECT) {
        const int m = mlc_wino_tile(algo);
        const mlc_conv_geom run = mlc_wino_run_geom(&kg, kernel_op(n->op));
        char lanes[96];
        if (mlc_wino_groupable(&run, algo)) /* mlc_wino_spt decides when the step runs */
            snprintf(lanes, sizeof lanes, "groups of %d samples in the lanes (else segments of %d tiles)",
                     MLC_WINO_GROUP, vw);
        else snprintf(lanes, sizeof lanes, "segments of %d tiles", vw);
        snprintf(buf, cap, "Winograd F(%dx%d, 3x3): %d products of %dx%d tiles, %s", m, m, (m + 2) * (m + 2), m + 2,
                 m + 2, lanes);
        return;
    }
    if (n->op == OP_conv2d) {
        const mlc_shift_dims d = mlc_shift_dims_of(&kg);
        const mlc_shift_segs s = mlc_shift_segs_of(&kg, &d, vw);
        if (mlc_shift_cv_of(&kg, &d, vw))
            snprintf(buf, cap, "shift-GEMM over channels, 6 positions x %d channels (2 vectors of %d), %d positions",
                     2 * vw, vw, kg.Ho * kg.Wo);
        else
            snprintf(buf, cap, "shift-GEMM, 4 channels x %ld segments of %d columns (%s), %s", s.nseg, vw,
                     s.Wq ? "along output rows" : "along padded rows", s.direct ? "stored in place" : "copied out");
    } else if (n->op == OP_conv2d_bwd_data) {
        const mlc_bwd_dims d = mlc_bwd_dims_of(&kg);
        int phases = 0, cv = 0;
        for (int a = 0; a < kg.sh; a++)
            for (int b = 0; b < kg.sw; b++)
                if (mlc_phase_taps(kg.KH, kg.dh, kg.ph, kg.sh, a) && mlc_phase_taps(kg.KW, kg.dw, kg.pw, kg.sw, b)) {
                    phases++;
                    cv += mlc_bwd_phase_cv(&kg, &d, a, b, vw);
                }
        if (cv == phases)
            snprintf(buf, cap, "shift-GEMM on padded dy, %d stride phase%s, over channels: 6 positions x %d channels",
                     phases, phases == 1 ? "" : "s", 2 * vw);
        else if (cv)
            snprintf(buf, cap,
                     "shift-GEMM on padded dy, %d stride phases, %d over channels (6 positions x %d channels), the "
                     "rest 4 channels x segments of %d columns",
                     phases, cv, 2 * vw, vw);
        else
            snprintf(buf, cap, "shift-GEMM on padded dy, %d stride phase%s, 4 channels x segments of %d columns",
                     phases, phases == 1 ? "" : "s", vw);
    } else {
        const mlc_conv_plan p = mlc_conv_plan_for(&kg, MLC_CONV_BWD_FILTER, g->batch);
        snprintf(buf, cap, "shift-GEMM on dy transposed, 6 taps x %d channels (2 vectors of %d), %d partial sums",
                 2 * vw, vw, p.red);
    }
}
