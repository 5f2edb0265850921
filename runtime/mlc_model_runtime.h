/* mlc_model_runtime.h - what libmlcrt offers a model through its mlc_model_api: the
 * standalone trainer and the conveniences generated models build their NAME_evaluate,
 * NAME_save and NAME_load on. Included by mlc_model.h, after the API struct. */
#ifndef MLC_MODEL_RUNTIME_H
#define MLC_MODEL_RUNTIME_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" { /* C linkage for a C++ caller */
#endif

typedef struct mlc_model_api mlc_model_api;

/* The standalone trainer: parses argv (modes and flags: runtime/settings.def,
 * docs/trainer.md), trains, evaluates and prints `test accuracy: 0.XXXX` (a classifier)
 * or `test loss: X` (any other model), or evaluates or predicts from a checkpoint.
 * Returns the exit status: 0, 1 runtime error, 2 bad command line. */
int mlcrt_main(int argc, char **argv, const mlc_model_api *api);

/* The trainer's main calls this first: without OMP_WAIT_POLICY or GOMP_SPINCOUNT set, it
 * starts the program again (Linux) with a spin of about 10 us before a thread sleeps
 * where the CPUs are free for its team beside what else runs, or with sleeping at once
 * otherwise (wait_policy.c; docs/trainer.md, "Threads under load"). It returns only when
 * nothing is to change or the restart failed. */
void mlcrt_default_wait_policy(char **argv);

/* Conveniences generated models build their NAME_evaluate / _save / _load on
 * (model_helpers.c). Save and load print a message on stderr and return -1 on failure. */
/* Over `count` samples (inputs: one array of count samples per input, each advanced by
 * its own per-sample size), in batches of at most the model's max_batch (and the model's
 * train { } batch): a classifier's accuracy, any other model's mean loss in evaluation
 * mode, whatever its inputs; NaN after a line on stderr for a count below 1 or out of
 * memory. */
double mlcrt_evaluate_arrays(const mlc_model_api *api, void *model, const void *const *inputs, int count,
                             int max_batch);
/* The public NAME_train_step, NAME_forward, ... check n first: 1 when n is outside
 * 1..max_batch (the buffers create sized), after a one-line `error:` on stderr naming the
 * call; the call then returns NaN or does nothing. 0 otherwise. */
int mlcrt_batch_refused(const char *call, int n, int max_batch);
/* The public train_step and forward_backward of a model whose min_train_batch is above 1
 * check n >= least: 1 after a one-line `error:` on stderr naming the call (the call then
 * returns NaN), 0 otherwise. */
int mlcrt_train_batch_refused(const char *call, int n, int least);
/* The public train_step and update check their learning rate: 1 after a one-line `error:`
 * naming the call when it is NaN or infinite (every parameter would become NaN; the call
 * then returns NaN or does nothing), 0 otherwise. Any finite rate is taken. */
int mlcrt_lr_refused(const char *call, float lr);
/* The public calls check their inputs first: 1 after a one-line `error:` on stderr naming
 * the call and the input when `inputs` is NULL or an input the call reads is NULL (every
 * input, or with every == 0 those with eval_reads: forward's); 0 otherwise. */
int mlcrt_inputs_refused(const mlc_model_api *api, const char *call, const void *const *inputs, int every);
/* The public calls that read labels (an i32 input one_hot or cross_entropy reads) check
 * them first: 1 after a one-line `error:` on stderr naming the call, the input, the sample
 * (and position, per_sample > 1) and the label, when one of the n * per_sample labels is
 * outside 0..classes-1; 0 otherwise, or when labels is NULL. */
int mlcrt_labels_refused(const char *call, const char *input, const int32_t *labels, int64_t n, int64_t per_sample,
                         int64_t classes);
/* NAME_create returned NULL: says why on stderr (max_batch below 1, or out of memory). */
void mlcrt_create_failed(const char *call, int max_batch);
/* A NULL path: -1 after `error: NAME_save: the path is NULL` (NAME_load likewise). */
int mlcrt_save(const mlc_model_api *api, void *model, const char *path);
int mlcrt_load(const mlc_model_api *api, void *model, const char *path);
/* The input normalisation x' = (x - mean[c]) / std[c] a checkpoint's model was trained
 * with (--mean, --std, else the .mdl's train { } values), which NAME_load does not apply:
 * a library caller normalises its inputs with it as the trainer does. Returns n_norm (0:
 * none; 1: mean[0], std[0] for every channel; else one per channel, at most 4) and fills
 * mean and std (4 each); an older checkpoint that records none gives api's values. -1
 * after a one-line `error:` on stderr when the file is no checkpoint of this model. */
int mlcrt_ckpt_norm(const mlc_model_api *api, const char *path, float mean[4], float std[4]);
/* 0 when api was built against this runtime's MLC_API_VERSION; otherwise -1 after a
 * one-line `error:` on stderr naming the model and both versions. */
int mlcrt_check_api(const mlc_model_api *api, FILE *err);
/* 64-byte aligned, zeroed; NULL when out of memory. Free with free(). */
float *mlcrt_alloc_floats(int64_t n);
/* For an out-of-memory message after a create returned NULL: " (an allocation of N bytes,
 * X GiB, failed)" for this thread's last mlcrt_alloc_floats that failed, or "" when none
 * did since the last call; into buf, which it returns. */
const char *mlcrt_oom_size(char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
