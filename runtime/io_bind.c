/* io_bind.c - binding dataset fields to model inputs by name, or by dtype and size when
 * that is unambiguous (io_bind.h). */
#include "io_bind.h"

#include "mlcrt_error.h"

#include <stdio.h>
#include <string.h>

/* "f32[1, 28, 28]": an input's per-sample type, for messages. */
static const char *io_type(const mlc_io_desc *d, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "%s[", d->dtype == MLC_I32 ? "i32" : "f32");
    for (int i = 0; i < d->rank && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)d->dims[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
    return buf;
}

static int is_label_like(const mlc_io_desc *d) { return d->dtype == MLC_I32 && d->numel == 1; }

int mlcrt_bind_inputs(const mlc_model_api *api, mlcrt_binding *b, char *msg, size_t cap)
{
    char t[128];
    b->image_input = b->label_input = -1;
    for (int i = 0; i < api->n_inputs; i++) {
        const mlc_io_desc *d = &api->inputs[i];
        if (strcmp(d->name, "image") == 0) {
            if (d->dtype != MLC_F32)
                return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                                  "model input 'image' (%s): the data's image field is f32",
                                  io_type(d, t, sizeof t));
            b->image_input = i;
        } else if (strcmp(d->name, "label") == 0) {
            if (!is_label_like(d))
                return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                                  "model input 'label' (%s): the data's label field is one i32 "
                                  "per sample",
                                  io_type(d, t, sizeof t));
            b->label_input = i;
        }
    }
    /* The rest: the only f32 input left takes the image, the only label-like one the
     * label, when that field is still free. */
    int f32 = -1, nf32 = 0, i32 = -1, ni32 = 0;
    for (int i = 0; i < api->n_inputs; i++) {
        if (i == b->image_input || i == b->label_input)
            continue;
        if (api->inputs[i].dtype == MLC_F32)
            f32 = i, nf32++;
        else if (is_label_like(&api->inputs[i]))
            i32 = i, ni32++;
    }
    if (b->image_input < 0 && nf32 == 1)
        b->image_input = f32;
    if (b->label_input < 0 && ni32 == 1)
        b->label_input = i32;
    for (int i = 0; i < api->n_inputs; i++)
        if (i != b->image_input && i != b->label_input)
            return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                              "model input '%s' (%s) matches no field of the data (image: f32 "
                              "per sample, label: i32); name it image or label",
                              api->inputs[i].name, io_type(&api->inputs[i], t, sizeof t));
    if (b->image_input < 0)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "model '%s' has no f32 input for the data's image field", api->name);
    return MLCRT_OK;
}

void mlcrt_batch_inputs(const mlcrt_binding *b, const void **in, const float *x, const int32_t *y)
{
    in[b->image_input] = x;
    if (b->label_input >= 0)
        in[b->label_input] = y;
}
