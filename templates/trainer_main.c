/* templates/trainer_main.c - the main() of a standalone trainer built by `mlc build`.
 *
 * Everything model-specific is behind MLC_MODEL_API (the generated model's
 * mlc_model_api, named with -DMLC_MODEL_API=NAME_api); the training loop, data loading,
 * checkpoints and output are the runtime's (runtime/trainer.c). Built with MLC_MPI
 * (`mlc build --mpi`) it is one rank of a data-parallel job (runtime/dist.h). */
#include "mlc_model.h"
#ifdef MLC_C_KERNELS /* a C model: libmlckernels is linked, and --version says how it was built */
#include "build_info.h"
#include "kernels/mlc_kernels.h"
#endif
#ifdef MLC_MPI
#include "dist.h"
#endif

#ifndef MLC_MODEL_API
#error "compile with -DMLC_MODEL_API=<model>_api"
#endif

extern const mlc_model_api MLC_MODEL_API;

int main(int argc, char **argv)
{
    mlcrt_default_wait_policy(argv); /* may start the trainer again: before anything runs */
#ifdef MLC_C_KERNELS
    mlcrt_set_kernels(mlc_kernels_vec_width(), mlc_kernels_isa());
#endif
#if defined(MLC_MPI_CUDA) /* the rank's GPU and NCCL: dist_nccl.c, built beside this file */
    return mlcrt_mpi_main(argc, argv, &MLC_MODEL_API, mlcrt_cuda_setup);
#elif defined(MLC_MPI)
    return mlcrt_mpi_main(argc, argv, &MLC_MODEL_API, 0);
#else
    return mlcrt_main(argc, argv, &MLC_MODEL_API);
#endif
}
