/* emit_cuda.c - the CUDA target (placeholder until it lands). */
#include "target.h"

static void emit_source_cuda(const ModelIR *m, FILE *out, const char *hdr_name) {
    (void)m, (void)hdr_name;
    fprintf(out, "#error \"the CUDA target is not implemented yet\"\n");
}

const Target target_cuda = {.name = "cuda", .src_ext = ".cu", .emit_source = emit_source_cuda};
