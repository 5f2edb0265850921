/* ema_weights.h - eval and predict with a model's moving averages (train { ema },
 * the trainer's --ema): each trained parameter takes the value of its "<name>.ema". */
#ifndef MLCRT_EMA_WEIGHTS_H
#define MLCRT_EMA_WEIGHTS_H

#include <stddef.h>

#include "mlc_model.h"

/* Copies every "<p>.ema" tensor of the model into parameter p. MLCRT_OK, or an error
 * in msg when the model keeps no averages or is out of memory. */
int mlcrt_use_ema(const mlc_model_api *api, void *model, char *msg, size_t cap);

#endif
