#!/usr/bin/env bash
# bench/load.sh - the C trainers' training time beside other busy processes, under the
# waiting policies of the OpenMP team (docs/trainer.md, "Threads under load"):
#   spin     GOMP_SPINCOUNT=300000: libgomp's own default (about 3 ms of spinning at each
#            barrier), what trainers ran with before they chose a policy;
#   passive  OMP_WAIT_POLICY=passive: a futex sleep at once;
#   bounded  GOMP_SPINCOUNT=1000: about 10 us of spinning, then the sleep;
#   default  no variable set: the trainer's choice as it starts (bounded where the CPUs are
#            free for its threads beside what runs, else passive).
# Each of samples/mlp.mdl and samples/lenet.mdl trains on Fashion-MNIST with --threads 2,
# capped with --max-steps, alone and beside one and two `yes > /dev/null` processes.
# Rounds are interleaved (every load, policy and model once per round) so that a change
# in the machine's background load spreads over all cells. The time is the epoch row's
# seconds in the trainer's --log (training steps only, not the data loading). Every run's
# loss curve (the log without its seconds column) must be the same bits for one model,
# whatever the policy and load: the script fails otherwise.
#
# usage: bench/load.sh [ROUNDS (default 3)] [MLP_STEPS (400)] [LENET_STEPS (40)]
# (only the samples those steps need are loaded: --train-limit 64 x steps, --test-limit 200)
# Writes bench/results/load.md (medians, with `uptime` before and after) and
# bench/results/load_runs.txt (every run). Timings only; nothing here is a test.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} mlp_steps=${2:-400} lenet_steps=${3:-40}
data=/usr/share/datasets/fashion-mnist
[ -x build/compiler/mlc ] || { echo "bench/load.sh: build first (ninja -C build)" >&2; exit 2; }
[ -r "$data/train-images-idx3-ubyte.gz" ] || { echo "bench/load.sh: no Fashion-MNIST at $data" >&2; exit 2; }

work=$(mktemp -d)
hogs=()
stop_hogs() { for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; hogs=(); }
trap 'stop_hogs; rm -rf "$work"' EXIT
for m in mlp lenet; do build/compiler/mlc build "samples/$m.mdl" -o "$work/$m" >/dev/null; done

policy_env() {
    case "$1" in
    spin) echo GOMP_SPINCOUNT=300000 ;;
    passive) echo OMP_WAIT_POLICY=passive ;;
    bounded) echo GOMP_SPINCOUNT=1000 ;;
    default) echo -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT ;; # the trainer chooses
    esac
}

runs=bench/results/load_runs.txt
up_before=$(uptime)
echo "# round load policy model seconds (bench/load.sh, $(date -u +%FT%TZ))" > "$runs"
for r in $(seq "$rounds"); do
    for load in 0 1 2; do
        for _ in $(seq "$load"); do yes > /dev/null & hogs+=($!); done
        for policy in spin passive bounded default; do
            for m in mlp lenet; do
                steps=$mlp_steps; [ $m = lenet ] && steps=$lenet_steps
                log="$work/$m-$policy-$load-$r.csv"
                env $(policy_env $policy) "$work/$m" --epochs 1 --threads 2 --seed 1 \
                    --max-steps "$steps" --train-limit $((64 * steps)) --test-limit 200 \
                    --quiet --data "$data" --log "$log" >/dev/null
                secs=$(awk -F, '$1 == "epoch" { print $NF }' "$log")
                echo "$r $load $policy $m $secs" | tee -a "$runs"
                cut -d, -f1-8 "$log" > "$log.curve"
                cmp -s "$log.curve" "$work/$m-spin-0-1.csv.curve" ||
                    { echo "bench/load.sh: $m's loss curve under $policy, load $load differs" >&2; exit 1; }
            done
        done
        stop_hogs
    done
done
up_after=$(uptime)

python3 - "$runs" "$up_before" "$up_after" "$rounds" "$mlp_steps" "$lenet_steps" <<'PY' > bench/results/load.md
import statistics, sys
runs, before, after, rounds, mlp_steps, lenet_steps = sys.argv[1:]
t = {}
for line in open(runs):
    if line.startswith("#"):
        continue
    r, load, policy, model, secs = line.split()
    t.setdefault((model, policy, int(load)), []).append(float(secs))
print("# Training time beside busy processes (bench/load.sh)\n")
print(f"Median seconds of {rounds} interleaved runs each; mlp {mlp_steps} steps, lenet "
      f"{lenet_steps} steps (`--max-steps`), `--threads 2`, Fashion-MNIST, training steps only "
      "(the epoch row of `--log`). Load: 0, 1 or 2 `yes > /dev/null` processes besides "
      "what else ran on the machine:\n")
print(f"- before: `{before.strip()}`\n- after:  `{after.strip()}`\n")
print("| model | policy | alone | + 1 busy | + 2 busy | + 1 / alone | + 2 / alone |")
print("|---|---|---:|---:|---:|---:|---:|")
for model in ("mlp", "lenet"):
    for policy in ("spin", "passive", "bounded", "default"):
        m = [statistics.median(t[(model, policy, l)]) for l in (0, 1, 2)]
        print(f"| {model} | {policy} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | "
              f"{m[1] / m[0]:.1f}x | {m[2] / m[0]:.1f}x |")
print("\nspin: libgomp's default (GOMP_SPINCOUNT=300000), the trainers' first; passive: "
      "OMP_WAIT_POLICY=passive, their default before they looked at the machine; bounded: "
      "GOMP_SPINCOUNT=1000; default: no variable, the trainer's choice as it starts (bounded "
      "where the CPUs are free for its threads, else passive). Every run of a model had the "
      "same loss curve, bit for bit.")
PY
cat bench/results/load.md
