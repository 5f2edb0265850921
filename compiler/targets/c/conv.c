/* conv.c - the C target's conv2d, conv2d_bwd_data and conv2d_bwd_filter: one call into
 * the prologue's conv routines (templates/c_prologue.h), their work plan and the scratch
 * it needs. The op's semantics are in ops/ops_conv.c. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"
#include "ops_attrs.h"

/* mlc_conv_plan in templates/c_prologue.h: a scratch slot per thread (a slot holds a
 * whole padded sample; the trainer allocates one per thread of its team when it creates
 * the model, so the count is not fixed here); the weight gradient as up to RED_CHUNKS
 * partial sums (more: more threads can share it; fewer: less to add up), taking at least
 * DW_COLS output positions per step. The sizes below follow the prologue's layout
 * functions (mlc_shift_dims_of, mlc_shift_segs_of, mlc_bwd_dims_of), which check that
 * their slot fits. */
enum { RED_CHUNKS = 16, DW_COLS = 256 };

typedef struct Plan {
    int64_t spt, red, slot;
    int64_t shared; /* floats after the slots: packed weights and offsets, or partial sums */
} Plan;

static int64_t up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* The number of distinct tap phases k*d % s, k < n (mlc_phase_rank) */
static int64_t phases(int64_t n, int64_t d, int64_t s) {
    int64_t r = 0;
    for (int64_t k = 0; k < n; k++) {
        int first = 1;
        for (int64_t j = 0; j < k; j++) first &= j * d % s != k * d % s;
        r += first;
    }
    return r;
}

/* mlc_shift_dims: floats per padded, phase-split sample (xs) and the q count (nq) */
static void shift_dims(const Geom *q, int64_t *xs, int64_t *nq) {
    int64_t Hq = (q->H + 2 * q->ph + q->sh - 1) / q->sh, Wq = (q->W + 2 * q->pw + q->sw - 1) / q->sw;
    *xs = up(q->C * phases(q->KH, q->dh, q->sh) * phases(q->KW, q->dw, q->sw) * Hq * Wq + 32, 16);
    *nq = up((q->Ho - 1) * Wq + q->Wo, 8);
}

/* Floats of the forward kernel's output rows per channel (mlc_shift_segs: ldo), 0 when it
 * writes y itself */
static int64_t shift_out(const Geom *q, int64_t nq) {
    int64_t Wq = (q->W + 2 * q->pw + q->sw - 1) / q->sw, w8 = up(q->Wo, 8);
    if (w8 > Wq) return nq;
    return q->O / q->G % 4 == 0 ? 0 : q->Ho * w8;
}

/* One axis of the input gradient's padded dy (mlc_bwd_axis): the zeros before the no
 * entries and the length, for n inputs, K taps, dilation d, padding p, stride s */
static int64_t bwd_axis(int64_t n, int64_t no, int64_t K, int64_t d, int64_t p, int64_t s) {
    int64_t lo = 0, hi = no;
    for (int64_t k = 0; k < K; k++) {
        const int64_t a = ((k * d - p) % s + s) % s, e = (a + p - k * d) / s, m = a < n ? (n - a + s - 1) / s : 0;
        if (m == 0) continue;
        if (e < lo) lo = e;
        if (m + e > hi) hi = m + e;
    }
    return hi - lo;
}

static Plan plan_of(const Geom *q, Op op, int64_t batch) {
    Plan p = {0};
    const int64_t K = q->C / q->G * q->KH * q->KW, Og = q->O / q->G, P = q->Ho * q->Wo, T = q->KH * q->KW;
    p.red = batch < RED_CHUNKS ? batch : RED_CHUNKS;
    if (p.red < 1) p.red = 1;
    p.spt = 1;
    int64_t xs, nq;
    if (op == OP_conv2d) {
        shift_dims(q, &xs, &nq);
        p.slot = xs + up(Og, 4) * shift_out(q, nq);
        p.shared = q->G * up(Og, 4) * K + K;
    } else if (op == OP_conv2d_bwd_filter) {
        shift_dims(q, &xs, &nq);
        p.spt = (DW_COLS + P - 1) / P;
        if (p.spt > batch) p.spt = batch;
        if (p.spt < 1) p.spt = 1;
        p.slot = p.spt * (xs + q->G * up(Og, 16) * P);
        p.shared = p.red * q->G * K * up(Og, 16) + K;
    } else { /* mlc_bwd_slot_floats: padded dy and the kernel's output rows */
        const int64_t plane = bwd_axis(q->H, q->Ho, q->KH, q->dh, q->ph, q->sh) *
                              bwd_axis(q->W, q->Wo, q->KW, q->dw, q->pw, q->sw);
        p.slot = up(q->O * plane + 32, 16) + up(q->C / q->G, 4) * (plane + 8);
        p.shared = q->G * up(q->C / q->G, 4) * Og * T + Og * T;
    }
    p.slot = up(p.slot, 16); /* 64-byte aligned slots */
    return p;
}
/* The plan's shared part and a scratch slot per thread, independent of the batch size. */
void ws_conv_c(const Graph *g, const Node *n, Workspace *w) {
    Geom q = conv_node_geom(g, n);
    Plan p = plan_of(&q, n->op, g->batch);
    w->c = p.shared;
    w->per_thread = p.slot;
}

/* ---- C emission: one call into the prologue's conv routines ---- */

void emit_conv_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    Geom q = conv_node_geom(e->g, n);
    const char *fn = n->op == OP_conv2d ? "mlc_conv2d_fwd" : n->op == OP_conv2d_bwd_data ? "mlc_conv2d_bwd_data"
                                                                                         : "mlc_conv2d_bwd_filter";
    Plan p = plan_of(&q, n->op, e->g->batch);
    emit(e, "{");
    e->indent++;
    emit_conv_geom(e, &q);
    /* self->slots: the scratch slots the model was created with (a thread each) */
    emit(e, "const mlc_conv_plan plan = {%lld, self->slots, %lld, %lld};", (long long)p.spt, (long long)p.red,
         (long long)p.slot);
    const char *x = emit_buf(e, n->in[0]), *w = emit_buf(e, n->in[1]), *y = emit_buf(e, id), *ws = e->ws ? e->ws : "NULL";
    const char *call = arena_printf(e->arena, "%s(&geom, &plan, B, %s, %s, %s, %s)", fn, x, w, y, ws);
    if (emit_epilogue_of(e, id) >= 0) { /* sample by sample, each finished by the epilogue */
        const char *pre = n->op == OP_conv2d ? "mlc_conv2d_fwd" : "mlc_conv2d_bwd_data";
        c_sample_epilogue(e, id, arena_printf(e->arena, "%s_prepare(&geom, &plan, %s, %s)", pre, w, ws),
                          "mlc_conv_team(&plan, B)",
                          arena_printf(e->arena, "%s_sample(&geom, &plan, B, %%0, %s, %s, %s)", pre, x, y, ws), call);
    } else
        emit(e, "%s;", call);
    e->indent--;
    emit(e, "}");
}
