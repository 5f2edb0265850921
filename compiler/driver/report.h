/* report.h - `mlc --report`: per-tensor memory and per-kernel cost of a compiled model. */
#ifndef MLC_REPORT_H
#define MLC_REPORT_H

#include <stdio.h>

#include "model.h"

void print_report(FILE *out, const ModelIR *m);
/* The train step's attentions: their memory, fused against unfused (report_attention.c). */
void attention_report(FILE *out, const Graph *g);
/* The C target's convolutions: each one's kernel variant and vector width (report_conv.c). */
void conv_report(FILE *out, const ModelIR *m);
/* Each convolution's algorithm (C: direct or Winograd, and its FLOPs; CUDA: im2col or
 * implicit GEMMs) (report_conv_algo.c). */
void conv_algo_report(FILE *out, const ModelIR *m);

#endif
