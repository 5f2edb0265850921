/* bench/onednn_conv.c - oneDNN's convolutions (Debian's libdnnl-dev, the library PyTorch's
 * CPU convolutions run on) on the layers and ops bench/conv_rate.c times mlc's kernels on,
 * printing the same lines, so that bench/conv_width.sh --onednn puts them side by side:
 * issue 18 asks whether a library does mlc's convolutions better than its own kernels.
 * Each op is timed twice: with activations in the plain NCHW layout mlc keeps them in
 * (layout=nchw; the weights in whatever layout oneDNN prefers, their reorder untimed as
 * mlc packs its weights once a step), and with every tensor in oneDNN's preferred blocked
 * layout (layout=blocked; what a library would get if mlc adopted its layouts around it;
 * the reorders untimed). Algorithm: oneDNN's "direct" convolution, its own kernels for
 * the machine (jit:avx512_core, jit:avx2, ...: the `impl=` field). Rates on the direct
 * convolution's FLOPs. DNNL_MAX_CPU_ISA=AVX2 in the environment limits it to AVX2.
 * Timings only: it asserts nothing.
 *
 * usage: onednn_conv [--threads T] [--reps R] [--layer TEXT] (the layers whose name has TEXT) */
#include <dnnl.h>
#include <omp.h>

#include "conv_layers.h"

/* a oneDNN call that must succeed */
#define OK(call)                                                                                           \
    do {                                                                                                   \
        dnnl_status_t st_ = (call);                                                                        \
        if (st_ != dnnl_success) {                                                                         \
            fprintf(stderr, "onednn_conv: %s failed (status %d) at line %d\n", #call, (int)st_, __LINE__); \
            exit(1);                                                                                       \
        }                                                                                                  \
    } while (0)

/* memory for descriptor md, filled with small values */
static dnnl_memory_t filled(const dnnl_memory_desc_t *md, dnnl_engine_t eng, unsigned seed) {
    dnnl_memory_t m;
    OK(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
    float *p;
    OK(dnnl_memory_get_data_handle(m, (void **)&p));
    fill(p, (long)(dnnl_memory_desc_get_size(md) / sizeof(float)), seed);
    return m;
}

int main(int argc, char **argv) {
    int threads = 2, reps = 10;
    const int bad = parse_args("onednn_conv", argc, argv, &threads, &reps);
    if (bad) return bad;
    omp_set_num_threads(threads); /* Debian's libdnnl runs on OpenMP */
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    OK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    OK(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags));
    const char *opname[] = {"fwd", "data", "filter"};
    double warm_until = now() + 0.5; /* the first op warms the cores up, as in conv_rate.c */
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        const Layer *ly = &layers[l];
        if (!layer_chosen(ly)) continue;
        const int Ho = layer_out(ly);
        const dnnl_dims_t xd = {ly->B, ly->C, ly->H, ly->H}, yd = {ly->B, ly->O, Ho, Ho},
                          wd = {ly->O, ly->C, ly->K, ly->K}, strides = {ly->S, ly->S}, pad = {ly->K / 2, ly->K / 2};
        const double flop = 2.0 * ly->B * ly->O * Ho * Ho * ly->C * ly->K * ly->K;
        for (int mode = 0; mode < 3; mode++) { /* nchw, blocked, blocked Winograd */
            const int blocked = mode > 0;
            const dnnl_alg_kind_t alg = mode == 2 ? dnnl_convolution_winograd : dnnl_convolution_direct;
            const dnnl_format_tag_t act = blocked ? dnnl_format_tag_any : dnnl_nchw;
            dnnl_memory_desc_t x_md, y_md, w_md;
            OK(dnnl_memory_desc_init_by_tag(&x_md, 4, xd, dnnl_f32, act));
            OK(dnnl_memory_desc_init_by_tag(&y_md, 4, yd, dnnl_f32, act));
            OK(dnnl_memory_desc_init_by_tag(&w_md, 4, wd, dnnl_f32, dnnl_format_tag_any));
            dnnl_convolution_desc_t fd;
            OK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, alg, &x_md, &w_md, NULL, &y_md, strides,
                                                  pad, pad));
            dnnl_primitive_desc_t fpd;
            if (mode == 2 && (ly->K != 3 || ly->S != 1)) continue; /* Winograd's layers */
            if (mode == 2 && dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL) != dnnl_success) {
                printf("layout=winograd layer=%s: oneDNN has no Winograd convolution for this machine\n", ly->name);
                continue;
            }
            if (mode < 2) OK(dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL));
            for (int op = 0; op < 3; op++) {
                dnnl_primitive_desc_t pd = fpd;
                if (op == 1) {
                    dnnl_convolution_desc_t d;
                    OK(dnnl_convolution_backward_data_desc_init(&d, alg, &x_md, &w_md, &y_md, strides, pad, pad));
                    OK(dnnl_primitive_desc_create(&pd, &d, NULL, eng, fpd));
                } else if (op == 2) {
                    dnnl_convolution_desc_t d;
                    OK(dnnl_convolution_backward_weights_desc_init(&d, alg, &x_md, &w_md, NULL, &y_md, strides, pad,
                                                                   pad));
                    OK(dnnl_primitive_desc_create(&pd, &d, NULL, eng, fpd));
                }
                /* the op's tensors in the layouts it chose: src/diff_src, weights/diff_weights, dst/diff_dst */
                const dnnl_query_t q[3][3] = {{dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
                                              {dnnl_query_diff_src_md, dnnl_query_weights_md, dnnl_query_diff_dst_md},
                                              {dnnl_query_src_md, dnnl_query_diff_weights_md, dnnl_query_diff_dst_md}};
                const int arg[3][3] = {{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
                                       {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST},
                                       {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST}};
                dnnl_exec_arg_t args[3];
                for (int a = 0; a < 3; a++) {
                    args[a].arg = arg[op][a];
                    args[a].memory = filled(dnnl_primitive_desc_query_md(pd, q[op][a], 0), eng, 1u + (unsigned)a);
                }
                dnnl_primitive_t prim;
                OK(dnnl_primitive_create(&prim, pd));
                const char *impl = "?";
                OK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
                double *t = malloc(sizeof(double) * (size_t)reps);
                for (int r = -1; r < reps; r++) {
                    const double t0 = now();
                    OK(dnnl_primitive_execute(prim, stream, 3, args));
                    OK(dnnl_stream_wait(stream));
                    if (r >= 0) t[r] = now() - t0;
                    else if (now() < warm_until) r--;
                }
                qsort(t, (size_t)reps, sizeof *t, cmp);
                printf("impl=%s layout=%s threads=%d layer=%s op=%s median_gflops=%.1f best_gflops=%.1f\n", impl,
                       mode == 2 ? "winograd"
                       : blocked ? "blocked"
                                 : "nchw",
                       threads, ly->name, opname[op], flop / t[reps / 2] * 1e-9, flop / t[0] * 1e-9);
                free(t);
                OK(dnnl_primitive_destroy(prim));
                for (int a = 0; a < 3; a++) OK(dnnl_memory_destroy(args[a].memory));
                if (op) OK(dnnl_primitive_desc_destroy(pd));
            }
            OK(dnnl_primitive_desc_destroy(fpd));
        }
    }
    OK(dnnl_stream_destroy(stream));
    OK(dnnl_engine_destroy(eng));
    return 0;
}
