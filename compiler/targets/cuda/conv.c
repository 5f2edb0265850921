/* conv.c - the CUDA target's conv2d and its backward ops: one call into the kernel
 * library's launchers, im2col ones (runtime/kernels/cuda/conv.cu), which take the batch
 * in chunks, or implicit-GEMM ones (conv_implicit.cu, --conv-algo implicit); their
 * scratch. The op's semantics are in ops/ops_conv.c. */
#include <string.h>

#include "cuda_emitters.h"
#include "kernels/mlc_conv_tiles.h"
#include "emit.h"
#include "ops.h"
#include "ops_attrs.h"

/* CUDA: the launchers (runtime/kernels/cuda/conv.cu) take the batch in chunks of
 * cuda_chunk samples; a sample needs K * P column floats (none on the direct path: 1x1,
 * stride 1, no padding) and, for the weight gradient, an Og * K slot. A chunk's
 * workspace stays within CUDA_CHUNK_FLOATS, so the workspace does not grow with the
 * batch: a whole batch's columns were the biggest tensor of the CUDA ResNets' arenas
 * (77 MB of resnet20_cifar's 281). Fewer, bigger chunks would launch fewer GEMMs; 8 MiB
 * keeps each GEMM batch big enough to fill the GPU on these networks. */
#define CUDA_CHUNK_FLOATS ((int64_t)1 << 21)

static int64_t cuda_sample_floats(const Geom *q, Op op) {
    int64_t K = q->C / q->G * q->KH * q->KW, P = q->Ho * q->Wo, Og = q->O / q->G;
    int direct = q->KH == 1 && q->KW == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 && q->pw == 0;
    return (direct ? 0 : K * P) + (op == OP_conv2d_bwd_filter ? Og * K : 0);
}

static int64_t cuda_chunk(const Geom *q, Op op) {
    int64_t per = cuda_sample_floats(q, op);
    if (per == 0) return (int64_t)1 << 30; /* no workspace: the whole batch at once */
    return CUDA_CHUNK_FLOATS / per > 1 ? CUDA_CHUNK_FLOATS / per : 1;
}

/* --conv-algo implicit (runtime/kernels/cuda/conv_implicit.cu): the weight gradient's sum
 * over K = B*Ho*Wo goes in this many fixed ranges, each into a slot of O*Cg*KH*KW floats,
 * so that its few output tiles (mlc_conv_tiles.h; resnet20_cifar's layers have 1 to 9 per
 * group) still give the GPU IG_SPLIT_BLOCKS blocks (two per SM of an H100); each range
 * keeps at least IG_SPLIT_STEPS of the kernel's 32-deep steps, and the slots stay within
 * the im2col path's CUDA_CHUNK_FLOATS. From the compiled batch size: a run at another
 * size sums in ranges of its own, the same every run at that size. */
enum { IG_STEP = 32, IG_SPLIT_BLOCKS = 264, IG_SPLIT_STEPS = 8, IG_SPLIT_MAX = 64 };

static int only_reader(const Graph *g, int x) {
    int who = -1;
    for (int y = x + 1; y < g->n; y++)
        for (int k = 0; k < g->nodes[y].nin; k++)
            if (g->nodes[y].in[k] == x) {
                if (who >= 0) return -1;
                who = y;
            }
    return who;
}

/* --conv-algo cudnn: whether conv op id runs in cuDNN. Floats always. bf16 values where
 * the op's FP32 result is rounded to bf16 before anything reads it: cuDNN's bf16 output is
 * that rounding of its FP32 sum. Where the FP32 result is first added to another (the
 * input gradients of a tensor two convolutions read, the weight gradients of a shared
 * weight), cuDNN would round each addend and then the sum, C the sum once: the implicit
 * kernels compute such an op as C does. */
static int cudnn_runs(const Graph *g, int id) {
    if (g->conv_algo != CONV_ALGO_CUDNN) return 0;
    if (!emit_reads_bf16_values(g, id)) return 1;
    const int r = only_reader(g, id);
    return r >= 0 && g->nodes[r].op == OP_round_bf16;
}

int cuda_conv_implicit(const Graph *g, int id) {
    return g->conv_algo == CONV_ALGO_IMPLICIT || (g->conv_algo == CONV_ALGO_CUDNN && !cudnn_runs(g, id));
}

int cuda_conv_splits(const Geom *q, int64_t batch) {
    const int64_t Og = q->O / q->G, N = q->C / q->G * q->KH * q->KW;
    const int64_t rows = mlc_ig_tile_rows(Og), cols = mlc_ig_tile_cols(Og);
    const int64_t tiles = (Og + rows - 1) / rows * ((N + cols - 1) / cols) * q->G;
    const int64_t steps = (batch * q->Ho * q->Wo + IG_STEP - 1) / IG_STEP;
    int64_t s = (IG_SPLIT_BLOCKS + tiles - 1) / tiles;
    if (s > steps / IG_SPLIT_STEPS) s = steps / IG_SPLIT_STEPS;
    if (s > IG_SPLIT_MAX) s = IG_SPLIT_MAX;
    if (s * q->O * N > CUDA_CHUNK_FLOATS) s = CUDA_CHUNK_FLOATS / (q->O * N);
    if (s * q->G > 65535) s = 65535 / q->G; /* the grid's z extent */
    return s > 1 ? (int)s : 1;
}

/* The operands' mode (mlc_kernels_cuda.h) as the conv launchers take it: cuda_gemm_mode's,
 * MLC_TF32 for floats under --tf32 where the kernels take it */
static const char *conv_mode(const EmitCtx *e, int id) {
    const char *mode = cuda_gemm_mode(e, id);
    const int own = e->g->conv_algo == CONV_ALGO_IMPLICIT || e->g->conv_algo == CONV_ALGO_CUDNN;
    return own && e->g->tf32 && !strcmp(mode, "MLC_FP32") ? "MLC_TF32" : mode;
}

int cuda_conv_cudnn(const EmitCtx *e, int id) { return cudnn_runs(e->g, id); }

int cuda_conv_cudnn_floats(const EmitCtx *e, int id) {
    const char *mode = conv_mode(e, id);
    return !strcmp(mode, "MLC_FP32") || !strcmp(mode, "MLC_TF32");
}

int cuda_uses_cudnn(const ModelIR *m) {
    if (m->target != TARGET_CUDA || m->conv_algo != CONV_ALGO_CUDNN) return 0;
    const Graph *gs[] = {m->train, m->eval, m->eval_loss};
    for (int k = 0; k < 3; k++)
        for (int id = 0; gs[k] && id < gs[k]->n; id++) {
            const Op op = gs[k]->nodes[id].op;
            if (op == OP_conv2d || op == OP_conv2d_bwd_data || op == OP_conv2d_bwd_filter) return 1;
        }
    return 0;
}

/* --conv-algo cudnn: cuDNN's own workspace, whatever algorithm its heuristic ranks first
 * wants; one that wants more is passed over for the next (runtime/kernels/cuda/
 * conv_cudnn.cu), so it stays the im2col path's size. bf16 operands add room for the
 * output's bf16 values and the two operands' bf16 copies (x, dy and w in some order, the
 * batch's part per sample), each from a 256-byte boundary. */
#define CUDNN_WS_FLOATS CUDA_CHUNK_FLOATS

static void ws_cudnn(const Graph *g, const Node *n, Workspace *w) {
    const Geom q = conv_node_geom(g, n);
    w->c = CUDNN_WS_FLOATS;
    if (!emit_reads_bf16_values(g, (int)(n - g->nodes))) return;
    const int64_t per_sample = q.C * q.H * q.W + q.O * q.Ho * q.Wo, weights = q.O * (q.C / q.G) * q.KH * q.KW;
    w->b = (per_sample + 1) / 2;
    w->c += (weights + 1) / 2 + 1 + 3 * 256 / 4;
}

/* im2col: a chunk's columns and weight-gradient slots (above); implicit: the weight
 * gradient's slots where it splits its sum; cudnn: ws_cudnn's. */
void ws_conv_cuda(const Graph *g, const Node *n, Workspace *w) {
    Geom q = conv_node_geom(g, n);
    const int id = (int)(n - g->nodes);
    if (cudnn_runs(g, id)) {
        ws_cudnn(g, n, w);
        return;
    }
    if (cuda_conv_implicit(g, id)) {
        const int s = n->op == OP_conv2d_bwd_filter ? cuda_conv_splits(&q, g->batch) : 1;
        w->c = s > 1 ? s * q.O * (q.C / q.G * q.KH * q.KW) : 0;
        return;
    }
    int64_t per = cuda_sample_floats(&q, n->op);
    /* + 3: the weight gradient's columns start 16-byte aligned after its slots (conv.cu) */
    w->c = per ? per * cuda_chunk(&q, n->op) + (n->op == OP_conv2d_bwd_filter ? 3 : 0) : 0;
}

/* ---- --conv-algo implicit: the epilogue group (fuse.c) of a forward conv or an input
 * gradient run in the kernel's store (mlc_conv_tiles.h), when the group is a chain of
 * steps it knows from the op's value to the group's root: a bias add or another
 * per-channel add, subtraction or product, an add of any float tensor of the op's shape
 * (a residual, or another gradient of the same value), a ReLU's backward mask (times
 * step(t)), ReLU, the bf16 rounding of --precision bf16. A per-channel operand the group
 * computes in registers from vectors by adds, subtractions and products (folded batch
 * norm's shift) is built in the kernel's q first. A group with other members (a value
 * the steps cannot build) or a value read elsewhere runs as its own kernel after the op. ---- */

/* The broadcast operand o of a step over output shape y: 1 when it holds one float per
 * channel (its dimension aligned with y's axis 1 is O, the others 1), 0 when it has y's
 * shape, -1 otherwise. */
static int epi_operand(const Graph *g, int o, const Shape *y) {
    const Shape *s = &g->nodes[o].shape;
    if (shape_eq(s, y)) return 0;
    if (s->bmask || s->rank < 3 || s->rank > 4) return -1;
    for (int d = 0; d < s->rank; d++) {
        const int axis = d + (4 - s->rank); /* trailing alignment with y's 4 axes */
        if (s->d[d] != (axis == 1 ? y->d[1] : 1)) return -1;
    }
    return 1;
}

/* The one node that reads x, or -1 (none, several, or one that reads it twice) */

/* A float buffer the steps may read as an operand of kind (epi_operand's) or, kind 2, as
 * a vector of y's channels ([O], or per channel): not stored as bf16, not computed in
 * group r (a view of a buffer may be a member). */
static int epi_buffer(const EmitCtx *e, int r, int o, const Shape *y, int kind) {
    const Graph *g = e->g;
    const Shape *s = &g->nodes[o].shape;
    if (g->nodes[o].dtype != DT_F32 || !e->buf[o] || (e->half && e->half[o])) return 0;
    if (e->fp->root[o] == r && g->nodes[o].op != OP_reshape) return 0;
    if (kind < 2) return epi_operand(g, o, y) == kind;
    return (s->rank == 1 && !s->bmask && s->d[0] == y->d[1]) || epi_operand(g, o, y) == 1;
}

static int epi_push(CudaConvEpi *ep, int op, int q, int per_channel, int operand) {
    if (ep->n == MLC_EPI_MAX) return 0;
    ep->step[ep->n++] = (CudaConvEpiStep){.op = op, .q = q, .per_channel = per_channel, .operand = operand};
    return 1;
}

/* Steps that leave node x's value, one float per channel, in q: a buffer's LOAD, or for a
 * member of group r that only its reader reads (an add, subtraction or product of such a
 * value and a vector) the steps of that value, then its op. *taken counts the members.
 * 0, with ep and *taken as they were: x is neither. */
static int epi_channel_value(const EmitCtx *e, int r, int x, const Shape *y, CudaConvEpi *ep, int *taken) {
    const Graph *g = e->g;
    const FusionPlan *fp = e->fp;
    if (epi_buffer(e, r, x, y, 2)) return epi_push(ep, MLC_EPI_LOAD, 1, 1, x);
    while (g->nodes[x].op == OP_reshape && fp->root[x] == r) x = g->nodes[x].in[0];
    const Node *xn = &g->nodes[x];
    if (fp->root[x] != r || !fp->inl[x] || xn->nin != 2 || only_reader(g, x) < 0 || xn->shape.bmask ||
        (xn->op != OP_add && xn->op != OP_sub && xn->op != OP_mul))
        return 0;
    const int n0 = ep->n, t0 = *taken;
    for (int side = 0; side < 2; side++) { /* the side built in q; the other a vector */
        const int a = xn->in[side], b = xn->in[1 - side];
        const int op = xn->op == OP_add   ? MLC_EPI_ADD
                       : xn->op == OP_mul ? MLC_EPI_MUL
                       : side             ? MLC_EPI_RSUB
                                          : MLC_EPI_SUB;
        if (epi_buffer(e, r, b, y, 2) && epi_channel_value(e, r, a, y, ep, taken) && epi_push(ep, op, 1, 1, b)) {
            ++*taken;
            return 1;
        }
        ep->n = n0, *taken = t0;
    }
    return 0;
}

int cuda_conv_epilogue(const EmitCtx *e, int id, CudaConvEpi *ep) {
    const Graph *g = e->g;
    const Node *n = &g->nodes[id];
    const FusionPlan *fp = e->fp;
    ep->n = 0;
    const int r = fp ? fp->epilogue[id] : -1;
    const int fused_call = cuda_conv_cudnn(e, id) && cuda_conv_cudnn_floats(e, id); /* cuDNN's fused form only */
    if ((n->op != OP_conv2d && n->op != OP_conv2d_bwd_data) || r < 0 || n->shape.rank != 4 ||
        (!cuda_conv_implicit(g, id) && !cuda_conv_cudnn(e, id)) || (fused_call && n->op != OP_conv2d))
        return 0;
    if (e->half && (e->half[id] || e->half[r])) return 0; /* the kernel stores floats */
    const Shape *y = &n->shape;
    int members = 0, taken = 0; /* the group's members, and those the steps compute */
    for (int x = 0; x <= r; x++) members += fp->root[x] == r && g->nodes[x].op != OP_reshape;
    for (int cur = id; cur != r;) {
        const int x = only_reader(g, cur);
        if (x < 0 || fp->root[x] != r || (x != r && !fp->inl[x])) return ep->n = 0;
        if (graph_is_output(g, cur) || g->loss == cur) return ep->n = 0;
        const Node *xn = &g->nodes[x];
        if (xn->dtype != DT_F32 || !shape_eq(&xn->shape, y)) return ep->n = 0;
        taken++;
        int ok = 0;
        if (xn->op == OP_relu || xn->op == OP_round_bf16) {
            ok = epi_push(ep, xn->op == OP_relu ? MLC_EPI_RELU : MLC_EPI_ROUND_BF16, 0, 0, -1);
        } else if ((xn->op == OP_add || xn->op == OP_sub || xn->op == OP_mul) && xn->nin == 2) {
            const int first = xn->in[0] == cur;
            const int o = first ? xn->in[1] : xn->in[0];
            const int op = xn->op == OP_add   ? MLC_EPI_ADD
                           : xn->op == OP_mul ? MLC_EPI_MUL
                           : first            ? MLC_EPI_SUB
                                              : MLC_EPI_RSUB;
            const Node *on = &g->nodes[o];
            const int kind = epi_operand(g, o, y);
            if (xn->op == OP_mul && on->op == OP_step && fp->root[o] == r && fp->inl[o] && only_reader(g, o) == x) {
                /* times step(t), the member computed in a register */
                const int t = on->in[0], tkind = epi_operand(g, t, y);
                ok = tkind >= 0 && epi_buffer(e, r, t, y, tkind) && epi_push(ep, MLC_EPI_MUL_STEP, 0, tkind, t);
                taken++;
            } else if (kind >= 0 && epi_buffer(e, r, o, y, kind)) {
                ok = epi_push(ep, op, 0, kind, o);
            } else if (kind == 1) { /* a per-channel value computed in the group: in q */
                ok = epi_channel_value(e, r, o, y, ep, &taken) && epi_push(ep, op, 0, 1, -1);
            }
        }
        if (!ok) return ep->n = 0;
        cur = x;
    }
    if (taken != members) ep->n = 0; /* the group computes more than the steps */
    if (fused_call && ep->n) {       /* cuDNN's fused call: act(conv + z + bias) */
        mlc_conv_epi_cudnn f = mlc_conv_epi_cudnn_start();
        for (int k = 0; k < ep->n; k++)
            mlc_conv_epi_cudnn_step(&f, k, ep->step[k].op, ep->step[k].q, ep->step[k].per_channel);
        if (!f.ok || f.bias < 0) ep->n = 0;
    }
    return ep->n;
}

/* "+ %6 per channel, relu"; q's steps as "q = %6", "q * %11", "q subtracted from %5" */
void cuda_conv_epilogue_text(const CudaConvEpi *ep, char *buf, size_t cap) {
    static const char *const op[] = {"+", "-", "subtracted from", "*", "* step of", "relu", "round to bf16", "="};
    _Static_assert(sizeof op / sizeof op[0] == MLC_EPI_LOAD + 1, "a word for each step op");
    size_t at = 0;
    buf[0] = 0;
    for (int k = 0; k < ep->n && at < cap; k++) {
        const CudaConvEpiStep *st = &ep->step[k];
        char operand[32] = "";
        if (st->operand >= 0)
            snprintf(operand, sizeof operand, " %%%d%s", st->operand, st->per_channel && !st->q ? " per channel" : "");
        else if (st->op <= MLC_EPI_MUL) snprintf(operand, sizeof operand, " q");
        const int w = snprintf(buf + at, cap - at, "%s%s%s%s", k ? ", " : "", st->q ? "q " : "", op[st->op], operand);
        at += w > 0 ? (size_t)w : 0;
    }
}

/* ---- CUDA emission: one call into the kernel library's launchers: im2col / col2im
 * kernels, strided-batched cuBLAS GEMMs over the samples, per-sample weight-gradient
 * slots summed in sample order (conv.cu); or the implicit GEMMs (conv_implicit.cu); or
 * cuDNN (conv_cudnn.cu) ---- */

void emit_conv_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    Geom q = conv_node_geom(e->g, n);
    const char *fn = n->op == OP_conv2d            ? "mlc_cuda_conv2d_fwd"
                     : n->op == OP_conv2d_bwd_data ? "mlc_cuda_conv2d_bwd_data"
                                                   : "mlc_cuda_conv2d_bwd_filter";
    /* what the operands hold: floats (on the TF32 tensor cores under --tf32 where the
     * kernels take it), or bf16 values, which the GEMMs may multiply on bf16 tensor cores */
    const char *mode = conv_mode(e, id);
    const int dnn = cuda_conv_cudnn(e, id), implicit = cuda_conv_implicit(e->g, id);
    const char *ws = e->ws ? e->ws : "NULL";
    int out = id; /* the node whose buffer the call writes: the epilogue's root when it runs in the call */
    emit(e, "{");
    e->indent++;
    emit_conv_geom(e, &q);
    if ((implicit || dnn) && n->op != OP_conv2d_bwd_filter) {
        CudaConvEpi ep;
        if (cuda_conv_epilogue(e, id, &ep)) { /* the epilogue group in the call, into its root */
            static const char *const op[] = {"MLC_EPI_ADD",      "MLC_EPI_SUB",  "MLC_EPI_RSUB",       "MLC_EPI_MUL",
                                             "MLC_EPI_MUL_STEP", "MLC_EPI_RELU", "MLC_EPI_ROUND_BF16", "MLC_EPI_LOAD"};
            _Static_assert(sizeof op / sizeof op[0] == MLC_EPI_LOAD + 1, "a name for each step op");
            out = e->fp->epilogue[id];
            char text[256];
            cuda_conv_epilogue_text(&ep, text, sizeof text);
            emit(e, "/* epilogue %s, the group of %%%d (%s): %s */",
                 !dnn                            ? "in the kernel's store"
                 : cuda_conv_cudnn_floats(e, id) ? "in cuDNN's fused call"
                                                 : "as cuDNN's bf16 output is widened",
                 out, op_of(&e->g->nodes[out])->name, text);
            emit(e, "const mlc_conv_epilogue ep = {%d, {", ep.n);
            for (int k = 0; k < ep.n; k++)
                emit(e, "    {%s, %d, %d, %s},", op[ep.step[k].op], ep.step[k].q, ep.step[k].per_channel,
                     ep.step[k].operand >= 0 ? emit_buf(e, ep.step[k].operand) : "NULL");
            emit(e, "}};");
        }
    }
    const char *epi = out != id ? "&ep" : "NULL";
    if (dnn) { /* its workspace: ws_cudnn's, at this call's batch */
        Workspace w = {0};
        ws_cudnn(e->g, n, &w);
        char bytes[96];
        if (w.b)
            snprintf(bytes, sizeof bytes, "sizeof(float) * ((size_t)%lld + (size_t)%lld * (size_t)B)", (long long)w.c,
                     (long long)w.b);
        else snprintf(bytes, sizeof bytes, "sizeof(float) * (size_t)%lld", (long long)w.c);
        if (n->op == OP_conv2d_bwd_filter)
            emit(e, "%s_cudnn(self->cudnn, stream, &geom, B, %s, %s, %s, %s, %s, %s);", fn, emit_buf(e, n->in[0]),
                 emit_buf(e, n->in[1]), emit_buf(e, id), ws, bytes, mode);
        else
            emit(e, "%s_cudnn(self->cudnn, stream, &geom, B, %s, %s, %s, %s, %s, %s, %s);", fn, emit_buf(e, n->in[0]),
                 emit_buf(e, n->in[1]), emit_buf(e, out), epi, ws, bytes, mode);
    } else if (implicit && n->op == OP_conv2d_bwd_filter)
        emit(e, "%s_implicit(stream, &geom, B, %s, %s, %s, %s, %d, %s);", fn, emit_buf(e, n->in[0]),
             emit_buf(e, n->in[1]), emit_buf(e, id), ws, cuda_conv_splits(&q, e->g->batch), mode);
    else if (implicit)
        emit(e, "%s_implicit(stream, &geom, B, %s, %s, %s, %s, %s);", fn, emit_buf(e, n->in[0]), emit_buf(e, n->in[1]),
             emit_buf(e, out), epi, mode);
    else
        emit(e, "%s(self->cublas, stream, &geom, B, %s, %s, %s, %s, %lld, %s);", fn, emit_buf(e, n->in[0]),
             emit_buf(e, n->in[1]), emit_buf(e, id), ws, (long long)cuda_chunk(&q, n->op), mode);
    /* the group's root took another input's bytes (a residual's): the op's own buffer,
     * which the memory plan still holds, is never written */
    if (out != id && strcmp(emit_buf(e, id), emit_buf(e, out)))
        emit(e, "(void)%s; /* the %s's own buffer, unused: the epilogue stores into %%%d's */", emit_buf(e, id),
             op_of(n)->name, out);
    e->indent--;
    emit(e, "}");
    if (out == id) cuda_epilogue(e, id); /* else it ran in the call */
}
