/* ema_weights.c - eval and predict with the moving averages of train { ema }: the
 * generated update keeps "<p>.ema" beside each parameter p (compiler/passes/optimizer.c)
 * and the checkpoint saves it with the rest; here each average replaces its parameter in
 * a loaded model, through the API's tensor table, so every target works alike. */
#include "ema_weights.h"

#include <stdlib.h>
#include <string.h>

#include "mlcrt_error.h"

static int find_tensor(const mlc_model_api *api, const char *name, size_t len, const char *suffix) {
    for (int i = 0; i < api->n_tensors; i++) {
        const char *t = api->tensors[i].name;
        if (!strncmp(t, name, len) && !strcmp(t + len, suffix)) return i;
    }
    return -1;
}

int mlcrt_use_ema(const mlc_model_api *api, void *model, char *msg, size_t cap) {
    int found = 0;
    for (int i = 0; i < api->n_tensors; i++) {
        const mlc_tensor_desc *p = &api->tensors[i];
        int e = p->is_param ? find_tensor(api, p->name, strlen(p->name), ".ema") : -1;
        if (e < 0) continue;
        float *v = malloc(sizeof(float) * (size_t)(p->numel ? p->numel : 1));
        if (!v) {
            return mlcrt_fail(msg, cap, MLCRT_ENOMEM, "out of memory for the moving average of %s", p->name);
        }
        api->read_tensor(model, e, v);
        api->write_tensor(model, i, v);
        free(v);
        found++;
    }
    if (!found) {
        return mlcrt_fail(
            msg, cap, MLCRT_EMISMATCH,
            "--ema: model '%s' keeps no moving average of its parameters (train { ema = 0.999 } adds one for "
            "each parameter it trains)",
            api->name);
    }
    return MLCRT_OK;
}
