/* ckpt.h - checkpoints: every persistent tensor of a model plus its step counter, in a
 * versioned, checksummed, byte-reproducible binary file (format: ckpt.c, and
 * docs/checkpoint.md). */
#ifndef MLCRT_CKPT_H
#define MLCRT_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "mlc_model.h"

#define MLCRT_CKPT_VERSION 1u

/* Writes the model's tensors (api->tensors, via api->read_tensor) and step counter to
 * path atomically: PATH.tmp.<pid> is written and fsync'ed, renamed over path, and the
 * directory fsync'ed. On failure the temporary file is removed, an existing file at path
 * is left as it was, and msg says why, e.g.
 *   cannot write checkpoint 'x/y.ckpt': Permission denied */
int mlcrt_ckpt_save(const mlc_model_api *api, void *model, const char *path, char *msg,
                    size_t cap);

/* Loads path into the model after checking magic, version, truncation, trailing data,
 * CRC, model name, tensor count and every tensor's name, dtype and shape. The model is
 * modified (api->write_tensor, api->set_step) only when all of that validates. */
int mlcrt_ckpt_load(const mlc_model_api *api, void *model, const char *path, char *msg,
                    size_t cap);

#endif
