"""bench/summary.py - turns the raw output of one bench/run.sh run into its results.

usage: summary.py RAWDIR OUTDIR MODEL...
RAWDIR holds what run.sh collected: meta.txt, sgemm.txt and per model MODEL.report
(`mlc --report`), MODEL.compile (compile_time.py), MODEL.mlc (step_timer lines, one per
run) and MODEL.torch (torch_models.py lines, one per run, plus the --memory line); with
run.sh --isa, MODEL.mlc_ISA and MODEL.torch_ISA, the same on another instruction set.
Writes OUTDIR/summary.md (one table: a row per quantity, a column per model),
OUTDIR/summary.png (with matplotlib, if /usr/bin/python3 has it), OUTDIR/steps.md (the
step-time table README.md cites) and OUTDIR/runs.txt (every raw key=value line), and
prints the ratios. bench/README.md says what each number is."""
import os
import re
import statistics
import sys

MB = 1e6


def kv(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


def kv_lines(path):
    with open(path) as f:
        return [kv(l) for l in f if "=" in l]


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def parse_report(path):
    """Arena bytes, FLOPs (the kernels' exact sum) and bytes saved for backward of the
    train step from `mlc --report`."""
    arena = flops = saved = None
    section = None
    with open(path) as f:
        for line in f:
            if line.startswith("== "):
                section = "train" if line.startswith("== train step") else "other"
                part = None
                if section == "train":
                    flops, saved = 0.0, 0
                continue
            if section != "train":
                continue
            if line.startswith("tensors:"):
                part = "tensors"
            elif line.startswith("kernels:"):
                part = "kernels"
            elif line.startswith("totals:"):
                arena = int(re.search(r"\((\d+) bytes", line).group(1))
                part = None  # the attention and convolution lines after it are no kernels
            elif part == "tensors" and "saved for backward" in line:
                # "  %5     add              f32[B, 256]               65536 ..."
                saved += int(re.match(r"\s+%\d+\s+\S+\s+\w+\[[^]]*\]\s+(\d+)\s", line).group(1))
            elif part == "kernels" and re.match(r"\s+%\d+", line):
                # "  %6     relu                  1        65536   ...": node, op, fused, FLOPs
                flops += float(line.split()[3])
    if arena is None or flops is None:
        sys.exit(f"summary.py: no train-step totals in {path}")
    return {"arena": arena, "flops": flops, "saved": saved}


def others_cores(load, clk_tck):
    """Cores that other processes (and the hypervisor's steal) kept busy, on average,
    while this model's timing runs ran."""
    try:
        a, b = load[0], load[1]
        busy = int(b["busy"]) - int(a["busy"]) - (int(b["own"]) - int(a["own"]))
        return max(0.0, busy / clk_tck / ((int(b["ns"]) - int(a["ns"])) * 1e-9))
    except (IndexError, KeyError, ValueError, ZeroDivisionError):
        return float("nan")


def load(raw, model, clk_tck):
    r = parse_report(os.path.join(raw, model + ".report"))
    ct = kv_lines(os.path.join(raw, model + ".compile"))[0]
    mlc = [d for d in kv_lines(os.path.join(raw, model + ".mlc")) if "median_ms" in d]
    torch = kv_lines(os.path.join(raw, model + ".torch"))
    tt = [d for d in torch if "median_ms" in d]
    mem = next((d for d in torch if "saved_bytes" in d), {})
    load = kv_lines(os.path.join(raw, model + ".load"))
    if not mlc or not tt:
        sys.exit(f"summary.py: no step times for {model} in {raw}")

    def num(d, k):
        v = d.get(k, "n/a")
        return float(v) if v != "n/a" else float("nan")

    r.update(
        vec_width=mlc[0].get("vec_width", "?"),
        batch=int(mlc[0]["batch"]),
        runs=len(mlc),
        steps=int(mlc[0]["steps"]),
        compile_ms=float(ct["median_ms"]),
        compile_runs=int(ct["runs"]),
        mlc_ms=median([float(d["median_ms"]) for d in mlc]),
        torch_ms=median([float(d["median_ms"]) for d in tt]),
        mlc_runs=[float(d["median_ms"]) for d in mlc],
        torch_runs=[float(d["median_ms"]) for d in tt],
        mlc_rss=median([float(d["peak_rss_mb"]) for d in mlc]),
        torch_rss=median([float(d["peak_rss_mb"]) for d in tt]),
        torch_saved=num(mem, "saved_bytes"),
        torch_alloc=num(mem, "alloc_peak_bytes"),
        others=others_cores(load, clk_tck),
    )
    # --mem-budget at its smallest arena (run.sh builds it when recomputation helps)
    mbp = os.path.join(raw, model + ".mlcmb")
    mb = [d for d in kv_lines(mbp) if "median_ms" in d] if os.path.exists(mbp) else []
    r["mb_ms"] = median([float(d["median_ms"]) for d in mb]) if mb else float("nan")
    r["mb_runs"] = [float(d["median_ms"]) for d in mb]
    r["mb_arena"] = parse_report(os.path.join(raw, model + ".mbreport"))["arena"] if mb else float("nan")
    # per run: achieved / the best SGEMM rate measured right before it (run.sh), then the
    # median over runs: less exposed to the machine's speed drifting between the two
    sg = kv_lines(os.path.join(raw, model + ".sgemm")) if os.path.exists(os.path.join(raw, model + ".sgemm")) else []
    fr = []
    for i, d in enumerate(mlc):
        ref = [float(e["best_gflops"]) for e in sg if e.get("rep") == str(i + 1)]
        if ref:
            fr.append(r["flops"] / (float(d["median_ms"]) * 1e-3) * 1e-9 / max(ref))
    r["sgemm_beside"] = median(fr) if fr else float("nan")
    r["sgemm_beside_runs"] = fr
    r["mlc_gflops"] = r["flops"] / (r["mlc_ms"] * 1e-3) * 1e-9
    r["torch_gflops"] = r["flops"] / (r["torch_ms"] * 1e-3) * 1e-9
    return r


def isa_rows(raw, models, R):
    """Step times per instruction set: native from the main runs, each other ISA from
    MODEL.mlc_ISA / MODEL.torch_ISA (run.sh --isa). A row: model, isa, mlc ms, PyTorch ms,
    the kernels' vector width."""
    rows = []
    for m in models:
        rows.append((m, "native", R[m]["mlc_ms"], R[m]["torch_ms"], R[m].get("vec_width", "?")))
        for f in sorted(os.listdir(raw)):
            if not f.startswith(m + ".mlc_"):
                continue
            isa = f[len(m) + 5:]
            mlc = [d for d in kv_lines(os.path.join(raw, f)) if "median_ms" in d]
            tp = os.path.join(raw, f"{m}.torch_{isa}")
            tt = [d for d in kv_lines(tp) if "median_ms" in d] if os.path.exists(tp) else []
            rows.append((m, isa, median([float(d["median_ms"]) for d in mlc]),
                         median([float(d["median_ms"]) for d in tt]), mlc[0].get("vec_width", "?") if mlc else "?"))
    return rows


def fmt(v, spec):
    return "n/a" if v != v else format(v, spec)  # NaN: not measured


def write_md(path, meta, sgemm, peak, peak_med, models, R, png, isas):
    rows = [
        ("batch", lambda r: str(r["batch"])),
        ("timed steps per run x runs per side", lambda r: f"{r['steps']} x {r['runs']}"),
        (f"cores others kept busy meanwhile (of {meta.get('cores', '?')})", lambda r: fmt(r["others"], ".2f")),
        ("**step time** mlc, ms (median)", lambda r: fmt(r["mlc_ms"], ".3f")),
        ("**step time** PyTorch, ms (median)", lambda r: fmt(r["torch_ms"], ".3f")),
        ("**mlc / PyTorch step time**", lambda r: "**" + fmt(r["mlc_ms"] / r["torch_ms"], ".2f") + "**"),
        ("peak RSS mlc trainer, MB", lambda r: fmt(r["mlc_rss"], ".1f")),
        ("peak RSS PyTorch process, MB", lambda r: fmt(r["torch_rss"], ".1f")),
        ("**mlc / PyTorch peak RSS**", lambda r: "**" + fmt(r["mlc_rss"] / r["torch_rss"], ".2f") + "**"),
        ("mlc compile time (parse to .c), ms (median)", lambda r: fmt(r["compile_ms"], ".1f")),
        ("FLOPs per train step (mlc --report)", lambda r: fmt(r["flops"] / 1e9, ".4f") + " G"),
        ("achieved mlc, GFLOP/s", lambda r: fmt(r["mlc_gflops"], ".2f")),
        ("achieved PyTorch (same FLOPs), GFLOP/s", lambda r: fmt(r["torch_gflops"], ".2f")),
        (f"**mlc % of SGEMM rate** ({peak:.1f} GFLOP/s)", lambda r: "**" + fmt(100 * r["mlc_gflops"] / peak, ".1f") + " %**"),
        (f"mlc % of the median SGEMM rate ({peak_med:.1f} GFLOP/s)", lambda r: fmt(100 * r["mlc_gflops"] / peak_med, ".1f") + " %"),
        ("**mlc % of the SGEMM rate measured beside each run** (median of runs)",
         lambda r: "**" + fmt(100 * r["sgemm_beside"], ".1f") + " %**"),
        ("PyTorch % of SGEMM rate", lambda r: fmt(100 * r["torch_gflops"] / peak, ".1f") + " %"),
        ("mlc arena peak (train step), MB", lambda r: fmt(r["arena"] / MB, ".2f")),
        ("mlc tensors saved for backward, MB", lambda r: fmt(r["saved"] / MB, ".2f")),
        ("PyTorch tensors saved for backward, MB", lambda r: fmt(r["torch_saved"] / MB, ".2f")),
        ("PyTorch allocator peak in one step, MB", lambda r: fmt(r["torch_alloc"] / MB, ".2f")),
        ("**mlc arena / PyTorch saved**", lambda r: "**" + fmt(r["arena"] / r["torch_saved"], ".2f") + "**"),
        ("mlc saved / PyTorch saved", lambda r: fmt(r["saved"] / r["torch_saved"], ".2f")),
        ("**mlc arena / PyTorch allocator peak**", lambda r: "**" + fmt(r["arena"] / r["torch_alloc"], ".2f") + "**"),
        ("mlc arena with `--mem-budget` at its smallest, MB", lambda r: fmt(r["mb_arena"] / MB, ".2f")),
        ("**... / PyTorch allocator peak**", lambda r: "**" + fmt(r["mb_arena"] / r["torch_alloc"], ".2f") + "**"),
        ("step time with that `--mem-budget`, ms (median)", lambda r: fmt(r["mb_ms"], ".3f")),
        ("... / mlc step time without it", lambda r: fmt(r["mb_ms"] / r["mlc_ms"], ".2f")),
        ("... / PyTorch step time", lambda r: fmt(r["mb_ms"] / r["torch_ms"], ".2f")),
    ]
    with open(path, "w") as f:
        f.write("# bench/run.sh results\n\n")
        f.write(f"{meta.get('date', '?')}, commit {meta.get('commit', '?')}, {meta.get('cpu', '?').replace('_', ' ')} "
                f"({meta.get('cores', '?')} cores), {meta.get('threads', '?')} threads on both sides, PyTorch "
                f"{meta.get('torch', '?')}{', --quick (rough numbers)' if meta.get('quick') == '1' else ''}. "
                "What each row is and how it is measured: bench/README.md. Ratios below 1: mlc is faster / smaller.\n\n")
        f.write("| | " + " | ".join(models) + " |\n|---|" + "---|" * len(models) + "\n")
        for name, get in rows:
            f.write(f"| {name} | " + " | ".join(get(R[m]) for m in models) + " |\n")
        f.write(f"\nSGEMM rate, `bench/sgemm_rate.c` ({meta.get('threads', '?')} threads through mlc_sgemm; "
                "the best of these is the reference above):\n\n")
        f.write("| M x N x K | median GFLOP/s | best GFLOP/s | 1 thread, median GFLOP/s |\n|---|---|---|---|\n")
        for d in sgemm:
            f.write(f"| {d['size']} | {d['median_gflops']} | {d['best_gflops']} | {d['one_thread_median_gflops']} |\n")
        f.write("\nPer-run step-time medians, ms (runs alternate mlc, PyTorch, mlc with `--mem-budget`, mlc, ...):\n\n")
        for m in models:
            mb = f"; with --mem-budget {', '.join(f'{x:.3f}' for x in R[m]['mb_runs'])}" if R[m]["mb_runs"] else ""
            beside = (f" (mlc at {', '.join(f'{100 * x:.1f}' for x in R[m]['sgemm_beside_runs'])} % of the SGEMM rate "
                      "measured just before)") if R[m]["sgemm_beside_runs"] else ""
            f.write(f"- {m}: mlc {', '.join(f'{x:.3f}' for x in R[m]['mlc_runs'])}{beside}; "
                    f"PyTorch {', '.join(f'{x:.3f}' for x in R[m]['torch_runs'])}{mb}\n")
        if len(isas) > len(models):
            f.write("\nStep time per instruction set (run.sh --isa; native: -march=native and PyTorch as it is; "
                    "avx2: -march=x86-64-v3 and PyTorch's oneDNN and ATen limited to AVX2), runs interleaved:\n\n")
            f.write("| model | instruction set | mlc kernels' vector width | mlc median ms | PyTorch median ms | "
                    "mlc / PyTorch |\n|---|---|---|---|---|---|\n")
            for m, isa, a, b, vw in isas:
                f.write(f"| {m} | {isa} | {vw} | {fmt(a, '.3f')} | {fmt(b, '.3f')} | {fmt(a / b, '.2f')} |\n")
        if png:
            f.write("\n![step time, throughput and memory](summary.png)\n")


def write_steps_md(path, meta, models, R):
    with open(path, "w") as f:
        f.write("| model | batch | threads | mlc median ms | PyTorch median ms | mlc / PyTorch |\n")
        f.write("|---|---|---|---|---|---|\n")
        for m in models:
            r = R[m]
            f.write(f"| {m} | {r['batch']} | {meta.get('threads', '?')} | {r['mlc_ms']:.4f} | {r['torch_ms']:.4f} | "
                    f"{r['mlc_ms'] / r['torch_ms']:.2f} |\n")


def plot(path, meta, peak, models, R):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(2, 2, figsize=(12, 8.5))
    x = list(range(len(models)))
    blue, orange, green, grey = "#3b75af", "#ef8636", "#519e3e", "#9a9a9a"

    def short(v):
        return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.3g}"

    def bars(a, series, title, ylabel, log=True, label_fmt=None):
        w = 0.8 / len(series)
        for i, (name, vals, color) in enumerate(series):
            xs = [j - 0.4 + w * (i + 0.5) for j in x]
            ok = [(xx, v) for xx, v in zip(xs, vals) if v == v]
            a.bar([p[0] for p in ok], [p[1] for p in ok], w, label=name, color=color)
            for xx, v in ok:
                a.annotate(label_fmt.format(v) if label_fmt else short(v), (xx, v), ha="center", va="bottom", fontsize=7,
                           xytext=(0, 1), textcoords="offset points")
        a.set_xticks(x)
        a.set_xticklabels(models)
        a.set_title(title, fontsize=10)
        a.set_ylabel(ylabel)
        if log:
            a.set_yscale("log")
            vals = [v for _, vs, _ in series for v in vs if v == v and v > 0]
            a.set_ylim(min(vals) / 2, max(vals) * 4)
        a.legend(fontsize=8, loc="upper left")
        a.grid(axis="y", alpha=0.3)

    bars(ax[0][0], [("mlc", [R[m]["mlc_ms"] for m in models], blue),
                    ("PyTorch", [R[m]["torch_ms"] for m in models], orange)],
         "train-step time, median (log scale)", "ms")
    ax[0][0].set_xticklabels([f"{m}\n{R[m]['mlc_ms'] / R[m]['torch_ms']:.2f}x" for m in models])
    ax[0][0].set_xlabel("mlc / PyTorch under each model", fontsize=8)
    bars(ax[0][1], [("mlc", [R[m]["mlc_gflops"] for m in models], blue),
                    ("PyTorch", [R[m]["torch_gflops"] for m in models], orange)],
         "achieved GFLOP/s (mlc --report FLOPs / step time)", "GFLOP/s", log=False, label_fmt="{:.1f}")
    ax[0][1].axhline(peak, color=grey, ls="--", lw=1)
    ax[0][1].annotate(f"SGEMM rate {peak:.0f}", (0.99, peak), xycoords=("axes fraction", "data"), ha="right",
                      va="bottom", fontsize=8, color="#555555")
    ax[0][1].set_ylim(0, peak * 1.15)
    bars(ax[1][0], [("mlc arena", [R[m]["arena"] / MB for m in models], blue),
                    ("mlc saved for backward", [R[m]["saved"] / MB for m in models], "#9cc0e3"),
                    ("PyTorch saved for backward", [R[m]["torch_saved"] / MB for m in models], orange),
                    ("PyTorch allocator peak / step", [R[m]["torch_alloc"] / MB for m in models], "#f6c08f")],
         "activation memory of one train step (log scale)", "MB")
    bars(ax[1][1], [("mlc trainer", [R[m]["mlc_rss"] for m in models], blue),
                    ("PyTorch process", [R[m]["torch_rss"] for m in models], orange)],
         "peak RSS (log scale)", "MB")
    fig.suptitle(f"mlc vs PyTorch {meta.get('torch', '')}, {meta.get('threads', '?')} threads, "
                 f"{meta.get('cpu', '').replace('_', ' ')}, {meta.get('date', '')}"
                 f"{'  (--quick)' if meta.get('quick') == '1' else ''}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main():
    raw, out, models = sys.argv[1], sys.argv[2], sys.argv[3:]
    meta = {}
    for d in kv_lines(os.path.join(raw, "meta.txt")):
        meta.update(d)
    sgemm = kv_lines(os.path.join(raw, "sgemm.txt"))
    peak = max(float(d["best_gflops"]) for d in sgemm)
    # the best size's median: a rate measured like the step times (medians), less sensitive
    # to one lucky repetition on a shared machine
    peak_med = max(float(d["median_gflops"]) for d in sgemm)
    R = {m: load(raw, m, int(meta.get("clk_tck", 100))) for m in models}
    os.makedirs(out, exist_ok=True)
    png = os.path.join(out, "summary.png")
    plotted = plot(png, meta, peak, models, R)
    if plotted:
        print(f"plot written to {png}")
    else:
        print(f"summary.py: matplotlib missing: {png} not written", file=sys.stderr)
    isas = isa_rows(raw, models, R)
    write_md(os.path.join(out, "summary.md"), meta, sgemm, peak, peak_med, models, R, plotted, isas)
    write_steps_md(os.path.join(out, "steps.md"), meta, models, R)
    with open(os.path.join(out, "runs.txt"), "w") as f:
        isa_files = [f for m in models for f in sorted(os.listdir(raw)) if f.startswith((m + ".mlc_", m + ".torch_"))]
        for name in ["meta.txt", "sgemm.txt"] + [f"{m}.{k}" for m in models for k in ("compile", "load", "mlc", "torch", "mlcmb", "sgemm")] + isa_files:
            if not os.path.exists(os.path.join(raw, name)):
                continue  # no --mem-budget run for a model recomputation does not help
            with open(os.path.join(raw, name)) as g:
                f.writelines(f"{name}: {l}" for l in g if "=" in l)
    print(f"table written to {os.path.join(out, 'summary.md')}\n")
    print(f"ratios ({meta.get('threads', '?')} threads; below 1: mlc faster / smaller; SGEMM rate {peak:.1f} GFLOP/s):")
    print(f"  {'model':<16}{'step mlc/PT':>12}{'RSS mlc/PT':>12}{'arena/PT saved':>16}{'arena/PT peak':>15}"
          f"{'mlc %SGEMM':>12}{'beside':>8}{'PT %SGEMM':>11}{'compile ms':>12}{'budget arena/PT peak':>22}"
          f"{'budget step/PT':>16}")
    for m in models:
        r = R[m]
        print(f"  {m:<16}{fmt(r['mlc_ms'] / r['torch_ms'], '.2f'):>12}{fmt(r['mlc_rss'] / r['torch_rss'], '.2f'):>12}"
              f"{fmt(r['arena'] / r['torch_saved'], '.2f'):>16}{fmt(r['arena'] / r['torch_alloc'], '.2f'):>15}"
              f"{fmt(100 * r['mlc_gflops'] / peak, '.1f'):>12}{fmt(100 * r['sgemm_beside'], '.1f'):>8}"
              f"{fmt(100 * r['torch_gflops'] / peak, '.1f'):>11}"
              f"{fmt(r['compile_ms'], '.1f'):>12}{fmt(r['mb_arena'] / r['torch_alloc'], '.2f'):>22}"
              f"{fmt(r['mb_ms'] / r['torch_ms'], '.2f'):>16}")
    if len(isas) > len(models):
        print("step mlc/PT per instruction set (run.sh --isa):")
        for m, isa, a, b, vw in isas:
            print(f"  {m:<16}{isa:<8} {vw:>2}-float vectors {fmt(a / b, '.2f'):>6}")
    busy = [m for m in models if R[m]["others"] > 0.25]
    if busy:
        print(f"warning: other processes kept {', '.join(fmt(R[m]['others'], '.2f') for m in busy)} cores busy while "
              f"{', '.join(busy)} ran: those step times are noisy; rerun on a quieter machine", file=sys.stderr)


if __name__ == "__main__":
    main()
