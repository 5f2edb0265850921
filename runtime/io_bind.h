/* io_bind.h - which field of a dataset feeds each model input.
 *
 * The loaders (data.c) give every sample two fields: `image` (f32, the layout of the
 * model's input) and `label` (i32). A model input named like a field takes that field;
 * otherwise an input takes the field it alone can match by dtype and size (the only
 * other f32 input takes the image, the only other i32 input of one value per sample the
 * label). Anything else is an error naming the input and the fields.
 *
 * A token model (text_data.h) binds its inputs to the token data's fields instead:
 * `tokens` (the window, i32[T]) at image_input and `targets` (the next tokens) at
 * label_input. */
#ifndef MLCRT_IO_BIND_H
#define MLCRT_IO_BIND_H

#include <stddef.h>

#include "mlc_model.h"

typedef struct mlcrt_binding {
    int image_input; /* the model input the images feed (there is always one) */
    int label_input; /* the model input the labels feed; -1: the model takes none */
} mlcrt_binding;

/* 0, or MLCRT_EMISMATCH with a one-line message, e.g.
 *   model input 'mask' (f32[784]) matches no field of the data (image: f32 per sample, label: i32); name it image or label */
int mlcrt_bind_inputs(const mlc_model_api *api, mlcrt_binding *b, char *msg, size_t cap);

/* The input pointers of one batch (api->n_inputs <= 2 entries): images (or token
 * windows) and labels (or targets) at the inputs they feed. */
void mlcrt_batch_inputs(const mlcrt_binding *b, const void **in, const void *x, const int32_t *y);

#endif
