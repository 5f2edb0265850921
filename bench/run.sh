#!/usr/bin/env bash
# bench/run.sh - mlc's CPU trainers against PyTorch, side by side in one run on this
# machine: same model, batch, optimizer (the sample's), thread count and random data. Per sample:
# train-step time, peak RSS, mlc compile time, achieved GFLOP/s against this machine's
# SGEMM rate, and activation memory (mlc's arena against what PyTorch keeps for backward).
# Writes bench/results/summary.md, summary.png (if matplotlib is there), steps.md and
# runs.txt (the raw lines), and prints the ratios. Timings only; nothing here is a test.
# bench/README.md says what each number is and how it is measured.
#
# usage: bench/run.sh [--quick] [--threads N] [--steps N] [--reps N] [--isa LIST] [MODEL...]
#   models: mlp lenet resnet resnet20_cifar vit gpt (default: all six)
#   full (default): 3 alternating timing runs per side; timed steps per run 200 (mlp),
#     100 (lenet), 50 (the ResNets), after 10 (5 for the ResNets) warm-up steps;
#     20 compile runs; 10 reps per SGEMM size. About 7 minutes on 2 idle cores
#     (17 when others kept about one core busy).
#   --quick: one run per side, 50/10/3 steps after 2 warm-up steps, 5 compile runs,
#     3 SGEMM reps: checks the script works; its numbers are rough.
#   --steps N / --reps N override the timed steps per run / the runs per side.
#   --isa LIST: the instruction sets both sides run on, comma-separated (default
#     native,avx2): native is mlc and its kernel library built with -march=native against
#     PyTorch as it is; avx2 is both built with -march=x86-64-v3 against PyTorch with
#     oneDNN and ATen limited to AVX2 (ONEDNN_MAX_CPU_ISA, DNNL_MAX_CPU_ISA,
#     ATEN_CPU_CAPABILITY). The main table is native's; summary.md adds a table of the
#     step times per instruction set. On an AVX2 machine the two are the same code.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
threads=2 steps= reps= quick=0 isas=native,avx2
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --threads) threads=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --isa) isas=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        mlp|lenet|resnet|resnet20_cifar|vit|gpt) models+=("$1"); shift ;;
        *) echo "bench/run.sh: unknown model $1 (mlp lenet resnet resnet20_cifar vit gpt)" >&2; exit 2 ;;
    esac
done
[ ${#models[@]} -gt 0 ] || models=(mlp lenet resnet resnet20_cifar vit gpt)
extra_isas=() # the instruction sets besides native, each a second trainer per model
for i in ${isas//,/ }; do
    case $i in
        native) ;;
        avx2) extra_isas+=(avx2) ;;
        *) echo "bench/run.sh: --isa: expected native or avx2, found '$i'" >&2; exit 2 ;;
    esac
done
if [ $quick = 1 ]; then
    : "${reps:=1}"; compile_runs=5 sgemm_reps=3
else
    : "${reps:=3}"; compile_runs=20 sgemm_reps=10
fi

# The PyTorch side is half of every number here: without it there is nothing to compare.
if ! [ -x "$PY" ] || ! torch_version=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null); then
    echo "bench/run.sh: error: PyTorch is not importable by $PY; install it (Debian: apt-get install python3-torch)" >&2
    exit 1
fi
if ! "$PY" -c 'import matplotlib' 2>/dev/null; then
    echo "bench/run.sh: note: matplotlib is not importable by $PY, so summary.png will not be written" \
         "(Debian: apt-get install python3-matplotlib)" >&2
fi

[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build -j2 >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
raw=$work/raw
mkdir -p "$raw" bench/results
blas_cflags=$(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
CFLAGS=(-std=c11 -O3 -march=native -fno-math-errno -fno-trapping-math -fopenmp -D_POSIX_C_SOURCE=200809L $blas_cflags -Iruntime)

{
    echo "threads=$threads reps=$reps quick=$quick torch=$torch_version"
    echo "date=$(date -u +%Y-%m-%dT%H:%MZ) commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- 2>/dev/null || echo +changes)"
    echo "clk_tck=$(getconf CLK_TCK)"
    echo "cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1 | tr ' ' _) cores=$(nproc)"
} > "$raw/meta.txt"

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
# CPU ticks the whole machine spent busy (steal included), ticks this script and the
# children it has waited for spent, and the time: summary.py turns two marks into how
# many cores others kept busy meanwhile (the noise this shared machine adds).
cpu_mark() {
    echo "busy=$(awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat)" \
         "own=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$$/stat")" "ns=$(date +%s%N)"
}

# Cores other processes keep busy between two cpu_marks.
others() {
    awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { split(a, x, /[ =]/); split(b, y, /[ =]/);
        printf "%.2f", ((y[2] - x[2]) - (y[4] - x[4])) / hz / ((y[6] - x[6]) * 1e-9) }'
}
m0=$(cpu_mark); sleep 2; busy=$(others "$m0" "$(cpu_mark)")
echo "other processes keep $busy of $(nproc) cores busy (over 2 s)"
if awk -v b="$busy" 'BEGIN { exit !(b > 0.25) }'; then
    echo "bench/run.sh: warning: the machine is busy; step times will be noisy (summary.md shows how busy per model)" >&2
fi

echo "SGEMM rate (mlc_sgemm: OpenMP split over $threads threads, OpenBLAS single-threaded per call)..."
cc "${CFLAGS[@]}" bench/sgemm_rate.c -o "$work/sgemm_rate" -Lbuild/runtime -lmlckernels -lopenblas -lm -pthread
"$work/sgemm_rate" --threads "$threads" --reps "$sgemm_reps" | tee "$raw/sgemm.txt"

# --isa avx2: the kernel library's sources (the list in runtime/meson.build) built again
# with -march=x86-64-v3, and PyTorch's own limits to AVX2
march_of() { case $1 in avx2) echo x86-64-v3 ;; *) echo native ;; esac; }
torch_env_avx2=(ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2)
for i in "${extra_isas[@]}"; do
    mkdir -p "$work/lib_$i"
    for s in $(grep -o "kernels/c/[a-z_0-9]*\.c" runtime/meson.build | sort -u); do
        cc "${CFLAGS[@]}" -march="$(march_of "$i")" -Iruntime/kernels -c "runtime/$s" -o "$work/lib_$i/$(basename "$s" .c).o"
    done
    ar rcs "$work/lib_$i/libmlckernels.a" "$work/lib_$i"/*.o
done

for m in "${models[@]}"; do
    build/compiler/mlc "samples/$m.mdl" -o "$work/$m.c" --report --threads "$threads" > "$raw/$m.report"
    # The same trainer with --mem-budget at the smallest arena recomputation reaches (what
    # the error for a 1-byte budget names), when that is smaller than the plain arena.
    floor=$(build/compiler/mlc "samples/$m.mdl" --mem-budget 1 --threads "$threads" 2>&1 |
            sed -n 's/.*down to \([0-9]*\) bytes.*from \([0-9]*\) bytes.*/\1 \2/p' || true)
    budget=
    if [ -n "$floor" ] && [ "${floor% *}" -lt "${floor#* }" ]; then
        budget=${floor% *}
        build/compiler/mlc "samples/$m.mdl" -o "$work/${m}_mb.c" --report --threads "$threads" --mem-budget "$budget" \
            > "$raw/$m.mbreport"
        cc "${CFLAGS[@]}" "$work/${m}_mb.c" bench/step_timer.c -DMLC_MODEL_API="${m}_api" \
            -o "$work/${m}_mb" -Lbuild/runtime -lmlckernels -lmlcrt -lopenblas -lz -lm -pthread
    fi
    "$PY" bench/compile_time.py "$compile_runs" build/compiler/mlc "samples/$m.mdl" -o "$work/ct_$m.c" > "$raw/$m.compile"
    cc "${CFLAGS[@]}" "$work/$m.c" bench/step_timer.c -DMLC_MODEL_API="${m}_api" \
        -o "$work/$m" -Lbuild/runtime -lmlckernels -lmlcrt -lopenblas -lz -lm -pthread
    for i in "${extra_isas[@]}"; do # the same trainer for instruction set i (later -march wins)
        cc "${CFLAGS[@]}" -march="$(march_of "$i")" "$work/$m.c" bench/step_timer.c -DMLC_MODEL_API="${m}_api" \
            -o "$work/${m}_$i" -L"$work/lib_$i" -Lbuild/runtime -lmlckernels -lmlcrt -lopenblas -lz -lm -pthread
    done
    n=$steps
    [ -n "$n" ] || if [ $quick = 1 ]; then
        case $m in mlp) n=50 ;; lenet) n=10 ;; *) n=3 ;; esac
    else
        case $m in mlp) n=200 ;; lenet) n=100 ;; *) n=50 ;; esac
    fi
    warm=2
    [ $quick = 1 ] || case $m in mlp|lenet) warm=10 ;; *) warm=5 ;; esac
    probe=$("$work/$m" --threads "$threads" --steps 1 --warmup 0)
    batch=$(field batch <<< "$probe")
    # The PyTorch side takes the generated model's optimizer and hyperparameters.
    opt_args=(--optimizer "$(field opt <<< "$probe")" --lr "$(field lr <<< "$probe")"
              --momentum "$(field momentum <<< "$probe")" --betas "$(field beta1 <<< "$probe")" "$(field beta2 <<< "$probe")"
              --eps "$(field eps <<< "$probe")" --weight-decay "$(field wd <<< "$probe")")
    echo "$m: batch $batch, ${opt_args[*]}, $threads threads, $reps x $n timed steps per side after $warm warm-up steps..."
    # Alternate the two sides so drifting machine load hits both alike. The first PyTorch
    # run also measures its memory (--memory: after its timed steps and its peak RSS).
    : > "$raw/$m.mlc"; : > "$raw/$m.torch"; rm -f "$raw/$m.mlcmb"
    for i in "${extra_isas[@]}"; do : > "$raw/$m.mlc_$i"; : > "$raw/$m.torch_$i"; done
    echo "start $(cpu_mark)" > "$raw/$m.load"
    : > "$raw/$m.sgemm"
    for rep in $(seq 1 "$reps"); do
        # the SGEMM rate again right before each mlc run: the machine's speed drifts
        "$work/sgemm_rate" --threads "$threads" --reps 3 | sed "s/^/rep=$rep /" >> "$raw/$m.sgemm"
        "$work/$m" --threads "$threads" --steps "$n" --warmup "$warm" | tee -a "$raw/$m.mlc"
        "$PY" bench/torch_models.py "$m" --threads "$threads" --steps "$n" --warmup "$warm" --batch "$batch" "${opt_args[@]}" \
            $([ "$rep" = 1 ] && echo --memory) 2>"$work/torch.err" | tee -a "$raw/$m.torch" \
            || { cat "$work/torch.err" >&2; exit 1; }
        if [ -n "$budget" ]; then
            "$work/${m}_mb" --threads "$threads" --steps "$n" --warmup "$warm" | sed 's/^/mem_budget=1 /' \
                | tee -a "$raw/$m.mlcmb"
        fi
        for i in "${extra_isas[@]}"; do
            "$work/${m}_$i" --threads "$threads" --steps "$n" --warmup "$warm" | sed "s/^/isa=$i /" \
                | tee -a "$raw/$m.mlc_$i"
            env "${torch_env_avx2[@]}" "$PY" bench/torch_models.py "$m" --threads "$threads" --steps "$n" \
                --warmup "$warm" --batch "$batch" "${opt_args[@]}" 2>"$work/torch.err" | sed "s/^/isa=$i /" \
                | tee -a "$raw/$m.torch_$i" || { cat "$work/torch.err" >&2; exit 1; }
        done
    done
    echo "end $(cpu_mark)" >> "$raw/$m.load"
done

if ! "$PY" bench/summary.py "$raw" bench/results "${models[@]}"; then
    rm -rf bench/results/raw-failed && cp -r "$raw" bench/results/raw-failed
    echo "bench/run.sh: summary.py failed; its input is in bench/results/raw-failed" >&2
    exit 1
fi
