/* attention_on_host.cpp - the CUDA attention block functions (templates/cuda_attention.cuh)
 * run on the CPU, without a GPU: the device text compiled as C++ with the CUDA built-ins
 * stood in for (a block is MLC_ATTN_THREADS threads, __shared__ arrays are shared by
 * them, __syncthreads() is a barrier), every block of the grid run in turn. The results
 * are held to the C kernels (runtime/kernels/c/attention.c, which tests/kernels/ holds to
 * the naive computation): forward, statistics, dq, dk, dv, causal and not, several blocks
 * of queries and keys, cross attention, T = 1 and scores past expf's range; and inputs
 * stored as bfloat16 against the same values in floats, bit for bit.
 *
 * Built and run by test_cuda_emit (cuda_emit/attention_device_code_runs_on_the_host):
 *   g++ -std=c++17 -pthread -I runtime/kernels -I templates attention_on_host.cpp
 *       -L LIBDIR -lmlckernels -lopenblas -fopenmp
 * Prints one line per case; exits 1 on a mismatch. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <thread>
#include <vector>

/* ---- the CUDA built-ins the block functions use ---- */
struct mlc_host_index {
    unsigned x;
};
static mlc_host_index blockIdx;
static thread_local mlc_host_index threadIdx;
static pthread_barrier_t block_barrier;
#define __device__
#define __forceinline__ inline
#define __shared__ static
static inline void __syncthreads() { pthread_barrier_wait(&block_barrier); }

#include "cuda_attention.cuh"

#define restrict __restrict__
extern "C" {
#include "mlc_kernels.h"
}

/* Runs f (one thread's work) on every block of `blocks`, MLC_ATTN_THREADS threads each. */
template <class F> static void launch(unsigned blocks, F f) {
    pthread_barrier_init(&block_barrier, NULL, MLC_ATTN_THREADS);
    for (unsigned b = 0; b < blocks; b++) {
        blockIdx.x = b;
        std::vector<std::thread> team;
        for (unsigned t = 0; t < MLC_ATTN_THREADS; t++) team.emplace_back([t, &f] {
            threadIdx.x = t;
            f();
        });
        for (auto &th : team) th.join();
    }
    pthread_barrier_destroy(&block_barrier);
}

static std::vector<float> random_floats(long n, unsigned s, float range) {
    std::vector<float> v((size_t)n);
    for (auto &x : v) s = s * 1103515245u + 12345u, x = range * ((float)((s >> 8) & 0xffff) / 32768.0f - 1.0f);
    return v;
}

/* The largest |got - want| over the largest |want|. */
static double rel_err(const std::vector<float> &got, const std::vector<float> &want) {
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < want.size(); i++) d = fmax(d, fabs(got[i] - want[i])), m = fmax(m, fabs(want[i]));
    return d / m;
}

template <int D, int E> static int run_case(long BH, long T, long S, int causal, float scale, float range, double tol) {
    std::vector<float> q = random_floats(BH * T * D, 1, range), k = random_floats(BH * S * D, 2, range),
                       v = random_floats(BH * S * E, 3, 1), dout = random_floats(BH * T * E, 4, 1);
    /* the C kernels */
    mlc_attn_geom g = {T, S, D, E, scale, causal};
    std::vector<float> o((size_t)(BH * T * E)), st((size_t)(BH * T * 2)), dq((size_t)(BH * T * D)),
        dkv((size_t)(BH * S * (D + E)));
    mlc_attention_fwd(&g, BH, q.data(), k.data(), v.data(), o.data());
    mlc_attention_stats(&g, BH, q.data(), k.data(), o.data(), dout.data(), st.data());
    mlc_attention_bwd_q(&g, BH, q.data(), k.data(), v.data(), dout.data(), st.data(), dq.data());
    mlc_attention_bwd_kv(&g, BH, q.data(), k.data(), v.data(), dout.data(), st.data(), dkv.data());
    /* the device functions, each fed the C kernels' inputs */
    std::vector<float> co(o.size()), cst(st.size()), cdq(dq.size()), cdkv(dkv.size());
    launch(mlc_attn_grid(BH, T), [&] {
        mlc_attention_rows<D, E, true>(BH, T, S, scale, causal, q.data(), k.data(), v.data(), (const float *)NULL, (const float *)NULL,
                                        co.data());
    });
    launch(mlc_attn_grid(BH, T), [&] {
        mlc_attention_rows<D, E, false>(BH, T, S, scale, causal, q.data(), k.data(), (const float *)NULL, o.data(), dout.data(),
                                        cst.data());
    });
    launch(mlc_attn_grid(BH, T), [&] {
        mlc_attention_bwd_q_rows<D, E>(BH, T, S, scale, causal, q.data(), k.data(), v.data(), dout.data(), st.data(),
                                       cdq.data());
    });
    launch(mlc_attn_grid(BH, S), [&] {
        mlc_attention_bwd_kv_rows<D, E>(BH, T, S, scale, causal, q.data(), k.data(), v.data(), dout.data(), st.data(),
                                        cdkv.data());
    });
    /* dk and dv apart */
    std::vector<float> dk, dv, cdk, cdv;
    for (long x = 0; x < BH * S * (D + E); x++) {
        (x % (D + E) < D ? dk : dv).push_back(dkv[(size_t)x]);
        (x % (D + E) < D ? cdk : cdv).push_back(cdkv[(size_t)x]);
    }
    const double err[5] = {rel_err(co, o), rel_err(cst, st), rel_err(cdq, dq), rel_err(cdk, dk), rel_err(cdv, dv)};
    const char *names[5] = {"o", "stats", "dq", "dk", "dv"};
    int bad = 0;
    printf("BH %ld T %ld S %ld D %d E %d causal %d:", BH, T, S, D, E, causal);
    for (int i = 0; i < 5; i++) {
        printf(" %s %.2e", names[i], err[i]);
        if (!(err[i] <= tol)) printf(" (> %.0e)", tol), bad = 1;
    }
    printf("\n");
    return bad;
}

/* Inputs stored as bfloat16 (mlc_bf16, --precision bf16 on the CUDA target) give the bits
 * the same values in floats give: the block functions read each input through its own
 * type, and every value a bfloat16 holds is a float. */
template <int D, int E> static int run_stored(long BH, long T, long S, int causal, float scale) {
    std::vector<float> in[4] = {random_floats(BH * T * D, 5, 1), random_floats(BH * S * D, 6, 1),
                                random_floats(BH * S * E, 7, 1), random_floats(BH * T * E, 8, 1)};
    std::vector<mlc_bf16> h[4];
    for (int i = 0; i < 4; i++)
        for (float &x : in[i]) {
            x = mlc_round_bf16(x);
            h[i].push_back(mlc_bf16{});
            h[i].back() = x;
        }
    std::vector<float> st((size_t)(BH * T * 2), 0.5f); /* any statistics: both runs read the same */
    std::vector<float> out[2][4];
    for (int r = 0; r < 2; r++) {
        out[r][0].resize((size_t)(BH * T * E)), out[r][1].resize((size_t)(BH * T * 2));
        out[r][2].resize((size_t)(BH * T * D)), out[r][3].resize((size_t)(BH * S * (D + E)));
    }
    const float *o = in[3].data(); /* stands in for the forward's output: read as floats */
    const float *f[4] = {in[0].data(), in[1].data(), in[2].data(), in[3].data()};
    const mlc_bf16 *b[4] = {h[0].data(), h[1].data(), h[2].data(), h[3].data()};
    launch(mlc_attn_grid(BH, T), [&] {
        mlc_attention_rows<D, E, true>(BH, T, S, scale, causal, f[0], f[1], f[2], (const float *)NULL,
                                        (const float *)NULL, out[0][0].data());
        mlc_attention_rows<D, E, true>(BH, T, S, scale, causal, b[0], b[1], b[2], (const float *)NULL,
                                        (const float *)NULL, out[1][0].data());
        mlc_attention_rows<D, E, false>(BH, T, S, scale, causal, f[0], f[1], (const float *)NULL, o, f[3],
                                        out[0][1].data());
        mlc_attention_rows<D, E, false>(BH, T, S, scale, causal, b[0], b[1], (const float *)NULL, o, b[3],
                                        out[1][1].data());
        mlc_attention_bwd_q_rows<D, E>(BH, T, S, scale, causal, f[0], f[1], f[2], f[3], st.data(), out[0][2].data());
        mlc_attention_bwd_q_rows<D, E>(BH, T, S, scale, causal, b[0], b[1], b[2], b[3], st.data(), out[1][2].data());
    });
    launch(mlc_attn_grid(BH, S), [&] {
        mlc_attention_bwd_kv_rows<D, E>(BH, T, S, scale, causal, f[0], f[1], f[2], f[3], st.data(), out[0][3].data());
        mlc_attention_bwd_kv_rows<D, E>(BH, T, S, scale, causal, b[0], b[1], b[2], b[3], st.data(), out[1][3].data());
    });
    int bad = 0;
    for (int i = 0; i < 4; i++) bad |= out[0][i] != out[1][i];
    printf("bf16 storage, BH %ld T %ld S %ld D %d E %d causal %d: %s\n", BH, T, S, D, E, causal,
           bad ? "the bits differ" : "the same bits");
    return bad;
}

int main(void) {
    int bad = 0;
    bad |= run_stored<32, 32>(2, 150, 150, 1, 0.1767767f);
    bad |= run_stored<7, 3>(2, 20, 70, 0, 0.3779645f);
    bad |= run_case<32, 32>(3, 37, 37, 0, 0.1767767f, 1, 1e-5);
    bad |= run_case<32, 32>(2, 150, 150, 1, 0.1767767f, 1, 1e-5); /* several blocks and tiles */
    bad |= run_case<24, 24>(2, 150, 150, 0, 0.2041241f, 1, 1e-5);
    bad |= run_case<5, 5>(1, 1, 1, 1, 0.4472136f, 1, 1e-5);      /* T = 1 */
    bad |= run_case<7, 3>(2, 20, 70, 0, 0.3779645f, 1, 1e-5);    /* cross attention */
    bad |= run_case<7, 3>(2, 70, 20, 1, 0.3779645f, 1, 1e-5);
    bad |= run_case<16, 16>(2, 80, 80, 1, 10.0f, 3, 1e-3);       /* scores up to 1440 */
    printf("%s\n", bad ? "MISMATCH" : "ok");
    return bad;
}
