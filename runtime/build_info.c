/* build_info.c - a trainer's --version (build_info.h). */
#include "build_info.h"

static int kernels_vw;
static const char *kernels_isa;

void mlcrt_set_kernels(int vec_width, const char *isa) { kernels_vw = vec_width, kernels_isa = isa; }

void mlcrt_print_version(FILE *out, const mlc_model_api *api) {
    fprintf(out, "model '%s', target %s, mlc_model.h API %d\n", api->name, api->target, api->api_version);
    if (kernels_vw)
        fprintf(out, "kernels: libmlckernels, %d-float vectors (%s)\n", kernels_vw, kernels_isa ? kernels_isa : "?");
    else if (api->target && api->target[0] == 'c' && !api->target[1])
        fprintf(out, "kernels: libmlckernels, vector width not handed over (a main() other than mlc build's)\n");
}
