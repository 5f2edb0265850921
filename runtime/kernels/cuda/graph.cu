/* graph.cu - CUDA graphs for the generated train and eval steps (mlc_kernels_cuda.h): a
 * step's launches captured once per key (graph function, batch size, whether outputs
 * are wanted) and replayed after, so the host does no per-kernel work in steady state.
 * The kernels read each call's scalars (Adam's step, dropout's counter) from device
 * memory the host fills before the replay, so a graph holds no value that changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mlc_kernels_cuda.h"

/* Graphs off for good: MLC_CUDA_GRAPHS=0 asked for it, or a capture failed (noted once). */
static int graphs_off(mlc_graph_cache *c, const char *model, const char *why, cudaError_t err) {
    if (!c->off && why)
        fprintf(stderr, "note: %s: CUDA graphs off (%s: %s); the kernels are launched one by one\n", model, why,
                cudaGetErrorString(err));
    c->off = 1;
    (void)cudaGetLastError(); /* a failed capture leaves its error behind */
    return 0;
}

int mlc_cuda_graph_run(mlc_graph_cache *c, cudaStream_t stream, long long key, void (*launch)(void *ctx), void *ctx,
                       const char *model) {
#ifdef MLC_CUDA_SYNC_CHECK
    /* each launch waits for its kernel, which no capture allows */
    (void)stream, (void)key, (void)launch, (void)ctx;
    return graphs_off(c, model, NULL, cudaSuccess);
#else
    if (c->off) return 0;
    const char *env = getenv("MLC_CUDA_GRAPHS");
    if (env && !strcmp(env, "0")) return graphs_off(c, model, NULL, cudaSuccess);
    for (int i = 0; i < MLC_GRAPH_SLOTS; i++)
        if (c->exec[i] && c->key[i] == key) {
            cudaError_t err = cudaGraphLaunch(c->exec[i], stream);
            if (err != cudaSuccess) return graphs_off(c, model, "cudaGraphLaunch", err);
            return 1;
        }
    if (c->warmup) { /* a key's first call one by one */
        int seen = 0;
        for (int i = 0; i < MLC_GRAPH_SLOTS && !seen; i++) seen = c->warm[i] == key + 1; /* + 1: 0 is no key */
        if (!seen) {
            c->warm[c->warm_next] = key + 1;
            c->warm_next = (c->warm_next + 1) % MLC_GRAPH_SLOTS;
            return 0;
        }
    }
    /* Relaxed: cuBLAS may set itself up on first use inside the capture */
    cudaError_t err = cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed);
    if (err != cudaSuccess) return graphs_off(c, model, "cudaStreamBeginCapture", err);
    launch(ctx);
    cudaGraph_t graph = NULL;
    err = cudaStreamEndCapture(stream, &graph);
    if (err != cudaSuccess || !graph) return graphs_off(c, model, "cudaStreamEndCapture", err);
    cudaGraphExec_t exec = NULL;
    err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    if (err != cudaSuccess) return graphs_off(c, model, "cudaGraphInstantiate", err);
    /* a full cache gives up its oldest graph */
    int slot = c->next;
    c->next = (c->next + 1) % MLC_GRAPH_SLOTS;
    if (c->exec[slot]) cudaGraphExecDestroy(c->exec[slot]);
    c->exec[slot] = exec;
    c->key[slot] = key;
    err = cudaGraphLaunch(exec, stream);
    if (err != cudaSuccess) return graphs_off(c, model, "cudaGraphLaunch", err);
    return 1;
#endif
}

void mlc_cuda_graph_free(mlc_graph_cache *c) {
    for (int i = 0; i < MLC_GRAPH_SLOTS; i++)
        if (c->exec[i]) cudaGraphExecDestroy(c->exec[i]);
    memset(c, 0, sizeof *c);
}
