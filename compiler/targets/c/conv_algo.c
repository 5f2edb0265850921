/* conv_algo.c - the C target's choice of convolution algorithm, per node. Winograd needs
 * 3x3, stride 1, dilation 1, one group (mlc_wino_applies). Under --conv-algo auto, as
 * measured on the ResNets' layers (bench/results/winograd.md): F(4x4, 3x3) takes the
 * forward pass and the input gradient of layers with at least F4_CHANNELS input and
 * output channels and outputs of at least F4_SIDE on each side (1.24-1.52x faster than
 * the direct kernels, 1.2-1.4x faster than F(2x2, 3x3) there) or small enough to run in
 * sample groups (mlc_wino_groupable: up to 32 columns; then 1.6-2.6x the direct kernels'
 * rate and 1.4-2.0x F(2x2, 3x3)'s, 2 threads, AVX-512 and AVX2; in a sample's rows of
 * tiles 7x7 ran at half F(2x2, 3x3)'s speed); F(2x2, 3x3) takes the other outputs with
 * at least F2_CHANNELS channels (1.13-1.27x). The weight gradient, for layers with at
 * least F2G_CHANNELS channels that run it in sample groups (mlc_wino_dw_grouped: outputs
 * up to 32 columns at a batch of 32 or more): F(4x4, 3x3) where its 4x4 tiles cover the
 * output exactly (sides multiples of 4: 1.46-1.67x F(2x2, 3x3)'s rate on 28x28, 32x32,
 * 16x16 and 8x8 with AVX-512, 1.00-1.40x with AVX2), else F(2x2, 3x3) (in groups 1.1-1.43x
 * a sample at a time and 1.1-1.7x the direct kernel): on 14x14 and 7x7, with a partial
 * tile at each edge, F(4x4, 3x3) ran at 1.30-1.47x (AVX-512) and 0.78-1.04x (AVX2), and
 * resnet's step was no faster with it there, while its error is 4-5x F(2x2, 3x3)'s;
 * not grouped, F(2x2, 3x3) for layers with at least F2_CHANNELS channels whose 2x2 tiles
 * are at least 90 % inside the output (1.17-1.22x; 16 channels broke even, and 7x7's edge
 * tiles made it 0.93x). --conv-algo winograd forces F(2x2, 3x3) for every op, winograd4
 * F(4x4, 3x3) for every op (the weight gradient where it runs in sample groups, else
 * F(2x2, 3x3): mlc_wino_dw_algo). */
#include "conv_algo.h"
#include "kernels/mlc_winograd_layout.h"
#include "ops.h"
#include "ops_attrs.h"

enum { F4_CHANNELS = 16, F4_SIDE = 12, F2_CHANNELS = 32, F2G_CHANNELS = 16 };

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
    const int wgrad = n->op == OP_conv2d_bwd_filter, dw_grouped = wgrad && mlc_wino_dw_grouped(&kg, g->batch);
    if (g->conv_algo == CONV_ALGO_WINOGRAD) return MLC_CONV_WINOGRAD;
    if (g->conv_algo == CONV_ALGO_WINOGRAD4) return !wgrad || dw_grouped ? MLC_CONV_WINOGRAD4 : MLC_CONV_WINOGRAD;
    /* the input gradient's geometry is the transposed one: the same sides, C and O swapped */
    const int ch = kg.C < kg.O ? kg.C : kg.O, side = kg.Ho < kg.Wo ? kg.Ho : kg.Wo;
    if (wgrad) {
        const long tiles = (long)((kg.Ho + 1) / 2) * ((kg.Wo + 1) / 2);
        if (dw_grouped && ch < F2G_CHANNELS) return MLC_CONV_DIRECT;
        if (dw_grouped) return kg.Ho % 4 == 0 && kg.Wo % 4 == 0 ? MLC_CONV_WINOGRAD4 : MLC_CONV_WINOGRAD;
        return ch >= F2_CHANNELS && 10L * kg.Ho * kg.Wo >= 9 * 4 * tiles ? MLC_CONV_WINOGRAD : MLC_CONV_DIRECT;
    }
    const mlc_conv_geom run = n->op == OP_conv2d_bwd_data ? mlc_wino_data_geom(&kg) : kg;
    if (ch >= F4_CHANNELS && (side >= F4_SIDE || mlc_wino_groupable(&run, MLC_CONV_WINOGRAD4)))
        return MLC_CONV_WINOGRAD4;
    return ch >= F2_CHANNELS ? MLC_CONV_WINOGRAD : MLC_CONV_DIRECT;
}

const char *conv_algo_name(int algo) {
    return algo == MLC_CONV_WINOGRAD4 ? "wino4x4" : algo == MLC_CONV_WINOGRAD ? "wino2x2" : "direct";
}
