/* templates/trainer_main.c - the main() of a standalone trainer built by `mlc build`.
 *
 * Everything model-specific is behind MLC_MODEL_API (the generated model's
 * mlc_model_api, named with -DMLC_MODEL_API=NAME_api); the training loop, data loading,
 * checkpoints and output are the runtime's (runtime/trainer.c). */
#include "mlc_model.h"

#ifndef MLC_MODEL_API
#error "compile with -DMLC_MODEL_API=<model>_api"
#endif

extern const mlc_model_api MLC_MODEL_API;

int main(int argc, char **argv) { return mlcrt_main(argc, argv, &MLC_MODEL_API); }
