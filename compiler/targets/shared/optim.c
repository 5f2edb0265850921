/* optim.c - the optimizer updates (ops/ops_optim.c) on every target: one per-element
 * loop each, writing the parameter (input 0) and its state in place. Reading a parameter,
 * its gradient and its state once per step is what makes the update cheap. `lr` and the
 * step count t are the step function's run-time values. */
#include "shared_emitters.h"
#include "target.h"

static void scalar(ElemLoop *l, const char *name, const char *value, int host) {
    l->scalar[l->nscalar++] = (LoopScalar){"float", name, value, host};
}

static void buf(ElemLoop *l, const char *name, int node, int write) {
    l->buf[l->nbuf++] = (LoopBuf){name, node, write};
}

static ElemLoop update_loop(EmitCtx *e, const Node *n) {
    ElemLoop l = {.rank = 1, .size = {emit_numel(e, n->in[0])}, .var = {"i"}, .par = LOOP_PARALLEL_SIMD};
    return l;
}

/* v = momentum*v + (g + wd*p);  p -= lr * (nesterov ? g + wd*p + momentum*v : v).
 * sgd_plain_update (momentum 0, no v): p -= lr * (g + wd*p). */
void emit_sgd(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const int plain = n->op == OP_sgd_plain_update;
    ElemLoop l = update_loop(e, n);
    buf(&l, "p", n->in[0], 1);
    if (!plain) buf(&l, "v", n->in[2], 1);
    buf(&l, "g", n->in[1], 0);
    scalar(&l, "lr", "lr", 1);
    if (!plain) scalar(&l, "mom", emit_float(e, attr_f(n, A_MOMENTUM)), 0);
    scalar(&l, "wd", emit_float(e, attr_f(n, A_WEIGHT_DECAY)), 0);
    loop_begin(e, id, &l);
    emit(e, "const float gi = g[i] + wd * p[i];");
    if (plain) {
        emit(e, "p[i] -= lr * gi;");
    } else {
        emit(e, "v[i] = mom * v[i] + gi;");
        emit(e, "p[i] -= lr * (%s);", attr_i(n, A_NESTEROV) ? "gi + mom * v[i]" : "v[i]");
    }
    loop_end(e, id, &l);
}

/* Adam; bias corrections from t, computed once per step on the host in double from the
 * .mdl's betas as written (as PyTorch does: in float, 1 - 0.9999^t loses ~1e-4 of itself
 * for beta2 = 0.9999), then rounded to float for the loop. Weight decay: L2, folded into
 * the gradient (adam), or decoupled, p *= 1 - lr * wd before the step (adamw: decoupled),
 * 1 - lr * wd in double from the .mdl's wd, as PyTorch computes it. */
void adam_bias_corrections(EmitCtx *e, const Node *n, const char **step, const char **inv_bc2) {
    /* mlc_pow_d: pow in double, on the host of every target (no neutral math name: those
     * are float) */
    *step = arena_printf(e->arena, "(float)((double)lr / (1.0 - mlc_pow_d(%s, (double)t)))",
                         c_double(e->arena, attr_f(n, A_BETA1)));
    *inv_bc2 = arena_printf(e->arena, "(float)(1.0 / (1.0 - mlc_pow_d(%s, (double)t)))",
                            c_double(e->arena, attr_f(n, A_BETA2)));
}

/* The moments' weights of the new gradient, 1 - beta1 and 1 - beta2, as float literals:
 * computed in double from the .mdl's betas and rounded once, as PyTorch's float Adam does
 * (alpha = 1 - beta1). 1.0f - b2 with b2 the rounded beta is 1 - float(beta2): for
 * beta2 = 0.99999 that is 1.00136e-5, off by 1.4e-3 of itself, and the bias correction
 * 1 - beta2^t does not carry the same error, so every early step was scaled by it. */
void adam_moment_weights(EmitCtx *e, const Node *n, const char **w1, const char **w2) {
    *w1 = emit_float(e, (float)(1.0 - attr_f(n, A_BETA1)));
    *w2 = emit_float(e, (float)(1.0 - attr_f(n, A_BETA2)));
}

/* AdamW's p *= 1 - lr * wd, in double on the host (lr is the step's float) */
const char *adam_decay(EmitCtx *e, const Node *n) {
    return arena_printf(e->arena, "(float)(1.0 - (double)lr * %s)", c_double(e->arena, attr_f(n, A_WEIGHT_DECAY)));
}

void emit_adam(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *b1 = emit_float(e, attr_f(n, A_BETA1)), *b2 = emit_float(e, attr_f(n, A_BETA2)),
               *wd = emit_float(e, attr_f(n, A_WEIGHT_DECAY));
    int decoupled = attr_i(n, A_DECOUPLED) != 0;
    ElemLoop l = update_loop(e, n);
    buf(&l, "p", n->in[0], 1), buf(&l, "m1", n->in[2], 1), buf(&l, "m2", n->in[3], 1), buf(&l, "g", n->in[1], 0);
    const char *step, *inv_bc2, *w1, *w2;
    adam_bias_corrections(e, n, &step, &inv_bc2);
    adam_moment_weights(e, n, &w1, &w2);
    scalar(&l, "step", step, 1);
    scalar(&l, "inv_bc2", inv_bc2, 1);
    if (decoupled) scalar(&l, "decay", adam_decay(e, n), 1);
    scalar(&l, "b1", b1, 0), scalar(&l, "b2", b2, 0), scalar(&l, "eps", emit_float(e, attr_f(n, A_EPS)), 0);
    if (!decoupled) scalar(&l, "wd", wd, 0);
    loop_begin(e, id, &l);
    emit(e, decoupled ? "const float gi = g[i];" : "const float gi = g[i] + wd * p[i];");
    emit(e, "m1[i] = b1 * m1[i] + %s * gi;", w1);
    emit(e, "m2[i] = b2 * m2[i] + %s * gi * gi;", w2);
    emit_math(e, decoupled ? "p[i] = p[i] * decay - step * m1[i] / (sqrt(m2[i] * inv_bc2) + eps);"
                           : "p[i] -= step * m1[i] / (sqrt(m2[i] * inv_bc2) + eps);");
    loop_end(e, id, &l);
}

/* ema_update(state, value): state = (1 - m) state + m c value, the running statistics of
 * batch_norm. m = momentum; per_sample = elements per sample behind each value (H*W);
 * unbiased: the correction c = n / (n - 1), n = B * per_sample. A few
 * hundred channels: one thread on C. */
void emit_ema(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    long long per = (long long)attr_i(n, A_PER_SAMPLE);
    ElemLoop l = update_loop(e, n);
    l.par = LOOP_SERIAL;
    buf(&l, "s", n->in[0], 1), buf(&l, "v", n->in[1], 0);
    scalar(&l, "m", emit_float(e, attr_f(n, A_MOMENTUM)), 0);
    /* 1 - m in double, rounded once (as for Adam's moments, emit_adam) */
    const char *keep = emit_float(e, (float)(1.0 - attr_f(n, A_MOMENTUM)));
    /* n counts the global micro-batch under --sync-bn (batch_sync.c), else this call's */
    const char *cnt = arena_printf(e->arena, "(self->batch_sync_n ? self->batch_sync_n : B) * %lld", per);
    const char *unbiased = arena_printf(e->arena, "%s > 1 ? (float)(%s) / (float)(%s - 1) : 1.0f", cnt, cnt, cnt);
    scalar(&l, "c", attr_i(n, A_UNBIASED) ? unbiased : "1.0f", attr_i(n, A_UNBIASED) != 0);
    loop_begin(e, id, &l);
    emit(e, "s[i] = %s * s[i] + m * c * v[i];", keep);
    loop_end(e, id, &l);
}

/* param_ema(ema, p): ema = d ema + (1 - d) p, with d = 0 on the first step (t = 1) so
 * the average starts at the parameter. 1 - d is computed in double, then rounded. */
void emit_param_ema(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    ElemLoop l = update_loop(e, n);
    buf(&l, "s", n->in[0], 1), buf(&l, "p", n->in[1], 0);
    scalar(&l, "d", arena_printf(e->arena, "t == 1 ? 0.0f : %s", emit_float(e, attr_f(n, A_DECAY))), 1);
    scalar(&l, "w", arena_printf(e->arena, "t == 1 ? 1.0f : (float)(1.0 - %s)", c_double(e->arena, attr_f(n, A_DECAY))),
           1);
    loop_begin(e, id, &l);
    emit(e, "s[i] = d * s[i] + w * p[i];");
    loop_end(e, id, &l);
}
