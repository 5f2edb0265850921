/* trainer.h - the standalone trainer (mlcrt_main, declared in mlc_model.h) and the
 * evaluator it uses. */
#ifndef MLCRT_TRAINER_H
#define MLCRT_TRAINER_H

#include <stdio.h>

#include "data.h"
#include "mlc_model.h"

/* Classification accuracy of the model on the whole dataset: api->forward in batches
 * of `batch` (the last one partial), argmax of each output row (first maximum on ties)
 * compared with the label. `batch` must not exceed the max_batch the model was created
 * with. Returns a value in [0,1], or -1 when the output buffer cannot be allocated or
 * batch < 1. An empty dataset gives 0. */
double mlcrt_evaluate(const mlc_model_api *api, void *model, const mlc_dataset *ds,
                      int batch);

/* mlcrt_main with explicit output streams (progress and results to out, errors to
 * err); mlcrt_main(argc, argv, api) is mlcrt_main_io(argc, argv, api, stdout, stderr).
 * Returns the exit status: 0 success, 1 runtime failure (bad data, NaN loss, checkpoint
 * error), 2 bad command line. */
int mlcrt_main_io(int argc, char **argv, const mlc_model_api *api, FILE *out, FILE *err);

#endif
