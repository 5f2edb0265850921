/* tests/compiler/gpu/create_fails.c - the main create_fails_on_host.sh builds with
 * samples/mlp.mdl's CUDA model: mlp_create where the GPU cannot be used, and with a
 * max_batch below 1. Each failure is to say why in one line on stderr. */
#include <stdint.h>
#include <stdio.h>

typedef struct mlp_model mlp_model;
mlp_model *mlp_create(uint64_t seed, int max_batch);

int main(void) {
    printf("create: %s\n", mlp_create(1, 4) ? "a model" : "NULL");
    fflush(stderr);
    printf("create max_batch 0: %s\n", mlp_create(1, 0) ? "a model" : "NULL");
    return 0;
}
