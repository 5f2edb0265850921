/* report_scale.c - `mlc net.mdl --report --ranks N [--link BW,LAT] [--flops RATE]`: where
 * data-parallel training of this model stops scaling, from the compiled train step's own
 * FLOPs and gradient bytes (docs/distributed.md).
 *
 * The model: --batch (the compile-time batch) is the global batch, split over N ranks as
 * the trainer splits it (the largest share is ceil(B / N) samples); a rank's compute is the
 * forward-backward's FLOPs scaled to its share plus the whole update's, at RATE FLOP/s; the
 * gradient slab is all-reduced once per step by a ring,
 *     2 (N - 1) / N x bytes / bandwidth + 2 (N - 1) x latency.
 * A step takes compute + all-reduce without overlap, max of the two with perfect overlap.
 * Then, for each matmul of the forward, what splitting it over --tp GPUs by output
 * columns (tensor parallelism) would save in compute against what it costs in
 * communication: the forward all-gathers the output, the backward all-reduces the input's
 * gradient (none when the input is the model's own). Estimates to compare orders of
 * magnitude, not measurements. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "ops.h"
#include "report_scale.h"

/* Ring all-reduce of `bytes` over n ranks, seconds. */
static double ring_allreduce(const ScaleOptions *s, int n, double bytes) {
    if (n <= 1) return 0;
    return 2.0 * (n - 1) / n * bytes / s->link_bytes_per_s + 2.0 * (n - 1) * s->link_latency_s;
}

/* Ring all-gather of a tensor of `bytes` in all, over n ranks, seconds. */
static double ring_allgather(const ScaleOptions *s, int n, double bytes) {
    if (n <= 1) return 0;
    return (double)(n - 1) / n * bytes / s->link_bytes_per_s + (n - 1) * s->link_latency_s;
}

/* 20e12 -> "20 TFLOP/s" */
static void si(char *buf, size_t n, double v, const char *unit) {
    const char *pre[] = {"", "K", "M", "G", "T", "P"};
    int k = 0;
    while (v >= 1000 && k < 5) v /= 1000, k++;
    snprintf(buf, n, "%.4g %s%s", v, pre[k], unit);
}

typedef struct Row {
    int ranks, batch;
    double compute, comm;
} Row;

static Row row(const ScaleOptions *s, int ranks, int batch, double f_fb, double f_upd, double grad_bytes) {
    Row r = {ranks, (batch + ranks - 1) / ranks, 0, 0};
    r.compute = (f_fb * r.batch / batch + f_upd) / s->flops_per_s;
    r.comm = ring_allreduce(s, ranks, grad_bytes);
    return r;
}

static void tensor_parallel(FILE *out, const ModelIR *m, const ScaleOptions *s) {
    const Graph *g = m->train;
    int p = s->tp;
    fprintf(out,
            "tensor parallelism: each matmul of the forward split over %d GPUs by output columns (forward: "
            "all-gather the output; backward: all-reduce the input's gradient), on the link above:\n",
            p);
    fprintf(out, "  %-14s %-24s %12s %12s %12s  %s\n", ".mdl", "[M x K] x [K x N]", "compute ms", "saved ms", "comm ms",
            "verdict");
    int bwd = g->loss >= 0 ? g->loss : g->n;
    for (int id = 0; id < bwd; id++) {
        const Node *n = &g->nodes[id];
        if (n->op != OP_matmul || n->shape.rank < 2) continue;
        double out_numel = (double)shape_numel(&n->shape), cols = (double)n->shape.d[n->shape.rank - 1];
        double rows = out_numel / cols, f = op_flops(g, n), k = f / (2 * out_numel);
        /* forward, and the GEMMs of its backward: the weight's gradient, and the input's
         * unless the input is the model's own (nothing needs its gradient) */
        int a = n->in[0];
        while (g->nodes[a].op == OP_reshape) a = g->nodes[a].in[0];
        int dx = g->nodes[a].op != OP_input;
        double compute = (2 + dx) * f / s->flops_per_s, saved = compute * (p - 1) / p;
        double comm = ring_allgather(s, p, 4 * out_numel) + (dx ? ring_allreduce(s, p, 4 * rows * k) : 0);
        char where[48], dims[48];
        const char *file = n->loc.file ? n->loc.file->name : "-", *slash = strrchr(file, '/');
        snprintf(where, sizeof where, "%s:%d", slash ? slash + 1 : file, n->loc.line);
        snprintf(dims, sizeof dims, "[%.0f x %.0f] x [%.0f x %.0f]", rows, k, k, cols);
        fprintf(out, "  %-14s %-24s %12.4f %12.4f %12.4f  %s\n", where, dims, 1e3 * compute, 1e3 * saved, 1e3 * comm,
                saved > comm ? "pays" : "does not pay");
    }
}

void print_scale_report(FILE *out, const ModelIR *m, const ScaleOptions *s) {
    const Graph *g = m->train;
    double f_fb = 0, f_upd = 0;
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (op_of(n)->kind == K_SOURCE || n->op == OP_reshape) continue;
        if (m->update_phase && m->update_phase[id]) f_upd += op_flops(g, n);
        else f_fb += op_flops(g, n);
    }
    double grad_bytes = 4.0 * (double)m->grad_floats;
    int batch = g->batch;
    char rate[32];
    si(rate, sizeof rate, s->flops_per_s, "FLOP/s");
    fprintf(out,
            "== data parallelism (--ranks %d; ring all-reduce over a link of %.4g GB/s and %.3g us; %s per rank) ==\n",
            s->ranks, s->link_bytes_per_s / 1e9, s->link_latency_s * 1e6, rate);
    fprintf(out, "gradient bytes per step: %.0f (all-reduced once per step)\n", grad_bytes);
    fprintf(out, "train step at global batch %d: forward-backward %.4g GFLOP, update %.4g GFLOP\n", batch, f_fb / 1e9,
            f_upd / 1e9);
    fprintf(out, "  %6s %10s %12s %14s %16s %16s %9s %11s\n", "ranks", "batch/rank", "compute ms", "all-reduce ms",
            "step ms (serial)", "step ms (overlap)", "speed-up", "efficiency");
    Row one = row(s, 1, batch, f_fb, f_upd, grad_bytes);
    int best = 1, cross = 0;
    double best_t = one.compute;
    for (int n = 1;; n = n * 2 > s->ranks && n < s->ranks ? s->ranks : n * 2) {
        Row r = row(s, n, batch, f_fb, f_upd, grad_bytes);
        double serial = r.compute + r.comm, overlap = fmax(r.compute, r.comm);
        double speedup = one.compute / serial;
        fprintf(out, "  %6d %10d %12.4f %14.4f %16.4f %16.4f %8.2fx %10.0f%%\n", n, r.batch, 1e3 * r.compute,
                1e3 * r.comm, 1e3 * serial, 1e3 * overlap, speedup, 100 * speedup / n);
        if (serial < best_t) best_t = serial, best = n;
        if (!cross && r.comm > r.compute) cross = n;
        if (n >= s->ranks) break;
    }
    fprintf(out, "scaling: the step is shortest at %d rank%s (%.4f ms without overlap)", best, best == 1 ? "" : "s",
            1e3 * best_t);
    if (cross) fprintf(out, "; from %d ranks on the all-reduce takes longer than the computation\n", cross);
    else fprintf(out, "; the all-reduce stays shorter than the computation up to %d ranks\n", s->ranks);
    tensor_parallel(out, m, s);
}

/* A decimal SI prefix at *p (K, M, G, T, P; k too), consumed; 1 when there is none. */
static double si_prefix(const char **p) {
    const char *pre = "kKMGTP";
    const double mult[] = {1e3, 1e3, 1e6, 1e9, 1e12, 1e15};
    const char *at = **p ? strchr(pre, **p) : NULL;
    if (!at) return 1;
    (*p)++;
    return mult[at - pre];
}

/* A finite number at s, above 0 (or 0 too with zero_ok: a latency of 0 leaves the
 * link's start-up cost out); 0, or -1. */
static int rate_number(const char *s, char **end, double *v, int zero_ok) {
    *v = strtod(s, end);
    return *end != s && isfinite(*v) && s[0] != '-' && (*v > 0 || (zero_ok && *v == 0)) ? 0 : -1;
}

/* The ranges of the rates: past them the model's times are 0 or inf (a --flops of 1e-300
 * printed inf ms and still a speed-up), and no machine is there. */
#define RATE_MIN 1.0
#define RATE_MAX 1e24
#define LATENCY_MAX 1e3

int parse_link(const char *s, double *bytes_per_s, double *latency_s) {
    char *end;
    double bw, lat;
    if (rate_number(s, &end, &bw, 0)) return -1;
    const char *p = end;
    bw *= si_prefix(&p);
    if (!strncmp(p, "b/s", 3)) bw /= 8;
    else if (strncmp(p, "B/s", 3)) return -1;
    p += 3;
    if (*p++ != ',' || rate_number(p, &end, &lat, 1)) return -1;
    if (!strcmp(end, "ns")) lat *= 1e-9;
    else if (!strcmp(end, "us")) lat *= 1e-6;
    else if (!strcmp(end, "ms")) lat *= 1e-3;
    else if (strcmp(end, "s")) return -1;
    if (bw < RATE_MIN || bw > RATE_MAX || lat > LATENCY_MAX) return -2;
    *bytes_per_s = bw, *latency_s = lat;
    return 0;
}

int parse_rate(const char *s, double *per_s) {
    char *end;
    double v;
    if (rate_number(s, &end, &v, 0)) return -1;
    const char *p = end;
    v *= si_prefix(&p);
    if (*p && strcmp(p, "FLOP/s")) return -1;
    if (v < RATE_MIN || v > RATE_MAX) return -2;
    *per_s = v;
    return 0;
}
