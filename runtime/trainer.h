/* trainer.h - the standalone trainer (mlcrt_main, declared in mlc_model.h) and the
 * evaluator it uses. */
#ifndef MLCRT_TRAINER_H
#define MLCRT_TRAINER_H

#include <stdio.h>

#include "data.h"
#include "mlc_model.h"

/* The model's measure on the whole dataset, in batches of `batch` (the last one
 * partial; at most the max_batch the model was created with), its fields fed to the
 * model's inputs as the trainer binds them (io_bind.h). A classifier: its accuracy, argmax
 * of each row of its class-score output (first maximum on ties) against the label, in
 * [0,1]. Any other model: its mean loss in evaluation mode (api->eval_loss, weighted by
 * batch size), as for a token dataset's windows (text_data.h) whatever the model. -1
 * when memory runs out, batch < 1 or the inputs do not bind. An empty dataset gives 0. */
double mlcrt_evaluate(const mlc_model_api *api, void *model, const mlc_dataset *ds, int batch);

/* 1 when api->create (max_batch >= 1) says on stderr why it returns NULL, so the caller
 * adds no line of its own: a CUDA model's names the CUDA call that failed, which a
 * caller's "out of memory" would contradict. A C model's create is silent. */
int mlcrt_create_says_why(const mlc_model_api *api);

/* The class a row of k scores picks: the first of its largest. */
int mlcrt_argmax_row(const float *row, int64_t k);

/* mlcrt_main with explicit output streams (progress and results to out, errors to
 * err); mlcrt_main(argc, argv, api) is mlcrt_main_io(argc, argv, api, stdout, stderr).
 * Returns the exit status: 0 success, 1 runtime failure (bad data, NaN loss, checkpoint
 * error), 2 bad command line. */
int mlcrt_main_io(int argc, char **argv, const mlc_model_api *api, FILE *out, FILE *err);

#endif
