#!/usr/bin/env bash
# The GPU checks of issue 6 in one run, for a lent CUDA machine (its python3 has torch with
# CUDA, numpy, scipy, Pillow, protobuf, tqdm, pytest; nothing is fetched): Caffe's golden
# values on the GPU, then the speed benchmark at 540x360 and 1920x1080 in fp32, bf16 and fp16,
# alone and in batches. Everything is also written to ${OUT:-/tmp}/gpu_check.log.
#
#   bash bench/gpu_check.sh [--quick]     (--quick: small sizes, to try the script on a CPU)
set -uo pipefail
export PYTHONUNBUFFERED=1
log="${OUT:-/tmp}/gpu_check.log"
python=${PYTHON:-python3}
device=cuda sizes=("540x360:8" "1920x1080:4") extra=()
if [ "${1:-}" = "--quick" ]; then
    device=cpu sizes=("96x64:2") extra=(--iterations 1 --octaves 2 --repeats 1 --agreement-iterations 1)
fi
exec > >(tee "$log") 2>&1
status=0
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
echo "== golden values on $device"
DEEPDREAM_TEST_DEVICE=$device "$python" -m pytest -q -p no:cacheprovider \
    tests/test_engine_golden.py || status=1
for entry in "${sizes[@]}"; do
    size=${entry%%:*} batch=${entry##*:}
    echo "== dream_bench $size on $device"
    "$python" bench/dream_bench.py --device "$device" --size "$size" --precision bf16,fp16 \
        --batch "$batch" "${extra[@]}" || status=1
done
echo "== gpu_check: $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
