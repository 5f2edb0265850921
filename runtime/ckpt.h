/* ckpt.h - checkpoints: every persistent tensor of a model plus its step counter, in a
 * versioned, checksummed, byte-reproducible binary file (format: ckpt.c, and
 * docs/checkpoint.md). */
#ifndef MLCRT_CKPT_H
#define MLCRT_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "mlc_model.h"

#define MLCRT_CKPT_VERSION 4u

/* The longest model or tensor name a checkpoint stores (after a u16 length): mlc refuses
 * a model whose names are longer, as its trainer could not save what it trained. */
#define MLCRT_CKPT_MAX_NAME 65535

/* Where a training run stands, saved with the weights so that --resume continues
 * exactly: the shuffle permutation and the augmentation of an epoch are pure functions
 * of (seed, epoch), the lr schedule of the global step (api->get_step), and the epoch's
 * running sums make the resumed epoch's line equal the uninterrupted one's. */
typedef struct mlcrt_train_state {
    int64_t epoch;         /* epochs completed (0-based index of the current epoch) */
    int64_t epoch_pos;     /* samples of the current epoch already trained on */
    uint64_t seed;         /* data-order seed: shuffle and augmentation */
    int64_t train_samples; /* training samples per epoch (0: unknown) */
    double loss_sum;       /* sum of loss * batch size over the current epoch so far */
    int64_t correct;       /* correctly classified training samples in it so far */
    /* What the model saw: the input normalisation x' = (x - mean[c]) / std[c] it was
     * trained with (--mean, --std); n_norm 0: none. eval, predict, --resume and --load
     * use it (docs/trainer.md). has_data_settings: 1 when the checkpoint records it
     * (version 3 and later), 0 for a version-2 file (read as none). Augmentation is not here: it
     * changes training batches only. */
    int has_data_settings;
    int n_norm;
    float norm_mean[4], norm_std[4];
    /* The step counter the run began at: 0, or after --load the loaded counter. The run's
     * own steps (--max-steps with --epochs, the log's step column, --eval-every,
     * --save-every Ns) count from it. has_run_start: 1 when the checkpoint records it
     * (version 4); for an older one the trainer takes it from the position. */
    int has_run_start;
    int64_t run_start;
} mlcrt_train_state;

/* Writes the model's tensors (api->tensors, via api->read_tensor) and step counter to
 * path atomically (mlcrt_write_atomic, atomic_file.h: written unnamed or as
 * PATH.tmp.<pid>.<n>, fsync'ed, renamed over path, a symbolic link's target replaced). On
 * failure an existing file at path is left as it was, and msg says why, e.g.
 *   cannot write checkpoint 'x/y.ckpt': Permission denied */
int mlcrt_ckpt_save(const mlc_model_api *api, void *model, const char *path, char *msg, size_t cap);
/* The same with a training state (NULL: all zero). */
int mlcrt_ckpt_save_state(const mlc_model_api *api, void *model, const mlcrt_train_state *st, const char *path,
                          char *msg, size_t cap);
/* Checks, before any training, that a checkpoint can be written at path (creates and
 * removes PATH.tmp.<pid>.<n>, removes those of dead processes; path itself is not touched),
 * and that what is there is a checkpoint, or nothing: a save would replace any other file.
 * Same messages as a save, or
 *   cannot write checkpoint 'net.mdl': the file there is no mlc checkpoint (it begins
 *   'model ne') and a save would replace it; remove it or choose another path */
int mlcrt_ckpt_check_writable(const char *path, char *msg, size_t cap);

/* Loads path into the model after checking magic, version, truncation, trailing data,
 * CRC, model name, tensor count and every tensor's name, dtype and shape. The model is
 * modified (api->write_tensor, api->set_step) only when all of that validates. */
int mlcrt_ckpt_load(const mlc_model_api *api, void *model, const char *path, char *msg, size_t cap);
/* The same, also returning the saved training state in *state (when not NULL; written
 * only on success). model NULL: only validates the file against the model's API and
 * reads the state. */
int mlcrt_ckpt_load_state(const mlc_model_api *api, void *model, mlcrt_train_state *state, const char *path, char *msg,
                          size_t cap);

/* Checks a loaded training state against the run that resumes it (--resume): the same
 * training set size (train_n), no more epochs completed than --epochs, and a step
 * counter that covers the completed epochs and position. The loader has already
 * checked what holds for any run (no negative counts, epoch_pos <= train_n, correct <=
 * epoch_pos, a finite loss_sum). msg names path and the field, e.g.
 *   run.ckpt: epoch: expected 0 to 3 (this run's --epochs), found 7 epochs completed */
int mlcrt_ckpt_check_resume(const mlcrt_train_state *st, int64_t step, int64_t train_n, int epochs, const char *path,
                            char *msg, size_t cap);

#endif
