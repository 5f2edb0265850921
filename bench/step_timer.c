/* bench/step_timer.c - times a generated model's train step on random data.
 *
 * Built against one model (-DMLC_MODEL_API=NAME_api) by bench/run.sh. Prints the median
 * and other quantiles of the per-step wall time over --steps steps after --warmup steps,
 * the peak RSS, the model's optimizer (so the PyTorch side can use the same one) and the
 * vector width of the kernel library it is linked with (bench/run.sh --isa). A CUDA model
 * (bench/gpu/prepare.sh) is linked without the C kernel library: built with
 * -DMLC_STEP_TIMER_CUDA, it prints vec_width=0 isa=none. omp_wait= says how the OpenMP
 * team waited (docs/trainer.md, "Threads under load"): spinN (GOMP_SPINCOUNT=N, then
 * asleep), passive, active, or default (libgomp's own).
 * Timings only: it asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_time.h"
#include "mlc_model.h"
#ifdef MLC_STEP_TIMER_CUDA
static int mlc_kernels_vec_width(void) { return 0; }
static const char *mlc_kernels_isa(void) { return "none"; }
#else
#include "kernels/mlc_kernels.h"
#endif

extern const mlc_model_api MLC_MODEL_API;

int main(int argc, char **argv) {
    mlcrt_default_wait_policy(argv); /* the OpenMP team waits as in the trainer (docs/trainer.md) */
    const mlc_model_api *api = &MLC_MODEL_API;
    int batch = api->default_batch, steps = 100, warmup = 10, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    }
    if (threads > 0 && api->set_threads) api->set_threads(threads);
    void *m = api->create(1, batch);
    if (!m) return 1;
    /* one batch of made-up data per input: floats in [0, 1), integers below the class
     * count (a classifier's labels) or 2 */
    const int64_t classes = api->classifier ? api->outputs[api->cls_output].numel : 2;
    void *in[16] = {NULL};
    if (api->n_inputs > 16) return 1;
    unsigned s = 12345;
    for (int k = 0; k < api->n_inputs; k++) {
        const mlc_io_desc *d = &api->inputs[k];
        size_t n = (size_t)batch * (size_t)d->numel;
        in[k] = malloc(4 * n);
        if (!in[k]) return 1;
        for (size_t i = 0; i < n; i++) {
            s = s * 1103515245u + 12345u;
            if (d->dtype == MLC_I32) ((int32_t *)in[k])[i] = (int32_t)((s >> 16) % (unsigned)classes);
            else ((float *)in[k])[i] = (float)((s >> 8) & 0xffff) / 65536.0f;
        }
    }
    const void *const *inputs = (const void *const *)in;
    double *t = malloc(sizeof(double) * (size_t)steps);
    float loss = 0;
    for (int i = 0; i < warmup; i++) loss = api->train_step(m, inputs, batch, api->optimizer.lr, NULL);
    for (int i = 0; i < steps; i++) {
        double t0 = now();
        loss = api->train_step(m, inputs, batch, api->optimizer.lr, NULL);
        t[i] = now() - t0;
    }
    qsort(t, (size_t)steps, sizeof(double), cmp);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const mlc_optimizer_desc *o = &api->optimizer;
    char wait[64]; /* what mlcrt_default_wait_policy chose, or the user set */
    const char *spins = getenv("GOMP_SPINCOUNT"), *policy = getenv("OMP_WAIT_POLICY");
    if (spins) snprintf(wait, sizeof wait, "spin%.40s", spins);
    else snprintf(wait, sizeof wait, "%.40s", policy ? policy : "default");
    printf(
        "model=%s target=%s batch=%d steps=%d median_ms=%.4f p10_ms=%.4f p90_ms=%.4f peak_rss_mb=%.1f loss=%.4f "
        "opt=%s lr=%g momentum=%g beta1=%g beta2=%g eps=%g wd=%g vec_width=%d isa=%s omp_wait=%s\n",
        api->name, api->target, batch, steps, 1e3 * t[steps / 2], 1e3 * t[steps / 10], 1e3 * t[steps * 9 / 10],
        (double)ru.ru_maxrss / 1024.0, loss, o->kind, o->lr, o->momentum, o->beta1, o->beta2, o->eps, o->weight_decay,
        mlc_kernels_vec_width(), mlc_kernels_isa(), wait);
    api->destroy(m);
    for (int k = 0; k < api->n_inputs; k++) free(in[k]);
    free(t);
    return 0;
}
