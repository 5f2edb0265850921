"""bench/gpu/kernel_profile.py - instruments a generated CUDA model so that its train step
reports, on the GPU, each node's kernel time, and for the fused elementwise kernels their
bandwidth against a device-to-device copy of the same bytes timed in the same process.

usage: kernel_profile.py MODEL.cu -o MODEL_prof.cu [--top N]

Runs where the model is generated (no GPU needed); bench/gpu/prepare.sh links the result
with bench/step_timer.c, and bench/gpu/run.sh runs it on the GPU machine. The program
prints its table after PROF_SKIP + PROF_STEPS train steps (run it with at least that many
steps and --warmup 0):

  kernel NODE OPS bytes=B us=T GBps=R copy_us=T copy_GBps=R ratio=X
  node NODE us=T
  op OP us=T nodes=N
  copy bytes=B us=T GBps=R                      (the reference: one large copy)

How a node is timed. Before each node's code the train step launches a one-thread spin
kernel (~20 us) and then records a start event; the node's launches are queued while the
GPU spins, so the time from that event to the end event recorded after the node's last
launch is the node's GPU time, not the host's launch latency. Medians over PROF_STEPS
steps.

What a kernel moves. The generated kernels are grid-stride loops over `count_` items whose
index is split into named loop indices (`i2 = r % 784`, ...). An array access's footprint
is the product of the extents of the indices it uses (a bias read as `b[i1]` touches 32
floats, not B*25088); where an index is not one of those, the array's declared shape
counts, or nothing for a parameter (only broadcast reads of parameters look like that).
Bytes = 4 x (footprint of each array read + footprint of each array written). Only
kernels with a single loop (no inner reduction loop) are listed, and only nodes whose code
is exactly one such launch. The copy it is compared with moves the same bytes (half read,
half written) with cudaMemcpyAsync, timed the same way; both can hit the 50 MB L2 when
their data is small, so the large reference copy is printed too."""
import argparse
import re
import sys

PRELUDE = r"""
/* ---- bench/gpu/kernel_profile.py: per-node GPU timing ---- */
/* the marks are host work between launches, which a CUDA graph's replay would not repeat */
__attribute__((constructor)) static void prof_no_graphs(void) { setenv("MLC_CUDA_GRAPHS", "0", 1); }
#define PROF_N %(n)d
#define PROF_SKIP 3
#define PROF_STEPS 20
#define PROF_SPIN_NS 20000LL
static const char *const prof_what[PROF_N] = {%(names)s};
static const char *const prof_ops[PROF_N] = {%(ops)s};
static cudaEvent_t prof_ev0[PROF_N], prof_ev1[PROF_N];
static double prof_bytes[PROF_N];
static float prof_ms[PROF_STEPS][PROF_N];
static int prof_cur = -1, prof_step, prof_ready;

static __global__ void prof_spin(long long ns) {
    long long t0, t;
    asm volatile("mov.u64 %%0, %%%%globaltimer;" : "=l"(t0));
    do asm volatile("mov.u64 %%0, %%%%globaltimer;" : "=l"(t)); while (t - t0 < ns);
}

/* Reference kernels for the largest fused kernel's bytes: y = a + b, one float per thread
 * in a grid-stride loop as mlc emits them, and four floats per thread (float4). */
static __global__ void prof_add1(long n, const float *a, const float *b, float *y) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) y[i] = a[i] + b[i];
}
static __global__ void prof_add4(long n4, const float4 *a, const float4 *b, float4 *y) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n4; i += (long)gridDim.x * blockDim.x) {
        const float4 u = a[i], v = b[i];
        y[i] = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
    }
}

static int prof_cmp(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The median over the steps of node k's time, ms. */
static float prof_median(int k) {
    float v[PROF_STEPS];
    for (int s = 0; s < PROF_STEPS; s++) v[s] = prof_ms[s][k];
    qsort(v, PROF_STEPS, sizeof(float), prof_cmp);
    return v[PROF_STEPS / 2];
}

/* What prof_time_ms times: a device-to-device copy of n bytes from src to dst, or
 * y = a + b over n floats (src = a, b after it, dst = y), one float or four a thread. */
typedef enum { PROF_COPY, PROF_ADD1, PROF_ADD4 } prof_what_t;

static void prof_launch(cudaStream_t s, prof_what_t what, char *dst, const char *src, size_t n) {
    const float *a = (const float *)src, *b = a + n;
    if (what == PROF_COPY) MLC_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, s));
    else if (what == PROF_ADD1) prof_add1<<<mlc_grid((long)n), MLC_BLOCK, 0, s>>>((long)n, a, b, (float *)dst);
    else prof_add4<<<mlc_grid((long)n / 4), MLC_BLOCK, 0, s>>>((long)n / 4, (const float4 *)a, (const float4 *)b, (float4 *)dst);
}

/* Median time, ms, of 11 runs of one of those, spun up like the nodes. */
static float prof_time_ms(cudaStream_t s, prof_what_t what, char *dst, const char *src, size_t n) {
    float v[11];
    cudaEvent_t e0, e1;
    MLC_CUDA_CHECK(cudaEventCreate(&e0));
    MLC_CUDA_CHECK(cudaEventCreate(&e1));
    for (int r = 0; r < 11; r++) {
        prof_spin<<<1, 1, 0, s>>>(PROF_SPIN_NS);
        MLC_CUDA_CHECK(cudaEventRecord(e0, s));
        prof_launch(s, what, dst, src, n);
        MLC_CUDA_CHECK(cudaGetLastError());
        MLC_CUDA_CHECK(cudaEventRecord(e1, s));
        MLC_CUDA_CHECK(cudaEventSynchronize(e1));
        MLC_CUDA_CHECK(cudaEventElapsedTime(&v[r], e0, e1));
    }
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    qsort(v, 11, sizeof(float), prof_cmp);
    return v[5];
}

static void prof_report(cudaStream_t s) {
    float med[PROF_N], total = 0;
    for (int k = 0; k < PROF_N; k++) total += med[k] = prof_median(k);
    printf("profile steps=%%d step_us=%%.1f (sum of node medians, spins excluded)\n", PROF_STEPS, 1e3 * total);
    /* the elementwise kernels, largest first, each against a copy of its bytes */
    int order[PROF_N], m = 0;
    for (int k = 0; k < PROF_N; k++)
        if (prof_bytes[k] > 0) order[m++] = k;
    for (int i = 1; i < m; i++)
        for (int j = i; j > 0 && prof_bytes[order[j]] > prof_bytes[order[j - 1]]; j--) {
            int t = order[j]; order[j] = order[j - 1], order[j - 1] = t;
        }
    const size_t big = (size_t)1 << 30;
    char *buf;
    MLC_CUDA_CHECK(cudaMalloc((void **)&buf, big));
    MLC_CUDA_CHECK(cudaMemsetAsync(buf, 0, big, s));
    for (int i = 0; i < m && i < %(top)d; i++) {
        const int k = order[i];
        const size_t half = ((size_t)(prof_bytes[k] / 2) + 255) / 256 * 256;
        const float c = prof_time_ms(s, PROF_COPY, buf + big / 2, buf, half);
        const double gbps = prof_bytes[k] / (1e6 * med[k]), cgbps = 2.0 * (double)half / (1e6 * c);
        printf("kernel %%s %%s bytes=%%.0f us=%%.2f GBps=%%.0f copy_us=%%.2f copy_GBps=%%.0f ratio=%%.2f\n", prof_what[k],
               prof_ops[k], prof_bytes[k], 1e3 * med[k], gbps, 1e3 * c, cgbps, gbps / cgbps);
    }
    const float c = prof_time_ms(s, PROF_COPY, buf + big / 2, buf, big / 2);
    printf("copy bytes=%%zu us=%%.1f GBps=%%.0f\n", big, 1e3 * c, (double)big / (1e6 * c));
    if (m > 0) { /* y = a + b over the largest kernel's bytes: scalar as emitted, and float4 */
        const size_t n = ((size_t)(prof_bytes[order[0]] / 12) + 3) / 4 * 4;
        for (int v = 0; v < 2; v++) {
            const float t = prof_time_ms(s, v ? PROF_ADD4 : PROF_ADD1, buf + 8 * n, buf, n);
            printf("ref %%s bytes=%%zu us=%%.2f GBps=%%.0f\n", v ? "add_float4" : "add_scalar", 12 * n, 1e3 * t,
                   12.0 * (double)n / (1e6 * t));
        }
    }
    MLC_CUDA_CHECK(cudaFree(buf));
    for (int k = 0; k < PROF_N; k++) printf("node %%s us=%%.2f\n", prof_what[k], 1e3 * med[k]);
    fflush(stdout);
}

/* Closes the node running now (its end event), then opens node k (-1: the step ends).
 * prof_pause closes it early: forward_backward's last node ends before its loss copy,
 * and update's first mark must not move that end. */
static int prof_paused;
static void prof_pause(cudaStream_t s) {
    if (prof_cur >= 0 && !prof_paused) MLC_CUDA_CHECK(cudaEventRecord(prof_ev1[prof_cur], s));
    prof_paused = 1;
}
static void prof_mark(int k, cudaStream_t s, double bytes) {
    if (!prof_ready) {
        for (int i = 0; i < PROF_N; i++) {
            MLC_CUDA_CHECK(cudaEventCreate(&prof_ev0[i]));
            MLC_CUDA_CHECK(cudaEventCreate(&prof_ev1[i]));
        }
        prof_ready = 1;
    }
    if (prof_cur >= 0 && !prof_paused) MLC_CUDA_CHECK(cudaEventRecord(prof_ev1[prof_cur], s));
    prof_paused = 0;
    if (k >= 0) {
        if (k != prof_cur + 1) {
            fprintf(stderr, "kernel_profile: node %%d after %%d\n", k, prof_cur);
            abort();
        }
        prof_spin<<<1, 1, 0, s>>>(PROF_SPIN_NS);
        MLC_CUDA_CHECK(cudaEventRecord(prof_ev0[k], s));
        prof_bytes[k] = bytes, prof_cur = k;
        return;
    }
    MLC_CUDA_CHECK(cudaStreamSynchronize(s));
    prof_cur = -1;
    const int row = prof_step - PROF_SKIP;
    if (row >= 0 && row < PROF_STEPS)
        for (int i = 0; i < PROF_N; i++) MLC_CUDA_CHECK(cudaEventElapsedTime(&prof_ms[row][i], prof_ev0[i], prof_ev1[i]));
    if (++prof_step == PROF_SKIP + PROF_STEPS) prof_report(s);
}
/* ---- end of kernel_profile.py's prelude ---- */
"""


def kernels(src):
    """name -> (params {array: written?}, body text, count_ expression) of each generated kernel."""
    out = {}
    for m in re.finditer(r"^static __global__ void (k\d+_\w+)\((.*?)\) \{\n(.*?)^\}", src, re.S | re.M):
        params = {}
        for p in m.group(2).split(","):
            q = re.match(r"(const )?float \*(\w+)$", p.strip())
            if q:
                params[q.group(2)] = q.group(1) is None
        count = re.search(r"const long count_ = \(long\)\((.*?)\);", m.group(3))
        out[m.group(1)] = (params, m.group(3), count.group(1) if count else None)
    return out


def extents(body, count):
    """index name -> C expression of its extent, for a single-loop kernel (else None)."""
    if body.count("for (") != 1:
        return None
    loop = re.search(r"for \(long (\w+) = blockIdx", body)
    if not loop:
        return None
    ext = {loop.group(1): f"({count})"}
    split = re.findall(r"const long (i\d+) = r % \(long\)\((\d+)\); r /= \(long\)\(\d+\);", body)
    for name, e in split:
        ext[name] = f"({e})"
    last = re.search(r"const long (i\d+) = r;", body)
    if last:
        inner = "*".join(f"({e})" for _, e in split) or "1"
        ext[last.group(1)] = f"(({count})/({inner}))"
    alias = re.search(r"const long (i\d+) = " + re.escape(loop.group(1)) + r";", body)
    if alias:
        ext[alias.group(1)] = f"({count})"
    return ext


def footprint(index, ext, declared):
    """C expression of the floats an access touches, or None when its indices are unknown."""
    names = set(re.findall(r"[A-Za-z_]\w*", index)) - {"long", "int"}
    if names and names <= set(ext):
        return "*".join(ext[n] for n in sorted(names))
    return declared


def kernel_bytes(params, body, count, shapes):
    """C expression of the bytes a single-loop kernel moves, or None."""
    ext = extents(body, count) if count else None
    if ext is None:
        return None
    reads, writes = {}, {}
    for m in re.finditer(r"\b([tp]\w*)\[([^\]]*)\](\s*=[^=])?", body):
        arr, index, assign = m.group(1), m.group(2), m.group(3)
        if arr not in params:
            continue
        f = footprint(index, ext, shapes.get(arr))
        if f is None:
            continue
        (writes if assign else reads).setdefault(arr, set()).add(f)
    terms = [f for d in (reads, writes) for fs in d.values() for f in sorted(fs)[:1]]
    return "4.0 * (" + " + ".join(f"(double)({t})" for t in terms) + ")" if terms else None


def shape_exprs(step):
    """buffer name -> C expression of its element count, from the train step's declarations."""
    out = {}
    for m in re.finditer(r"float \*const (\w+) = [^;]*; /\* f32\[([^\]]*)\] \*/", step):
        dims = [d.strip() for d in m.group(2).split(",") if d.strip()]
        out[m.group(1)] = "(" + "*".join(f"({d})" for d in dims) + ")" if dims else "1"
    return out


def function_span(src, signature):
    """[start, end) of the generated host function that begins with `signature`, end at its
    closing brace."""
    start = src.index(signature)
    return start, src.index("\n}\n", start)


def node_regions(lines):
    """The train step's node regions in a launch function's lines: a node comment and the
    lines up to the next one. Comments with no code between them (the members of a
    multi-tensor update, launched once after the last) make one region."""
    regions, cur = [], None
    for i, line in enumerate(lines):
        m = re.match(r"^    /\* (%\d+) = (\w+) ", line)
        if m and cur is not None and not any(l.strip() and not l.strip().startswith("/*") for l in cur["body"]):
            cur["ids"].append(m.group(1))
            continue
        if m and (cur is None or cur["id"] != m.group(1)):
            cur = {"id": m.group(1), "ids": [m.group(1)], "op": m.group(2), "line": i, "body": [], "ops": []}
            regions.append(cur)
        elif cur is not None:
            if line.startswith("    /* to the pinned staging buffer"):  # fb_launch's nodes end
                cur = None
                continue
            cur["body"].append(line)
            f = re.match(r"^    /\*   (?:fused|recomputed): %\d+ = (\w+)", line)
            if f:
                cur["ops"].append(f.group(1))
    return regions


def instrument(src, top):
    """The generated CUDA with prof_mark calls in the train step's launches (fb_launch and
    update_launch), and CUDA graphs off (the marks are host work between the launches, which
    a graph's replay would not repeat)."""
    ks = kernels(src)
    spans = [function_span(src, "static void fb_launch("), function_span(src, "static void update_launch(")]
    shapes = shape_exprs(src[spans[0][0]:spans[0][1]])
    parts = [src[a:b].split("\n") for a, b in spans]
    regions = []
    for lines in parts:
        regions.append(node_regions(lines))
    if not regions[0]:
        sys.exit("kernel_profile.py: no train step nodes found (was it emitted with --target cuda?)")
    k = 0
    out_parts = []
    for p, (lines, rs) in enumerate(zip(parts, regions)):
        marks = {}
        for r in rs:
            body = "\n".join(r["body"])
            launches = re.findall(r"\b(k\d+_\w+)<<<", body)
            other = re.search(r"cublas|mlc_cuda_|mlc_\w+_kernel<<<|cudaMemcpy", body)
            expr = None
            if len(launches) == 1 and not other and launches[0] in ks and len(r["ids"]) == 1:
                expr = kernel_bytes(*ks[launches[0]], shapes)
            marks[r["line"]] = f"    prof_mark({k}, stream, {expr or '-1.0'});"
            r["label"] = "+".join(r["ops"] + [r["op"]])
            r["k"] = k
            k += 1
        out = []
        for i, line in enumerate(lines):
            if i in marks:
                out.append(marks[i])
            if p == 0 and line.startswith("    /* to the pinned staging buffer"):
                out.append("    prof_pause(stream);")
            out.append(line)
        if p == 1:
            out.append("    prof_mark(-1, stream, 0);")  # the end of update_launch: the step ends
        out_parts.append("\n".join(out))
    allr = regions[0] + regions[1]
    prelude = PRELUDE % {
        "n": len(allr),
        "names": ", ".join(f'"{r["op"]}:{"+".join(r["ids"])}"' for r in allr),
        "ops": ", ".join(f'"{r["label"]}"' for r in allr),
        "top": top,
    }
    cut = src.index("/* ---- end of prologue ---- */")
    cut = src.index("\n", cut) + 1
    (a0, b0), (a1, b1) = spans
    return (src[:cut] + prelude + src[cut:a0] + out_parts[0] + src[b0:a1] + out_parts[1] + src[b1:])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cu")
    ap.add_argument("-o", required=True)
    ap.add_argument("--top", type=int, default=10, help="elementwise kernels compared with a copy")
    a = ap.parse_args()
    with open(a.cu) as f:
        src = f.read()
    with open(a.o, "w") as f:
        f.write(instrument(src, a.top))


if __name__ == "__main__":
    main()
