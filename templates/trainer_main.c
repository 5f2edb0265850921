/* templates/trainer_main.c - the main() of a standalone trainer built by `mlc build`.
 *
 * Everything model-specific is behind MLC_MODEL_API (the generated model's
 * mlc_model_api, named with -DMLC_MODEL_API=NAME_api); the training loop, data loading,
 * checkpoints and output are the runtime's (runtime/trainer.c). Built with MLC_MPI
 * (`mlc build --mpi`) it is one rank of a data-parallel job (runtime/dist.h). */
#include "mlc_model.h"
#ifdef MLC_MPI
#include "dist.h"
#endif

#ifndef MLC_MODEL_API
#error "compile with -DMLC_MODEL_API=<model>_api"
#endif

extern const mlc_model_api MLC_MODEL_API;

#if defined(MLC_MPI_CUDA)
#include <cuda_runtime_api.h>
/* One GPU per rank of a node: the rank on the node picks it; more ranks than GPUs share
 * them round-robin (the gradients go through host memory over MPI either way). */
static int pick_device(int local_rank)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1)
        return -1;
    return cudaSetDevice(local_rank % n) == cudaSuccess ? 0 : -1;
}
#endif

int main(int argc, char **argv)
{
#if defined(MLC_MPI_CUDA)
    return mlcrt_mpi_main(argc, argv, &MLC_MODEL_API, pick_device);
#elif defined(MLC_MPI)
    return mlcrt_mpi_main(argc, argv, &MLC_MODEL_API, 0);
#else
    return mlcrt_main(argc, argv, &MLC_MODEL_API);
#endif
}
