/* conv_algo.h - which algorithm each C convolution runs with (conv_algo.c): direct, or
 * Winograd F(2x2, 3x3) or F(4x4, 3x3) (runtime/kernels/mlc_winograd_layout.h) for the 3x3
 * stride-1 layers where it pays; `mlc --conv-algo` forces one. */
#ifndef MLC_CONV_ALGO_H
#define MLC_CONV_ALGO_H

#include "ir.h"
#include "kernels/mlc_geom.h"

typedef struct Geom Geom;

/* The kernels' geometry (runtime/kernels/mlc_geom.h) of a conv node's */
mlc_conv_geom conv_kernel_geom(const Geom *q);

/* MLC_CONV_DIRECT, MLC_CONV_WINOGRAD or MLC_CONV_WINOGRAD4 (mlc_winograd_layout.h) for
 * conv node n of g, following g->conv_algo */
int conv_algo_c(const Graph *g, const Node *n);

/* "direct", "wino2x2" or "wino4x4", for --report */
const char *conv_algo_name(int algo);

#endif
