/* ops_attrs.h - the attributes of the ops whose code the targets write by hand, decoded:
 * convolution and pooling geometry, transpose's permutation. The rules (ops_conv.c,
 * ops_pool.c, ops_layout.c) define what they mean; the targets' emitters read them here
 * rather than deriving it from the attributes themselves. */
#ifndef MLC_OPS_ATTRS_H
#define MLC_OPS_ATTRS_H

#include "ir.h"

/* conv2d and its backward ops: input C x H x W, O output channels, a KH x KW kernel,
 * stride, padding, dilation, G groups, output Ho x Wo. */
typedef struct Geom {
    int64_t C, H, W, O, KH, KW, sh, sw, ph, pw, dh, dw, G, Ho, Wo;
} Geom;
/* The geometry of conv2d, conv2d_bwd_data or conv2d_bwd_filter node n. */
Geom conv_node_geom(const Graph *g, const Node *n);

/* The poolings: input H x W, a KH x KW window, stride, padding, output Ho x Wo. */
typedef struct PGeom {
    int64_t H, W, KH, KW, sh, sw, ph, pw, Ho, Wo;
} PGeom;
/* The input's geometry for any of the four pooling ops. */
PGeom pool_node_geom(const Graph *g, const Node *n);

/* transpose: output axis i is input axis transpose_perm_at(n, i). */
int transpose_perm_at(const Node *n, int i);

/* attention and its backward ops (ops_attention.c): T queries, S keys, q/k width D, v
 * width E, the scale, causal or not; BH the leading elements at the compile-time batch. */
typedef struct AttnGeom {
    int64_t BH, T, S, D, E;
    double scale;
    int causal;
} AttnGeom;
AttnGeom attn_node_geom(const Graph *g, const Node *n);

#endif
