/* io_bind.c - binding dataset fields to model inputs by name, or by dtype and size when
 * that is unambiguous (io_bind.h). */
#include "io_bind.h"

#include "mlcrt_error.h"
#include "text_data.h"

#include <stdio.h>
#include <string.h>

/* "f32[1, 28, 28]": an input's per-sample type, for messages. */
static const char *io_type(const mlc_io_desc *d, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "%s[", d->dtype == MLC_I32 ? "i32" : "f32");
    for (int i = 0; i < d->rank && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)d->dims[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

static int is_label_like(const mlc_io_desc *d) { return d->dtype == MLC_I32 && d->numel == 1; }

/* A token model's inputs: `tokens` takes the windows, `targets` (or `labels`) the next
 * tokens; an input named otherwise takes the field left free when it alone can. */
static int bind_tokens(const mlc_model_api *api, mlcrt_binding *b, char *msg, size_t cap) {
    char t[128], u[128];
    int rest[2], nrest = 0;
    b->image_input = b->label_input = -1;
    for (int i = 0; i < api->n_inputs; i++) {
        const mlc_io_desc *d = &api->inputs[i];
        if (d->dtype != MLC_I32 || d->rank != 1)
            return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                              "model input '%s' (%s) matches no field of the token data "
                              "(tokens: i32[T], targets: i32[T]); name it tokens or targets",
                              d->name, io_type(d, t, sizeof t));
        if (strcmp(d->name, "tokens") == 0) b->image_input = i;
        else if (strcmp(d->name, "targets") == 0 || strcmp(d->name, "labels") == 0) b->label_input = i;
        else if (nrest < 2) rest[nrest++] = i;
        else
            return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                              "model '%s' has more than two token inputs; the data has two "
                              "fields (tokens, targets)",
                              api->name);
    }
    int free_fields = (b->image_input < 0) + (b->label_input < 0);
    if (nrest && !free_fields) /* no field is left to take, so nothing is ambiguous */
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "model input '%s' (%s) matches no field of the token data: inputs '%s' and '%s' "
                          "take both (tokens, targets)",
                          api->inputs[rest[0]].name, io_type(&api->inputs[rest[0]], t, sizeof t),
                          api->inputs[b->image_input].name, api->inputs[b->label_input].name);
    if (nrest > free_fields || (nrest == 2 && free_fields == 2))
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "model input '%s' (%s): which token field it takes is ambiguous; name "
                          "the inputs tokens and targets",
                          api->inputs[rest[nrest - 1]].name, io_type(&api->inputs[rest[nrest - 1]], t, sizeof t));
    if (nrest == 1 && b->image_input < 0) b->image_input = rest[0];
    else if (nrest == 1) b->label_input = rest[0];
    if (b->image_input < 0)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "model '%s' has no input for the data's tokens; name it tokens",
                          api->name);
    const mlc_io_desc *tok = &api->inputs[b->image_input];
    if (b->label_input >= 0 && api->inputs[b->label_input].numel != tok->numel)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "model input '%s' (%s): expected as many targets as input '%s' (%s) "
                          "has tokens",
                          api->inputs[b->label_input].name, io_type(&api->inputs[b->label_input], t, sizeof t),
                          tok->name, io_type(tok, u, sizeof u));
    return MLCRT_OK;
}

int mlcrt_bind_inputs(const mlc_model_api *api, mlcrt_binding *b, char *msg, size_t cap) {
    char t[128];
    if (mlcrt_is_token_model(api)) return bind_tokens(api, b, msg, cap);
    b->image_input = b->label_input = -1;
    for (int i = 0; i < api->n_inputs; i++) {
        const mlc_io_desc *d = &api->inputs[i];
        if (strcmp(d->name, "image") == 0) {
            if (d->dtype != MLC_F32)
                return mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "model input 'image' (%s): the data's image field is f32",
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
        if (i == b->image_input || i == b->label_input) continue;
        if (api->inputs[i].dtype == MLC_F32) f32 = i, nf32++;
        else if (is_label_like(&api->inputs[i])) i32 = i, ni32++;
    }
    if (b->image_input < 0 && nf32 == 1) b->image_input = f32;
    if (b->label_input < 0 && ni32 == 1) b->label_input = i32;
    for (int i = 0; i < api->n_inputs; i++)
        if (i != b->image_input && i != b->label_input)
            return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                              "model input '%s' (%s) matches no field of the data (image: f32 "
                              "per sample, label: i32); name it image or label%s",
                              api->inputs[i].name, io_type(&api->inputs[i], t, sizeof t),
                              /* two i32[1] inputs: a token model's windows and targets of one token */
                              is_label_like(&api->inputs[i]) && ni32 + (b->label_input >= 0) > 1
                                  ? " (a token model reads windows of at least 2 tokens, i32[B, T] with T >= 2)"
                                  : "");
    if (b->image_input < 0)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "model '%s' has no f32 input for the data's image field",
                          api->name);
    return MLCRT_OK;
}

void mlcrt_batch_inputs(const mlcrt_binding *b, const void **in, const void *x, const int32_t *y) {
    in[b->image_input] = x;
    if (b->label_input >= 0) in[b->label_input] = y;
}
