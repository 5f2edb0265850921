/* ops_random.c - rules of dropout_mask(x): for each element of x, 0 with probability p
 * (fattr0) and 1/(1-p) otherwise, drawn from the runtime's Philox generator at (the
 * model's seed, stream iattr0, counter step << 32 | element), so a run is reproduced
 * exactly by its seed, and a resumed run draws what the uninterrupted one would have.
 * The mask does not depend on x's values, only on its shape: its gradient is zero. */
#include "emit.h"
#include "ops.h"
#include "rng.h"

#define X(id) (&g->nodes[id])

static float keep(const Node *n, uint64_t seed, int64_t step, int64_t i) {
    float u = mlc_rng_uniform(seed, (uint64_t)n->iattr[0], ((uint64_t)step << 32) | (uint64_t)i);
    return u >= (float)n->fattr[0] ? (float)(1.0 / (1.0 - n->fattr[0])) : 0.0f;
}

static const char *s_dropout(Graph *g, Node *n) {
    if (!(n->fattr[0] >= 0 && n->fattr[0] < 1)) return shape_err(g, "dropout: p must be in [0, 1), found %g", n->fattr[0]);
    n->shape = X(n->in[0])->shape;
    n->dtype = DT_F32;
    return NULL;
}

/* The interpreter evaluates at seed 1, step 1: the values the first train step draws. */
static void e_dropout(const Graph *g, const Node *n, double *const *in, double *out) {
    (void)in;
    for (int64_t i = 0; i < shape_numel(&n->shape); i++) out[i] = keep(n, 1, 1, i);
    (void)g;
}

static void emit_dropout_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit(e, "{");
    e->indent++;
    emit(e, "const float p = %s, scale = %s;", emit_float(e, n->fattr[0]), emit_float(e, 1.0 / (1.0 - n->fattr[0])));
    emit(e, "float *restrict y = %s;", emit_buf(e, id));
    emit(e, "#pragma omp parallel for if ((%s) > 32768)", emit_numel(e, id));
    emit(e, "for (long i = 0; i < (long)(%s); i++)", emit_numel(e, id));
    emit(e, "    y[i] = mlc_philox_uniform(self->seed, %lluu, ((uint64_t)t << 32) | (uint64_t)i) >= p ? scale : 0.0f;",
         (unsigned long long)n->iattr[0]);
    e->indent--;
    emit(e, "}");
}

/* CUDA: a thread per element, the same Philox draw on the device (mlc_philox_uniform,
 * runtime/kernels/mlc_philox.h), so the mask is bit for bit the C target's. */
static void emit_dropout_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *count = emit_numel(e, id);
    const char *k = cuda_kernel_begin(e, id, count, "i", "const unsigned long long seed, const unsigned long long t");
    emit(e, "const float p = %s, scale = %s;", emit_float(e, n->fattr[0]), emit_float(e, 1.0 / (1.0 - n->fattr[0])));
    emit(e, "%s[i] = mlc_philox_uniform(seed, %lluull, (t << 32) | (unsigned long long)i) >= p ? scale : 0.0f;",
         emit_buf(e, id), (unsigned long long)n->iattr[0]);
    cuda_kernel_end(e);
    cuda_launch(e, id, k, count, "self->seed, (unsigned long long)t");
}

static void g_zero(Graph *g, int node, int gy, int *gx) { (void)g, (void)node, (void)gy, gx[0] = -1; }

static int c_dropout(Graph *g, int i) {
    static const int64_t d[] = {2, 5};
    if (i > 0) return -1;
    int x = case_param(g, 2, d, 1, INIT_UNIFORM, -1, 1);
    double fa[4] = {0.3, 0, 0, 0};
    int64_t ia[4] = {7, 0, 0, 0};
    return graph_add(g, OP_dropout_mask, &x, 1, ia, fa, NULL);
}

const OpRules rules_dropout_mask = {.shape = s_dropout, .grad = g_zero, .eval = e_dropout, .emit_c = emit_dropout_c, .emit_cuda = emit_dropout_cuda,
                                    .cases = c_dropout, .flags = OPF_ZERO_GRAD};
