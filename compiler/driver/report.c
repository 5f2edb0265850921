/* report.c - `mlc net.mdl --report`: what the compiled train step and inference cost.
 *
 * Per tensor with a buffer of its own: bytes, lifetime (the node that writes it and the
 * last that reads it), arena offset, and what it is kept for: a forward value the
 * backward reads is "saved for backward"; a clone the recompute pass (--mem-budget)
 * inserted is "recomputed" (its original then dies in the forward); a value that took
 * over a dying input's buffer is "in place of" it. Per kernel (a fused group, a GEMM or
 * conv2d with its epilogue, a special op): FLOPs and bytes moved (what it reads from
 * outside once, what it stores once), and how many nodes were fused into it (values it
 * recomputes, such as one_hot of the labels, count as FLOPs, and their inputs as bytes
 * read). Totals: arena
 * peak, parameter and optimizer-state bytes, FLOPs per step; under --mem-budget, the
 * budget and the arena without and with recomputation. Sizes use the compile-time batch
 * size. */
#include <string.h>

#include "cuda_emitters.h"
#include "emit.h"
#include "model.h"
#include "ops.h"
#include "report.h"

static int64_t bytes_of(const Node *n) { return 4 * shape_numel(&n->shape); }

/* The bytes of node id's buffer as plan p stores it: 2 a value for a tensor stored as
 * bfloat16 (MemPlan.half), else 4. */
static int64_t stored_bytes(const MemPlan *p, const Graph *g, int id) {
    const Node *n = &g->nodes[id];
    return p->half[view_owner(g, id)] ? bytes_of(n) / 2 : bytes_of(n);
}

static void human(char *buf, size_t n, double v, const char *unit) {
    const char *pre[] = {"", "K", "M", "G", "T"};
    int k = 0;
    while (v >= 1000 && k < 4) v /= 1000, k++;
    snprintf(buf, n, "%.3g %s%s", v, pre[k], unit);
}

/* 1024-based, as --mem-budget reads its suffixes: "90.0 MiB" */
static void human_bin(char *buf, size_t n, double v) {
    const char *pre[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    int k = 0;
    while (v >= 1024 && k < 4) v /= 1024, k++;
    snprintf(buf, n, k ? "%.1f %s" : "%.0f %s", v, pre[k]);
}

static const char *base(const Node *n) {
    if (!n->loc.file) return "-";
    const char *f = n->loc.file->name, *slash = strrchr(f, '/');
    return slash ? slash + 1 : f;
}

/* What kernel u reads for its input x: x's buffer once, unless u computed x itself; a
 * recomputed value (fuse.c) is computed there instead (its FLOPs), from its inputs. */
static void kernel_read(const Graph *g, const FusionPlan *fp, const MemPlan *p, const int *at, int u, int x, char *seen,
                        double *bytes, double *flops) {
    int o = view_owner(g, x);
    if (fp->dup[o]) {
        if (seen[o]) return;
        seen[o] = 1;
        *flops += op_flops(g, &g->nodes[o]);
        for (int k = 0; k < g->nodes[o].nin; k++) kernel_read(g, fp, p, at, u, g->nodes[o].in[k], seen, bytes, flops);
        return;
    }
    if (at[o] == u && o != u && op_of(&g->nodes[o])->kind != K_SOURCE) return; /* inside */
    if (g->nodes[o].op == OP_const || seen[o] || o == u) return;
    seen[o] = 1;
    *bytes += (double)stored_bytes(p, g, o);
}

/* Positions are where code runs (fuse.c): a fused node runs with its group's root, a
 * GEMM's or conv's epilogue with that op. A tensor lives from where it is written to the
 * last position that reads it. */
static void graph_report(FILE *out, const ModelIR *m, const Graph *g, const FusionPlan *fp, const MemPlan *p,
                         const char *title) {
    int B = g->batch, n = g->n;
    int *last = ARENA_ARRAY(m->arena, int, n), *at = ARENA_ARRAY(m->arena, int, n);
    for (int id = 0; id < n; id++) at[id] = fp->at[id] >= 0 ? fp->at[id] : id, last[id] = at[id];
    for (int id = 0; id < n; id++)
        for (int k = 0; k < g->nodes[id].nin; k++) {
            int o = view_owner(g, g->nodes[id].in[k]);
            if (last[o] < at[id]) last[o] = at[id];
        }
    /* The caller reads the output and the loss after the step. */
    for (int k = 0; k < g->nout; k++) last[view_owner(g, g->outputs[k])] = n;
    if (g->loss >= 0) last[view_owner(g, g->loss)] = n;
    /* The backward starts after the loss: a forward value read there is saved for it. */
    int bwd = g->loss >= 0 ? g->loss : n;
    fprintf(out, "== %s (B = %d) ==\n", title, B);
    fprintf(out, "tensors:\n  %-6s %-16s %-18s %12s %11s  %-22s %s\n", "node", "op", "shape", "bytes", "lifetime",
            "arena offset (floats)", "kept for");
    int64_t reg_bytes = 0;
    int nreg = 0;
    for (int id = 0; id < n; id++) {
        const Node *nd = &g->nodes[id];
        if ((fp->inl[id] || fp->dup[id]) && nd->op != OP_reshape) nreg++, reg_bytes += bytes_of(nd);
        if (!p->has_buf[id]) continue;
        char sh[64], life[32], off[48], kept[64];
        shape_str_at(&nd->shape, nd->dtype, g->batch, sh, sizeof sh);
        if (last[id] == n) snprintf(life, sizeof life, "%%%d..end", at[id]);
        else snprintf(life, sizeof life, "%%%d..%%%d", at[id], last[id]);
        snprintf(off, sizeof off, "%lld + %lld*B", (long long)p->off_c[id], (long long)p->off_b[id]);
        snprintf(kept, sizeof kept, "%s",
                 (nd->role & ROLE_RECOMPUTED)                 ? "recomputed"
                 : id < bwd && last[id] > bwd && last[id] < n ? "saved for backward"
                                                              : "");
        if (p->half[id]) snprintf(kept + strlen(kept), sizeof kept - strlen(kept), "%sbf16", kept[0] ? ", " : "");
        if (p->inplace_of[id])
            snprintf(kept + strlen(kept), sizeof kept - strlen(kept), "%sin place of %%%d", kept[0] ? ", " : "",
                     p->inplace_of[id] - 1);
        fprintf(out, "  %%%-5d %-16s %-18s %12lld %11s  %-22s %s\n", id, op_of(nd)->name, sh,
                (long long)stored_bytes(p, g, id), life, off, kept);
    }
    /* Kernels: each loop nest / call / launch, with the nodes fused into it. Bytes moved:
     * every buffer it reads from outside once, every buffer it writes once. */
    fprintf(out, "kernels:\n  %-6s %-16s %6s %14s %14s  %s\n", "node", "op", "fused", "FLOPs", "bytes moved", ".mdl");
    double flops = 0, moved = 0;
    int nk = 0;
    char *seen = arena_alloc(m->arena, (size_t)n + 1);
    for (int u = 0; u < n; u++) {
        const Node *un = &g->nodes[u];
        if (fp->at[u] != u || op_of(un)->kind == K_SOURCE || un->op == OP_reshape) continue;
        double f = 0, b = 0;
        int members = 0;
        memset(seen, 0, (size_t)n + 1);
        for (int id = 0; id <= n - 1; id++) {
            if (at[id] != u || g->nodes[id].op == OP_reshape || op_of(&g->nodes[id])->kind == K_SOURCE) continue;
            const Node *nd = &g->nodes[id];
            members++;
            f += op_flops(g, nd);
            if (p->has_buf[id] || ((nd->role & ROLE_GRAD) && nd->op != OP_reshape)) b += (double)stored_bytes(p, g, id);
            if (op_of(nd)->kind == K_UPDATE) b += (double)bytes_of(nd) * (nd->nin - 1); /* param and state written */
            for (int k = 0; k < nd->nin; k++) kernel_read(g, fp, p, at, u, nd->in[k], seen, &b, &f);
        }
        flops += f, moved += b, nk++;
        fprintf(out, "  %%%-5d %-16s %6d %14.0f %14.0f  %s:%d\n", u, op_of(un)->name, members - 1, f, b, base(un),
                un->loc.line);
    }
    char a[32], b[32], c[32], d[32], r[32], w[32];
    int64_t arena = 4 * plan_floats(p, B, m->threads);
    human(a, sizeof a, (double)arena, "B");
    /* the same buffers, each in bytes of its own: padded as the arena pads them (16 floats a
     * sample), the scratch included; the table's bytes are the tensors' own */
    MemPlan alone = plan_memory_no_reuse(m->arena, g, fp, m->target);
    human(b, sizeof b, 4.0 * (double)plan_floats(&alone, B, m->threads), "B");
    human(c, sizeof c, flops, "FLOP");
    human(d, sizeof d, moved, "B");
    human(r, sizeof r, (double)reg_bytes, "B");
    fprintf(out, "totals: arena %s (%lld bytes; tensors without reuse would take %s), %s, %s moved\n", a,
            (long long)arena, b, c, d);
    human(w, sizeof w, 4.0 * (double)p->ws_per_thread, "B");
    if (p->ws_per_thread)
        fprintf(out,
                "threads: the arena above is for %d thread%s; each thread more adds %s of conv scratch (--threads N)\n",
                m->threads, m->threads == 1 ? "" : "s", w);
    int gemm_ep = 0;
    for (int id = 0; id < n; id++) gemm_ep += fp->epilogue[id] >= 0 && op_of(&g->nodes[id])->kind == K_CONTRACT;
    fprintf(out, "fusion: %d kernels for %d nodes with code; %d values (%s) never reach memory; ", nk,
            fusion_kernels(g, NULL), nreg, r);
    fprintf(out, "%d epilogues (%d GEMM, %d conv)\n", fp->nepilogues, gemm_ep, fp->nepilogues - gemm_ep);
}

/* --mem-budget: the budget, and what recomputation did to the train step's arena. */
static void budget_report(FILE *out, const ModelIR *m) {
    const Graph *g = m->train;
    double extra = 0;
    int costly = 0;
    for (int id = 0; id < g->n; id++)
        if (g->nodes[id].role & ROLE_RECOMPUTED) {
            extra += op_flops(g, &g->nodes[id]);
            costly += (op_of(&g->nodes[id])->rules->flags & OPF_CHECKPOINT) != 0;
        }
    char a[32], b[32], c[32], d[32];
    human_bin(a, sizeof a, (double)m->mem_budget);
    human_bin(b, sizeof b, (double)m->arena_plain);
    human_bin(c, sizeof c, (double)m->arena_planned);
    human(d, sizeof d, extra, "FLOP");
    fprintf(out,
            "memory budget: %s (%lld bytes); train-step arena %s (%lld bytes) without recomputation, %s (%lld bytes) "
            "with %d tensor%s recomputed in the backward, %d of them by a convolution or GEMM (+%s per step)\n",
            a, (long long)m->mem_budget, b, (long long)m->arena_plain, c, (long long)m->arena_planned, m->recomputed,
            m->recomputed == 1 ? "" : "s", costly, d);
}

/* --precision bf16: how many values are rounded, how many of them have a buffer of their
 * own in the train step's arena, and how many of those the target stores as bfloat16
 * (MemPlan.half: the CUDA target's, where every reader takes that type), with the arena
 * that saves against the same plan in floats. */
static void precision_report(FILE *out, const ModelIR *m) {
    const Graph *g = m->train;
    const MemPlan *p = &m->train_plan;
    int rounded = 0, buffers = 0, halves = 0;
    int64_t bytes = 0, half_bytes = 0;
    for (int id = 0; id < g->n; id++) {
        if (g->nodes[id].op != OP_round_bf16) continue;
        rounded++;
        if (!p->has_buf || !p->has_buf[id]) continue;
        buffers++;
        bytes += bytes_of(&g->nodes[id]);
        if (p->half[id]) halves++, half_bytes += bytes_of(&g->nodes[id]);
    }
    char a[32], b[32], c[32];
    human_bin(a, sizeof a, (double)bytes);
    fprintf(out,
            "precision: bf16, %d values rounded in the train step (the inputs and outputs of matmul, conv2d and "
            "attention, and their gradients); %d of them have buffers of their own, %s (%lld bytes) in floats",
            rounded, buffers, a, (long long)bytes);
    if (m->target != TARGET_CUDA) {
        fprintf(out, "; this target keeps them in floats (--target cuda stores them as bfloat16)\n");
        return;
    }
    MemPlan f = plan_memory_in_floats(m->arena, g, &m->train_fuse, m->target);
    int64_t arena = 4 * plan_floats(p, g->batch, m->threads), arena_f = 4 * plan_floats(&f, g->batch, m->threads);
    human_bin(b, sizeof b, (double)half_bytes / 2);
    human_bin(c, sizeof c, (double)(arena_f - arena));
    fprintf(out, "; %d of those stored as bfloat16, in %s (%lld bytes)", halves, b, (long long)(half_bytes / 2));
    if (halves < buffers)
        fprintf(out,
                ", the other %d in floats (read by an op that takes only floats, such as pooling or a transpose, or "
                "the plan in floats was smaller)",
                buffers - halves);
    fprintf(out, "; train-step arena %lld bytes against %lld with them all in floats: %s (%lld bytes) saved\n",
            (long long)arena, (long long)arena_f, c, (long long)(arena_f - arena));
}

/* The CUDA target: what api_create allocates on the device (emit_cuda.c), at the
 * report's batch. One arena serves every graph function, so it is the largest plan's. */
static void cuda_memory_report(FILE *out, const ModelIR *m) {
    const int64_t B = m->train->batch;
    int64_t arena = 0, inputs = 0;
    for (int f = 0; f < GRAPH_FN_COUNT; f++) {
        const MemPlan *p = graph_fn_parts(m, (GraphFn)f).plan;
        int64_t floats = p->size_c + p->size_b * B;
        if (floats > arena) arena = floats;
    }
    for (int i = 0; i < m->ninputs; i++) inputs += 4 * m->inputs[i].sample_numel * B;
    const int64_t slab = 4 * m->slab_floats, grads = 4 * m->grad_floats, ws = CUDA_CUBLAS_WORKSPACE_BYTES;
    const int64_t total = slab + grads + 4 * arena + inputs + ws;
    char t[32], s[32], g[32], a[32], in[32], w[32];
    human(t, sizeof t, (double)total, "B");
    human(s, sizeof s, (double)slab, "B");
    human(g, sizeof g, (double)grads, "B");
    human(a, sizeof a, 4.0 * (double)arena, "B");
    human(in, sizeof in, (double)inputs, "B");
    human(w, sizeof w, (double)ws, "B");
    fprintf(out,
            "device memory (B = %lld): %s (%lld bytes): parameters and state %s, gradient slab %s, arena %s (the "
            "largest graph function's), inputs %s, cuBLAS workspace %s; the loss and outputs are staged in pinned "
            "host memory\n",
            (long long)B, t, (long long)total, s, g, a, in, w);
}

void print_report(FILE *out, const ModelIR *m) {
    int64_t params = 0, state = 0;
    for (int i = 0; i < m->npers; i++) {
        int64_t b = 4 * shape_numel(&m->pers[i].shape);
        if (m->pers[i].is_param) params += b;
        else state += b;
    }
    char a[32], b[32];
    human(a, sizeof a, (double)params, "B");
    human(b, sizeof b, (double)state, "B");
    fprintf(
        out,
        "model %s (%s): %d persistent tensors; parameters %s (%lld bytes), optimizer and other state %s (%lld bytes)\n",
        m->spec.name, c_comment(m->arena, m->source), m->npers, a, (long long)params, b, (long long)state);
    /* forward_backward writes the gradients there, not in the arena (grad_slab.c) */
    char g[32];
    human(g, sizeof g, 4.0 * (double)m->grad_floats, "B");
    fprintf(out, "gradient slab %s (%lld bytes), outside the arena\n", g, (long long)(4 * m->grad_floats));
    graph_report(out, m, m->train, &m->train_fuse, &m->train_plan, "train step");
    attention_report(out, m->train);
    conv_report(out, m);
    conv_algo_report(out, m);
    if (m->mem_budget > 0) budget_report(out, m);
    if (m->bf16) precision_report(out, m);
    graph_report(out, m, m->eval, &m->eval_fuse, &m->eval_plan, "inference");
    if (m->target == TARGET_CUDA && m->cublaslt) cuda_lt_report(out, m);
    if (m->target == TARGET_CUDA) cuda_memory_report(out, m);
}
