"""bench/profile_step.py - where a C trainer's train step spends its time, per op.

usage: profile_step.py MODEL.mdl [--threads N] [--steps N] [--top N] [--keep DIR]
                       [--mlc PATH] [--lib-dir DIR] [--cflags FLAGS] [--mlc-flags FLAGS]

Emits the model with build/compiler/mlc, puts a clock read before the code of every node
of the train step (the generated code marks each with a `/* %ID = op ...` comment) and
after the last (--mlc: another build's mlc, default build/compiler/mlc; --lib-dir: its
runtime libraries; --cflags: more compiler flags, e.g. a sanitizer's; --mlc-flags: more
flags for mlc, e.g. "--conv-algo direct"), builds it with bench/step_timer.c and the flags of bench/run.sh, runs
--steps steps on random data and prints, per op, the wall time per step summed over its
nodes (a fused group or epilogue counts under its root's op), then the --top slowest
nodes. The first two steps are not counted (first touch of the arena, caches).

A clock read costs tens of nanoseconds, nothing next to the kernels it brackets; the
OpenMP loops still run in parallel. Timings only, on a noisy machine: compare runs made
one right after the other. This is how the scalar ReLU-backward loops (no
-fno-trapping-math) showed up: 10 % of resnet20_cifar's step in one op kind."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double prof_sum[%(n)d];
static int prof_cur = -1, prof_steps;
static double prof_t0;
static double prof_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
/* closes the node running now and opens node k (-1: none); step 3 starts the count */
static void prof_mark(int k) {
    double t = prof_now();
    if (k == 0 && ++prof_steps == 3)
        for (int i = 0; i < %(n)d; i++) prof_sum[i] = 0;
    if (prof_cur >= 0) prof_sum[prof_cur] += t - prof_t0;
    prof_cur = k, prof_t0 = t;
}
static const char *const prof_what[%(n)d] = {%(names)s};
__attribute__((destructor)) static void prof_dump(void) {
    FILE *f = fopen(getenv("MLC_PROFILE_OUT"), "w");
    if (!f) return;
    for (int i = 0; i < %(n)d; i++) fprintf(f, "%%s %%.9f\n", prof_what[i], prof_sum[i]);
    fclose(f);
}
"""


def instrument(src):
    """The generated C with prof_mark calls in the train step's two halves (forward_backward
    and update, which api_train_step runs back to back; --check-finite's copies are left
    alone); the nodes' "%ID op" labels."""
    out, names, in_step, found = [], [], None, set()
    for line in src.split("\n"):
        if line.startswith("static float forward_backward(") or line.startswith("static void update("):
            in_step = line.split("(")[0].split()[-1]
            found.add(in_step)
        elif in_step and line == "}":
            if in_step == "update":
                out.append("    prof_mark(-1);")
            in_step = None
        m = re.match(r"^    /\* (%\d+) = (\w+) ", line) if in_step else None
        if m:
            out.append(f"    prof_mark({len(names)});")
            names.append(f"{m.group(2)}:{m.group(1)}")
        if in_step == "forward_backward" and re.match(r"^    return \w+\[0\];", line):
            out.append("    prof_mark(-1);")
        out.append(line)
    if found != {"forward_backward", "update"} or not names:
        sys.exit("profile_step.py: no train step found in the generated C (was it emitted for --target c?): "
                 "expected the functions forward_backward and update with their nodes' comments")
    text = "\n".join(out)
    cut = text.index("\nstatic ")  # after the includes and the model struct
    prelude = PRELUDE % {"n": len(names), "names": ", ".join(f'"{n}"' for n in names)}
    return text[:cut] + "\n" + prelude + text[cut:], names


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mdl")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--keep", help="keep the instrumented source and binary in this directory")
    ap.add_argument("--mlc", default=os.path.join(ROOT, "build", "compiler", "mlc"))
    ap.add_argument("--lib-dir", default=os.path.join(ROOT, "build", "runtime"))
    ap.add_argument("--cflags", default="", help="more flags for cc, space-separated")
    ap.add_argument("--mlc-flags", default="", help="more flags for mlc, space-separated (e.g. --conv-algo direct)")
    a = ap.parse_args()
    if a.steps < 3:
        sys.exit("profile_step.py: --steps must be at least 3 (the first two are not counted)")
    work = a.keep or tempfile.mkdtemp(prefix="mlc-profile-")
    os.makedirs(work, exist_ok=True)
    try:
        mlc = a.mlc
        gen = os.path.join(work, "model.c")
        subprocess.run([mlc, a.mdl, "-o", gen, "--threads", str(a.threads), *a.mlc_flags.split()], check=True)
        with open(gen) as f:
            src, names = instrument(f.read())
        name = re.search(r"const mlc_model_api (\w+)_api = ", src)
        if not name:
            sys.exit("profile_step.py: no mlc_model_api in the generated C")
        prof = os.path.join(work, "model_prof.c")
        with open(prof, "w") as f:
            f.write(src)
        blas = subprocess.run(["pkg-config", "--cflags", "openblas"], capture_output=True, text=True).stdout.split() \
            or ["-I/usr/include/x86_64-linux-gnu/openblas-pthread"]
        exe = os.path.join(work, "model_prof")
        subprocess.run(["cc", *a.cflags.split(), "-std=c11", "-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp",
                        "-D_POSIX_C_SOURCE=200809L", *blas, "-I" + os.path.join(ROOT, "runtime"), prof,
                        os.path.join(ROOT, "bench", "step_timer.c"), f"-DMLC_MODEL_API={name.group(1)}_api", "-o", exe,
                        "-L" + a.lib_dir, "-lmlckernels", "-lmlcrt", "-lopenblas", "-lz", "-lm", "-pthread"],
                       check=True)
        table = os.path.join(work, "profile.txt")
        run = subprocess.run([exe, "--threads", str(a.threads), "--steps", str(a.steps), "--warmup", "0"],
                             env=dict(os.environ, MLC_PROFILE_OUT=table), capture_output=True, text=True, check=True)
        per_node = []
        with open(table) as f:
            for line in f:
                what, secs = line.split()
                per_node.append((what, float(secs) * 1e3 / (a.steps - 2)))
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = sum(ms for _, ms in per_node)
    by_op = {}
    for what, ms in per_node:
        op = what.split(":")[0]
        by_op[op] = by_op.get(op, 0.0) + ms
    print(f"{os.path.basename(a.mdl)}: {a.threads} thread(s), {a.steps - 2} steps counted; "
          f"step {total:.1f} ms in the nodes ({run.stdout.strip().split(' p10_ms')[0]})")
    print(f"  {'op (root of its group)':<24}{'ms/step':>10}{'share':>8}{'nodes':>7}")
    counts = {}
    for what, _ in per_node:
        counts[what.split(":")[0]] = counts.get(what.split(":")[0], 0) + 1
    for op, ms in sorted(by_op.items(), key=lambda kv: -kv[1]):
        if ms >= 0.005 * total:
            print(f"  {op:<24}{ms:>10.2f}{100 * ms / total:>7.1f}%{counts[op]:>7}")
    print(f"slowest nodes:")
    for what, ms in sorted(per_node, key=lambda kv: -kv[1])[: a.top]:
        print(f"  {what:<24}{ms:>10.2f}")


if __name__ == "__main__":
    main()
