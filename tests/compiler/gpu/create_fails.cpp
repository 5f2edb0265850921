/* tests/compiler/gpu/create_fails.cpp - the main create_fails_on_host.sh builds with
 * samples/mlp.mdl's CUDA model: a C++ caller that includes the generated mlp.h as it is
 * (its extern "C" gives the calls C linkage, as the .cu defines them), then mlp_create
 * where the GPU cannot be used, and with a max_batch below 1. Each failure is to say why
 * in one line on stderr. */
#include <cstdio>

#include "mlp.h"

int main() {
    std::printf("create: %s\n", mlp_create(1, 4) ? "a model" : "NULL");
    std::fflush(stderr);
    std::printf("create max_batch 0: %s\n", mlp_create(1, 0) ? "a model" : "NULL");
    std::printf("inputs: %d\n", mlp_api.n_inputs);
    return 0;
}
