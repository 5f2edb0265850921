#!/bin/sh
# tests/compiler/gpu/create_fails_on_host.sh BUILD_DIR - a CUDA model's mlp_create on the
# CPU stand-in (host_cuda/) made to fail as without a usable driver (MLC_HOST_NO_DRIVER):
# NULL and one line on stderr, the CUDA call that failed and why, with no second, false
# "out of memory" line after it (which it once printed). The caller is C++ and includes
# the generated mlp.h as it is (without its extern "C" the link failed). Exit 1 on other
# output.
set -eu
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$BUILD/compiler/mlc" "$ROOT/samples/mlp.mdl" --target cuda -o "$W/mlp.cu"
sh "$ROOT/tests/compiler/gpu/host_cuda/build.sh" "$ROOT" "$BUILD" "$W" "$W/mlp.cu" \
    "$ROOT/tests/compiler/gpu/create_fails.cpp" mlp_api "$W/create_fails"
MLC_HOST_NO_DRIVER=1 "$W/create_fails" > "$W/out" 2> "$W/err"
cat > "$W/want_out" << 'END'
create: NULL
create max_batch 0: NULL
inputs: 2
END
cat > "$W/want_err" << 'END'
error: mlp: cannot create the model on the GPU: cudaStreamCreate: CUDA driver version is insufficient for CUDA runtime version
error: mlp_create: max_batch 0, expected at least 1
END
status=0
diff "$W/want_out" "$W/out" || status=1
diff "$W/want_err" "$W/err" || status=1
[ $status = 0 ] && echo "mlp_create without a usable GPU: one line, the real reason"
# the CUDA trainer likewise: the one line, and no "out of memory creating model" after it
DATA=/usr/share/datasets/fashion-mnist
if [ -f "$DATA/train-images-idx3-ubyte.gz" ]; then
    sh "$ROOT/tests/compiler/gpu/host_cuda/build.sh" "$ROOT" "$BUILD" "$W" "$W/mlp.cu" \
        "$ROOT/templates/trainer_main.c" mlp_api "$W/mlp_trainer"
    if MLC_HOST_NO_DRIVER=1 "$W/mlp_trainer" --data "$DATA" --train-limit 100 --val 20 --test-limit 20 --epochs 1 \
        > /dev/null 2> "$W/err_trainer"; then
        echo "the trainer ran without a usable GPU"
        status=1
    fi
    head -1 "$W/want_err" > "$W/want_err_trainer"
    diff "$W/want_err_trainer" "$W/err_trainer" || status=1
    [ $status = 0 ] && echo "the CUDA trainer without a usable GPU: one line, the real reason"
else
    echo "no Fashion-MNIST in $DATA: the trainer's part skipped"
fi
exit $status
