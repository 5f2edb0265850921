/* conv_algo.c - the C target's choice of convolution algorithm, per node. Winograd
 * F(2x2, 3x3) needs 3x3, stride 1, dilation 1, one group (mlc_wino_applies). Under
 * --conv-algo auto it takes the forward pass and the input gradient of layers with at
 * least MIN_CHANNELS input and output channels: measured on the ResNets' layers
 * (bench/results/winograd.md), those run 10-20 % faster, while 16-channel layers broke
 * even and the weight gradient ran slower at every width, so it stays direct unless
 * --conv-algo winograd forces it. */
#include "conv_algo.h"
#include "kernels/mlc_winograd_layout.h"
#include "ops.h"
#include "ops_attrs.h"

enum { MIN_CHANNELS = 32 };

mlc_conv_geom conv_kernel_geom(const Geom *q) {
    return (mlc_conv_geom){.C = (int)q->C,
                           .H = (int)q->H,
                           .W = (int)q->W,
                           .O = (int)q->O,
                           .KH = (int)q->KH,
                           .KW = (int)q->KW,
                           .sh = (int)q->sh,
                           .sw = (int)q->sw,
                           .ph = (int)q->ph,
                           .pw = (int)q->pw,
                           .dh = (int)q->dh,
                           .dw = (int)q->dw,
                           .G = (int)q->G,
                           .Ho = (int)q->Ho,
                           .Wo = (int)q->Wo};
}

int conv_algo_c(const Graph *g, const Node *n) {
    const Geom q = conv_node_geom(g, n);
    const mlc_conv_geom kg = conv_kernel_geom(&q);
    if (g->conv_algo == CONV_ALGO_DIRECT || !mlc_wino_applies(&kg)) return MLC_CONV_DIRECT;
    if (g->conv_algo == CONV_ALGO_WINOGRAD) return MLC_CONV_WINOGRAD;
    return n->op != OP_conv2d_bwd_filter && kg.C >= MIN_CHANNELS && kg.O >= MIN_CHANNELS ? MLC_CONV_WINOGRAD
                                                                                         : MLC_CONV_DIRECT;
}

const char *conv_algo_name(int algo) { return algo == MLC_CONV_WINOGRAD ? "winograd" : "direct"; }
