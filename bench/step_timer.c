/* bench/step_timer.c - times a generated model's train step on random data.
 *
 * Built against one model (-DMLC_MODEL_API=NAME_api) by bench/run.sh. Prints the median
 * and other quantiles of the per-step wall time over --steps steps after --warmup steps,
 * the peak RSS, and the model's optimizer (so the PyTorch side can use the same one).
 * Timings only: it asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mlc_model.h"

extern const mlc_model_api MLC_MODEL_API;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
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
    size_t nx = (size_t)batch * (size_t)api->input_numel;
    float *x = malloc(sizeof(float) * nx);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)batch);
    unsigned s = 12345;
    for (size_t i = 0; i < nx; i++) s = s * 1103515245u + 12345u, x[i] = (float)((s >> 8) & 0xffff) / 65536.0f;
    for (int i = 0; i < batch; i++) s = s * 1103515245u + 12345u, y[i] = (int32_t)((s >> 16) % (unsigned)api->output_numel);
    double *t = malloc(sizeof(double) * (size_t)steps);
    float loss = 0;
    for (int i = 0; i < warmup; i++) loss = api->train_step(m, x, y, batch, api->optimizer.lr, NULL);
    for (int i = 0; i < steps; i++) {
        double t0 = now();
        loss = api->train_step(m, x, y, batch, api->optimizer.lr, NULL);
        t[i] = now() - t0;
    }
    qsort(t, (size_t)steps, sizeof(double), cmp);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const mlc_optimizer_desc *o = &api->optimizer;
    printf("model=%s target=%s batch=%d steps=%d median_ms=%.4f p10_ms=%.4f p90_ms=%.4f peak_rss_mb=%.1f loss=%.4f "
           "opt=%s lr=%g momentum=%g beta1=%g beta2=%g eps=%g wd=%g\n",
           api->name, api->target, batch, steps, 1e3 * t[steps / 2], 1e3 * t[steps / 10], 1e3 * t[steps * 9 / 10],
           (double)ru.ru_maxrss / 1024.0, loss, o->kind, o->lr, o->momentum, o->beta1, o->beta2, o->eps,
           o->weight_decay);
    api->destroy(m);
    free(x), free(y), free(t);
    return 0;
}
