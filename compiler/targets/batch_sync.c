/* batch_sync.c - the --sync-bn hook in generated code, on every target (set_batch_sync in
 * runtime/mlc_model.h; docs/distributed.md). After a batch norm's statistics and after
 * its backward's per-channel sums, forward_backward hands the [2, C] figures to the
 * runtime, which combines them over the ranks; without a hook nothing changes. The model
 * also keeps the global micro-batch's size for the running variance's unbiased
 * correction (shared/optim.c: emit_ema). The C model passes its buffer; the CUDA one
 * copies it to the host and back, on its stream, around the call. */
#include "emit.h"
#include "target.h"

void emit_batch_sync_fields(FILE *out) {
    fprintf(out,
            "    void (*batch_sync)(void *ctx, float *v, int64_t n, int moments); /* set_batch_sync (--sync-bn) */\n");
    fprintf(out, "    void *batch_sync_ctx;\n");
    fprintf(out, "    int64_t batch_sync_n; /* the global micro-batch the statistics cover; 0: this call's */\n");
}

void emit_batch_sync_setter(const ModelIR *m, FILE *out, int cuda) {
    const char *n = m->spec.name;
    fprintf(out,
            "static void api_set_batch_sync(void *model, void (*sync)(void *ctx, float *v, int64_t n, int moments), "
            "void *ctx, int64_t batch) {\n");
    fprintf(out, "    %s_model *self = (%s_model *)model;\n", n, n);
    fprintf(
        out,
        "    self->batch_sync = sync;\n    self->batch_sync_ctx = ctx;\n    self->batch_sync_n = sync ? batch : 0;\n}\n\n");
    if (!cuda) return;
    /* the runtime combines host memory: the figures leave the device and come back */
    fprintf(out,
            "[[maybe_unused]] static void batch_sync_device(%s_model *self, float *dev, int64_t n, int moments) {\n",
            n);
    fprintf(out, "    const size_t bytes = sizeof(float) * (size_t)n;\n");
    fprintf(out, "    float *host = (float *)malloc(bytes);\n");
    fprintf(
        out,
        "    if (!host) {\n        fprintf(stderr, \"%s: out of memory for --sync-bn\\n\");\n        exit(1);\n    }\n",
        n);
    fprintf(out, "    MLC_CUDA_CHECK(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, self->stream));\n");
    fprintf(out, "    MLC_CUDA_CHECK(cudaStreamSynchronize(self->stream));\n");
    fprintf(out, "    self->batch_sync(self->batch_sync_ctx, host, n, moments);\n");
    fprintf(out, "    MLC_CUDA_CHECK(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, self->stream));\n");
    fprintf(out, "    MLC_CUDA_CHECK(cudaStreamSynchronize(self->stream));\n");
    fprintf(out, "    free(host);\n}\n\n");
}

void emit_batch_sync_call(EmitCtx *e, int id, int cuda) {
    const Node *n = &e->g->nodes[id];
    int moments = n->op == OP_bn_stats;
    long long len = 2 * (long long)n->shape.d[1];
    if (cuda)
        emit(e, "if (self->batch_sync) batch_sync_device(self, %s, %lld, %d); /* --sync-bn */", emit_buf(e, id), len,
             moments);
    else
        emit(e, "if (self->batch_sync) self->batch_sync(self->batch_sync_ctx, %s, %lld, %d); /* --sync-bn */",
             emit_buf(e, id), len, moments);
}
