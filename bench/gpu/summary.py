"""bench/gpu/summary.py GPU.LOG - the Markdown summary of a bench/gpu/run.sh log: C against
CUDA, step times and memory against PyTorch eager, the largest fused elementwise kernels'
bandwidth against a device-to-device copy, where the GPU time of a step goes, and the CUDA
trainers' accuracies."""
import re
import sys

SAMPLES = ("mlp", "lenet", "resnet", "resnet20_cifar")


def node_times(log, model):
    """{node id: GPU us} from a profile's `node OP:ID+ID us=T` lines, each id of a region
    given the region's time."""
    times = {}
    for l in log:
        if l.startswith(f"{model} node "):
            ids = l.split()[2].split(":")[1]
            for i in ids.split("+"):
                times[i] = float(fields(l)["us"])
    return times


def conv_fusions(log, model):
    """{conv node id: epilogue node id} where the model's build runs a conv's epilogue in
    the conv's own call (`epilogue %N in its store`, or `in its fused call` on cuDNN)."""
    out = {}
    for l in log:
        m = re.match(rf"{model} convs\s+train\s+%(\d+)\s.*epilogue %(\d+) in its (store|fused call)", l)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def conv_table(log, a, b):
    """Markdown rows: each train-step convolution (mlc --report's lines, logged as `MODEL
    convs ...`) with its node's time in the profiles of builds a and b. Where one build runs
    the op's epilogue in the op's call and the other does not, the other's time adds that of
    the epilogue's own kernel, so both sides count the same work."""
    ta, tb = node_times(log, a), node_times(log, b)
    fa, fb = conv_fusions(log, a), conv_fusions(log, b)
    rows = []
    for l in log:
        m = re.match(rf"{b} convs\s+train\s+%(\d+)\s+(\S+)\s+(.+?)\s{{2,}}\S", l)
        if m and m.group(1) in ta and m.group(1) in tb:
            i, op = m.group(1), m.group(2)
            ep = fa.get(i) or fb.get(i)
            t_a = ta[i] + (ta.get(ep, 0.0) if ep and i not in fa else 0.0)
            t_b = tb[i] + (tb.get(ep, 0.0) if ep and i not in fb else 0.0)
            if ep:
                op += f" + epilogue %{ep}"
            rows.append(f"| %{i} | {op} | {m.group(3)} | {t_a:.1f} | {t_b:.1f} | {t_b / t_a:.2f} |")
    return rows


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def main():
    with open(sys.argv[1]) as f:
        log = [line.rstrip("\n") for line in f]
    out = []
    dev = next((l[len("device "):] for l in log if l.startswith("device ")), "?")
    out.append(f"# mlc CUDA trainers on {dev}\n")

    out.append("## CUDA against C (every persistent tensor's sum, sum of squares and sum of magnitudes, the losses, "
               "the eval outputs)\n")
    out.append("A line differs when a value is off by more than a relative 2e-3 (4e-3 for the bf16 builds; a "
               "tensor's sum relative to its sum of magnitudes: tests/compiler/gpu/compare_steps.awk). Training "
               "amplifies rounding, "
               "and Adam's first step moves each weight by about lr * sign(gradient), so a gradient within rounding "
               "of zero can flip its update. So beside each count is the count between two C builds that differ "
               "only in rounding (FMA contraction). agree: no line differs after 1 step; within rounding: no more "
               "lines than between the two C builds.\n")
    out.append("| model | verdict | lines differing after 1 step: CUDA vs C | C with FMA vs C | after 5 steps: "
               "CUDA vs C | C with FMA vs C | losses of the 5 steps, CUDA | C |\n|---|---|---|---|---|---|---|---|")
    for l in log:
        m = re.match(r"compare (\S+) (\S+)(.*)", l)
        if m:
            f = fields(m.group(3))
            out.append(f"| {m.group(1)} | {m.group(2).replace('_', ' ')} | {f.get('step1_differ', '')} of "
                       f"{f.get('lines', '')} | {f.get('fma_step1_differ', '')} | {f.get('step5_differ', '')} | "
                       f"{f.get('fma_step5_differ', '')} | {f.get('losses', '').rstrip(',')} | "
                       f"{f.get('c_losses', '').rstrip(',')} |")

    graphs = [l.split(" ", 2)[1:] for l in log if l.startswith("graphs ")]
    if graphs:
        out.append("\nCUDA graphs against the same steps launched one by one (`MLC_CUDA_GRAPHS=0`), 5 steps: " +
                   ", ".join(f"{g[0]} {'the same bits' if g[1].strip() == 'same_bits' else g[1].strip()}"
                             for g in graphs) + ".")

    batches = [l.split(" ", 2)[1:] for l in log if l.startswith("batches ")]
    if batches:
        out.append("\nBatch sizes 1 to 13 in turn (`tests/compiler/gpu/batch_sizes.c`, more graphs than the cache "
                   "holds), lines differing from C, and graphs against launches one by one: " +
                   ", ".join(f"{b[0]} {b[1].strip()}" for b in batches) + ".")

    mlc, torch = {}, {}
    for l in log:
        if l.startswith("mlc model="):
            f = fields(l)
            mlc[f["model"]] = f
        elif l.startswith("mlc_nographs model="):
            f = fields(l)
            mlc[(f["model"], "nographs")] = f
        elif l.startswith("mlc_tf32 model="):
            f = fields(l)
            mlc[(f["model"], "tf32")] = f
        elif l.startswith("mlc_bf16 model="):
            f = fields(l)
            mlc[(f["model"], "bf16")] = f
        elif l.startswith(("mlc_bf16i model=", "mlc_bf16d model=", "mlc_tf32i model=", "mlc_fp32i model=", "mlc_tf32d model=",
                           "mlc_fp32d model=", "mlc_lt model=")):
            f = fields(l)
            mlc[(f["model"], l.split()[0][4:])] = f
        elif l.startswith("torch model=") and "median_ms" in l:
            f = fields(l)
            t = f["target"]
            torch[(f["model"], "bf16" if t.endswith("-bf16") else t.endswith("-notf32"))] = f
    out.append("\n## Train step: mlc CUDA against PyTorch eager, same GPU (median of 200 steps after 20)\n")
    out.append("| | " + " | ".join(SAMPLES) + " |\n|---|" + "---|" * len(SAMPLES))

    def row(name, fn):
        cells = []
        for s in SAMPLES:
            try:
                cells.append(fn(s))
            except (KeyError, ValueError, ZeroDivisionError):
                cells.append("")
        out.append(f"| {name} | " + " | ".join(cells) + " |")

    row("batch", lambda s: mlc[s]["batch"])
    def mlc_ms(s, kind):  # mlc's median step, ms; kind None: the default build
        return float(mlc[s if kind is None else (s, kind)]["median_ms"])

    def torch_ms(s, kind):  # PyTorch's: kind False (defaults), True (full FP32), "bf16"
        return float(torch[(s, kind)]["median_ms"])

    def ms(kind):
        return lambda s: f"{mlc_ms(s, kind):.3f}"

    def ratio(kind, tkind):
        return lambda s: f"**{mlc_ms(s, kind) / torch_ms(s, tkind):.2f}**"

    row("mlc step, ms", ms(None))
    row("mlc step launched one by one (MLC_CUDA_GRAPHS=0), ms", ms("nographs"))
    row("PyTorch step, ms (defaults: cuDNN may use TF32)", lambda s: f"{torch_ms(s, False):.3f}")
    row("PyTorch step, ms (full FP32)", lambda s: f"{torch_ms(s, True):.3f}")
    row("**mlc / PyTorch (defaults)**", ratio(None, False))
    row("**mlc / PyTorch (full FP32)**", ratio(None, True))
    row("mlc step built with --tf32, ms", ms("tf32"))
    row("**mlc --tf32 / PyTorch (defaults)**", ratio("tf32", False))
    row("mlc step built with --precision bf16, ms", ms("bf16"))
    row("PyTorch step, ms (autocast bf16, channels_last)", lambda s: f"{torch_ms(s, 'bf16'):.3f}")
    row("**mlc bf16 / PyTorch (autocast bf16)**", ratio("bf16", "bf16"))
    row("mlc --conv-algo implicit (FP32), ms", ms("fp32i"))
    row("**mlc implicit FP32 / PyTorch (full FP32)**", ratio("fp32i", True))
    row("mlc --tf32 --conv-algo implicit, ms", ms("tf32i"))
    row("mlc --conv-algo cudnn (FP32), ms", ms("fp32d"))
    row("**mlc cudnn FP32 / PyTorch (full FP32)**", ratio("fp32d", True))
    row("mlc --tf32 --conv-algo cudnn, ms", ms("tf32d"))
    row("**mlc --tf32 cudnn / PyTorch (defaults)**", ratio("tf32d", False))
    row("mlc bf16 --conv-algo implicit, ms", ms("bf16i"))
    row("**mlc bf16 implicit / PyTorch (autocast bf16)**", ratio("bf16i", "bf16"))
    row("mlc bf16 --conv-algo cudnn, ms", ms("bf16d"))
    row("**mlc bf16 cudnn / PyTorch (autocast bf16)**", ratio("bf16d", "bf16"))
    row("mlc step built with --cublaslt, ms", ms("lt"))
    row("**mlc --cublaslt / PyTorch (defaults)**", ratio("lt", False))
    row("losses after the timed steps, mlc / PyTorch", lambda s: f"{mlc[s]['loss']} / {torch[(s, True)]['loss']}")
    peaks = {}
    for l in log:
        if l.startswith("torch model=") and "alloc_peak_bytes" in l:
            f = fields(l)
            peaks.setdefault(f["model"], []).append(float(f["alloc_peak_bytes"]))
    row("mlc arena, MB", lambda s: f"{float(mlc[s]['arena_bytes']) / 1e6:.1f}")
    row("PyTorch caching-allocator peak in one step, MB (defaults / FP32 / autocast bf16)",
        lambda s: " / ".join(f"{p / 1e6:.1f}" for p in peaks[s]))
    row("**arena / PyTorch peak (defaults)**", lambda s: f"**{float(mlc[s]['arena_bytes']) / peaks[s][0]:.2f}**")

    out.append("\n## The largest fused elementwise kernels against a device-to-device copy\n")
    out.append("Each kernel's time is the median over 20 steps, with the GPU kept busy so that launch latency "
               "is not counted (kernel_profile.py). Bytes: the unique elements its loop reads and writes. The copy "
               "moves the same bytes (half read, half written) in the same process; both may be served partly from "
               "the 50 MB L2.\n")
    for s in SAMPLES:
        ks = [fields(l) | {"what": l.split()[2], "ops": l.split()[3]} for l in log if l.startswith(f"{s} kernel ")]
        big = next((fields(l) for l in log if l.startswith(f"{s} copy ")), None)
        prof = next((fields(l) for l in log if l.startswith(f"{s} profile steps")), None)
        if not ks:
            continue
        refs = {l.split()[2]: fields(l) for l in log if l.startswith(f"{s} ref ")}
        out.append(f"**{s}**" + (f": 1 GiB copy {big['GBps']} GB/s" if big else "")
                   + (f"; the step's nodes add up to {float(prof['step_us']) / 1e3:.2f} ms of GPU time" if prof else "")
                   + ("; y = a + b over the largest kernel's bytes, one float a thread as mlc emits: "
                      f"{refs['add_scalar']['GBps']} GB/s, four (float4): {refs['add_float4']['GBps']} GB/s"
                      if {'add_scalar', 'add_float4'} <= set(refs) else ""))
        out.append("\n| node | fused ops | MB | µs | GB/s | copy GB/s | kernel / copy |\n|---|---|---|---|---|---|---|")
        for k in ks[:6]:
            out.append(f"| {k['what']} | {k['ops']} | {float(k['bytes']) / 1e6:.1f} | {k['us']} | {k['GBps']} | "
                       f"{k['copy_GBps']} | {k['ratio']} |")
        out.append("")
        by_op, total = {}, 0.0
        for l in log:
            if l.startswith(f"{s} node "):
                what, us = l.split()[2], float(fields(l)["us"])
                op = what.split(":")[0]
                by_op[op] = by_op.get(op, 0.0) + us
                total += us
        if total > 0:
            top = sorted(by_op.items(), key=lambda kv: -kv[1])[:6]
            out.append("GPU time by op (root of each group): "
                       + ", ".join(f"{op} {100 * us / total:.0f} %" for op, us in top) + "\n")

    for a, b, what, an, bn in (("resnet20_cifar_bf16", "resnet20_cifar_bf16i", "bf16", "im2col", "implicit"),
                               ("resnet20_cifar_bf16i", "resnet20_cifar_bf16d", "bf16", "implicit", "cudnn"),
                               ("resnet20_cifar_fp32i", "resnet20_cifar_fp32d", "FP32", "implicit", "cudnn")):
        convs = conv_table(log, a, b)
        if convs:
            out.append(f"## Convolutions per layer: {an} against {bn} (resnet20_cifar, {what})\n")
            out.append(f"Each node's GPU time, median over 20 steps (kernel_profile.py), in the {what} build with "
                       f"`--conv-algo {an}` and with `--conv-algo {bn}`: the measurements `--conv-algo auto`'s "
                       "CUDA rule is to be made from.\n")
            out.append(f"| node | op | kernel, channels, output | {an} µs | {bn} µs | {bn} / {an} |\n"
                       "|---|---|---|---|---|---|")
            out.extend(convs)
            out.append("")

    out.append("## CUDA trainers on Fashion-MNIST\n")
    section = None
    for l in log:
        if l.startswith("--- "):
            section = l[4:]
        elif section and (l.startswith("test accuracy") or re.match(r"epoch \d+/\d+ ", l)):
            if l.startswith("test accuracy") or re.match(r"epoch (\d+)/\1 ", l):
                out.append(f"- {section}: {l.strip()}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
